use super::*;
use driftloop::deploy::converge::{DEPLOYMENT_SKIPPED, MODEL_DEPLOYED};
use driftloop::doubles::RecordingEvents;
use driftloop::doubles::{
    InMemoryAlarms, InMemoryHosting, InMemoryRegistry, InMemoryStore, package,
};
use driftloop::registry::{ApprovalStatus::*, Baseline};
use serde_json::json;

const APPROVED: &str = include_str!("../../../events/deploy-package-approved.json");
const REJECTED: &str = include_str!("../../../events/deploy-package-rejected.json");
const PROMOTION: &str = include_str!("../../../events/deploy-promotion.json");
const IN_SERVICE: &str = include_str!("../../../events/deploy-endpoint-in-service.json");

fn in_service_event(endpoint: &str, status: &str) -> Value {
    let mut e = ev(IN_SERVICE);
    e["detail"]["EndpointName"] = json!(endpoint);
    e["detail"]["EndpointStatus"] = json!(status);
    e
}
const GROUP: &str = "driftloop-demo";

struct World {
    registry: Arc<InMemoryRegistry>,
    hosting: Arc<InMemoryHosting>,
    alarms: Arc<InMemoryAlarms>,
    store: Arc<InMemoryStore>,
    events: Arc<RecordingEvents>,
    deps: Deps,
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MODEL_PACKAGE_GROUP_NAME", GROUP),
        (
            "SAGEMAKER_EXECUTION_ROLE_ARN",
            "arn:aws:iam::123456789012:role/sm",
        ),
        ("STAGING_ENDPOINT_NAME", "demo-staging"),
        ("PRODUCTION_ENDPOINT_NAME", "demo-prod"),
        ("PRODUCTION_INSTANCE_COUNT", "2"),
        ("PRODUCTION_DEPLOYMENT", "CANARY:10"),
        ("STAGING_ALARM_NAME", "demo-f2"),
        ("STAGING_ALARM_METRIC", "f2"),
        ("DATA_CAPTURE_S3_URI", "s3://capture-bucket/capture"),
        ("DATA_CAPTURE_SAMPLING_PERCENTAGE", "50"),
    ]
}

fn world(vars: &[(&str, &str)]) -> World {
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = Config::from_env(&map).unwrap();
    let (registry, hosting) = (
        Arc::new(InMemoryRegistry::default()),
        Arc::new(InMemoryHosting::default()),
    );
    let (alarms, store, events) = (
        Arc::new(InMemoryAlarms::default()),
        Arc::new(InMemoryStore::default()),
        Arc::new(RecordingEvents::default()),
    );
    let deps = Deps {
        registry: registry.clone(),
        hosting: hosting.clone(),
        alarms: alarms.clone(),
        store: store.clone(),
        events: events.clone(),
        config,
    };
    World {
        registry,
        hosting,
        alarms,
        store,
        events,
        deps,
    }
}

fn arn(v: i64) -> String {
    format!("arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{v}")
}

fn ev(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn with_model_quality(
    mut p: driftloop::registry::ModelPackage,
    uri: &str,
) -> driftloop::registry::ModelPackage {
    p.drift_check_model_quality = Baseline {
        statistics: None,
        constraints: Some(uri.to_owned()),
    };
    p
}

#[tokio::test]
async fn approval_creates_staging_with_capture_and_sets_the_alarm() {
    let w = world(&env());
    w.alarms
        .alarms
        .lock()
        .unwrap()
        .insert("demo-f2".into(), (0.5, "LessThanThreshold".into()));
    w.store.insert(
        "s3://baselines/mq/constraints.json",
        r#"{"binary_classification_constraints":{"f2":{"threshold":0.71,"comparison_operator":"LessThanThreshold"}}}"#,
    );
    w.registry.add(with_model_quality(
        package(GROUP, 1, 0, Approved),
        "s3://baselines/mq/constraints.json",
    ));
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(out.stages[0].action, "created");
    assert_eq!(out.stages[0].package_arn.as_deref(), Some(arn(1).as_str()));
    assert_eq!(
        out.stages[1].action, "nothing_to_deploy",
        "production waits for a promotion"
    );
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
    let snap = w.hosting.snapshot();
    let cfg = snap.configs.values().next().unwrap();
    assert_eq!(cfg.capture.as_ref().unwrap().sampling_percentage, 50);
    assert_eq!(
        cfg.capture.as_ref().unwrap().destination_s3_uri,
        "s3://capture-bucket/capture"
    );
    // The alarm follows the deployed package.
    assert_eq!(
        w.alarms.alarms.lock().unwrap()["demo-f2"],
        (0.71, "LessThanThreshold".to_owned())
    );
    let alarm = out.stages[0].alarm.as_ref().unwrap();
    assert_eq!(
        (alarm.threshold, alarm.previous_threshold),
        (Some(0.71), Some(0.5))
    );
    // One event per stage.
    assert_eq!(w.events.of_type(MODEL_DEPLOYED).len(), 1);
    assert_eq!(w.events.of_type(DEPLOYMENT_SKIPPED).len(), 1);
    let deployed = &w.events.of_type(MODEL_DEPLOYED)[0];
    assert_eq!(deployed.detail["endpoint"], "demo-staging");
    assert_eq!(deployed.detail["stage"], "staging");
    assert_eq!(deployed.detail["packageArn"], arn(1));
}

impl World {
    async fn deps_handle(&self, event: &str) -> Result<Output, Error> {
        handle(ev(event), &self.deps).await
    }
}

#[tokio::test]
async fn update_rollback_on_rejection_and_no_downgrade_on_replay() {
    let w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    w.registry.add(package(GROUP, 2, 10, Approved));
    assert_eq!(
        w.deps_handle(APPROVED).await.unwrap().stages[0].action,
        "updated"
    );
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(2)));
    // Duplicate delivery: one update only.
    assert_eq!(
        w.deps_handle(APPROVED).await.unwrap().stages[0].action,
        "up_to_date"
    );
    assert_eq!(w.hosting.snapshot().updates, 1);
    // v2 rejected: back to v1.
    w.registry.set_approval(&arn(2), Rejected);
    assert_eq!(
        w.deps_handle(REJECTED).await.unwrap().stages[0].action,
        "updated"
    );
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
    // Re-approved; a replayed (old) approval event then changes nothing.
    w.registry.set_approval(&arn(2), Approved);
    w.deps_handle(APPROVED).await.unwrap();
    let updates = w.hosting.snapshot().updates;
    w.deps_handle(REJECTED).await.unwrap();
    assert_eq!(w.hosting.snapshot().updates, updates);
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(2)));
}

#[tokio::test]
async fn promotion_deploys_production_with_its_own_config() {
    let w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.registry.add(package(GROUP, 2, 10, Approved));
    let out = w.deps_handle(PROMOTION).await.unwrap();
    assert_eq!(out.promoted.as_deref(), Some(arn(2).as_str()));
    assert_eq!(out.stages[1].action, "created");
    assert_eq!(w.hosting.serving("demo-prod"), Some(arn(2)));
    let snap = w.hosting.snapshot();
    let prod_cfg = &snap.configs[snap.endpoints["demo-prod"].config_name.as_ref().unwrap()];
    assert_eq!(prod_cfg.instance_count, 2);
    // v3 approved later: staging moves, production stays on the promoted v2.
    w.registry.add(package(GROUP, 3, 20, Approved));
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(
        (out.stages[0].action.as_str(), out.stages[1].action.as_str()),
        ("updated", "up_to_date")
    );
    assert_eq!(w.hosting.serving("demo-prod"), Some(arn(2)));
}

#[tokio::test]
async fn promoting_a_rejected_package_is_refused() {
    let w = world(&env());
    w.registry.add(package(GROUP, 2, 10, Rejected));
    let err = w.deps_handle(PROMOTION).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.NotPromotable");
    assert!(err.to_string().contains("Rejected"), "{err}");
    assert!(w.hosting.snapshot().endpoints.is_empty());
}

#[tokio::test]
async fn busy_endpoint_is_a_retryable_error_and_other_stages_still_converge() {
    let w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    w.hosting.set_status("demo-staging", "Updating");
    w.registry.add(package(GROUP, 2, 10, Approved));
    let err = w.deps_handle(APPROVED).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable.EndpointBusy");
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.EndpointBusy"
    );
    assert_eq!(
        w.hosting.serving("demo-staging"),
        Some(arn(1)),
        "nothing changed on a busy endpoint"
    );
    // Once in service again, the redelivered event deploys.
    w.hosting.set_status("demo-staging", "InService");
    assert_eq!(
        w.deps_handle(APPROVED).await.unwrap().stages[0].action,
        "updated"
    );
}

#[tokio::test]
async fn failed_endpoint_is_reported_as_a_permanent_error() {
    let w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    w.hosting.set_status("demo-staging", "Failed");
    let err = w.deps_handle(APPROVED).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.EndpointFailed");
    let skipped = w.events.of_type(DEPLOYMENT_SKIPPED);
    assert!(
        skipped.iter().any(|e| e.detail["action"] == "failed"),
        "the failure is announced"
    );
}

#[tokio::test]
async fn other_groups_and_other_events() {
    let w = world(&env());
    let mut e = ev(APPROVED);
    e["detail"]["ModelPackageGroupName"] = json!("someone-else");
    let out = handle(e, &w.deps).await.unwrap();
    assert!(out.ignored.unwrap().contains("someone-else"));
    assert!(out.stages.is_empty());
    let err = handle(
        json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
        &w.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.BadEvent");
    assert!(
        err.to_string().contains("Model Promotion Requested"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_constraints_do_not_fail_the_deployment() {
    let w = world(&env());
    w.alarms
        .alarms
        .lock()
        .unwrap()
        .insert("demo-f2".into(), (0.5, "LessThanThreshold".into()));
    w.registry.add(package(GROUP, 1, 0, Approved));
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(out.stages[0].action, "created");
    assert!(
        out.stages[0]
            .alarm
            .as_ref()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("no model-quality constraints")
    );
    assert_eq!(w.alarms.alarms.lock().unwrap()["demo-f2"].0, 0.5);
}

#[test]
fn config_errors_name_the_variable() {
    let mut vars = env();
    vars.retain(|(k, _)| *k != "STAGING_ENDPOINT_NAME");
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        Config::from_env(&map).unwrap_err().var(),
        "STAGING_ENDPOINT_NAME"
    );
    for (var, value) in [
        ("PRODUCTION_DEPLOYMENT", "CANARY"),
        ("DATA_CAPTURE_SAMPLING_PERCENTAGE", "0"),
        ("STAGING_INSTANCE_COUNT", "0"),
        ("DATA_CAPTURE_S3_URI", "capture"),
    ] {
        let mut vars = env();
        vars.retain(|(k, _)| *k != var);
        vars.push((var, value));
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            Config::from_env(&map).unwrap_err().var(),
            var,
            "{var}={value}"
        );
    }
    let c = world(&env()).deps.config;
    assert_eq!(
        c.stages[1].blue_green.as_ref().unwrap().routing,
        TrafficRouting::Canary { percent: 10 }
    );
    assert!(c.stages[0].blue_green.is_none());
}

#[test]
fn samples_parse_to_triggers() {
    assert!(
        matches!(parse_trigger(ev(APPROVED)).unwrap(), Trigger::PackageStateChange { approval: Some(a), .. } if a == "Approved")
    );
    assert!(
        matches!(parse_trigger(ev(REJECTED)).unwrap(), Trigger::PackageStateChange { approval: Some(a), .. } if a == "Rejected")
    );
    assert_eq!(
        parse_trigger(ev(PROMOTION)).unwrap(),
        Trigger::Promotion {
            group: GROUP.into(),
            package_arn: Some(arn(2)),
            stage: Stage::Production
        }
    );
}

#[tokio::test]
async fn endpoint_back_in_service_unblocks_a_deployment_refused_while_busy() {
    let w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    w.hosting.set_status("demo-staging", "Updating");
    w.registry.add(package(GROUP, 2, 10, Approved));
    assert_eq!(
        w.deps_handle(APPROVED).await.unwrap_err().error_type(),
        "Retryable.EndpointBusy"
    );
    // Still updating: the event is not a return to service.
    let out = handle(in_service_event("demo-staging", "UPDATING"), &w.deps)
        .await
        .unwrap();
    assert!(out.ignored.unwrap().contains("UPDATING"));
    // Back in service: the pending deployment happens, without the original event.
    w.hosting.set_status("demo-staging", "InService");
    let out = handle(in_service_event("demo-staging", "IN_SERVICE"), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(2)));
    // Its own update ending fires the event again: nothing more to do.
    let out = handle(in_service_event("demo-staging", "IN_SERVICE"), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "up_to_date");
    assert_eq!(w.hosting.snapshot().updates, 1);
}

#[tokio::test]
async fn endpoints_it_does_not_manage_are_ignored() {
    let w = world(&env());
    let out = handle(ev(IN_SERVICE), &w.deps).await.unwrap();
    assert!(out.ignored.unwrap().contains("churn-staging"));
    assert!(out.stages.is_empty());
    assert!(
        matches!(parse_trigger(ev(IN_SERVICE)).unwrap(), Trigger::EndpointStateChange { ref status, .. } if status == "IN_SERVICE")
    );
}

/// A promotion the control gate admitted is recorded on the package with who asked (the account
/// and event id EventBridge set, the control rule); an ungated one records no requester.
#[tokio::test]
async fn a_promotion_through_the_control_bus_records_who_asked() {
    use driftloop::control::Gate;
    use driftloop::deploy::promote::requester_key;
    use driftloop::registry::ModelRegistry;
    let rule = "arn:aws:events:us-east-1:123456789012:rule/loop-control/loop-DeployOnApprovalPromotionRule-X";
    let gate = Gate {
        bus: Some("loop-control".into()),
    };
    let w = world(&env());
    w.registry.add(package(GROUP, 2, 10, Approved));
    let admitted = gate
        .admit(json!({"controlRule": rule, "event": ev(PROMOTION)}))
        .unwrap();
    handle(admitted, &w.deps).await.unwrap();
    let key = requester_key(Stage::Production);
    let recorded = w.registry.describe_package(&arn(2)).await.unwrap();
    assert_eq!(
        recorded.customer_metadata.get(&key).map(String::as_str),
        Some(
            "account=123456789012;event=3b0e8c52-9d4f-4f7e-a1c6-5e2d7b8f9a10;rule=loop-DeployOnApprovalPromotionRule-X"
        )
    );
    // The raw event is refused by the gate, and handled without it records no requester.
    assert!(gate.admit(ev(PROMOTION)).is_err());
    let w = world(&env());
    w.registry.add(package(GROUP, 2, 10, Approved));
    w.deps_handle(PROMOTION).await.unwrap();
    let recorded = w.registry.describe_package(&arn(2)).await.unwrap();
    assert!(!recorded.customer_metadata.contains_key(&key));
}
