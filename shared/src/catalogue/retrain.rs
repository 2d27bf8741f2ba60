//! retrain-on-alarm over the catalogue: the model a trigger is for, and the settings (pipeline,
//! parameters, cooldown) its retraining starts with.
//!
//! A trigger is the catalogue's when it names one of a model's alarms or schedule rules, or (a
//! request) a model's pipeline. Anything else keeps the environment's settings
//! (`PIPELINE_NAME`, `ALARM_PIPELINES`, ...): the single-model special case.

use chrono::Duration;

use super::model::Model;
use crate::retrain::settings::{ContextField, ParameterSettings, PipelineRoutes, parse_duration};
use crate::retrain::{RetrainSettings, Trigger};

/// The catalogue's model for a trigger, if any.
pub fn model_for<'a>(trigger: &Trigger, catalogue: &'a super::Catalogue) -> Option<&'a Model> {
    match trigger.request.as_ref().and_then(|r| r.pipeline.as_deref()) {
        Some(pipeline) => catalogue.model_of_pipeline(pipeline),
        None => catalogue.model_of_trigger(&trigger.name),
    }
}

/// A model's retraining settings; the policy's other rules are the function's (`env`). An alarm
/// of the model that does not retrain (`"retrain": false`) routes nowhere (`NoPipeline`).
pub fn settings(m: &Model, trigger: &Trigger, env: &RetrainSettings) -> RetrainSettings {
    let Some(r) = &m.retraining else {
        return RetrainSettings {
            routes: PipelineRoutes::default(),
            parameters: ParameterSettings::default(),
            policy: env.policy,
        };
    };
    let retrains = trigger.request.is_some()
        || r.schedule_rules.iter().any(|s| *s == trigger.name)
        || m.alarms.iter().any(|a| a.name == trigger.name && a.retrain);
    let routes = PipelineRoutes {
        default: retrains.then(|| r.pipeline.clone()),
        ..Default::default()
    };
    let fixed = r
        .parameters
        .iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect();
    let context = r
        .context_parameters
        .iter()
        .filter_map(|(fact, name)| ContextField::parse(fact.as_str()).map(|f| (f, name.clone())))
        .collect();
    let mut policy = env.policy;
    if let Some(c) = r.cooldown.as_deref().and_then(|c| parse_duration(c).ok()) {
        policy.cooldown = c.max(Duration::zero());
    }
    RetrainSettings {
        routes,
        parameters: ParameterSettings { fixed, context },
        policy,
    }
}
