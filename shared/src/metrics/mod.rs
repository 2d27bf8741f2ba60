//! The metrics engine: joins SageMaker data capture with ground truth and computes Model Monitor's
//! model-quality and data-quality metrics. No AWS SDK dependency (builds with
//! `--no-default-features`).
//!
//! The tree, dependencies pointing down only:
//! * [`engine`]: the [`Engine`] API (feed, snapshot, merge, finish) over `engine::lines` (line
//!   stepping over a `BufRead`), `engine::join` (the ground-truth store: UUID keys, the
//!   open-addressing table, label packing, prefetch), `engine::ingest` (per-record rules by
//!   problem type) and `engine::result` (counts, [`EngineState`], [`JobResult`], the typed
//!   CloudWatch metrics).
//! * [`parse`]: lines into records. Its `LineParser` tries, per line, a learned line shape, else
//!   the hand-written scanner, else serde; the three tiers yield identical records and errors.
//!   [`parse::record`] (the record types) is a leaf.
//! * [`quality`] and [`dq`]: the model-quality metrics and the data-quality statistics and checks.
//! * [`util`]: numeric, hashing, text (CSV, JSON paths, labels) and time helpers; [`config`]: the
//!   job configuration.
//!
//! Formats follow the team's Model Monitor fact sheet. Choices where it is silent are documented in
//! the submodules:
//! * [`engine`]: which side of the join is buffered (ground truth), duplicates (last label wins,
//!   first capture wins), the time window, counts and error samples.
//! * [`quality`]: standard deviations by hashed 80% subsamples; [`quality::binary`]: `p >
//!   threshold`, exact AUC, curve thinning, best constant classifier;
//!   [`quality::multiclass`]: majority-class constant classifier; [`quality::forecast`]: how
//!   forecasts and actuals are captured and matched.
//! * [`dq`]: Deequ type inference, KLL sketch layout, baseline spellings and defaults, the six
//!   checks and χ².
//! * [`parse`]: capture and ground-truth lines of the usual shape are read by a hand-written
//!   single-pass scanner; anything else (escapes in the fields read, unusual types, syntax errors,
//!   batch rows, ...) by serde, with identical records and errors. Before either, the parser tries
//!   the few line layouts it has recently seen: a line equal to a learned one outside its values
//!   is read straight from those values.
//!
//! # Tools
//! * CLI (not a Lambda: needs the `cli` feature, which `cargo lambda build` does not enable):
//!   `cargo run -p driftloop --no-default-features --features cli --bin driftloop-metrics -- --help`
//! * Benchmark (release): `driftloop-metrics-bench generate --records 1000000 --out DIR` then
//!   `driftloop-metrics-bench all --dir DIR --python <venv>/bin/python --peer tests/python/bench_peer.py
//!   --runs 5 --repeat 3` (figures in the README).
//! * Reference test vs scikit-learn: `pytest tests/python/test_metrics_reference.py`
//!   (`DRIFTLOOP_METRICS_BIN` = the CLI binary, else it is built with cargo).
//! * Fuzzing: `cd fuzz && cargo +nightly fuzz run capture_line` (also `ground_truth_line`,
//!   `baseline_files`); property tests run with `cargo test`.
//!
//! # Usage
//! ```
//! use driftloop::metrics::{CloudWatchMetric, Engine, MonitorConfig, ProblemType};
//! let cfg = MonitorConfig { problem_type: Some(ProblemType::BinaryClassification), ..Default::default() };
//! let mut engine = Engine::new(cfg);
//! let gt = r#"{"groundTruthData":{"data":"1","encoding":"CSV"},"eventMetadata":{"eventId":"e1"},"eventVersion":"0"}"#;
//! engine.push_ground_truth_line(gt, "gt.jsonl", 1).unwrap();
//! let cap = r#"{"captureData":{"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.9","encoding":"CSV"}},"eventMetadata":{"eventId":"e1","inferenceTime":"2024-01-01T00:00:00Z"},"eventVersion":"0"}"#;
//! engine.push_capture_line(cap, "capture.jsonl", 1);
//! let result = engine.finish().unwrap();
//! assert_eq!(result.counts.matched, 1);
//! let _statistics = result.statistics_json();
//! let _violations = result.violations_json();
//! let _for_cloudwatch: Vec<CloudWatchMetric> = result.cloudwatch_metrics();
//! ```

pub mod config;
pub mod dq;
pub mod engine;
pub mod parse;
pub mod quality;
pub mod util;

pub use config::{CaptureFormat, MonitorConfig, OutputColumnsPosition, ProblemType};
pub use dq::baseline::{BaselineConstraints, BaselineStatistics};
pub use dq::checks::{DriftResult, Violation};
pub use dq::stats::DataQualityState;
pub use engine::{
    CloudWatchMetric, Counts, Engine, EngineError, EngineState, ErrorSample, JobResult,
    LineAssembler, MetricKind,
};
pub use quality::{Metric, QualityReport, QualityState};
