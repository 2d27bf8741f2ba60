//! Many monitored endpoints in one invocation: the catalogue's schedule fans out over every
//! monitored endpoint ([`fan_out`]), each endpoint ([`MonitorTarget`]) with its own settings and
//! window rule, through the same per-target steps a single endpoint takes ([`run_target`]: plan
//! the trigger's windows, the burst rule's quiet wait, the served package's baselines, then
//! [`super::run::evaluate_window_from`] per window — dedup, publication ledger, reports, metrics,
//! event). The single-endpoint handler path calls [`run_target`] too, so there is one copy of it.
//!
//! # Rules
//! * **Each window of each endpoint once**: targets are distinct by what names their reports and
//!   metrics (endpoint, variant, schedule, report folder); a second target with the same identity
//!   is not run and is listed as `Ignored` with the reason.
//! * **Concurrency within a bound**: at most `concurrency` targets run at the same time
//!   (`FANOUT_CONCURRENCY`, default [`DEFAULT_CONCURRENCY`]), on the invocation's task; each
//!   window's engine runs on a blocking thread, so CPU and I/O overlap. Each running window's
//!   ground truth may take `1 / concurrency` of the function's memory share
//!   ([`super::RunContext::concurrent_windows`]), so the windows together stay within it.
//! * **One target's failure does not stop the others**: every target runs to its end; the output
//!   lists each target's outcome ([`TargetOutcome`]: its windows, or the error and its class).
//!
//! # Partial failure and the invocation's result
//! A failed target fails the invocation with the *worst* target error, the retryable one first
//! ([`crate::error::worst`], the same rule as a single endpoint's windows), its message naming
//! every failed target. The reasons: the failure is seen where Lambda failures are seen (the
//! `Errors` metric, the function's `OnFailure` destination with `Retryable.<Code>` or
//! `Permanent.<Code>`), and a retryable failure (throttling, a 5xx) is redelivered. A Lambda
//! asynchronous retry re-runs the *whole* invocation; that is safe because a window run again is
//! idempotent: its reports are overwritten with the same content, its `runId` is the same for the
//! same inputs, and the publication ledger makes that same run resume after the `PutMetricData`
//! calls already sent — none when it had completed — while a run from other inputs is a
//! `revision`, which puts no datum in either stream ([`super::publication`]); events are sent
//! again with the same `runId`, for consumers to drop. What a
//! retry costs is the recomputation of the targets that had completed; with a permanent failure
//! (a broken capture file of one model) that is two more runs of every target before the event
//! goes to the `OnFailure` destination — set the function's `MaximumRetryAttempts` lower when the
//! catalogue is large and that cost matters more than redelivery of transient failures.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;

use super::baselines::{Baselines, resolve_prediction_baseline, resolve_served_baselines};
use super::dedup::Decision;
use super::error::RunError;
use super::layout::Target;
use super::outcome::{OutcomeStatus, WindowOutcome};
use super::run::{Clock, RunContext, Source, evaluate_window_from};
use super::scaleout::ScaleOut;
use super::settings::Settings;
use super::trigger::{Planned, Trigger, plan_windows};
use super::window::WindowRule;
use crate::error::{Classify, ErrorClass};
use crate::events::EventError;
use crate::publish::{EventPublisher, MetricPublisher};
use crate::registry::ModelRegistry;
use crate::storage::ObjectStore;

use super::served::ServingReads;

/// Targets run at the same time by default: a 1-2 GB function (0.6-1.2 vCPU) spends most of a
/// small window's time waiting on S3, CloudWatch and EventBridge, so eight overlap well while
/// each window's ground truth still gets an eighth of the memory share.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The largest `FANOUT_CONCURRENCY`.
pub const MAX_CONCURRENCY: usize = 64;

/// The ports a target's run touches.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub registry: &'a dyn ModelRegistry,
    pub serving: &'a dyn ServingReads,
    pub store: &'a Arc<dyn ObjectStore>,
    pub metrics: &'a dyn MetricPublisher,
    pub events: &'a dyn EventPublisher,
    pub clock: &'a Clock,
}

/// The function's settings every target shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Real-time capture files started this long before a window are read too.
    pub capture_lookback: Duration,
    /// Objects downloaded ahead of the engine (per window).
    pub read_concurrency: usize,
    /// S3-event runs wait this long so a burst of uploads settles.
    pub dedup_quiet: std::time::Duration,
}

/// Who a target is, as the output names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetId {
    /// The monitored endpoint (empty in batch-transform mode).
    pub endpoint_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `staging` or `production` (catalogue targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `catalogue s3://...@"etag"` or `environment`.
    pub source: String,
}

/// One monitored endpoint: who it is, its settings (a direct request's overrides applied) and
/// its window rule.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorTarget {
    pub id: TargetId,
    pub settings: Settings,
    pub window: WindowRule,
}

impl MonitorTarget {
    /// What names the target's reports and metrics: two targets with the same key would
    /// evaluate the same windows into the same reports.
    fn key(&self) -> String {
        let target = match self.settings.target() {
            Target::Endpoint {
                endpoint_name,
                variant_name,
            } => format!("endpoint {endpoint_name}/{variant_name}"),
            Target::BatchTransform => format!("batch {}", self.settings.capture),
        };
        format!(
            "{target} {} {}",
            self.settings.schedule_name, self.settings.report
        )
    }
}

/// What can fail a target before or outside its windows.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The trigger cannot be planned for this target (a direct request's window).
    #[error(transparent)]
    Event(#[from] EventError),
    /// Its baselines, or a window (the first failed window's error, the worst of them).
    #[error(transparent)]
    Run(#[from] RunError),
    /// Its settings cannot be used (a catalogue entry the monitoring cannot run, a request's
    /// override), `Permanent.InvalidTarget`.
    #[error("{0}")]
    Invalid(String),
}

impl Classify for TargetError {
    fn class(&self) -> ErrorClass {
        match self {
            TargetError::Event(e) => e.class(),
            TargetError::Run(e) => e.class(),
            TargetError::Invalid(_) => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            TargetError::Event(e) => e.code(),
            TargetError::Run(e) => e.code(),
            TargetError::Invalid(_) => "InvalidTarget",
        }
    }
}

/// One target's run of a trigger.
#[derive(Debug, Default)]
pub struct TargetRun {
    /// Why the trigger has nothing for this target (no window was planned).
    pub ignored: Option<String>,
    /// [`Baselines::describe`], with a model package group or a prediction baseline.
    pub baseline: Option<Value>,
    pub windows: Vec<WindowOutcome>,
    /// The errors of the failed windows (each also a `Failed` entry in `windows`).
    pub errors: Vec<RunError>,
}

/// One target's run of a trigger: its windows planned with its own rule, the burst rule's quiet
/// wait for an S3-triggered run, its baselines (once), then each window
/// ([`evaluate_window_from`], streamed here or handed to `scale`). A window's failure is recorded
/// in `windows` and `errors` and does not stop the next window; an `Err` is a failure before any
/// window (the plan, the baselines).
pub async fn run_target(
    ports: Ports<'_>,
    limits: &Limits,
    trigger: &Trigger,
    settings: &Settings,
    rule: &WindowRule,
    scale: Option<&ScaleOut<'_>>,
    concurrent_windows: usize,
) -> Result<TargetRun, TargetError> {
    let now = (ports.clock)();
    let mut run = TargetRun::default();
    let planned = match plan_windows(trigger, rule, settings.ground_truth.as_ref(), now)? {
        Ok(p) => p,
        Err(reason) => {
            run.ignored = Some(reason);
            return Ok(run);
        }
    };
    let s3_object = match trigger {
        Trigger::GroundTruthUpload { object, .. } => Some(object.clone()),
        _ => None,
    };
    let open =
        |p: Planned| WindowOutcome::skipped(p.window, &Decision::Open, p.skip.unwrap_or_default());
    if planned.iter().all(|p| p.skip.is_some()) {
        run.windows = planned.into_iter().map(open).collect();
        return Ok(run);
    }
    if s3_object.is_some() && !limits.dedup_quiet.is_zero() {
        tokio::time::sleep(limits.dedup_quiet).await;
    }
    let mut baselines = match &settings.model_package_group {
        Some(g) => resolve_served_baselines(
            ports.registry,
            ports.serving,
            ports.store.as_ref(),
            g,
            &settings.target(),
        )
        .await
        .map_err(RunError::from)?,
        None => Baselines::default(),
    };
    resolve_prediction_baseline(
        ports.store.as_ref(),
        &mut baselines,
        settings
            .prediction_baseline
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        settings.prediction_feature.as_deref(),
    )
    .await
    .map_err(RunError::from)?;
    let baseline_info = (settings.model_package_group.is_some() || baselines.prediction.is_some())
        .then(|| baselines.describe(settings.model_package_group.as_deref()));
    run.baseline = baseline_info.clone();
    let ctx = RunContext {
        trigger: trigger.kind(),
        settings,
        baselines: &baselines,
        baseline_info: baseline_info.as_ref(),
        window_rule: rule,
        capture_lookback: limits.capture_lookback,
        read_concurrency: limits.read_concurrency,
        concurrent_windows: concurrent_windows.max(1),
    };
    for p in planned {
        let w = p.window;
        if p.skip.is_some() {
            run.windows.push(open(p));
            continue;
        }
        let source = match scale {
            Some(scale) => Source::ScaleOut(scale),
            None => Source::Stream,
        };
        let evaluated = evaluate_window_from(
            ports.store,
            ports.metrics,
            ports.events,
            ports.clock,
            &ctx,
            w,
            s3_object.as_ref(),
            source,
        )
        .await;
        match evaluated {
            Ok(o) => run.windows.push(o),
            Err(e) => {
                tracing::error!(endpoint = settings.endpoint_name.as_deref().unwrap_or_default(), window = %w, error = %e, error_type = e.error_type(), "window failed");
                run.windows.push(WindowOutcome::failed(w, e.to_string()));
                run.errors.push(e);
            }
        }
    }
    Ok(run)
}

/// A target's result in the fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetStatus {
    /// Every planned window was evaluated or skipped by the rules.
    Completed,
    /// The target, or at least one of its windows, failed (the others went on).
    Failed,
    /// Nothing to do for this target (a label upload not under its prefix, a duplicate target).
    Ignored,
}

/// One target's outcome.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetOutcome {
    pub target: TargetId,
    pub status: TargetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
    pub windows: Vec<WindowOutcome>,
    /// The worst error's `Retryable.<Code>` / `Permanent.<Code>` and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The target's errors (its own, or its failed windows').
    #[serde(skip)]
    pub errors: Vec<TargetError>,
}

impl TargetOutcome {
    fn of(target: TargetId, result: Result<TargetRun, TargetError>) -> Self {
        let (run, errors) = match result {
            Ok(mut run) => {
                let errors = std::mem::take(&mut run.errors)
                    .into_iter()
                    .map(TargetError::Run)
                    .collect::<Vec<_>>();
                (run, errors)
            }
            Err(e) => (TargetRun::default(), vec![e]),
        };
        let worst = worst(&errors);
        let status = if worst.is_some() {
            TargetStatus::Failed
        } else if run.ignored.is_some() {
            TargetStatus::Ignored
        } else {
            TargetStatus::Completed
        };
        TargetOutcome {
            target,
            status,
            error_type: worst.map(|e| e.error_type()),
            error: worst.map(ToString::to_string),
            ignored: run.ignored,
            baseline: run.baseline,
            windows: run.windows,
            errors,
        }
    }

    /// A target that could not be built (its settings), listed as failed.
    pub fn failed(target: TargetId, error: TargetError) -> Self {
        TargetOutcome::of(target, Err(error))
    }

    /// A target not run, and why.
    pub fn ignored(target: TargetId, reason: String) -> Self {
        TargetOutcome::of(
            target,
            Ok(TargetRun {
                ignored: Some(reason),
                ..TargetRun::default()
            }),
        )
    }

    /// Windows evaluated (reports written), of any status.
    pub fn evaluated(&self) -> usize {
        self.windows
            .iter()
            .filter(|w| matches!(w.status, OutcomeStatus::Evaluated(_)))
            .count()
    }
}

/// [`crate::error::worst`] over borrowed errors: the first retryable one, else the first.
fn worst(errors: &[TargetError]) -> Option<&TargetError> {
    errors
        .iter()
        .find(|e| e.is_retryable())
        .or_else(|| errors.first())
}

/// Runs every target's windows of `trigger`, at most `concurrency` targets at a time, each to its
/// end whatever the others do; the outcomes in the order of `targets`. A target with the identity
/// of an earlier one is listed as `Ignored` (each window of each endpoint once).
pub async fn fan_out(
    ports: Ports<'_>,
    limits: &Limits,
    trigger: &Trigger,
    targets: Vec<MonitorTarget>,
    concurrency: usize,
) -> Vec<TargetOutcome> {
    let concurrency = concurrency.clamp(1, MAX_CONCURRENCY);
    let mut seen: HashMap<_, String> = HashMap::new();
    let mut outcomes: Vec<Option<TargetOutcome>> = Vec::with_capacity(targets.len());
    let mut runnable = Vec::new();
    for (i, t) in targets.into_iter().enumerate() {
        match seen.get(&t.key()) {
            Some(first) => {
                let reason = format!(
                    "the same endpoint, variant, schedule and report folder as {first}: each window is evaluated once"
                );
                outcomes.push(Some(TargetOutcome::ignored(t.id, reason)));
            }
            None => {
                seen.insert(t.key(), describe(&t.id));
                outcomes.push(None);
                runnable.push((i, t));
            }
        }
    }
    let running = concurrency.min(runnable.len()).max(1);
    let done: Vec<(usize, TargetOutcome)> = stream::iter(runnable)
        .map(|(i, t)| async move {
            let started = std::time::Instant::now();
            let result = run_target(
                ports,
                limits,
                trigger,
                &t.settings,
                &t.window,
                None,
                running,
            )
            .await;
            let outcome = TargetOutcome::of(t.id, result);
            tracing::info!(
                endpoint = outcome.target.endpoint_name,
                group = outcome.target.group.as_deref().unwrap_or_default(),
                status = ?outcome.status,
                windows = outcome.windows.len(),
                error_type = outcome.error_type.as_deref().unwrap_or_default(),
                millis = started.elapsed().as_millis() as u64,
                "target done"
            );
            (i, outcome)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (i, o) in done {
        outcomes[i] = Some(o);
    }
    outcomes.into_iter().flatten().collect()
}

/// `endpoint "x" (group "g", production)`.
pub fn describe(id: &TargetId) -> String {
    let mut s = format!("endpoint {:?}", id.endpoint_name);
    match (&id.group, &id.stage) {
        (Some(g), Some(st)) => s.push_str(&format!(" (group {g:?}, {st})")),
        (Some(g), None) => s.push_str(&format!(" (group {g:?})")),
        _ => {}
    }
    s
}

/// Counts of a fan-out's outcomes: `(completed, failed, ignored)`.
pub fn tally(outcomes: &[TargetOutcome]) -> (usize, usize, usize) {
    outcomes
        .iter()
        .fold((0, 0, 0), |(c, f, i), o| match o.status {
            TargetStatus::Completed => (c + 1, f, i),
            TargetStatus::Failed => (c, f + 1, i),
            TargetStatus::Ignored => (c, f, i + 1),
        })
}

#[cfg(test)]
mod tests;
