//! Deferred reasons: alarms still in ALARM after a skip retrain once the skip no longer holds.
//!
//! An alarm that entered ALARM while an execution was running or within the cooldown is skipped
//! (`PipelineBusy`, `Cooldown`, or a lease wait that ran out). It stays in ALARM, so CloudWatch
//! sends no new transition, and without more the reason would be dropped. The recheck schedule
//! (a rule named `RECHECK_RULE`, hourly in the template) asks CloudWatch for the alarms named
//! `RECHECK_ALARM_PREFIX...` that are in ALARM now ([`AlarmStates`]), and evaluates each as the
//! trigger of its current transition ([`recheck_trigger`]): the alarm name and the time it
//! entered ALARM, i.e. the same identity, token and display name as the transition's own event.
//!
//! So, per alarm and transition, at most one execution ever starts:
//! - the transition already started one (through its event or an earlier tick): the same
//!   display name, or any execution for this alarm started since it entered ALARM → skipped
//!   `AlreadyStarted`;
//! - still busy or within the cooldown → skipped again, with that reason (and rechecked at the
//!   next tick);
//! - otherwise it starts, with the transition's own `ClientRequestToken`: ticks that overlap get
//!   the one execution, and the pipeline lease keeps it from racing other triggers.
//!
//! Declined explicitly: an alarm in ALARM since before the executions' lookback window (whether
//! it was served can no longer be told) is reported in [`Rechecked::declined`] with the reason,
//! and logged, not retrained.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{
    AlarmContext, AlarmState, Lease, Outcome, RetrainError, RetrainSettings, Trigger, TriggerKind,
    TriggerVia, evaluate_with, input::millis,
};
use crate::clock::Clock;
use crate::error::AwsError;
use crate::pipelines::PipelineRunner;

/// An alarm as `DescribeAlarms` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStatus {
    pub name: String,
    pub arn: Option<String>,
    pub state: AlarmState,
    /// When it entered its current state (`StateTransitionedTimestamp`; `StateUpdatedTimestamp`
    /// where the service does not send it).
    pub since: DateTime<Utc>,
    pub reason: String,
    pub metric: Option<String>,
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    pub threshold: Option<f64>,
    pub composite: bool,
}

/// Reading alarm states (CloudWatch `DescribeAlarms`).
#[async_trait]
pub trait AlarmStates: Send + Sync {
    /// The metric and composite alarms whose name starts with `prefix` that are in ALARM now.
    async fn alarms_in_alarm(&self, prefix: &str) -> Result<Vec<AlarmStatus>, AwsError>;
}

/// The trigger of the alarm's current transition into ALARM: its identity (alarm name + the
/// transition time in ms) is the one its own state-change event has.
pub fn recheck_trigger(alarm: &AlarmStatus) -> Trigger {
    let time = alarm.since;
    Trigger {
        kind: TriggerKind::Alarm,
        via: TriggerVia::Recheck,
        name: alarm.name.clone(),
        time,
        reason: format!(
            "alarm {} is still in ALARM (since {}){}",
            alarm.name,
            time.to_rfc3339_opts(SecondsFormat::Millis, true),
            if alarm.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", alarm.reason)
            }
        ),
        identity: vec![alarm.name.clone(), millis(time)],
        resources: alarm.arn.iter().cloned().collect(),
        alarm: Some(AlarmContext {
            state: alarm.state.clone(),
            previous_state: None,
            state_reason: alarm.reason.clone(),
            actions_suppressed_by: None,
            metric: alarm.metric.clone(),
            namespace: alarm.namespace.clone(),
            dimensions: alarm.dimensions.clone(),
            value: None,
            threshold: alarm.threshold,
            alarm_arn: alarm.arn.clone(),
            composite: alarm.composite,
        }),
        request: None,
    }
}

/// An alarm the recheck will not retrain for, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Declined {
    pub alarm: String,
    pub since: DateTime<Utc>,
    pub message: String,
}

/// What one recheck tick did.
#[derive(Debug)]
pub struct Rechecked {
    /// Each alarm in ALARM within the window, with what evaluating it came to.
    pub evaluated: Vec<(Trigger, Result<Outcome, RetrainError>)>,
    pub declined: Vec<Declined>,
}

/// Evaluates every alarm named `prefix...` that is in ALARM now (see the module doc).
pub async fn recheck(
    alarms: &dyn AlarmStates,
    prefix: &str,
    runner: &dyn PipelineRunner,
    lease: Option<Lease<'_>>,
    settings: &RetrainSettings,
    clock: &Clock,
) -> Result<Rechecked, AwsError> {
    let mut in_alarm = alarms.alarms_in_alarm(prefix).await?;
    in_alarm.retain(|a| a.state == AlarmState::Alarm && a.name.starts_with(prefix));
    in_alarm.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.name.cmp(&b.name)));
    let window = settings.policy.lookback();
    let mut out = Rechecked {
        evaluated: Vec::new(),
        declined: Vec::new(),
    };
    for alarm in in_alarm {
        let now = clock();
        if alarm.since < now - window {
            out.declined.push(Declined {
                message: format!(
                    "alarm {} has been in ALARM since {}, longer than the {} the executions are listed for: whether it was retrained for cannot be told, so the recheck does not retrain for it (set it to OK, or request a retrain)",
                    alarm.name,
                    alarm.since.to_rfc3339_opts(SecondsFormat::Secs, true),
                    super::settings::format_duration(window)
                ),
                alarm: alarm.name,
                since: alarm.since,
            });
            continue;
        }
        let trigger = recheck_trigger(&alarm);
        let outcome = evaluate_with(&trigger, runner, lease, settings, clock).await;
        out.evaluated.push((trigger, outcome));
    }
    Ok(out)
}
