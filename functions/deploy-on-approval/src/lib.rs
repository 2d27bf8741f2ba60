//! deploy-on-approval: converges each stage's endpoint to the package it should serve.
//!
//! Inputs:
//! - `SageMaker Model Package State Change` (source `aws.sagemaker`): any approval status; the
//!   event only says *which group* to look at — what to deploy is recomputed from the registry.
//! - `Model Promotion Requested` (source `driftloop`), driftloop's own event:
//!   `{"ModelPackageGroupName": "g", "ModelPackageArn": "arn..." (optional), "Stage": "production"}`.
//!   Without an ARN the latest approved package is promoted. The promotion is recorded on the
//!   package (`CustomerMetadataProperties["driftloop:promoted:production"]`), then every stage
//!   converges.
//! - `SageMaker Endpoint State Change` (source `aws.sagemaker`) of one of the managed endpoints
//!   coming back `IN_SERVICE`: every stage converges again. A deployment refused while the endpoint
//!   was busy (`Retryable.EndpointBusy`) so happens as soon as the endpoint is free, without
//!   waiting for (or depending on) the redelivery of the original event.
//!
//! See [`driftloop::deploy`] for the rules, and [`Config`] for the environment.

use std::sync::Arc;

use chrono::Utc;
use driftloop::config::{ConfigError, Env, Lookup};
use driftloop::deploy::alarm::{AlarmThresholds, threshold_from_constraints};
use driftloop::deploy::{
    AlarmFollow, BlueGreen, CaptureSpec, Hosting, Plan, Stage, StageConfig, TrafficRouting, apply,
    desired_package, plan, promotion_key,
};
use driftloop::error::{AwsError, Classify, ErrorClass};
use driftloop::events::{
    ENDPOINT_STATE_CHANGE, EndpointStateChange, EventError, MODEL_PACKAGE_STATE_CHANGE,
    ModelPackageStateChange, SAGEMAKER_SOURCE, describe_shape, parse_eventbridge,
};
use driftloop::publish::{EventPublisher, OutgoingEvent, PublishError};
use driftloop::registry::{ApprovalStatus, ModelPackage, ModelRegistry, latest_approved};
use driftloop::storage::{ObjectStore, S3Uri};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const SOURCE: &str = "driftloop";
pub const PROMOTION_REQUESTED: &str = "Model Promotion Requested";
pub const MODEL_DEPLOYED: &str = "Model Deployed";
pub const DEPLOYMENT_SKIPPED: &str = "Model Deployment Skipped";

/// Configuration from the environment.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `MODEL_PACKAGE_GROUP_NAME` | the group this deployment manages (events of other groups are ignored) | required |
/// | `SAGEMAKER_EXECUTION_ROLE_ARN` | role of the models it creates | required |
/// | `STAGING_ENDPOINT_NAME` | staging endpoint | required |
/// | `PRODUCTION_ENDPOINT_NAME` | production endpoint; production is off when unset | — |
/// | `{STAGE}_INSTANCE_TYPE`, `{STAGE}_INSTANCE_COUNT` | per stage | `ml.m5.large`, `1` |
/// | `{STAGE}_DEPLOYMENT` | blue/green traffic shifting: `ALL_AT_ONCE`, `CANARY:<percent>`, `LINEAR:<percent>`; plain update when unset | — |
/// | `{STAGE}_DEPLOYMENT_WAIT_SECONDS`, `{STAGE}_TERMINATION_WAIT_SECONDS` | blue/green timings | `300`, `0` |
/// | `{STAGE}_ROLLBACK_ALARMS` | comma-separated alarms that roll a deployment back | — |
/// | `{STAGE}_ALARM_NAME`, `{STAGE}_ALARM_METRIC` | the alarm whose threshold follows the deployed package's model-quality constraint on the metric | — |
/// | `DATA_CAPTURE_S3_URI` | data capture destination; capture is off when unset | — |
/// | `DATA_CAPTURE_SAMPLING_PERCENTAGE` | 1–100 | `100` |
/// | `DATA_CAPTURE_CSV_CONTENT_TYPES`, `DATA_CAPTURE_JSON_CONTENT_TYPES` | comma-separated | `text/csv`, `application/json` |
/// | `EVENT_BUS_NAME` | bus for `Model Deployed` / `Model Deployment Skipped` | the default bus |
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub group: String,
    pub role_arn: String,
    pub stages: Vec<StageConfig>,
    pub event_bus: Option<String>,
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn parse_routing(v: &str) -> Result<TrafficRouting, String> {
    let (kind, pct) = v.split_once(':').map_or((v, None), |(k, p)| (k, Some(p)));
    let percent = |p: Option<&str>| -> Result<u8, String> {
        let p = p.ok_or_else(|| format!("{kind} needs a percentage, e.g. {kind}:10"))?;
        p.trim()
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| format!("{p:?} is not a percentage 1-100"))
    };
    match kind.trim().to_ascii_uppercase().as_str() {
        "ALL_AT_ONCE" => Ok(TrafficRouting::AllAtOnce),
        "CANARY" => Ok(TrafficRouting::Canary {
            percent: percent(pct)?,
        }),
        "LINEAR" => Ok(TrafficRouting::Linear {
            percent: percent(pct)?,
        }),
        _ => Err("expected ALL_AT_ONCE, CANARY:<percent> or LINEAR:<percent>".to_owned()),
    }
}

impl Config {
    pub fn from_env(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let group = env.required_with_hint(
            "MODEL_PACKAGE_GROUP_NAME",
            "the Model Registry group to deploy",
        )?;
        let role_arn = env.required_with_hint(
            "SAGEMAKER_EXECUTION_ROLE_ARN",
            "the role SageMaker models run with",
        )?;
        let capture = match env.optional("DATA_CAPTURE_S3_URI") {
            None => None,
            Some(uri) => {
                S3Uri::parse(&uri).map_err(|reason| ConfigError::Invalid {
                    var: "DATA_CAPTURE_S3_URI".into(),
                    value: uri.clone(),
                    reason,
                })?;
                let pct = env.parse_checked(
                    "DATA_CAPTURE_SAMPLING_PERCENTAGE",
                    100u8,
                    |v| (1..=100).contains(v),
                    "must be 1-100",
                )?;
                Some(CaptureSpec {
                    destination_s3_uri: uri,
                    sampling_percentage: pct,
                    csv_content_types: env
                        .optional("DATA_CAPTURE_CSV_CONTENT_TYPES")
                        .map_or_else(|| vec!["text/csv".to_owned()], |v| list(Some(v))),
                    json_content_types: env
                        .optional("DATA_CAPTURE_JSON_CONTENT_TYPES")
                        .map_or_else(|| vec!["application/json".to_owned()], |v| list(Some(v))),
                })
            }
        };
        let stage = |stage: Stage, endpoint: String| -> Result<StageConfig, ConfigError> {
            let p = stage.as_str().to_ascii_uppercase();
            let var = |s: &str| format!("{p}_{s}");
            let count = env.parse_checked(
                &var("INSTANCE_COUNT"),
                1u32,
                |v| *v >= 1,
                "must be at least 1",
            )?;
            let blue_green = match env.validated(&var("DEPLOYMENT"), parse_routing)? {
                None => None,
                Some(routing) => Some(BlueGreen {
                    routing,
                    wait_interval_seconds: env.parse_or(&var("DEPLOYMENT_WAIT_SECONDS"), 300)?,
                    termination_wait_seconds: env.parse_or(&var("TERMINATION_WAIT_SECONDS"), 0)?,
                    maximum_execution_timeout_seconds: env
                        .parse_optional(&var("DEPLOYMENT_TIMEOUT_SECONDS"))?,
                }),
            };
            let follow_alarm = match (
                env.optional(&var("ALARM_NAME")),
                env.optional(&var("ALARM_METRIC")),
            ) {
                (Some(alarm_name), Some(metric)) => Some(AlarmFollow { alarm_name, metric }),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(ConfigError::Missing {
                        var: var("ALARM_METRIC"),
                        hint: Some("set with the alarm name"),
                    });
                }
                (None, Some(_)) => {
                    return Err(ConfigError::Missing {
                        var: var("ALARM_NAME"),
                        hint: Some("set with the alarm metric"),
                    });
                }
            };
            Ok(StageConfig {
                stage,
                endpoint_name: endpoint,
                instance_type: env
                    .optional(&var("INSTANCE_TYPE"))
                    .unwrap_or_else(|| "ml.m5.large".to_owned()),
                instance_count: count,
                capture: capture.clone(),
                blue_green,
                rollback_alarms: list(env.optional(&var("ROLLBACK_ALARMS"))),
                follow_alarm,
            })
        };
        let mut stages = vec![stage(
            Stage::Staging,
            env.required_with_hint("STAGING_ENDPOINT_NAME", "the staging endpoint")?,
        )?];
        if let Some(prod) = env.optional("PRODUCTION_ENDPOINT_NAME") {
            stages.push(stage(Stage::Production, prod)?);
        }
        Ok(Config {
            group,
            role_arn,
            stages,
            event_bus: env.optional("EVENT_BUS_NAME"),
        })
    }
}

pub struct Deps {
    pub registry: Arc<dyn ModelRegistry>,
    pub hosting: Arc<dyn Hosting>,
    pub alarms: Arc<dyn AlarmThresholds>,
    pub store: Arc<dyn ObjectStore>,
    pub events: Arc<dyn EventPublisher>,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    BadEvent(#[from] EventError),
    #[error("cannot promote {arn}: {reason}")]
    NotPromotable { arn: String, reason: String },
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
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::EndpointBusy { .. } => ErrorClass::Retryable,
            Error::Aws(e) => e.class(),
            Error::Publish(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Error::BadEvent(e) => e.code(),
            Error::NotPromotable { .. } => "NotPromotable",
            Error::EndpointBusy { .. } => "EndpointBusy",
            Error::EndpointFailed { .. } => "EndpointFailed",
            Error::Aws(e) => e.code(),
            Error::Publish(e) => e.code(),
        }
    }
}

driftloop::impl_diagnostic!(Error);

/// What triggered the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    PackageStateChange {
        group: String,
        package_arn: String,
        approval: Option<String>,
    },
    Promotion {
        group: String,
        package_arn: Option<String>,
        stage: Stage,
    },
    /// An endpoint changed state; it names no group (the configured one is meant).
    EndpointStateChange { endpoint: String, status: String },
}

impl Trigger {
    /// The group the event is about; `None` for endpoint events, which concern the configured group.
    pub fn group(&self) -> Option<&str> {
        match self {
            Trigger::PackageStateChange { group, .. } | Trigger::Promotion { group, .. } => {
                Some(group)
            }
            Trigger::EndpointStateChange { .. } => None,
        }
    }
}

/// `IN_SERVICE` (the event's spelling) or `InService` (the API's).
fn in_service(status: &str) -> bool {
    status.replace('_', "").eq_ignore_ascii_case("inservice")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PromotionDetail {
    model_package_group_name: String,
    #[serde(default)]
    model_package_arn: Option<String>,
    #[serde(default)]
    stage: Option<String>,
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
        _ => Err(EventError::UnexpectedShape {
            expected: format!(
                "an EventBridge event {SAGEMAKER_SOURCE:?}/{MODEL_PACKAGE_STATE_CHANGE:?}, {SAGEMAKER_SOURCE:?}/{ENDPOINT_STATE_CHANGE:?} or {SOURCE:?}/{PROMOTION_REQUESTED:?}"
            ),
            got: describe_shape(&event),
        }),
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
    /// created, updated, up_to_date, nothing_to_deploy, busy, failed, error
    pub action: String,
    pub package_arn: Option<String>,
    pub package_version: Option<i64>,
    pub endpoint_config: Option<String>,
    pub reason: Option<String>,
    pub alarm: Option<AlarmUpdate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub group: String,
    pub trigger: Trigger,
    /// Set when the event was for a group this deployment does not manage.
    pub ignored: Option<String>,
    pub promoted: Option<String>,
    pub stages: Vec<StageOutcome>,
}

async fn promote(
    deps: &Deps,
    group: &str,
    arn: Option<&str>,
    stage: Stage,
) -> Result<String, Error> {
    let package: ModelPackage = match arn {
        Some(arn) => deps.registry.describe_package(arn).await?,
        None => latest_approved(deps.registry.as_ref(), group)
            .await?
            .ok_or_else(|| Error::NotPromotable {
                arn: format!("(latest of {group})"),
                reason: "the group has no approved, completed package".into(),
            })?,
    };
    let arn = package.summary.arn.clone();
    let refuse = |reason: String| Error::NotPromotable {
        arn: arn.clone(),
        reason,
    };
    if package.summary.group != group {
        return Err(refuse(format!(
            "it belongs to group {:?}",
            package.summary.group
        )));
    }
    if package.summary.approval != ApprovalStatus::Approved || !package.summary.is_completed() {
        return Err(refuse(format!(
            "it is {} / {}; only approved, completed packages are promoted",
            package.summary.approval, package.summary.status
        )));
    }
    deps.registry
        .put_customer_metadata(&arn, &promotion_key(stage), &Utc::now().to_rfc3339())
        .await?;
    tracing::info!(arn, stage = stage.as_str(), "package promoted");
    Ok(arn)
}

async fn follow_alarm(deps: &Deps, follow: &AlarmFollow, package: &ModelPackage) -> AlarmUpdate {
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
        let body = deps.store.get(&uri).await.map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_slice(&body).map_err(|e| format!("{uri}: {e}"))?;
        let t = threshold_from_constraints(&json, &follow.metric)?;
        update.previous_threshold = deps
            .alarms
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
async fn converge(deps: &Deps, group: &str, stage: &StageConfig) -> (StageOutcome, Option<Error>) {
    let mut outcome = StageOutcome {
        stage: stage.stage,
        endpoint: stage.endpoint_name.clone(),
        action: "error".into(),
        package_arn: None,
        package_version: None,
        endpoint_config: None,
        reason: None,
        alarm: None,
    };
    let desired = match desired_package(deps.registry.as_ref(), group, stage.stage).await {
        Ok(d) => d,
        Err(e) => {
            outcome.reason = Some(e.to_string());
            return (outcome, Some(e.into()));
        }
    };
    outcome.package_arn = desired.as_ref().map(|p| p.summary.arn.clone());
    outcome.package_version = desired.as_ref().and_then(|p| p.summary.version);
    let current = match deps.hosting.describe_endpoint(&stage.endpoint_name).await {
        Ok(c) => c,
        Err(e) => {
            outcome.reason = Some(e.to_string());
            return (outcome, Some(e.into()));
        }
    };
    let the_plan = plan(
        stage,
        &deps.config.role_arn,
        desired.as_ref().map(|p| &p.summary),
        current.as_ref(),
    );
    if let Err(e) = apply(&the_plan, deps.hosting.as_ref(), &stage.endpoint_name).await {
        outcome.reason = Some(e.to_string());
        return (outcome, Some(e.into()));
    }
    let mut error = None;
    match &the_plan {
        Plan::Create { config, .. } | Plan::Update { config, .. } => {
            outcome.action = if matches!(the_plan, Plan::Create { .. }) {
                "created"
            } else {
                "updated"
            }
            .into();
            outcome.endpoint_config = Some(config.name.clone());
            if let (Some(follow), Some(pkg)) = (&stage.follow_alarm, &desired) {
                outcome.alarm = Some(follow_alarm(deps, follow, pkg).await);
            }
        }
        Plan::UpToDate { config_name } => {
            outcome.action = "up_to_date".into();
            outcome.endpoint_config = Some(config_name.clone());
            outcome.reason = Some("the endpoint already serves the desired package".into());
        }
        Plan::NothingToDeploy { reason } => {
            outcome.action = "nothing_to_deploy".into();
            outcome.reason = Some(reason.clone());
        }
        Plan::Busy { status } => {
            outcome.action = "busy".into();
            outcome.reason = Some(format!("endpoint is {status}"));
            error = Some(Error::EndpointBusy {
                endpoint: stage.endpoint_name.clone(),
                status: status.clone(),
            });
        }
        Plan::Failed { status, reason } => {
            outcome.action = "failed".into();
            outcome.reason = Some(format!("endpoint is {status}: {reason}"));
            error = Some(Error::EndpointFailed {
                endpoint: stage.endpoint_name.clone(),
                status: status.clone(),
                reason: reason.clone(),
            });
        }
    }
    (outcome, error)
}

fn outcome_event(
    group: &str,
    trigger: &Trigger,
    o: &StageOutcome,
    bus: Option<&String>,
) -> OutgoingEvent {
    let detail_type = if matches!(o.action.as_str(), "created" | "updated") {
        MODEL_DEPLOYED
    } else {
        DEPLOYMENT_SKIPPED
    };
    let mut detail = serde_json::to_value(o).unwrap_or_else(|_| json!({}));
    detail["modelPackageGroupName"] = json!(group);
    detail["trigger"] = serde_json::to_value(trigger).unwrap_or(Value::Null);
    OutgoingEvent::new(SOURCE, detail_type, detail)
        .with_resources(o.package_arn.iter().cloned())
        .on_bus(bus.cloned())
}

pub async fn handle(event: Value, deps: &Deps) -> Result<Output, Error> {
    let trigger = parse_trigger(event)?;
    let group = deps.config.group.clone();
    let mut output = Output {
        group: group.clone(),
        trigger: trigger.clone(),
        ignored: None,
        promoted: None,
        stages: Vec::new(),
    };
    let ignored = match &trigger {
        Trigger::EndpointStateChange { endpoint, .. }
            if !deps
                .config
                .stages
                .iter()
                .any(|s| &s.endpoint_name == endpoint) =>
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
    };
    if let Some(reason) = ignored {
        tracing::info!(reason, "event ignored");
        output.ignored = Some(reason);
        return Ok(output);
    }
    if let Trigger::Promotion {
        package_arn, stage, ..
    } = &trigger
    {
        output.promoted = Some(promote(deps, &group, package_arn.as_deref(), *stage).await?);
    }
    let mut first_error: Option<Error> = None;
    for stage in &deps.config.stages {
        let (outcome, error) = converge(deps, &group, stage).await;
        tracing::info!(stage = stage.stage.as_str(), endpoint = outcome.endpoint, action = outcome.action, package = ?outcome.package_arn, reason = ?outcome.reason, "stage converged");
        if outcome.action != "error" {
            deps.events
                .publish(&outcome_event(
                    &group,
                    &trigger,
                    &outcome,
                    deps.config.event_bus.as_ref(),
                ))
                .await?;
        }
        // A retryable failure wins: redelivery can fix it, and the other stages are idempotent.
        if let Some(e) = error {
            if first_error.as_ref().is_none_or(|f| {
                f.class() == ErrorClass::Permanent && e.class() == ErrorClass::Retryable
            }) {
                first_error = Some(e);
            }
        }
        output.stages.push(outcome);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(output),
    }
}

#[cfg(test)]
mod tests;
