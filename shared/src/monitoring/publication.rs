//! One figure per window and stream: what a window's CloudWatch figure is when the window is
//! computed more than once.
//!
//! CloudWatch cannot replace a datapoint: a second `PutMetricData` for the same metric, dimensions
//! and timestamp is *aggregated* with the first (an alarm's `Average` blends them, a dashboard's
//! `Sum` of `records_*` doubles). A window is computed several times — when its labels land
//! (S3 events), by its scheduled run, by a retry or a backfill — so each run is one of:
//!
//! | publication | runs | CloudWatch |
//! |---|---|---|
//! | `provisional` | ground-truth uploads (labels may still be arriving), direct requests for a window not due yet | the *provisional stream*: the same namespace, metric names and dimensions **plus `Publication=provisional`** — a different metric, never in the alarm's statistic; at most one datum set per window (the first provisional run's) |
//! | `final` | the scheduled run (the last word on its window), and direct requests (backfills) for a due window (`end + offset <= now`) | Model Monitor's metric (the alarm's, the dashboard's): **exactly one datum set per window**, from the first final run |
//! | `revision` | any run after a *different* run put the window's final figure | nothing: the reports and the event carry the new figures; CloudWatch keeps the final one |
//!
//! What went to CloudWatch is recorded per stream in the window's folder
//! (`cloudwatch-final.json`, `cloudwatch-provisional.json`: run id, datums, calls sent), after
//! every `PutMetricData` call. So a retry of the same inputs — a redelivered event, Lambda's retry
//! after a later failure (e.g. `PutEvents`), a re-run of the schedule — publishes nothing twice: a
//! run with the stream's recorded run id resumes after the calls already sent (none when
//! complete), any other run publishes nothing to that stream. One stream per marker object, so a
//! provisional and a final run racing never overwrite each other's record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::trigger::TriggerKind;
use super::window::{Window, WindowRule};

/// The dimension that separates the provisional stream from Model Monitor's metric.
pub const PUBLICATION_DIMENSION: &str = "Publication";

/// What a run's figures are (the `publication` of its event and `summary.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Publication {
    Provisional,
    Final,
    Revision,
}

impl Publication {
    pub fn as_str(&self) -> &'static str {
        match self {
            Publication::Provisional => "provisional",
            Publication::Final => "final",
            Publication::Revision => "revision",
        }
    }

    /// What a run asks to be before the record of the window's earlier runs is consulted:
    /// ground-truth uploads are provisional, the scheduled run is final (the last word: its
    /// window is due by construction, at the event's time), a direct run is final once the window
    /// is due (`end + offset <= now`: a backfill), provisional before.
    pub fn requested(
        trigger: TriggerKind,
        rule: &WindowRule,
        w: &Window,
        now: DateTime<Utc>,
    ) -> Publication {
        match trigger {
            TriggerKind::GroundTruthUpload => Publication::Provisional,
            TriggerKind::Schedule => Publication::Final,
            TriggerKind::Direct if rule.is_due(w, now) => Publication::Final,
            TriggerKind::Direct => Publication::Provisional,
        }
    }
}

/// The two CloudWatch streams of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Provisional,
    Final,
}

impl Stream {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stream::Provisional => "provisional",
            Stream::Final => "final",
        }
    }

    /// The extra dimension of the stream's datums (none for the final one: Model Monitor's
    /// metric, which alarms and dashboards watch).
    pub fn dimension(&self) -> Option<(String, String)> {
        match self {
            Stream::Provisional => Some((PUBLICATION_DIMENSION.to_owned(), "provisional".into())),
            Stream::Final => None,
        }
    }
}

/// What a window's stream holds in CloudWatch (the stream's marker object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub run_id: String,
    pub published_at: String,
    pub datums: usize,
    /// `PutMetricData` calls of the run, and how many of them went through.
    pub calls: usize,
    pub calls_sent: usize,
}

impl Entry {
    pub fn complete(&self) -> bool {
        self.calls_sent >= self.calls
    }
}

/// Both streams' entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    pub provisional: Option<Entry>,
    pub final_: Option<Entry>,
}

impl Ledger {
    pub fn get(&self, s: Stream) -> Option<&Entry> {
        match s {
            Stream::Provisional => self.provisional.as_ref(),
            Stream::Final => self.final_.as_ref(),
        }
    }

    pub fn set(&mut self, s: Stream, e: Entry) {
        match s {
            Stream::Provisional => self.provisional = Some(e),
            Stream::Final => self.final_ = Some(e),
        }
    }

    /// `{"final": entry | null, "provisional": entry | null}` (summary.json's `cloudwatch`).
    pub fn to_json(&self) -> Value {
        json!({"final": self.final_, "provisional": self.provisional})
    }
}

/// What a run does with CloudWatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Put the datums to `stream`, skipping the first `resume_after` calls (sent by an earlier
    /// attempt of this very run).
    Publish { stream: Stream, resume_after: usize },
    /// Put nothing, because.
    Skip(String),
}

/// The rule: the run's publication and what it puts to CloudWatch, given what the window's
/// streams already hold and the run's id (same id = same window and inputs).
pub fn decide(requested: Publication, ledger: &Ledger, run_id: &str) -> (Publication, Plan) {
    if let Some(f) = &ledger.final_ {
        if f.run_id == run_id {
            let plan = if f.complete() {
                Plan::Skip(format!(
                    "the window's final figure, from these same inputs (run {run_id}), is already in CloudWatch"
                ))
            } else {
                Plan::Publish {
                    stream: Stream::Final,
                    resume_after: f.calls_sent,
                }
            };
            return (Publication::Final, plan);
        }
        return (
            Publication::Revision,
            Plan::Skip(format!(
                "the window's final figure is already in CloudWatch (run {}, {}); CloudWatch cannot replace a datapoint and would average a second one with it: this revision is in the reports and the event only",
                f.run_id, f.published_at
            )),
        );
    }
    let stream = match requested {
        Publication::Final => Stream::Final,
        _ => Stream::Provisional,
    };
    match ledger.get(stream) {
        None => (
            requested,
            Plan::Publish {
                stream,
                resume_after: 0,
            },
        ),
        Some(e) if e.run_id == run_id && !e.complete() => (
            requested,
            Plan::Publish {
                stream,
                resume_after: e.calls_sent,
            },
        ),
        Some(e) => (
            requested,
            Plan::Skip(format!(
                "the window's {} figure is already in CloudWatch (run {}, {}); one datum set per window and stream, so CloudWatch never averages two runs{}",
                stream.as_str(),
                e.run_id,
                e.published_at,
                if stream == Stream::Provisional {
                    "; the final run publishes the alarm's figure"
                } else {
                    ""
                }
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(run: &str, calls: usize, sent: usize) -> Entry {
        Entry {
            run_id: run.into(),
            published_at: "2024-05-01T11:05:00Z".into(),
            datums: 12,
            calls,
            calls_sent: sent,
        }
    }

    #[test]
    fn uploads_are_provisional_and_the_schedule_final_once_due() {
        let rule = WindowRule {
            minutes: 60,
            offset_minutes: 60,
            ground_truth_delay_minutes: 60,
        };
        let at = |h, m| Utc.with_ymd_and_hms(2024, 5, 1, h, m, 0).unwrap();
        let w = Window::new(at(9, 0), at(10, 0)).unwrap();
        assert_eq!(
            Publication::requested(TriggerKind::GroundTruthUpload, &rule, &w, at(13, 0)),
            Publication::Provisional
        );
        assert_eq!(
            Publication::requested(TriggerKind::Schedule, &rule, &w, at(11, 5)),
            Publication::Final
        );
        assert_eq!(
            Publication::requested(TriggerKind::Direct, &rule, &w, at(10, 30)),
            Publication::Provisional
        );
        assert_eq!(
            Publication::requested(TriggerKind::Direct, &rule, &w, at(11, 0)),
            Publication::Final
        );
        assert_eq!(
            serde_json::to_value(Publication::Revision).unwrap(),
            "revision"
        );
    }

    #[test]
    fn each_stream_gets_one_datum_set_per_window() {
        let empty = Ledger::default();
        assert_eq!(
            decide(Publication::Provisional, &empty, "a"),
            (
                Publication::Provisional,
                Plan::Publish {
                    stream: Stream::Provisional,
                    resume_after: 0
                }
            )
        );
        // A second provisional run (more labels): nothing more in the provisional stream.
        let prov = Ledger {
            provisional: Some(entry("a", 1, 1)),
            final_: None,
        };
        let (p, plan) = decide(Publication::Provisional, &prov, "b");
        assert_eq!(p, Publication::Provisional);
        assert!(matches!(plan, Plan::Skip(r) if r.contains("provisional figure")));
        // The final run still publishes, to the final stream.
        assert_eq!(
            decide(Publication::Final, &prov, "c").1,
            Plan::Publish {
                stream: Stream::Final,
                resume_after: 0
            }
        );
        // After the final: the same inputs publish nothing, other inputs are a revision.
        let fin = Ledger {
            provisional: Some(entry("a", 1, 1)),
            final_: Some(entry("c", 2, 2)),
        };
        let (p, plan) = decide(Publication::Final, &fin, "c");
        assert_eq!(p, Publication::Final);
        assert!(matches!(plan, Plan::Skip(_)));
        for requested in [Publication::Final, Publication::Provisional] {
            let (p, plan) = decide(requested, &fin, "d");
            assert_eq!(p, Publication::Revision);
            assert!(matches!(plan, Plan::Skip(r) if r.contains("run c")));
        }
        // A retry of a run whose publication stopped half-way resumes after the calls sent.
        let half = Ledger {
            provisional: None,
            final_: Some(entry("c", 3, 1)),
        };
        assert_eq!(
            decide(Publication::Final, &half, "c").1,
            Plan::Publish {
                stream: Stream::Final,
                resume_after: 1
            }
        );
        assert_eq!(
            fin.to_json()["final"]["callsSent"],
            2,
            "summary.json's record"
        );
    }
}
