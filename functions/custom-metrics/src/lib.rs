//! custom-metrics: model monitoring on a schedule *and* when ground truth arrives.
//!
//! Each run evaluates one window ([`driftloop::monitoring::evaluate_window`]; see
//! [`driftloop::monitoring`] for the rules):
//! 1. lists the window's capture (real-time: `{capture}/{endpoint}/{variant}/yyyy/mm/dd/hh/`, plus
//!    the files started in the `CAPTURE_FILE_LOOKBACK_MINUTES` before the window; batch transform:
//!    the data files of the `/output` manifests) and ground truth (`{ground truth}/yyyy/mm/dd/hh/`
//!    over `[start, end + delay)`); records outside the window are counted and skipped;
//! 2. streams ground truth (the buffered side of the join), then capture, through the metrics
//!    engine with bounded memory ([`driftloop::storage::stream`]), with the baselines of the
//!    package the endpoint serves when a model package group is configured
//!    ([`driftloop::monitoring::baselines`]: endpoint → current endpoint config → the variant's
//!    model → its `ModelPackageName`; the group's latest approved package, reported as
//!    `baseline.source: "latestApproved"` with a `fallbackReason`, when the endpoint does not
//!    exist, its model names no package, or in batch-transform mode) — and the model output
//!    against its prediction baseline when one is found
//!    ([`driftloop::monitoring::baselines::resolve_prediction_baseline`]);
//! 3. writes `statistics.json`, `constraint_violations.json` and `summary.json` under the window's
//!    deterministic key (a re-run overwrites);
//! 4. puts the metrics and record counts to CloudWatch (≤ 1,000 datums and ≤ 512 KB per call,
//!    NaN/±inf never sent, a throttled or failed call retried on its own) — at most one datum set
//!    per window and stream ([`driftloop::monitoring::publication`]): a *provisional* run (label
//!    uploads) to the same metrics with `Publication=provisional`, the *final* run (the schedule)
//!    to Model Monitor's metric, which the alarm watches; a *revision* (a run after the final one)
//!    to neither;
//! 5. puts one event — `Model Monitoring Completed` or `Model Monitoring Violations`, source
//!    `driftloop` — with the window, status, counts, metrics, violations and report URIs.
//!
//! Triggers (samples in `events/custom-metrics-*.json`): an EventBridge `Scheduled Event`, an S3
//! `Object Created` event on the ground-truth prefix (deduplicated: [`driftloop::monitoring::dedup`]),
//! a direct invocation `{"window": {"start", "end"}, "splitMinutes"?, ...overrides}` (also as a
//! `Model Monitoring Requested` event from source `driftloop`).
//!
//! Labels go into the folder of their *upload* hour (`{ground truth}/yyyy/mm/dd/hh/`, as Model
//! Monitor expects) and belong to earlier predictions: a window reads the folders of
//! `[start, end + GROUND_TRUTH_DELAY_MINUTES)`. An upload evaluates, in the same invocation, every
//! window its folder feeds that has *ended* — with the stack's defaults (hourly, offset 60, delay =
//! offset), labels uploaded at 10:20 into `10/` compute 09:00-10:00 at 10:20, provisionally — and
//! skips windows still open (`open`). The scheduled run (11:xx for that window) is final
//! ([`driftloop::monitoring::trigger`]).
//!
//! **Scale-out** ([`driftloop::monitoring::scaleout`], docs/scale-out.md): with
//! `SCALE_OUT_STATE_MACHINE_ARN` set, a window whose listed input exceeds `SCALE_OUT_BYTES` (or
//! a direct request with `"scaleOut": true`) is not computed here: its objects are cut into
//! slices, and the Step Functions state machine runs this function as workers
//! (`{"scaleOut": {"mode": "worker", ...}}`: one slice's partial state to S3) and as the reduce
//! (`{"scaleOut": {"mode": "reduce", ...}}`: the merged window, published as below, once). The
//! window's entry is then `ScaledOut` with the execution's ARN ([`handle_any`]).
//!
//! **Many models** ([`driftloop::catalogue`], README "Many models (catalogue)"): with
//! `CATALOGUE_S3_URI`, the catalogue is read once per invocation (one `GetObject`, its ETag in
//! the output's `catalogue`), and each monitored stage of each model (`monitoring.stages`) is a
//! target with the entry's settings ([`driftloop::catalogue::monitoring`]: its endpoint,
//! capture, problem, windows, schedule name and baselines policy; this environment's
//! `REPORT_S3_URI`, `VARIANT_NAME`, `METRICS_NAMESPACE`, `METRICS_DIMENSIONS`, `EVENT_BUS_NAME`
//! as defaults). A `Scheduled Event` fans out over every target — and the environment's own
//! endpoint when the catalogue names neither its group nor its endpoint — each window of each
//! endpoint once, at most `FANOUT_CONCURRENCY` at a time, one failure not stopping the others
//! ([`driftloop::monitoring::fanout`]); the output's `targets` lists each one's outcome. A label
//! upload goes to the model whose `monitoring.groundTruthS3Uri` is the longest folder prefix of
//! the key (each of its monitored stages), or to the environment's endpoint under
//! `GROUND_TRUTH_S3_URI` when that prefix is longer; under neither it is ignored with the reason.
//! A direct request selects with `endpointName`, or `group` (+ `stage`); without either, the
//! environment's endpoint as before. A failed target fails the invocation with the worst target
//! error's class and code, naming every failed target ([`Error::Targets`]; the reasoning about
//! retries in [`driftloop::monitoring::fanout`]). Catalogue targets are computed in the
//! invocation (no scale-out yet). Adding a model is an upload: the next tick monitors it.
//!
//! A window without capture or without ground truth is the explicit status `NoData`
//! ([`driftloop::monitoring::outcome`]): its reports, its record counts with `window_empty = 1`,
//! and its event are published as for any other window.
//!
//! # The event's `detail` (and `summary.json`, which adds `fingerprint`, `evaluatedAt`,
//! `engineCounts`, `jobMessage`, `settings` and the readable `text`)
//! ```json
//! {"runId": "…", "status": "Completed | CompletedWithViolations | NoData", "reason": null,
//!  "window": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"},
//!  "trigger": "schedule | groundTruthUpload | direct",
//!  "publication": "provisional | final | revision",
//!  "target": {"mode": "endpoint", "endpointName": "churn", "variantName": "AllTraffic"},
//!  "monitoringScheduleName": "custom-metrics", "problemType": "BinaryClassification",
//!  "counts": {"records_captured": 0, "records_ground_truth": 0, "records_matched": 0,
//!             "records_unmatched_predictions": 0, "records_unmatched_labels": 0, "records_malformed": 0,
//!             "records_evaluated": 0, "records_outside_window": 0, "constraint_violations": 0, "window_empty": 0},
//!  "metrics": {"accuracy": 0.8, "feature_baseline_drift_age": 0.04},
//!  "violationCount": 0, "violations": [],
//!  "reports": {"statistics": "s3://…", "constraintViolations": "s3://…", "summary": "s3://…"},
//!  "errorSamples": ["s3://…/file.jsonl:17: …"], "inputs": {"captureObjects": 2, "…": 0},
//!  "baseline": {"modelPackageArn": "…", "source": "endpoint | latestApproved", "fallbackReason": null,
//!               "served": {"endpointName": "churn", "variantName": "AllTraffic", "endpointConfigName": "…",
//!                          "modelName": "…", "modelPackage": "…", "otherPackages": []},
//!               "uris": ["s3://…"], "dataQuality": false, "modelQuality": true, "calibration": false,
//!               "prediction": {"source": "package", "uri": "s3://…", "feature": "prediction"} | null,
//!               "problems": []}, "metricsPublished": 14,
//!  "metricsSkipped": null}
//! ```
//! `summary.json` also has `cloudwatch`: `{"final": {"runId", "publishedAt", "datums", "calls",
//! "callsSent"} | null, "provisional": … | null}`, what the window's two streams hold.
//! `"truncated": true` marks a detail shrunk to EventBridge's 256 KB (the reports are complete).
//! `runId` is the same for two runs over identical inputs, so a consumer can drop duplicates.
//!
//! # Wiring (infrastructure)
//! * Schedule: an EventBridge rule `rate(1 hour)` (or `cron(5 * * * ? *)`) targeting the function.
//! * Ground truth: EventBridge notifications on the bucket, and a rule
//!   `{"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name":
//!   ["<bucket>"]}, "object": {"key": [{"prefix": "<ground-truth prefix>/"}]}}}`. Give the function
//!   a timeout of `DEDUP_QUIET_SECONDS` plus the time of a run (one hour of capture: seconds).
//! * Permissions: `s3:ListBucket`/`s3:GetObject` on capture, ground truth and baselines,
//!   `s3:PutObject`/`s3:GetObject` on reports, `cloudwatch:PutMetricData`, `events:PutEvents` on the
//!   bus, `sagemaker:ListModelPackages`/`sagemaker:DescribeModelPackage` with a package group, and
//!   `sagemaker:DescribeEndpoint` (the monitored endpoint), `sagemaker:DescribeEndpointConfig`
//!   (`endpoint-config/*`: its configs' names are not known in advance) and
//!   `sagemaker:DescribeModel` (`model/*`) to find the package it serves. Without them the run
//!   falls back to the latest approved package and says so (`fallbackReason`: access denied).
//! * Staging and production: one function per monitored endpoint (as Model Monitor has one
//!   schedule per endpoint), each with its own `ENDPOINT_NAME`; the `Endpoint` dimension, the
//!   report folder and the baselines (each the package its endpoint serves) follow from it. With
//!   a catalogue, one function monitors every model's stages (`monitoring.stages`).
//! * Subscribe to results with `{"source": ["driftloop"], "detail-type": ["Model Monitoring
//!   Violations"]}` (or `Completed`, whose `detail.status` is `Completed` or `NoData`).

use std::sync::Arc;

use chrono::Duration;
use driftloop::catalogue::model::StageName;
use driftloop::catalogue::monitoring as catalogue_monitoring;
use driftloop::catalogue::source::{CatalogueError, CatalogueSource};
use driftloop::catalogue::validate::FieldError;
use driftloop::error::{AwsError, Classify, ErrorClass};
use driftloop::events::EventError;
use driftloop::monitoring::fanout::{
    self, Limits, MonitorTarget, Ports, TargetError, TargetId, TargetOutcome, TargetStatus,
    fan_out, run_target,
};
use driftloop::monitoring::layout::is_under;
use driftloop::monitoring::scaleout::{self, Executions, ScaleOut};
use driftloop::monitoring::{
    InvalidSetting, RunError, ServingReads, Trigger, WindowOutcome, parse_trigger,
};
use driftloop::publish::{EventPublisher, MetricPublisher, PublishError};
use driftloop::registry::ModelRegistry;
use driftloop::storage::{ObjectStore, S3Uri};
use serde::Serialize;
use serde_json::Value;

pub use driftloop::monitoring::{Clock, system_clock};

mod config;
pub use config::{Config, ScaleOutConfig};

pub struct Deps {
    pub registry: Arc<dyn ModelRegistry>,
    /// Which package the monitored endpoint serves ([`driftloop::monitoring::served`]).
    pub serving: Arc<dyn ServingReads>,
    pub store: Arc<dyn ObjectStore>,
    pub metrics: Arc<dyn MetricPublisher>,
    pub events: Arc<dyn EventPublisher>,
    pub config: Config,
    pub clock: Clock,
    /// Step Functions, for the scale-out mode (None: windows are always computed here).
    pub executions: Option<Arc<dyn Executions>>,
    /// The catalogue (`config.catalogue`'s object, read once per invocation); None: the
    /// environment's endpoint only.
    pub catalogue: Option<Arc<dyn CatalogueSource>>,
}

impl Deps {
    /// The dependencies without scale-out and without a catalogue (add them with
    /// [`Deps::with_executions`] and [`Deps::with_catalogue`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<dyn ModelRegistry>,
        serving: Arc<dyn ServingReads>,
        store: Arc<dyn ObjectStore>,
        metrics: Arc<dyn MetricPublisher>,
        events: Arc<dyn EventPublisher>,
        config: Config,
        clock: Clock,
    ) -> Deps {
        Deps {
            registry,
            serving,
            store,
            metrics,
            events,
            config,
            clock,
            executions: None,
            catalogue: None,
        }
    }

    pub fn with_catalogue(mut self, catalogue: Arc<dyn CatalogueSource>) -> Deps {
        self.catalogue = Some(catalogue);
        self
    }

    pub fn with_executions(mut self, executions: Arc<dyn Executions>) -> Deps {
        self.executions = Some(executions);
        self
    }

    fn ports(&self) -> Ports<'_> {
        Ports {
            registry: self.registry.as_ref(),
            serving: self.serving.as_ref(),
            store: &self.store,
            metrics: self.metrics.as_ref(),
            events: self.events.as_ref(),
            clock: &self.clock,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    BadEvent(#[from] EventError),
    #[error("invalid override {:?}: {}", .0.setting.field(), .0.reason)]
    InvalidOverride(InvalidSetting),
    /// The window's labels exceed the function's memory share (`Permanent.GroundTruthTooLarge`).
    #[error("{0}")]
    GroundTruthTooLarge(String),
    #[error("{0}")]
    InvalidSetting(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the metrics engine failed: {0}")]
    Engine(String),
    /// A scale-out step that cannot go on (`Permanent.ScaleOut`: a bad plan, slice or partial,
    /// a missing partial state, a scale-out request without the state machine).
    #[error("{0}")]
    ScaleOut(String),
    /// The catalogue cannot be read or is invalid (`CatalogueMissing`, `InvalidCatalogue`, or
    /// the S3 error's class).
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// Targets of a fan-out failed; the others ran to their end. Class and code are the worst
    /// target error's (a retryable one first).
    #[error("{failed} of {total} monitored endpoints failed (the others ran): {details}")]
    Targets {
        failed: usize,
        total: usize,
        details: String,
        class: ErrorClass,
        code: &'static str,
    },
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        match e {
            e @ RunError::GroundTruthTooLarge { .. } => Error::GroundTruthTooLarge(e.to_string()),
            e @ RunError::InvalidSetting(_) => Error::InvalidSetting(e.to_string()),
            RunError::Aws(e) => Error::Aws(e),
            RunError::Publish(e) => Error::Publish(e),
            RunError::Engine(m) => Error::Engine(m),
            e @ RunError::ScaleOut(_) => Error::ScaleOut(e.to_string()),
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Aws(e) => e.class(),
            Error::Publish(e) => e.class(),
            Error::Catalogue(e) => e.class(),
            Error::Targets { class, .. } => *class,
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::BadEvent(e) => e.code(),
            Error::InvalidOverride(_) => "InvalidOverride",
            Error::GroundTruthTooLarge(_) => "GroundTruthTooLarge",
            Error::InvalidSetting(_) => "InvalidSetting",
            Error::Aws(e) => e.code(),
            Error::Publish(e) => e.code(),
            Error::Engine(_) => "Engine",
            Error::ScaleOut(_) => "ScaleOut",
            Error::Catalogue(e) => e.code(),
            Error::Targets { code, .. } => code,
        }
    }
}

driftloop::impl_diagnostic!(Error);

/// What an invocation did. The environment's endpoint: its `windows` (and `baseline`). A
/// catalogue fan-out: `targets`, one entry per monitored endpoint with its own windows,
/// baseline and, when it failed, `errorType` and `error`; `windows` is then empty.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub trigger: Trigger,
    /// The catalogue read for this invocation (`s3://bucket/key@"etag"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
    pub windows: Vec<WindowOutcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetOutcome>,
}

/// The Step Functions steps of the scale-out mode, as the state machine sends them:
/// `{"scaleOut": {"mode": "worker" | "reduce", ...}}` ([`scaleout::Step`]), or an `ItemBatcher`
/// batch `{"Items": [{"Key": ...}, ...], "BatchInput": {"scaleOut": {"mode": "worker", ...}}}`.
/// None for any other event.
pub fn parse_step(event: &Value) -> Option<Result<scaleout::Step, Error>> {
    let bad = |e: serde_json::Error| {
        Error::BadEvent(EventError::Invalid {
            what: "scale-out step".into(),
            reason: e.to_string(),
        })
    };
    if let (Some(items), Some(step)) = (event.get("Items"), event["BatchInput"].get("scaleOut")) {
        let mut step = step.clone();
        step["items"] = items.clone();
        return Some(serde_json::from_value(step).map_err(bad));
    }
    let step = event.get("scaleOut").filter(|v| v.is_object())?;
    Some(serde_json::from_value(step.clone()).map_err(bad))
}

/// Every event: a scale-out step ([`parse_step`]: the worker's `{"runId", "partials"}`, the
/// reduce's window outcome), else a trigger ([`handle`]'s [`Output`]).
pub async fn handle_any(event: Value, deps: &Deps) -> Result<Value, Error> {
    match parse_step(&event) {
        None => Ok(serde_json::to_value(handle(event, deps).await?).unwrap_or(Value::Null)),
        Some(step) => match step? {
            scaleout::Step::Worker {
                plan,
                execution,
                item,
                items,
            } => {
                let items: Vec<_> = item.into_iter().chain(items).collect();
                let wc = scaleout::WorkerContext {
                    settings: &deps.config.settings,
                    read_concurrency: deps.config.read_concurrency,
                };
                Ok(scaleout::work(&deps.store, &wc, &plan, &execution, &items).await?)
            }
            scaleout::Step::Reduce { plan, execution } => {
                let rc = scaleout::ReduceContext {
                    settings: &deps.config.settings,
                    window_rule: &deps.config.window,
                    capture_lookback: Duration::minutes(i64::from(
                        deps.config.capture_lookback_minutes,
                    )),
                    read_concurrency: deps.config.read_concurrency,
                };
                let o = scaleout::reduce(
                    &deps.store,
                    deps.metrics.as_ref(),
                    deps.events.as_ref(),
                    &deps.clock,
                    &rc,
                    &plan,
                    &execution,
                )
                .await?;
                Ok(serde_json::to_value(o).unwrap_or(Value::Null))
            }
        },
    }
}

/// A direct request's choice of catalogue targets (`group`, `stage`; `endpointName` is an
/// override and selects too).
#[derive(Debug, Clone, Default, PartialEq)]
struct Selection {
    group: Option<String>,
    stage: Option<StageName>,
}

fn bad_request(reason: String) -> Error {
    Error::BadEvent(EventError::Invalid {
        what: "monitoring request".into(),
        reason,
    })
}

/// Takes a direct request's `group` and `stage` out of the event (or of a `Model Monitoring
/// Requested` event's `detail`), so the request's other fields parse as before.
fn take_selection(event: &mut Value) -> Result<Selection, Error> {
    let request = if driftloop::events::is_eventbridge(event) {
        if event["source"] != driftloop::monitoring::trigger::DRIFTLOOP_SOURCE {
            return Ok(Selection::default());
        }
        event.get_mut("detail")
    } else {
        Some(event)
    };
    let Some(Value::Object(m)) = request else {
        return Ok(Selection::default());
    };
    let text = |v: Value, field: &str| match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        other => Err(bad_request(format!(
            "{field:?} must be a non-empty string, got {other}"
        ))),
    };
    let group = m.remove("group").map(|v| text(v, "group")).transpose()?;
    let stage = match m.remove("stage").map(|v| text(v, "stage")).transpose()? {
        None => None,
        Some(s) => Some(match s.as_str() {
            "staging" => StageName::Staging,
            "production" => StageName::Production,
            _ => {
                return Err(bad_request(format!(
                    "\"stage\" {s:?}: expected staging or production"
                )));
            }
        }),
    };
    if stage.is_some() && group.is_none() {
        return Err(bad_request(
            "\"stage\" needs the model's \"group\" (or select the endpoint with \"endpointName\")"
                .into(),
        ));
    }
    Ok(Selection { group, stage })
}

/// What an invocation did, and the failure it ends with (the worst window or target error),
/// if any: [`handle`] returns the failure, after logging the output.
pub struct Evaluated {
    pub output: Output,
    pub failure: Option<Error>,
}

pub async fn handle(event: Value, deps: &Deps) -> Result<Output, Error> {
    let Evaluated { output, failure } = evaluate(event, deps).await?;
    match failure {
        None => Ok(output),
        Some(e) => {
            // A failed invocation returns only its error: the outcomes of the windows and
            // targets that ran are in this log line (and in their reports and events).
            tracing::error!(
                output = %serde_json::to_string(&output).unwrap_or_default(),
                error = %e,
                error_type = e.error_type(),
                "the invocation failed"
            );
            Err(e)
        }
    }
}

/// [`handle`], with the output kept when a window or target failed.
pub async fn evaluate(mut event: Value, deps: &Deps) -> Result<Evaluated, Error> {
    // A direct request's `"scaleOut": true` hands its windows to the state machine whatever
    // their size.
    let force = match event.as_object_mut().and_then(|m| m.remove("scaleOut")) {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(bad_request(format!(
                "\"scaleOut\" must be true or false, got {other}"
            )));
        }
    };
    let Some(source) = &deps.catalogue else {
        let trigger = parse_trigger(event)?;
        return single(trigger, force, deps, None).await;
    };
    let selection = take_selection(&mut event)?;
    let trigger = parse_trigger(event)?;
    // The catalogue, read once for this invocation (a new upload counts from the next one).
    let loaded = source
        .load()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "the catalogue cannot be read"))?;
    tracing::info!(catalogue = loaded.describe(), "catalogue read");
    let env = &deps.config.settings;
    // The environment's model is the single-model special case: monitored when the catalogue
    // names neither its group nor its endpoint (the catalogue wins for a model named in both).
    let env_covered = env
        .model_package_group
        .as_deref()
        .is_some_and(|g| loaded.catalogue.model(g).is_some())
        || env
            .endpoint_name
            .as_deref()
            .is_some_and(|e| loaded.catalogue.model_of_endpoint(e).is_some());
    let described = loaded.describe();
    let built = |targets: Vec<Result<MonitorTarget, (TargetId, FieldError)>>| {
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for t in targets {
            match t {
                Ok(t) => ok.push(t),
                Err((id, e)) => failed.push(TargetOutcome::failed(
                    id,
                    TargetError::Invalid(format!("the catalogue {described}: {e}")),
                )),
            }
        }
        (ok, failed)
    };
    let (targets, failed) = match &trigger {
        Trigger::Schedule { .. } => {
            let (mut targets, failed) = built(catalogue_monitoring::all_targets(&loaded, env));
            if !env_covered {
                targets.push(environment_target(deps));
            }
            (targets, failed)
        }
        Trigger::GroundTruthUpload { object, .. } => {
            let found = catalogue_monitoring::model_of_upload(&loaded, object);
            let env_len = env
                .ground_truth
                .as_ref()
                .filter(|gt| !env_covered && is_under(gt, object))
                .map(|gt| gt.key.trim_end_matches('/').len());
            let cat_len = found.and_then(|(_, m)| {
                let gt = S3Uri::parse(&m.monitoring.as_ref()?.ground_truth_s3_uri).ok()?;
                Some(gt.key.trim_end_matches('/').len())
            });
            match (found, env_len) {
                (_, Some(e)) if cat_len.is_none_or(|c| e > c) => {
                    return single(trigger, force, deps, Some(described)).await;
                }
                (Some((i, m)), _) => built(catalogue_monitoring::targets(&loaded, [(i, m)], env)),
                (None, _) => {
                    let reason = format!(
                        "{object} is not under the ground truth (monitoring.groundTruthS3Uri) of any monitored model in the catalogue {described}{}",
                        match (&env.ground_truth, env_covered) {
                            (Some(gt), false) => format!(", nor under GROUND_TRUTH_S3_URI {gt}"),
                            _ => String::new(),
                        }
                    );
                    tracing::warn!(reason, "event ignored");
                    return Ok(Evaluated {
                        output: Output {
                            trigger,
                            catalogue: Some(described),
                            ignored: Some(reason),
                            baseline: None,
                            windows: Vec::new(),
                            targets: Vec::new(),
                        },
                        failure: None,
                    });
                }
            }
        }
        Trigger::Direct { request } => {
            let endpoint = request.overrides.endpoint_name.as_deref();
            let chosen: Vec<(usize, &driftloop::catalogue::Model, StageName)> = match (
                &selection.group,
                endpoint,
            ) {
                (Some(g), _) => {
                    let Some((i, m)) = loaded
                        .catalogue
                        .models
                        .iter()
                        .enumerate()
                        .find(|(_, m)| m.group == *g)
                    else {
                        return Err(bad_request(format!(
                            "group {g:?} is not in the catalogue {described}"
                        )));
                    };
                    let Some(mon) = &m.monitoring else {
                        return Err(bad_request(format!(
                            "group {g:?} has no monitoring in the catalogue {described}"
                        )));
                    };
                    let stages: Vec<StageName> = mon
                        .stages
                        .iter()
                        .copied()
                        .filter(|s| selection.stage.is_none_or(|want| want == *s))
                        .filter(|s| {
                            endpoint.is_none_or(|e| {
                                m.stages.get(*s).is_some_and(|sp| sp.endpoint_name == e)
                            })
                        })
                        .collect();
                    if stages.is_empty() {
                        return Err(bad_request(format!(
                            "group {g:?} monitors no stage{}{} (monitoring.stages: {}) in the catalogue {described}",
                            selection
                                .stage
                                .map(|s| format!(" {:?}", s.as_str()))
                                .unwrap_or_default(),
                            endpoint
                                .map(|e| format!(" with endpoint {e:?}"))
                                .unwrap_or_default(),
                            mon.stages
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    stages.into_iter().map(|s| (i, m, s)).collect()
                }
                (None, requested) => {
                    // No selection: the environment's endpoint, as without a catalogue.
                    let wanted = requested.or(env.endpoint_name.as_deref());
                    match wanted.and_then(|e| catalogue_monitoring::monitored_stage(&loaded, e)) {
                        Some(found) => vec![found],
                        None if !env_covered
                            && (requested.is_none()
                                || requested == env.endpoint_name.as_deref()) =>
                        {
                            return single(trigger, force, deps, Some(described)).await;
                        }
                        None => {
                            return Err(bad_request(format!(
                                "endpoint {:?} is not a monitored stage of any model in the catalogue {described}{}",
                                wanted.unwrap_or_default(),
                                if env_covered {
                                    ""
                                } else {
                                    " nor the function's ENDPOINT_NAME"
                                }
                            )));
                        }
                    }
                }
            };
            let mut targets = Vec::new();
            let mut failed = Vec::new();
            for (i, m, stage) in chosen {
                let id = catalogue_monitoring::target_id(m, stage, &loaded);
                match catalogue_monitoring::stage_settings(i, m, stage, env) {
                    Ok((settings, window)) => {
                        // The request's overrides on top of the entry's settings (the endpoint
                        // and schedule, the metrics' identity, stay the entry's).
                        let settings = settings
                            .with_overrides(&request.overrides)
                            .map_err(Error::InvalidOverride)?;
                        targets.push(MonitorTarget {
                            id,
                            settings,
                            window,
                        });
                    }
                    Err(e) => failed.push(TargetOutcome::failed(
                        id,
                        TargetError::Invalid(format!("the catalogue {described}: {e}")),
                    )),
                }
            }
            (targets, failed)
        }
    };
    if force {
        return Err(Error::ScaleOut(
            "\"scaleOut\": true is for the environment's endpoint: catalogue targets are computed in this invocation (their scale-out is not supported yet)".into(),
        ));
    }
    let limits = limits(&deps.config);
    let mut outcomes = fan_out(
        deps.ports(),
        &limits,
        &trigger,
        targets,
        deps.config.fanout_concurrency,
    )
    .await;
    outcomes.extend(failed);
    let (completed, failed, ignored) = fanout::tally(&outcomes);
    tracing::info!(
        catalogue = described,
        targets = outcomes.len(),
        completed,
        failed,
        ignored,
        "fan-out done"
    );
    let failure = targets_failure(&outcomes);
    Ok(Evaluated {
        output: Output {
            trigger,
            catalogue: Some(described),
            ignored: None,
            baseline: None,
            windows: Vec::new(),
            targets: outcomes,
        },
        failure,
    })
}

/// The failure of a fan-out with failed targets: the worst target error's class and code (a
/// retryable one first, [`driftloop::error::worst`]'s rule), naming every failed target.
fn targets_failure(outcomes: &[TargetOutcome]) -> Option<Error> {
    let failed: Vec<&TargetOutcome> = outcomes
        .iter()
        .filter(|o| o.status == TargetStatus::Failed)
        .collect();
    let worst = failed
        .iter()
        .flat_map(|o| o.errors.iter())
        .find(|e| e.is_retryable())
        .or_else(|| failed.iter().flat_map(|o| o.errors.iter()).next())?;
    let details = failed
        .iter()
        .map(|o| {
            format!(
                "{}: {}: {}",
                fanout::describe(&o.target),
                o.error_type.as_deref().unwrap_or_default(),
                o.error.as_deref().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(Error::Targets {
        failed: failed.len(),
        total: outcomes.len(),
        details,
        class: worst.class(),
        code: worst.code(),
    })
}

fn limits(c: &Config) -> Limits {
    Limits {
        capture_lookback: Duration::minutes(i64::from(c.capture_lookback_minutes)),
        read_concurrency: c.read_concurrency,
        dedup_quiet: std::time::Duration::from_secs(c.dedup_quiet_seconds),
    }
}

/// The environment's model as a fan-out target.
fn environment_target(deps: &Deps) -> MonitorTarget {
    let s = &deps.config.settings;
    MonitorTarget {
        id: TargetId {
            endpoint_name: s.endpoint_name.clone().unwrap_or_default(),
            group: s.model_package_group.clone(),
            stage: None,
            source: "environment".into(),
        },
        settings: s.clone(),
        window: deps.config.window,
    }
}

/// The environment's one endpoint (the function without a catalogue, and the catalogue's
/// single-model special case): its windows, with the scale-out mode.
async fn single(
    trigger: Trigger,
    force: bool,
    deps: &Deps,
    catalogue: Option<String>,
) -> Result<Evaluated, Error> {
    let settings = deps
        .config
        .settings
        .with_overrides(&trigger.overrides())
        .map_err(Error::InvalidOverride)?;
    let sc = &deps.config.scale_out;
    let overrides = trigger.overrides();
    let scale = match (&deps.executions, &sc.state_machine_arn) {
        (Some(executions), Some(arn)) => Some(ScaleOut {
            executions: executions.as_ref(),
            state_machine_arn: arn,
            threshold_bytes: sc.threshold_bytes,
            slice_bytes: sc.slice_bytes,
            force,
            overrides: &overrides,
            reduce_memory_bytes: std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|mb| mb << 20),
        }),
        _ if force => {
            return Err(Error::ScaleOut(
                "\"scaleOut\": true needs the scale-out state machine (SCALE_OUT_STATE_MACHINE_ARN)"
                    .into(),
            ));
        }
        _ => None,
    };
    let run = run_target(
        deps.ports(),
        &limits(&deps.config),
        &trigger,
        &settings,
        &deps.config.window,
        scale.as_ref(),
        1,
    )
    .await
    .map_err(|e| match e {
        TargetError::Event(e) => Error::BadEvent(e),
        TargetError::Run(e) => Error::from(e),
        TargetError::Invalid(m) => Error::InvalidSetting(m),
    })?;
    if let Some(reason) = &run.ignored {
        tracing::warn!(reason, "event ignored");
    }
    // A retryable failure wins: redelivery can fix it, and completed windows are idempotent.
    let failure = driftloop::error::worst(run.errors).map(Error::from);
    Ok(Evaluated {
        output: Output {
            trigger,
            catalogue,
            ignored: run.ignored,
            baseline: run.baseline,
            windows: run.windows,
            targets: Vec::new(),
        },
        failure,
    })
}

#[cfg(test)]
mod tests;
