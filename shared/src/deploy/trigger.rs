//! What starts a convergence — a package's state change, a promotion request, an endpoint back in
//! service — or a reconcile of the catalogue's alarms and dashboard (the catalogue's upload, the
//! daily schedule; [`crate::catalogue::reconcile`]), and which of those events this deployment ignores ([`ignore_reason`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Stage, StageConfig};
use crate::contract::DetailType;
use crate::events::{
    ENDPOINT_STATE_CHANGE, EndpointStateChange, EventError, MODEL_PACKAGE_STATE_CHANGE,
    ModelPackageStateChange, SAGEMAKER_SOURCE, describe_shape, parse_eventbridge,
};
use crate::registry::{ApprovalStatus, ModelPackage};

/// The source of driftloop's own events (the promotion request, and the outcomes it publishes).
pub use crate::contract::SOURCE;
pub const PROMOTION_REQUESTED: &str = DetailType::PromotionRequested.as_str();
/// The reconcile triggers: the catalogue object's upload, and the daily schedule.
pub const OBJECT_CREATED: &str = "Object Created";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// What triggered the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    PackageStateChange {
        group: String,
        package_arn: String,
        approval: Option<String>,
        /// The event's `time`: a registry read whose package changed no later than this may lag
        /// the event (see [`Trigger::bound`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<DateTime<Utc>>,
    },
    Promotion {
        group: String,
        package_arn: Option<String>,
        stage: Stage,
    },
    /// An endpoint changed state; it names no group (the configured one is meant).
    EndpointStateChange { endpoint: String, status: String },
    /// Reconcile the catalogue's alarms and dashboard: an upload of the catalogue object (S3
    /// `Object Created`, `object` is `s3://bucket/key`) or the daily schedule (`Scheduled Event`).
    Reconcile {
        cause: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object: Option<String>,
    },
}

impl Trigger {
    /// What the event itself says about its package, which a lagging registry read must not undo.
    pub fn bound(&self) -> Option<EventBound> {
        match self {
            Trigger::PackageStateChange {
                package_arn,
                approval: Some(approval),
                time,
                ..
            } => Some(EventBound {
                package_arn: package_arn.clone(),
                approval: ApprovalStatus::parse(approval),
                time: *time,
            }),
            _ => None,
        }
    }

    /// The group the event is about; `None` for endpoint events, which concern the configured group.
    pub fn group(&self) -> Option<&str> {
        match self {
            Trigger::PackageStateChange { group, .. } | Trigger::Promotion { group, .. } => {
                Some(group)
            }
            Trigger::EndpointStateChange { .. } | Trigger::Reconcile { .. } => None,
        }
    }
}

/// A package state change's own word on its package: its approval status as of `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBound {
    pub package_arn: String,
    pub approval: ApprovalStatus,
    pub time: Option<DateTime<Utc>>,
}

impl EventBound {
    /// The package's approval to act on: the registry's when the registry's package changed after
    /// the event (a later re-approval or rejection; the event is a replay), else the event's (the
    /// read may lag the event). EventBridge's `time` has whole seconds, so a change in the event's
    /// own second does not count as later.
    pub fn effective_approval(&self, registry: &ModelPackage) -> ApprovalStatus {
        let registry_newer = match (registry.last_modified, self.time) {
            (Some(modified), Some(time)) => modified >= time + chrono::Duration::seconds(1),
            _ => false,
        };
        if registry_newer {
            registry.summary.approval.clone()
        } else {
            self.approval.clone()
        }
    }
}

/// `IN_SERVICE` (the event's spelling) or `InService` (the API's).
pub fn in_service(status: &str) -> bool {
    status.replace('_', "").eq_ignore_ascii_case("inservice")
}

/// The `detail` of a `Model Promotion Requested` event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PromotionDetail {
    pub model_package_group_name: String,
    #[serde(default)]
    pub model_package_arn: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
}

pub fn parse_trigger(event: Value) -> Result<Trigger, EventError> {
    let source = event
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match (source.as_str(), detail_type.as_str()) {
        (SAGEMAKER_SOURCE, MODEL_PACKAGE_STATE_CHANGE) => {
            let e = parse_eventbridge::<ModelPackageStateChange>(event)?;
            Ok(Trigger::PackageStateChange {
                group: e.detail.model_package_group_name,
                package_arn: e.detail.model_package_arn,
                approval: e.detail.model_approval_status,
                time: e.time,
            })
        }
        (SAGEMAKER_SOURCE, ENDPOINT_STATE_CHANGE) => {
            let e = parse_eventbridge::<EndpointStateChange>(event)?;
            Ok(Trigger::EndpointStateChange {
                endpoint: e.detail.endpoint_name,
                status: e.detail.endpoint_status,
            })
        }
        (SOURCE, PROMOTION_REQUESTED) => {
            let e = parse_eventbridge::<Value>(event)?;
            let d: PromotionDetail =
                serde_json::from_value(e.detail).map_err(|err| EventError::Invalid {
                    what: format!("{PROMOTION_REQUESTED:?} detail"),
                    reason: err.to_string(),
                })?;
            let stage = match d.stage.as_deref() {
                None => Stage::Production,
                Some(s) => Stage::parse(s).ok_or_else(|| EventError::Invalid {
                    what: "Stage".into(),
                    reason: format!("{s:?}: expected \"production\" (or \"staging\")"),
                })?,
            };
            Ok(Trigger::Promotion {
                group: d.model_package_group_name,
                package_arn: d.model_package_arn,
                stage,
            })
        }
        ("aws.s3", OBJECT_CREATED) => {
            let bucket = event.pointer("/detail/bucket/name").and_then(Value::as_str);
            let key = event.pointer("/detail/object/key").and_then(Value::as_str);
            match (bucket, key) {
                (Some(b), Some(k)) => Ok(Trigger::Reconcile {
                    cause: "catalogue upload".into(),
                    object: Some(format!("s3://{b}/{k}")),
                }),
                _ => Err(EventError::Invalid {
                    what: format!("{OBJECT_CREATED:?} detail"),
                    reason: "expected detail.bucket.name and detail.object.key".into(),
                }),
            }
        }
        ("aws.events", SCHEDULED_EVENT) => Ok(Trigger::Reconcile {
            cause: format!(
                "schedule {}",
                event
                    .pointer("/resources/0")
                    .and_then(Value::as_str)
                    .unwrap_or("(no rule named)")
            ),
            object: None,
        }),
        _ => Err(EventError::UnexpectedShape {
            expected: format!(
                "an EventBridge event {SAGEMAKER_SOURCE:?}/{MODEL_PACKAGE_STATE_CHANGE:?}, {SAGEMAKER_SOURCE:?}/{ENDPOINT_STATE_CHANGE:?}, {SOURCE:?}/{PROMOTION_REQUESTED:?}, \"aws.s3\"/{OBJECT_CREATED:?} (the catalogue) or \"aws.events\"/{SCHEDULED_EVENT:?} (reconcile)"
            ),
            got: describe_shape(&event),
        }),
    }
}

/// Why this deployment (of `group`, over `stages`) ignores the trigger: an endpoint it does not
/// manage, an endpoint change other than a return to service, another group.
pub fn ignore_reason(trigger: &Trigger, group: &str, stages: &[StageConfig]) -> Option<String> {
    match trigger {
        Trigger::EndpointStateChange { endpoint, .. }
            if !stages.iter().any(|s| &s.endpoint_name == endpoint) =>
        {
            Some(format!(
                "endpoint {endpoint:?} is not one this deployment manages"
            ))
        }
        Trigger::EndpointStateChange { endpoint, status } if !in_service(status) => Some(format!(
            "endpoint {endpoint:?} is {status}; only a return to service can unblock a deployment"
        )),
        t => t
            .group()
            .filter(|g| *g != group)
            .map(|g| format!("this deployment manages group {group:?}, not {g:?}")),
    }
}
