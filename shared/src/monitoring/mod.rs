//! Custom model monitoring around the metrics engine: the domain rules of the `custom-metrics`
//! function, free of AWS calls.
//!
//! * [`trigger`]: schedule, ground-truth upload and direct invocation → windows.
//! * [`window`]: window arithmetic, offsets for late labels.
//! * [`layout`]: capture, ground-truth and report keys in S3.
//! * [`manifest`]: batch-transform capture manifests.
//! * [`dedup`]: the burst rule for ground-truth uploads.
//! * [`report`]: CloudWatch datums and the EventBridge event of a run.

pub mod dedup;
pub mod layout;
pub mod manifest;
pub mod report;
pub mod trigger;
pub mod window;

pub use layout::{ReportUris, Target};
pub use trigger::{DirectRequest, Overrides, Planned, Trigger, parse_trigger, plan_windows};
pub use window::{Window, WindowRule};
