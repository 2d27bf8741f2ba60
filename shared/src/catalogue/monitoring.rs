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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::catalogue::parse;
    use crate::metrics::{CaptureFormat, ProblemType};

    fn env() -> Settings {
        Settings {
            capture_mode: CaptureMode::Realtime,
            endpoint_name: Some("env-endpoint".into()),
            variant_name: "Blue".into(),
            capture: S3Uri::parse("s3://env-bucket/capture").unwrap(),
            ground_truth: Some(S3Uri::parse("s3://env-bucket/gt").unwrap()),
            report: S3Uri::parse("s3://env-bucket/reports").unwrap(),
            batch_format: CaptureFormat::BatchCsv,
            problem_type: Some(ProblemType::Regression),
            inference_attribute: Some("env.prediction".into()),
            probability_attribute: None,
            probability_threshold: 0.9,
            ground_truth_attribute: None,
            positive_label: "yes".into(),
            negative_label: "no".into(),
            forecast_quantiles: vec![0.5],
            forecast_seasonality: 7,
            data_quality: Some(false),
            model_package_group: Some("env-group".into()),
            metrics_namespace: Some("Custom/Models".into()),
            metrics_dimensions: vec![("Team".into(), "ml".into())],
            schedule_name: "env-schedule".into(),
            event_bus: Some("loop-bus".into()),
            feature_names: Some(vec!["x".into()]),
            prediction_baseline: Some(S3Uri::parse("s3://env-bucket/p.json").unwrap()),
            prediction_feature: Some("p".into()),
        }
    }

    fn entry(group: &str, labels: &str) -> Value {
        json!({
            "group": group,
            "problem": {"type": "BinaryClassification"},
            "capture": {"destinationS3Uri": "s3://data/capture"},
            "stages": {"staging": {"endpointName": format!("{group}-staging")},
                       "production": {"endpointName": format!("{group}-prod")}},
            "monitoring": {"stages": ["production"], "groundTruthS3Uri": format!("s3://data/{labels}")}
        })
    }

    fn loaded(models: Vec<Value>) -> Loaded {
        let doc = serde_json::to_vec(&json!({"version": 1, "models": models})).unwrap();
        Loaded {
            catalogue: parse(&doc).unwrap(),
            location: "s3://cfg/catalogue.json".into(),
            version: "\"e1\"".into(),
        }
    }

    /// A model read without the document's validation (what [`stage_settings`] must still
    /// refuse on its own).
    fn model(v: Value) -> Model {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_entry_gives_the_models_settings_and_the_environment_the_deployments() {
        let mut v = entry("churn", "labels/churn");
        v["problem"] = json!({"type": "BinaryClassification", "probabilityAttribute": "score",
            "probabilityThreshold": 0.7, "positiveLabel": "churned", "featureNames": ["prediction", "age"]});
        v["monitoring"] = json!({"stages": ["staging", "production"], "groundTruthS3Uri": "s3://data/labels/churn",
            "windowMinutes": 360, "windowOffsetMinutes": 120, "dataQuality": "on", "scheduleName": "churn-quality"});
        let m = model(v);
        let (s, rule) = stage_settings(0, &m, StageName::Staging, &env()).unwrap();
        assert_eq!(s.endpoint_name.as_deref(), Some("churn-staging"));
        assert_eq!(s.capture.to_string(), "s3://data/capture");
        assert_eq!(
            s.ground_truth.unwrap().to_string(),
            "s3://data/labels/churn"
        );
        assert_eq!(s.problem_type, Some(ProblemType::BinaryClassification));
        assert_eq!(s.probability_attribute.as_deref(), Some("score"));
        assert_eq!(s.probability_threshold, 0.7);
        assert_eq!(
            (s.positive_label.as_str(), s.negative_label.as_str()),
            ("churned", "0")
        );
        assert_eq!(
            s.inference_attribute, None,
            "the environment's model's attribute is not inherited"
        );
        assert_eq!(s.feature_names.unwrap(), ["prediction", "age"]);
        assert_eq!(s.data_quality, Some(true));
        assert_eq!(s.schedule_name, "churn-quality");
        assert_eq!(s.model_package_group.as_deref(), Some("churn"));
        assert_eq!((s.prediction_baseline, s.prediction_feature), (None, None));
        assert_eq!(s.forecast_seasonality, 1);
        // The deployment's: report folder, variant, namespace, dimensions, bus.
        assert_eq!(s.report.to_string(), "s3://env-bucket/reports");
        assert_eq!(s.variant_name, "Blue");
        assert_eq!(s.metrics_namespace.as_deref(), Some("Custom/Models"));
        assert_eq!(s.metrics_dimensions, [("Team".to_owned(), "ml".to_owned())]);
        assert_eq!(s.event_bus.as_deref(), Some("loop-bus"));
        assert_eq!(
            (
                rule.minutes,
                rule.offset_minutes,
                rule.ground_truth_delay_minutes
            ),
            (360, 120, 120)
        );
        // The entry's report folder and baselines policy when set.
        let mut v = entry("b", "labels/b");
        v["monitoring"]["reportS3Uri"] = json!("s3://data/reports/b");
        v["monitoring"]["groundTruthDelayMinutes"] = json!(30);
        v["baselines"] = json!({"policy": "none"});
        let (s, rule) = stage_settings(0, &model(v), StageName::Production, &env()).unwrap();
        assert_eq!(s.report.to_string(), "s3://data/reports/b");
        assert_eq!(s.model_package_group, None);
        assert_eq!(s.data_quality, None);
        assert_eq!(rule.ground_truth_delay_minutes, 30);
    }

    #[test]
    fn what_the_monitoring_cannot_run_names_the_model_and_the_field() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, StageName, &str)> = vec![
            (
                Box::new(|v| v["monitoring"]["windowOffsetMinutes"] = json!(50_000)),
                StageName::Production,
                "monitoring.windowOffsetMinutes",
            ),
            (
                Box::new(|v| v["monitoring"]["groundTruthDelayMinutes"] = json!(50_000)),
                StageName::Production,
                "monitoring.groundTruthDelayMinutes",
            ),
            (
                Box::new(|v| v["monitoring"]["windowMinutes"] = json!(7)),
                StageName::Production,
                "monitoring.windowMinutes",
            ),
            (
                Box::new(|v| v["monitoring"]["groundTruthS3Uri"] = json!("labels")),
                StageName::Production,
                "monitoring.groundTruthS3Uri",
            ),
            (
                Box::new(|v| v["monitoring"]["reportS3Uri"] = json!("https://x")),
                StageName::Production,
                "monitoring.reportS3Uri",
            ),
            (
                Box::new(|v| v["capture"]["destinationS3Uri"] = json!("s3://B/x")),
                StageName::Production,
                "capture.destinationS3Uri",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("capture");
                }),
                StageName::Production,
                "monitoring",
            ),
            (
                Box::new(|v| v["stages"]["production"]["endpointName"] = json!("a/b")),
                StageName::Production,
                "stages.production.endpointName",
            ),
            (
                Box::new(|v| v["monitoring"]["scheduleName"] = json!("")),
                StageName::Production,
                "monitoring.scheduleName",
            ),
            (
                Box::new(|v| {
                    v["stages"].as_object_mut().unwrap().remove("production");
                }),
                StageName::Production,
                "monitoring.stages",
            ),
        ];
        for (change, stage, path) in cases {
            let mut v = entry("m", "labels/m");
            change(&mut v);
            let e = stage_settings(2, &model(v), stage, &env()).unwrap_err();
            assert_eq!(e.model, "models[2] (group \"m\")", "{path}");
            assert_eq!(e.path, path, "{e}");
            assert!(!e.message.is_empty());
            assert!(
                e.to_string()
                    .starts_with(&format!("models[2] (group \"m\").{path}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn every_monitored_stage_of_every_model_is_a_target_in_the_documents_order() {
        let mut two = entry("two", "labels/two");
        two["monitoring"]["stages"] = json!(["production", "staging"]);
        let mut unmonitored = entry("quiet", "labels/quiet");
        unmonitored.as_object_mut().unwrap().remove("monitoring");
        let l = loaded(vec![entry("one", "labels/one"), unmonitored, two]);
        let ts = all_targets(&l, &env());
        let names: Vec<_> = ts
            .iter()
            .map(|t| t.as_ref().unwrap().id.endpoint_name.as_str())
            .collect();
        assert_eq!(names, ["one-prod", "two-prod", "two-staging"]);
        let id = &ts[2].as_ref().unwrap().id;
        assert_eq!(
            (id.group.as_deref(), id.stage.as_deref()),
            (Some("two"), Some("staging"))
        );
        assert_eq!(id.source, "catalogue s3://cfg/catalogue.json@\"e1\"");
        // An entry the monitoring cannot run is its target's error, the others stay.
        let mut l = loaded(vec![entry("one", "labels/one"), entry("bad", "labels/bad")]);
        l.catalogue.models[1]
            .monitoring
            .as_mut()
            .unwrap()
            .window_offset_minutes = 99_999;
        let ts = all_targets(&l, &env());
        assert!(ts[0].is_ok());
        let (id, e) = ts[1].as_ref().unwrap_err();
        assert_eq!(id.endpoint_name, "bad-prod");
        assert_eq!(e.model, "models[1] (group \"bad\")");
    }

    #[test]
    fn a_label_upload_belongs_to_the_longest_ground_truth_prefix() {
        let l = loaded(vec![
            entry("a", "labels/a"),
            entry("nested", "labels/a/special"),
            entry("sibling", "labels/ab"),
            entry("slash", "labels/c/"),
        ]);
        let of = |key: &str| {
            model_of_upload(&l, &S3Uri::parse(&format!("s3://data/{key}")).unwrap())
                .map(|(i, m)| (i, m.group.as_str()))
        };
        assert_eq!(of("labels/a/2024/05/01/09/x.jsonl"), Some((0, "a")));
        assert_eq!(
            of("labels/a/special/2024/05/01/09/x.jsonl"),
            Some((1, "nested"))
        );
        assert_eq!(
            of("labels/a/specialist/2024/05/01/09/x.jsonl"),
            Some((0, "a"))
        );
        assert_eq!(of("labels/ab/2024/05/01/09/x.jsonl"), Some((2, "sibling")));
        assert_eq!(of("labels/c/2024/x.jsonl"), Some((3, "slash")));
        assert_eq!(of("labels/abc/2024/x.jsonl"), None);
        assert_eq!(
            of("labels/a"),
            None,
            "the prefix itself is no upload under it"
        );
        assert_eq!(of("other/a/x.jsonl"), None);
        let other_bucket = S3Uri::parse("s3://elsewhere/labels/a/x.jsonl").unwrap();
        assert!(model_of_upload(&l, &other_bucket).is_none());
    }

    #[test]
    fn an_endpoint_is_found_only_among_monitored_stages() {
        let l = loaded(vec![entry("a", "labels/a")]);
        let (i, m, stage) = monitored_stage(&l, "a-prod").unwrap();
        assert_eq!(
            (i, m.group.as_str(), stage),
            (0, "a", StageName::Production)
        );
        assert!(monitored_stage(&l, "a-staging").is_none());
        assert!(monitored_stage(&l, "b-prod").is_none());
    }
}
