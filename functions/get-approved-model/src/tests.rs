use super::*;
use driftloop::doubles::{InMemoryRegistry, package};
use driftloop::error::AwsError;
use driftloop::registry::ApprovalStatus::*;
use serde_json::json;

const SAMPLE: &str = include_str!("../../../events/get-approved-model.json");

fn deps(registry: Arc<InMemoryRegistry>, default_group: Option<&str>) -> Deps {
    Deps {
        registry,
        config: Config {
            default_group: default_group.map(str::to_owned),
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
            .unwrap()
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
