//! Converging one stage: its desired package, the endpoint's state, the plan and its application,
//! the alarm that follows the deployed package once it serves, the outcome recorded on the package
//! ([`super::record`]), and the outcome announced as `Model Deployed`, `Model Deployment Skipped`,
//! `Deployment Failed` or `Deployment Rolled Back`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use chrono::Utc;

use super::alarm::{AlarmThresholds, ensure_alarm, threshold_from_constraints};
use super::record::{DeployRecord, DeploymentFailure, RecordState, deploy_key, failed_update};
use super::scaling::{self, Scaling, ScalingUpdate};
use super::trigger::{EventBound, SOURCE, Trigger};
use super::{
    AlarmFollow, EndpointState, Hosting, Plan, Stage, StageConfig, apply, desired_package, plan,
};
use crate::contract::DetailType;
use crate::error::{AwsError, AwsErrorKind, Classify, ErrorClass};
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
    /// An update we asked for ended with the endpoint on its previous config.
    DeploymentFailed,
    /// A blue/green update rolled back on its alarms.
    RolledBack,
    /// The desired package's deployment failed or rolled back before; it is not retried.
    Held,
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
            StageAction::DeploymentFailed => "deployment_failed",
            StageAction::RolledBack => "rolled_back",
            StageAction::Held => "held",
            StageAction::Error => "error",
        }
    }

    /// A new package went out (the endpoint was created or updated).
    pub fn deployed(&self) -> bool {
        matches!(self, StageAction::Created | StageAction::Updated)
    }

    /// The detail type of the outcome's event.
    pub fn detail_type(&self) -> &'static str {
        match self {
            s if s.deployed() => MODEL_DEPLOYED,
            StageAction::DeploymentFailed => DetailType::DeploymentFailed.as_str(),
            StageAction::RolledBack => DetailType::DeploymentRolledBack.as_str(),
            _ => DEPLOYMENT_SKIPPED,
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
    /// A loop-managed (catalogue) alarm: created, updated (which fields) or unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<super::alarm::AlarmChange>,
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
    /// The autoscaling registered once the endpoint served the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingUpdate>,
    /// Set when the stage's update failed or rolled back (the detail of the event announcing it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeploymentFailure>,
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
        change: None,
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
        match &follow.managed {
            // The catalogue's alarm: the loop owns all of it, creates it when missing.
            Some(template) => {
                let spec = template.spec(t.threshold, &t.comparison_operator, &package.summary.arn);
                let (change, previous) = ensure_alarm(alarms, &spec, &template.tags)
                    .await
                    .map_err(|e| e.to_string())?;
                update.previous_threshold = previous;
                update.change = Some(change);
            }
            None => {
                update.previous_threshold = alarms
                    .set_threshold(&follow.alarm_name, t.threshold, &t.comparison_operator)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
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

/// What the trigger says about one stage's convergence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvergeContext {
    /// The event's own word on its package ([`super::trigger::Trigger::bound`]).
    pub event: Option<EventBound>,
    /// An explicit request for this stage: a recorded failure of the desired package is retried.
    pub retry: bool,
}

impl ConvergeContext {
    pub fn for_stage(trigger: &Trigger, stage: Stage) -> Self {
        ConvergeContext {
            event: trigger.bound(),
            retry: matches!(trigger, Trigger::Promotion { stage: s, .. } if *s == stage),
        }
    }
}

async fn write_record(
    registry: &dyn ModelRegistry,
    package: &ModelPackage,
    stage: Stage,
    record: &DeployRecord,
) -> Result<(), AwsError> {
    registry
        .put_customer_metadata(&package.summary.arn, &deploy_key(stage), &record.to_value())
        .await
}

fn settled_on(current: Option<&EndpointState>, config: &str) -> bool {
    current.is_some_and(|c| {
        c.status == "InService"
            && c.pending_config_name.is_none()
            && c.config_name.as_deref() == Some(config)
    })
}

/// Records where the endpoint is with the desired package; the alarm follows the package only
/// once the endpoint serves it (and once per deployment).
struct Settle<'a> {
    registry: &'a dyn ModelRegistry,
    scaling: &'a dyn Scaling,
    store: &'a dyn ObjectStore,
    alarms: &'a dyn AlarmThresholds,
    stage: &'a StageConfig,
    package: Option<&'a ModelPackage>,
    record: Option<&'a DeployRecord>,
}

impl Settle<'_> {
    async fn settle(
        &self,
        config: &str,
        previous: Option<&str>,
        current: Option<&EndpointState>,
    ) -> Settled {
        let Some(pkg) = self.package else {
            return Settled::default();
        };
        let serving = settled_on(current, config);
        let state = if serving {
            RecordState::Deployed
        } else {
            RecordState::Updating
        };
        if self
            .record
            .is_some_and(|r| r.config == config && r.state == state)
        {
            return Settled::default();
        }
        let record = match state {
            RecordState::Updating => DeployRecord::updating(config, previous, Utc::now()),
            _ => DeployRecord::new(state, config, Utc::now()),
        };
        let error = match write_record(self.registry, pkg, self.stage.stage, &record).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "deployment record not written");
                Some(ConvergeError::from(e))
            }
        };
        let alarm = match (&self.stage.follow_alarm, serving) {
            (Some(follow), true) => Some(follow_alarm(self.store, self.alarms, follow, pkg).await),
            _ => None,
        };
        let scaling = match (&self.stage.autoscaling, serving) {
            (Some(spec), true) => Some(
                scaling::ensure(
                    self.scaling,
                    &self.stage.endpoint_name,
                    super::VARIANT,
                    spec,
                )
                .await,
            ),
            _ => None,
        };
        Settled {
            alarm,
            scaling,
            error,
        }
    }
}

#[derive(Default)]
struct Settled {
    alarm: Option<AlarmUpdate>,
    scaling: Option<ScalingUpdate>,
    error: Option<ConvergeError>,
}

/// Converges one stage; the error is what the invocation should fail with (after all stages ran).
#[allow(clippy::too_many_arguments)]
pub async fn converge(
    registry: &dyn ModelRegistry,
    hosting: &dyn Hosting,
    store: &dyn ObjectStore,
    alarms: &dyn AlarmThresholds,
    scaling: &dyn Scaling,
    role_arn: &str,
    group: &str,
    stage: &StageConfig,
    ctx: &ConvergeContext,
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
        scaling: None,
        failure: None,
    };
    let desired = match desired_package(registry, group, stage.stage, ctx.event.as_ref()).await {
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
    let record = desired
        .as_ref()
        .and_then(|p| p.customer_metadata.get(&deploy_key(stage.stage)))
        .and_then(|v| DeployRecord::parse(v));
    // An update we asked for that the endpoint settled without: failed or rolled back. Recorded,
    // announced once, and not asked for again.
    if let (Plan::Update { config, .. }, Some(pkg), Some(cur), Some(rec)) =
        (&the_plan, &desired, &current, &record)
    {
        if rec.config == config.name && rec.state == RecordState::Updating {
            if let Some((state, reason)) =
                failed_update(rec, cur, !stage.rollback_alarms.is_empty())
            {
                let mut failed = DeployRecord::new(state, &config.name, Utc::now());
                failed.reason = Some(reason.clone());
                if let Err(e) = write_record(registry, pkg, stage.stage, &failed).await {
                    outcome.reason = Some(e.to_string());
                    return (outcome, Some(e.into()));
                }
                let rolled_back = state == RecordState::RolledBack;
                tracing::warn!(
                    endpoint = stage.endpoint_name,
                    config = config.name,
                    rolled_back,
                    reason,
                    "the update did not land; the package is held on this stage"
                );
                outcome.action = if rolled_back {
                    StageAction::RolledBack
                } else {
                    StageAction::DeploymentFailed
                };
                outcome.endpoint_config = Some(config.name.clone());
                outcome.reason = Some(reason.clone());
                outcome.failure = Some(DeploymentFailure {
                    rolled_back,
                    stage: stage.stage,
                    endpoint: stage.endpoint_name.clone(),
                    model_package_group_name: group.to_owned(),
                    package_arn: pkg.summary.arn.clone(),
                    package_version: pkg.summary.version,
                    endpoint_config: config.name.clone(),
                    serving_config: cur.config_name.clone(),
                    reason,
                    requested_at: rec.at,
                    detected_at: failed.at,
                    recorded_as: deploy_key(stage.stage),
                    retry: RETRY_HINT.to_owned(),
                });
                return (outcome, None);
            }
        }
        if rec.config == config.name && rec.state.holds() && !ctx.retry {
            outcome.action = StageAction::Held;
            outcome.endpoint_config = Some(config.name.clone());
            outcome.reason = Some(format!(
                "the deployment of this package {} at {}: {}; not retried ({RETRY_HINT})",
                if rec.state == RecordState::RolledBack {
                    "rolled back"
                } else {
                    "failed"
                },
                rec.at.to_rfc3339(),
                rec.reason.as_deref().unwrap_or("no reason given"),
            ));
            return (outcome, None);
        }
    }
    // SageMaker refuses an update that changes the instance settings of a scaled variant.
    if let (
        Some(_),
        Plan::Update {
            config,
            from_config,
            ..
        },
    ) = (&stage.autoscaling, &the_plan)
    {
        if scaling::settings_change(from_config.as_deref(), &config.name) {
            let id = scaling::resource_id(&stage.endpoint_name, super::VARIANT);
            if let Err(e) = scaling.deregister_target(&id).await {
                outcome.reason = Some(e.to_string());
                return (outcome, Some(e.into()));
            }
        }
    }
    if let Err(e) = apply(&the_plan, hosting, &stage.endpoint_name).await {
        outcome.reason = Some(e.to_string());
        if e.kind == AwsErrorKind::Busy {
            // "Cannot update in-progress endpoint": another change started since we looked.
            outcome.action = StageAction::Busy;
            return (
                outcome,
                Some(ConvergeError::EndpointBusy {
                    endpoint: stage.endpoint_name.clone(),
                    status: "in progress".into(),
                }),
            );
        }
        return (outcome, Some(e.into()));
    }
    let mut error = None;
    let settle_ctx = Settle {
        registry,
        scaling,
        store,
        alarms,
        stage,
        package: desired.as_ref(),
        record: record.as_ref(),
    };
    match &the_plan {
        Plan::Create { config, .. } | Plan::Update { config, .. } => {
            outcome.action = if matches!(the_plan, Plan::Create { .. }) {
                StageAction::Created
            } else {
                StageAction::Updated
            };
            outcome.endpoint_config = Some(config.name.clone());
            // SageMaker usually answers before the endpoint serves the config; an endpoint that
            // already does (an update that completes at once) settles now, else on its return
            // to service.
            let after = hosting
                .describe_endpoint(&stage.endpoint_name)
                .await
                .ok()
                .flatten();
            let previous = match &the_plan {
                Plan::Update { from_config, .. } => from_config.as_deref(),
                _ => None,
            };
            let settled = settle_ctx
                .settle(&config.name, previous, after.as_ref())
                .await;
            (outcome.alarm, outcome.scaling, error) =
                (settled.alarm, settled.scaling, settled.error);
        }
        Plan::UpToDate { config_name } => {
            outcome.action = StageAction::UpToDate;
            outcome.endpoint_config = Some(config_name.clone());
            outcome.reason = Some("the endpoint already serves the desired package".into());
            let previous = current.as_ref().and_then(|c| c.config_name.as_deref());
            let settled = settle_ctx
                .settle(config_name, previous, current.as_ref())
                .await;
            (outcome.alarm, outcome.scaling, error) =
                (settled.alarm, settled.scaling, settled.error);
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

/// How a person retries a held package.
pub const RETRY_HINT: &str = "retry with a Model Promotion Requested event for this stage, or remove the package's metadata key";

/// The event announcing a stage's outcome: its fields, the group and the trigger.
pub fn outcome_event(
    group: &str,
    trigger: &Trigger,
    o: &StageOutcome,
    bus: Option<&str>,
) -> OutgoingEvent {
    if let Some(failure) = &o.failure {
        return crate::contract::event(failure)
            .with_resources([failure.package_arn.clone()])
            .on_bus(bus);
    }
    let mut detail = serde_json::to_value(o).unwrap_or_else(|_| json!({}));
    detail["modelPackageGroupName"] = json!(group);
    detail["trigger"] = serde_json::to_value(trigger).unwrap_or(Value::Null);
    OutgoingEvent::new(SOURCE, o.action.detail_type(), detail)
        .with_resources(o.package_arn.iter().cloned())
        .on_bus(bus)
}
