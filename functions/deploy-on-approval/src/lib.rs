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
//! Many models: with `CATALOGUE_S3_URI`, the catalogue document ([`driftloop::catalogue`]) is
//! read once per invocation and an event of any group in it converges that group's stages with
//! its settings; the environment's model (below) is the single-model special case, served for
//! its own group when the catalogue does not name it. Other groups are ignored with the reason.
//!
//! Alarms and dashboard of the catalogue's models: a deployment of a catalogue model creates or
//! updates its `servedPackage` alarm whole (metric, dimensions, period, threshold from the
//! package; [`driftloop::catalogue::alarms`]); the catalogue object's `Object Created` event and a
//! daily `Scheduled Event` reconcile every model's alarm and the one loop-managed dashboard
//! ([`driftloop::catalogue::reconcile`]). Every deployment (created or updated endpoint) puts a
//! `ModelDeployed` count (dimensions `ModelPackageGroup`, `Stage`) in `METRICS_NAMESPACE`: the
//! dashboard's deploy marks. The catalogue is read under the stack's naming convention
//! (`CATALOGUE_NAME_PREFIX`, `CATALOGUE_ALARM_PREFIX`, `CATALOGUE_DATA_S3_URI`): a name outside it
//! makes the document invalid, naming the model and the field.
//!
//! See [`driftloop::deploy`] for the rules ([`driftloop::deploy::trigger`] for the events,
//! [`driftloop::deploy::promote`] and [`driftloop::deploy::converge`] for what is done), and
//! [`Config`] for the environment.

use std::sync::Arc;

use driftloop::catalogue::Convention;
use driftloop::catalogue::dashboard::{
    DEPLOYED_METRIC, DashboardSettings, GROUP_DIMENSION, STAGE_DIMENSION,
};
use driftloop::catalogue::deploy::{Target, target};
use driftloop::catalogue::reconcile::{
    Dashboards, ReconcileDeps, ReconcileReport, ReconcileSettings, reconcile,
};
use driftloop::catalogue::source::{CatalogueError, CatalogueSource, convention_from_env};
use driftloop::config::{ConfigError, Env, Lookup};
use driftloop::deploy::alarm::AlarmThresholds;
use driftloop::deploy::converge::{ConvergeContext, outcome_event};
use driftloop::deploy::scaling::{AutoScaling, Scaling};
use driftloop::deploy::{
    AlarmFollow, BlueGreen, CaptureSpec, ConvergeError, Hosting, PromoteError, Stage, StageAction,
    StageConfig, StageOutcome, TrafficRouting, Trigger, converge, parse_trigger, promote,
};
use driftloop::error::{AwsError, Classify, ErrorClass};
use driftloop::events::EventError;
use driftloop::publish::{EventPublisher, MetricDatum, MetricPublisher, PublishError};
use driftloop::registry::ModelRegistry;
use driftloop::storage::{ObjectStore, S3Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Configuration from the environment.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `CATALOGUE_S3_URI` | the model catalogue (`s3://bucket/key.json`), read per invocation: its groups are served with their own stages and settings | — |
/// | `MODEL_PACKAGE_GROUP_NAME` | the group this deployment manages from the environment (events of groups in neither it nor the catalogue are ignored) | required without `CATALOGUE_S3_URI` |
/// | `SAGEMAKER_EXECUTION_ROLE_ARN` | role of the models it creates | required |
/// | `STAGING_ENDPOINT_NAME` | staging endpoint | required with `MODEL_PACKAGE_GROUP_NAME` |
/// | `PRODUCTION_ENDPOINT_NAME` | production endpoint; production is off when unset | — |
/// | `{STAGE}_INSTANCE_TYPE`, `{STAGE}_INSTANCE_COUNT` | per stage | `ml.m5.large`, `1` |
/// | `{STAGE}_DEPLOYMENT` | blue/green traffic shifting: `ALL_AT_ONCE`, `CANARY:<percent>`, `LINEAR:<percent>`; plain update when unset | — |
/// | `{STAGE}_DEPLOYMENT_WAIT_SECONDS`, `{STAGE}_TERMINATION_WAIT_SECONDS` | blue/green timings | `300`, `0` |
/// | `{STAGE}_ROLLBACK_ALARMS` | comma-separated alarms (at most 10) that roll a deployment back; a failed or rolled-back update is recorded on the package (`driftloop:deploy:<stage>`), announced once and not retried until another package is desired or a promotion request asks again | — |
/// | `{STAGE}_ALARM_NAME`, `{STAGE}_ALARM_METRIC` | the alarm whose threshold follows the deployed package's model-quality constraint on the metric | — |
/// | `{STAGE}_AUTOSCALING_MAX_CAPACITY` | target tracking on `SageMakerVariantInvocationsPerInstance` for the served variant, registered once the endpoint serves a package; off when unset or 0 | — |
/// | `{STAGE}_AUTOSCALING_MIN_CAPACITY`, `{STAGE}_AUTOSCALING_TARGET_INVOCATIONS` | minimum instances (≤ max); invocations per instance per minute | `1`, `100` |
/// | `{STAGE}_AUTOSCALING_SCALE_IN_COOLDOWN_SECONDS`, `{STAGE}_AUTOSCALING_SCALE_OUT_COOLDOWN_SECONDS` | the policy's cooldowns | `300`, `60` |
/// | `DATA_CAPTURE_S3_URI` | data capture destination; capture is off when unset | — |
/// | `DATA_CAPTURE_SAMPLING_PERCENTAGE` | 1–100 | `100` |
/// | `DATA_CAPTURE_CSV_CONTENT_TYPES`, `DATA_CAPTURE_JSON_CONTENT_TYPES` | comma-separated | `text/csv`, `application/json` |
/// | `EVENT_BUS_NAME` | bus for `Model Deployed` / `Model Deployment Skipped` / `Deployment Failed` / `Deployment Rolled Back` | the default bus |
/// | `METRICS_NAMESPACE` | namespace of the `ModelDeployed` count (the dashboard's deploy marks) | `driftloop` |
/// | `CATALOGUE_NAME_PREFIX`, `CATALOGUE_ALARM_PREFIX`, `CATALOGUE_DATA_S3_URI` | the naming convention every catalogue name must follow ([`driftloop::catalogue::convention`]) | not enforced |
/// | `DASHBOARD_NAME`, `ALARM_ARN_PREFIX` | the loop-managed dashboard of every catalogue model, and `arn:...:alarm:` of its alarm annotations; no dashboard unless both are set | — |
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The environment's model; empty (with no stages) when only the catalogue serves models.
    pub group: String,
    pub role_arn: String,
    pub stages: Vec<StageConfig>,
    pub event_bus: Option<String>,
    /// `CATALOGUE_S3_URI`.
    pub catalogue: Option<S3Uri>,
    /// The naming convention the catalogue is read under.
    pub convention: Convention,
    /// `METRICS_NAMESPACE`: the deploy marks.
    pub metrics_namespace: String,
    /// The loop-managed dashboard.
    pub dashboard: Option<DashboardSettings>,
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
        let catalogue = env.validated("CATALOGUE_S3_URI", S3Uri::parse)?;
        let group = match (env.optional("MODEL_PACKAGE_GROUP_NAME"), &catalogue) {
            (Some(group), _) => group,
            (None, Some(_)) => String::new(),
            (None, None) => env.required_with_hint(
                "MODEL_PACKAGE_GROUP_NAME",
                "the Model Registry group to deploy, or CATALOGUE_S3_URI",
            )?,
        };
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
                (Some(alarm_name), Some(metric)) => Some(AlarmFollow {
                    alarm_name,
                    metric,
                    managed: None,
                }),
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
            let autoscaling = match env.parse_optional::<u32>(&var("AUTOSCALING_MAX_CAPACITY"))? {
                None | Some(0) => None,
                Some(max) => {
                    let min = env.parse_checked(
                        &var("AUTOSCALING_MIN_CAPACITY"),
                        1u32,
                        |v| *v >= 1,
                        "must be at least 1",
                    )?;
                    if min > max {
                        return Err(ConfigError::Invalid {
                            var: var("AUTOSCALING_MIN_CAPACITY"),
                            value: min.to_string(),
                            reason: format!(
                                "must not exceed {} ({max})",
                                var("AUTOSCALING_MAX_CAPACITY")
                            ),
                        });
                    }
                    Some(AutoScaling {
                        min_capacity: min,
                        max_capacity: max,
                        target_invocations: env.parse_checked(
                            &var("AUTOSCALING_TARGET_INVOCATIONS"),
                            100u32,
                            |v| *v >= 1,
                            "must be at least 1 (invocations per instance per minute)",
                        )?,
                        scale_in_cooldown_seconds: env
                            .parse_or(&var("AUTOSCALING_SCALE_IN_COOLDOWN_SECONDS"), 300)?,
                        scale_out_cooldown_seconds: env
                            .parse_or(&var("AUTOSCALING_SCALE_OUT_COOLDOWN_SECONDS"), 60)?,
                    })
                }
            };
            let rollback_alarms = list(env.optional(&var("ROLLBACK_ALARMS")));
            if rollback_alarms.len() > 10 || rollback_alarms.iter().any(|a| a.len() > 255) {
                return Err(ConfigError::Invalid {
                    var: var("ROLLBACK_ALARMS"),
                    value: rollback_alarms.join(","),
                    reason: "at most 10 alarm names of at most 255 characters (SageMaker's AutoRollbackConfiguration)".into(),
                });
            }
            Ok(StageConfig {
                stage,
                endpoint_name: endpoint,
                instance_type: env
                    .optional(&var("INSTANCE_TYPE"))
                    .unwrap_or_else(|| "ml.m5.large".to_owned()),
                instance_count: count,
                capture: capture.clone(),
                blue_green,
                rollback_alarms,
                follow_alarm,
                autoscaling,
            })
        };
        let mut stages = Vec::new();
        if !group.is_empty() {
            stages.push(stage(
                Stage::Staging,
                env.required_with_hint("STAGING_ENDPOINT_NAME", "the staging endpoint")?,
            )?);
            if let Some(prod) = env.optional("PRODUCTION_ENDPOINT_NAME") {
                stages.push(stage(Stage::Production, prod)?);
            }
        }
        let metrics_namespace = env
            .optional("METRICS_NAMESPACE")
            .unwrap_or_else(|| "driftloop".to_owned());
        let dashboard = match (
            env.optional("DASHBOARD_NAME"),
            env.optional("ALARM_ARN_PREFIX"),
        ) {
            (Some(name), Some(alarm_arn_prefix)) => {
                if !alarm_arn_prefix.starts_with("arn:") || !alarm_arn_prefix.ends_with(":alarm:") {
                    return Err(ConfigError::Invalid {
                        var: "ALARM_ARN_PREFIX".into(),
                        value: alarm_arn_prefix,
                        reason: "expected arn:<partition>:cloudwatch:<region>:<account>:alarm:"
                            .into(),
                    });
                }
                let region = alarm_arn_prefix
                    .split(':')
                    .nth(3)
                    .unwrap_or_default()
                    .to_owned();
                Some(DashboardSettings {
                    name,
                    region,
                    alarm_arn_prefix,
                    loop_namespace: metrics_namespace.clone(),
                })
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: "ALARM_ARN_PREFIX".into(),
                    hint: Some("set with DASHBOARD_NAME"),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    var: "DASHBOARD_NAME".into(),
                    hint: Some("set with ALARM_ARN_PREFIX"),
                });
            }
        };
        Ok(Config {
            group,
            role_arn,
            stages,
            event_bus: env.optional("EVENT_BUS_NAME"),
            catalogue,
            convention: convention_from_env(&env)?,
            metrics_namespace,
            dashboard,
        })
    }

    /// The environment's model, if it configures one.
    pub fn single(&self) -> Option<Target> {
        (!self.group.is_empty()).then(|| Target {
            group: self.group.clone(),
            role_arn: self.role_arn.clone(),
            stages: self.stages.clone(),
            source: "environment".to_owned(),
        })
    }
}

pub struct Deps {
    pub registry: Arc<dyn ModelRegistry>,
    pub hosting: Arc<dyn Hosting>,
    pub alarms: Arc<dyn AlarmThresholds>,
    pub scaling: Arc<dyn Scaling>,
    pub store: Arc<dyn ObjectStore>,
    pub events: Arc<dyn EventPublisher>,
    /// The deploy marks (`ModelDeployed`).
    pub metrics: Arc<dyn MetricPublisher>,
    /// The loop-managed dashboard.
    pub dashboards: Arc<dyn Dashboards>,
    /// The catalogue (`config.catalogue`'s object); `None`: the environment's model only.
    pub catalogue: Option<Arc<dyn CatalogueSource>>,
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
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

impl From<PromoteError> for Error {
    fn from(e: PromoteError) -> Self {
        match e {
            PromoteError::NotPromotable { arn, reason } => Error::NotPromotable { arn, reason },
            PromoteError::Aws(e) => Error::Aws(e),
        }
    }
}

impl From<ConvergeError> for Error {
    fn from(e: ConvergeError) -> Self {
        match e {
            ConvergeError::EndpointBusy { endpoint, status } => {
                Error::EndpointBusy { endpoint, status }
            }
            ConvergeError::EndpointFailed {
                endpoint,
                status,
                reason,
            } => Error::EndpointFailed {
                endpoint,
                status,
                reason,
            },
            ConvergeError::Aws(e) => Error::Aws(e),
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::EndpointBusy { .. } => ErrorClass::Retryable,
            Error::Aws(e) => e.class(),
            Error::Publish(e) => e.class(),
            Error::Catalogue(e) => e.class(),
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
            Error::Catalogue(e) => e.code(),
        }
    }
}

driftloop::impl_diagnostic!(Error);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub group: String,
    pub trigger: Trigger,
    /// Set when the event was for a group this deployment does not manage.
    pub ignored: Option<String>,
    pub promoted: Option<String>,
    pub stages: Vec<StageOutcome>,
    /// Where the group's settings came from: `catalogue s3://...@"etag"` or `environment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// A reconcile's alarms, orphans and dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ReconcileReport>,
    /// Deploy marks that could not be put (`<errorType>: <message>`); never fatal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_errors: Vec<String>,
}

pub async fn handle(event: Value, deps: &Deps) -> Result<Output, Error> {
    // Who asked for a promotion, as the control gate verified it (main.rs; none without the gate).
    let requester = driftloop::control::verified_requester(&event);
    let trigger = parse_trigger(event)?;
    // The catalogue, read once for this invocation (a new upload counts from the next one).
    let loaded = match &deps.catalogue {
        Some(source) => Some(
            source
                .load()
                .await
                .inspect_err(|e| tracing::error!(error = %e, "the catalogue cannot be read"))?,
        ),
        None => None,
    };
    let single = deps.config.single();
    let mut output = Output {
        // Until a model is chosen: the environment's group (as before the catalogue), else the
        // event's.
        group: match (&single, trigger.group()) {
            (Some(s), _) => s.group.clone(),
            (None, g) => g.unwrap_or_default().to_owned(),
        },
        trigger: trigger.clone(),
        ignored: None,
        promoted: None,
        stages: Vec::new(),
        settings: None,
        reconcile: None,
        metric_errors: Vec::new(),
    };
    if let Trigger::Reconcile { cause, object } = &trigger {
        let Some(loaded) = &loaded else {
            let reason = "no catalogue (CATALOGUE_S3_URI): nothing to reconcile".to_owned();
            tracing::info!(reason, "event ignored");
            output.ignored = Some(reason);
            return Ok(output);
        };
        if let Some(o) = object
            && *o != loaded.location
        {
            // The rule matches the catalogue's bucket and first key folder: another object there.
            let reason = format!(
                "{o} is not the catalogue {}: nothing to reconcile",
                loaded.location
            );
            tracing::info!(reason, "event ignored");
            output.ignored = Some(reason);
            return Ok(output);
        }
        tracing::info!(cause, catalogue = %loaded.describe(), "reconciling alarms and dashboard");
        let (report, errors) = reconcile(
            loaded,
            &ReconcileDeps {
                registry: deps.registry.as_ref(),
                hosting: deps.hosting.as_ref(),
                store: deps.store.as_ref(),
                alarms: deps.alarms.as_ref(),
                dashboards: deps.dashboards.as_ref(),
            },
            &ReconcileSettings {
                alarm_prefix: deps.config.convention.alarm_prefix.clone(),
                dashboard: deps.config.dashboard.clone(),
            },
        )
        .await;
        tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "reconciled");
        output.settings = Some(format!("catalogue {}", loaded.describe()));
        output.reconcile = Some(report);
        return match driftloop::error::worst(errors.into_iter().map(Error::Aws).collect::<Vec<_>>())
        {
            Some(e) => Err(e),
            None => Ok(output),
        };
    }
    let target = match target(
        &trigger,
        loaded.as_ref(),
        single.as_ref(),
        &deps.config.role_arn,
    ) {
        Ok(t) => t,
        Err(reason) => {
            tracing::info!(reason, "event ignored");
            output.ignored = Some(reason);
            return Ok(output);
        }
    };
    tracing::info!(group = target.group, settings = target.source, "serving");
    let group = target.group.clone();
    output.group = group.clone();
    output.settings = Some(target.source.clone());
    if let Trigger::Promotion {
        package_arn, stage, ..
    } = &trigger
    {
        let arn = promote(
            deps.registry.as_ref(),
            &group,
            package_arn.as_deref(),
            *stage,
        )
        .await?;
        if let Some(requester) = &requester {
            driftloop::deploy::promote::record_requester(
                deps.registry.as_ref(),
                &arn,
                *stage,
                requester,
            )
            .await?;
        }
        output.promoted = Some(arn);
    }
    let mut errors = Vec::new();
    for stage in &target.stages {
        let ctx = ConvergeContext::for_stage(&trigger, stage.stage);
        let (outcome, error) = converge(
            deps.registry.as_ref(),
            deps.hosting.as_ref(),
            deps.store.as_ref(),
            deps.alarms.as_ref(),
            deps.scaling.as_ref(),
            &target.role_arn,
            &group,
            stage,
            &ctx,
        )
        .await;
        tracing::info!(stage = stage.stage.as_str(), endpoint = outcome.endpoint, action = outcome.action.as_str(), package = ?outcome.package_arn, reason = ?outcome.reason, "stage converged");
        if outcome.action != StageAction::Error {
            // A failed publish is reported with the invocation's result, after every stage ran:
            // it never keeps another stage from converging.
            let event = outcome_event(&group, &trigger, &outcome, deps.config.event_bus.as_deref());
            if let Err(e) = deps.events.publish(&event).await {
                tracing::warn!(stage = stage.stage.as_str(), error = %e, detail_type = event.detail_type, "outcome event not published");
                errors.push(Error::Publish(e));
            }
        }
        if outcome.action.deployed() {
            let mark = MetricDatum::count(DEPLOYED_METRIC, 1.0)
                .dimension(GROUP_DIMENSION, &group)
                .dimension(STAGE_DIMENSION, stage.stage.as_str());
            if let Err(e) = deps
                .metrics
                .put_metrics(&deps.config.metrics_namespace, vec![mark])
                .await
            {
                tracing::warn!(error = %e, "the deploy mark (ModelDeployed) was not put");
                output
                    .metric_errors
                    .push(format!("{}: {e}", e.error_type()));
            }
        }
        // A retryable failure wins: redelivery can fix it, and the other stages are idempotent.
        errors.extend(error.map(Error::from));
        output.stages.push(outcome);
    }
    match driftloop::error::worst(errors) {
        Some(e) => Err(e),
        None => Ok(output),
    }
}

#[cfg(test)]
mod tests;
