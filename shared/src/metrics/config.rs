//! Job configuration: what to compute and where the prediction, probability and label live.

use serde::{Deserialize, Serialize};

/// Model Monitor's `problem_type`, plus `Forecast` (quantile forecasts, not in Model Monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProblemType {
    Regression,
    BinaryClassification,
    MulticlassClassification,
    Forecast,
}

impl ProblemType {
    pub fn parse(s: &str) -> Option<ProblemType> {
        match s.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "regression" => Some(ProblemType::Regression),
            "binaryclassification" | "binary" => Some(ProblemType::BinaryClassification),
            "multiclassclassification" | "multiclass" => {
                Some(ProblemType::MulticlassClassification)
            }
            "forecast" | "forecasting" => Some(ProblemType::Forecast),
            _ => None,
        }
    }
    /// Key of the metrics object in `statistics.json` and of the constraints object.
    pub fn statistics_key(self) -> &'static str {
        match self {
            ProblemType::Regression => "regression_metrics",
            ProblemType::BinaryClassification => "binary_classification_metrics",
            ProblemType::MulticlassClassification => "multiclass_classification_metrics",
            ProblemType::Forecast => "forecast_metrics",
        }
    }
    pub fn constraints_key(self) -> &'static str {
        match self {
            ProblemType::Regression => "regression_constraints",
            ProblemType::BinaryClassification => "binary_classification_constraints",
            ProblemType::MulticlassClassification => "multiclass_classification_constraints",
            ProblemType::Forecast => "forecast_constraints",
        }
    }
}

/// Layout of the capture input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CaptureFormat {
    /// Real-time endpoint data capture JSONL (`captureData` / `eventMetadata`). Lines that are not
    /// capture records but batch-transform JSON rows (`SageMakerInferenceId`) are accepted too.
    #[default]
    Realtime,
    /// Batch-transform CSV output with `GenerateInferenceId=true`: the last two columns are
    /// `<inference id>,<ISO time>`; `inference_attribute` indexes the remaining columns.
    BatchCsv,
    /// Batch-transform JSON-lines output with `SageMakerInferenceId` / `SageMakerInferenceTime`.
    BatchJson,
}

/// Model Monitor's `output_columns_position`: where a record's model-output columns go relative
/// to its input columns when data quality names columns by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutputColumnsPosition {
    /// Output columns first, then input columns (Model Monitor's default).
    #[default]
    Start,
    /// Input columns first, then output columns.
    End,
}

impl OutputColumnsPosition {
    pub fn parse(s: &str) -> Option<OutputColumnsPosition> {
        match s.to_ascii_lowercase().as_str() {
            "start" | "first" => Some(OutputColumnsPosition::Start),
            "end" | "last" => Some(OutputColumnsPosition::End),
            _ => None,
        }
    }
}

/// Configuration of one monitoring job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    /// None: data quality only (no ground truth needed).
    pub problem_type: Option<ProblemType>,
    /// Predicted label / value: CSV column index (`"0"`) or JSON path (`"predictions[0].label"`).
    pub inference_attribute: Option<String>,
    /// Score / probability (binary), probability vector (multiclass, optional).
    pub probability_attribute: Option<String>,
    /// Binary: predicted positive when `probability > probability_threshold` (strictly greater).
    pub probability_threshold: f64,
    /// Label location inside `groundTruthData.data` (CSV column index or JSON path). None: column 0
    /// of CSV, the whole value of JSON.
    pub ground_truth_attribute: Option<String>,
    /// Binary classes (canonical form: `1.0` == `1`). Labels that are neither are skipped and counted.
    pub positive_label: String,
    pub negative_label: String,
    pub capture_format: CaptureFormat,
    /// Keep records with `window_start_ms <= inferenceTime < window_end_ms` (epoch millis).
    /// Records without a parseable time are counted as `outside_window` when a window is set.
    pub window_start_ms: Option<i64>,
    pub window_end_ms: Option<i64>,
    /// Compute data-quality statistics of the captured columns.
    pub data_quality: bool,
    /// Data quality may include the model-output columns (Model Monitor does). With a baseline
    /// or `feature_names`, a record's output columns are included only when its column count
    /// asks for them (see [`crate::metrics::dq::naming`]); false: never included.
    pub dq_include_output: bool,
    /// Where the output columns go among a CSV record's columns (Model Monitor's
    /// `output_columns_position`; `Start` is its default).
    pub output_columns_position: OutputColumnsPosition,
    /// Names of the positional (CSV, JSON array) columns, in the order the columns are laid out
    /// (output columns first with `Start`); overrides the baseline's feature names. Neither:
    /// `_c0`, `_c1`, ...
    pub feature_names: Option<Vec<String>>,
    /// Seed of the standard-deviation subsampling.
    pub seed: u64,
    /// At most this many points in the ROC and precision-recall curves.
    pub max_curve_points: usize,
    /// Forecast quantiles (keys of DeepAR's `quantiles` object).
    pub forecast_quantiles: Vec<f64>,
    /// Forecast MASE seasonality m.
    pub seasonality: usize,
    /// How many `file:line` samples of malformed input to keep.
    pub max_error_samples: usize,
    /// Distinct values tracked per column for categorical buckets.
    pub max_categories: usize,
    /// Track the model's output — `probability_attribute`, else `inference_attribute`, else the
    /// whole output — as the column `prediction` for prediction drift (no labels needed; see
    /// [`crate::metrics::Engine::with_prediction_baseline`]).
    pub prediction_drift: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            problem_type: None,
            inference_attribute: None,
            probability_attribute: None,
            probability_threshold: 0.5,
            ground_truth_attribute: None,
            positive_label: "1".into(),
            negative_label: "0".into(),
            capture_format: CaptureFormat::Realtime,
            window_start_ms: None,
            window_end_ms: None,
            data_quality: false,
            dq_include_output: true,
            output_columns_position: OutputColumnsPosition::Start,
            feature_names: None,
            seed: 0x5EED_D41F,
            max_curve_points: 1000,
            forecast_quantiles: vec![0.1, 0.5, 0.9],
            seasonality: 1,
            max_error_samples: 5,
            max_categories: 10_000,
            prediction_drift: false,
        }
    }
}
