//! retrain-on-alarm: starts the model-build pipeline exactly once per reason to retrain.
//!
//! Input (samples in `events/retrain-*.json`): an EventBridge `CloudWatch Alarm State Change`
//! event, a CloudWatch alarm-action payload (`alarmData`), an EventBridge `Scheduled Event` (a
//! recheck tick when it names `RECHECK_RULE`: `events/retrain-recheck.json`), or a
//! `Retrain Requested` event (`{"reason", "pipelineName"?, "parameters"?, "requestId"?,
//! "force"?, "requestedBy"?}`). Anything else is a `Permanent.UnsupportedEvent` error saying what
//! is expected.
//!
//! The decision is [`driftloop::retrain`]'s: act only on a transition into ALARM; skip while an
//! execution of the pipeline is `Executing`, or one started within `COOLDOWN`; skip a scheduled
//! retrain when a drift-triggered execution succeeded within `SCHEDULE_PERIOD`; skip a redelivery
//! of a trigger that already started one, and a trigger older than `MAX_TRIGGER_AGE`. Executions start with a `ClientRequestToken` derived from
//! the trigger (alarm name + state timestamp), so concurrent redeliveries share one execution.
//!
//! Every outcome is logged, returned ([`Output`]) and published: a `Retraining Started` or
//! `Retraining Skipped` event (source `driftloop`) on `EVENT_BUS_NAME`, and a count metric
//! `RetrainingStarted` (dimension `Pipeline`) or `RetrainingSkipped` (`Pipeline`, `Reason`) in
//! `METRICS_NAMESPACE`. A publishing failure is logged and reported in `Output.publication` but
//! does not fail the invocation: the execution is what matters, and a retried invocation would
//! find it started and could only report a skip.
//!
//! Environment (validated at init; errors name the variable):
//! - `PIPELINE_NAME`: the default pipeline (name or ARN).
//! - `ALARM_PIPELINES`: per-trigger pipelines, `{"alarm": "pipeline", "churn-*": "churn-build"}`
//!   or `alarm=pipeline,churn-*=churn-build`; keys are alarm names or schedule rule names, a
//!   trailing `*` matches a prefix. At least one of the two is required.
//! - `COOLDOWN` (default `24h`): `0`, `90s`, `30m`, `6h`, `7d`.
//! - `SCHEDULE_PERIOD` (default `7d`): the period of the retraining schedule.
//! - `MAX_TRIGGER_AGE` (default `24h`, EventBridge's retry window; `0`: no limit): older
//!   triggers (a late redelivery, an archive replay) are skipped as `Stale`. The sample events
//!   in `events/` are old: invoke them with `MAX_TRIGGER_AGE=0`.
//! - `PIPELINE_PARAMETERS`: fixed parameters, a JSON object.
//! - `CONTEXT_PARAMETERS`: trigger facts to pass, `{"alarm": "TriggerAlarm", "value":
//!   "DriftValue"}` or `alarm=TriggerAlarm,value=DriftValue`; facts: trigger, alarm, metric,
//!   namespace, value, threshold, time, reason. Only configured ones are sent (SageMaker rejects
//!   parameters a pipeline does not define).
//! - `EVENT_BUS_NAME` (default: the account's default bus), `METRICS_NAMESPACE` (default
//!   `driftloop`).
//! - `LEASE_S3_URI` (`s3://bucket/prefix/`): where the per-pipeline leases live
//!   ([`driftloop::retrain::lease`]); with it, check-then-start is atomic per pipeline across
//!   *different* triggers at any concurrency (two alarms, an alarm and the schedule). Without it
//!   only redeliveries of one trigger are (by the token), which a warning at init says.
//! - `RECHECK_RULE`, `RECHECK_ALARM_PREFIX`: a `Scheduled Event` from the rule named
//!   `RECHECK_RULE` rechecks the alarms named `RECHECK_ALARM_PREFIX...` still in ALARM and
//!   retrains, once per transition, for those a skip deferred ([`driftloop::retrain::recheck`]).
//!   Both or neither.
//! - `CATALOGUE_S3_URI` (`s3://bucket/key.json`): the model catalogue ([`driftloop::catalogue`]),
//!   read once per invocation. A trigger naming one of a model's alarms or schedule rules (or a
//!   request naming its pipeline) starts that model's pipeline with its parameters and cooldown;
//!   any other trigger keeps the settings above, so `PIPELINE_NAME` / `ALARM_PIPELINES` are the
//!   single-model special case (optional with a catalogue). The recheck schedule uses the
//!   settings above only.
//! - `CATALOGUE_NAME_PREFIX`, `CATALOGUE_ALARM_PREFIX`: the stack's naming convention
//!   ([`driftloop::catalogue::convention`]); the catalogue is read under it (main.rs), so a
//!   pipeline or alarm the stack's IAM does not grant makes it invalid, naming the model and field.

use std::sync::Arc;

use driftloop::catalogue::retrain as catalogue;
use driftloop::catalogue::source::{CatalogueError, CatalogueSource};
use driftloop::config::{ConfigError, Env, Lookup};
use driftloop::error::{AwsError, Classify, ErrorClass};
use driftloop::events::EventError;
use driftloop::pipelines::PipelineRunner;
use driftloop::publish::{EventPublisher, MetricPublisher, validate_namespace};
use driftloop::retrain::lease::{ConditionalStore, LeaseConfig, LeaseError, LeaseSettings};
use driftloop::retrain::recheck::{AlarmStates, Declined, recheck};
use driftloop::retrain::report::{Destinations, publish};
use driftloop::retrain::settings::{
    format_duration, parse_context_parameters, parse_duration, parse_fixed_parameters,
    validate_pipeline,
};
use driftloop::retrain::{
    Lease, ParameterSettings, PipelineRoutes, PlanError, Policy, RetrainError, RetrainSettings,
    Trigger, TriggerKind, evaluate_with, parse_trigger,
};
use driftloop::storage::S3Uri;
use serde::Serialize;
use serde_json::Value;

pub use driftloop::clock::{Clock, system_clock};
pub use driftloop::retrain::report::{
    OutcomeKind, Publication, Report, SKIPPED_DETAIL_TYPE, SKIPPED_METRIC, STARTED_DETAIL_TYPE,
    STARTED_METRIC, SkipOut,
};

pub const PIPELINE_VAR: &str = "PIPELINE_NAME";
pub const ROUTES_VAR: &str = "ALARM_PIPELINES";
pub const COOLDOWN_VAR: &str = "COOLDOWN";
pub const SCHEDULE_PERIOD_VAR: &str = "SCHEDULE_PERIOD";
pub const MAX_TRIGGER_AGE_VAR: &str = "MAX_TRIGGER_AGE";
pub const PARAMETERS_VAR: &str = "PIPELINE_PARAMETERS";
pub const CONTEXT_VAR: &str = "CONTEXT_PARAMETERS";
pub const BUS_VAR: &str = "EVENT_BUS_NAME";
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
pub const LEASE_VAR: &str = "LEASE_S3_URI";
pub const RECHECK_RULE_VAR: &str = "RECHECK_RULE";
pub const RECHECK_PREFIX_VAR: &str = "RECHECK_ALARM_PREFIX";
pub const CATALOGUE_VAR: &str = "CATALOGUE_S3_URI";

/// How long a lease lasts: longer than the function's 60 s timeout, so a live holder never loses
/// it, and a dead one blocks its pipeline at most this long.
pub const LEASE_TTL_SECONDS: i64 = 90;
/// How long an invocation waits for another's lease (deciding takes well under a second).
pub const LEASE_WAIT_SECONDS: u64 = 20;

/// The recheck schedule's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecheckConfig {
    /// The rule whose `Scheduled Event`s are recheck ticks.
    pub rule: String,
    /// The alarms rechecked: those whose name starts with this.
    pub alarm_prefix: String,
}

pub const DEFAULT_NAMESPACE: &str = "driftloop";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub retrain: RetrainSettings,
    pub event_bus: Option<String>,
    pub namespace: String,
    pub lease: Option<LeaseConfig>,
    pub recheck: Option<RecheckConfig>,
    /// `CATALOGUE_S3_URI`.
    pub catalogue: Option<S3Uri>,
}

impl Config {
    pub fn from_env(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let catalogue = env.validated(CATALOGUE_VAR, S3Uri::parse)?;
        let default = env.validated(PIPELINE_VAR, validate_pipeline)?;
        let routes = env
            .validated(ROUTES_VAR, |v| {
                PipelineRoutes::parse(default.clone(), Some(v))
            })?
            .unwrap_or_else(|| PipelineRoutes {
                default: default.clone(),
                ..Default::default()
            });
        if routes.is_empty() && catalogue.is_none() {
            let hint = "the pipeline to start; or map alarms to pipelines in ALARM_PIPELINES, or name a catalogue in CATALOGUE_S3_URI";
            return Err(ConfigError::Missing {
                var: PIPELINE_VAR.to_owned(),
                hint: Some(hint),
            });
        }
        let defaults = Policy::default();
        let policy = Policy {
            cooldown: env
                .validated(COOLDOWN_VAR, parse_duration)?
                .unwrap_or(defaults.cooldown),
            schedule_period: env
                .validated(SCHEDULE_PERIOD_VAR, |v| {
                    parse_duration(v).and_then(|d| {
                        if d > chrono::Duration::zero() {
                            Ok(d)
                        } else {
                            Err("must be longer than 0".to_owned())
                        }
                    })
                })?
                .unwrap_or(defaults.schedule_period),
            max_trigger_age: env
                .validated(MAX_TRIGGER_AGE_VAR, parse_duration)?
                .unwrap_or(defaults.max_trigger_age),
        };
        let parameters = ParameterSettings {
            fixed: env
                .validated(PARAMETERS_VAR, parse_fixed_parameters)?
                .unwrap_or_default(),
            context: env
                .validated(CONTEXT_VAR, parse_context_parameters)?
                .unwrap_or_default(),
        };
        let namespace = env
            .validated(NAMESPACE_VAR, |v| {
                validate_namespace(v)
                    .map(|_| v.to_owned())
                    .map_err(|e| e.to_string())
            })?
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let lease = env
            .validated(LEASE_VAR, S3Uri::parse)?
            .map(|prefix| LeaseConfig {
                prefix,
                settings: LeaseSettings {
                    ttl: chrono::Duration::seconds(LEASE_TTL_SECONDS),
                    wait: std::time::Duration::from_secs(LEASE_WAIT_SECONDS),
                    ..LeaseSettings::default()
                },
            });
        let rule = env.validated(RECHECK_RULE_VAR, |v| {
            let v = v.trim();
            if v.is_empty() || v.len() > 64 {
                Err("expected an EventBridge rule name (1-64 characters)".to_owned())
            } else {
                Ok(v.to_owned())
            }
        })?;
        let prefix = env.optional(RECHECK_PREFIX_VAR);
        let recheck = match (rule, prefix) {
            (Some(rule), Some(alarm_prefix)) => Some(RecheckConfig { rule, alarm_prefix }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: RECHECK_PREFIX_VAR.to_owned(),
                    hint: Some(
                        "the prefix of the alarms the recheck schedule reads (RECHECK_RULE is set)",
                    ),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    var: RECHECK_RULE_VAR.to_owned(),
                    hint: Some(
                        "the name of the recheck schedule's rule (RECHECK_ALARM_PREFIX is set)",
                    ),
                });
            }
        };
        Ok(Config {
            retrain: RetrainSettings {
                routes,
                parameters,
                policy,
            },
            event_bus: env.optional(BUS_VAR),
            namespace,
            lease,
            recheck,
            catalogue,
        })
    }
}

pub struct Deps {
    pub pipelines: Arc<dyn PipelineRunner>,
    /// The leases' store (used when `config.lease` is set).
    pub leases: Arc<dyn ConditionalStore>,
    /// Alarm states (used by the recheck schedule).
    pub alarms: Arc<dyn AlarmStates>,
    pub events: Arc<dyn EventPublisher>,
    pub metrics: Arc<dyn MetricPublisher>,
    /// The catalogue (`config.catalogue`'s object); `None`: the environment's settings only.
    pub catalogue: Option<Arc<dyn CatalogueSource>>,
    pub config: Config,
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported event: {0}")]
    UnsupportedEvent(EventError),
    #[error("invalid event: {0}")]
    InvalidEvent(EventError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

impl From<EventError> for Error {
    fn from(e: EventError) -> Self {
        match e {
            EventError::UnexpectedShape { .. } => Error::UnsupportedEvent(e),
            EventError::Invalid { .. } => Error::InvalidEvent(e),
        }
    }
}

impl From<RetrainError> for Error {
    fn from(e: RetrainError) -> Self {
        match e {
            RetrainError::Plan(p) => Error::Plan(p),
            RetrainError::Aws(a) => Error::Aws(a),
            RetrainError::Lease(l) => Error::Lease(l),
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Aws(e) => e.class(),
            Error::Lease(e) => e.class(),
            Error::Catalogue(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::UnsupportedEvent(_) => "UnsupportedEvent",
            Error::InvalidEvent(_) => "InvalidEvent",
            Error::Plan(e) => e.code(),
            Error::Aws(e) => e.code(),
            Error::Lease(e) => e.code(),
            Error::Catalogue(e) => e.code(),
        }
    }
}

driftloop::impl_diagnostic!(Error);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    #[serde(flatten)]
    pub report: Report,
    pub publication: Publication,
    /// The catalogue model the trigger was for (its group), with the catalogue's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<CatalogueModel>,
}

/// The catalogue entry a trigger was served by.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueModel {
    pub group: String,
    /// `s3://bucket/key@"etag"`.
    pub catalogue: String,
}

/// What a recheck tick did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecheckOutput {
    pub rule: String,
    pub alarm_prefix: String,
    /// One per alarm in ALARM: started, or skipped with the reason (deferred to the next tick
    /// while it still holds).
    pub outcomes: Vec<Output>,
    /// Alarms the recheck will not retrain for, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub declined: Vec<Declined>,
    /// Alarms whose evaluation failed (`<errorType>: <message>`); the invocation then fails too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What an invocation returns: one trigger's outcome, or a recheck tick's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Trigger(Box<Output>),
    Recheck(RecheckOutput),
}

/// The function's entry point: a recheck tick (a `Scheduled Event` of `RECHECK_RULE`) or one
/// trigger ([`handle`]).
pub async fn handle_event(event: Value, deps: &Deps) -> Result<Response, Error> {
    let now = (deps.clock)();
    let trigger =
        parse_trigger(event, now).inspect_err(|e| tracing::warn!(error = %e, "rejected event"))?;
    match &deps.config.recheck {
        Some(r) if trigger.kind == TriggerKind::Schedule && trigger.name == r.rule => {
            recheck_tick(r, deps).await.map(Response::Recheck)
        }
        _ => handle_trigger(trigger, deps)
            .await
            .map(|o| Response::Trigger(Box::new(o))),
    }
}

fn lease(deps: &Deps) -> Option<Lease<'_>> {
    deps.config.lease.as_ref().map(|config| Lease {
        store: deps.leases.as_ref(),
        config,
    })
}

/// One trigger: evaluated, logged, published.
pub async fn handle(event: Value, deps: &Deps) -> Result<Output, Error> {
    let now = (deps.clock)();
    let trigger =
        parse_trigger(event, now).inspect_err(|e| tracing::warn!(error = %e, "rejected event"))?;
    handle_trigger(trigger, deps).await
}

async fn handle_trigger(trigger: Trigger, deps: &Deps) -> Result<Output, Error> {
    // The catalogue, read once for this invocation (a new upload counts from the next one).
    let loaded = match &deps.catalogue {
        Some(source) => Some(
            source
                .load()
                .await
                .inspect_err(|e| tracing::error!(error = %e, "the catalogue cannot be read"))?,
        ),
        None => None,
    };
    let served = loaded.as_ref().and_then(|l| {
        catalogue::model_for(&trigger, &l.catalogue).map(|m| {
            (
                catalogue::settings(m, &trigger, &deps.config.retrain),
                CatalogueModel {
                    group: m.group.clone(),
                    catalogue: l.describe(),
                },
            )
        })
    });
    let (settings, model) = match served {
        Some((settings, model)) => {
            tracing::info!(
                trigger = trigger.name,
                group = model.group,
                catalogue = model.catalogue,
                "the catalogue's model"
            );
            (std::borrow::Cow::Owned(settings), Some(model))
        }
        None => (std::borrow::Cow::Borrowed(&deps.config.retrain), None),
    };
    let outcome = evaluate_with(
        &trigger,
        deps.pipelines.as_ref(),
        lease(deps),
        &settings,
        &deps.clock,
    )
    .await
    .map_err(Error::from)?;
    let mut output = report_and_publish(trigger, outcome, deps).await;
    output.model = model;
    Ok(output)
}

async fn report_and_publish(
    trigger: Trigger,
    outcome: driftloop::retrain::Outcome,
    deps: &Deps,
) -> Output {
    let now = (deps.clock)();
    let report = Report::new(trigger, outcome);
    let pipeline = report.pipeline_name.as_deref().unwrap_or("-");
    match (&report.outcome, &report.skip) {
        (OutcomeKind::Started, _) => tracing::info!(
            pipeline,
            execution = report.pipeline_execution_arn.as_deref().unwrap_or_default(),
            display_name = report.display_name.as_deref().unwrap_or_default(),
            trigger = report.trigger.kind.as_str(),
            reason = report.trigger.reason,
            "retraining started"
        ),
        (OutcomeKind::Skipped, Some(skip)) => tracing::info!(
            pipeline,
            skip_reason = skip.code.as_str(),
            trigger = report.trigger.kind.as_str(),
            cooldown = format_duration(deps.config.retrain.policy.cooldown),
            "retraining skipped: {}",
            skip.message
        ),
        (OutcomeKind::Skipped, None) => {}
    }
    let to = Destinations {
        bus: deps.config.event_bus.as_deref(),
        namespace: &deps.config.namespace,
    };
    let publication = publish(
        &report,
        deps.events.as_ref(),
        deps.metrics.as_ref(),
        to,
        now,
    )
    .await;
    Output {
        report,
        publication,
        model: None,
    }
}

/// A recheck tick: every alarm still in ALARM evaluated as its transition's trigger; each outcome
/// published like a trigger's. A failed evaluation fails the invocation (after the others ran),
/// so the tick is retried; what it already started is then `AlreadyStarted`.
pub async fn recheck_tick(r: &RecheckConfig, deps: &Deps) -> Result<RecheckOutput, Error> {
    let rechecked = recheck(
        deps.alarms.as_ref(),
        &r.alarm_prefix,
        deps.pipelines.as_ref(),
        lease(deps),
        &deps.config.retrain,
        &deps.clock,
    )
    .await?;
    for d in &rechecked.declined {
        tracing::warn!(alarm = d.alarm, "recheck declined: {}", d.message);
    }
    let mut out = RecheckOutput {
        rule: r.rule.clone(),
        alarm_prefix: r.alarm_prefix.clone(),
        outcomes: Vec::new(),
        declined: rechecked.declined,
        errors: Vec::new(),
    };
    let mut worst: Option<Error> = None;
    for (trigger, result) in rechecked.evaluated {
        match result {
            Ok(outcome) => out
                .outcomes
                .push(report_and_publish(trigger, outcome, deps).await),
            Err(e) => {
                let e = Error::from(e);
                tracing::error!(alarm = trigger.name, error = %e, error_type = e.error_type(), "recheck failed");
                out.errors.push(format!("{}: {e}", e.error_type()));
                if worst.as_ref().is_none_or(|w| {
                    w.class() == ErrorClass::Permanent && e.class() == ErrorClass::Retryable
                }) {
                    worst = Some(e);
                }
            }
        }
    }
    match worst {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests;
