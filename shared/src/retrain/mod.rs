//! Retraining: from a trigger (an alarm entering ALARM, a schedule, an on-demand request) to at
//! most one pipeline execution per trigger.
//!
//! - [`parse_trigger`] reads the four input shapes into one [`Trigger`].
//! - [`precheck`] (pure): only a transition *into* ALARM acts; OK, INSUFFICIENT_DATA and
//!   ALARM→ALARM are no-ops, as is an alarm whose actions are suppressed.
//! - [`plan`] (pure): the pipeline (per-trigger routes, else the default), the
//!   `ClientRequestToken` and display name derived from the trigger (see [`token`]), the
//!   description, and the parameters (fixed ones, trigger facts where configured, then the
//!   request's own).
//! - [`decide`] (pure), over the pipeline's recent executions: skip when this very trigger already
//!   started one (same display name: a redelivery), when the trigger is older than the maximum
//!   trigger age (a late redelivery or a replay: executions are listed at least that far back, so
//!   any trigger acted on is recognised when it comes again), when one is `Executing`, when one started
//!   within the cooldown (a request with `force` ignores the cooldown), and, for a schedule, when
//!   a drift-triggered execution succeeded within the schedule's period.
//! - [`evaluate`] runs them against the [`PipelineRunner`] port and starts the execution.
//! - [`report`]: the outcome as returned and announced (event and count metric).
//!
//! - [`lease`]: [`evaluate_with`] holds a per-pipeline lease (an S3 object written only
//!   conditionally) around list-decide-start, so *different* triggers deciding at once for one
//!   pipeline start at most one execution; the lease remembers the last start, which covers a
//!   listing that lags it.
//! - [`recheck`]: alarms still in ALARM are re-evaluated by a schedule as their own transition,
//!   so a reason skipped for a running execution or the cooldown retrains (once) when that ends.
//!
//! Concurrent deliveries of one trigger need no lease: SageMaker returns the execution of the
//! first call for a repeated `ClientRequestToken`, so both get the same one. Without a lease
//! ([`evaluate`]) that is the only protection.

mod input;
pub mod lease;
pub mod recheck;
pub mod report;
pub mod settings;
pub mod token;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub use input::{
    ALARM_STATE_CHANGE, AlarmConfiguration, AlarmData, AlarmMetric, AlarmStateData,
    CLOUDWATCH_SOURCE, EXPECTED, MetricName, MetricStat, RETRAIN_REQUESTED, RetrainRequest,
    SCHEDULE_SOURCES, SCHEDULED_EVENT, parse_trigger,
};
pub use settings::{ContextField, ParameterSettings, PipelineRoutes, Policy};

use crate::clock::Clock;
use crate::error::{AwsError, Classify, ErrorClass};
use crate::pipelines::{
    ExecutionStatus, ExecutionSummary, PipelineRunner, StartExecution, recent_executions,
};
use lease::{ConditionalStore, LeaseConfig, LeaseError};

/// Display-name prefix of alarm-triggered (drift) executions; the schedule rule looks for it.
pub const DRIFT_PREFIX: &str = "drift";
pub const SCHEDULED_PREFIX: &str = "scheduled";
pub const REQUEST_PREFIX: &str = "ondemand";
/// SageMaker's limit on `PipelineExecutionDescription`.
pub const MAX_DESCRIPTION: usize = 3072;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TriggerKind {
    /// A CloudWatch alarm state change (drift, model quality, ...).
    Alarm,
    /// Time-based retraining.
    Schedule,
    /// An on-demand request.
    Request,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 3] = [
        TriggerKind::Alarm,
        TriggerKind::Schedule,
        TriggerKind::Request,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerKind::Alarm => "alarm",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Request => "request",
        }
    }

    /// The display-name prefix of executions this kind starts.
    pub fn prefix(&self) -> &'static str {
        match self {
            TriggerKind::Alarm => DRIFT_PREFIX,
            TriggerKind::Schedule => SCHEDULED_PREFIX,
            TriggerKind::Request => REQUEST_PREFIX,
        }
    }
}

impl fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the trigger arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TriggerVia {
    EventBridge,
    AlarmAction,
    /// The recheck schedule found the alarm still in ALARM (see [`recheck`]).
    Recheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum AlarmState {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
    #[serde(untagged)]
    Other(String),
}

impl AlarmState {
    pub fn parse(s: &str) -> Self {
        match s {
            "OK" => AlarmState::Ok,
            "ALARM" => AlarmState::Alarm,
            "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
            other => AlarmState::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
            AlarmState::Other(s) => s,
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alarm trigger says about the alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmContext {
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub state_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions_suppressed_by: Option<String>,
    pub metric: Option<String>,
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub alarm_arn: Option<String>,
    pub composite: bool,
}

/// What an on-demand request asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOptions {
    pub pipeline: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub force: bool,
}

/// One reason to retrain, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub kind: TriggerKind,
    pub via: TriggerVia,
    /// Alarm name, schedule (rule) name, or requester.
    pub name: String,
    /// Alarm state timestamp, scheduled time, or request time.
    pub time: DateTime<Utc>,
    pub reason: String,
    /// What identifies this trigger across redeliveries (alarm name + state timestamp in ms;
    /// schedule ARN + scheduled time; source + request id).
    pub identity: Vec<String>,
    /// Alarm or schedule ARN.
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestOptions>,
}

impl Trigger {
    /// The value of a context field, when the trigger has it.
    pub fn context(&self, field: ContextField) -> Option<String> {
        let alarm = self.alarm.as_ref();
        match field {
            ContextField::Trigger => Some(self.kind.as_str().to_owned()),
            ContextField::Alarm => Some(self.name.clone()),
            ContextField::Metric => alarm.and_then(|a| a.metric.clone()),
            ContextField::Namespace => alarm.and_then(|a| a.namespace.clone()),
            ContextField::Value => alarm.and_then(|a| a.value).map(|v| v.to_string()),
            ContextField::Threshold => alarm.and_then(|a| a.threshold).map(|v| v.to_string()),
            ContextField::Time => Some(self.time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ContextField::Reason => Some(self.reason.clone()),
        }
    }
}

/// Why no execution was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SkipReason {
    /// The alarm changed to OK or INSUFFICIENT_DATA.
    NotAlarm,
    /// ALARM → ALARM: not a transition.
    AlreadyInAlarm,
    /// CloudWatch suppressed the alarm's actions (composite alarm suppressor).
    ActionsSuppressed,
    /// This very trigger already started an execution (a redelivery).
    AlreadyStarted,
    /// The trigger is older than the maximum trigger age (a late redelivery or a replay).
    Stale,
    /// An execution of the pipeline is `Executing`.
    PipelineBusy,
    /// An execution started within the cooldown.
    Cooldown,
    /// Scheduled retraining after a drift-triggered execution succeeded within the period.
    RecentDriftRetrain,
}

impl SkipReason {
    pub const ALL: [SkipReason; 8] = [
        SkipReason::NotAlarm,
        SkipReason::AlreadyInAlarm,
        SkipReason::ActionsSuppressed,
        SkipReason::AlreadyStarted,
        SkipReason::Stale,
        SkipReason::PipelineBusy,
        SkipReason::Cooldown,
        SkipReason::RecentDriftRetrain,
    ];

    /// The code in the report and the `Reason` dimension of the skip metric.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::NotAlarm => "NotAlarm",
            SkipReason::AlreadyInAlarm => "AlreadyInAlarm",
            SkipReason::ActionsSuppressed => "ActionsSuppressed",
            SkipReason::AlreadyStarted => "AlreadyStarted",
            SkipReason::Stale => "Stale",
            SkipReason::PipelineBusy => "PipelineBusy",
            SkipReason::Cooldown => "Cooldown",
            SkipReason::RecentDriftRetrain => "RecentDriftRetrain",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A skip: its reason code, a sentence, and the execution that caused it, if one did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skip {
    pub reason: SkipReason,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionSummary>,
}

/// No-ops decided from the trigger alone: anything but a transition into ALARM, or suppressed
/// actions. Schedules and requests always pass.
pub fn precheck(trigger: &Trigger) -> Option<Skip> {
    let alarm = trigger.alarm.as_ref()?;
    let skip = |reason, message| {
        Some(Skip {
            reason,
            message,
            execution: None,
        })
    };
    if alarm.state != AlarmState::Alarm {
        return skip(
            SkipReason::NotAlarm,
            format!(
                "alarm {} changed to {}; only a transition into ALARM retrains",
                trigger.name, alarm.state
            ),
        );
    }
    if alarm.previous_state == Some(AlarmState::Alarm) {
        return skip(
            SkipReason::AlreadyInAlarm,
            format!(
                "alarm {} was already in ALARM (ALARM -> ALARM is not a transition)",
                trigger.name
            ),
        );
    }
    if let Some(by) = &alarm.actions_suppressed_by {
        return skip(
            SkipReason::ActionsSuppressed,
            format!("alarm {}'s actions are suppressed ({by})", trigger.name),
        );
    }
    None
}

/// Why no execution can be planned: configuration or request problems, all permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no pipeline for {kind} {name:?}: map it in ALARM_PIPELINES or set PIPELINE_NAME")]
    NoPipeline { kind: TriggerKind, name: String },
    #[error(
        "pipeline {pipeline:?} is not one this deployment starts (PIPELINE_NAME or an ALARM_PIPELINES target)"
    )]
    PipelineNotConfigured { pipeline: String },
    #[error(
        "too many pipeline parameters: {count} (SageMaker accepts at most {})",
        settings::MAX_PARAMETERS
    )]
    TooManyParameters { count: usize },
    #[error("{reason}")]
    ProtectedParameter { reason: String },
}

impl Classify for PlanError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
    fn code(&self) -> &'static str {
        match self {
            PlanError::NoPipeline { .. } => "NoPipeline",
            PlanError::PipelineNotConfigured { .. } => "PipelineNotConfigured",
            PlanError::TooManyParameters { .. } => "TooManyParameters",
            PlanError::ProtectedParameter { .. } => "ProtectedParameter",
        }
    }
}

/// The pipeline a trigger maps to.
pub fn route(trigger: &Trigger, routes: &PipelineRoutes) -> Result<String, PlanError> {
    if let Some(asked) = trigger.request.as_ref().and_then(|r| r.pipeline.as_deref()) {
        return if routes.knows(asked) {
            Ok(asked.to_owned())
        } else {
            Err(PlanError::PipelineNotConfigured {
                pipeline: asked.to_owned(),
            })
        };
    }
    routes
        .resolve(&trigger.name)
        .map(str::to_owned)
        .ok_or_else(|| PlanError::NoPipeline {
            kind: trigger.kind,
            name: trigger.name.clone(),
        })
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// The `StartPipelineExecution` request of a trigger: deterministic, so a redelivery builds the
/// identical request (same token, display name, description and parameters).
pub fn plan(
    trigger: &Trigger,
    routes: &PipelineRoutes,
    params: &ParameterSettings,
) -> Result<StartExecution, PlanError> {
    let pipeline = route(trigger, routes)?;
    let identity: Vec<&str> = trigger.identity.iter().map(String::as_str).collect();
    let client_request_token =
        token::client_request_token(trigger.kind.as_str(), &identity, &pipeline);
    let display_name = token::display_name(
        trigger.kind.prefix(),
        &trigger.name,
        trigger.time,
        &client_request_token,
    );
    let mut parameters = params.fixed.clone();
    for (field, name) in &params.context {
        if let Some(value) = trigger.context(*field) {
            parameters.insert(
                name.clone(),
                truncate_chars(&value, settings::MAX_PARAMETER_VALUE),
            );
        }
    }
    if let Some(req) = &trigger.request {
        // The operator's fixed parameters and the trigger facts are not a requester's to change.
        if let Some(reason) = req
            .parameters
            .iter()
            .find_map(|(k, v)| params.refuses(k, v))
        {
            return Err(PlanError::ProtectedParameter { reason });
        }
        parameters.extend(req.parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if parameters.len() > settings::MAX_PARAMETERS {
        return Err(PlanError::TooManyParameters {
            count: parameters.len(),
        });
    }
    let description = truncate_chars(
        &format!("driftloop {} retraining: {}", trigger.kind, trigger.reason),
        MAX_DESCRIPTION,
    );
    Ok(StartExecution {
        pipeline,
        client_request_token,
        display_name,
        description,
        parameters,
    })
}

/// Start, or skip with a reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Start,
    Skip(Skip),
}

fn is_drift(e: &ExecutionSummary) -> bool {
    e.display_name
        .as_deref()
        .is_some_and(|d| d.starts_with(&format!("{DRIFT_PREFIX}-")))
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = now - t;
    if d.num_hours() >= 48 {
        format!("{}d ago", d.num_days())
    } else if d.num_minutes() >= 120 {
        format!("{}h ago", d.num_hours())
    } else {
        format!("{}m ago", d.num_minutes().max(0))
    }
}

/// The `<prefix>-<slug of name>-` part of a display name (the stamp and hash tail are a fixed
/// 25 characters).
fn display_stem(display_name: &str) -> Option<&str> {
    display_name.get(..display_name.len().checked_sub(25)?)
}

/// True when `e` was started for `trigger`'s alarm (same display-name stem: same kind and alarm)
/// at or after the alarm's transition: the alarm has been in ALARM ever since, so that execution
/// served this transition, whatever its token.
fn served(trigger: &Trigger, request: &StartExecution, e: &ExecutionSummary) -> bool {
    let ours = display_stem(&request.display_name);
    e.start_time >= trigger.time
        && ours.is_some()
        && e.display_name.as_deref().and_then(display_stem) == ours
}

/// The skip rules over the pipeline's recent executions (any order).
pub fn decide(
    trigger: &Trigger,
    request: &StartExecution,
    executions: &[ExecutionSummary],
    now: DateTime<Utc>,
    policy: &Policy,
) -> Decision {
    let mut newest: Vec<&ExecutionSummary> = executions.iter().collect();
    newest.sort_by_key(|e| std::cmp::Reverse(e.start_time));
    let skip = |reason, message, e: &ExecutionSummary| {
        Decision::Skip(Skip {
            reason,
            message,
            execution: Some(e.clone()),
        })
    };
    let p = &request.pipeline;
    if let Some(e) = newest
        .iter()
        .find(|e| e.display_name.as_deref() == Some(request.display_name.as_str()))
    {
        return skip(
            SkipReason::AlreadyStarted,
            format!(
                "this {} already started execution {} of {p} ({}, {})",
                trigger.kind,
                e.arn,
                e.status,
                ago(now, e.start_time)
            ),
            e,
        );
    }
    if trigger.via == TriggerVia::Recheck
        && let Some(e) = newest.iter().find(|e| served(trigger, request, e))
    {
        return skip(
            SkipReason::AlreadyStarted,
            format!(
                "alarm {} has been in ALARM since {}, and execution {} of {p} started for it {} ({}): one retrain per transition",
                trigger.name,
                trigger.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                e.arn,
                ago(now, e.start_time),
                e.status
            ),
            e,
        );
    }
    // A recheck's trigger is the alarm's current state, read just now: never stale.
    if trigger.via != TriggerVia::Recheck
        && policy.max_trigger_age > chrono::Duration::zero()
        && now - trigger.time > policy.max_trigger_age
    {
        return Decision::Skip(Skip {
            reason: SkipReason::Stale,
            message: format!(
                "this {} is from {} ({}), older than the {} maximum trigger age",
                trigger.kind,
                trigger.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                ago(now, trigger.time),
                settings::format_duration(policy.max_trigger_age)
            ),
            execution: None,
        });
    }
    if let Some(e) = newest
        .iter()
        .find(|e| e.status == ExecutionStatus::Executing)
    {
        return skip(
            SkipReason::PipelineBusy,
            format!(
                "pipeline {p} is already executing {} (started {})",
                e.arn,
                ago(now, e.start_time)
            ),
            e,
        );
    }
    let forced = trigger.request.as_ref().is_some_and(|r| r.force);
    if !forced
        && policy.cooldown > chrono::Duration::zero()
        && let Some(e) = newest.iter().find(|e| e.start_time > now - policy.cooldown)
    {
        return skip(
            SkipReason::Cooldown,
            format!(
                "execution {} of {p} started {} ({}), within the {} cooldown",
                e.arn,
                ago(now, e.start_time),
                e.status,
                settings::format_duration(policy.cooldown)
            ),
            e,
        );
    }
    if trigger.kind == TriggerKind::Schedule
        && let Some(e) = newest.iter().find(|e| {
            is_drift(e)
                && e.status == ExecutionStatus::Succeeded
                && e.start_time > now - policy.schedule_period
        })
    {
        return skip(
            SkipReason::RecentDriftRetrain,
            format!(
                "drift-triggered execution {} of {p} succeeded (started {}), within the {} schedule period",
                e.arn,
                ago(now, e.start_time),
                settings::format_duration(policy.schedule_period)
            ),
            e,
        );
    }
    Decision::Start
}

/// What happened to a trigger.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome")]
pub enum Outcome {
    #[serde(rename_all = "camelCase")]
    Started {
        request: StartExecution,
        execution_arn: String,
    },
    #[serde(rename_all = "camelCase")]
    Skipped {
        /// The pipeline, when the trigger got as far as being mapped to one.
        pipeline: Option<String>,
        skip: Skip,
    },
}

/// What can go wrong evaluating a trigger.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetrainError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl Classify for RetrainError {
    fn class(&self) -> ErrorClass {
        match self {
            RetrainError::Plan(e) => e.class(),
            RetrainError::Aws(e) => e.class(),
            RetrainError::Lease(e) => e.class(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RetrainError::Plan(e) => e.code(),
            RetrainError::Aws(e) => e.code(),
            RetrainError::Lease(e) => e.code(),
        }
    }
}

/// The settings [`evaluate`] needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetrainSettings {
    pub routes: PipelineRoutes,
    pub parameters: ParameterSettings,
    pub policy: Policy,
}

/// The per-pipeline lease [`evaluate_with`] holds around check-then-start (see [`lease`]).
#[derive(Clone, Copy)]
pub struct Lease<'a> {
    pub store: &'a dyn ConditionalStore,
    pub config: &'a LeaseConfig,
}

/// How long after a start the lease's record of it stands in for a listing that does not show it
/// yet.
pub const LISTING_LAG_ALLOWANCE: chrono::Duration = chrono::Duration::minutes(5);

/// [`evaluate_with`] without a lease, at `now`: check-then-start is then atomic only for
/// redeliveries of one trigger (by its token), not across different triggers.
pub async fn evaluate(
    trigger: &Trigger,
    runner: &dyn PipelineRunner,
    settings: &RetrainSettings,
    now: DateTime<Utc>,
) -> Result<Outcome, RetrainError> {
    let clock: Clock = crate::clock::fixed_clock(now);
    evaluate_with(trigger, runner, None, settings, &clock).await
}

/// Prechecks, plans, and then — holding the pipeline's lease when there is one — lists the
/// pipeline's recent executions, decides, and starts.
pub async fn evaluate_with(
    trigger: &Trigger,
    runner: &dyn PipelineRunner,
    lease: Option<Lease<'_>>,
    settings: &RetrainSettings,
    clock: &Clock,
) -> Result<Outcome, RetrainError> {
    if let Some(skip) = precheck(trigger) {
        let pipeline = route(trigger, &settings.routes).ok();
        return Ok(Outcome::Skipped { pipeline, skip });
    }
    let request = plan(trigger, &settings.routes, &settings.parameters)?;
    let Some(lease) = lease else {
        return check_then_start(trigger, request, runner, settings, clock(), None)
            .await
            .map(|(outcome, _)| outcome);
    };
    let Some(held) = lease::acquire(
        lease.store,
        lease.config,
        &request.pipeline,
        &request.client_request_token,
        clock,
    )
    .await?
    else {
        // A twin delivery of this trigger holds it: the token makes the race safe.
        return check_then_start(trigger, request, runner, settings, clock(), None)
            .await
            .map(|(outcome, _)| outcome);
    };
    let result = check_then_start(
        trigger,
        request,
        runner,
        settings,
        clock(),
        Some(&held.state),
    )
    .await;
    let started = match &result {
        Ok((_, started)) => started.clone(),
        Err(_) => None,
    };
    let object = held.object.clone();
    if let Err(e) = lease::release(lease.store, held, started).await {
        // The decision stands; the lease expires on its own.
        tracing::warn!(lease = %object, error = %e, "could not release the pipeline lease");
    }
    result.map(|(outcome, _)| outcome)
}

async fn check_then_start(
    trigger: &Trigger,
    request: StartExecution,
    runner: &dyn PipelineRunner,
    settings: &RetrainSettings,
    now: DateTime<Utc>,
    lease: Option<&lease::LeaseState>,
) -> Result<(Outcome, Option<ExecutionSummary>), RetrainError> {
    let mut executions =
        recent_executions(runner, &request.pipeline, now - settings.policy.lookback()).await?;
    if let Some(state) = lease {
        executions = lease::with_last_started(executions, state, now, LISTING_LAG_ALLOWANCE);
    }
    match decide(trigger, &request, &executions, now, &settings.policy) {
        Decision::Skip(skip) => Ok((
            Outcome::Skipped {
                pipeline: Some(request.pipeline),
                skip,
            },
            None,
        )),
        Decision::Start => {
            let execution_arn = runner.start_execution(&request).await?;
            let started = ExecutionSummary {
                arn: execution_arn.clone(),
                status: ExecutionStatus::Executing,
                start_time: now,
                display_name: Some(request.display_name.clone()),
                description: Some(request.description.clone()),
            };
            Ok((
                Outcome::Started {
                    request,
                    execution_arn,
                },
                Some(started),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
