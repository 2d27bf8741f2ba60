use super::*;
use crate::doubles::{InMemoryHosting, InMemoryRegistry, package};
use crate::registry::ApprovalStatus::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/sagemaker";

fn staging() -> StageConfig {
    StageConfig {
        stage: Stage::Staging,
        endpoint_name: "churn-staging".into(),
        instance_type: "ml.m5.large".into(),
        instance_count: 1,
        capture: Some(CaptureSpec {
            destination_s3_uri: "s3://capture/churn".into(),
            sampling_percentage: 100,
            csv_content_types: vec!["text/csv".into()],
            json_content_types: vec!["application/json".into()],
        }),
        blue_green: Some(BlueGreen {
            routing: TrafficRouting::Canary { percent: 10 },
            wait_interval_seconds: 300,
            termination_wait_seconds: 120,
            maximum_execution_timeout_seconds: None,
        }),
        rollback_alarms: vec!["churn-5xx".into()],
        follow_alarm: None,
        autoscaling: None,
    }
}

/// One convergence step for a stage, as the handler does it.
async fn converge(reg: &InMemoryRegistry, hosting: &InMemoryHosting, stage: &StageConfig) -> Plan {
    let desired = desired_package(reg, "churn", stage.stage, None)
        .await
        .unwrap();
    let current = hosting
        .describe_endpoint(&stage.endpoint_name)
        .await
        .unwrap();
    let p = plan(
        stage,
        ROLE,
        desired.as_ref().map(|d| &d.summary),
        current.as_ref(),
    );
    apply(&p, hosting, &stage.endpoint_name).await.unwrap();
    p
}

fn arn(v: i64) -> String {
    format!("arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/{v}")
}

#[tokio::test]
async fn approve_update_reject_rollback_and_replay() {
    let (reg, hosting, st) = (
        InMemoryRegistry::default(),
        InMemoryHosting::default(),
        staging(),
    );
    reg.add(package("churn", 1, 0, Approved));
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::Create { .. }
    ));
    assert_eq!(hosting.serving("churn-staging"), Some(arn(1)));
    let cfg = hosting.snapshot().configs.values().next().unwrap().clone();
    assert_eq!(
        cfg.capture.as_ref().unwrap().destination_s3_uri,
        "s3://capture/churn"
    );

    reg.add(package("churn", 2, 10, Approved));
    let p = converge(&reg, &hosting, &st).await;
    assert!(
        matches!(&p, Plan::Update { deployment, .. } if deployment.rollback_alarms == ["churn-5xx"]),
        "{p:?}"
    );
    assert_eq!(hosting.serving("churn-staging"), Some(arn(2)));

    // Duplicate delivery: nothing more happens.
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::UpToDate { .. }
    ));
    assert_eq!(hosting.snapshot().updates, 1);

    // Reject v2: back to v1, reusing v1's model and config.
    reg.set_approval(&arn(2), Rejected);
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::Update { .. }
    ));
    assert_eq!(hosting.serving("churn-staging"), Some(arn(1)));
    assert_eq!(hosting.snapshot().models.len(), 2);
    assert_eq!(hosting.snapshot().configs.len(), 2);

    // Re-approve v2, then a late replay of v1's approval changes nothing.
    reg.set_approval(&arn(2), Approved);
    converge(&reg, &hosting, &st).await;
    let updates = hosting.snapshot().updates;
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::UpToDate { .. }
    ));
    assert_eq!(hosting.serving("churn-staging"), Some(arn(2)));
    assert_eq!(hosting.snapshot().updates, updates);
}

#[tokio::test]
async fn busy_endpoint_is_busy_unless_moving_to_the_desired_config() {
    let (reg, hosting, st) = (
        InMemoryRegistry::default(),
        InMemoryHosting::default(),
        staging(),
    );
    reg.add(package("churn", 1, 0, Approved));
    converge(&reg, &hosting, &st).await;
    hosting.hold_updates(true);
    reg.add(package("churn", 2, 10, Approved));
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::Update { .. }
    ));
    // Duplicate while the update runs: already moving there.
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::UpToDate { .. }
    ));
    // v3 approved while v2 still deploys: come back later.
    reg.add(package("churn", 3, 20, Approved));
    assert_eq!(
        converge(&reg, &hosting, &st).await,
        Plan::Busy {
            status: "Updating".into()
        }
    );
    hosting.finish("churn-staging");
    hosting.hold_updates(false);
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::Update { .. }
    ));
    assert_eq!(hosting.serving("churn-staging"), Some(arn(3)));
    assert_eq!(hosting.snapshot().updates, 2);
}

#[tokio::test]
async fn failed_endpoint_is_reported_not_touched() {
    let (reg, hosting, st) = (
        InMemoryRegistry::default(),
        InMemoryHosting::default(),
        staging(),
    );
    reg.add(package("churn", 1, 0, Approved));
    converge(&reg, &hosting, &st).await;
    hosting.set_status("churn-staging", "Failed");
    reg.add(package("churn", 2, 10, Approved));
    assert!(matches!(
        converge(&reg, &hosting, &st).await,
        Plan::Failed { .. }
    ));
    assert_eq!(hosting.snapshot().updates, 0);
}

#[tokio::test]
async fn production_serves_only_promoted_packages() {
    let (reg, hosting) = (InMemoryRegistry::default(), InMemoryHosting::default());
    let prod = StageConfig {
        stage: Stage::Production,
        endpoint_name: "churn-prod".into(),
        instance_count: 2,
        ..staging()
    };
    reg.add(package("churn", 1, 0, Approved));
    reg.add(package("churn", 2, 10, Approved));
    assert!(matches!(
        converge(&reg, &hosting, &prod).await,
        Plan::NothingToDeploy { .. }
    ));
    reg.put_customer_metadata(
        &arn(1),
        &promotion_key(Stage::Production),
        "2024-01-01T00:00:00Z",
    )
    .await
    .unwrap();
    assert!(matches!(
        converge(&reg, &hosting, &prod).await,
        Plan::Create { .. }
    ));
    assert_eq!(hosting.serving("churn-prod"), Some(arn(1)));
    // Its own config: instance count 2.
    let snap = hosting.snapshot();
    let cfg = &snap.configs[snap.endpoints["churn-prod"].config_name.as_ref().unwrap()];
    assert_eq!(cfg.instance_count, 2);
    // Promoting v2 moves production; rejecting v2 moves it back to v1.
    reg.put_customer_metadata(&arn(2), &promotion_key(Stage::Production), "t")
        .await
        .unwrap();
    converge(&reg, &hosting, &prod).await;
    assert_eq!(hosting.serving("churn-prod"), Some(arn(2)));
    reg.set_approval(&arn(2), Rejected);
    converge(&reg, &hosting, &prod).await;
    assert_eq!(hosting.serving("churn-prod"), Some(arn(1)));
}

#[test]
fn config_change_gives_a_new_endpoint_config() {
    let pkg = package("churn", 1, 0, Approved).summary;
    let current = EndpointState {
        name: "churn-staging".into(),
        status: "InService".into(),
        config_name: None,
        pending_config_name: None,
        failure_reason: None,
    };
    let Plan::Update { config: a, .. } = plan(&staging(), ROLE, Some(&pkg), Some(&current)) else {
        panic!()
    };
    let bigger = StageConfig {
        instance_type: "ml.m5.xlarge".into(),
        ..staging()
    };
    let Plan::Update { config: b, .. } = plan(&bigger, ROLE, Some(&pkg), Some(&current)) else {
        panic!()
    };
    assert_ne!(a.name, b.name);
    assert_eq!(a.model_name, b.model_name);
}

#[test]
fn stage_parsing() {
    assert_eq!(Stage::parse("Production"), Some(Stage::Production));
    assert_eq!(Stage::parse("prod"), Some(Stage::Production));
    assert_eq!(Stage::parse(" staging "), Some(Stage::Staging));
    assert_eq!(Stage::parse("qa"), None);
}

#[test]
fn stage_actions_serialise_to_their_names_and_pick_the_event() {
    for (a, s) in [
        (StageAction::Created, "created"),
        (StageAction::Updated, "updated"),
        (StageAction::UpToDate, "up_to_date"),
        (StageAction::NothingToDeploy, "nothing_to_deploy"),
        (StageAction::Busy, "busy"),
        (StageAction::Failed, "failed"),
        (StageAction::Error, "error"),
    ] {
        assert_eq!(serde_json::to_value(a).unwrap(), s);
        assert_eq!(a.as_str(), s);
        assert_eq!(a, s);
        let expected = if matches!(a, StageAction::Created | StageAction::Updated) {
            converge::MODEL_DEPLOYED
        } else {
            converge::DEPLOYMENT_SKIPPED
        };
        assert_eq!(a.detail_type(), expected);
    }
}

#[test]
fn triggers_of_other_groups_and_unmanaged_or_busy_endpoints_are_ignored() {
    let stages = [staging()];
    let endpoint = |endpoint: &str, status: &str| Trigger::EndpointStateChange {
        endpoint: endpoint.into(),
        status: status.into(),
    };
    let ignore = |t: &Trigger| trigger::ignore_reason(t, "churn", &stages);
    assert!(trigger::in_service("IN_SERVICE") && trigger::in_service("InService"));
    assert!(!trigger::in_service("Updating"));
    assert_eq!(ignore(&endpoint("churn-staging", "IN_SERVICE")), None);
    assert!(
        ignore(&endpoint("churn-staging", "UPDATING"))
            .unwrap()
            .contains("only a return to service")
    );
    assert!(
        ignore(&endpoint("other", "IN_SERVICE"))
            .unwrap()
            .contains("not one this deployment manages")
    );
    let promotion = |group: &str| Trigger::Promotion {
        group: group.into(),
        package_arn: None,
        stage: Stage::Production,
    };
    assert_eq!(ignore(&promotion("churn")), None);
    assert!(
        ignore(&promotion("fraud"))
            .unwrap()
            .contains("not \"fraud\"")
    );
}

#[test]
fn only_approved_completed_packages_of_the_group_are_promotable() {
    let p = package("churn", 1, 0, Approved);
    assert_eq!(promote::check_promotable(&p, "churn"), Ok(()));
    assert!(
        promote::check_promotable(&p, "fraud")
            .unwrap_err()
            .contains("belongs to group")
    );
    let rejected = package("churn", 2, 0, Rejected);
    assert!(
        promote::check_promotable(&rejected, "churn")
            .unwrap_err()
            .contains("only approved, completed packages")
    );
}
