//! What one window came to: the status rules (evaluated with or without violations, nothing to
//! measure, not evaluated, failed) and the window's entry in the function's output.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::dedup::Decision;
use super::inputs::Inputs;
use super::publication::Publication;
use super::settings::{CaptureMode, Settings};
use super::window::Window;
use crate::metrics::JobResult;

/// The status of an evaluated window: the `status` of its event and its `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum WindowStatus {
    Completed,
    CompletedWithViolations,
    /// Evaluated, but nothing to measure ([`no_data`] says why).
    NoData,
}

impl WindowStatus {
    /// The status rule: no data wins over violations.
    pub fn of(no_data: bool, violations: usize) -> WindowStatus {
        match (no_data, violations) {
            (true, _) => WindowStatus::NoData,
            (false, 0) => WindowStatus::Completed,
            (false, _) => WindowStatus::CompletedWithViolations,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            WindowStatus::Completed => "Completed",
            WindowStatus::CompletedWithViolations => "CompletedWithViolations",
            WindowStatus::NoData => "NoData",
        }
    }
}

/// `NoData` and why, when the window had nothing to measure.
pub fn no_data(s: &Settings, inputs: &Inputs, r: &JobResult) -> Option<String> {
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

/// The status of a window in the function's output: `Completed`, `CompletedWithViolations`,
/// `NoData` (evaluated), `Skipped` (not evaluated), `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeStatus {
    Evaluated(WindowStatus),
    Skipped,
    Failed,
    /// Handed to the scale-out state machine ([`super::scaleout`]), which publishes it.
    ScaledOut,
}

impl OutcomeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OutcomeStatus::Evaluated(s) => s.as_str(),
            OutcomeStatus::Skipped => "Skipped",
            OutcomeStatus::Failed => "Failed",
            OutcomeStatus::ScaledOut => "ScaledOut",
        }
    }
}

impl Serialize for OutcomeStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for OutcomeStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The outcome of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowOutcome {
    pub window: Window,
    pub status: OutcomeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// S3-event runs: a [`Decision`] (`run`, `superseded`, `vanished`, `up_to_date`, `open`),
    /// as its text.
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
    /// Evaluated windows: `provisional`, `final` or `revision` ([`super::publication`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publication: Option<Publication>,
    pub metrics_published: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `ScaledOut`: the state machine's execution computing the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
}

impl WindowOutcome {
    /// A window not evaluated, and why.
    pub fn skipped(window: Window, decision: &Decision, reason: String) -> Self {
        WindowOutcome {
            window,
            status: OutcomeStatus::Skipped,
            reason: Some(reason),
            decision: Some(decision.as_str().to_owned()),
            run_id: None,
            counts: None,
            metrics: None,
            violation_count: 0,
            reports: None,
            publication: None,
            metrics_published: 0,
            metrics_skipped: None,
            event_id: None,
            execution_arn: None,
        }
    }

    /// A window whose evaluation failed with `reason`.
    pub fn failed(window: Window, reason: String) -> Self {
        WindowOutcome {
            status: OutcomeStatus::Failed,
            decision: None,
            ..WindowOutcome::skipped(window, &Decision::Run, reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialise_to_their_names() {
        assert_eq!(WindowStatus::of(true, 3), WindowStatus::NoData);
        assert_eq!(WindowStatus::of(false, 0), WindowStatus::Completed);
        assert_eq!(
            WindowStatus::of(false, 2),
            WindowStatus::CompletedWithViolations
        );
        for s in [
            WindowStatus::Completed,
            WindowStatus::CompletedWithViolations,
            WindowStatus::NoData,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            let o = OutcomeStatus::Evaluated(s);
            assert_eq!(serde_json::to_value(o).unwrap(), s.as_str());
        }
        assert_eq!(
            serde_json::to_string(&[OutcomeStatus::Skipped, OutcomeStatus::Failed]).unwrap(),
            r#"["Skipped","Failed"]"#
        );
        assert_eq!(OutcomeStatus::Skipped, "Skipped");
    }
}
