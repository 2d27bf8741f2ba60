//! custom-metrics: model monitoring on a schedule *and* when ground truth arrives.
//!
//! Each run evaluates one window (see [`driftloop::monitoring`] for the rules):
//! 1. lists the window's capture (real-time: `{capture}/{endpoint}/{variant}/yyyy/mm/dd/hh/`, plus
//!    the files started in the `CAPTURE_FILE_LOOKBACK_MINUTES` before the window; batch transform:
//!    the data files of the `/output` manifests) and ground truth (`{ground truth}/yyyy/mm/dd/hh/`
//!    over `[start, end + delay)`); records outside the window are counted and skipped;
//! 2. streams ground truth (the buffered side of the join), then capture, through the metrics
//!    engine with bounded memory ([`read`]), with the approved package's baselines when a model
//!    package group is configured;
//! 3. writes `statistics.json`, `constraint_violations.json` and `summary.json` under the window's
//!    deterministic key (a re-run overwrites);
//! 4. puts the metrics and record counts to CloudWatch (≤ 1,000 datums and ≤ 512 KB per call,
//!    NaN/±inf never sent, a throttled or failed call retried on its own);
//! 5. puts one event — `Model Monitoring Completed` or `Model Monitoring Violations`, source
//!    `driftloop` — with the window, status, counts, metrics, violations and report URIs.
//!
//! Triggers (samples in `events/custom-metrics-*.json`): an EventBridge `Scheduled Event`, an S3
//! `Object Created` event on the ground-truth prefix (deduplicated: [`driftloop::monitoring::dedup`]),
//! a direct invocation `{"window": {"start", "end"}, "splitMinutes"?, ...overrides}` (also as a
//! `Model Monitoring Requested` event from source `driftloop`).
//!
//! A window without capture or without ground truth is the explicit status `NoData`: its reports,
//! its record counts with `window_empty = 1`, and its event are published as for any other window.
//!
//! # The event's `detail` (and `summary.json`, which adds `fingerprint`, `evaluatedAt`,
//! `engineCounts`, `jobMessage`, `settings` and the readable `text`)
//! ```json
//! {"runId": "…", "status": "Completed | CompletedWithViolations | NoData", "reason": null,
//!  "window": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"},
//!  "trigger": "schedule | groundTruthUpload | direct",
//!  "target": {"mode": "endpoint", "endpointName": "churn", "variantName": "AllTraffic"},
//!  "monitoringScheduleName": "custom-metrics", "problemType": "BinaryClassification",
//!  "counts": {"records_captured": 0, "records_ground_truth": 0, "records_matched": 0,
//!             "records_unmatched_predictions": 0, "records_unmatched_labels": 0, "records_malformed": 0,
//!             "records_evaluated": 0, "records_outside_window": 0, "constraint_violations": 0, "window_empty": 0},
//!  "metrics": {"accuracy": 0.8, "feature_baseline_drift_age": 0.04},
//!  "violationCount": 0, "violations": [],
//!  "reports": {"statistics": "s3://…", "constraintViolations": "s3://…", "summary": "s3://…"},
//!  "errorSamples": ["s3://…/file.jsonl:17: …"], "inputs": {"captureObjects": 2, "…": 0},
//!  "baseline": {"modelPackageArn": "…", "problems": []}, "metricsPublished": 14}
//! ```
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
//!   bus, `sagemaker:ListModelPackages`/`sagemaker:DescribeModelPackage` with a package group.
//! * Subscribe to results with `{"source": ["driftloop"], "detail-type": ["Model Monitoring
//!   Violations"]}` (or `Completed`, whose `detail.status` is `Completed` or `NoData`).

pub mod read;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use driftloop::config::{ConfigError, Env, Lookup};
use driftloop::error::{AwsError, Classify, ErrorClass};
use driftloop::events::EventError;
use driftloop::metrics::{
    BaselineConstraints, BaselineStatistics, CaptureFormat, Engine, EngineError, JobResult,
    MetricKind, MonitorConfig, ProblemType,
};
use driftloop::monitoring::dedup::{self, Decision};
use driftloop::monitoring::layout::{self, ReportUris, Target};
use driftloop::monitoring::manifest::parse_manifest;
use driftloop::monitoring::report::{self, MetricTarget};
use driftloop::monitoring::window::iso;
use driftloop::monitoring::{Overrides, Trigger, Window, WindowRule, parse_trigger, plan_windows};
use driftloop::publish::{EventPublisher, MetricPublisher, PublishError, validate_namespace};
use driftloop::registry::{ModelRegistry, latest_approved};
use driftloop::storage::{ObjectInfo, ObjectStore, S3Uri};
use serde::Serialize;
use serde_json::{Value, json};

use read::{ReadError, stream_objects};

pub const SOURCE: &str = "driftloop";
/// CloudWatch accepts datums up to two weeks old; older windows (backfills) get reports and an
/// event, but no metrics.
pub const METRICS_MAX_AGE: Duration = Duration::days(14);
/// Attempts of one `PutMetricData` call / one `PutEvents` call (on top of the SDK's own retries).
pub const PUBLISH_ATTEMPTS: u32 = 5;

/// How capture is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CaptureMode {
    Realtime,
    BatchTransform,
}

impl CaptureMode {
    fn parse(s: &str) -> Result<CaptureMode, String> {
        match s.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "realtime" | "endpoint" => Ok(CaptureMode::Realtime),
            "batchtransform" | "batch" => Ok(CaptureMode::BatchTransform),
            _ => Err("expected realtime or batchTransform".into()),
        }
    }
}

fn parse_batch_format(s: &str) -> Result<CaptureFormat, String> {
    match s.to_ascii_lowercase().as_str() {
        "csv" => Ok(CaptureFormat::BatchCsv),
        "json" | "jsonl" | "jsonlines" => Ok(CaptureFormat::BatchJson),
        _ => Err("expected csv or json".into()),
    }
}

fn parse_problem(s: &str) -> Result<ProblemType, String> {
    ProblemType::parse(s).ok_or_else(|| {
        "expected Regression, BinaryClassification, MulticlassClassification or Forecast".into()
    })
}

fn parse_uri(s: &str) -> Result<S3Uri, String> {
    S3Uri::parse(s)
}

fn parse_dimensions(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected Name=Value"))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(format!("{part:?}: empty dimension name or value"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// The settings of one run: the environment's, with a direct request's overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub capture_mode: CaptureMode,
    pub endpoint_name: Option<String>,
    pub variant_name: String,
    pub capture: S3Uri,
    pub ground_truth: Option<S3Uri>,
    pub report: S3Uri,
    pub batch_format: CaptureFormat,
    pub problem_type: Option<ProblemType>,
    pub inference_attribute: Option<String>,
    pub probability_attribute: Option<String>,
    pub probability_threshold: f64,
    pub ground_truth_attribute: Option<String>,
    pub positive_label: String,
    pub negative_label: String,
    /// `None`: on when a data-quality baseline is found, or when there is no problem type.
    pub data_quality: Option<bool>,
    pub model_package_group: Option<String>,
    pub metrics_namespace: Option<String>,
    pub metrics_dimensions: Vec<(String, String)>,
    pub schedule_name: String,
    pub event_bus: Option<String>,
}

impl Settings {
    pub fn target(&self) -> Target {
        match self.capture_mode {
            CaptureMode::Realtime => Target::Endpoint {
                endpoint_name: self.endpoint_name.clone().unwrap_or_default(),
                variant_name: self.variant_name.clone(),
            },
            CaptureMode::BatchTransform => Target::BatchTransform,
        }
    }

    fn check(self) -> Result<Settings, (String, String)> {
        if self.capture_mode == CaptureMode::Realtime && self.endpoint_name.is_none() {
            return Err((
                "ENDPOINT_NAME".into(),
                "real-time monitoring needs the endpoint name".into(),
            ));
        }
        if self.problem_type.is_some() && self.ground_truth.is_none() {
            return Err((
                "GROUND_TRUTH_S3_URI".into(),
                "model quality (PROBLEM_TYPE) needs ground truth".into(),
            ));
        }
        if let Some(ns) = &self.metrics_namespace {
            validate_namespace(ns).map_err(|e| ("METRICS_NAMESPACE".to_owned(), e.to_string()))?;
        }
        if !(0.0..=1.0).contains(&self.probability_threshold) || self.probability_threshold.is_nan()
        {
            return Err((
                "PROBABILITY_THRESHOLD".into(),
                "must be between 0 and 1".into(),
            ));
        }
        for (name, v) in [
            (
                "ENDPOINT_NAME",
                self.endpoint_name.as_deref().unwrap_or("x"),
            ),
            ("VARIANT_NAME", &self.variant_name),
            ("MONITORING_SCHEDULE_NAME", &self.schedule_name),
        ] {
            if v.is_empty() || v.contains('/') || v.len() > 255 {
                return Err((name.into(), "must be 1-255 characters without '/'".into()));
            }
        }
        Ok(self)
    }

    /// Applies a direct request's overrides; errors name the request field.
    pub fn with_overrides(&self, o: &Overrides) -> Result<Settings, Error> {
        let bad = |field: &str, reason: String| Error::InvalidOverride {
            field: field.to_owned(),
            reason,
        };
        let mut s = self.clone();
        let uri = |field: &str, v: &Option<String>| -> Result<Option<S3Uri>, Error> {
            v.as_deref()
                .map(|u| parse_uri(u).map_err(|r| bad(field, r)))
                .transpose()
        };
        if let Some(m) = &o.capture_mode {
            s.capture_mode = CaptureMode::parse(m).map_err(|r| bad("captureMode", r))?;
        }
        if let Some(f) = &o.batch_output_format {
            s.batch_format = parse_batch_format(f).map_err(|r| bad("batchOutputFormat", r))?;
        }
        if o.endpoint_name.is_some() {
            s.endpoint_name = o.endpoint_name.clone();
        }
        if let Some(v) = &o.variant_name {
            s.variant_name = v.clone();
        }
        if let Some(u) = uri("captureS3Uri", &o.capture_s3_uri)? {
            s.capture = u;
        }
        if let Some(u) = uri("groundTruthS3Uri", &o.ground_truth_s3_uri)? {
            s.ground_truth = Some(u);
        }
        if let Some(u) = uri("reportS3Uri", &o.report_s3_uri)? {
            s.report = u;
        }
        if let Some(p) = &o.problem_type {
            s.problem_type = Some(parse_problem(p).map_err(|r| bad("problemType", r))?);
        }
        macro_rules! take {
            ($field:ident, $target:ident) => {
                if o.$field.is_some() {
                    s.$target = o.$field.clone();
                }
            };
        }
        take!(inference_attribute, inference_attribute);
        take!(probability_attribute, probability_attribute);
        take!(ground_truth_attribute, ground_truth_attribute);
        take!(model_package_group_name, model_package_group);
        take!(metrics_namespace, metrics_namespace);
        take!(event_bus_name, event_bus);
        take!(data_quality, data_quality);
        if let Some(t) = o.probability_threshold {
            s.probability_threshold = t;
        }
        if let Some(v) = &o.positive_label {
            s.positive_label = v.clone();
        }
        if let Some(v) = &o.negative_label {
            s.negative_label = v.clone();
        }
        if let Some(v) = &o.monitoring_schedule_name {
            s.schedule_name = v.clone();
        }
        if let Some(d) = &o.metrics_dimensions {
            if let Some((k, v)) = d
                .iter()
                .find(|(k, v)| k.is_empty() || v.is_empty() || k.len() > 255 || v.len() > 1024)
            {
                return Err(bad(
                    "metricsDimensions",
                    format!("{k:?}={v:?}: names must be 1-255 and values 1-1024 characters"),
                ));
            }
            s.metrics_dimensions = d.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        s.check().map_err(|(var, reason)| {
            let field = match var.as_str() {
                "ENDPOINT_NAME" => "endpointName",
                "GROUND_TRUTH_S3_URI" => "groundTruthS3Uri",
                "METRICS_NAMESPACE" => "metricsNamespace",
                "PROBABILITY_THRESHOLD" => "probabilityThreshold",
                "VARIANT_NAME" => "variantName",
                _ => "monitoringScheduleName",
            };
            bad(field, reason)
        })
    }
}

/// Configuration from the environment (validated at init; errors name the variable).
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `CAPTURE_S3_URI` | data capture destination (`DestinationS3Uri`) | required |
/// | `REPORT_S3_URI` | where reports go: `{report}/{endpoint}/{variant}/{schedule}/yyyy/mm/dd/hh/{window}/` | required |
/// | `CAPTURE_MODE` | `realtime` (endpoint capture) or `batchTransform` (capture manifests under `/input`, `/output`) | `realtime` |
/// | `ENDPOINT_NAME` | the monitored endpoint | required in `realtime` mode |
/// | `VARIANT_NAME` | its production variant | `AllTraffic` |
/// | `BATCH_OUTPUT_FORMAT` | batch transform output rows: `csv` (trailing id, time columns) or `json` (`SageMakerInferenceId`) | `csv` |
/// | `GROUND_TRUTH_S3_URI` | ground truth (`{uri}/yyyy/mm/dd/hh/*.jsonl`) | required with `PROBLEM_TYPE` |
/// | `PROBLEM_TYPE` | `Regression`, `BinaryClassification`, `MulticlassClassification`, `Forecast`; unset: data quality only | — |
/// | `INFERENCE_ATTRIBUTE` | predicted label/value: CSV column index or JSON path | engine default (whole output) |
/// | `PROBABILITY_ATTRIBUTE` | score/probability: CSV index or JSON path | — |
/// | `PROBABILITY_THRESHOLD` | binary: positive when score > threshold | `0.5` |
/// | `GROUND_TRUTH_ATTRIBUTE` | label inside `groundTruthData.data` | column 0 / whole value |
/// | `POSITIVE_LABEL`, `NEGATIVE_LABEL` | binary classes | `1`, `0` |
/// | `DATA_QUALITY` | data-quality statistics and checks: `true`, `false`, `auto` (on with a data-quality baseline or without a problem type) | `auto` |
/// | `MODEL_PACKAGE_GROUP_NAME` | baselines of the group's latest approved package (as get-approved-model picks it) | no baselines |
/// | `METRICS_NAMESPACE` | one custom namespace for all metrics | `aws/sagemaker/Endpoints/model-metrics` + `.../data-metrics` (batch: `aws/sagemaker/ModelMonitoring/...`) |
/// | `METRICS_DIMENSIONS` | extra dimensions `Name=Value,...` | — (always `Endpoint` in real-time mode and `MonitoringSchedule`) |
/// | `MONITORING_SCHEDULE_NAME` | the `MonitoringSchedule` dimension and report folder | `custom-metrics` |
/// | `EVENT_BUS_NAME` | bus of the run's event | the default bus |
/// | `WINDOW_MINUTES` | window length (divides a day, or whole days) | `60` |
/// | `WINDOW_OFFSET_MINUTES` | a scheduled run evaluates the last window that ended this long before it | `0` |
/// | `GROUND_TRUTH_DELAY_MINUTES` | labels are read from folders up to this long after the window's end | `WINDOW_OFFSET_MINUTES` |
/// | `DEDUP_QUIET_SECONDS` | S3-event runs wait this long so a burst of uploads settles (0-600) | `20` |
/// | `READ_CONCURRENCY` | objects downloaded ahead of the engine (1-64) | `8` |
/// | `CAPTURE_FILE_LOOKBACK_MINUTES` | real-time capture files started this long before a window are read too (a file holds records after its start time; 0-60) | `5` |
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub settings: Settings,
    pub window: WindowRule,
    pub dedup_quiet_seconds: u64,
    pub read_concurrency: usize,
    pub capture_lookback_minutes: u32,
}

impl Config {
    pub fn from_env(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let uri = |var: &str| env.validated(var, parse_uri);
        let capture = uri("CAPTURE_S3_URI")?.ok_or(ConfigError::Missing {
            var: "CAPTURE_S3_URI".into(),
            hint: Some("the data capture destination"),
        })?;
        let report = uri("REPORT_S3_URI")?.ok_or(ConfigError::Missing {
            var: "REPORT_S3_URI".into(),
            hint: Some("where reports are written"),
        })?;
        let minutes = env
            .validated("WINDOW_MINUTES", |v| {
                v.parse::<u32>()
                    .map_err(|e| e.to_string())
                    .and_then(WindowRule::validate_minutes)
            })?
            .unwrap_or(60);
        let days31 = |v: &u32| *v <= 31 * 1440;
        let offset = env.parse_checked(
            "WINDOW_OFFSET_MINUTES",
            0,
            days31,
            "at most 44640 (31 days)",
        )?;
        let delay = env.parse_checked(
            "GROUND_TRUTH_DELAY_MINUTES",
            offset,
            days31,
            "at most 44640 (31 days)",
        )?;
        let quiet =
            env.parse_checked("DEDUP_QUIET_SECONDS", 20u64, |v| *v <= 600, "at most 600")?;
        let concurrency = env.parse_checked(
            "READ_CONCURRENCY",
            8usize,
            |v| (1..=64).contains(v),
            "must be 1-64",
        )?;
        let lookback = env.parse_checked(
            "CAPTURE_FILE_LOOKBACK_MINUTES",
            5u32,
            |v| *v <= 60,
            "at most 60",
        )?;
        let data_quality =
            env.validated("DATA_QUALITY", |v| match v.to_ascii_lowercase().as_str() {
                "auto" => Ok(None),
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err("expected true, false or auto".to_owned()),
            })?;
        let settings = Settings {
            capture_mode: env
                .validated("CAPTURE_MODE", CaptureMode::parse)?
                .unwrap_or(CaptureMode::Realtime),
            endpoint_name: env.optional("ENDPOINT_NAME"),
            variant_name: env
                .optional("VARIANT_NAME")
                .unwrap_or_else(|| "AllTraffic".to_owned()),
            capture,
            ground_truth: uri("GROUND_TRUTH_S3_URI")?,
            report,
            batch_format: env
                .validated("BATCH_OUTPUT_FORMAT", parse_batch_format)?
                .unwrap_or(CaptureFormat::BatchCsv),
            problem_type: env.validated("PROBLEM_TYPE", parse_problem)?,
            inference_attribute: env.optional("INFERENCE_ATTRIBUTE"),
            probability_attribute: env.optional("PROBABILITY_ATTRIBUTE"),
            probability_threshold: env.parse_or("PROBABILITY_THRESHOLD", 0.5)?,
            ground_truth_attribute: env.optional("GROUND_TRUTH_ATTRIBUTE"),
            positive_label: env
                .optional("POSITIVE_LABEL")
                .unwrap_or_else(|| "1".to_owned()),
            negative_label: env
                .optional("NEGATIVE_LABEL")
                .unwrap_or_else(|| "0".to_owned()),
            data_quality: data_quality.flatten(),
            model_package_group: env.optional("MODEL_PACKAGE_GROUP_NAME"),
            metrics_namespace: env.optional("METRICS_NAMESPACE"),
            metrics_dimensions: env
                .validated("METRICS_DIMENSIONS", parse_dimensions)?
                .unwrap_or_default(),
            schedule_name: env
                .optional("MONITORING_SCHEDULE_NAME")
                .unwrap_or_else(|| "custom-metrics".to_owned()),
            event_bus: env.optional("EVENT_BUS_NAME"),
        };
        let settings = settings.check().map_err(|(var, reason)| {
            let value = lookup.get(&var).unwrap_or_default();
            if value.trim().is_empty() {
                ConfigError::Missing { var, hint: None }
            } else {
                ConfigError::Invalid { var, value, reason }
            }
        })?;
        Ok(Config {
            settings,
            window: WindowRule {
                minutes,
                offset_minutes: offset,
                ground_truth_delay_minutes: delay,
            },
            dedup_quiet_seconds: quiet,
            read_concurrency: concurrency,
            capture_lookback_minutes: lookback,
        })
    }
}

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct Deps {
    pub registry: Arc<dyn ModelRegistry>,
    pub store: Arc<dyn ObjectStore>,
    pub metrics: Arc<dyn MetricPublisher>,
    pub events: Arc<dyn EventPublisher>,
    pub config: Config,
    pub clock: Clock,
}

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    BadEvent(#[from] EventError),
    #[error("invalid override {field:?}: {reason}")]
    InvalidOverride { field: String, reason: String },
    #[error("invalid batch capture manifest {uri}: {reason}")]
    BadManifest { uri: String, reason: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the metrics engine failed: {0}")]
    Engine(String),
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Aws(e) => e.class(),
            Error::Publish(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::BadEvent(e) => e.code(),
            Error::InvalidOverride { .. } => "InvalidOverride",
            Error::BadManifest { .. } => "BadManifest",
            Error::Aws(e) => e.code(),
            Error::Publish(e) => e.code(),
            Error::Engine(_) => "Engine",
        }
    }
}

driftloop::impl_diagnostic!(Error);

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Aws(a) => Error::Aws(a),
            ReadError::Consumer(m) => Error::Engine(m),
        }
    }
}

/// The outcome of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowOutcome {
    pub window: Window,
    /// `Completed`, `CompletedWithViolations`, `NoData` (evaluated, nothing to measure),
    /// `Skipped` (not evaluated), `Failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// S3-event runs: `run`, `superseded`, `vanished`, `up_to_date`, `not_due`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
    pub violation_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<Value>,
    pub metrics_published: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl WindowOutcome {
    fn skipped(window: Window, decision: &str, reason: String) -> Self {
        WindowOutcome {
            window,
            status: "Skipped".into(),
            reason: Some(reason),
            decision: Some(decision.into()),
            run_id: None,
            counts: None,
            metrics: None,
            violation_count: 0,
            reports: None,
            metrics_published: 0,
            metrics_skipped: None,
            event_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub trigger: Trigger,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
    pub windows: Vec<WindowOutcome>,
}

/// Baselines of the approved package, fetched once per invocation.
#[derive(Debug, Clone, Default)]
struct Baselines {
    package_arn: Option<String>,
    dq_statistics: Option<BaselineStatistics>,
    dq_constraints: Option<BaselineConstraints>,
    mq_constraints: Option<Value>,
    uris: Vec<String>,
    problems: Vec<String>,
}

impl Baselines {
    fn describe(&self, group: &str) -> Value {
        json!({
            "modelPackageGroupName": group,
            "modelPackageArn": self.package_arn,
            "uris": self.uris,
            "dataQuality": self.dq_constraints.is_some(),
            "modelQuality": self.mq_constraints.is_some(),
            "problems": self.problems,
        })
    }
}

async fn get_text(store: &dyn ObjectStore, uri: &str) -> Result<Result<String, String>, AwsError> {
    let parsed = match S3Uri::parse(uri) {
        Ok(u) => u,
        Err(e) => return Ok(Err(e)),
    };
    match store.get(&parsed).await {
        Ok(b) => Ok(String::from_utf8(b).map_err(|_| format!("{uri} is not UTF-8"))),
        Err(e) if e.class() == ErrorClass::Permanent => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Problems with the baselines (no approved package, a missing or unreadable file) are reported
/// and the run goes on without that baseline; retryable AWS errors fail the run.
async fn resolve_baselines(deps: &Deps, group: &str) -> Result<Baselines, Error> {
    let mut b = Baselines::default();
    let package = match latest_approved(deps.registry.as_ref(), group).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            b.problems.push(format!(
                "model package group {group:?} has no approved, completed package"
            ));
            return Ok(b);
        }
        Err(e) if e.class() == ErrorClass::Permanent => {
            b.problems.push(e.to_string());
            return Ok(b);
        }
        Err(e) => return Err(e.into()),
    };
    b.package_arn = Some(package.summary.arn.clone());
    let store = deps.store.as_ref();
    if let Some(dq) = package.data_quality_baseline() {
        if let Some(uri) = &dq.statistics {
            b.uris.push(uri.clone());
            match get_text(store, uri)
                .await?
                .and_then(|t| BaselineStatistics::parse(&t))
            {
                Ok(s) => b.dq_statistics = Some(s),
                Err(e) => b
                    .problems
                    .push(format!("data-quality statistics {uri}: {e}")),
            }
        }
        if let Some(uri) = &dq.constraints {
            b.uris.push(uri.clone());
            match get_text(store, uri)
                .await?
                .and_then(|t| BaselineConstraints::parse(&t))
            {
                Ok(c) => b.dq_constraints = Some(c),
                Err(e) => b
                    .problems
                    .push(format!("data-quality constraints {uri}: {e}")),
            }
        }
    }
    if let Some(uri) = package
        .model_quality_baseline()
        .and_then(|m| m.constraints.clone())
    {
        b.uris.push(uri.clone());
        match get_text(store, &uri)
            .await?
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => b.mq_constraints = Some(v),
            Err(e) => b
                .problems
                .push(format!("model-quality constraints {uri}: {e}")),
        }
    }
    for p in &b.problems {
        tracing::warn!(group, problem = p, "baseline not used");
    }
    Ok(b)
}

/// The objects a window reads.
struct Inputs {
    capture: Vec<ObjectInfo>,
    /// Batch transform: the manifests (the data files are in `capture`).
    manifests: Vec<ObjectInfo>,
    input_manifests: usize,
    ground_truth: Vec<ObjectInfo>,
}

fn files(mut v: Vec<ObjectInfo>) -> Vec<ObjectInfo> {
    v.retain(|o| !o.uri.key.ends_with('/'));
    v
}

async fn list_prefixes(
    store: &dyn ObjectStore,
    prefixes: Vec<S3Uri>,
) -> Result<Vec<ObjectInfo>, AwsError> {
    let mut out = Vec::new();
    for p in prefixes {
        out.extend(files(store.list(&p).await?));
    }
    out.sort_by(|a, b| (&a.uri.bucket, &a.uri.key).cmp(&(&b.uri.bucket, &b.uri.key)));
    out.dedup_by(|a, b| a.uri == b.uri);
    Ok(out)
}

async fn list_ground_truth(
    deps: &Deps,
    s: &Settings,
    w: &Window,
) -> Result<Vec<ObjectInfo>, AwsError> {
    let Some(gt) = &s.ground_truth else {
        return Ok(Vec::new());
    };
    let (from, to) = deps.config.window.ground_truth_range(w);
    list_prefixes(
        deps.store.as_ref(),
        layout::hour_prefixes(&layout::folder(gt), from, to),
    )
    .await
}

async fn list_inputs(
    deps: &Deps,
    s: &Settings,
    w: &Window,
    ground_truth: Vec<ObjectInfo>,
) -> Result<Inputs, Error> {
    let store = deps.store.as_ref();
    let target = s.target();
    let base = layout::capture_base(&s.capture, &target);
    let mut listed = list_prefixes(store, layout::hour_prefixes(&base, w.start, w.end)).await?;
    match s.capture_mode {
        CaptureMode::Realtime => {
            let lookback = Duration::minutes(i64::from(deps.config.capture_lookback_minutes));
            let from = w.start - lookback;
            let mut earlier = Vec::new();
            for h in layout::lookback_hours(w, lookback) {
                let files = list_prefixes(
                    store,
                    vec![base.join(&h.format("%Y/%m/%d/%H/").to_string())],
                )
                .await?;
                earlier.extend(files.into_iter().filter(|o| {
                    layout::capture_file_start(&base, &o.uri).is_none_or(|t| t >= from)
                }));
            }
            earlier.append(&mut listed);
            Ok(Inputs {
                capture: earlier,
                manifests: Vec::new(),
                input_manifests: 0,
                ground_truth,
            })
        }
        CaptureMode::BatchTransform => {
            let inputs = list_prefixes(
                store,
                layout::hour_prefixes(&layout::batch_input_base(&s.capture), w.start, w.end),
            )
            .await?;
            let mut data: Vec<S3Uri> = Vec::new();
            for m in &listed {
                let body = match store.get(&m.uri).await {
                    Ok(b) => b,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                };
                let text = String::from_utf8_lossy(&body);
                let listed_files = parse_manifest(&text).map_err(|reason| Error::BadManifest {
                    uri: m.uri.to_string(),
                    reason,
                })?;
                for f in listed_files {
                    if !data.contains(&f) {
                        data.push(f);
                    }
                }
            }
            // The data files' sizes are not listed; the manifests stand for them in the fingerprint.
            let capture = data
                .into_iter()
                .map(|uri| ObjectInfo {
                    uri,
                    size: 0,
                    last_modified: None,
                })
                .collect();
            Ok(Inputs {
                capture,
                manifests: listed,
                input_manifests: inputs.len(),
                ground_truth,
            })
        }
    }
}

fn fingerprint(s: &Settings, w: &Window, baselines: &Baselines, inputs: &Inputs) -> String {
    let mut parts = vec![
        w.id(),
        serde_json::to_string(s).unwrap_or_default(),
        baselines.package_arn.clone().unwrap_or_default(),
        baselines.uris.join(" "),
    ];
    parts.extend(dedup::object_parts(&inputs.capture));
    parts.extend(dedup::object_parts(&inputs.manifests));
    parts.push("ground-truth".into());
    parts.extend(dedup::object_parts(&inputs.ground_truth));
    dedup::fingerprint(parts)
}

fn monitor_config(s: &Settings, w: &Window, baselines: &Baselines) -> MonitorConfig {
    let (start, end) = w.millis();
    let dq = s
        .data_quality
        .unwrap_or(baselines.dq_constraints.is_some() || s.problem_type.is_none());
    MonitorConfig {
        problem_type: s.problem_type,
        inference_attribute: s.inference_attribute.clone(),
        probability_attribute: s.probability_attribute.clone(),
        probability_threshold: s.probability_threshold,
        ground_truth_attribute: s.ground_truth_attribute.clone(),
        positive_label: s.positive_label.clone(),
        negative_label: s.negative_label.clone(),
        capture_format: match s.capture_mode {
            CaptureMode::Realtime => CaptureFormat::Realtime,
            CaptureMode::BatchTransform => s.batch_format,
        },
        window_start_ms: Some(start),
        window_end_ms: Some(end),
        data_quality: dq,
        ..MonitorConfig::default()
    }
}

fn io_of(e: EngineError) -> std::io::Error {
    match e {
        EngineError::Io { error, .. } => error,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Streams ground truth, then capture, through the engine.
async fn compute(
    deps: &Deps,
    s: &Settings,
    w: &Window,
    baselines: &Baselines,
    inputs: &Inputs,
) -> Result<(JobResult, usize), Error> {
    let mut engine = Engine::new(monitor_config(s, w, baselines));
    if s.problem_type.is_some() || engine.config().data_quality {
        engine = engine.with_data_quality_baseline(
            baselines.dq_statistics.clone(),
            baselines.dq_constraints.clone(),
        );
    }
    if let (Some(c), Some(_)) = (&baselines.mq_constraints, s.problem_type) {
        engine = engine.with_model_quality_constraints(c.clone());
    }
    let gt_bytes: u64 = inputs.ground_truth.iter().map(|o| o.size).sum();
    engine.reserve_ground_truth((gt_bytes / 120) as usize);
    let concurrency = deps.config.read_concurrency;
    let mut vanished = 0;
    if s.problem_type.is_some() {
        let uris = inputs.ground_truth.iter().map(|o| o.uri.clone()).collect();
        let (e, stats) = stream_objects(
            deps.store.clone(),
            uris,
            concurrency,
            engine,
            |engine, uri, r| {
                engine
                    .feed_ground_truth(&uri.to_string(), r)
                    .map(drop)
                    .map_err(io_of)
            },
        )
        .await?;
        engine = e;
        vanished += stats.vanished;
    }
    let uris = inputs.capture.iter().map(|o| o.uri.clone()).collect();
    let (engine, stats) = stream_objects(
        deps.store.clone(),
        uris,
        concurrency,
        engine,
        |engine, uri, r| {
            engine
                .feed_capture(&uri.to_string(), r, |_| {})
                .map(drop)
                .map_err(io_of)
        },
    )
    .await?;
    vanished += stats.vanished;
    let result = engine.finish().map_err(|e| Error::Engine(e.to_string()))?;
    Ok((result, vanished))
}

/// `NoData` and why, when the window had nothing to measure.
fn no_data(s: &Settings, inputs: &Inputs, r: &JobResult) -> Option<String> {
    if inputs.capture.is_empty() {
        return Some(match s.capture_mode {
            CaptureMode::Realtime => "no data capture in the window".into(),
            CaptureMode::BatchTransform => {
                "no batch transform capture manifest in the window".into()
            }
        });
    }
    if s.problem_type.is_some() && inputs.ground_truth.is_empty() {
        return Some("no ground truth for the window".into());
    }
    if s.problem_type.is_some() && r.counts.evaluated == 0 {
        return Some("no capture record in the window matched a usable label".into());
    }
    if s.problem_type.is_none() && r.counts.data_quality_records == 0 {
        return Some("no capture record in the window".into());
    }
    None
}

async fn previous_fingerprint(
    store: &dyn ObjectStore,
    uris: &ReportUris,
) -> Result<Option<String>, AwsError> {
    match store.get(&uris.summary).await {
        Ok(body) => Ok(serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["fingerprint"].as_str().map(str::to_owned))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(200 * 2u64.pow(attempt.min(6)))
}

/// Puts every datum; each call is retried on its own when the failure is retryable, so datums of
/// calls that went through are never sent twice.
async fn publish_metrics(
    deps: &Deps,
    groups: Vec<(String, Vec<driftloop::publish::MetricDatum>)>,
) -> Result<usize, Error> {
    let mut sent = 0;
    for (ns, datums) in groups {
        for chunk in report::chunk_datums(datums) {
            let mut attempt = 0;
            loop {
                match deps.metrics.put_metrics(&ns, chunk.clone()).await {
                    Ok(r) => {
                        sent += r.sent;
                        break;
                    }
                    Err(e)
                        if e.class() == ErrorClass::Retryable && attempt + 1 < PUBLISH_ATTEMPTS =>
                    {
                        tracing::warn!(namespace = ns, attempt, error = %e, "PutMetricData failed; retrying this call");
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(sent)
}

async fn publish_event(
    deps: &Deps,
    event: &driftloop::publish::OutgoingEvent,
) -> Result<String, Error> {
    let mut attempt = 0;
    loop {
        match deps.events.publish(event).await {
            Ok(id) => return Ok(id),
            Err(e) if e.class() == ErrorClass::Retryable && attempt + 1 < PUBLISH_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "PutEvents failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn metrics_object(pairs: &[(String, f64)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

struct RunContext<'a> {
    trigger: &'a Trigger,
    settings: &'a Settings,
    baselines: &'a Baselines,
    baseline_info: Option<&'a Value>,
}

/// Evaluates one window end to end. `s3_trigger`: the uploaded object (applies the burst rule).
async fn evaluate(
    deps: &Deps,
    ctx: &RunContext<'_>,
    w: Window,
    s3_trigger: Option<&S3Uri>,
) -> Result<WindowOutcome, Error> {
    let s = ctx.settings;
    let target = s.target();
    let uris = layout::report_uris(&s.report, &target, &s.schedule_name, &w);
    let ground_truth = list_ground_truth(deps, s, &w).await?;
    if let Some(object) = s3_trigger {
        let d = dedup::newest_wins(object, &ground_truth);
        if d != Decision::Run {
            let reason = match &d {
                Decision::Superseded { newer } => {
                    format!("a newer upload ({newer}) recomputes this window")
                }
                _ => format!("{object} no longer exists"),
            };
            return Ok(WindowOutcome::skipped(w, d.as_str(), reason));
        }
    }
    let inputs = list_inputs(deps, s, &w, ground_truth).await?;
    let fp = fingerprint(s, &w, ctx.baselines, &inputs);
    let run_id = dedup::fingerprint([w.id(), fp.clone()])[..24].to_owned();
    if s3_trigger.is_some() {
        let previous = previous_fingerprint(deps.store.as_ref(), &uris).await?;
        if dedup::inputs_changed(previous.as_deref(), &fp) == Decision::UpToDate {
            let mut o = WindowOutcome::skipped(
                w,
                Decision::UpToDate.as_str(),
                "the report was computed from exactly these inputs".into(),
            );
            o.run_id = Some(run_id);
            return Ok(o);
        }
    }
    let (result, vanished) = compute(deps, s, &w, ctx.baselines, &inputs).await?;
    let empty = no_data(s, &inputs, &result);
    let violations = result.violations.len();
    let status = match (&empty, violations) {
        (Some(_), _) => "NoData",
        (None, 0) => "Completed",
        (None, _) => "CompletedWithViolations",
    };
    let now = (deps.clock)();
    let cw = result.cloudwatch_metrics();
    let pairs_of = |kind: MetricKind| -> Vec<(String, f64)> {
        cw.iter()
            .filter(|m| m.kind == kind)
            .map(|m| (m.name.clone(), m.value))
            .collect()
    };
    let model_metrics = pairs_of(MetricKind::ModelQuality);
    let drift = pairs_of(MetricKind::FeatureDrift);
    let mut summary_metrics = model_metrics.clone();
    summary_metrics.extend(drift);
    let record_counts: Value = report::count_metrics(&result.counts, violations, empty.is_some())
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v as u64)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let inputs_info = json!({
        "captureObjects": inputs.capture.len(),
        "captureBytes": inputs.capture.iter().map(|o| o.size).sum::<u64>(),
        "groundTruthObjects": inputs.ground_truth.len(),
        "groundTruthBytes": inputs.ground_truth.iter().map(|o| o.size).sum::<u64>(),
        "outputManifests": inputs.manifests.len(),
        "inputManifests": inputs.input_manifests,
        "vanishedObjects": vanished,
    });
    let target_json = serde_json::to_value(&target).unwrap_or(Value::Null);
    let window_json = json!({"start": iso(w.start), "end": iso(w.end)});
    let error_samples: Vec<String> = result
        .error_samples
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut detail = json!({
        "runId": run_id,
        "status": status,
        "reason": empty,
        "window": window_json,
        "trigger": ctx.trigger.kind(),
        "target": target_json,
        "monitoringScheduleName": s.schedule_name,
        "problemType": s.problem_type,
        "counts": record_counts,
        "metrics": metrics_object(&summary_metrics),
        "violationCount": violations,
        "violations": result.violations_json()["violations"].clone(),
        "reports": uris.as_strings(),
        "errorSamples": error_samples,
        "inputs": inputs_info,
        "baseline": ctx.baseline_info.cloned(),
    });
    // Reports: statistics, violations and the summary before the metrics and the event (which
    // point at them). The summary is written a second time with the input fingerprint only once
    // metrics and event went out: a run that failed half-way is not "up to date" for the burst
    // rule, and its retry publishes what is missing.
    let store = deps.store.as_ref();
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    store
        .put(
            &uris.statistics,
            pretty(&result.statistics_json()),
            "application/json",
        )
        .await?;
    store
        .put(
            &uris.constraint_violations,
            pretty(&result.violations_json()),
            "application/json",
        )
        .await?;
    let mut summary = detail.clone();
    summary["fingerprint"] = Value::Null;
    summary["evaluatedAt"] = json!(iso(now));
    summary["engineCounts"] = serde_json::to_value(&result.counts).unwrap_or(Value::Null);
    summary["jobMessage"] = json!(result.job_message());
    summary["settings"] = serde_json::to_value(s).unwrap_or(Value::Null);
    summary["text"] = json!(result.summary());
    store
        .put(&uris.summary, pretty(&summary), "application/json")
        .await?;

    let mut outcome = WindowOutcome {
        window: w,
        status: status.into(),
        reason: empty.clone(),
        decision: s3_trigger.map(|_| Decision::Run.as_str().to_owned()),
        run_id: Some(run_id),
        counts: Some(detail["counts"].clone()),
        metrics: Some(metrics_object(&model_metrics)),
        violation_count: violations,
        reports: Some(uris.as_strings()),
        metrics_published: 0,
        metrics_skipped: None,
        event_id: None,
    };
    if w.start < now - METRICS_MAX_AGE + Duration::minutes(5) {
        outcome.metrics_skipped =
            Some("the window is older than CloudWatch accepts (14 days)".into());
    } else if w.start > now + Duration::hours(2) {
        outcome.metrics_skipped = Some("the window starts more than 2 hours in the future".into());
    } else {
        let mt = MetricTarget::new(
            &target,
            &s.schedule_name,
            s.metrics_namespace.as_deref(),
            &s.metrics_dimensions,
        );
        let groups = report::build_datums(
            &cw,
            &result.counts,
            violations,
            empty.is_some(),
            s.problem_type.is_some(),
            &mt,
            w.start,
        );
        outcome.metrics_published = publish_metrics(deps, groups).await?;
    }
    detail["metricsPublished"] = json!(outcome.metrics_published);
    let resources: Vec<String> = ctx.baselines.package_arn.iter().cloned().collect();
    let event = report::fit_event(SOURCE, detail, s.event_bus.as_deref(), resources)?;
    outcome.event_id = Some(publish_event(deps, &event).await?);
    summary["fingerprint"] = json!(fp);
    summary["metricsPublished"] = json!(outcome.metrics_published);
    summary["metricsSkipped"] = json!(outcome.metrics_skipped);
    summary["eventId"] = json!(outcome.event_id);
    store
        .put(&uris.summary, pretty(&summary), "application/json")
        .await?;
    tracing::info!(window = %w, status, violations, metrics = outcome.metrics_published, "window evaluated");
    Ok(outcome)
}

pub async fn handle(event: Value, deps: &Deps) -> Result<Output, Error> {
    let trigger = parse_trigger(event)?;
    let settings = deps.config.settings.with_overrides(&trigger.overrides())?;
    let now = (deps.clock)();
    let mut output = Output {
        trigger: trigger.clone(),
        ignored: None,
        baseline: None,
        windows: Vec::new(),
    };
    let planned = match plan_windows(
        &trigger,
        &deps.config.window,
        settings.ground_truth.as_ref(),
        now,
    )? {
        Ok(p) => p,
        Err(reason) => {
            tracing::warn!(reason, "event ignored");
            output.ignored = Some(reason);
            return Ok(output);
        }
    };
    let s3_object = match &trigger {
        Trigger::GroundTruthUpload { object, .. } => Some(object.clone()),
        _ => None,
    };
    if planned.iter().all(|p| p.skip.is_some()) {
        output.windows = planned
            .into_iter()
            .map(|p| WindowOutcome::skipped(p.window, "not_due", p.skip.unwrap_or_default()))
            .collect();
        return Ok(output);
    }
    if s3_object.is_some() && deps.config.dedup_quiet_seconds > 0 {
        tokio::time::sleep(std::time::Duration::from_secs(
            deps.config.dedup_quiet_seconds,
        ))
        .await;
    }
    let baselines = match &settings.model_package_group {
        Some(g) => resolve_baselines(deps, g).await?,
        None => Baselines::default(),
    };
    let baseline_info = settings
        .model_package_group
        .as_deref()
        .map(|g| baselines.describe(g));
    output.baseline = baseline_info.clone();
    let ctx = RunContext {
        trigger: &trigger,
        settings: &settings,
        baselines: &baselines,
        baseline_info: baseline_info.as_ref(),
    };
    let mut first_error: Option<Error> = None;
    for p in planned {
        let w = p.window;
        if let Some(reason) = p.skip {
            output
                .windows
                .push(WindowOutcome::skipped(w, "not_due", reason));
            continue;
        }
        match evaluate(deps, &ctx, w, s3_object.as_ref()).await {
            Ok(o) => output.windows.push(o),
            Err(e) => {
                tracing::error!(window = %w, error = %e, error_type = e.error_type(), "window failed");
                let mut o = WindowOutcome::skipped(w, "failed", e.to_string());
                o.status = "Failed".into();
                o.decision = None;
                output.windows.push(o);
                if first_error.as_ref().is_none_or(|f| {
                    f.class() == ErrorClass::Permanent && e.class() == ErrorClass::Retryable
                }) {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(output),
    }
}

#[cfg(test)]
mod tests;
