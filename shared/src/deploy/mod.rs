//! deploy-on-approval's domain: which package each stage should serve, and the plan that converges
//! an endpoint to it.
//!
//! Converge, don't react: whatever event arrives (approval, rejection, a replay, a promotion), the
//! desired package of each stage is recomputed from the Model Registry's *current* state and the
//! endpoint is moved there if it is not already. So a rejection of the serving package rolls back
//! to the previous approved one, a late replay of an old approval never downgrades, and duplicate
//! deliveries make one update.
//!
//! - staging serves the latest approved package of the group;
//! - production serves the latest approved package that has been promoted to production (the
//!   promotion is recorded on the package as `CustomerMetadataProperties["driftloop:promoted:production"]`).
//!
//! Rooms:
//! - this module: stages, the desired package of a stage, and the pure [`plan`] with its [`apply`]
//!   over the [`Hosting`] port;
//! - [`trigger`]: the events that start a convergence, and which ones this deployment ignores;
//! - [`promote`]: who may be promoted, and recording the promotion on the package;
//! - [`converge`]: one stage end to end, its [`converge::StageAction`] and its outcome event;
//! - [`record`]: the deployment outcome recorded on the package, and how a failed or rolled-back
//!   update is told apart from one in flight;
//! - [`scaling`]: autoscaling of the served variant, kept across updates;
//! - [`alarm`]: the alarm threshold that follows the deployed package's constraints;
//! - [`names`]: bounded, deterministic SageMaker resource names.

pub mod alarm;
pub mod converge;
pub mod names;
pub mod promote;
pub mod record;
pub mod scaling;
pub mod trigger;

pub use converge::{AlarmUpdate, ConvergeError, StageAction, StageOutcome, converge};
pub use promote::{PromoteError, promote};
pub use trigger::{Trigger, parse_trigger};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{AwsError, AwsErrorKind};
use crate::registry::{ApprovalStatus, ModelPackage, ModelRegistry, PackageSummary, list_all};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Staging,
    Production,
}

impl Stage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Staging => "staging",
            Stage::Production => "production",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        match s.trim().to_ascii_lowercase().as_str() {
            "staging" => Some(Stage::Staging),
            "production" | "prod" => Some(Stage::Production),
            _ => None,
        }
    }
}

/// The metadata key that marks a package as promoted to a stage (value: promotion time, RFC 3339).
pub fn promotion_key(stage: Stage) -> String {
    format!("driftloop:promoted:{}", stage.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    pub destination_s3_uri: String,
    pub sampling_percentage: u8,
    pub csv_content_types: Vec<String>,
    pub json_content_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrafficRouting {
    AllAtOnce,
    /// Shift `percent` of capacity first, then the rest after the wait interval.
    Canary {
        percent: u8,
    },
    /// Shift `percent` of capacity per step.
    Linear {
        percent: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreen {
    pub routing: TrafficRouting,
    pub wait_interval_seconds: u32,
    pub termination_wait_seconds: u32,
    pub maximum_execution_timeout_seconds: Option<u32>,
}

/// The alarm whose threshold follows the deployed package's model-quality constraint on `metric`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmFollow {
    pub alarm_name: String,
    pub metric: String,
    /// A catalogue alarm the loop owns: the whole alarm is created or updated from this template
    /// (and the threshold), instead of re-putting an existing alarm with a new threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<crate::catalogue::alarms::AlarmTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageConfig {
    pub stage: Stage,
    pub endpoint_name: String,
    pub instance_type: String,
    pub instance_count: u32,
    pub capture: Option<CaptureSpec>,
    pub blue_green: Option<BlueGreen>,
    pub rollback_alarms: Vec<String>,
    pub follow_alarm: Option<AlarmFollow>,
    /// Target tracking on invocations per instance for the variant the endpoint serves.
    #[serde(default)]
    pub autoscaling: Option<scaling::AutoScaling>,
}

impl StageConfig {
    /// What the endpoint config is made of, besides the model: a change gives a new config name.
    fn fingerprint(&self) -> String {
        serde_json::to_string(&(&self.instance_type, self.instance_count, &self.capture))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub package_arn: String,
    pub execution_role_arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointConfigSpec {
    pub name: String,
    pub model_name: String,
    pub variant_name: String,
    pub instance_type: String,
    pub instance_count: u32,
    pub capture: Option<CaptureSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    pub blue_green: Option<BlueGreen>,
    pub rollback_alarms: Vec<String>,
}

/// `DescribeEndpoint`, reduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointState {
    pub name: String,
    /// `EndpointStatus`: OutOfService, Creating, Updating, SystemUpdating, RollingBack, InService,
    /// Deleting, Failed, UpdateRollbackFailed.
    pub status: String,
    pub config_name: Option<String>,
    /// The config an update in flight is moving to (`PendingDeploymentSummary`).
    pub pending_config_name: Option<String>,
    pub failure_reason: Option<String>,
}

const BUSY: &[&str] = &[
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "Deleting",
];

/// SageMaker refuses an update of an endpoint that is changing with a ValidationException
/// "Cannot update in-progress endpoint ...": the endpoint is busy (retry later), not a bad request.
pub fn in_progress_is_busy(mut e: AwsError) -> AwsError {
    if e.message.contains("in-progress endpoint") || e.message.contains("in progress endpoint") {
        e.kind = AwsErrorKind::Busy;
    }
    e
}

/// The SageMaker hosting port.
#[async_trait]
pub trait Hosting: Send + Sync {
    /// `None` when the endpoint does not exist.
    async fn describe_endpoint(&self, name: &str) -> Result<Option<EndpointState>, AwsError>;
    /// Creates the model unless one of that name exists (then a no-op).
    async fn ensure_model(&self, spec: &ModelSpec) -> Result<(), AwsError>;
    /// Creates the endpoint config unless one of that name exists (then a no-op).
    async fn ensure_endpoint_config(&self, spec: &EndpointConfigSpec) -> Result<(), AwsError>;
    async fn create_endpoint(&self, name: &str, config_name: &str) -> Result<(), AwsError>;
    async fn update_endpoint(
        &self,
        name: &str,
        config_name: &str,
        deployment: &DeploymentSpec,
    ) -> Result<(), AwsError>;
}

/// What to do with one stage's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Plan {
    /// No package qualifies for the stage; the endpoint is left as it is.
    NothingToDeploy { reason: String },
    /// The endpoint already serves (or is already moving to) the desired config.
    UpToDate { config_name: String },
    /// The endpoint is busy with another change; retry later.
    Busy { status: String },
    /// The endpoint is in a failed state; a person has to look.
    Failed { status: String, reason: String },
    Create {
        model: ModelSpec,
        config: EndpointConfigSpec,
    },
    Update {
        model: ModelSpec,
        config: EndpointConfigSpec,
        deployment: DeploymentSpec,
        from_config: Option<String>,
    },
}

/// The one production variant of every endpoint config driftloop creates (a constant name keeps
/// the variant's autoscaling registration across model updates).
pub const VARIANT: &str = "AllTraffic";

/// The pure planning step.
pub fn plan(
    stage: &StageConfig,
    role_arn: &str,
    desired: Option<&PackageSummary>,
    current: Option<&EndpointState>,
) -> Plan {
    let Some(pkg) = desired else {
        let reason = match stage.stage {
            Stage::Staging => "the group has no approved, completed package",
            Stage::Production => "no approved package has been promoted to production",
        };
        return Plan::NothingToDeploy {
            reason: reason.to_owned(),
        };
    };
    let version = pkg.version.unwrap_or(0);
    let model = ModelSpec {
        name: names::model_name(&pkg.group, version),
        package_arn: pkg.arn.clone(),
        execution_role_arn: role_arn.to_owned(),
    };
    let config = EndpointConfigSpec {
        name: names::endpoint_config_name(&stage.endpoint_name, version, &stage.fingerprint()),
        model_name: model.name.clone(),
        variant_name: VARIANT.to_owned(),
        instance_type: stage.instance_type.clone(),
        instance_count: stage.instance_count,
        capture: stage.capture.clone(),
    };
    let Some(current) = current else {
        return Plan::Create { model, config };
    };
    let serving_desired = current.config_name.as_deref() == Some(config.name.as_str());
    let moving_to_desired = current.pending_config_name.as_deref() == Some(config.name.as_str());
    if BUSY.contains(&current.status.as_str()) {
        // Already moving to the desired config (a duplicate delivery), or serving it through a
        // maintenance update: nothing to do. Any other change in flight: come back later.
        let settled_on_desired = serving_desired
            && current.pending_config_name.is_none()
            && current.status != "RollingBack";
        return if moving_to_desired || settled_on_desired {
            Plan::UpToDate {
                config_name: config.name,
            }
        } else {
            Plan::Busy {
                status: current.status.clone(),
            }
        };
    }
    if current.status == "Failed" || current.status == "UpdateRollbackFailed" {
        return Plan::Failed {
            status: current.status.clone(),
            reason: current
                .failure_reason
                .clone()
                .unwrap_or_else(|| "no failure reason given".to_owned()),
        };
    }
    if serving_desired {
        return Plan::UpToDate {
            config_name: config.name,
        };
    }
    Plan::Update {
        model,
        config,
        deployment: DeploymentSpec {
            blue_green: stage.blue_green.clone(),
            rollback_alarms: stage.rollback_alarms.clone(),
        },
        from_config: current.config_name.clone(),
    }
}

/// Carries out a plan. Returns whether anything changed on the endpoint.
pub async fn apply(plan: &Plan, hosting: &dyn Hosting, endpoint: &str) -> Result<bool, AwsError> {
    match plan {
        Plan::Create { model, config } => {
            hosting.ensure_model(model).await?;
            hosting.ensure_endpoint_config(config).await?;
            hosting.create_endpoint(endpoint, &config.name).await?;
            Ok(true)
        }
        Plan::Update {
            model,
            config,
            deployment,
            ..
        } => {
            hosting.ensure_model(model).await?;
            hosting.ensure_endpoint_config(config).await?;
            hosting
                .update_endpoint(endpoint, &config.name, deployment)
                .await?;
            Ok(true)
        }
        Plan::NothingToDeploy { .. }
        | Plan::UpToDate { .. }
        | Plan::Busy { .. }
        | Plan::Failed { .. } => Ok(false),
    }
}

/// How many of the newest approved packages are described when looking for a promoted one.
pub const PROMOTION_SEARCH_LIMIT: usize = 100;

/// The package a stage should serve now. `event`, when the trigger is a package state change,
/// bounds the registry's answer ([`trigger::EventBound::effective_approval`]): a read that lags
/// the event neither keeps a package the event rejected nor settles on one older than the package
/// the event approved.
pub async fn desired_package(
    registry: &dyn ModelRegistry,
    group: &str,
    stage: Stage,
    event: Option<&trigger::EventBound>,
) -> Result<Option<ModelPackage>, AwsError> {
    let mut approved: Vec<PackageSummary> =
        list_all(registry, group, Some(&ApprovalStatus::Approved))
            .await?
            .into_iter()
            .filter(|p| p.approval == ApprovalStatus::Approved && p.is_completed())
            .collect();
    // The event's package as the event bounds it: described once, its approval the effective one.
    let mut bounded: Option<ModelPackage> = None;
    if let Some(bound) = event {
        // A package the registry cannot describe (deleted, or not visible yet) cannot be deployed
        // either: the registry's view stands.
        let described = match registry.describe_package(&bound.package_arn).await {
            Ok(p) => Some(p),
            Err(e) if e.is_not_found() || e.message.contains("does not exist") => None,
            Err(e) => return Err(e),
        };
        if let Some(mut package) = described.filter(|p| p.summary.group == group) {
            let approval = bound.effective_approval(&package);
            if approval != package.summary.approval {
                tracing::info!(
                    arn = bound.package_arn,
                    registry = %package.summary.approval,
                    event = %approval,
                    "the registry read lags the event; the event's approval is used"
                );
            }
            package.summary.approval = approval;
            approved.retain(|p| p.arn != package.summary.arn);
            if package.summary.approval == ApprovalStatus::Approved
                && package.summary.is_completed()
            {
                approved.push(package.summary.clone());
            }
            bounded = Some(package);
        }
    }
    approved.sort_by_key(|p| std::cmp::Reverse(p.recency_key()));
    let describe = |summary: &PackageSummary| {
        let bounded = bounded
            .as_ref()
            .filter(|b| b.summary.arn == summary.arn)
            .cloned();
        let arn = summary.arn.clone();
        async move {
            match bounded {
                Some(b) => Ok(b),
                None => registry.describe_package(&arn).await,
            }
        }
    };
    match stage {
        Stage::Staging => match approved.first() {
            None => Ok(None),
            Some(best) => describe(best).await.map(Some),
        },
        Stage::Production => {
            let key = promotion_key(Stage::Production);
            for summary in approved.iter().take(PROMOTION_SEARCH_LIMIT) {
                let package = describe(summary).await?;
                if package.customer_metadata.contains_key(&key) {
                    return Ok(Some(package));
                }
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests;
