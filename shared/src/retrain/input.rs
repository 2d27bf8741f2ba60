//! The four input shapes, parsed into one [`Trigger`].
//!
//! Why not `aws_lambda_events::cloudwatch_alarms`: its `CloudWatchAlarm` types reject what real
//! alarms send (checked by `upstream_alarm_types_reject_real_events` in the tests):
//! - `CloudWatchMetricDefinition::metric_stat` is required, so every metric-math alarm (whose
//!   expression entry has `expression` and no `metricStat`) fails to parse with the typed
//!   configuration;
//! - `period` is a `u16`, so an alarm with a one-day period (86400 s, the usual period of a daily
//!   Model Monitor schedule) fails;
//! - the EventBridge `CloudWatch Alarm State Change` detail is not an `alarmData` payload, and its
//!   `reasonData` (a JSON *string*) is parsed only into a fixed set of shapes.
//!
//! So the alarm is read with the small lenient structs below (the alarm-action payload's
//! `alarmData` and the EventBridge `detail` have the same shape), times through
//! [`flexible_time`] (`2024-05-01T12:00:00.000+0000`, ISO-8601 or epoch ms). The EventBridge
//! envelope is still `aws_lambda_events`' `EventBridgeEvent`, through [`parse_eventbridge`].

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AlarmContext, AlarmState, RequestOptions, Trigger, TriggerKind, TriggerVia};
use crate::contract::DetailType;
use crate::events::{EventError, describe_shape, flexible_time, is_eventbridge, parse_eventbridge};
use crate::retrain::settings::parameter_value;

pub const CLOUDWATCH_SOURCE: &str = "aws.cloudwatch";
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
pub const SCHEDULE_SOURCES: [&str; 2] = ["aws.events", "aws.scheduler"];
pub const RETRAIN_REQUESTED: &str = DetailType::RetrainRequested.as_str();

/// What the function accepts, for error messages.
pub const EXPECTED: &str = "an EventBridge \"CloudWatch Alarm State Change\" event (source \"aws.cloudwatch\"), \
a CloudWatch alarm-action payload (with \"alarmData\"), an EventBridge \"Scheduled Event\" (source \"aws.events\" \
or \"aws.scheduler\"), or a \"Retrain Requested\" event (e.g. source \"driftloop\")";

/// `alarmData` of the alarm-action payload = `detail` of the EventBridge event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmData {
    pub alarm_name: String,
    pub state: AlarmStateData,
    #[serde(default)]
    pub previous_state: Option<AlarmStateData>,
    #[serde(default)]
    pub configuration: Option<AlarmConfiguration>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateData {
    pub value: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// A JSON document in a string (as CloudWatch sends it) or, leniently, an object.
    #[serde(default)]
    pub reason_data: Option<Value>,
    #[serde(with = "flexible_time")]
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub actions_suppressed_by: Option<String>,
    #[serde(default)]
    pub actions_suppressed_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmConfiguration {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metrics: Vec<AlarmMetric>,
    /// Composite alarms.
    #[serde(default)]
    pub alarm_rule: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmMetric {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub return_data: Option<bool>,
    #[serde(default)]
    pub metric_stat: Option<MetricStat>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStat {
    pub metric: MetricName,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub stat: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricName {
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

/// The parts of `reasonData` the loop uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasonData {
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    recent_datapoints: Vec<Option<f64>>,
    #[serde(default)]
    evaluated_datapoints: Vec<EvaluatedDatapoint>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EvaluatedDatapoint {
    #[serde(default, with = "flexible_time::option")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    value: Option<f64>,
}

/// The alarm-action payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmAction {
    #[serde(default)]
    alarm_arn: Option<String>,
    alarm_data: AlarmData,
}

/// `detail` of a `Retrain Requested` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetrainRequest {
    /// Why; required.
    #[serde(default)]
    pub reason: Option<String>,
    /// One of the configured pipelines; the default pipeline when absent.
    #[serde(default, alias = "pipeline")]
    pub pipeline_name: Option<String>,
    /// Pipeline parameters for this execution (override configured ones).
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    /// Idempotency key of the request; the EventBridge event id when absent.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Start even within the cooldown (never while an execution is `Executing`).
    #[serde(default)]
    pub force: bool,
    /// Who asked (for the record).
    #[serde(default)]
    pub requested_by: Option<String>,
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> EventError {
    EventError::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

pub(super) fn millis(t: DateTime<Utc>) -> String {
    t.timestamp_millis().to_string()
}

/// Parses any of the four input shapes. `now` is used only for a request event without `time`.
pub fn parse_trigger(event: Value, now: DateTime<Utc>) -> Result<Trigger, EventError> {
    if is_eventbridge(&event) {
        let source = event["source"].as_str().unwrap_or_default().to_owned();
        let detail_type = event["detail-type"].as_str().unwrap_or_default().to_owned();
        return match (source.as_str(), detail_type.as_str()) {
            (CLOUDWATCH_SOURCE, ALARM_STATE_CHANGE) => {
                let ev = parse_eventbridge::<AlarmData>(event)?;
                let arn = ev.resources.as_ref().and_then(|r| r.first()).cloned();
                alarm_trigger(ev.detail, arn, TriggerVia::EventBridge)
            }
            (s, SCHEDULED_EVENT) if SCHEDULE_SOURCES.contains(&s) => {
                let ev = parse_eventbridge::<Value>(event)?;
                let time = ev
                    .time
                    .ok_or_else(|| invalid("\"Scheduled Event\"", "it has no \"time\""))?;
                let resource = ev.resources.as_ref().and_then(|r| r.first()).cloned();
                let name = resource
                    .as_deref()
                    .and_then(|r| r.rsplit(['/', ':']).next())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("schedule")
                    .to_owned();
                let identity = vec![
                    resource.clone().unwrap_or_else(|| name.clone()),
                    millis(time),
                ];
                Ok(Trigger {
                    kind: TriggerKind::Schedule,
                    via: TriggerVia::EventBridge,
                    reason: format!(
                        "scheduled retraining ({name}) at {}",
                        time.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                    name,
                    time,
                    identity,
                    resources: resource.into_iter().collect(),
                    alarm: None,
                    request: None,
                })
            }
            (s, RETRAIN_REQUESTED) if !s.starts_with("aws.") => {
                let event_id = event.get("id").and_then(Value::as_str).map(str::to_owned);
                let ev = parse_eventbridge::<RetrainRequest>(event)?;
                request_trigger(ev.detail, &source, event_id, ev.time.unwrap_or(now))
            }
            _ => Err(EventError::UnexpectedShape {
                expected: EXPECTED.to_owned(),
                got: describe_shape(&event),
            }),
        };
    }
    if event.get("alarmData").is_some() {
        let action: AlarmAction = serde_json::from_value(event)
            .map_err(|e| invalid("CloudWatch alarm-action payload", e.to_string()))?;
        return alarm_trigger(action.alarm_data, action.alarm_arn, TriggerVia::AlarmAction);
    }
    Err(EventError::UnexpectedShape {
        expected: EXPECTED.to_owned(),
        got: describe_shape(&event),
    })
}

fn alarm_trigger(
    data: AlarmData,
    alarm_arn: Option<String>,
    via: TriggerVia,
) -> Result<Trigger, EventError> {
    if data.alarm_name.trim().is_empty() {
        return Err(invalid("alarm", "\"alarmName\" is empty"));
    }
    let state = AlarmState::parse(&data.state.value);
    let previous = data
        .previous_state
        .as_ref()
        .map(|p| AlarmState::parse(&p.value));
    let reason_data = data
        .state
        .reason_data
        .as_ref()
        .and_then(parse_reason_data)
        .unwrap_or_default();
    let config = data.configuration.clone().unwrap_or_default();
    let metric = alarm_metric(&config);
    let time = data.state.timestamp;
    let reason = data.state.reason.clone().unwrap_or_default();
    let context = AlarmContext {
        state: state.clone(),
        previous_state: previous,
        state_reason: reason.clone(),
        actions_suppressed_by: data
            .state
            .actions_suppressed_by
            .clone()
            .filter(|s| !s.is_empty()),
        metric: metric.as_ref().map(|m| m.0.clone()),
        namespace: metric.as_ref().and_then(|m| m.1.clone()),
        dimensions: metric.map(|m| m.2).unwrap_or_default(),
        value: breaching_value(&reason_data),
        threshold: reason_data.threshold,
        alarm_arn: alarm_arn.clone(),
        composite: config.alarm_rule.is_some(),
    };
    Ok(Trigger {
        kind: TriggerKind::Alarm,
        via,
        identity: vec![data.alarm_name.clone(), millis(time)],
        reason: format!(
            "alarm {} entered {} at {}{}",
            data.alarm_name,
            state,
            time.to_rfc3339_opts(SecondsFormat::Millis, true),
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        ),
        name: data.alarm_name,
        time,
        resources: alarm_arn.into_iter().collect(),
        alarm: Some(context),
        request: None,
    })
}

fn parse_reason_data(v: &Value) -> Option<ReasonData> {
    match v {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Object(_) => serde_json::from_value(v.clone()).ok(),
        _ => None,
    }
}

/// The value that breached: the newest evaluated datapoint with a value, else the newest recent
/// datapoint.
fn breaching_value(r: &ReasonData) -> Option<f64> {
    r.evaluated_datapoints
        .iter()
        .filter(|d| d.value.is_some_and(f64::is_finite))
        .max_by_key(|d| d.timestamp)
        .and_then(|d| d.value)
        .or_else(|| {
            r.recent_datapoints
                .iter()
                .rev()
                .flatten()
                .copied()
                .find(|v| v.is_finite())
        })
}

/// (name, namespace, dimensions) of the metric the alarm evaluates: the entry with
/// `returnData: true` (or the only entry). For a metric-math expression: its label, else the
/// expression, no namespace.
fn alarm_metric(
    config: &AlarmConfiguration,
) -> Option<(String, Option<String>, BTreeMap<String, String>)> {
    let m = config
        .metrics
        .iter()
        .find(|m| m.return_data == Some(true))
        .or_else(|| {
            if config.metrics.len() == 1 {
                config.metrics.first()
            } else {
                None
            }
        })?;
    if let Some(stat) = &m.metric_stat {
        return Some((
            stat.metric.name.clone(),
            stat.metric.namespace.clone(),
            stat.metric.dimensions.clone(),
        ));
    }
    let name = m
        .label
        .clone()
        .filter(|l| !l.is_empty())
        .or_else(|| m.expression.clone())
        .or_else(|| m.id.clone())?;
    Some((name, None, BTreeMap::new()))
}

fn request_trigger(
    detail: RetrainRequest,
    source: &str,
    event_id: Option<String>,
    time: DateTime<Utc>,
) -> Result<Trigger, EventError> {
    let what = "\"Retrain Requested\" detail";
    let reason = detail
        .reason
        .clone()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    let reason = reason.ok_or_else(|| invalid(what, "\"reason\" is required (why retrain?)"))?;
    let key = detail
        .request_id
        .clone()
        .filter(|r| !r.trim().is_empty())
        .or(event_id)
        .ok_or_else(|| {
            invalid(
                what,
                "needs \"requestId\" in the detail, or the event's \"id\"",
            )
        })?;
    let mut parameters = BTreeMap::new();
    for (name, value) in &detail.parameters {
        crate::retrain::settings::validate_parameter_name(name).map_err(|r| invalid(what, r))?;
        parameters.insert(
            name.clone(),
            parameter_value(name, value).map_err(|r| invalid(what, r))?,
        );
    }
    let name = detail
        .requested_by
        .clone()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| source.to_owned());
    Ok(Trigger {
        kind: TriggerKind::Request,
        via: TriggerVia::EventBridge,
        reason: format!("requested by {name}: {reason}"),
        name,
        time,
        identity: vec![source.to_owned(), key],
        resources: Vec::new(),
        alarm: None,
        request: Some(RequestOptions {
            pipeline: detail.pipeline_name.filter(|p| !p.trim().is_empty()),
            parameters,
            force: detail.force,
        }),
    })
}
