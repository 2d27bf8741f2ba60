//! Custom model monitoring around the metrics engine: the `custom-metrics` function's use case,
//! evaluating one window ([`run::evaluate_window`]), over the ports it touches.
//!
//! * [`trigger`]: schedule, ground-truth upload and direct invocation → windows.
//! * [`window`]: window arithmetic, offsets for late labels.
//! * [`settings`]: the settings of a run, a direct request's overrides, and which setting is wrong.
//! * [`baselines`]: the baselines of the package the endpoint serves (or of the group's latest
//!   approved package, reported), fetched once per invocation.
//! * [`served`]: which package an endpoint serves (endpoint → config → model → package).
//! * [`layout`]: capture, ground-truth and report keys in S3.
//! * [`manifest`]: batch-transform capture manifests.
//! * [`inputs`]: listing the capture and ground-truth objects a window reads.
//! * [`dedup`]: the burst rule for ground-truth uploads.
//! * [`feed`]: the engine's configuration for a window, and its inputs streamed through it.
//! * [`outcome`]: the status rules and a window's entry in the output.
//! * [`publication`]: provisional and final figures, one datum set per window and stream.
//! * [`report`]: CloudWatch datums and the EventBridge event of a run.
//! * [`run`]: one window end to end — reports, metrics and event, each publication retried.
//! * [`fanout`]: many endpoints in one invocation (the catalogue's schedule), each target's windows
//!   through the same steps, concurrently within a bound, one failure not stopping the others.
//! * [`scaleout`]: the Step Functions mode — a window's slices computed by workers, merged once.
//! * [`error`]: what can fail a window's evaluation.

pub mod baselines;
pub mod dedup;
pub mod error;
pub mod fanout;
pub mod feed;
pub mod inputs;
pub mod layout;
pub mod manifest;
pub mod outcome;
pub mod publication;
pub mod report;
pub mod run;
pub mod scaleout;
pub mod served;
pub mod settings;
pub mod trigger;
pub mod window;

pub use baselines::{
    BaselineSource, Baselines, PredictionBaseline, PredictionSource, resolve_baselines,
    resolve_prediction_baseline, resolve_served_baselines,
};
pub use error::RunError;
pub use layout::{ReportUris, Target};
pub use outcome::{OutcomeStatus, WindowOutcome, WindowStatus};
pub use publication::Publication;
pub use run::{Clock, RunContext, Source, evaluate_window, evaluate_window_from, system_clock};
pub use served::{Served, ServingReads, Unserved, VariantModel, served_package};
pub use settings::{CaptureMode, InvalidSetting, Setting, Settings};
pub use trigger::{
    DirectRequest, Overrides, Planned, Trigger, TriggerKind, parse_trigger, plan_windows,
};
pub use window::{Window, WindowRule};
