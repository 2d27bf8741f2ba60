//! get-approved-model against the emulator: the real SageMaker adapter over HTTP.

use std::sync::Arc;

use aws_sdk_sagemaker::types::{ModelApprovalStatus, ModelPackageSortBy};
use driftloop::adapters::sagemaker::SageMaker;
use driftloop::error::Classify;
use driftloop::registry::{ApprovalStatus, list_all};
use driftloop_tests::seed::{create_group, create_package, set_approval};
use driftloop_tests::{aws, emulator, unique};
use get_approved_model::{Config, Deps, handle};
use serde_json::json;

async fn deps() -> (Deps, aws_sdk_sagemaker::Client) {
    let sm = aws().await.sagemaker();
    (
        Deps {
            registry: Arc::new(SageMaker::new(sm.clone())),
            config: Config::default(),
        },
        sm,
    )
}

#[tokio::test]
async fn none_approved_is_its_own_permanent_error() {
    let (deps, sm) = deps().await;
    let group = unique("none");
    create_group(&sm, &group).await;
    create_package(&sm, &group, "PendingManualApproval", 1, true).await;
    create_package(&sm, &group, "Rejected", 2, true).await;
    let err = handle(json!({"model_package_group_name": group}), &deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.NoApprovedPackage");
    assert!(err.to_string().contains(&group));
}

#[tokio::test]
async fn newer_pending_above_an_approved_one() {
    let (deps, sm) = deps().await;
    let group = unique("pending");
    create_group(&sm, &group).await;
    create_package(&sm, &group, "Approved", 1, true).await;
    let v2 = create_package(&sm, &group, "Approved", 2, true).await;
    create_package(&sm, &group, "PendingManualApproval", 3, true).await;
    let out = handle(json!({"ModelPackageGroupName": group}), &deps)
        .await
        .unwrap();
    assert_eq!(out.model_package_arn, v2);
    assert_eq!(out.model_package_version, Some(2));
    assert_eq!(out.model_name, format!("{group}-model-2"));
    assert_eq!(
        out.s3uri_statistics,
        format!("s3://baselines/{group}/2/statistics.json")
    );
    assert_eq!(
        out.containers[0].model_data_url.as_deref(),
        Some(format!("s3://models/{group}/2/model.tar.gz").as_str())
    );
}

#[tokio::test]
async fn more_than_one_hundred_packages_newest_wins_where_the_sample_takes_the_oldest() {
    let (deps, sm) = deps().await;
    let group = unique("paged");
    create_group(&sm, &group).await;
    let mut arns = Vec::new();
    for n in 1..=130 {
        let approval = if n % 10 == 0 { "Rejected" } else { "Approved" };
        arns.push(create_package(&sm, &group, approval, n, n % 2 == 0).await);
    }
    // The newest (130) is rejected; 129 is the newest approved.
    let out = handle(json!({"model_package_group_name": group}), &deps)
        .await
        .unwrap();
    assert_eq!(out.model_package_arn, arns[128]);
    assert_eq!(out.model_package_version, Some(129));

    // The adapter follows NextToken: 117 approved packages do not fit one page of 100.
    let registry = SageMaker::new(sm.clone());
    let approved = list_all(&registry, &group, Some(&ApprovalStatus::Approved))
        .await
        .unwrap();
    assert_eq!(approved.len(), 117);
    assert_eq!(approved[0].arn, arns[128], "listed newest first");

    // What AWS's sample does: no SortOrder (default Ascending), first item. It gets the oldest.
    let naive = sm
        .list_model_packages()
        .model_package_group_name(&group)
        .model_approval_status(ModelApprovalStatus::Approved)
        .sort_by(ModelPackageSortBy::CreationTime)
        .send()
        .await
        .unwrap();
    let first = naive.model_package_summary_list()[0]
        .model_package_arn()
        .unwrap();
    assert_eq!(
        first, arns[0],
        "the sample's query returns the oldest approved package first"
    );
    assert_ne!(first, out.model_package_arn);
}

#[tokio::test]
async fn approved_then_rejected_falls_back_to_the_previous_approval() {
    let (deps, sm) = deps().await;
    let group = unique("reject");
    create_group(&sm, &group).await;
    let v1 = create_package(&sm, &group, "Approved", 1, true).await;
    let v2 = create_package(&sm, &group, "Approved", 2, true).await;
    assert_eq!(
        handle(json!({"model_package_group_name": group}), &deps)
            .await
            .unwrap()
            .model_package_arn,
        v2
    );
    set_approval(&sm, &v2, "Rejected").await;
    let out = handle(json!({"model_package_group_name": group}), &deps)
        .await
        .unwrap();
    assert_eq!(out.model_package_arn, v1);
    // The metadata survived the approval update (the emulator's compat layer keeps it, as AWS does).
    assert_eq!(out.model_name, format!("{group}-model-1"));
}

#[tokio::test]
async fn missing_baselines_are_empty_strings() {
    let (deps, sm) = deps().await;
    let group = unique("nobase");
    create_group(&sm, &group).await;
    create_package(&sm, &group, "Approved", 1, false).await;
    let out = handle(json!({"model_package_group_name": group}), &deps)
        .await
        .unwrap();
    // A LambdaStep's String outputs cannot be null: absent baselines are empty strings.
    assert_eq!(out.s3uri_statistics, "");
    assert_eq!(out.s3uri_constraints, "");
    assert_eq!(out.data_quality_baseline, None);
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["s3uriStatistics"], "");
    assert_eq!(json["s3uriConstraints"], "");
}

#[tokio::test]
async fn throttled_first_call_recovers() {
    let (deps, sm) = deps().await;
    let group = unique("throttle");
    create_group(&sm, &group).await;
    let v1 = create_package(&sm, &group, "Approved", 1, true).await;
    emulator().inject_fault("ListModelPackages", 1, "throttle", &group);
    let out = handle(json!({"model_package_group_name": group}), &deps)
        .await
        .unwrap();
    assert_eq!(out.model_package_arn, v1);
    assert_eq!(
        emulator().fault_remaining(&group),
        Some(0),
        "the injected fault was consumed"
    );
}

#[tokio::test]
async fn throttling_beyond_the_sdk_retries_is_a_retryable_error() {
    let (deps, sm) = deps().await;
    let group = unique("throttle-hard");
    create_group(&sm, &group).await;
    create_package(&sm, &group, "Approved", 1, true).await;
    // The SDK's standard retry mode makes 3 attempts: throttle all of them.
    emulator().inject_fault("ListModelPackages", 3, "throttle", &group);
    let err = handle(json!({"model_package_group_name": group}), &deps)
        .await
        .unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.Throttled"
    );
}
