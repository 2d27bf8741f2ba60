use super::*;
use crate::deploy::{DeploymentSpec, EndpointConfigSpec, Hosting, ModelSpec};
use crate::doubles::{InMemoryHosting, InMemoryRegistry, InMemoryStore, package};
use crate::metrics::dq::baseline::MonitoringConfig;
use crate::registry::ApprovalStatus;

const V1: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1";
const V2: &str = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/2";

fn endpoint(name: &str) -> Target {
    Target::Endpoint {
        endpoint_name: name.to_owned(),
        variant_name: "AllTraffic".to_owned(),
    }
}

/// Group `churn` with v1 and v2 approved (v2 the latest), each with its own model-quality
/// constraints file (accuracy threshold 0.1 × version), so a test sees whose were read.
fn world() -> (InMemoryRegistry, InMemoryHosting, InMemoryStore) {
    let registry = InMemoryRegistry::default();
    let store = InMemoryStore::default();
    for v in [1, 2] {
        let mut p = package("churn", v, v * 10, ApprovalStatus::Approved);
        p.drift_check_data_quality = Default::default();
        p.drift_check_model_quality.constraints = Some(format!("s3://baselines/churn/{v}/mq.json"));
        registry.add(p);
        store.insert(
            &format!("s3://baselines/churn/{v}/mq.json"),
            format!(
                r#"{{"binary_classification_constraints":{{"accuracy":{{"threshold":{},"comparison_operator":"LessThanThreshold"}}}}}}"#,
                v as f64 / 10.0
            ),
        );
    }
    (registry, InMemoryHosting::default(), store)
}

fn threshold(b: &Baselines) -> f64 {
    b.mq_constraints.as_ref().unwrap()["binary_classification_constraints"]["accuracy"]["threshold"]
        .as_f64()
        .unwrap()
}

async fn resolve(
    r: &InMemoryRegistry,
    h: &InMemoryHosting,
    s: &InMemoryStore,
    target: &Target,
) -> Result<Baselines, AwsError> {
    resolve_served_baselines(r, h, s, "churn", target).await
}

#[tokio::test]
async fn the_served_package_wins_over_the_latest_approved() {
    let (r, h, s) = world();
    h.serve("churn-prod", "churn-v1", V1);
    h.serve("churn-staging", "churn-v2", V2);
    let prod = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(prod.package_arn.as_deref(), Some(V1));
    assert_eq!(prod.source, BaselineSource::Endpoint);
    assert_eq!(threshold(&prod), 0.1);
    assert_eq!(prod.uris, ["s3://baselines/churn/1/mq.json"]);
    assert!(prod.problems.is_empty(), "{:?}", prod.problems);
    assert_eq!(prod.fallback_reason, None);
    let served = prod.served.as_ref().unwrap();
    assert_eq!(
        (
            served.endpoint_config_name.as_str(),
            served.model_name.as_str()
        ),
        ("churn-prod-churn-v1", "churn-v1")
    );
    let d = prod.describe(Some("churn"));
    assert_eq!(d["source"], "endpoint");
    assert_eq!(d["modelPackageArn"], V1);
    assert_eq!(d["served"]["modelName"], "churn-v1");
    assert_eq!(d["fallbackReason"], Value::Null);
    // Staging, each with its own package.
    let staging = resolve(&r, &h, &s, &endpoint("churn-staging"))
        .await
        .unwrap();
    assert_eq!(staging.package_arn.as_deref(), Some(V2));
    assert_eq!(threshold(&staging), 0.2);
}

#[tokio::test]
async fn a_pending_config_is_not_the_served_one() {
    let (r, h, s) = world();
    h.serve("churn-prod", "churn-v1", V1);
    h.ensure_model(&ModelSpec {
        name: "churn-v2".into(),
        package_arn: V2.into(),
        execution_role_arn: "role".into(),
    })
    .await
    .unwrap();
    h.ensure_endpoint_config(&EndpointConfigSpec {
        name: "churn-prod-v2".into(),
        model_name: "churn-v2".into(),
        variant_name: "AllTraffic".into(),
        instance_type: "ml.m5.large".into(),
        instance_count: 1,
        capture: None,
    })
    .await
    .unwrap();
    h.hold_updates(true);
    h.update_endpoint(
        "churn-prod",
        "churn-prod-v2",
        &DeploymentSpec {
            blue_green: None,
            rollback_alarms: vec![],
        },
    )
    .await
    .unwrap();
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(
        b.package_arn.as_deref(),
        Some(V1),
        "the update is still in flight"
    );
    h.finish("churn-prod");
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(V2));
    assert_eq!(b.source, BaselineSource::Endpoint);
}

#[tokio::test]
async fn a_missing_endpoint_falls_back_to_the_latest_approved_and_says_why() {
    let (r, h, s) = world();
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(V2));
    assert_eq!(b.source, BaselineSource::LatestApproved);
    assert_eq!(threshold(&b), 0.2);
    let reason = b.fallback_reason.clone().unwrap();
    assert!(reason.contains("\"churn-prod\" does not exist"), "{reason}");
    let d = b.describe(Some("churn"));
    assert_eq!(d["source"], "latestApproved");
    assert_eq!(d["fallbackReason"], reason.as_str());
    assert_eq!(d["served"], Value::Null);
    assert!(b.problems.is_empty(), "{:?}", b.problems);
}

#[tokio::test]
async fn a_model_without_a_package_falls_back() {
    let (r, h, s) = world();
    h.serve("churn-prod", "churn-v1", V1);
    {
        let mut st = h.state.lock().unwrap();
        st.models.remove("churn-v1");
    }
    h.add_unregistered_model("churn-v1");
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.source, BaselineSource::LatestApproved);
    assert_eq!(b.package_arn.as_deref(), Some(V2));
    assert!(
        b.fallback_reason
            .as_deref()
            .unwrap()
            .contains("\"churn-v1\" names no ModelPackageName"),
        "{:?}",
        b.fallback_reason
    );
    // A model deleted under a running endpoint.
    h.state.lock().unwrap().unregistered_models.clear();
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert!(
        b.fallback_reason.as_deref().unwrap().contains(
            "model \"churn-v1\" of endpoint config \"churn-prod-churn-v1\" does not exist"
        ),
        "{:?}",
        b.fallback_reason
    );
}

#[tokio::test]
async fn other_broken_chains_fall_back_with_their_reason() {
    let (r, h, s) = world();
    h.serve("churn-prod", "churn-v1", V1);
    // Another variant name.
    let b = resolve(
        &r,
        &h,
        &s,
        &Target::Endpoint {
            endpoint_name: "churn-prod".into(),
            variant_name: "Blue".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        b.fallback_reason.as_deref(),
        Some(
            "endpoint config \"churn-prod-churn-v1\" has no production variant \"Blue\" (it has [\"AllTraffic\"])"
        )
    );
    // Batch transform has no endpoint.
    let b = resolve(&r, &h, &s, &Target::BatchTransform).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(V2));
    assert!(b.fallback_reason.unwrap().starts_with("batch transform"));
    // The served package was deleted from the registry.
    let h2 = InMemoryHosting::default();
    h2.serve(
        "churn-prod",
        "churn-v9",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/9",
    );
    let b = resolve(&r, &h2, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(V2));
    assert!(b.fallback_reason.unwrap().contains("cannot be described"));
    // A permanent read error (access denied) is reported, not fatal.
    h.fail_next_read(AwsError::classify(
        "sagemaker",
        "DescribeEndpointConfig",
        Some("AccessDeniedException"),
        Some(400),
        "not authorized to perform sagemaker:DescribeEndpointConfig",
    ));
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.source, BaselineSource::LatestApproved);
    assert!(b.fallback_reason.unwrap().contains("not authorized"));
}

#[tokio::test]
async fn a_throttled_read_fails_the_run_retryably() {
    let (r, h, s) = world();
    h.serve("churn-prod", "churn-v1", V1);
    h.fail_next_read(AwsError::classify(
        "sagemaker",
        "DescribeEndpoint",
        Some("ThrottlingException"),
        Some(400),
        "Rate exceeded",
    ));
    let e = resolve(&r, &h, &s, &endpoint("churn-prod"))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Retryable);
    // The next call goes through.
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(V1));
}

#[tokio::test]
async fn a_served_package_without_baselines_is_used_and_reported() {
    let (r, h, s) = world();
    let mut bare = package("churn", 5, 50, ApprovalStatus::Approved);
    bare.drift_check_data_quality = Default::default();
    let arn = bare.summary.arn.clone();
    r.add(bare);
    h.serve("churn-prod", "churn-v5", &arn);
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(b.source, BaselineSource::Endpoint);
    assert!(b.mq_constraints.is_none() && b.dq_constraints.is_none());
    assert_eq!(
        b.problems,
        [format!(
            "the served package {arn} names no data-quality or model-quality baseline"
        )]
    );
}

#[tokio::test]
async fn a_package_of_another_group_is_used_and_reported() {
    let (r, h, s) = world();
    let other = package("fraud", 4, 0, ApprovalStatus::Approved);
    let arn = other.summary.arn.clone();
    r.add(other);
    h.serve("churn-prod", "fraud-v4", &arn);
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(b.source, BaselineSource::Endpoint);
    assert!(
        b.problems.iter().any(|p| p.contains("group \"fraud\"")),
        "{:?}",
        b.problems
    );
}

/// A `prediction_statistics.json` of scores `0.00 .. 0.99` (the engine's own output), and a
/// data-quality `statistics.json` whose first column `_c0` is the same score.
fn prediction_files(store: &InMemoryStore) {
    use crate::metrics::{Engine, MonitorConfig};
    let mut e = Engine::new(MonitorConfig {
        data_quality: true,
        prediction_drift: true,
        ..MonitorConfig::default()
    });
    for i in 0..100u64 {
        let line = format!(
            r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{i}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"e{i}","inferenceTime":"2024-01-01T00:00:00Z"}},"eventVersion":"0"}}"#,
            i as f64 / 100.0
        );
        e.push_capture_line(&line, "ref", i);
    }
    let r = e.finish().unwrap();
    store.insert(
        "s3://baselines/churn/1/prediction.json",
        r.prediction_statistics_json().unwrap().to_string(),
    );
    store.insert(
        "s3://baselines/churn/1/statistics.json",
        r.data_quality_statistics_json().unwrap().to_string(),
    );
    // The score `_c0` gets its own threshold; the others the global one.
    store.insert(
        "s3://baselines/churn/1/constraints.json",
        json!({"version": 0.0, "features": [
            {"name": "_c0", "inferred_type": "Fractional", "completeness": 1.0,
             "monitoringConfigOverrides": {"comparison_threshold": 0.3}},
            {"name": "prediction", "inferred_type": "Fractional", "completeness": 1.0,
             "monitoringConfigOverrides": {"comparison_threshold": 0.4}}],
         "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
            "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.2,
                                         "comparison_method": "Simple"}}})
        .to_string(),
    );
}

/// v1 served, with data-quality baselines and (`metadata`) a `driftloop:prediction-baseline`.
async fn served_v1(metadata: bool) -> (InMemoryStore, Baselines) {
    let (r, h, s) = (
        InMemoryRegistry::default(),
        InMemoryHosting::default(),
        InMemoryStore::default(),
    );
    let mut p = package("churn", 1, 10, ApprovalStatus::Approved);
    if metadata {
        p.customer_metadata.insert(
            PREDICTION_BASELINE_METADATA_KEY.into(),
            "s3://baselines/churn/1/prediction.json".into(),
        );
    }
    r.add(p);
    prediction_files(&s);
    h.serve("churn-prod", "churn-v1", V1);
    let b = resolve(&r, &h, &s, &endpoint("churn-prod")).await.unwrap();
    assert_eq!(b.package_arn.as_deref(), Some(V1));
    (s, b)
}

fn threshold_of(p: &PredictionBaseline) -> f64 {
    p.config.comparison_threshold
}

#[tokio::test]
async fn the_served_packages_prediction_baseline_is_used_with_its_features_config() {
    let (s, mut b) = served_v1(true).await;
    assert!(b.prediction.is_none(), "read only when asked");
    resolve_prediction_baseline(&s, &mut b, None, None)
        .await
        .unwrap();
    assert!(b.problems.is_empty(), "{:?}", b.problems);
    let p = b.prediction.as_ref().unwrap();
    assert_eq!(p.source, PredictionSource::Package);
    assert_eq!(p.uri, "s3://baselines/churn/1/prediction.json");
    assert_eq!(p.feature.name, "prediction");
    assert_eq!(p.feature.num_present, 100.0);
    assert_eq!(
        threshold_of(p),
        0.4,
        "the override of the feature `prediction`"
    );
    assert!(b.uris.contains(&p.uri), "{:?}", b.uris);
    let d = b.describe(Some("churn"));
    assert_eq!(d["prediction"]["source"], "package");
    assert_eq!(d["prediction"]["feature"], "prediction");
}

#[tokio::test]
async fn the_environments_file_overrides_the_package_and_a_feature_can_be_named() {
    let (s, mut b) = served_v1(true).await;
    let env = "s3://baselines/churn/1/statistics.json";
    resolve_prediction_baseline(&s, &mut b, Some(env), Some("_c0"))
        .await
        .unwrap();
    let p = b.prediction.as_ref().unwrap();
    assert_eq!(
        (p.source, p.uri.as_str(), p.feature.name.as_str()),
        (PredictionSource::Environment, env, "_c0")
    );
    assert_eq!(threshold_of(p), 0.3);
    assert!(!b.uris.iter().any(|u| u.ends_with("prediction.json")));
    // Without a package group at all.
    let mut none = Baselines::default();
    resolve_prediction_baseline(&s, &mut none, Some(env), Some("_c1"))
        .await
        .unwrap();
    let p = none.prediction.as_ref().unwrap();
    assert_eq!(p.feature.name, "_c1");
    assert_eq!(
        threshold_of(p),
        MonitoringConfig::default().comparison_threshold
    );
    assert_eq!(none.describe(None)["modelPackageGroupName"], Value::Null);
}

#[tokio::test]
async fn prediction_feature_alone_takes_the_data_quality_baselines_column() {
    let (s, mut b) = served_v1(false).await;
    resolve_prediction_baseline(&s, &mut b, None, None)
        .await
        .unwrap();
    assert!(b.prediction.is_none() && b.problems.is_empty());
    resolve_prediction_baseline(&s, &mut b, None, Some("_c0"))
        .await
        .unwrap();
    let p = b.prediction.as_ref().unwrap();
    assert_eq!(p.source, PredictionSource::DataQualityBaseline);
    assert_eq!(p.uri, "s3://baselines/churn/1/statistics.json");
    assert_eq!((p.feature.name.as_str(), threshold_of(p)), ("_c0", 0.3));
    assert_eq!(
        b.describe(Some("churn"))["prediction"]["source"],
        "dataQualityBaseline"
    );
}

#[tokio::test]
async fn unusable_prediction_baselines_are_reported_and_left_out() {
    let (s, b0) = served_v1(true).await;
    // A data-quality statistics file with several features and no `prediction`.
    let mut b = b0.clone();
    resolve_prediction_baseline(
        &s,
        &mut b,
        Some("s3://baselines/churn/1/statistics.json"),
        None,
    )
    .await
    .unwrap();
    assert!(b.prediction.is_none());
    let p = b.problems.last().unwrap();
    assert!(
        p.contains("no feature \"prediction\"") && p.contains("set PREDICTION_FEATURE"),
        "{p}"
    );
    // A missing file.
    let mut b = b0.clone();
    resolve_prediction_baseline(&s, &mut b, Some("s3://baselines/churn/9/none.json"), None)
        .await
        .unwrap();
    assert!(b.prediction.is_none());
    assert!(
        b.problems
            .last()
            .unwrap()
            .contains("PREDICTION_BASELINE_S3_URI"),
        "{:?}",
        b.problems
    );
    // A named feature the file lacks.
    let mut b = b0.clone();
    resolve_prediction_baseline(&s, &mut b, None, Some("score"))
        .await
        .unwrap();
    assert!(
        b.problems.last().unwrap().contains("no feature \"score\""),
        "{:?}",
        b.problems
    );
    // PREDICTION_FEATURE without a data-quality baseline.
    let mut none = Baselines::default();
    resolve_prediction_baseline(&s, &mut none, None, Some("_c0"))
        .await
        .unwrap();
    assert!(none.prediction.is_none());
    assert!(
        none.problems[0].contains("no data-quality statistics"),
        "{:?}",
        none.problems
    );
}
