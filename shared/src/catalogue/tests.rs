use serde_json::{Value, json};

use super::model::*;
use super::validate::parse;
use crate::metrics::ProblemType;

const EXAMPLE: &str = include_str!("../../../infra/catalogue.example.json");

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn errors(doc: &Value) -> Vec<String> {
    match parse(doc.to_string().as_bytes()) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_example_reads_with_its_three_problem_types_and_defaults() {
    let c = parse(EXAMPLE.as_bytes()).unwrap();
    let types: Vec<ProblemType> = c.models.iter().map(|m| m.problem.problem_type).collect();
    assert_eq!(
        types,
        [
            ProblemType::BinaryClassification,
            ProblemType::Regression,
            ProblemType::MulticlassClassification
        ]
    );
    let churn = c.model("churn").unwrap();
    assert_eq!(churn.stages.staging.instance_type, "ml.m5.large");
    assert_eq!(churn.stages.staging.instance_count, 1);
    let prod = churn.stages.production.as_ref().unwrap();
    assert_eq!(
        prod.autoscaling.as_ref().unwrap().scale_in_cooldown_seconds,
        300
    );
    assert_eq!(
        prod.deployment.as_ref().unwrap().termination_wait_seconds,
        0
    );
    assert_eq!(
        churn.capture.as_ref().unwrap().csv_content_types,
        ["text/csv"]
    );
    assert_eq!(churn.baselines.policy, BaselinePolicy::ServedPackage);
    assert_eq!(
        c.model("support-topics").unwrap().baselines.policy,
        BaselinePolicy::None
    );
    assert_eq!(
        c.model_of_endpoint("house-prices-prod").unwrap().group,
        "house-prices"
    );
    assert_eq!(
        c.model_of_trigger("house-prices-weekly").unwrap().group,
        "house-prices"
    );
    assert_eq!(c.model_of_trigger("churn-prod-f1").unwrap().group, "churn");
    assert!(c.model_of_trigger("nobody").is_none());
}

#[test]
fn a_range_error_names_the_model_and_the_field_path() {
    let mut doc = example();
    doc["models"][1]["stages"]["production"]["instanceCount"] = json!(0);
    assert_eq!(
        errors(&doc),
        [r#"models[1] (group "house-prices").stages.production.instanceCount: must be at least 1"#]
    );
}

#[test]
fn unknown_fields_and_closed_sets_are_refused_with_their_path() {
    let mut doc = example();
    doc["models"][0]["stages"]["production"]["instanceCont"] = json!(2);
    doc["models"][2]["problem"]["type"] = json!("Ranking");
    doc["models"][1]["stages"]["canary"] = json!({"endpointName": "x"});
    let errs = errors(&doc);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with(r#"models[0] (group "churn").stages.production.instanceCont: unknown field `instanceCont`"#),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with(
            r#"models[1] (group "house-prices").stages.canary: unknown field `canary`"#
        ),
        "{errs:#?}"
    );
    assert!(
        errs[2].starts_with(
            r#"models[2] (group "support-topics").problem.type: unknown variant `Ranking`"#
        ),
        "{errs:#?}"
    );
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let mut doc = example();
    let m = &mut doc["models"][0];
    m["stages"]["production"]["deployment"] = json!({"routing": "CANARY"});
    m["stages"]["production"]["autoscaling"] = json!({"minCapacity": 7, "maxCapacity": 6});
    m["capture"]["samplingPercentage"] = json!(0);
    m["monitoring"]["windowMinutes"] = json!(7);
    m["monitoring"]["stages"] = json!(["production", "production"]);
    m["retraining"]["cooldown"] = json!("30");
    m["retraining"]["parameters"]["bad name"] = json!("x");
    m["problem"]["forecastQuantiles"] = json!([0.5]);
    m["alarms"][1]["threshold"] = json!("servedPackage");
    let errs = errors(&doc).join("\n");
    for expected in [
        "stages.production.deployment.percent: CANARY needs a percentage",
        "stages.production.autoscaling.minCapacity: must not exceed maxCapacity (6)",
        "capture.samplingPercentage: must be 1-100",
        "monitoring.windowMinutes: 7: a window divides a day",
        "monitoring.stages[1]: listed twice",
        "retraining.cooldown: \"30\" has no unit",
        "retraining.parameters.bad name: \"bad name\" is not a pipeline parameter name",
        "problem.forecastQuantiles: only for Forecast",
        "alarms[1].threshold: alarms[0] already follows",
    ] {
        assert!(
            errs.contains(&format!(r#"models[0] (group "churn").{expected}"#)),
            "missing {expected:?} in\n{errs}"
        );
    }
    assert_eq!(errs.lines().count(), 9, "{errs}");
}

#[test]
fn names_used_by_two_models_are_refused() {
    let mut doc = example();
    let mut dup = doc["models"][0].clone();
    dup["stages"]["staging"]["endpointName"] = json!("fresh-staging");
    dup["stages"]["production"]["endpointName"] = json!("house-prices-prod");
    dup["retraining"]["pipeline"] = json!("churn-other-build");
    doc["models"].as_array_mut().unwrap().push(dup);
    let errs = errors(&doc);
    let prefix = r#"models[3] (group "churn")"#;
    assert_eq!(
        errs,
        [
            format!(r#"{prefix}.group: "churn" is already used by models[0] (group "churn")"#),
            format!(
                r#"{prefix}.stages.production.endpointName: "house-prices-prod" is already used by models[1] (group "house-prices")"#
            ),
            format!(
                r#"{prefix}.alarms[0].name: "churn-prod-f1" is already used by models[0] (group "churn")"#
            ),
            format!(
                r#"{prefix}.alarms[1].name: "churn-prod-drift" is already used by models[0] (group "churn")"#
            ),
        ]
    );
    // A pipeline shared by two models, and a schedule rule that is another model's alarm.
    let mut doc = example();
    doc["models"][2]["retraining"]["pipeline"] = json!("churn-build");
    doc["models"][2]["retraining"]["scheduleRules"] = json!(["house-prices-prod-rmse"]);
    let errs = errors(&doc).join("\n");
    assert!(errs.contains(r#"models[2] (group "support-topics").retraining.pipeline: "churn-build" is already used by models[0]"#), "{errs}");
    assert!(errs.contains(r#"models[2] (group "support-topics").retraining.scheduleRules[0]: "house-prices-prod-rmse" is already used by models[1]"#), "{errs}");
}

#[test]
fn document_level_errors() {
    let errs = errors(&json!({"models": {}, "extra": 1}));
    assert_eq!(
        errs,
        [
            "extra: unknown field, expected `version` or `models`",
            "version: missing (write \"version\": 1)",
            "models: expected an array of models, got an object",
        ]
    );
    assert_eq!(
        errors(&json!({"version": 2, "models": []})),
        ["version: 2 is not a version this build reads (expected 1)"]
    );
    let e = parse(b"{not json").unwrap_err();
    assert!(
        e.errors[0].message.starts_with("not a JSON document"),
        "{e}"
    );
    // A model without a group is named by its index.
    let errs = errors(&json!({"version": 1, "models": [{"problem": {"type": "Regression"}}]}));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("models[0]: missing field `group`"),
        "{errs:?}"
    );
}

#[test]
fn monitoring_needs_capture_and_alarms_that_retrain_need_a_pipeline() {
    let mut doc = example();
    doc["models"][1].as_object_mut().unwrap().remove("capture");
    doc["models"][2]
        .as_object_mut()
        .unwrap()
        .remove("retraining");
    doc["models"][2]["stages"]
        .as_object_mut()
        .unwrap()
        .remove("production");
    let errs = errors(&doc);
    assert_eq!(
        errs,
        [
            r#"models[1] (group "house-prices").monitoring: real-time monitoring reads the endpoints' data capture: set `capture`"#,
            r#"models[2] (group "support-topics").monitoring.stages[0]: "production" is not a stage of this model"#,
            r#"models[2] (group "support-topics").alarms[0].stage: "production" is not a stage of this model"#,
            r#"models[2] (group "support-topics").alarms[0].retrain: the model has no `retraining` pipeline to start (set it, or "retrain": false)"#,
        ]
    );
}

#[test]
fn the_report_says_what_is_managed_per_model() {
    let c = parse(EXAMPLE.as_bytes()).unwrap();
    let r = super::report::render(&c);
    for expected in [
        "catalogue version 1: 3 models",
        "model churn (BinaryClassification)",
        "production churn-prod  ml.c5.xlarge x2, blue/green CANARY 10% (wait 300s, termination wait 0s), rolls back on churn-prod-5xx, autoscaling 2-6 instances at 200 invocations/instance/min",
        "churn-prod-f1: f1 on production, threshold from the served package's constraint, retrains with churn-build",
        "churn-prod-drift: feature_baseline_drift_age on production, threshold set outside the loop, retrains with churn-build",
        "monitored: production churn-prod",
        "model house-prices (Regression)",
        "monitored: staging house-prices-staging",
        "schedule rules: house-prices-weekly",
        "model support-topics (MulticlassClassification)",
        "baselines none",
        "parameters: Epochs=10",
    ] {
        assert!(r.contains(expected), "missing {expected:?} in\n{r}");
    }
}

#[cfg(feature = "aws")]
mod with_aws {
    use super::*;
    use crate::catalogue::deploy::{Target, stage_configs, target};
    use crate::catalogue::source::{CatalogueSource, InMemoryCatalogue, S3Catalogue};
    use crate::deploy::trigger::Trigger as DeployTrigger;
    use crate::deploy::{Stage, TrafficRouting};
    use crate::doubles::InMemoryConditionalStore;
    use crate::error::Classify;
    use crate::storage::S3Uri;
    use std::sync::Arc;

    #[test]
    fn an_entry_gives_the_stage_configs_the_environment_would() {
        let c = parse(EXAMPLE.as_bytes()).unwrap();
        let stages = stage_configs(c.model("churn").unwrap());
        assert_eq!(stages.len(), 2);
        let (staging, prod) = (&stages[0], &stages[1]);
        assert_eq!(staging.stage, Stage::Staging);
        assert!(staging.follow_alarm.is_none() && staging.blue_green.is_none());
        assert_eq!(prod.endpoint_name, "churn-prod");
        assert_eq!(
            prod.blue_green.as_ref().unwrap().routing,
            TrafficRouting::Canary { percent: 10 }
        );
        assert_eq!(
            prod.follow_alarm.as_ref().unwrap().alarm_name,
            "churn-prod-f1"
        );
        assert_eq!(prod.follow_alarm.as_ref().unwrap().metric, "f1");
        assert_eq!(prod.autoscaling.as_ref().unwrap().max_capacity, 6);
        assert_eq!(prod.capture.as_ref().unwrap().sampling_percentage, 100);
        assert_eq!(prod.rollback_alarms, ["churn-prod-5xx"]);
    }

    #[tokio::test]
    async fn events_are_routed_to_their_group_or_ignored_with_the_reason() {
        let loaded = InMemoryCatalogue::new(EXAMPLE).load().await.unwrap();
        let event = |group: &str| DeployTrigger::PackageStateChange {
            group: group.into(),
            package_arn: format!("arn:aws:sagemaker:us-east-1:1:model-package/{group}/1"),
            approval: Some("Approved".into()),
            time: None,
        };
        let single = Target {
            group: "legacy".into(),
            role_arn: "arn:aws:iam::1:role/env".into(),
            stages: stage_configs(loaded.catalogue.model("churn").unwrap())
                .into_iter()
                .map(|mut s| {
                    s.endpoint_name = format!("legacy-{}", s.stage.as_str());
                    s
                })
                .collect(),
            source: "environment".into(),
        };
        let role = "arn:aws:iam::1:role/default";
        let t = target(&event("house-prices"), Some(&loaded), Some(&single), role).unwrap();
        assert_eq!(t.group, "house-prices");
        assert_eq!(t.role_arn, role);
        assert_eq!(t.stages[1].endpoint_name, "house-prices-prod");
        assert!(t.source.contains("\"v1\""), "{}", t.source);
        let t = target(&event("legacy"), Some(&loaded), Some(&single), role).unwrap();
        assert_eq!(t.source, "environment");
        let reason = target(&event("fraud"), Some(&loaded), Some(&single), role).unwrap_err();
        assert!(
            reason.contains("manages group \"legacy\", not \"fraud\""),
            "{reason}"
        );
        assert!(
            reason.contains("not in the catalogue memory://"),
            "{reason}"
        );
        let reason = target(&event("fraud"), Some(&loaded), None, role).unwrap_err();
        assert!(
            reason.contains("group \"fraud\" is not in the catalogue"),
            "{reason}"
        );
        let back = |endpoint: &str, status: &str| DeployTrigger::EndpointStateChange {
            endpoint: endpoint.into(),
            status: status.into(),
        };
        let t = target(
            &back("support-topics-prod", "IN_SERVICE"),
            Some(&loaded),
            None,
            role,
        )
        .unwrap();
        assert_eq!(t.group, "support-topics");
        let reason = target(
            &back("support-topics-prod", "UPDATING"),
            Some(&loaded),
            None,
            role,
        )
        .unwrap_err();
        assert!(reason.contains("only a return to service"), "{reason}");
        assert!(target(&back("other", "IN_SERVICE"), Some(&loaded), None, role).is_err());
        // Without a catalogue, the environment's model as before.
        assert_eq!(
            target(&event("legacy"), None, Some(&single), role).unwrap(),
            single
        );
    }

    #[tokio::test]
    async fn the_s3_source_reads_the_object_with_its_etag_and_names_it_in_errors() {
        let store = Arc::new(InMemoryConditionalStore::default());
        let uri = S3Uri::parse("s3://config/driftloop/catalogue.json").unwrap();
        let source = S3Catalogue::new(store.clone(), uri.clone());
        let e = source.load().await.unwrap_err();
        assert_eq!(e.error_type(), "Permanent.CatalogueMissing");
        store.put(&uri, EXAMPLE.as_bytes().to_vec());
        let first = source.load().await.unwrap();
        assert_eq!(first.catalogue.models.len(), 3);
        let mut doc = example();
        doc["models"][0]["stages"]["staging"]["instanceCount"] = json!(0);
        store.put(&uri, doc.to_string().into_bytes());
        let e = source.load().await.unwrap_err();
        assert_eq!(e.error_type(), "Permanent.InvalidCatalogue");
        let msg = e.to_string();
        assert!(
            msg.contains("s3://config/driftloop/catalogue.json"),
            "{msg}"
        );
        assert!(
            msg.contains(
                r#"models[0] (group "churn").stages.staging.instanceCount: must be at least 1"#
            ),
            "{msg}"
        );
        assert!(!msg.contains(&first.version), "a new version: {msg}");
    }
}

#[test]
fn the_readme_example_is_the_example_file() {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("<!-- catalogue-example -->")
        .nth(1)
        .and_then(|b| b.split("<!-- /catalogue-example -->").next())
        .expect("README's catalogue example block");
    let json = block
        .trim()
        .strip_prefix("```json")
        .and_then(|b| b.strip_suffix("```"))
        .expect("a json code block");
    assert_eq!(serde_json::from_str::<Value>(json).unwrap(), example());
    assert!(parse(json.as_bytes()).is_ok());
}

mod dashboard_and_alarms {
    use crate::catalogue::alarms::{namespace_of, period_seconds, template};
    use crate::catalogue::dashboard::{DashboardSettings, MAX_WIDGETS, body};
    use serde_json::{Value, json};

    const EXAMPLE: &str = include_str!("../../../infra/catalogue.example.json");

    fn settings() -> DashboardSettings {
        DashboardSettings {
            name: "s-driftloop-models".into(),
            region: "eu-west-1".into(),
            alarm_arn_prefix: "arn:aws:cloudwatch:eu-west-1:1:alarm:".into(),
            loop_namespace: "driftloop".into(),
        }
    }

    #[test]
    fn one_alarm_graph_per_managed_alarm_and_one_marks_graph_per_model() {
        let c = crate::catalogue::parse(EXAMPLE.as_bytes()).unwrap();
        let b = body(&c, "s3://config/catalogue.json", &settings());
        let widgets = b.body["widgets"].as_array().unwrap();
        // header + churn (1 managed alarm + marks) + house-prices (1 + marks) + support-topics
        // (external alarm only: marks).
        assert_eq!(widgets.len(), 1 + 2 + 2 + 1, "{widgets:#?}");
        assert_eq!((b.models_shown, b.left_off.len()), (3, 0));
        let annotations: Vec<&Value> = widgets
            .iter()
            .filter_map(|w| w.pointer("/properties/annotations/alarms/0"))
            .collect();
        assert_eq!(
            annotations,
            [
                &json!("arn:aws:cloudwatch:eu-west-1:1:alarm:churn-prod-f1"),
                &json!("arn:aws:cloudwatch:eu-west-1:1:alarm:house-prices-prod-rmse")
            ]
        );
        let marks = widgets[2]["properties"]["metrics"].as_array().unwrap();
        assert_eq!(marks[0][1], "RetrainingStarted");
        assert_eq!(marks[0][3], "churn-build");
        assert_eq!(marks[1][1], "ModelDeployed");
        assert_eq!(widgets[2]["properties"]["period"], 3600);
        assert_eq!(widgets[4]["properties"]["period"], 86_400);
        // Same catalogue, same body (a rewrite is decided by comparing bodies).
        assert_eq!(
            b.body,
            body(&c, "s3://config/catalogue.json", &settings()).body
        );
    }

    #[test]
    fn more_models_than_a_dashboard_holds_are_left_off_and_said_so() {
        let mut doc: Value = serde_json::from_str(EXAMPLE).unwrap();
        let churn = doc["models"][0].clone();
        let mut models = Vec::new();
        for i in 0..300 {
            let mut m = churn.clone();
            m["group"] = json!(format!("m{i}"));
            m["stages"]["staging"]["endpointName"] = json!(format!("m{i}-staging"));
            m["stages"]["production"]["endpointName"] = json!(format!("m{i}-prod"));
            m["alarms"] =
                json!([{"name": format!("m{i}-f1"), "metric": "f1", "threshold": "servedPackage"}]);
            m["retraining"]["pipeline"] = json!(format!("m{i}-build"));
            models.push(m);
        }
        doc["models"] = json!(models);
        let c = crate::catalogue::parse(doc.to_string().as_bytes()).unwrap();
        let b = body(&c, "s3://c/k.json", &settings());
        let widgets = b.body["widgets"].as_array().unwrap();
        assert!(widgets.len() <= MAX_WIDGETS, "{}", widgets.len());
        // 1 header + 249 models x 2 + the notice = 500.
        assert_eq!(b.models_shown, 249);
        assert_eq!(b.left_off.len(), 51);
        assert_eq!(b.left_off[0], "m249");
        let notice = widgets.last().unwrap()["properties"]["markdown"]
            .as_str()
            .unwrap();
        assert!(
            notice.contains("51 of 300 models are not shown"),
            "{notice}"
        );
        assert!(notice.contains("m249, m250"), "{notice}");
        assert!(b.body.to_string().len() < crate::catalogue::dashboard::MAX_BODY_BYTES);
    }

    #[test]
    fn an_alarm_takes_model_monitors_namespace_and_the_models_window() {
        let c = crate::catalogue::parse(EXAMPLE.as_bytes()).unwrap();
        let churn = &c.models[0];
        let t = template(churn, &churn.alarms[0]).unwrap();
        assert_eq!(t.namespace, "aws/sagemaker/Endpoints/model-metrics");
        assert_eq!(t.endpoint, "churn-prod");
        assert_eq!(t.statistic, "Average");
        assert!(
            template(churn, &churn.alarms[1]).is_none(),
            "external: not the loop's"
        );
        assert_eq!(
            namespace_of("feature_baseline_drift_age"),
            "aws/sagemaker/Endpoints/data-metrics"
        );
        assert_eq!(period_seconds(churn), 3600);
        assert_eq!(period_seconds(&c.models[1]), 86_400);
        let s = t.spec(0.7, "LessThanThreshold", "arn:pkg/1");
        let mut other = t.spec(0.6, "LessThanThreshold", "arn:pkg/1");
        assert_eq!(other.differences(&s), ["threshold"]);
        other.dimensions.reverse();
        other.threshold = 0.7;
        assert!(
            other.differences(&s).is_empty(),
            "dimension order does not matter"
        );
        assert!(s.is_managed());
    }
}
