//! deploy-on-approval over the catalogue: which group, role and stages an event is for.
//!
//! A package or promotion event names its group: a group in the catalogue is served with that
//! entry's stages and settings; otherwise the environment's single model (`MODEL_PACKAGE_GROUP_NAME`
//! and the `{STAGE}_*` variables) when it is that group; otherwise the event is ignored with the
//! reason. An endpoint event is for the model that has a stage on the endpoint. The catalogue wins
//! over the environment for a group named in both.

use super::model::{Capture, Deployment, Model, Routing, StageName, StageSpec, ThresholdSource};
use super::source::Loaded;
use crate::deploy::scaling::AutoScaling;
use crate::deploy::trigger::{Trigger, ignore_reason};
use crate::deploy::{AlarmFollow, BlueGreen, CaptureSpec, Stage, StageConfig, TrafficRouting};

/// What one model's deployment is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub group: String,
    pub role_arn: String,
    pub stages: Vec<StageConfig>,
    /// `catalogue s3://...@"etag"` or `environment`.
    pub source: String,
}

fn stage(s: StageName) -> Stage {
    match s {
        StageName::Staging => Stage::Staging,
        StageName::Production => Stage::Production,
    }
}

fn capture(c: &Capture) -> CaptureSpec {
    CaptureSpec {
        destination_s3_uri: c.destination_s3_uri.clone(),
        sampling_percentage: c.sampling_percentage,
        csv_content_types: c.csv_content_types.clone(),
        json_content_types: c.json_content_types.clone(),
    }
}

fn blue_green(d: &Deployment) -> BlueGreen {
    let percent = d.percent.unwrap_or(100);
    BlueGreen {
        routing: match d.routing {
            Routing::AllAtOnce => TrafficRouting::AllAtOnce,
            Routing::Canary => TrafficRouting::Canary { percent },
            Routing::Linear => TrafficRouting::Linear { percent },
        },
        wait_interval_seconds: d.wait_seconds,
        termination_wait_seconds: d.termination_wait_seconds,
        maximum_execution_timeout_seconds: d.timeout_seconds,
    }
}

fn stage_config(m: &Model, name: StageName, s: &StageSpec) -> StageConfig {
    StageConfig {
        stage: stage(name),
        endpoint_name: s.endpoint_name.clone(),
        instance_type: s.instance_type.clone(),
        instance_count: s.instance_count,
        capture: m.capture.as_ref().map(capture),
        blue_green: s.deployment.as_ref().map(blue_green),
        rollback_alarms: s.rollback_alarms.clone(),
        follow_alarm: m
            .alarms
            .iter()
            .find(|a| a.stage == name && a.threshold == ThresholdSource::ServedPackage)
            .map(|a| AlarmFollow {
                alarm_name: a.name.clone(),
                metric: a.metric.clone(),
                managed: super::alarms::template(m, a),
            }),
        autoscaling: s.autoscaling.as_ref().map(|a| AutoScaling {
            min_capacity: a.min_capacity,
            max_capacity: a.max_capacity,
            target_invocations: a.target_invocations,
            scale_in_cooldown_seconds: a.scale_in_cooldown_seconds,
            scale_out_cooldown_seconds: a.scale_out_cooldown_seconds,
        }),
    }
}

/// A catalogue entry as the stage configs deploy-on-approval's environment would give
/// (staging first).
pub fn stage_configs(m: &Model) -> Vec<StageConfig> {
    m.stages
        .iter()
        .map(|(name, s)| stage_config(m, name, s))
        .collect()
}

/// The deployment an event is for, or why it is ignored. `single` is the environment's model.
pub fn target(
    trigger: &Trigger,
    catalogue: Option<&Loaded>,
    single: Option<&Target>,
    default_role_arn: &str,
) -> Result<Target, String> {
    let from_catalogue = |m: &Model, loaded: &Loaded| Target {
        group: m.group.clone(),
        role_arn: m
            .execution_role_arn
            .clone()
            .unwrap_or_else(|| default_role_arn.to_owned()),
        stages: stage_configs(m),
        source: format!("catalogue {}", loaded.describe()),
    };
    let found = match (trigger, catalogue) {
        (Trigger::EndpointStateChange { endpoint, .. }, Some(l)) => l
            .catalogue
            .model_of_endpoint(endpoint)
            .map(|m| from_catalogue(m, l)),
        (t, Some(l)) => t
            .group()
            .and_then(|g| l.catalogue.model(g))
            .map(|m| from_catalogue(m, l)),
        (_, None) => None,
    };
    let chosen = match (found, single) {
        (Some(t), _) => t,
        (None, Some(s)) => s.clone(),
        (None, None) => {
            let version = catalogue.map(Loaded::describe).unwrap_or_default();
            return Err(match trigger {
                Trigger::EndpointStateChange { endpoint, .. } => format!(
                    "endpoint {endpoint:?} is not a stage of any model in the catalogue {version}"
                ),
                t => format!(
                    "group {:?} is not in the catalogue {version}",
                    t.group().unwrap_or_default()
                ),
            });
        }
    };
    if let Some(mut reason) = ignore_reason(trigger, &chosen.group, &chosen.stages) {
        if let Some(l) = catalogue
            && chosen.source == "environment"
        {
            reason.push_str(&format!(", and not in the catalogue {}", l.describe()));
        }
        return Err(reason);
    }
    Ok(chosen)
}
