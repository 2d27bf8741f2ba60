//! custom-metrics over the catalogue: a model's monitored stage as the monitoring [`Settings`]
//! and [`WindowRule`] (the types the function's environment gives its one endpoint), and which
//! model a label upload is for.
//!
//! A target's settings come from the entry: the stage's endpoint, the model's capture
//! (`capture.destinationS3Uri`), problem type and attributes (`problem.*`, with the defaults of
//! the environment variables they mirror: threshold 0.5, labels `1`/`0`, quantiles
//! 0.1/0.5/0.9, seasonality 1), `monitoring.*` (ground truth, window, offset, delay, data quality,
//! schedule name, report folder) and `baselines.policy` (`servedPackage`: the group's baselines;
//! `none`: no group, so no baselines). The function's environment supplies what is the
//! deployment's rather than the model's: `REPORT_S3_URI` (unless `monitoring.reportS3Uri`),
//! `VARIANT_NAME`, `METRICS_NAMESPACE`, `METRICS_DIMENSIONS`, `EVENT_BUS_NAME`. Model-specific
//! variables of the environment (`PROBLEM_TYPE`, `PREDICTION_BASELINE_S3_URI`, `FEATURE_NAMES`,
//! ...) describe the environment's own model and are not inherited. Monitoring is real-time
//! (the catalogue's stages are endpoints).
//!
//! An entry the monitoring cannot run gives a [`FieldError`] naming the model and the field
//! (`models[2] (group "c").monitoring.windowOffsetMinutes: ...`); [`super::validate`] has
//! already refused most such entries when the document was read.

use super::model::{BaselinePolicy, DataQuality, Model, StageName};
use super::source::Loaded;
use super::validate::{FieldError, label};
use crate::monitoring::fanout::{MonitorTarget, TargetId};
use crate::monitoring::{CaptureMode, Setting, Settings, WindowRule};
use crate::storage::S3Uri;

/// The longest window offset or label delay (31 days), as `WINDOW_OFFSET_MINUTES` allows.
pub const MAX_OFFSET_MINUTES: u32 = 31 * 1440;

/// The catalogue field (or environment variable) a setting of a target comes from.
fn field_of(setting: Setting, stage: StageName) -> String {
    match setting {
        Setting::EndpointName => format!("stages.{}.endpointName", stage.as_str()),
        Setting::CaptureS3Uri => "capture.destinationS3Uri".into(),
        Setting::GroundTruthS3Uri => "monitoring.groundTruthS3Uri".into(),
        Setting::ReportS3Uri => "monitoring.reportS3Uri".into(),
        Setting::ProblemType => "problem.type".into(),
        Setting::ProbabilityThreshold => "problem.probabilityThreshold".into(),
        Setting::MonitoringScheduleName => "monitoring.scheduleName".into(),
        Setting::FeatureNames => "problem.featureNames".into(),
        // The deployment's own: the function's environment.
        other => format!("(function environment {})", other.env_var()),
    }
}

/// The settings and window rule of `m`'s `stage` (the entry at `index` of the document); `env`
/// is the function's environment settings, which supply the deployment's defaults.
pub fn stage_settings(
    index: usize,
    m: &Model,
    stage: StageName,
    env: &Settings,
) -> Result<(Settings, WindowRule), FieldError> {
    let err = |path: &str, message: String| FieldError {
        model: label(index, Some(&m.group)),
        path: path.to_owned(),
        message,
    };
    let Some(mon) = &m.monitoring else {
        return Err(err("monitoring", "the model is not monitored".into()));
    };
    let Some(spec) = m.stages.get(stage) else {
        return Err(err(
            "monitoring.stages",
            format!("{:?} is not a stage of this model", stage.as_str()),
        ));
    };
    let Some(capture) = &m.capture else {
        return Err(err(
            "monitoring",
            "real-time monitoring reads the endpoints' data capture: set `capture`".into(),
        ));
    };
    let uri = |path: &str, v: &str| S3Uri::parse(v).map_err(|r| err(path, r));
    let capture = uri("capture.destinationS3Uri", &capture.destination_s3_uri)?;
    let ground_truth = uri("monitoring.groundTruthS3Uri", &mon.ground_truth_s3_uri)?;
    let report = match &mon.report_s3_uri {
        Some(r) => uri("monitoring.reportS3Uri", r)?,
        None => env.report.clone(),
    };
    let minutes = WindowRule::validate_minutes(mon.window_minutes)
        .map_err(|r| err("monitoring.windowMinutes", r))?;
    let offset = mon.window_offset_minutes;
    if offset > MAX_OFFSET_MINUTES {
        return Err(err(
            "monitoring.windowOffsetMinutes",
            format!("{offset}: at most {MAX_OFFSET_MINUTES} (31 days)"),
        ));
    }
    let delay = mon.ground_truth_delay_minutes.unwrap_or(offset);
    if delay > MAX_OFFSET_MINUTES {
        return Err(err(
            "monitoring.groundTruthDelayMinutes",
            format!("{delay}: at most {MAX_OFFSET_MINUTES} (31 days)"),
        ));
    }
    let p = &m.problem;
    let settings = Settings {
        capture_mode: CaptureMode::Realtime,
        endpoint_name: Some(spec.endpoint_name.clone()),
        variant_name: env.variant_name.clone(),
        capture,
        ground_truth: Some(ground_truth),
        report,
        batch_format: env.batch_format,
        problem_type: Some(p.problem_type),
        inference_attribute: p.inference_attribute.clone(),
        probability_attribute: p.probability_attribute.clone(),
        probability_threshold: p.probability_threshold.unwrap_or(0.5),
        ground_truth_attribute: p.ground_truth_attribute.clone(),
        positive_label: p.positive_label.clone().unwrap_or_else(|| "1".into()),
        negative_label: p.negative_label.clone().unwrap_or_else(|| "0".into()),
        forecast_quantiles: p
            .forecast_quantiles
            .clone()
            .unwrap_or_else(|| vec![0.1, 0.5, 0.9]),
        forecast_seasonality: p.forecast_seasonality.unwrap_or(1) as usize,
        data_quality: match mon.data_quality {
            DataQuality::Auto => None,
            DataQuality::On => Some(true),
            DataQuality::Off => Some(false),
        },
        model_package_group: match m.baselines.policy {
            BaselinePolicy::ServedPackage => Some(m.group.clone()),
            BaselinePolicy::None => None,
        },
        metrics_namespace: env.metrics_namespace.clone(),
        metrics_dimensions: env.metrics_dimensions.clone(),
        schedule_name: mon.schedule_name.clone(),
        event_bus: env.event_bus.clone(),
        feature_names: p.feature_names.clone(),
        prediction_baseline: None,
        prediction_feature: None,
    };
    let settings = settings
        .check()
        .map_err(|e| err(&field_of(e.setting, stage), e.reason))?;
    Ok((
        settings,
        WindowRule {
            minutes,
            offset_minutes: offset,
            ground_truth_delay_minutes: delay,
        },
    ))
}

/// Who the target of `m`'s `stage` is.
pub fn target_id(m: &Model, stage: StageName, loaded: &Loaded) -> TargetId {
    TargetId {
        endpoint_name: m
            .stages
            .get(stage)
            .map(|s| s.endpoint_name.clone())
            .unwrap_or_default(),
        group: Some(m.group.clone()),
        stage: Some(stage.as_str().to_owned()),
        source: format!("catalogue {}", loaded.describe()),
    }
}

/// Every monitored endpoint of `models` (the indexes of the document's entries), each as its
/// target or the error that keeps it from running, in the document's order (each model's
/// `monitoring.stages` in their order).
pub fn targets<'a>(
    loaded: &Loaded,
    models: impl IntoIterator<Item = (usize, &'a Model)>,
    env: &Settings,
) -> Vec<Result<MonitorTarget, (TargetId, FieldError)>> {
    let mut out = Vec::new();
    for (index, m) in models {
        let Some(mon) = &m.monitoring else { continue };
        for stage in &mon.stages {
            let id = target_id(m, *stage, loaded);
            out.push(match stage_settings(index, m, *stage, env) {
                Ok((settings, window)) => Ok(MonitorTarget {
                    id,
                    settings,
                    window,
                }),
                Err(e) => Err((id, e)),
            });
        }
    }
    out
}

/// Every monitored endpoint of the catalogue ([`targets`] of all its models).
pub fn all_targets(
    loaded: &Loaded,
    env: &Settings,
) -> Vec<Result<MonitorTarget, (TargetId, FieldError)>> {
    targets(loaded, loaded.catalogue.models.iter().enumerate(), env)
}

/// The monitored model whose `monitoring.groundTruthS3Uri` is the longest folder prefix of
/// `object` (a label upload), with its index; None when no model's ground truth holds it.
/// Folders compare whole (`s3://b/gt/a` holds `gt/a/2024/...`, not `gt/ab/...`), so a model
/// whose labels live below another's prefix gets its own uploads.
pub fn model_of_upload<'a>(loaded: &'a Loaded, object: &S3Uri) -> Option<(usize, &'a Model)> {
    loaded
        .catalogue
        .models
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let gt = S3Uri::parse(&m.monitoring.as_ref()?.ground_truth_s3_uri).ok()?;
            crate::monitoring::layout::is_under(&gt, object)
                .then(|| (gt.key.trim_end_matches('/').len(), i, m))
        })
        .max_by_key(|(len, i, _)| (*len, std::cmp::Reverse(*i)))
        .map(|(_, i, m)| (i, m))
}

/// The monitored model that has `endpoint` as one of its monitored stages, with the stage.
pub fn monitored_stage<'a>(
    loaded: &'a Loaded,
    endpoint: &str,
) -> Option<(usize, &'a Model, StageName)> {
    loaded
        .catalogue
        .models
        .iter()
        .enumerate()
        .find_map(|(i, m)| {
            let mon = m.monitoring.as_ref()?;
            mon.stages
                .iter()
                .find(|s| {
                    m.stages
                        .get(**s)
                        .is_some_and(|sp| sp.endpoint_name == endpoint)
                })
                .map(|s| (i, m, *s))
        })
}
