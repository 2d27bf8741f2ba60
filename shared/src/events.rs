//! EventBridge envelopes and the typed `detail` of the SageMaker events the loop uses.
//!
//! The envelope is `aws_lambda_events`' [`EventBridgeEvent`]. SageMaker sends `time` (and times
//! inside `detail`) either as ISO-8601 or as epoch milliseconds, which the upstream type does not
//! accept, so [`parse_eventbridge`] normalises the envelope's `time` first, and detail structs use
//! [`flexible_time`].

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::HashMap;

pub use aws_lambda_events::eventbridge::EventBridgeEvent as Envelope;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("expected {expected}, got {got}")]
    UnexpectedShape { expected: String, got: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl crate::error::Classify for EventError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Permanent
    }
    fn code(&self) -> &'static str {
        "BadEvent"
    }
}

/// A short description of a JSON value for error messages: its type and top-level keys.
pub fn describe_shape(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            keys.sort_unstable();
            let more = if map.len() > 8 { ", ..." } else { "" };
            if let (Some(Value::String(source)), Some(Value::String(dt))) =
                (map.get("source"), map.get("detail-type"))
            {
                format!("an EventBridge event with source {source:?} and detail-type {dt:?}")
            } else {
                format!("an object with keys [{}{more}]", keys.join(", "))
            }
        }
        Value::Array(_) => "an array".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Number(_) => "a number".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Null => "null".to_owned(),
    }
}

/// True when the value looks like an EventBridge envelope (`source` and `detail-type` strings).
pub fn is_eventbridge(value: &Value) -> bool {
    value.get("source").is_some_and(Value::is_string)
        && value.get("detail-type").is_some_and(Value::is_string)
}

/// Parses an EventBridge envelope with a typed `detail`, accepting `time` as ISO-8601 or epoch ms.
pub fn parse_eventbridge<D>(mut value: Value) -> Result<EventBridgeEvent<D>, EventError>
where
    D: Serialize + DeserializeOwned,
{
    if !is_eventbridge(&value) {
        return Err(EventError::UnexpectedShape {
            expected: "an EventBridge event (with \"source\" and \"detail-type\")".to_owned(),
            got: describe_shape(&value),
        });
    }
    if let Some(time) = value.get_mut("time") {
        let parsed = parse_time_value(time).map_err(|reason| EventError::Invalid {
            what: "time".into(),
            reason,
        })?;
        *time = Value::String(parsed.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let detail_type = value
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    serde_json::from_value(value).map_err(|e| EventError::Invalid {
        what: format!("{detail_type:?} event"),
        reason: e.to_string(),
    })
}

/// ISO-8601 / RFC 3339 string, epoch milliseconds (number or digit string), or epoch seconds with a
/// fraction (a float below 1e11, as some SDKs serialise timestamps).
///
/// Times outside years 1970 to 9999 are refused (no AWS event or window lies there; the window
/// arithmetic of `monitoring` relies on it): see [`crate::monitoring::window::check_time`].
pub fn parse_time_value(value: &Value) -> Result<DateTime<Utc>, String> {
    parse_any_time_value(value).and_then(|t| in_supported_range(t))
}

fn in_supported_range(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    // 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z
    if (0..=253_402_300_799_999).contains(&t.timestamp_millis()) {
        Ok(t)
    } else {
        Err(format!(
            "{} is outside the supported range 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    }
}

fn parse_any_time_value(value: &Value) -> Result<DateTime<Utc>, String> {
    match value {
        Value::String(s) => parse_time_str(s),
        Value::Number(n) => {
            if let Some(ms) = n.as_i64() {
                epoch_millis(ms)
            } else if let Some(f) = n.as_f64() {
                if f.abs() < 1e11 {
                    epoch_millis((f * 1000.0).round() as i64)
                } else {
                    epoch_millis(f.round() as i64)
                }
            } else {
                Err(format!("timestamp {n} out of range"))
            }
        }
        other => Err(format!(
            "expected a timestamp, got {}",
            describe_shape(other)
        )),
    }
}

pub fn parse_time_str(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
        return epoch_millis(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            // SageMaker also writes "2024-01-02T03:04:05.678+0000" and naive UTC times.
            DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").map(|t| t.with_timezone(&Utc))
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|e| format!("{s:?} is neither ISO-8601 nor epoch milliseconds ({e})"))
}

fn epoch_millis(ms: i64) -> Result<DateTime<Utc>, String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| format!("epoch milliseconds {ms} out of range"))
}

/// Serde helpers for timestamps given as ISO-8601 or epoch milliseconds. Serialises as RFC 3339.
pub mod flexible_time {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let v = Value::deserialize(d)?;
        parse_time_value(&v).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// For `Option<DateTime<Utc>>` fields (use with `#[serde(default)]`).
    pub mod option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<Value>::deserialize(d)? {
                None | Some(Value::Null) => Ok(None),
                Some(v) => parse_time_value(&v)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }

        pub fn serialize<S: serde::Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
    }
}

pub const SAGEMAKER_SOURCE: &str = "aws.sagemaker";
pub const MODEL_PACKAGE_STATE_CHANGE: &str = "SageMaker Model Package State Change";
pub const PIPELINE_EXECUTION_STATUS_CHANGE: &str =
    "SageMaker Model Building Pipeline Execution Status Change";
pub const ENDPOINT_STATE_CHANGE: &str = "SageMaker Endpoint State Change";

/// `detail` of `SageMaker Model Package State Change` (the DescribeModelPackage shape, PascalCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModelPackageStateChange {
    pub model_package_group_name: String,
    #[serde(default)]
    pub model_package_version: Option<i64>,
    pub model_package_arn: String,
    #[serde(default)]
    pub model_package_name: Option<String>,
    #[serde(default, with = "flexible_time::option")]
    pub creation_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub model_package_status: Option<String>,
    #[serde(default)]
    pub model_approval_status: Option<String>,
    #[serde(default)]
    pub approval_description: Option<String>,
    #[serde(default)]
    pub customer_metadata_properties: Option<HashMap<String, String>>,
    #[serde(default)]
    pub model_package_description: Option<String>,
    /// Everything else SageMaker sends (InferenceSpecification, ModelMetrics, ...), kept verbatim.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `detail` of `SageMaker Model Building Pipeline Execution Status Change` (camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineExecutionStatusChange {
    pub pipeline_arn: String,
    pub pipeline_execution_arn: String,
    #[serde(default)]
    pub pipeline_execution_display_name: Option<String>,
    pub current_pipeline_execution_status: String,
    #[serde(default)]
    pub previous_pipeline_execution_status: Option<String>,
    #[serde(default, with = "flexible_time::option")]
    pub execution_start_time: Option<DateTime<Utc>>,
    #[serde(default, with = "flexible_time::option")]
    pub execution_end_time: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `detail` of `SageMaker Endpoint State Change` (PascalCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointStateChange {
    pub endpoint_name: String,
    #[serde(default)]
    pub endpoint_arn: Option<String>,
    #[serde(default)]
    pub endpoint_config_name: Option<String>,
    pub endpoint_status: String,
    #[serde(default, with = "flexible_time::option")]
    pub last_modified_time: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// The EventBridge event types a function receives, each checked for its source and detail-type.
pub fn expect_detail_type<D>(
    value: Value,
    source: &str,
    detail_type: &str,
) -> Result<EventBridgeEvent<D>, EventError>
where
    D: Serialize + DeserializeOwned,
{
    let matches = value.get("source").and_then(Value::as_str) == Some(source)
        && value.get("detail-type").and_then(Value::as_str) == Some(detail_type);
    if !matches {
        return Err(EventError::UnexpectedShape {
            expected: format!(
                "an EventBridge event with source {source:?} and detail-type {detail_type:?}"
            ),
            got: describe_shape(&value),
        });
    }
    parse_eventbridge(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package_event(time: Value, creation: Value) -> Value {
        json!({
            "version": "0", "id": "5f2b6b1e-0000-4000-8000-000000000001",
            "detail-type": MODEL_PACKAGE_STATE_CHANGE, "source": SAGEMAKER_SOURCE,
            "account": "123456789012", "time": time, "region": "us-east-1",
            "resources": ["arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"],
            "detail": {
                "ModelPackageGroupName": "churn", "ModelPackageVersion": 3,
                "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3",
                "CreationTime": creation, "ModelPackageStatus": "Completed",
                "ModelApprovalStatus": "Approved", "InferenceSpecification": {"Containers": []}
            }
        })
    }

    #[test]
    fn time_as_iso_or_epoch_millis_gives_the_same_instant() {
        let iso: EventBridgeEvent<ModelPackageStateChange> = parse_eventbridge(package_event(
            json!("2024-05-01T12:00:00Z"),
            json!("2024-05-01T11:59:00.500Z"),
        ))
        .unwrap();
        let ms: EventBridgeEvent<ModelPackageStateChange> = parse_eventbridge(package_event(
            json!(1714564800000_i64),
            json!(1714564740500_i64),
        ))
        .unwrap();
        assert_eq!(iso.time, ms.time);
        assert_eq!(iso.detail.creation_time, ms.detail.creation_time);
        assert_eq!(ms.time.unwrap().to_rfc3339(), "2024-05-01T12:00:00+00:00");
        assert_eq!(ms.detail.model_package_version, Some(3));
        assert!(ms.detail.other.contains_key("InferenceSpecification"));
    }

    #[test]
    fn other_time_spellings() {
        assert_eq!(
            parse_time_str("1714564800000").unwrap(),
            parse_time_str("2024-05-01T12:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time_str("2024-05-01T12:00:00.000+0000").unwrap(),
            parse_time_str("2024-05-01T12:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time_value(&json!(1714564800.0)).unwrap(),
            parse_time_str("2024-05-01T12:00:00Z").unwrap()
        );
        assert!(
            parse_time_str("yesterday")
                .unwrap_err()
                .contains("neither ISO-8601")
        );
    }

    #[test]
    fn bad_time_and_bad_shape_are_clear_errors() {
        let err =
            parse_eventbridge::<ModelPackageStateChange>(package_event(json!("noon"), json!(1)))
                .unwrap_err();
        assert!(err.to_string().starts_with("invalid time"), "{err}");
        let err =
            parse_eventbridge::<ModelPackageStateChange>(json!({"alarmData": {}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected an EventBridge event (with \"source\" and \"detail-type\"), got an object with keys [alarmData]"
        );
        let err = expect_detail_type::<ModelPackageStateChange>(
            json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {}}),
            SAGEMAKER_SOURCE,
            MODEL_PACKAGE_STATE_CHANGE,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("got an EventBridge event with source \"aws.cloudwatch\""),
            "{err}"
        );
    }

    #[test]
    fn missing_required_detail_field_names_it() {
        let mut ev = package_event(json!("2024-05-01T12:00:00Z"), json!(1));
        ev["detail"]
            .as_object_mut()
            .unwrap()
            .remove("ModelPackageArn");
        let err = parse_eventbridge::<ModelPackageStateChange>(ev).unwrap_err();
        assert!(err.to_string().contains("ModelPackageArn"), "{err}");
    }

    #[test]
    fn pipeline_and_endpoint_details_parse() {
        let p: EventBridgeEvent<PipelineExecutionStatusChange> = parse_eventbridge(json!({
            "detail-type": PIPELINE_EXECUTION_STATUS_CHANGE, "source": SAGEMAKER_SOURCE, "time": "2024-05-01T12:00:00Z",
            "detail": {"pipelineArn": "arn:p", "pipelineExecutionArn": "arn:p/execution/1",
                       "currentPipelineExecutionStatus": "Succeeded", "previousPipelineExecutionStatus": "Executing",
                       "executionStartTime": "2024-05-01T11:00:00Z", "executionEndTime": 1714564800000_i64}
        }))
        .unwrap();
        assert_eq!(p.detail.current_pipeline_execution_status, "Succeeded");
        assert_eq!(p.detail.execution_end_time, p.time);
        let e: EventBridgeEvent<EndpointStateChange> = parse_eventbridge(json!({
            "detail-type": ENDPOINT_STATE_CHANGE, "source": SAGEMAKER_SOURCE,
            "detail": {"EndpointName": "churn-staging", "EndpointStatus": "IN_SERVICE"}
        }))
        .unwrap();
        assert_eq!(e.detail.endpoint_status, "IN_SERVICE");
        assert!(e.time.is_none());
    }
}
