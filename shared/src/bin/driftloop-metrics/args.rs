//! The command line of `driftloop-metrics`: its commands and their arguments (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "driftloop-metrics",
    version,
    about = "Compute SageMaker Model Monitor's model-quality and data-quality metrics on local files",
    long_about = "Compute SageMaker Model Monitor's model-quality and data-quality metrics on local files.\n\n\
        Point it at a folder of data-capture files (the .jsonl files SageMaker writes under\n\
        <capture prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/) and a folder of ground-truth files\n\
        (<prefix>/yyyy/mm/dd/hh/*.jsonl). It joins each label to its prediction (ground-truth eventId =\n\
        the capture's inferenceId, else its eventId), computes the metrics Model Monitor computes, and\n\
        writes Model-Monitor-shaped statistics.json and constraint_violations.json plus a summary.\n\n\
        Examples:\n  \
        driftloop-metrics run --capture capture/ --ground-truth labels/ --problem-type binary-classification --output out/\n  \
        driftloop-metrics run --capture capture/ --data-quality --baseline-statistics stats.json --baseline-constraints constraints.json --output out/\n  \
        driftloop-metrics suggest-baseline --dataset train.csv --header --output baseline/\n  \
        driftloop-metrics calibrate --capture ref/ --ground-truth ref-labels/ --probability-attribute 0 --output cal/\n  \
        driftloop-metrics run --capture today/ --calibration cal/calibration.json --output out/\n\n\
        Exit status: 0 = no violations, 3 = violations found, 2 = error."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub(crate) enum Command {
    /// Evaluate captured predictions (and/or their inputs) over a window of files.
    Run(RunArgs),
    /// Merge partial states of `run --state-out` (any split of the files) and write the files
    /// `run` writes, as one `run` over all the files would.
    Merge(MergeArgs),
    /// Write a data-quality baseline (statistics.json + constraints.json) from a training dataset.
    SuggestBaseline(SuggestArgs),
    /// Write the reference calibration (calibration.json) of a binary classifier's scores from a
    /// labelled reference window, for `run --calibration` (performance estimated before labels).
    Calibrate(CalibrateArgs),
    /// The model catalogue (the `CATALOGUE_S3_URI` document): check a change before uploading it.
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
}

#[derive(Subcommand)]
pub(crate) enum CatalogueCommand {
    /// Validate a catalogue file and print, per model, what the loop will manage (endpoints,
    /// alarms with their threshold source, pipeline, monitored windows). Exit status: 0 = valid,
    /// 1 = invalid (every error is printed, naming the model and the field), 2 = unreadable.
    Validate {
        /// The catalogue JSON document.
        file: PathBuf,
        /// The stack's catalogue name prefix (stack parameter CatalogueNamePrefix, default
        /// `<stack name>-`): groups, endpoints, pipelines and execution roles must start with it.
        #[arg(long)]
        name_prefix: Option<String>,
        /// The stack's alarm prefix, `<stack name>.<AlarmNamePrefix>`: alarm names must start with it.
        #[arg(long)]
        alarm_prefix: Option<String>,
        /// `s3://<data bucket>/<name prefix>`: capture, ground-truth and report URIs must lie under it.
        #[arg(long)]
        data_s3_uri: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Problem {
    Regression,
    BinaryClassification,
    MulticlassClassification,
    Forecast,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Real-time endpoint data capture (.jsonl with captureData/eventMetadata)
    Realtime,
    /// Batch transform CSV output with GenerateInferenceId (last two columns: id, time)
    BatchCsv,
    /// Batch transform JSON-lines output with SageMakerInferenceId/SageMakerInferenceTime
    BatchJson,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Position {
    /// Output columns first, then the request's columns (Model Monitor's default)
    Start,
    /// The request's columns first, then the output columns
    End,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Capture files or folders (searched recursively; files read in path order).
    #[arg(long, required_unless_present = "state_out", num_args = 1..)]
    pub(crate) capture: Vec<PathBuf>,
    /// Ground-truth files or folders (needed for model quality).
    #[arg(long, num_args = 1..)]
    pub(crate) ground_truth: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    pub(crate) checks: CheckArgs,
    /// Write the engine's partial state (JSON) here: states of runs over any split of the capture
    /// and ground-truth files add up (`driftloop-metrics merge`) to one run over all of them.
    /// With it, --ground-truth may be left out (a run over capture only, or labels only).
    #[arg(long)]
    pub(crate) state_out: Option<PathBuf>,
    /// Threads reading and parsing the files (the same files as one thread): labels read into
    /// one shared table, capture joined against it (the broadcast join; with --state-out, one
    /// partial engine per thread, states merged). 0 = every available core. Default: every
    /// core, or 1 with --state-out (partial states cost ~2x the CPU on more threads).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Output folder.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// Show progress on stderr (default: when stderr is a terminal).
    #[arg(long)]
    pub(crate) progress: bool,
}

/// What is computed and how records are read (shared by `run` and `merge`: partial states are
/// merged and finished under the configuration they were computed with).
#[derive(Args)]
pub(crate) struct ConfigArgs {
    /// What the model predicts. Omit for data quality only.
    #[arg(long, value_enum)]
    pub(crate) problem_type: Option<Problem>,
    /// Where the predicted label/value is in the model output: a CSV column index (0, 1, ...) or a
    /// JSON path (predicted_label, predictions[0].label).
    #[arg(long)]
    pub(crate) inference_attribute: Option<String>,
    /// Where the score/probability is (binary), or the probability vector (multiclass).
    #[arg(long)]
    pub(crate) probability_attribute: Option<String>,
    /// Binary: predict the positive class when probability > this.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) probability_threshold: f64,
    /// Where the label is inside groundTruthData.data (CSV index or JSON path; default: all of it).
    #[arg(long)]
    pub(crate) ground_truth_attribute: Option<String>,
    /// Binary: the positive class label.
    #[arg(long, default_value = "1")]
    pub(crate) positive_label: String,
    /// Binary: the negative class label (other labels are counted and skipped).
    #[arg(long, default_value = "0")]
    pub(crate) negative_label: String,
    #[arg(long, value_enum, default_value = "realtime")]
    pub(crate) capture_format: Format,
    /// Only records with inferenceTime >= this (e.g. 2024-01-01T00:00:00Z).
    #[arg(long)]
    pub(crate) window_start: Option<String>,
    /// Only records with inferenceTime < this.
    #[arg(long)]
    pub(crate) window_end: Option<String>,
    /// Also compute data-quality statistics of the captured columns.
    #[arg(long)]
    pub(crate) data_quality: bool,
    /// Data quality: leave the model-output columns out (Model Monitor puts them first).
    #[arg(long)]
    pub(crate) no_output_columns: bool,
    /// Data quality: where a record's model-output columns go among its CSV columns (Model
    /// Monitor's output_columns_position).
    #[arg(long, value_enum, default_value = "start")]
    pub(crate) output_columns_position: Position,
    /// Data quality: names of the CSV columns in their order (output columns first with
    /// --output-columns-position start), comma separated. Default: the baseline's feature names
    /// by position (a header-named baseline matches headerless capture), else _c0, _c1, ...
    /// A baseline with one name per request column leaves the output columns out.
    #[arg(long)]
    pub(crate) feature_names: Option<String>,
    /// Prediction drift: track the model's output (--probability-attribute, else
    /// --inference-attribute, else the whole output) and write prediction_statistics.json, the
    /// prediction baseline of later windows.
    #[arg(long)]
    pub(crate) prediction_drift: bool,
    /// Forecast: quantiles to score, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.5,0.9")]
    pub(crate) quantiles: Vec<f64>,
    /// Forecast: MASE seasonality.
    #[arg(long, default_value_t = 1)]
    pub(crate) seasonality: usize,
    /// Seed of the standard-deviation subsamples.
    #[arg(long, default_value_t = 0x5EED_D41F)]
    pub(crate) seed: u64,
    /// Maximum points of the ROC and precision-recall curves.
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_curve_points: usize,
}

/// Baselines, constraints and what else `run` and `merge` write.
#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Data-quality baseline statistics.json (for drift checks).
    #[arg(long)]
    pub(crate) baseline_statistics: Option<PathBuf>,
    /// Data-quality baseline constraints.json (turns on the six checks; implies --data-quality).
    #[arg(long)]
    pub(crate) baseline_constraints: Option<PathBuf>,
    /// Prediction drift against this statistics.json (a prediction_statistics.json, or a
    /// data-quality baseline with --prediction-feature); implies --prediction-drift. Methods and
    /// thresholds: --baseline-constraints' monitoring_config (and the overrides of a feature named
    /// like the prediction feature), else the defaults.
    #[arg(long)]
    pub(crate) prediction_baseline: Option<PathBuf>,
    /// The feature of --prediction-baseline that holds the model output (default: `prediction`,
    /// else the file's only feature).
    #[arg(long)]
    pub(crate) prediction_feature: Option<String>,
    /// Model-quality constraints.json (metric thresholds).
    #[arg(long)]
    pub(crate) model_quality_constraints: Option<PathBuf>,
    /// Also write suggested constraints from this data: model quality (current values as
    /// thresholds) and, with data quality, a data-quality constraints.json (use the
    /// data-quality statistics as the matching baseline statistics.json).
    #[arg(long)]
    pub(crate) suggest_constraints: bool,
    /// Binary classification: a calibration.json (from `calibrate`) to estimate accuracy,
    /// precision, recall, F1 and ROC AUC from the scores alone, without ground truth
    /// (`estimated_*` metrics, estimation.json).
    #[arg(long)]
    pub(crate) calibration: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// Partial states written by `run --state-out` (any split of the capture and ground-truth
    /// files; each file in exactly one run).
    #[arg(required = true, num_args = 1..)]
    pub(crate) states: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    pub(crate) checks: CheckArgs,
    /// Also write the merged partial state here (it merges further).
    #[arg(long)]
    pub(crate) state_out: Option<PathBuf>,
    /// Output folder: the files `run` writes.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}

#[derive(Args)]
pub(crate) struct SuggestArgs {
    /// Training data: CSV (one row per record) or JSON lines (flat objects).
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) dataset: Vec<PathBuf>,
    /// CSV files have a header row with column names.
    #[arg(long)]
    pub(crate) header: bool,
    /// The dataset is JSON lines instead of CSV.
    #[arg(long)]
    pub(crate) json_lines: bool,
    /// Output folder for statistics.json and constraints.json.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}

#[derive(Args)]
pub(crate) struct CalibrateArgs {
    /// Reference capture files or folders (searched recursively).
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) capture: Vec<PathBuf>,
    /// Reference ground-truth files or folders.
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) ground_truth: Vec<PathBuf>,
    /// Where the score/probability of the positive class is in the model output (CSV index or
    /// JSON path; default: the whole output).
    #[arg(long)]
    pub(crate) probability_attribute: Option<String>,
    /// Predict the positive class when probability > this.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) probability_threshold: f64,
    /// Where the label is inside groundTruthData.data (CSV index or JSON path).
    #[arg(long)]
    pub(crate) ground_truth_attribute: Option<String>,
    #[arg(long, default_value = "1")]
    pub(crate) positive_label: String,
    #[arg(long, default_value = "0")]
    pub(crate) negative_label: String,
    #[arg(long, value_enum, default_value = "realtime")]
    pub(crate) capture_format: Format,
    /// Only records with inferenceTime >= this.
    #[arg(long)]
    pub(crate) window_start: Option<String>,
    /// Only records with inferenceTime < this.
    #[arg(long)]
    pub(crate) window_end: Option<String>,
    /// Score bins (default: one per 200 labels, at most 100).
    #[arg(long)]
    pub(crate) bins: Option<usize>,
    /// Flag an estimate unreliable when more than this share of the window's scores lies
    /// outside the reference's scores.
    #[arg(long, default_value_t = driftloop::metrics::quality::calibration::DEFAULT_MAX_OUT_OF_REFERENCE)]
    pub(crate) max_out_of_reference: f64,
    /// Output folder (calibration.json).
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}
