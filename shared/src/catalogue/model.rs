//! The catalogue document: one JSON object, `{"version": 1, "models": [...]}`, one entry per model
//! package group. Every object rejects fields it does not know (`deny_unknown_fields`), so a typo
//! is an error naming the field instead of a setting silently left at its default.
//!
//! The fields mirror deploy-on-approval's and retrain-on-alarm's environment one to one (see
//! README "Many models (catalogue)"); [`super::deploy`] and [`super::retrain`] turn an entry into
//! the domain types those use cases already take (`deploy::StageConfig`, `retrain::RetrainSettings`).
//! This module and [`super::validate`] stay free of the AWS SDK (the `driftloop-metrics` CLI
//! validates a catalogue without it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::ProblemType;

/// The one format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalogue {
    pub version: u32,
    pub models: Vec<Model>,
}

/// One model package group and everything the loop manages for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Model {
    /// The Model Registry group (`ModelPackageGroupName`).
    pub group: String,
    /// The role the group's SageMaker models run with; default: the function's
    /// `SAGEMAKER_EXECUTION_ROLE_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    pub problem: Problem,
    /// Data capture of the group's endpoints (`DATA_CAPTURE_*`); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    pub stages: Stages,
    /// What custom-metrics evaluates; no monitoring when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    #[serde(default)]
    pub baselines: Baselines,
    /// The model's alarms: the threshold each follows, and whether it retrains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<Alarm>,
    /// The model-build pipeline its alarms (and schedule rules) start; no retraining when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<Retraining>,
}

/// The problem type and where the prediction, score and label live (custom-metrics'
/// `PROBLEM_TYPE`, `INFERENCE_ATTRIBUTE`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Problem {
    /// `Regression`, `BinaryClassification`, `MulticlassClassification` or `Forecast`.
    #[serde(rename = "type")]
    pub problem_type: ProblemType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_attribute: Option<String>,
    /// Binary: positive when the score is above it (0-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_label: Option<String>,
    /// Forecast only: the quantiles scored, each in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_quantiles: Option<Vec<f64>>,
    /// Forecast only: MASE's seasonality (1-10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_seasonality: Option<u32>,
    /// Names of the captured CSV columns in capture order (`FEATURE_NAMES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_names: Option<Vec<String>>,
}

/// `DATA_CAPTURE_S3_URI`, `DATA_CAPTURE_SAMPLING_PERCENTAGE`, `DATA_CAPTURE_*_CONTENT_TYPES`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capture {
    pub destination_s3_uri: String,
    #[serde(default = "default_sampling")]
    pub sampling_percentage: u8,
    #[serde(default = "default_csv")]
    pub csv_content_types: Vec<String>,
    #[serde(default = "default_json")]
    pub json_content_types: Vec<String>,
}

fn default_sampling() -> u8 {
    100
}
fn default_csv() -> Vec<String> {
    vec!["text/csv".to_owned()]
}
fn default_json() -> Vec<String> {
    vec!["application/json".to_owned()]
}

/// The group's stages: staging always (it serves the latest approved package), production when
/// present (it serves the latest approved package promoted to production).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stages {
    pub staging: StageSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<StageSpec>,
}

/// The stage names of the document (`deploy::Stage`'s spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    Staging,
    Production,
}

impl StageName {
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Staging => "staging",
            StageName::Production => "production",
        }
    }
}

impl Stages {
    /// The configured stages, staging first.
    pub fn iter(&self) -> impl Iterator<Item = (StageName, &StageSpec)> {
        std::iter::once((StageName::Staging, &self.staging))
            .chain(self.production.iter().map(|p| (StageName::Production, p)))
    }

    pub fn get(&self, stage: StageName) -> Option<&StageSpec> {
        match stage {
            StageName::Staging => Some(&self.staging),
            StageName::Production => self.production.as_ref(),
        }
    }
}

/// One stage's endpoint (`{STAGE}_*` variables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageSpec {
    pub endpoint_name: String,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    #[serde(default = "default_instance_count")]
    pub instance_count: u32,
    /// Blue/green traffic shifting; a plain update when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// Alarms (at most 10) that roll a deployment back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_alarms: Vec<String>,
    /// Target tracking on invocations per instance; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoScalingSpec>,
}

fn default_instance_type() -> String {
    "ml.m5.large".to_owned()
}
fn default_instance_count() -> u32 {
    1
}

/// `{STAGE}_DEPLOYMENT`'s traffic routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Routing {
    AllAtOnce,
    Canary,
    Linear,
}

impl Routing {
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::AllAtOnce => "ALL_AT_ONCE",
            Routing::Canary => "CANARY",
            Routing::Linear => "LINEAR",
        }
    }
}

/// Blue/green deployment (`{STAGE}_DEPLOYMENT`, `_DEPLOYMENT_WAIT_SECONDS`,
/// `_TERMINATION_WAIT_SECONDS`, `_DEPLOYMENT_TIMEOUT_SECONDS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    pub routing: Routing,
    /// CANARY and LINEAR: the percentage of capacity shifted (first, or per step), 1-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    #[serde(default = "default_wait")]
    pub wait_seconds: u32,
    #[serde(default)]
    pub termination_wait_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

fn default_wait() -> u32 {
    300
}

/// `{STAGE}_AUTOSCALING_*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoScalingSpec {
    #[serde(default = "default_min_capacity")]
    pub min_capacity: u32,
    pub max_capacity: u32,
    #[serde(default = "default_target")]
    pub target_invocations: u32,
    #[serde(default = "default_scale_in")]
    pub scale_in_cooldown_seconds: u32,
    #[serde(default = "default_scale_out")]
    pub scale_out_cooldown_seconds: u32,
}

fn default_min_capacity() -> u32 {
    1
}
fn default_target() -> u32 {
    100
}
fn default_scale_in() -> u32 {
    300
}
fn default_scale_out() -> u32 {
    60
}

/// What custom-metrics evaluates for the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Monitoring {
    /// The stages whose endpoints are monitored (each its own capture and metrics).
    pub stages: Vec<StageName>,
    /// Where the labels land (`yyyy/mm/dd/hh/*.jsonl` below it).
    pub ground_truth_s3_uri: String,
    /// Where reports are written; default: the function's `REPORT_S3_URI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_s3_uri: Option<String>,
    #[serde(default = "default_window")]
    pub window_minutes: u32,
    #[serde(default)]
    pub window_offset_minutes: u32,
    /// Default: `windowOffsetMinutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth_delay_minutes: Option<u32>,
    #[serde(default)]
    pub data_quality: DataQuality,
    /// The `MonitoringSchedule` dimension and report folder.
    #[serde(default = "default_schedule")]
    pub schedule_name: String,
}

fn default_window() -> u32 {
    60
}
fn default_schedule() -> String {
    "custom-metrics".to_owned()
}

/// `DATA_QUALITY`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DataQuality {
    /// On with a data-quality baseline.
    #[default]
    Auto,
    On,
    Off,
}

impl DataQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            DataQuality::Auto => "auto",
            DataQuality::On => "on",
            DataQuality::Off => "off",
        }
    }
}

/// Which baselines the monitoring compares with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Baselines {
    #[serde(default)]
    pub policy: BaselinePolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BaselinePolicy {
    /// Those of the package the endpoint serves, else (reported) the group's latest approved one.
    #[default]
    ServedPackage,
    /// No baselines: metrics without constraint checks.
    None,
}

impl BaselinePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselinePolicy::ServedPackage => "servedPackage",
            BaselinePolicy::None => "none",
        }
    }
}

/// One CloudWatch alarm of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alarm {
    pub name: String,
    /// The metric it watches (e.g. `f1`, `rmse`, `accuracy`, `feature_baseline_drift_age`).
    pub metric: String,
    /// The stage whose endpoint's metric it watches.
    #[serde(default = "default_alarm_stage")]
    pub stage: StageName,
    pub threshold: ThresholdSource,
    /// Whether its transition into ALARM starts the model's retraining pipeline.
    #[serde(default = "default_true")]
    pub retrain: bool,
}

fn default_alarm_stage() -> StageName {
    StageName::Production
}
fn default_true() -> bool {
    true
}

/// Where an alarm's threshold comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ThresholdSource {
    /// deploy-on-approval sets it from the deployed package's model-quality constraint on the
    /// metric (`{STAGE}_ALARM_NAME` / `{STAGE}_ALARM_METRIC`); at most one per stage.
    ServedPackage,
    /// Set outside the loop (the template, an operator); the loop only reads the alarm.
    External,
}

impl ThresholdSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdSource::ServedPackage => "servedPackage",
            ThresholdSource::External => "external",
        }
    }
}

/// The model-build pipeline and its parameters (`ALARM_PIPELINES`, `PIPELINE_PARAMETERS`,
/// `CONTEXT_PARAMETERS`, `COOLDOWN`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retraining {
    /// Pipeline name or ARN.
    pub pipeline: String,
    /// Fixed parameters: strings, numbers, booleans.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Value>,
    /// Trigger facts passed as parameters: `{"alarm": "TriggerAlarm", "value": "DriftValue"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context_parameters: BTreeMap<ContextFact, String>,
    /// EventBridge schedule rules whose `Scheduled Event`s retrain this model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule_rules: Vec<String>,
    /// No new execution while one started less than this long ago (`90s`, `30m`, `6h`, `7d`);
    /// default: the function's `COOLDOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<String>,
}

/// A trigger fact (retrain-on-alarm's `CONTEXT_PARAMETERS` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContextFact {
    Trigger,
    Alarm,
    Metric,
    Namespace,
    Value,
    Threshold,
    Time,
    Reason,
}

impl ContextFact {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextFact::Trigger => "trigger",
            ContextFact::Alarm => "alarm",
            ContextFact::Metric => "metric",
            ContextFact::Namespace => "namespace",
            ContextFact::Value => "value",
            ContextFact::Threshold => "threshold",
            ContextFact::Time => "time",
            ContextFact::Reason => "reason",
        }
    }
}

impl Catalogue {
    pub fn model(&self, group: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.group == group)
    }

    /// The model with a stage on `endpoint`.
    pub fn model_of_endpoint(&self, endpoint: &str) -> Option<&Model> {
        self.models
            .iter()
            .find(|m| m.stages.iter().any(|(_, s)| s.endpoint_name == endpoint))
    }

    /// The model that owns the alarm (or lists the schedule rule) named `name`.
    pub fn model_of_trigger(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| {
            m.alarms.iter().any(|a| a.name == name)
                || m.retraining
                    .as_ref()
                    .is_some_and(|r| r.schedule_rules.iter().any(|s| s == name))
        })
    }

    /// The model whose retraining pipeline is `pipeline`.
    pub fn model_of_pipeline(&self, pipeline: &str) -> Option<&Model> {
        self.models.iter().find(|m| {
            m.retraining
                .as_ref()
                .is_some_and(|r| r.pipeline == pipeline)
        })
    }
}
