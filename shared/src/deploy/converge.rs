//! Converging one stage: its desired package, the endpoint's state, the plan and its application,
//! the alarm that follows the deployed package, and the outcome announced as `Model Deployed` or
//! `Model Deployment Skipped`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::alarm::{AlarmThresholds, threshold_from_constraints};
use super::trigger::{SOURCE, Trigger};
use super::{AlarmFollow, Hosting, Plan, Stage, StageConfig, apply, desired_package, plan};
use crate::contract::DetailType;
use crate::error::{AwsError, Classify, ErrorClass};
use crate::publish::OutgoingEvent;
use crate::registry::{ModelPackage, ModelRegistry};
use crate::storage::{ObjectStore, S3Uri};

pub const MODEL_DEPLOYED: &str = DetailType::ModelDeployed.as_str();
pub const DEPLOYMENT_SKIPPED: &str = DetailType::DeploymentSkipped.as_str();

/// What converging a stage did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageAction {
    Created,
    Updated,
    UpToDate,
    NothingToDeploy,
    Busy,
    Failed,
    /// The registry or the endpoint could not be read, or the plan not applied.
    Error,
}

impl StageAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            StageAction::Created => "created",
            StageAction::Updated => "updated",
            StageAction::UpToDate => "up_to_date",
            StageAction::NothingToDeploy => "nothing_to_deploy",
            StageAction::Busy => "busy",
            StageAction::Failed => "failed",
            StageAction::Error => "error",
        }
    }

    /// A new package went out (the endpoint was created or updated).
    pub fn deployed(&self) -> bool {
        matches!(self, StageAction::Created | StageAction::Updated)
    }

    /// The detail type of the outcome's event.
    pub fn detail_type(&self) -> &'static str {
        if self.deployed() {
            MODEL_DEPLOYED
        } else {
            DEPLOYMENT_SKIPPED
        }
    }
}

impl fmt::Display for StageAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for StageAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmUpdate {
    pub alarm_name: String,
    pub metric: String,
    pub threshold: Option<f64>,
    pub comparison_operator: Option<String>,
    pub previous_threshold: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageOutcome {
    pub stage: Stage,
    pub endpoint: String,
    pub action: StageAction,
    pub package_arn: Option<String>,
    pub package_version: Option<i64>,
    pub endpoint_config: Option<String>,
    pub reason: Option<String>,
    pub alarm: Option<AlarmUpdate>,
}

/// Why a stage did not converge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvergeError {
    #[error(
        "endpoint {endpoint} is {status}; the deployment will be retried when the event is redelivered"
    )]
    EndpointBusy { endpoint: String, status: String },
    #[error("endpoint {endpoint} is {status}: {reason}")]
    EndpointFailed {
        endpoint: String,
        status: String,
        reason: String,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for ConvergeError {
    fn class(&self) -> ErrorClass {
        match self {
            ConvergeError::EndpointBusy { .. } => ErrorClass::Retryable,
            ConvergeError::EndpointFailed { .. } => ErrorClass::Permanent,
            ConvergeError::Aws(e) => e.class(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            ConvergeError::EndpointBusy { .. } => "EndpointBusy",
            ConvergeError::EndpointFailed { .. } => "EndpointFailed",
            ConvergeError::Aws(e) => e.code(),
        }
    }
}

/// Sets the alarm's threshold from the package's model-quality constraint on the metric. A
/// failure is reported in the update, never fatal: the deployment is what matters.
pub async fn follow_alarm(
    store: &dyn ObjectStore,
    alarms: &dyn AlarmThresholds,
    follow: &AlarmFollow,
    package: &ModelPackage,
) -> AlarmUpdate {
    let mut update = AlarmUpdate {
        alarm_name: follow.alarm_name.clone(),
        metric: follow.metric.clone(),
        threshold: None,
        comparison_operator: None,
        previous_threshold: None,
        error: None,
    };
    let result: Result<(), String> = async {
        let uri = package
            .model_quality_baseline()
            .and_then(|b| b.constraints.clone())
            .ok_or("the package has no model-quality constraints")?;
        let uri = S3Uri::parse(&uri)?;
        let body = store.get(&uri).await.map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_slice(&body).map_err(|e| format!("{uri}: {e}"))?;
        let t = threshold_from_constraints(&json, &follow.metric)?;
        update.previous_threshold = alarms
            .set_threshold(&follow.alarm_name, t.threshold, &t.comparison_operator)
            .await
            .map_err(|e| e.to_string())?;
        update.threshold = Some(t.threshold);
        update.comparison_operator = Some(t.comparison_operator);
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(
            alarm = follow.alarm_name,
            error = e,
            "alarm threshold not updated"
        );
        update.error = Some(e);
    }
    update
}

/// Converges one stage; the error is what the invocation should fail with (after all stages ran).
pub async fn converge(
    registry: &dyn ModelRegistry,
    hosting: &dyn Hosting,
    store: &dyn ObjectStore,
    alarms: &dyn AlarmThresholds,
    role_arn: &str,
    group: &str,
    stage: &StageConfig,
) -> (StageOutcome, Option<ConvergeError>) {
    let mut outcome = StageOutcome {
        stage: stage.stage,
        endpoint: stage.endpoint_name.clone(),
        action: StageAction::Error,
        package_arn: None,
        package_version: None,
        endpoint_config: None,
        reason: None,
        alarm: None,
    };
    let desired = match desired_package(registry, group, stage.stage).await {
        Ok(d) => d,
        Err(e) => {
            outcome.reason = Some(e.to_string());
            return (outcome, Some(e.into()));
        }
    };
    outcome.package_arn = desired.as_ref().map(|p| p.summary.arn.clone());
    outcome.package_version = desired.as_ref().and_then(|p| p.summary.version);
    let current = match hosting.describe_endpoint(&stage.endpoint_name).await {
        Ok(c) => c,
        Err(e) => {
            outcome.reason = Some(e.to_string());
            return (outcome, Some(e.into()));
        }
    };
    let the_plan = plan(
        stage,
        role_arn,
        desired.as_ref().map(|p| &p.summary),
        current.as_ref(),
    );
    if let Err(e) = apply(&the_plan, hosting, &stage.endpoint_name).await {
        outcome.reason = Some(e.to_string());
        return (outcome, Some(e.into()));
    }
    let mut error = None;
    match &the_plan {
        Plan::Create { config, .. } | Plan::Update { config, .. } => {
            outcome.action = if matches!(the_plan, Plan::Create { .. }) {
                StageAction::Created
            } else {
                StageAction::Updated
            };
            outcome.endpoint_config = Some(config.name.clone());
            if let (Some(follow), Some(pkg)) = (&stage.follow_alarm, &desired) {
                outcome.alarm = Some(follow_alarm(store, alarms, follow, pkg).await);
            }
        }
        Plan::UpToDate { config_name } => {
            outcome.action = StageAction::UpToDate;
            outcome.endpoint_config = Some(config_name.clone());
            outcome.reason = Some("the endpoint already serves the desired package".into());
        }
        Plan::NothingToDeploy { reason } => {
            outcome.action = StageAction::NothingToDeploy;
            outcome.reason = Some(reason.clone());
        }
        Plan::Busy { status } => {
            outcome.action = StageAction::Busy;
            outcome.reason = Some(format!("endpoint is {status}"));
            error = Some(ConvergeError::EndpointBusy {
                endpoint: stage.endpoint_name.clone(),
                status: status.clone(),
            });
        }
        Plan::Failed { status, reason } => {
            outcome.action = StageAction::Failed;
            outcome.reason = Some(format!("endpoint is {status}: {reason}"));
            error = Some(ConvergeError::EndpointFailed {
                endpoint: stage.endpoint_name.clone(),
                status: status.clone(),
                reason: reason.clone(),
            });
        }
    }
    (outcome, error)
}

/// The event announcing a stage's outcome: its fields, the group and the trigger.
pub fn outcome_event(
    group: &str,
    trigger: &Trigger,
    o: &StageOutcome,
    bus: Option<&str>,
) -> OutgoingEvent {
    let mut detail = serde_json::to_value(o).unwrap_or_else(|_| json!({}));
    detail["modelPackageGroupName"] = json!(group);
    detail["trigger"] = serde_json::to_value(trigger).unwrap_or(Value::Null);
    OutgoingEvent::new(SOURCE, o.action.detail_type(), detail)
        .with_resources(o.package_arn.iter().cloned())
        .on_bus(bus)
}
