use super::*;
use driftloop::doubles::{InMemoryRegistry, package};
use driftloop::error::AwsError;
use driftloop::registry::ApprovalStatus::*;
use driftloop::registry::BaselineSource;
use serde_json::json;

const SAMPLE: &str = include_str!("../../../events/get-approved-model.json");

fn deps(registry: Arc<InMemoryRegistry>, default_group: Option<&str>) -> Deps {
    Deps {
        registry,
        config: Config {
            default_group: default_group.map(str::to_owned),
            ..Config::default()
        },
    }
}

#[tokio::test]
async fn sample_event_returns_newest_approved() {
    let event: Value = serde_json::from_str(SAMPLE).unwrap();
    let group = event["model_package_group_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let reg = Arc::new(InMemoryRegistry::default());
    reg.add(package(&group, 1, 0, Approved));
    reg.add(package(&group, 2, 30, Approved));
    reg.add(package(&group, 3, 60, PendingManualApproval));
    let out = handle(event, &deps(reg, None)).await.unwrap();
    assert_eq!(out.model_package_version, Some(2));
    assert_eq!(out.model_arn, out.model_package_arn);
    assert!(
        out.s3uri_statistics
            .ends_with(&format!("{group}/2/statistics.json"))
    );
}

#[tokio::test]
async fn pascal_case_key_and_env_default() {
    let reg = Arc::new(InMemoryRegistry::default());
    reg.add(package("a", 1, 0, Approved));
    reg.add(package("b", 7, 0, Approved));
    let d = deps(reg, Some("b"));
    assert_eq!(
        handle(json!({"ModelPackageGroupName": "a"}), &d)
            .await
            .unwrap()
            .model_package_group_name,
        "a"
    );
    assert_eq!(
        handle(json!({}), &d).await.unwrap().model_package_version,
        Some(7)
    );
    assert_eq!(
        handle(Value::Null, &d).await.unwrap().model_package_version,
        Some(7)
    );
}

#[tokio::test]
async fn missing_group_is_permanent_and_names_the_field() {
    let d = deps(Arc::new(InMemoryRegistry::default()), None);
    let err = handle(json!({"something": 1}), &d).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.MissingGroup");
    assert!(err.to_string().contains("model_package_group_name"));
    assert!(err.to_string().contains(GROUP_VAR));
    let diag = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diag.error_type, "Permanent.MissingGroup");
}

#[tokio::test]
async fn bad_inputs_are_permanent() {
    let d = deps(Arc::new(InMemoryRegistry::default()), None);
    for event in [
        json!([1]),
        json!({"model_package_group_name": 5}),
        json!({"model_package_group_name": "no spaces"}),
    ] {
        let err = handle(event.clone(), &d).await.unwrap_err();
        assert_eq!(err.error_type(), "Permanent.InvalidInput", "{event}: {err}");
    }
}

#[tokio::test]
async fn no_approved_package_names_the_group() {
    let reg = Arc::new(InMemoryRegistry::default());
    reg.add(package("g", 1, 0, Rejected));
    let err = handle(json!({"model_package_group_name": "g"}), &deps(reg, None))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.NoApprovedPackage");
    assert!(err.to_string().contains("\"g\""));
}

#[tokio::test]
async fn throttling_is_retryable() {
    let reg = Arc::new(InMemoryRegistry::default());
    reg.fail_next(AwsError::classify(
        "sagemaker",
        "ListModelPackages",
        Some("ThrottlingException"),
        Some(400),
        "Rate exceeded",
    ));
    let err = handle(json!({"model_package_group_name": "g"}), &deps(reg, None))
        .await
        .unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.Throttled"
    );
}

#[test]
fn config_validates_the_group_variable() {
    let err = Config::from_env(&[(GROUP_VAR, "bad name!")]).unwrap_err();
    assert_eq!(err.var(), GROUP_VAR);
    assert_eq!(
        Config::from_env(&[(GROUP_VAR, "churn")])
            .unwrap()
            .default_group
            .as_deref(),
        Some("churn")
    );
    let arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/churn";
    assert_eq!(
        Config::from_env(&[(GROUP_VAR, arn)])
            .unwrap()
            .default_group
            .as_deref(),
        Some(arn)
    );
    assert!(
        Config::from_env(&[("OTHER", "x")])
            .unwrap()
            .default_group
            .is_none()
    );
}

const LAMBDA_STEP_SAMPLE: &str =
    include_str!("../../../events/get-approved-model-lambda-step.json");

/// The outputs AWS's batch-monitoring pipeline declares on its `LambdaStep` (all
/// `LambdaOutputTypeEnum.String`); a step output's value is a required string
/// (`OutputParameter.Value`), so none may be `null`.
const STEP_OUTPUTS: [&str; 5] = [
    "statusCode",
    "modelArn",
    "s3uriConstraints",
    "s3uriStatistics",
    "modelName",
];

fn assert_step_outputs(out: &Value) {
    for key in STEP_OUTPUTS {
        let v = &out[key];
        assert!(!v.is_null(), "{key} is null or missing in {out}");
        match key {
            // The sample's own function returns the number 200 for this String output.
            "statusCode" => assert_eq!(v, &json!(200), "{key}"),
            _ => assert!(v.is_string(), "{key} is not a string: {v}"),
        }
    }
}

#[tokio::test]
async fn lambda_step_sample_input_gives_every_declared_output() {
    let event: Value = serde_json::from_str(LAMBDA_STEP_SAMPLE).unwrap();
    let group = event["model_package_group_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let reg = Arc::new(InMemoryRegistry::default());
    let mut p = package(&group, 3, 0, Approved);
    p.customer_metadata
        .insert("ModelName".into(), format!("{group}-model-3"));
    reg.add(p);
    let out = serde_json::to_value(handle(event.clone(), &deps(reg, None)).await.unwrap()).unwrap();
    assert_step_outputs(&out);
    assert_eq!(out["modelName"], format!("{group}-model-3"));
    assert_eq!(
        out["s3uriStatistics"],
        format!("s3://baselines/{group}/3/statistics.json")
    );
    assert_eq!(
        out["s3uriConstraints"],
        format!("s3://baselines/{group}/3/constraints.json")
    );
    assert_eq!(
        out["modelArn"],
        format!("arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/3")
    );

    // Without metadata and baselines the declared outputs are empty strings, not nulls.
    let reg = Arc::new(InMemoryRegistry::default());
    let mut bare = package(&group, 1, 0, Approved);
    bare.drift_check_data_quality = Default::default();
    reg.add(bare);
    let out = serde_json::to_value(handle(event, &deps(reg, None)).await.unwrap()).unwrap();
    assert_step_outputs(&out);
    assert_eq!(
        (
            &out["modelName"],
            &out["s3uriStatistics"],
            &out["s3uriConstraints"]
        ),
        (&json!(""), &json!(""), &json!(""))
    );
    assert!(out["dataQualityBaseline"].is_null());
}

/// A package with both baseline sets registered, as a pipeline with a `QualityCheckStep` makes.
fn package_with_both_baselines(group: &str) -> driftloop::registry::ModelPackage {
    let mut p = package(group, 5, 0, Approved);
    p.metrics_data_quality = driftloop::registry::Baseline {
        statistics: Some(format!("s3://metrics/{group}/statistics.json")),
        constraints: Some(format!("s3://metrics/{group}/constraints.json")),
    };
    p
}

#[tokio::test]
async fn baselines_from_model_metrics_first_when_asked() {
    let reg = Arc::new(InMemoryRegistry::default());
    reg.add(package_with_both_baselines("g"));
    let d = deps(reg.clone(), None);
    let default = handle(json!({"model_package_group_name": "g"}), &d)
        .await
        .unwrap();
    assert_eq!(
        default.s3uri_statistics,
        "s3://baselines/g/5/statistics.json"
    );
    assert_eq!(default.baseline_source, BaselineSource::DriftCheck);

    let asked = handle(
        json!({"model_package_group_name": "g", "baseline_source": "ModelMetrics"}),
        &d,
    )
    .await
    .unwrap();
    assert_eq!(asked.s3uri_statistics, "s3://metrics/g/statistics.json");
    assert_eq!(asked.s3uri_constraints, "s3://metrics/g/constraints.json");
    assert_eq!(
        serde_json::to_value(&asked).unwrap()["baselineSource"],
        "ModelMetrics"
    );

    // The configured default applies when the event does not say; the event wins when it does.
    let configured = Deps {
        registry: reg,
        config: Config::from_env(&[(BASELINE_SOURCE_VAR, "modelmetrics")]).unwrap(),
    };
    let out = handle(json!({"model_package_group_name": "g"}), &configured)
        .await
        .unwrap();
    assert_eq!(out.s3uri_statistics, "s3://metrics/g/statistics.json");
    let out = handle(
        json!({"model_package_group_name": "g", "BaselineSource": "DriftCheckBaselines"}),
        &configured,
    )
    .await
    .unwrap();
    assert_eq!(out.s3uri_statistics, "s3://baselines/g/5/statistics.json");

    // Only ModelMetrics registered: either order finds it.
    let reg = Arc::new(InMemoryRegistry::default());
    let mut only_metrics = package_with_both_baselines("h");
    only_metrics.drift_check_data_quality = Default::default();
    reg.add(only_metrics);
    let out = handle(json!({"model_package_group_name": "h"}), &deps(reg, None))
        .await
        .unwrap();
    assert_eq!(out.s3uri_statistics, "s3://metrics/h/statistics.json");
}

#[tokio::test]
async fn bad_baseline_source_is_refused_with_what_was_expected() {
    let reg = Arc::new(InMemoryRegistry::default());
    reg.add(package("g", 1, 0, Approved));
    for bad in [json!("Latest"), json!(3)] {
        let err = handle(
            json!({"model_package_group_name": "g", "baseline_source": bad}),
            &deps(reg.clone(), None),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "Permanent.InvalidInput", "{err}");
        assert!(err.to_string().contains("baseline"), "{err}");
    }
    let err = Config::from_env(&[(BASELINE_SOURCE_VAR, "newest")]).unwrap_err();
    assert_eq!(err.var(), BASELINE_SOURCE_VAR);
    assert!(err.to_string().contains("ModelMetrics"), "{err}");
}
