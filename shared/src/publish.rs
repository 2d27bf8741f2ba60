//! Publishing ports every function shares: one EventBridge event ([`EventPublisher`]) and CloudWatch
//! metric datums ([`MetricPublisher`]).
//!
//! The service limits are checked here, in pure code, so every adapter and every test double
//! enforces the same rules:
//! - an EventBridge entry is at most 256 KB, measured the way EventBridge measures it
//!   ([`OutgoingEvent::entry_size`]); `detail` must be a JSON object;
//! - a `PutEvents` answer with `FailedEntryCount > 0` is an error, classified by the entry's
//!   `ErrorCode` (throttling and internal failures are retryable);
//! - CloudWatch never receives NaN or ±infinity (nor values outside ±2^360, more than 30
//!   dimensions, or empty names): such datums are dropped, logged and reported
//!   ([`prepare_metric_data`]); the rest go out in calls of at most 1,000 datums.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AwsError, Classify, ErrorClass};

/// EventBridge's limit on one `PutEvents` entry (256 KB).
pub const MAX_EVENT_ENTRY_BYTES: usize = 256 * 1024;
/// CloudWatch's limit on the datums of one `PutMetricData` call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;
/// CloudWatch's limit on the dimensions of one datum.
pub const MAX_DIMENSIONS: usize = 30;
/// CloudWatch rejects values outside ±2^360.
pub const MAX_METRIC_MAGNITUDE: f64 = 2.348_542_582_773_833_2e108;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishError {
    #[error(
        "the EventBridge entry is {size} bytes; PutEvents accepts at most {limit} (put the payload in S3 and send its URI)"
    )]
    EntryTooLarge { size: usize, limit: usize },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for PublishError {
    fn class(&self) -> ErrorClass {
        match self {
            PublishError::Aws(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            PublishError::EntryTooLarge { .. } => "EventTooLarge",
            PublishError::Invalid { .. } => "InvalidPublication",
            PublishError::Aws(e) => e.code(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// One event for `PutEvents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingEvent {
    pub source: String,
    pub detail_type: String,
    /// A JSON object (EventBridge ignores other JSON values).
    pub detail: Value,
    #[serde(default)]
    pub resources: Vec<String>,
    /// The event's time; EventBridge uses the time of the call when unset.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// Name or ARN of the bus; the account's default bus when unset.
    #[serde(default)]
    pub event_bus_name: Option<String>,
}

impl OutgoingEvent {
    pub fn new(source: impl Into<String>, detail_type: impl Into<String>, detail: Value) -> Self {
        OutgoingEvent {
            source: source.into(),
            detail_type: detail_type.into(),
            detail,
            resources: Vec::new(),
            time: None,
            event_bus_name: None,
        }
    }

    pub fn on_bus(mut self, bus: Option<impl Into<String>>) -> Self {
        self.event_bus_name = bus.map(Into::into);
        self
    }

    pub fn with_resources(
        mut self,
        resources: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    /// The entry size as EventBridge computes it: 14 bytes for `Time` when set, plus the UTF-8
    /// bytes of `Source`, `DetailType`, `Detail` and each resource.
    pub fn entry_size(&self, detail_json: &str) -> usize {
        self.time.map_or(0, |_| 14)
            + self.source.len()
            + self.detail_type.len()
            + detail_json.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }

    /// Checks the entry against EventBridge's rules and returns the serialised `Detail`.
    pub fn validate(&self) -> Result<String, PublishError> {
        if !self.detail.is_object() {
            return Err(PublishError::Invalid {
                what: "event detail",
                reason: format!(
                    "must be a JSON object, got {}",
                    crate::events::describe_shape(&self.detail)
                ),
            });
        }
        let detail = self.detail.to_string();
        let size = self.entry_size(&detail);
        if size > MAX_EVENT_ENTRY_BYTES {
            return Err(PublishError::EntryTooLarge {
                size,
                limit: MAX_EVENT_ENTRY_BYTES,
            });
        }
        Ok(detail)
    }
}

/// The EventBridge port: puts one event, returns its event id.
///
/// Implementations call [`OutgoingEvent::validate`] first and turn a `PutEvents` answer with
/// `FailedEntryCount > 0` into an error ([`failed_entry`]).
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &OutgoingEvent) -> Result<String, PublishError>;
}

/// The error for an entry `PutEvents` did not accept, classified by its `ErrorCode`
/// (`ThrottlingException`, `InternalFailure` are retryable; `InvalidArgument`, `MalformedDetail`,
/// `NotAuthorizedForSourceException`, ... are not).
pub fn failed_entry(code: Option<&str>, message: Option<&str>) -> PublishError {
    PublishError::Aws(AwsError::classify(
        "eventbridge",
        "PutEvents",
        Some(code.unwrap_or("UnknownEntryError")),
        None,
        format!(
            "FailedEntryCount=1: {}",
            message.unwrap_or("the entry was not accepted")
        ),
    ))
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// CloudWatch's standard units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricUnit {
    Seconds,
    Microseconds,
    Milliseconds,
    Bytes,
    Kilobytes,
    Megabytes,
    Gigabytes,
    Terabytes,
    Bits,
    Kilobits,
    Megabits,
    Gigabits,
    Terabits,
    Percent,
    Count,
    BytesPerSecond,
    KilobytesPerSecond,
    MegabytesPerSecond,
    GigabytesPerSecond,
    TerabytesPerSecond,
    BitsPerSecond,
    KilobitsPerSecond,
    MegabitsPerSecond,
    GigabitsPerSecond,
    TerabitsPerSecond,
    CountPerSecond,
    None,
}

impl MetricUnit {
    /// The `StandardUnit` string CloudWatch uses.
    pub fn as_str(&self) -> &'static str {
        use MetricUnit::*;
        match self {
            Seconds => "Seconds",
            Microseconds => "Microseconds",
            Milliseconds => "Milliseconds",
            Bytes => "Bytes",
            Kilobytes => "Kilobytes",
            Megabytes => "Megabytes",
            Gigabytes => "Gigabytes",
            Terabytes => "Terabytes",
            Bits => "Bits",
            Kilobits => "Kilobits",
            Megabits => "Megabits",
            Gigabits => "Gigabits",
            Terabits => "Terabits",
            Percent => "Percent",
            Count => "Count",
            BytesPerSecond => "Bytes/Second",
            KilobytesPerSecond => "Kilobytes/Second",
            MegabytesPerSecond => "Megabytes/Second",
            GigabytesPerSecond => "Gigabytes/Second",
            TerabytesPerSecond => "Terabytes/Second",
            BitsPerSecond => "Bits/Second",
            KilobitsPerSecond => "Kilobits/Second",
            MegabitsPerSecond => "Megabits/Second",
            GigabitsPerSecond => "Gigabits/Second",
            TerabitsPerSecond => "Terabits/Second",
            CountPerSecond => "Count/Second",
            None => "None",
        }
    }
}

impl fmt::Display for MetricUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric datum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDatum {
    pub name: String,
    /// (name, value) pairs, at most 30.
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
    pub unit: MetricUnit,
    /// The time of the measurement; CloudWatch uses the time of the call when unset.
    pub timestamp: Option<DateTime<Utc>>,
    /// `Some(1)` for a high-resolution metric; standard (60) when unset.
    pub storage_resolution: Option<i32>,
}

impl MetricDatum {
    pub fn new(name: impl Into<String>, value: f64, unit: MetricUnit) -> Self {
        MetricDatum {
            name: name.into(),
            dimensions: Vec::new(),
            value,
            unit,
            timestamp: None,
            storage_resolution: None,
        }
    }

    /// A `Count` datum.
    pub fn count(name: impl Into<String>, value: f64) -> Self {
        Self::new(name, value, MetricUnit::Count)
    }

    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    pub fn at(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Why CloudWatch would reject this datum, if it would.
    pub fn problem(&self) -> Option<String> {
        if !self.value.is_finite() {
            return Some(format!("value {} is not finite", self.value));
        }
        if self.value.abs() > MAX_METRIC_MAGNITUDE {
            return Some(format!(
                "value {} is outside CloudWatch's range of ±2^360",
                self.value
            ));
        }
        if self.name.is_empty() || self.name.len() > 255 {
            return Some("metric name must be 1-255 characters".to_owned());
        }
        if self.dimensions.len() > MAX_DIMENSIONS {
            return Some(format!(
                "{} dimensions; CloudWatch accepts at most {MAX_DIMENSIONS}",
                self.dimensions.len()
            ));
        }
        if let Some((n, v)) = self
            .dimensions
            .iter()
            .find(|(n, v)| n.is_empty() || v.is_empty() || n.len() > 255 || v.len() > 1024)
        {
            return Some(format!(
                "dimension {n:?}={v:?}: names must be 1-255 and values 1-1024 characters"
            ));
        }
        if let Some(r) = self.storage_resolution.filter(|r| *r != 1 && *r != 60) {
            return Some(format!("storage resolution {r}: must be 1 or 60"));
        }
        None
    }
}

/// A datum that was not sent, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedDatum {
    pub name: String,
    pub reason: String,
}

/// What [`MetricPublisher::put_metrics`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    /// Datums sent.
    pub sent: usize,
    /// `PutMetricData` calls made.
    pub calls: usize,
    pub dropped: Vec<DroppedDatum>,
}

/// Validates a namespace: 1-255 characters (pattern `[^:].*`), not starting with `AWS/` (reserved by AWS).
pub fn validate_namespace(namespace: &str) -> Result<(), PublishError> {
    let reason = if namespace.is_empty() || namespace.len() > 255 {
        "must be 1-255 characters"
    } else if namespace.starts_with("AWS/") {
        "namespaces starting with \"AWS/\" are reserved for AWS"
    } else if namespace.starts_with(':') || namespace.chars().any(char::is_control) {
        "must not start with ':' or contain control characters"
    } else {
        return Ok(());
    };
    Err(PublishError::Invalid {
        what: "metric namespace",
        reason: format!("{namespace:?} {reason}"),
    })
}

/// Splits `datums` into the valid ones, in calls of at most [`MAX_DATUMS_PER_CALL`], and the ones
/// CloudWatch would reject (each logged at WARN).
pub fn prepare_metric_data(datums: Vec<MetricDatum>) -> (Vec<Vec<MetricDatum>>, Vec<DroppedDatum>) {
    let mut valid = Vec::with_capacity(datums.len());
    let mut dropped = Vec::new();
    for d in datums {
        match d.problem() {
            None => valid.push(d),
            Some(reason) => {
                tracing::warn!(metric = d.name, reason, "metric datum not sent");
                dropped.push(DroppedDatum {
                    name: d.name,
                    reason,
                });
            }
        }
    }
    let mut batches = Vec::with_capacity(valid.len().div_ceil(MAX_DATUMS_PER_CALL));
    let mut rest = valid.into_iter().peekable();
    while rest.peek().is_some() {
        batches.push(rest.by_ref().take(MAX_DATUMS_PER_CALL).collect());
    }
    (batches, dropped)
}

/// The CloudWatch metrics port. Implementations validate the namespace, call
/// [`prepare_metric_data`], and send each batch with one `PutMetricData` call.
#[async_trait]
pub trait MetricPublisher: Send + Sync {
    async fn put_metrics(
        &self,
        namespace: &str,
        datums: Vec<MetricDatum>,
    ) -> Result<MetricReport, PublishError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn entry_size_follows_eventbridge_rules() {
        let e = OutgoingEvent::new("driftloop", "Retraining Started", json!({"a": "é"}));
        let detail = e.validate().unwrap();
        assert_eq!(detail, r#"{"a":"é"}"#);
        // "driftloop" 9 + "Retraining Started" 18 + detail 10 bytes (é is 2 bytes)
        assert_eq!(e.entry_size(&detail), 9 + 18 + 10);
        let e = e
            .with_resources(["arn:x", "arn:yy"])
            .at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(e.entry_size(&detail), 14 + 9 + 18 + 10 + 5 + 6);
    }

    #[test]
    fn entries_over_256_kb_are_refused_exactly_at_the_limit() {
        let overhead = "s".len() + "t".len() + r#"{"x":""}"#.len();
        let fits = OutgoingEvent::new(
            "s",
            "t",
            json!({"x": "a".repeat(MAX_EVENT_ENTRY_BYTES - overhead)}),
        );
        assert!(fits.validate().is_ok());
        let over = OutgoingEvent::new(
            "s",
            "t",
            json!({"x": "a".repeat(MAX_EVENT_ENTRY_BYTES - overhead + 1)}),
        );
        let err = over.validate().unwrap_err();
        assert_eq!(
            err,
            PublishError::EntryTooLarge {
                size: MAX_EVENT_ENTRY_BYTES + 1,
                limit: MAX_EVENT_ENTRY_BYTES
            }
        );
        assert_eq!(err.error_type(), "Permanent.EventTooLarge");
    }

    #[test]
    fn detail_must_be_an_object() {
        let err = OutgoingEvent::new("s", "t", json!([1]))
            .validate()
            .unwrap_err();
        assert_eq!(err.error_type(), "Permanent.InvalidPublication");
        assert!(err.to_string().contains("JSON object"), "{err}");
    }

    #[test]
    fn failed_entries_are_classified_by_their_code() {
        let e = failed_entry(Some("ThrottlingException"), Some("Rate exceeded"));
        assert_eq!(e.error_type(), "Retryable.Throttled");
        assert!(
            e.to_string().contains("FailedEntryCount=1: Rate exceeded"),
            "{e}"
        );
        assert_eq!(
            failed_entry(Some("InternalFailure"), None).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            failed_entry(Some("InvalidArgument"), Some("bad source")).error_type(),
            "Permanent.Client"
        );
        assert_eq!(failed_entry(None, None).class(), ErrorClass::Permanent);
    }

    #[test]
    fn non_finite_and_out_of_range_datums_are_dropped_not_sent() {
        let datums = vec![
            MetricDatum::count("ok", 1.0),
            MetricDatum::new("nan", f64::NAN, MetricUnit::None),
            MetricDatum::new("inf", f64::INFINITY, MetricUnit::None),
            MetricDatum::new("-inf", f64::NEG_INFINITY, MetricUnit::None),
            MetricDatum::new("huge", 1e200, MetricUnit::None),
            MetricDatum::count("ok2", -0.0).dimension("A", "b"),
        ];
        let (batches, dropped) = prepare_metric_data(datums);
        assert_eq!(batches.len(), 1);
        assert_eq!(
            batches[0]
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["ok", "ok2"]
        );
        assert_eq!(
            dropped.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["nan", "inf", "-inf", "huge"]
        );
        assert!(dropped[0].reason.contains("not finite"));
    }

    #[test]
    fn batches_hold_at_most_1000_datums() {
        let datums: Vec<_> = (0..2501)
            .map(|i| MetricDatum::count(format!("m{i}"), i as f64))
            .collect();
        let (batches, dropped) = prepare_metric_data(datums);
        assert!(dropped.is_empty());
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [1000, 1000, 501]
        );
        assert_eq!(batches[2][500].name, "m2500");
        assert!(prepare_metric_data(Vec::new()).0.is_empty());
    }

    #[test]
    fn dimension_and_resolution_limits() {
        let mut d = MetricDatum::count("m", 1.0);
        for i in 0..31 {
            d = d.dimension(format!("d{i}"), "v");
        }
        assert!(d.problem().unwrap().contains("31 dimensions"));
        assert!(
            MetricDatum::count("m", 1.0)
                .dimension("", "v")
                .problem()
                .is_some()
        );
        let mut hr = MetricDatum::count("m", 1.0);
        hr.storage_resolution = Some(5);
        assert!(hr.problem().unwrap().contains("storage resolution"));
        hr.storage_resolution = Some(1);
        assert!(hr.problem().is_none());
    }

    #[test]
    fn namespaces() {
        assert!(validate_namespace("driftloop").is_ok());
        assert!(validate_namespace("driftloop/Retraining").is_ok());
        assert!(validate_namespace("acme:ml/driftloop").is_ok());
        assert!(validate_namespace(":x").is_err());
        assert!(validate_namespace("AWS/SageMaker").is_err());
        assert!(validate_namespace("").is_err());
        assert!(validate_namespace(&"n".repeat(256)).is_err());
    }

    #[test]
    fn units_use_cloudwatch_spelling() {
        assert_eq!(MetricUnit::Count.as_str(), "Count");
        assert_eq!(MetricUnit::CountPerSecond.to_string(), "Count/Second");
    }
}
