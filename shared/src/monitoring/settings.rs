//! The settings of one run: what is monitored and how, as configured in the environment, with a
//! direct request's overrides applied ([`Settings::with_overrides`]) and checked together
//! ([`Settings::check`]). A wrong value names its [`Setting`]: the environment variable at init,
//! the request field in a direct invocation.

use serde::Serialize;

use super::layout::Target;
use super::trigger::Overrides;
use crate::metrics::{CaptureFormat, ProblemType};
use crate::publish::validate_namespace;
use crate::storage::S3Uri;

/// How capture is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CaptureMode {
    Realtime,
    BatchTransform,
}

impl CaptureMode {
    pub fn parse(s: &str) -> Result<CaptureMode, String> {
        match s.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "realtime" | "endpoint" => Ok(CaptureMode::Realtime),
            "batchtransform" | "batch" => Ok(CaptureMode::BatchTransform),
            _ => Err("expected realtime or batchTransform".into()),
        }
    }
}

/// `BATCH_OUTPUT_FORMAT` / `batchOutputFormat`: `csv` or `json`.
pub fn parse_batch_format(s: &str) -> Result<CaptureFormat, String> {
    match s.to_ascii_lowercase().as_str() {
        "csv" => Ok(CaptureFormat::BatchCsv),
        "json" | "jsonl" | "jsonlines" => Ok(CaptureFormat::BatchJson),
        _ => Err("expected csv or json".into()),
    }
}

/// `PROBLEM_TYPE` / `problemType`.
pub fn parse_problem(s: &str) -> Result<ProblemType, String> {
    ProblemType::parse(s).ok_or_else(|| {
        "expected Regression, BinaryClassification, MulticlassClassification or Forecast".into()
    })
}

/// `FEATURE_NAMES`: comma-separated column names (trimmed, non-empty, distinct).
pub fn parse_feature_names(s: &str) -> Result<Vec<String>, String> {
    crate::metrics::dq::naming::parse_feature_names(s)
}

/// At most this many forecast quantiles (`FORECAST_QUANTILES`).
pub const MAX_FORECAST_QUANTILES: usize = 20;
/// The largest MASE seasonality (`FORECAST_SEASONALITY`).
pub const MAX_FORECAST_SEASONALITY: usize = 10_000;

/// `FORECAST_QUANTILES`: `0.1,0.5,0.9` - 1 to [`MAX_FORECAST_QUANTILES`] distinct numbers, each
/// strictly between 0 and 1.
pub fn parse_quantiles(s: &str) -> Result<Vec<f64>, String> {
    let mut out: Vec<f64> = Vec::new();
    for part in s.split(',').map(str::trim) {
        let q: f64 = part
            .parse()
            .map_err(|_| format!("{part:?}: expected a number"))?;
        if !(q > 0.0 && q < 1.0) {
            return Err(format!("{part:?}: a quantile is strictly between 0 and 1"));
        }
        if out.iter().any(|o| (o - q).abs() < 1e-9) {
            return Err(format!("{part:?}: listed twice"));
        }
        out.push(q);
    }
    if out.len() > MAX_FORECAST_QUANTILES {
        return Err(format!("at most {MAX_FORECAST_QUANTILES} quantiles"));
    }
    Ok(out)
}

/// `METRICS_DIMENSIONS`: `Name=Value,...`.
pub fn parse_dimensions(s: &str) -> Result<Vec<(String, String)>, String> {
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

/// A setting that can be wrong: in the environment (named by [`Setting::env_var`]) or in a direct
/// request's overrides (named by [`Setting::field`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Setting {
    CaptureMode,
    BatchOutputFormat,
    EndpointName,
    VariantName,
    CaptureS3Uri,
    GroundTruthS3Uri,
    ReportS3Uri,
    ProblemType,
    ProbabilityThreshold,
    MetricsNamespace,
    MetricsDimensions,
    MonitoringScheduleName,
    FeatureNames,
}

impl Setting {
    /// The field of a direct request ([`Overrides`]).
    pub fn field(self) -> &'static str {
        match self {
            Setting::CaptureMode => "captureMode",
            Setting::BatchOutputFormat => "batchOutputFormat",
            Setting::EndpointName => "endpointName",
            Setting::VariantName => "variantName",
            Setting::CaptureS3Uri => "captureS3Uri",
            Setting::GroundTruthS3Uri => "groundTruthS3Uri",
            Setting::ReportS3Uri => "reportS3Uri",
            Setting::ProblemType => "problemType",
            Setting::ProbabilityThreshold => "probabilityThreshold",
            Setting::MetricsNamespace => "metricsNamespace",
            Setting::MetricsDimensions => "metricsDimensions",
            Setting::MonitoringScheduleName => "monitoringScheduleName",
            Setting::FeatureNames => "featureNames",
        }
    }

    /// The environment variable.
    pub fn env_var(self) -> &'static str {
        match self {
            Setting::CaptureMode => "CAPTURE_MODE",
            Setting::BatchOutputFormat => "BATCH_OUTPUT_FORMAT",
            Setting::EndpointName => "ENDPOINT_NAME",
            Setting::VariantName => "VARIANT_NAME",
            Setting::CaptureS3Uri => "CAPTURE_S3_URI",
            Setting::GroundTruthS3Uri => "GROUND_TRUTH_S3_URI",
            Setting::ReportS3Uri => "REPORT_S3_URI",
            Setting::ProblemType => "PROBLEM_TYPE",
            Setting::ProbabilityThreshold => "PROBABILITY_THRESHOLD",
            Setting::MetricsNamespace => "METRICS_NAMESPACE",
            Setting::MetricsDimensions => "METRICS_DIMENSIONS",
            Setting::MonitoringScheduleName => "MONITORING_SCHEDULE_NAME",
            Setting::FeatureNames => "FEATURE_NAMES",
        }
    }
}

/// The dimensions that say whose metric it is (an alarm watches them): set from the configured
/// endpoint and schedule, never by a request.
pub const IDENTITY_DIMENSIONS: [&str; 2] = ["Endpoint", "MonitoringSchedule"];

/// Which setting is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidSetting {
    pub setting: Setting,
    pub reason: String,
}

fn invalid(setting: Setting, reason: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        setting,
        reason: reason.into(),
    }
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
    /// Forecast: the quantiles scored (`wQL_<q>`), each in (0, 1), and MASE's seasonality m.
    pub forecast_quantiles: Vec<f64>,
    pub forecast_seasonality: usize,
    /// `None`: on when a data-quality baseline is found, or when there is no problem type.
    pub data_quality: Option<bool>,
    pub model_package_group: Option<String>,
    pub metrics_namespace: Option<String>,
    pub metrics_dimensions: Vec<(String, String)>,
    pub schedule_name: String,
    pub event_bus: Option<String>,
    /// `FEATURE_NAMES`: names of the captured CSV columns in their order (output columns first),
    /// overriding the baseline's feature names ([`crate::metrics::dq::naming`]).
    pub feature_names: Option<Vec<String>>,
    /// `PREDICTION_BASELINE_S3_URI`: prediction drift's baseline for every package, overriding
    /// the package's ([`super::baselines::resolve_prediction_baseline`]).
    pub prediction_baseline: Option<S3Uri>,
    /// `PREDICTION_FEATURE`: the feature of the prediction baseline that holds the model output;
    /// without a prediction baseline file, that column of the data-quality baseline.
    pub prediction_feature: Option<String>,
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

    /// The rules between settings (an endpoint for real-time capture, ground truth for model
    /// quality, ...) and on single values that every source of them must follow.
    pub fn check(self) -> Result<Settings, InvalidSetting> {
        if self.capture_mode == CaptureMode::Realtime && self.endpoint_name.is_none() {
            return Err(invalid(
                Setting::EndpointName,
                "real-time monitoring needs the endpoint name",
            ));
        }
        if self.problem_type.is_some() && self.ground_truth.is_none() {
            return Err(invalid(
                Setting::GroundTruthS3Uri,
                "model quality (PROBLEM_TYPE) needs ground truth",
            ));
        }
        if let Some(ns) = &self.metrics_namespace {
            validate_namespace(ns)
                .map_err(|e| invalid(Setting::MetricsNamespace, e.to_string()))?;
        }
        if !(0.0..=1.0).contains(&self.probability_threshold) || self.probability_threshold.is_nan()
        {
            return Err(invalid(
                Setting::ProbabilityThreshold,
                "must be between 0 and 1",
            ));
        }
        for (setting, v) in [
            (
                Setting::EndpointName,
                self.endpoint_name.as_deref().unwrap_or("x"),
            ),
            (Setting::VariantName, &self.variant_name),
            (Setting::MonitoringScheduleName, &self.schedule_name),
        ] {
            if v.is_empty() || v.contains('/') || v.len() > 255 {
                return Err(invalid(setting, "must be 1-255 characters without '/'"));
            }
        }
        Ok(self)
    }

    /// Applies a direct request's overrides; errors name the request field ([`Setting::field`]).
    ///
    /// A request cannot change the identity of the metrics (the `Endpoint` and
    /// `MonitoringSchedule` dimensions an alarm watches): `metricsDimensions` may not name them,
    /// and a real-time request may not set `endpointName` or `monitoringScheduleName` to other
    /// values than the configured ones, so no request publishes other data as another endpoint's
    /// (or schedule's) metric. A batch-transform request has no `Endpoint` dimension and may name
    /// its own schedule.
    pub fn with_overrides(&self, o: &Overrides) -> Result<Settings, InvalidSetting> {
        if let Some(d) = &o.metrics_dimensions
            && let Some(k) = d.keys().find(|k| IDENTITY_DIMENSIONS.contains(&k.as_str()))
        {
            return Err(invalid(
                Setting::MetricsDimensions,
                format!("{k:?} is an identity dimension of the metrics; a request cannot set it"),
            ));
        }
        let s = self.with_overrides_unchecked(o)?;
        if s.capture_mode == CaptureMode::Realtime {
            for (setting, asked, configured) in [
                (
                    Setting::EndpointName,
                    s.endpoint_name.as_deref(),
                    self.endpoint_name.as_deref(),
                ),
                (
                    Setting::MonitoringScheduleName,
                    Some(s.schedule_name.as_str()),
                    Some(self.schedule_name.as_str()),
                ),
            ] {
                if asked != configured {
                    return Err(invalid(
                        setting,
                        format!(
                            "{asked:?}: a real-time request cannot change the {} dimension of the metrics (configured: {configured:?})",
                            if setting == Setting::EndpointName {
                                "Endpoint"
                            } else {
                                "MonitoringSchedule"
                            }
                        ),
                    ));
                }
            }
        }
        Ok(s)
    }

    fn with_overrides_unchecked(&self, o: &Overrides) -> Result<Settings, InvalidSetting> {
        let mut s = self.clone();
        let uri = |setting: Setting, v: &Option<String>| -> Result<Option<S3Uri>, InvalidSetting> {
            v.as_deref()
                .map(|u| S3Uri::parse(u).map_err(|r| invalid(setting, r)))
                .transpose()
        };
        if let Some(m) = &o.capture_mode {
            s.capture_mode = CaptureMode::parse(m).map_err(|r| invalid(Setting::CaptureMode, r))?;
        }
        if let Some(f) = &o.batch_output_format {
            s.batch_format =
                parse_batch_format(f).map_err(|r| invalid(Setting::BatchOutputFormat, r))?;
        }
        if o.endpoint_name.is_some() {
            s.endpoint_name = o.endpoint_name.clone();
        }
        if let Some(v) = &o.variant_name {
            s.variant_name = v.clone();
        }
        if let Some(u) = uri(Setting::CaptureS3Uri, &o.capture_s3_uri)? {
            s.capture = u;
        }
        if let Some(u) = uri(Setting::GroundTruthS3Uri, &o.ground_truth_s3_uri)? {
            s.ground_truth = Some(u);
        }
        if let Some(u) = uri(Setting::ReportS3Uri, &o.report_s3_uri)? {
            s.report = u;
        }
        if let Some(p) = &o.problem_type {
            s.problem_type = Some(parse_problem(p).map_err(|r| invalid(Setting::ProblemType, r))?);
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
                return Err(invalid(
                    Setting::MetricsDimensions,
                    format!("{k:?}={v:?}: names must be 1-255 and values 1-1024 characters"),
                ));
            }
            s.metrics_dimensions = d.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        s.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_are_trimmed_and_checked() {
        assert_eq!(
            parse_feature_names("pickup_count, history_12slots").unwrap(),
            ["pickup_count", "history_12slots"]
        );
        assert!(parse_feature_names("a,").is_err());
        assert!(parse_feature_names("a,a").is_err());
    }

    #[test]
    fn quantiles_are_distinct_and_inside_the_unit_interval() {
        assert_eq!(parse_quantiles("0.1, 0.5,0.9").unwrap(), [0.1, 0.5, 0.9]);
        assert_eq!(parse_quantiles("0.05").unwrap(), [0.05]);
        for bad in [
            "", "0", "1", "1.5", "-0.1", "0.5,0.5", "x", "0.1,,0.9", "NaN",
        ] {
            assert!(parse_quantiles(bad).is_err(), "{bad:?}");
        }
        let twenty: Vec<String> = (1..=20).map(|i| format!("0.{i:02}")).collect();
        assert_eq!(parse_quantiles(&twenty.join(",")).unwrap().len(), 20);
        let twenty_one: Vec<String> = (1..=21).map(|i| format!("0.{i:02}")).collect();
        assert!(
            parse_quantiles(&twenty_one.join(","))
                .unwrap_err()
                .contains("at most 20")
        );
    }

    #[test]
    fn a_setting_serialises_as_its_request_field() {
        for s in [
            Setting::CaptureMode,
            Setting::BatchOutputFormat,
            Setting::EndpointName,
            Setting::VariantName,
            Setting::CaptureS3Uri,
            Setting::GroundTruthS3Uri,
            Setting::ReportS3Uri,
            Setting::ProblemType,
            Setting::ProbabilityThreshold,
            Setting::MetricsNamespace,
            Setting::MetricsDimensions,
            Setting::MonitoringScheduleName,
            Setting::FeatureNames,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.field());
            assert_eq!(
                s.env_var().replace('_', "").to_ascii_lowercase(),
                s.field().to_ascii_lowercase()
            );
        }
    }
}
