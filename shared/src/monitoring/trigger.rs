//! What started a run, and which windows it evaluates.
//!
//! | input | shape | windows |
//! |---|---|---|
//! | EventBridge `Scheduled Event` (source `aws.events`) | the rule's event | the last complete window at the event's `time` minus the offset ([`WindowRule::last_complete`]) |
//! | EventBridge `Object Created` (source `aws.s3`) on the ground-truth prefix | S3's event | every window that has *ended* and whose ground-truth range contains the object's hour folder ([`WindowRule::windows_reading_ground_truth_hour`]), at once — a *provisional* run ([`super::publication`]) — each subject to the burst rule ([`super::dedup`]); windows still open are skipped (`open`) |
//! | direct invocation, or a `Model Monitoring Requested` event (source `driftloop`) whose `detail` is the same object | [`DirectRequest`] | the explicit `window` (cut into `splitMinutes` windows for a backfill), else the last complete window at `time` (default: now) |
//!
//! A direct request may override any setting for that run ([`Overrides`]).
//!
//! Labels are written under the folder of their *upload* hour (`yyyy/mm/dd/hh/`, as Model Monitor
//! expects), so the labels of a window arrive in the folders of `[start, end + delay)`: with the
//! stack's defaults (hourly windows, `WINDOW_OFFSET_MINUTES=60`, the delay defaulting to the
//! offset), labels uploaded at 10:20 into `10/` are for the predictions of 09:00-10:00 (and of
//! 10:00-11:00, still open). That window has ended, so the upload's invocation evaluates it right
//! away. (Until issue 13 an upload only evaluated windows already *due* — `end + offset <= now` —
//! so the 10:20 labels waited for the 11:xx scheduled run; tests with past-dated folders, where
//! every window is long due, hid it.) The scheduled run stays the last word on the window: it is
//! the window's *final* run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::layout::{hour_of_key, is_under};
use super::window::{MAX_WINDOWS_PER_INVOCATION, Window, WindowRule, floor_hour};
use crate::events::{EventError, describe_shape, flexible_time, is_eventbridge, parse_time_value};
use crate::storage::S3Uri;

pub const SCHEDULE_SOURCE: &str = "aws.events";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
pub const S3_SOURCE: &str = "aws.s3";
pub const OBJECT_CREATED: &str = "Object Created";
pub const DRIFTLOOP_SOURCE: &str = crate::contract::SOURCE;
pub const MONITORING_REQUESTED: &str = crate::contract::DetailType::MonitoringRequested.as_str();

/// Per-run overrides of the configured settings (direct invocations). Absent fields keep the
/// environment's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overrides {
    pub endpoint_name: Option<String>,
    pub variant_name: Option<String>,
    pub capture_s3_uri: Option<String>,
    pub ground_truth_s3_uri: Option<String>,
    pub report_s3_uri: Option<String>,
    /// `realtime` or `batchTransform`.
    pub capture_mode: Option<String>,
    /// Batch transform output rows: `csv` or `json`.
    pub batch_output_format: Option<String>,
    pub problem_type: Option<String>,
    pub inference_attribute: Option<String>,
    pub probability_attribute: Option<String>,
    pub probability_threshold: Option<f64>,
    pub ground_truth_attribute: Option<String>,
    pub positive_label: Option<String>,
    pub negative_label: Option<String>,
    pub data_quality: Option<bool>,
    pub model_package_group_name: Option<String>,
    pub metrics_namespace: Option<String>,
    /// Extra CloudWatch dimensions (replacing the configured extra ones), `{"Name": "Value"}`.
    pub metrics_dimensions: Option<std::collections::BTreeMap<String, String>>,
    pub monitoring_schedule_name: Option<String>,
    pub event_bus_name: Option<String>,
}

/// An explicit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRequest {
    #[serde(with = "flexible_time")]
    pub start: DateTime<Utc>,
    #[serde(with = "flexible_time")]
    pub end: DateTime<Utc>,
}

/// A direct invocation: `{"window": {"start": "...", "end": "..."}, "splitMinutes": 60,
/// "time": "...", ...overrides}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectRequest {
    #[serde(default)]
    pub window: Option<WindowRequest>,
    /// Cut the window into consecutive windows of this many minutes (a backfill).
    #[serde(default)]
    pub split_minutes: Option<u32>,
    /// Without a window: evaluate the last complete window at this time (default: now).
    #[serde(default, with = "flexible_time::option")]
    pub time: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Trigger {
    #[serde(rename_all = "camelCase")]
    Schedule {
        time: DateTime<Utc>,
        rule: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    GroundTruthUpload {
        object: S3Uri,
        size: Option<u64>,
        time: Option<DateTime<Utc>>,
    },
    #[serde(rename_all = "camelCase")]
    Direct { request: Box<DirectRequest> },
}

/// Which of the three inputs started a run (the `trigger` of the event and the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TriggerKind {
    Schedule,
    GroundTruthUpload,
    Direct,
}

impl TriggerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerKind::Schedule => "schedule",
            TriggerKind::GroundTruthUpload => "groundTruthUpload",
            TriggerKind::Direct => "direct",
        }
    }
}

impl Trigger {
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::Schedule { .. } => TriggerKind::Schedule,
            Trigger::GroundTruthUpload { .. } => TriggerKind::GroundTruthUpload,
            Trigger::Direct { .. } => TriggerKind::Direct,
        }
    }

    pub fn overrides(&self) -> Overrides {
        match self {
            Trigger::Direct { request } => request.overrides.clone(),
            _ => Overrides::default(),
        }
    }
}

fn invalid(what: &str, reason: impl Into<String>) -> EventError {
    EventError::Invalid {
        what: what.to_owned(),
        reason: reason.into(),
    }
}

/// The keys a direct request may have (a typo is an error, not a silently ignored override).
pub fn known_request_keys() -> Vec<String> {
    let mut keys: Vec<String> = ["window", "splitMinutes", "time"]
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    if let Ok(Value::Object(m)) = serde_json::to_value(Overrides::default()) {
        keys.extend(m.keys().cloned());
    }
    keys
}

fn direct(value: Value) -> Result<Trigger, EventError> {
    if let Value::Object(m) = &value {
        let known = known_request_keys();
        if let Some(k) = m.keys().find(|k| !known.contains(k)) {
            return Err(invalid(
                "monitoring request",
                format!("unknown field {k:?}; expected one of {}", known.join(", ")),
            ));
        }
    }
    let request: DirectRequest =
        serde_json::from_value(value).map_err(|e| invalid("monitoring request", e.to_string()))?;
    Ok(Trigger::Direct {
        request: Box::new(request),
    })
}

pub fn parse_trigger(event: Value) -> Result<Trigger, EventError> {
    if !is_eventbridge(&event) {
        return match event {
            Value::Object(_) => direct(event),
            Value::Null => direct(Value::Object(Default::default())),
            other => Err(EventError::UnexpectedShape {
                expected: "an EventBridge Scheduled Event or S3 Object Created event, or a monitoring request object".into(),
                got: describe_shape(&other),
            }),
        };
    }
    let source = event["source"].as_str().unwrap_or_default();
    let detail_type = event["detail-type"].as_str().unwrap_or_default();
    let time = match event.get("time") {
        None | Some(Value::Null) => None,
        Some(t) => Some(parse_time_value(t).map_err(|r| invalid("time", r))?),
    };
    match (source, detail_type) {
        (SCHEDULE_SOURCE, SCHEDULED_EVENT) => {
            let time = time.ok_or_else(|| invalid("Scheduled Event", "it has no \"time\""))?;
            let rule = event["resources"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(Trigger::Schedule { time, rule })
        }
        (S3_SOURCE, OBJECT_CREATED) => {
            let d = &event["detail"];
            let bucket = d["bucket"]["name"]
                .as_str()
                .ok_or_else(|| invalid("Object Created event", "detail.bucket.name is missing"))?;
            let key = d["object"]["key"]
                .as_str()
                .ok_or_else(|| invalid("Object Created event", "detail.object.key is missing"))?;
            let object = S3Uri::parse(&format!("s3://{bucket}/{key}"))
                .map_err(|r| invalid("Object Created event", r))?;
            Ok(Trigger::GroundTruthUpload {
                object,
                size: d["object"]["size"].as_u64(),
                time,
            })
        }
        (DRIFTLOOP_SOURCE, MONITORING_REQUESTED) => direct(event["detail"].clone()),
        _ => Err(EventError::UnexpectedShape {
            expected: format!(
                "{SCHEDULE_SOURCE:?}/{SCHEDULED_EVENT:?}, {S3_SOURCE:?}/{OBJECT_CREATED:?} or {DRIFTLOOP_SOURCE:?}/{MONITORING_REQUESTED:?}"
            ),
            got: describe_shape(&event),
        }),
    }
}

/// A window to evaluate, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub window: Window,
    /// `None`: evaluate. `Some(reason)`: skipped before reading anything.
    pub skip: Option<String>,
}

/// The windows of a trigger. `ground_truth` is the configured ground-truth folder (S3 events on
/// other prefixes are ignored with an explanation rather than failing: a broad rule is harmless).
pub fn plan_windows(
    trigger: &Trigger,
    rule: &WindowRule,
    ground_truth: Option<&S3Uri>,
    now: DateTime<Utc>,
) -> Result<Result<Vec<Planned>, String>, EventError> {
    let run = |w: Window| Planned {
        window: w,
        skip: None,
    };
    Ok(Ok(match trigger {
        Trigger::Schedule { time, .. } => vec![run(rule.last_complete(*time))],
        Trigger::Direct { request } => match (&request.window, request.split_minutes) {
            (Some(w), None) => vec![run(
                Window::new(w.start, w.end).map_err(|r| invalid("window", r))?
            )],
            (Some(w), Some(m)) => WindowRule::split(w.start, w.end, m)
                .map_err(|r| invalid("window", r))?
                .into_iter()
                .map(run)
                .collect(),
            (None, Some(_)) => return Err(invalid("splitMinutes", "needs a \"window\" to split")),
            (None, None) => vec![run(rule.last_complete(request.time.unwrap_or(now)))],
        },
        Trigger::GroundTruthUpload { object, time, .. } => {
            let Some(gt) = ground_truth else {
                return Ok(Err(
                    "no ground-truth S3 URI is configured (GROUND_TRUTH_S3_URI)".into(),
                ));
            };
            if !is_under(gt, object) {
                return Ok(Err(format!(
                    "{object} is not under the ground-truth prefix {gt}"
                )));
            }
            let hour = hour_of_key(gt, object).unwrap_or_else(|| floor_hour(time.unwrap_or(now)));
            let mut ws: Vec<Planned> = rule
                .windows_reading_ground_truth_hour(hour)
                .into_iter()
                .map(|w| Planned {
                    window: w,
                    skip: (w.end > now).then(|| {
                        format!(
                            "the window is still open (until {}): its predictions are still being captured; a later upload or its scheduled run evaluates it",
                            super::window::iso(w.end)
                        )
                    }),
                })
                .collect();
            ws.truncate(MAX_WINDOWS_PER_INVOCATION);
            ws
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn schedule_s3_and_direct_shapes() {
        let s = parse_trigger(json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": 1714557900000_i64,
            "resources": ["arn:aws:events:us-east-1:1:rule/hourly"], "detail": {}}))
        .unwrap();
        assert_eq!(
            s,
            Trigger::Schedule {
                time: t("2024-05-01T10:05:00Z"),
                rule: Some("arn:aws:events:us-east-1:1:rule/hourly".into())
            }
        );
        let u = parse_trigger(json!({"source": "aws.s3", "detail-type": "Object Created", "time": "2024-05-01T10:20:00Z",
            "detail": {"bucket": {"name": "bkt"}, "object": {"key": "gt/2024/05/01/10/a.jsonl", "size": 12}}}))
        .unwrap();
        assert!(
            matches!(&u, Trigger::GroundTruthUpload { object, size: Some(12), .. } if object.key == "gt/2024/05/01/10/a.jsonl")
        );
        let d = parse_trigger(
            json!({"window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-01T06:00:00Z"},
            "splitMinutes": 60, "endpointName": "other", "probabilityThreshold": 0.7}),
        )
        .unwrap();
        let Trigger::Direct { request } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(request.overrides.endpoint_name.as_deref(), Some("other"));
        assert_eq!(request.overrides.probability_threshold, Some(0.7));
        let via_bus = parse_trigger(json!({"source": "driftloop", "detail-type": "Model Monitoring Requested", "detail": {"time": "2024-05-01T10:00:00Z"}})).unwrap();
        assert!(matches!(via_bus, Trigger::Direct { .. }));
        assert!(matches!(
            parse_trigger(Value::Null).unwrap(),
            Trigger::Direct { .. }
        ));
    }

    #[test]
    fn bad_events_are_explained() {
        let e = parse_trigger(json!({"window": {"start": "x"}, "endpointName": "e"})).unwrap_err();
        assert!(e.to_string().contains("monitoring request"), "{e}");
        let e = parse_trigger(json!({"endpointNme": "typo"})).unwrap_err();
        assert!(e.to_string().contains("endpointNme"), "{e}");
        let e =
            parse_trigger(json!({"source": "aws.sagemaker", "detail-type": "Other", "detail": {}}))
                .unwrap_err();
        assert!(e.to_string().contains("Scheduled Event"), "{e}");
        assert!(parse_trigger(json!([1])).is_err());
        let e = parse_trigger(
            json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("bucket.name"), "{e}");
    }

    #[test]
    fn windows_of_each_trigger() {
        let rule = WindowRule {
            minutes: 60,
            offset_minutes: 60,
            ground_truth_delay_minutes: 60,
        };
        let gt = S3Uri::parse("s3://bkt/gt/").unwrap();
        let now = t("2024-05-01T12:30:00Z");
        let sched = Trigger::Schedule {
            time: t("2024-05-01T10:05:00Z"),
            rule: None,
        };
        let p = plan_windows(&sched, &rule, Some(&gt), now)
            .unwrap()
            .unwrap();
        assert_eq!(p[0].window.start, t("2024-05-01T08:00:00Z"));
        // Labels collected 11:xx belong to 10:00 (due at 12:00) and 11:00 (due at 13:00): both
        // have ended at 12:30, so both are evaluated now (the 11:00 one before it is due).
        let up = Trigger::GroundTruthUpload {
            object: S3Uri::parse("s3://bkt/gt/2024/05/01/11/x.jsonl").unwrap(),
            size: None,
            time: None,
        };
        let p = plan_windows(&up, &rule, Some(&gt), now).unwrap().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].window.start, p[0].skip.is_none()),
            (t("2024-05-01T10:00:00Z"), true)
        );
        assert_eq!(
            (p[1].window.start, p[1].skip.is_none()),
            (t("2024-05-01T11:00:00Z"), true)
        );
        assert!(!rule.is_due(&p[1].window, now));
        // Labels uploaded now (12:30, folder 12) for the previous hour: 11:00 runs now, 12:00 is
        // still open.
        let current = Trigger::GroundTruthUpload {
            object: S3Uri::parse("s3://bkt/gt/2024/05/01/12/x.jsonl").unwrap(),
            size: None,
            time: None,
        };
        let p = plan_windows(&current, &rule, Some(&gt), now)
            .unwrap()
            .unwrap();
        assert_eq!(
            p.iter()
                .map(|p| (p.window.start, p.skip.is_none()))
                .collect::<Vec<_>>(),
            [
                (t("2024-05-01T11:00:00Z"), true),
                (t("2024-05-01T12:00:00Z"), false)
            ]
        );
        assert!(p[1].skip.as_deref().unwrap().contains("still open"));
        let elsewhere = Trigger::GroundTruthUpload {
            object: S3Uri::parse("s3://bkt/other/x").unwrap(),
            size: None,
            time: None,
        };
        assert!(
            plan_windows(&elsewhere, &rule, Some(&gt), now)
                .unwrap()
                .unwrap_err()
                .contains("not under")
        );
        let backfill = parse_trigger(json!({"window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-01T03:00:00Z"}, "splitMinutes": 60})).unwrap();
        assert_eq!(
            plan_windows(&backfill, &rule, Some(&gt), now)
                .unwrap()
                .unwrap()
                .len(),
            3
        );
        let bad = parse_trigger(
            json!({"window": {"start": "2024-05-01T03:00:00Z", "end": "2024-05-01T00:00:00Z"}}),
        )
        .unwrap();
        assert!(plan_windows(&bad, &rule, Some(&gt), now).is_err());
        let at = parse_trigger(json!({"time": "2024-05-01T10:05:00Z"})).unwrap();
        assert_eq!(
            plan_windows(&at, &rule, None, now).unwrap().unwrap()[0]
                .window
                .end,
            t("2024-05-01T09:00:00Z")
        );
    }
}
