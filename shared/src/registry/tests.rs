use super::*;
use crate::doubles::{InMemoryRegistry, package};
use crate::error::{AwsErrorKind, Classify};

use ApprovalStatus::*;

#[tokio::test]
async fn newest_approved_wins_over_older_approved_and_newer_pending() {
    let reg = InMemoryRegistry::default();
    reg.add(package("churn", 1, 0, Approved));
    reg.add(package("churn", 2, 10, Approved));
    reg.add(package("churn", 3, 20, PendingManualApproval));
    reg.add(package("other", 9, 99, Approved));
    let best = latest_approved(&reg, "churn").await.unwrap().unwrap();
    assert_eq!(best.summary.version, Some(2));
}

#[tokio::test]
async fn follows_every_page() {
    // Page size 7 over 150 packages; the newest approved one is created last and listed first,
    // but an older *version* with the same creation time sits on the last page: the tie is broken
    // by version, which is only visible after reading every page.
    let reg = InMemoryRegistry::with_page_size(7);
    for v in 1..=150 {
        reg.add(package("big", v, v, Approved));
    }
    let mut tie = package("big", 151, 150, Approved);
    tie.summary.creation_time =
        reg.list_packages("big", None, None).await.unwrap().packages[0].creation_time;
    reg.add(tie);
    let calls_before = reg.list_calls();
    let best = latest_approved(&reg, "big").await.unwrap().unwrap();
    assert_eq!(best.summary.version, Some(151));
    assert_eq!(reg.list_calls() - calls_before, 151_usize.div_ceil(7));
}

#[tokio::test]
async fn none_approved_and_rejected_after_approval() {
    let reg = InMemoryRegistry::default();
    reg.add(package("g", 1, 0, PendingManualApproval));
    assert!(latest_approved(&reg, "g").await.unwrap().is_none());
    reg.add(package("g", 2, 5, Approved));
    assert_eq!(
        latest_approved(&reg, "g")
            .await
            .unwrap()
            .unwrap()
            .summary
            .version,
        Some(2)
    );
    reg.set_approval(
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2",
        Rejected,
    );
    assert!(latest_approved(&reg, "g").await.unwrap().is_none());
}

#[tokio::test]
async fn skips_packages_that_are_not_completed() {
    let reg = InMemoryRegistry::default();
    reg.add(package("g", 1, 0, Approved));
    let mut failed = package("g", 2, 5, Approved);
    failed.summary.status = "Failed".into();
    reg.add(failed);
    assert_eq!(
        latest_approved(&reg, "g")
            .await
            .unwrap()
            .unwrap()
            .summary
            .version,
        Some(1)
    );
}

#[tokio::test]
async fn errors_propagate_with_their_class() {
    let reg = InMemoryRegistry::default();
    reg.add(package("g", 1, 0, Approved));
    reg.fail_next(AwsError::classify(
        "sagemaker",
        "ListModelPackages",
        Some("ThrottlingException"),
        Some(400),
        "Rate exceeded",
    ));
    let err = latest_approved(&reg, "g").await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::Throttled);
    assert_eq!(err.error_type(), "Retryable.Throttled");
    // The next call succeeds.
    assert!(latest_approved(&reg, "g").await.unwrap().is_some());
}

#[test]
fn baselines_prefer_drift_check_then_model_metrics() {
    let mut p = package("g", 1, 0, Approved);
    assert_eq!(
        p.data_quality_baseline().unwrap().statistics.as_deref(),
        Some("s3://baselines/g/1/statistics.json")
    );
    p.drift_check_data_quality = Baseline::default();
    assert!(p.data_quality_baseline().is_none());
    p.metrics_data_quality = Baseline {
        statistics: Some("s3://m/stats.json".into()),
        constraints: None,
    };
    assert_eq!(
        p.data_quality_baseline().unwrap().statistics.as_deref(),
        Some("s3://m/stats.json")
    );
    p.metrics_model_quality = Baseline {
        statistics: None,
        constraints: Some("s3://m/mq.json".into()),
    };
    assert_eq!(
        p.model_quality_baseline().unwrap().constraints.as_deref(),
        Some("s3://m/mq.json")
    );
}

#[test]
fn approved_model_output_has_the_sample_keys() {
    let mut p = package("churn", 4, 0, Approved);
    p.customer_metadata
        .insert("ModelName".into(), "churn-xgb".into());
    let out = serde_json::to_value(ApprovedModel::from(&p)).unwrap();
    assert_eq!(out["statusCode"], 200);
    assert_eq!(
        out["modelArn"],
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/4"
    );
    assert_eq!(out["modelName"], "churn-xgb");
    assert_eq!(
        out["s3uriStatistics"],
        "s3://baselines/churn/4/statistics.json"
    );
    assert_eq!(
        out["s3uriConstraints"],
        "s3://baselines/churn/4/constraints.json"
    );
    assert_eq!(out["modelPackageVersion"], 4);
    assert_eq!(out["modelApprovalStatus"], "Approved");
    assert_eq!(
        out["containers"][0]["modelDataUrl"],
        "s3://models/churn/4/model.tar.gz"
    );
    assert_eq!(out["creationTime"], "2024-01-01T00:00:00Z");
    assert!(out["modelQualityBaseline"].is_null());
}

#[test]
fn approval_status_round_trips_unknown_values() {
    assert_eq!(ApprovalStatus::parse("Approved"), Approved);
    let other = ApprovalStatus::parse("Archived");
    assert_eq!(other.as_str(), "Archived");
    assert_eq!(serde_json::to_string(&other).unwrap(), "\"Archived\"");
    assert_eq!(serde_json::to_string(&Approved).unwrap(), "\"Approved\"");
}
