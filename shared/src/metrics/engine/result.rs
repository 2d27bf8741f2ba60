//! What a job produces: record counts, error samples, the mergeable [`EngineState`] of a partial
//! job, the [`JobResult`] with its Model Monitor reports and CloudWatch metrics, and the engine's
//! errors.

use super::partial::JoinRows;
use crate::metrics::config::{MonitorConfig, ProblemType};
use crate::metrics::dq::checks::{DriftResult, Violation, violations_json};
use crate::metrics::dq::stats::{ColumnState, DataQualityState};
use crate::metrics::quality::estimate::{Estimate, ScoreHistogram};
use crate::metrics::quality::{QualityReport, QualityState};
use crate::metrics::util::format_time_millis;
use serde::{Deserialize, Serialize};

/// Engine-level errors (bad input lines are counted, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("ground truth fed after capture: feed all ground truth first")]
    GroundTruthAfterCapture,
    #[error("reading {source_name}: {error}")]
    Io {
        source_name: String,
        error: std::io::Error,
    },
    #[error("cannot merge: {0}")]
    Merge(String),
    #[error("invalid constraints: {0}")]
    Constraints(String),
    /// The buffered ground truth would outgrow [`super::Engine::with_ground_truth_limit`].
    #[error(
        "the ground truth needs more than the {} MiB allowed for buffered labels ({labels} labels held when {source_name} went past the limit)",
        limit_bytes >> 20
    )]
    GroundTruthTooLarge {
        limit_bytes: u64,
        labels: u64,
        source_name: String,
    },
}

/// Record counts of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub capture_lines: u64,
    pub ground_truth_lines: u64,
    pub blank_lines: u64,
    pub malformed_capture: u64,
    pub malformed_ground_truth: u64,
    pub outside_window: u64,
    /// Capture records joined with a label (first capture of each id).
    pub matched: u64,
    pub unmatched_predictions: u64,
    pub unmatched_labels: u64,
    pub duplicate_capture_ids: u64,
    pub duplicate_ground_truth_ids: u64,
    /// Matched records whose prediction could not be read (missing attribute, NaN score, ...).
    pub invalid_predictions: u64,
    /// Matched records whose label could not be used (not a number, not one of the classes, ...).
    pub invalid_labels: u64,
    /// Records that reached the model-quality metrics.
    pub evaluated: u64,
    /// Capture records that reached data-quality statistics.
    pub data_quality_records: u64,
    /// Data-quality records whose positional column count disagrees with the baseline's (or
    /// `feature_names`') column count (see [`crate::metrics::dq::naming`]).
    #[serde(default)]
    pub data_quality_column_mismatch: u64,
    /// Capture records whose output could not be read for prediction drift.
    #[serde(default)]
    pub prediction_drift_unreadable: u64,
}

impl Counts {
    pub(super) fn merge(&mut self, o: &Counts) {
        self.capture_lines += o.capture_lines;
        self.ground_truth_lines += o.ground_truth_lines;
        self.blank_lines += o.blank_lines;
        self.malformed_capture += o.malformed_capture;
        self.malformed_ground_truth += o.malformed_ground_truth;
        self.outside_window += o.outside_window;
        self.matched += o.matched;
        self.unmatched_predictions += o.unmatched_predictions;
        self.unmatched_labels += o.unmatched_labels;
        self.duplicate_capture_ids += o.duplicate_capture_ids;
        self.duplicate_ground_truth_ids += o.duplicate_ground_truth_ids;
        self.invalid_predictions += o.invalid_predictions;
        self.invalid_labels += o.invalid_labels;
        self.evaluated += o.evaluated;
        self.data_quality_records += o.data_quality_records;
        self.data_quality_column_mismatch += o.data_quality_column_mismatch;
        self.prediction_drift_unreadable += o.prediction_drift_unreadable;
    }
}

/// A `source:line` sample of a skipped line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub source: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for ErrorSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

/// Everything mergeable about a (partial) job. Serialize it from workers, merge, then
/// [`Engine::merge_state`](super::Engine::merge_state) + [`Engine::finish`](super::Engine::finish).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineState {
    pub counts: Counts,
    pub error_samples: Vec<ErrorSample>,
    pub quality: Option<QualityState>,
    pub data_quality: Option<DataQualityState>,
    /// The model's output as one column (`prediction`), for prediction drift.
    #[serde(default)]
    pub prediction: Option<ColumnState>,
    pub min_inference_time_ms: Option<i64>,
    pub max_inference_time_ms: Option<i64>,
    /// Scores binned by the reference calibration (label-free estimation), when one is given.
    #[serde(default)]
    pub estimation: Option<ScoreHistogram>,
    /// A partial state's join rows ([`Engine::partial`](super::Engine::partial)): per id the
    /// capture record and the label that can win the join, resolved when the merged state is
    /// finished. None in a single-pass state (its join is done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinRows>,
}

/// Name of the prediction column (in `prediction_statistics.json` and violations).
pub const PREDICTION_COLUMN: &str = "prediction";

impl EngineState {
    pub(super) fn new(cfg: &MonitorConfig) -> EngineState {
        EngineState {
            counts: Counts::default(),
            error_samples: Vec::new(),
            quality: cfg.problem_type.map(|p| {
                let mut q = QualityState::new(p, cfg);
                if let QualityState::Forecast(f) = &mut q {
                    f.seasonality = cfg.seasonality;
                }
                q
            }),
            data_quality: cfg
                .data_quality
                .then(|| DataQualityState::new(cfg.max_categories)),
            prediction: cfg
                .prediction_drift
                .then(|| ColumnState::new(PREDICTION_COLUMN.into())),
            min_inference_time_ms: None,
            max_inference_time_ms: None,
            estimation: None,
            join: None,
        }
    }

    /// A copy without the join rows (which can be large).
    pub(super) fn clone_without_join(&self) -> EngineState {
        EngineState {
            counts: self.counts.clone(),
            error_samples: self.error_samples.clone(),
            quality: self.quality.clone(),
            data_quality: self.data_quality.clone(),
            prediction: self.prediction.clone(),
            min_inference_time_ms: self.min_inference_time_ms,
            max_inference_time_ms: self.max_inference_time_ms,
            estimation: self.estimation.clone(),
            join: None,
        }
    }

    /// Merges another state. Partial states ([`Engine::partial`](super::Engine::partial)) add up
    /// exactly: merged in any order and grouping, then finished, they give the single-pass result
    /// (see [`super::partial`]). Single-pass states (from [`Engine::new`](super::Engine::new)) are
    /// merged as they are: their joins are done, so they add up only over inputs that share no id.
    /// Error samples: the `max_error_samples` smallest by `(source, line, message)` are kept.
    pub fn merge(&mut self, o: &EngineState, max_error_samples: usize) -> Result<(), EngineError> {
        self.counts.merge(&o.counts);
        self.error_samples.extend(o.error_samples.iter().cloned());
        sort_samples(&mut self.error_samples);
        self.error_samples.truncate(max_error_samples);
        match (&mut self.join, &o.join) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.join = Some(b.clone()),
            _ => {}
        }
        match (&mut self.quality, &o.quality) {
            (Some(a), Some(b)) => a.merge(b).map_err(EngineError::Merge)?,
            (None, Some(b)) => self.quality = Some(b.clone()),
            _ => {}
        }
        match (&mut self.data_quality, &o.data_quality) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.data_quality = Some(b.clone()),
            _ => {}
        }
        match (&mut self.estimation, &o.estimation) {
            (Some(a), Some(b)) => a.merge(b).map_err(EngineError::Merge)?,
            (None, Some(b)) => self.estimation = Some(b.clone()),
            _ => {}
        }
        match (&mut self.prediction, &o.prediction) {
            (Some(a), Some(b)) => a.merge(b, max_categories(&self.data_quality)),
            (None, Some(b)) => self.prediction = Some(b.clone()),
            _ => {}
        }
        self.min_inference_time_ms = opt_min(self.min_inference_time_ms, o.min_inference_time_ms);
        self.max_inference_time_ms = opt_max(self.max_inference_time_ms, o.max_inference_time_ms);
        Ok(())
    }
}

/// Sorts error samples by `(source, line, message)`.
pub(super) fn sort_samples(v: &mut [ErrorSample]) {
    v.sort_by(|a, b| (&a.source, a.line, &a.message).cmp(&(&b.source, b.line, &b.message)));
}

/// Keeps a sample if it is among the `max` smallest by `(source, line, message)` seen so far —
/// a rule that gives the same samples however the input is split (the message is built only
/// when the sample can be kept).
pub(super) fn keep_sample(
    samples: &mut Vec<ErrorSample>,
    max: usize,
    source: &str,
    line: u64,
    msg: impl FnOnce() -> String,
) {
    if samples.len() < max {
        samples.push(ErrorSample {
            source: source.to_string(),
            line,
            message: msg(),
        });
        return;
    }
    let Some((i, worst)) = samples.iter().enumerate().max_by(|(_, a), (_, b)| {
        (&a.source, a.line, &a.message).cmp(&(&b.source, b.line, &b.message))
    }) else {
        return;
    };
    if (worst.source.as_str(), worst.line) < (source, line) {
        return;
    }
    let message = msg();
    if (source, line, message.as_str())
        < (worst.source.as_str(), worst.line, worst.message.as_str())
    {
        samples[i] = ErrorSample {
            source: source.to_string(),
            line,
            message,
        };
    }
}

fn max_categories(dq: &Option<DataQualityState>) -> usize {
    dq.as_ref().map_or(10_000, |d| d.max_categories)
}

pub(super) fn opt_min(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
pub(super) fn opt_max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// What a CloudWatch metric of a job measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A model-quality metric (`accuracy`, `auc`, `mse`, ...), named as in `statistics.json`.
    ModelQuality,
    /// `feature_data_<f>`: the mean of a numeric data-quality column.
    FeatureMean,
    /// `feature_non_null_<f>`: the share of rows where the column is not null.
    FeatureCompleteness,
    /// `feature_baseline_drift_<f>`: the column's distance from its baseline distribution.
    FeatureDrift,
    /// A label-free estimate (`estimated_<metric>`, `estimated_<metric>_std`,
    /// `estimation_out_of_reference_share`, `estimation_reliable`): see
    /// [`crate::metrics::quality::estimate`].
    Estimate,
    /// `feature_<statistic>_<f>` (`feature_psi_<f>`, `feature_ks_pvalue_<f>`, ...): one drift
    /// statistic of a column (see [`crate::metrics::dq::drift`]).
    FeatureDriftStatistic,
    /// `prediction_<statistic>` and `prediction_baseline_drift`: drift of the model's output.
    PredictionDrift,
}

impl MetricKind {
    /// Whether the metric is about the data (a feature) rather than the model.
    pub fn is_data_quality(self) -> bool {
        !matches!(self, MetricKind::ModelQuality | MetricKind::Estimate)
    }
}

/// One metric for CloudWatch (see [`JobResult::cloudwatch_metrics`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchMetric {
    pub name: String,
    pub value: f64,
    pub kind: MetricKind,
}

/// The outcome of a job.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub problem_type: Option<ProblemType>,
    pub evaluation_time: String,
    pub counts: Counts,
    pub error_samples: Vec<ErrorSample>,
    pub quality: Option<QualityReport>,
    pub data_quality: Option<DataQualityState>,
    pub violations: Vec<Violation>,
    pub drift: Vec<DriftResult>,
    /// The model output's column (prediction drift on).
    pub prediction: Option<ColumnState>,
    /// Drift of the model's output (score or predicted class) against the prediction baseline.
    pub prediction_drift: Option<DriftResult>,
    pub min_inference_time_ms: Option<i64>,
    pub max_inference_time_ms: Option<i64>,
    /// The label-free estimate, when the engine was given a calibration and saw scores.
    pub estimation: Option<Estimate>,
}

impl JobResult {
    /// Model-quality `statistics.json` (None without a problem type).
    pub fn model_quality_statistics_json(&self) -> Option<serde_json::Value> {
        let (p, q) = (self.problem_type?, self.quality.as_ref()?);
        let mut m = serde_json::Map::new();
        m.insert("version".into(), serde_json::json!(0.0));
        m.insert("dataset".into(), serde_json::json!({ "item_count": q.item_count, "evaluation_time": self.evaluation_time }));
        m.insert(
            p.statistics_key().into(),
            serde_json::Value::Object(q.metrics_json.clone()),
        );
        Some(serde_json::Value::Object(m))
    }

    /// `prediction_statistics.json`: the model output's statistics in Model Monitor's shape (one
    /// feature, `prediction`) — the prediction baseline of later windows. None without
    /// prediction drift.
    pub fn prediction_statistics_json(&self) -> Option<serde_json::Value> {
        let c = self.prediction.as_ref()?;
        Some(serde_json::json!({
            "version": 0.0,
            "dataset": { "item_count": c.types.non_null() + c.types.unknown },
            "features": [c.to_json()],
        }))
    }

    /// Data-quality `statistics.json` (None when data quality was not computed).
    pub fn data_quality_statistics_json(&self) -> Option<serde_json::Value> {
        self.data_quality
            .as_ref()
            .map(DataQualityState::statistics_json)
    }

    /// The job's `statistics.json`: model quality when a problem type is set, else data quality.
    pub fn statistics_json(&self) -> serde_json::Value {
        self.model_quality_statistics_json()
            .or_else(|| self.data_quality_statistics_json())
            .unwrap_or_else(
                || serde_json::json!({ "version": 0.0, "dataset": { "item_count": 0 } }),
            )
    }

    /// `constraint_violations.json`.
    pub fn violations_json(&self) -> serde_json::Value {
        violations_json(&self.violations)
    }

    /// Model Monitor's job message.
    pub fn job_message(&self) -> String {
        if self.violations.is_empty() {
            "Completed: Job completed successfully with no violations.".into()
        } else {
            format!(
                "CompletedWithViolations: Job completed successfully with {} violations.",
                self.violations.len()
            )
        }
    }

    /// The job's metrics for CloudWatch, each with its kind: model-quality metric names as in
    /// `statistics.json`, then per data-quality column `feature_data_<f>` (mean) and
    /// `feature_non_null_<f>` (completeness share), then `feature_baseline_drift_<f>` (distance),
    /// then every drift statistic `feature_<statistic>_<f>`, then the prediction's drift.
    /// NaN / ±inf are left out (CloudWatch rejects them).
    pub fn cloudwatch_metrics(&self) -> Vec<CloudWatchMetric> {
        let mut out = Vec::new();
        let mut push = |name: String, value: f64, kind: MetricKind| {
            out.push(CloudWatchMetric { name, value, kind })
        };
        if let Some(q) = &self.quality {
            for (n, m) in &q.scalars {
                push(n.clone(), m.value, MetricKind::ModelQuality);
            }
        }
        if let Some(dq) = &self.data_quality {
            let rows = dq.item_count as f64;
            for c in &dq.columns {
                if c.inferred_type().is_numeric() && c.num.n > 0 {
                    push(
                        format!("feature_data_{}", c.name),
                        c.num.mean,
                        MetricKind::FeatureMean,
                    );
                }
                if rows > 0.0 {
                    push(
                        format!("feature_non_null_{}", c.name),
                        c.types.non_null() as f64 / rows,
                        MetricKind::FeatureCompleteness,
                    );
                }
            }
        }
        for d in &self.drift {
            push(
                format!("feature_baseline_drift_{}", d.feature),
                d.distance,
                MetricKind::FeatureDrift,
            );
        }
        if let Some(e) = &self.estimation {
            for (n, v) in e.scalars() {
                push(n, v, MetricKind::Estimate);
            }
        }
        for d in &self.drift {
            for (s, v) in &d.statistics {
                push(
                    format!("feature_{}_{}", s.key(), d.feature),
                    *v,
                    MetricKind::FeatureDriftStatistic,
                );
            }
        }
        if let Some(d) = &self.prediction_drift {
            push(
                "prediction_baseline_drift".into(),
                d.distance,
                MetricKind::PredictionDrift,
            );
            for (s, v) in &d.statistics {
                push(
                    format!("prediction_{}", s.key()),
                    *v,
                    MetricKind::PredictionDrift,
                );
            }
        }
        out.retain(|m| m.value.is_finite());
        out
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let c = &self.counts;
        let mut s = String::new();
        let _ = writeln!(s, "driftloop metrics — {}", self.job_message());
        let _ = writeln!(
            s,
            "input: {} capture lines, {} ground-truth lines, {} blank",
            c.capture_lines, c.ground_truth_lines, c.blank_lines
        );
        if let (Some(a), Some(b)) = (self.min_inference_time_ms, self.max_inference_time_ms) {
            let _ = writeln!(
                s,
                "inference time: {} .. {}",
                format_time_millis(a),
                format_time_millis(b)
            );
        }
        let _ = writeln!(
            s,
            "skipped: {} malformed capture, {} malformed ground truth, {} outside window",
            c.malformed_capture, c.malformed_ground_truth, c.outside_window
        );
        if let Some(p) = self.problem_type {
            let _ = writeln!(
                s,
                "join ({p:?}): {} matched, {} unmatched predictions, {} unmatched labels, {} duplicate capture ids (first wins), {} duplicate label ids (last wins)",
                c.matched,
                c.unmatched_predictions,
                c.unmatched_labels,
                c.duplicate_capture_ids,
                c.duplicate_ground_truth_ids
            );
            let _ = writeln!(
                s,
                "evaluated: {} ({} invalid predictions, {} invalid labels)",
                c.evaluated, c.invalid_predictions, c.invalid_labels
            );
        }
        if let Some(q) = &self.quality {
            for (n, m) in &q.scalars {
                match m.standard_deviation {
                    Some(sd) => {
                        let _ = writeln!(s, "  {n:<45} {:>12.6}  ± {sd:.6}", m.value);
                    }
                    None => {
                        let _ = writeln!(s, "  {n:<45} {:>12.6}", m.value);
                    }
                }
            }
        }
        if let Some(e) = &self.estimation {
            let _ = writeln!(
                s,
                "estimated (no labels needed): {} scored records, {:.1}% outside the reference, {}",
                e.records,
                100.0 * e.out_of_reference_share,
                if e.reliable {
                    "reliable"
                } else {
                    "UNRELIABLE (scores outside the reference's)"
                }
            );
            for (n, m) in &e.metrics {
                let _ = writeln!(s, "  {n:<45} {:>12.6}  ± {:.6}", m.value, m.std);
            }
        }
        if let Some(dq) = &self.data_quality {
            let _ = writeln!(
                s,
                "data quality: {} rows, {} columns",
                dq.item_count,
                dq.columns.len()
            );
        }
        for d in self.drift.iter().chain(&self.prediction_drift) {
            let _ = writeln!(
                s,
                "  drift {:<30} {:.6} ({}, threshold {})",
                d.feature,
                d.distance,
                d.statistic.key(),
                d.threshold
            );
        }
        for m in self.cloudwatch_metrics() {
            if matches!(
                m.kind,
                MetricKind::FeatureDriftStatistic | MetricKind::PredictionDrift
            ) {
                let _ = writeln!(s, "  {:<45} {:>12.6}", m.name, m.value);
            }
        }
        for v in &self.violations {
            let _ = writeln!(
                s,
                "VIOLATION {} {}: {}",
                v.constraint_check_type,
                v.feature_name
                    .as_deref()
                    .or(v.metric_name.as_deref())
                    .unwrap_or(""),
                v.description
            );
        }
        for e in &self.error_samples {
            let _ = writeln!(s, "sample skip: {e}");
        }
        s
    }
}
