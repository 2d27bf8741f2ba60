//! The alarms the loop creates and keeps per model: for each catalogue alarm with
//! `"threshold": "servedPackage"`, one complete CloudWatch metric alarm on the model's monitored
//! stage endpoint — Model Monitor's namespace for the metric (`feature_*` in
//! `aws/sagemaker/Endpoints/data-metrics`, the rest in `.../model-metrics`), dimensions
//! `Endpoint` and `MonitoringSchedule` as custom-metrics publishes them, the model's window as
//! the period (CloudWatch's longest, one day, for longer windows), and threshold and comparison
//! from the served package's model-quality constraint.
//!
//! `TreatMissingData` is `ignore`: a window without ground truth publishes no metric, and
//! `ignore` keeps the alarm's state, so a gap never flips ALARM -> INSUFFICIENT_DATA -> ALARM into
//! a second retraining (the template's `AlarmTreatMissingData` default, for the same reason).
//!
//! The description starts with [`MANAGED_MARKER`]: that is how a reconcile tells the loop's alarms
//! from others under the same name prefix (one `DescribeAlarms`, no per-alarm tag reads). Tags
//! name the model (`driftloop:model`, `driftloop:stage`); CloudWatch applies tags on creation only.
//!
//! Pure (no SDK): deploy-on-approval's converge and reconcile put what [`AlarmTemplate::spec`]
//! gives through the `AlarmThresholds` port.

use serde::{Deserialize, Serialize};

use super::model::{Alarm, Model, ThresholdSource};

/// The first word of every loop-managed alarm's description.
pub const MANAGED_MARKER: &str = "driftloop-managed";
pub const MODEL_TAG: &str = "driftloop:model";
pub const STAGE_TAG: &str = "driftloop:stage";
/// CloudWatch's longest alarm period.
pub const MAX_PERIOD_SECONDS: u32 = 86_400;
/// A model without `monitoring` (no metric yet): an hour, the windows' default.
pub const DEFAULT_PERIOD_SECONDS: u32 = 3_600;
pub const MODEL_NAMESPACE: &str = "aws/sagemaker/Endpoints/model-metrics";
pub const DATA_NAMESPACE: &str = "aws/sagemaker/Endpoints/data-metrics";

/// Everything of a loop-managed alarm but its threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmTemplate {
    pub name: String,
    pub group: String,
    pub stage: String,
    pub endpoint: String,
    pub metric: String,
    pub namespace: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    pub treat_missing_data: String,
    pub tags: Vec<(String, String)>,
}

/// A complete metric alarm, as put and as described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricAlarmSpec {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
}

impl MetricAlarmSpec {
    /// The fields in which `self` (described) differs from `desired`.
    pub fn differences(&self, desired: &MetricAlarmSpec) -> Vec<&'static str> {
        let mut d = Vec::new();
        let mut check = |field: &'static str, same: bool| {
            if !same {
                d.push(field)
            }
        };
        check("description", self.description == desired.description);
        check("namespace", self.namespace == desired.namespace);
        check("metric", self.metric == desired.metric);
        let sorted = |v: &[(String, String)]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        check(
            "dimensions",
            sorted(&self.dimensions) == sorted(&desired.dimensions),
        );
        check("statistic", self.statistic == desired.statistic);
        check("period", self.period_seconds == desired.period_seconds);
        check(
            "evaluationPeriods",
            self.evaluation_periods == desired.evaluation_periods,
        );
        check(
            "datapointsToAlarm",
            self.datapoints_to_alarm == desired.datapoints_to_alarm,
        );
        check("threshold", self.threshold == desired.threshold);
        check(
            "comparisonOperator",
            self.comparison_operator == desired.comparison_operator,
        );
        check(
            "treatMissingData",
            self.treat_missing_data == desired.treat_missing_data,
        );
        d
    }

    /// Whether the description marks it as the loop's.
    pub fn is_managed(&self) -> bool {
        self.description.starts_with(MANAGED_MARKER)
    }
}

/// Model Monitor's namespace of a metric as custom-metrics publishes it for an endpoint.
pub fn namespace_of(metric: &str) -> &'static str {
    if metric.starts_with("feature_") {
        DATA_NAMESPACE
    } else {
        MODEL_NAMESPACE
    }
}

/// The alarm's period: the model's window, within CloudWatch's 60 s to one day.
pub fn period_seconds(m: &Model) -> u32 {
    m.monitoring
        .as_ref()
        .map_or(DEFAULT_PERIOD_SECONDS, |mon| {
            mon.window_minutes.saturating_mul(60)
        })
        .clamp(60, MAX_PERIOD_SECONDS)
}

/// The template of a catalogue alarm the loop manages (`servedPackage`), `None` for an
/// `external` one or one on a stage the model does not have.
pub fn template(m: &Model, a: &Alarm) -> Option<AlarmTemplate> {
    if a.threshold != ThresholdSource::ServedPackage {
        return None;
    }
    let stage = m.stages.get(a.stage)?;
    let schedule = m
        .monitoring
        .as_ref()
        .map_or("custom-metrics", |mon| mon.schedule_name.as_str());
    let mut dimensions = vec![
        ("Endpoint".to_owned(), stage.endpoint_name.clone()),
        ("MonitoringSchedule".to_owned(), schedule.to_owned()),
    ];
    dimensions.sort();
    Some(AlarmTemplate {
        name: a.name.clone(),
        group: m.group.clone(),
        stage: a.stage.as_str().to_owned(),
        endpoint: stage.endpoint_name.clone(),
        metric: a.metric.clone(),
        namespace: namespace_of(&a.metric).to_owned(),
        dimensions,
        // Drift: one drifted window in the period is drift (the template's drift alarms).
        statistic: if a.metric.starts_with("feature_baseline_drift") {
            "Maximum".to_owned()
        } else {
            "Average".to_owned()
        },
        period_seconds: period_seconds(m),
        evaluation_periods: 1,
        treat_missing_data: "ignore".to_owned(),
        tags: vec![
            (MODEL_TAG.to_owned(), m.group.clone()),
            (STAGE_TAG.to_owned(), a.stage.as_str().to_owned()),
        ],
    })
}

/// The loop-managed alarms of a model.
pub fn templates(m: &Model) -> Vec<AlarmTemplate> {
    m.alarms.iter().filter_map(|a| template(m, a)).collect()
}

impl AlarmTemplate {
    /// The complete alarm with the served package's threshold.
    pub fn spec(
        &self,
        threshold: f64,
        comparison_operator: &str,
        package: &str,
    ) -> MetricAlarmSpec {
        let mut description = format!(
            "{MANAGED_MARKER}: {} of model {} ({} endpoint {}) against the model-quality constraint of the served package {package}; created and updated by deploy-on-approval from the catalogue - change the catalogue, not the alarm",
            self.metric, self.group, self.stage, self.endpoint
        );
        if description.len() > 1024 {
            let mut cut = 1024;
            while !description.is_char_boundary(cut) {
                cut -= 1;
            }
            description.truncate(cut);
        }
        MetricAlarmSpec {
            name: self.name.clone(),
            description,
            namespace: self.namespace.clone(),
            metric: self.metric.clone(),
            dimensions: self.dimensions.clone(),
            statistic: self.statistic.clone(),
            period_seconds: self.period_seconds,
            evaluation_periods: self.evaluation_periods,
            datapoints_to_alarm: self.evaluation_periods,
            threshold,
            comparison_operator: comparison_operator.to_owned(),
            treat_missing_data: self.treat_missing_data.clone(),
        }
    }
}
