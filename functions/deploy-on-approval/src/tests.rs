use super::*;
use driftloop::deploy::converge::{DEPLOYMENT_SKIPPED, MODEL_DEPLOYED};
use driftloop::doubles::RecordingEvents;
use driftloop::doubles::{
    InMemoryAlarms, InMemoryDashboards, InMemoryHosting, InMemoryRegistry, InMemoryScaling,
    InMemoryStore, LaggingRegistry, RecordingMetrics, package,
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
    scaling: Arc<InMemoryScaling>,
    metrics: Arc<RecordingMetrics>,
    dashboards: Arc<InMemoryDashboards>,
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
    let scaling = Arc::new(InMemoryScaling::default());
    let metrics = Arc::new(RecordingMetrics::default());
    let dashboards = Arc::new(InMemoryDashboards::default());
    let deps = Deps {
        registry: registry.clone(),
        hosting: hosting.clone(),
        alarms: alarms.clone(),
        scaling: scaling.clone(),
        store: store.clone(),
        events: events.clone(),
        metrics: metrics.clone(),
        dashboards: dashboards.clone(),
        catalogue: None,
        config,
    };
    World {
        registry,
        hosting,
        alarms,
        store,
        events,
        scaling,
        metrics,
        dashboards,
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
        json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}),
        &w.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.BadEvent");
    assert!(
        err.to_string().contains("Model Promotion Requested"),
        "{err}"
    );
    // An S3 Object Created (the catalogue's reconcile trigger) must name its object.
    let err = handle(
        json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
        &w.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.BadEvent");
    assert!(err.to_string().contains("detail.object.key"), "{err}");
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

// --- issue 14: failed and rolled-back updates, lagging reads, publishing failures -----------

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn record(w: &World, v: i64, stage: &str) -> Option<String> {
    let p = described(w, v);
    p.customer_metadata
        .get(&format!("driftloop:deploy:{stage}"))
        .cloned()
}

fn described(w: &World, v: i64) -> driftloop::registry::ModelPackage {
    w.registry
        .packages_snapshot()
        .into_iter()
        .find(|p| p.summary.arn == arn(v))
        .unwrap()
}

#[tokio::test]
async fn a_failed_update_is_announced_once_recorded_and_not_retried() {
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
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(
        record(&w, 1, "staging").unwrap().split('|').next(),
        Some("deployed")
    );
    w.registry.add(with_model_quality(
        package(GROUP, 2, 10, Approved),
        "s3://baselines/mq/constraints.json",
    ));
    w.hosting
        .fail_next_update("Failed to download model data for container \"container_1\"");
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(
        w.hosting.serving("demo-staging"),
        Some(arn(1)),
        "back on v1"
    );
    assert_eq!(
        w.alarms.alarms.lock().unwrap()["demo-f2"].0,
        0.5,
        "the alarm does not follow a package that does not serve"
    );
    assert!(out.stages[0].alarm.is_none());
    assert!(record(&w, 2, "staging").unwrap().starts_with("updating|"));
    // The endpoint's return to service, delivered several times.
    for _ in 0..4 {
        handle(in_service_event("demo-staging", "IN_SERVICE"), &w.deps)
            .await
            .unwrap();
    }
    // ... and the original approval redelivered.
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(out.stages[0].action, "held", "{:?}", out.stages[0]);
    assert!(
        out.stages[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("Failed to download")
    );
    assert_eq!(w.hosting.snapshot().updates, 1, "no further UpdateEndpoint");
    let failed = w.events.of_type("Deployment Failed");
    assert_eq!(failed.len(), 1, "one failure event");
    let d = &failed[0].detail;
    assert_eq!(d["stage"], "staging");
    assert_eq!(d["packageArn"], arn(2));
    assert_eq!(
        d["reason"],
        "Failed to download model data for container \"container_1\""
    );
    assert_eq!(failed[0].source, "driftloop");
    assert_eq!(failed[0].resources, [arn(2)]);
    assert!(w.events.of_type("Deployment Rolled Back").is_empty());
    let rec = record(&w, 2, "staging").unwrap();
    assert!(rec.starts_with("failed|demo-staging-v2-"), "{rec}");
    assert!(rec.ends_with("|Failed to download model data for container \"container_1\""));
    assert_eq!(w.alarms.alarms.lock().unwrap()["demo-f2"].0, 0.5);
    // Something changes: v3 is approved and goes out.
    w.registry.add(package(GROUP, 3, 20, Approved));
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(3)));
}

#[tokio::test]
async fn a_rolled_back_blue_green_update_is_announced_once_and_retried_only_on_request() {
    let mut vars = env();
    vars.push(("PRODUCTION_ROLLBACK_ALARMS", "demo-5xx,demo-latency"));
    let w = world(&vars);
    w.registry.add(package(GROUP, 1, 0, Approved));
    let mut promo = ev(PROMOTION);
    promo["detail"]["ModelPackageArn"] = json!(arn(1));
    handle(promo.clone(), &w.deps).await.unwrap();
    assert_eq!(w.hosting.serving("demo-prod"), Some(arn(1)));
    w.registry.add(package(GROUP, 2, 10, Approved));
    w.hosting.hold_updates(true);
    let out = w.deps_handle(PROMOTION).await.unwrap();
    assert_eq!(out.stages[1].action, "updated");
    let deployment = w.hosting.snapshot().last_deployment.unwrap();
    assert_eq!(deployment.rollback_alarms, ["demo-5xx", "demo-latency"]);
    assert!(deployment.blue_green.is_some());
    // The canary trips an alarm: SageMaker rolls back to v1.
    w.hosting.roll_back_next_update(None);
    w.hosting.finish("demo-prod");
    w.hosting.finish("demo-staging");
    let updates = w.hosting.snapshot().updates;
    for _ in 0..3 {
        handle(in_service_event("demo-prod", "IN_SERVICE"), &w.deps)
            .await
            .unwrap();
    }
    let rolled = w.events.of_type("Deployment Rolled Back");
    assert_eq!(rolled.len(), 1);
    assert_eq!(rolled[0].detail["stage"], "production");
    assert!(
        rolled[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains("rolled back")
    );
    assert!(w.events.of_type("Deployment Failed").is_empty());
    assert_eq!(w.hosting.snapshot().updates, updates, "not retried");
    assert!(
        record(&w, 2, "production")
            .unwrap()
            .starts_with("rolledBack|")
    );
    // An explicit request retries it.
    w.hosting.hold_updates(false);
    let out = w.deps_handle(PROMOTION).await.unwrap();
    assert_eq!(out.stages[1].action, "updated");
    assert_eq!(w.hosting.serving("demo-prod"), Some(arn(2)));
    assert!(
        record(&w, 2, "production")
            .unwrap()
            .starts_with("deployed|")
    );
}

#[tokio::test]
async fn a_lagging_registry_read_does_not_keep_a_rejected_package() {
    let mut w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.registry.add(package(GROUP, 2, 10, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(2)));
    let lagging = Arc::new(LaggingRegistry::new(w.registry.clone()));
    w.deps.registry = lagging.clone();
    // v2 is rejected; the read right after the event still shows it approved.
    lagging.freeze(GROUP).await;
    w.registry.set_approval(&arn(2), Rejected);
    let mut rejected = ev(REJECTED);
    rejected["time"] = json!(now_ms());
    let out = handle(rejected, &w.deps).await.unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
    // Redelivered with the read still lagging: it stays on v1.
    let mut again = ev(REJECTED);
    again["time"] = json!(now_ms());
    assert_eq!(
        handle(again, &w.deps).await.unwrap().stages[0].action,
        "up_to_date"
    );
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
}

#[tokio::test]
async fn a_lagging_registry_read_does_not_settle_on_an_older_package() {
    let mut w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.registry.add(package(GROUP, 2, 10, Approved));
    // Sent back to review after the (sample) approval event: the registry's word is newer.
    w.registry.set_approval(&arn(2), PendingManualApproval);
    w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
    let lagging = Arc::new(LaggingRegistry::new(w.registry.clone()));
    w.deps.registry = lagging.clone();
    lagging.freeze(GROUP).await;
    w.registry.set_approval(&arn(2), Approved);
    let mut approved = ev(APPROVED);
    approved["time"] = json!(now_ms());
    let out = handle(approved, &w.deps).await.unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(2)));
    // A replay of an old event (its time before the registry's last change) does not undo a
    // later decision: v2 rejected after this approval, the old approval replayed.
    lagging.catch_up();
    w.registry.set_approval(&arn(2), Rejected);
    let out = handle(ev(REJECTED), &w.deps).await.unwrap();
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)), "{out:?}");
    let out = w.deps_handle(APPROVED).await.unwrap();
    assert_eq!(out.stages[0].action, "up_to_date");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
}

#[tokio::test]
async fn a_failed_publish_does_not_keep_production_from_converging() {
    let w = world(&env());
    w.registry.add(package(GROUP, 2, 10, Approved));
    w.events
        .fail_next(driftloop::publish::PublishError::Aws(AwsError::classify(
            "events",
            "PutEvents",
            Some("ThrottlingException"),
            Some(400),
            "Rate exceeded",
        )));
    let err = w.deps_handle(PROMOTION).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable.Throttled");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(2)));
    assert_eq!(
        w.hosting.serving("demo-prod"),
        Some(arn(2)),
        "production converged although staging's event was not published"
    );
    assert_eq!(
        w.events.of_type(MODEL_DEPLOYED).len(),
        1,
        "production's event went out"
    );
    assert_eq!(
        w.events.of_type(MODEL_DEPLOYED)[0].detail["stage"],
        "production"
    );
}

#[tokio::test]
async fn an_update_refused_as_in_progress_is_busy() {
    let w = world(&env());
    w.registry.add(package(GROUP, 1, 0, Approved));
    w.deps_handle(APPROVED).await.unwrap();
    w.registry.add(package(GROUP, 2, 10, Approved));
    w.hosting.refuse_next_update_in_progress("demo-staging");
    let err = w.deps_handle(APPROVED).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable.EndpointBusy");
    assert_eq!(w.hosting.serving("demo-staging"), Some(arn(1)));
    assert_eq!(
        w.deps_handle(APPROVED).await.unwrap().stages[0].action,
        "updated"
    );
}

#[test]
fn more_rollback_alarms_than_sagemaker_takes_are_refused_at_init() {
    let eleven = (0..11)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut vars: std::collections::HashMap<String, String> = env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.insert("PRODUCTION_ROLLBACK_ALARMS".into(), eleven);
    let err = Config::from_env(&vars).unwrap_err();
    assert!(
        err.to_string().contains("PRODUCTION_ROLLBACK_ALARMS"),
        "{err}"
    );
    vars.insert(
        "PRODUCTION_ROLLBACK_ALARMS".into(),
        " demo-5xx , demo-latency ".into(),
    );
    let config = Config::from_env(&vars).unwrap();
    assert_eq!(
        config.stages[1].rollback_alarms,
        ["demo-5xx", "demo-latency"]
    );
}

#[tokio::test]
async fn production_autoscaling_is_registered_once_serving_and_kept_across_updates() {
    let mut vars = env();
    vars.extend([
        ("PRODUCTION_AUTOSCALING_MIN_CAPACITY", "2"),
        ("PRODUCTION_AUTOSCALING_MAX_CAPACITY", "6"),
        ("PRODUCTION_AUTOSCALING_TARGET_INVOCATIONS", "70"),
    ]);
    let mut w = world(&vars);
    let id = "endpoint/demo-prod/variant/AllTraffic";
    w.registry.add(package(GROUP, 1, 0, Approved));
    let mut promo = ev(PROMOTION);
    promo["detail"]["ModelPackageArn"] = json!(arn(1));
    let out = handle(promo, &w.deps).await.unwrap();
    let s = w.scaling.snapshot();
    assert_eq!(s.targets[id], (2, 6));
    let policy = &s.policies[&(
        id.to_owned(),
        "demo-prod-invocations-per-instance".to_owned(),
    )];
    assert_eq!(policy.target_invocations, 70);
    assert_eq!(out.stages[1].scaling.as_ref().unwrap().error, None);
    assert!(out.stages[0].scaling.is_none(), "staging is not scaled");
    assert_eq!(s.targets.len(), 1);
    // A new model on the same variant: registered again once it serves, never deregistered.
    w.registry.add(package(GROUP, 2, 10, Approved));
    w.hosting.hold_updates(true);
    w.deps_handle(PROMOTION).await.unwrap();
    assert_eq!(
        w.scaling.snapshot().registrations,
        1,
        "not before it serves"
    );
    w.hosting.finish("demo-prod");
    handle(in_service_event("demo-prod", "IN_SERVICE"), &w.deps)
        .await
        .unwrap();
    let s = w.scaling.snapshot();
    assert_eq!((s.registrations, s.deregistrations), (2, 0));
    assert_eq!(s.targets[id], (2, 6));
    // New instance settings: deregistered before the update (SageMaker refuses it otherwise),
    // registered again once the endpoint serves the new config.
    w.hosting.hold_updates(false);
    w.hosting.finish("demo-staging");
    vars.push(("PRODUCTION_INSTANCE_TYPE", "ml.c5.xlarge"));
    w.deps.config = Config::from_env(
        &vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::HashMap<_, _>>(),
    )
    .unwrap();
    handle(in_service_event("demo-prod", "IN_SERVICE"), &w.deps)
        .await
        .unwrap();
    let s = w.scaling.snapshot();
    assert_eq!((s.registrations, s.deregistrations), (3, 1));
    assert_eq!(s.targets[id], (2, 6));
}

#[test]
fn autoscaling_settings_are_checked_at_init() {
    let with = |extra: &[(&str, &str)]| {
        let mut vars: std::collections::HashMap<String, String> = env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::from_env(&vars)
    };
    assert_eq!(with(&[]).unwrap().stages[1].autoscaling, None);
    assert_eq!(
        with(&[("PRODUCTION_AUTOSCALING_MAX_CAPACITY", "0")])
            .unwrap()
            .stages[1]
            .autoscaling,
        None
    );
    let err = with(&[
        ("PRODUCTION_AUTOSCALING_MAX_CAPACITY", "2"),
        ("PRODUCTION_AUTOSCALING_MIN_CAPACITY", "3"),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("PRODUCTION_AUTOSCALING_MIN_CAPACITY"),
        "{err}"
    );
    let a = with(&[("PRODUCTION_AUTOSCALING_MAX_CAPACITY", "4")])
        .unwrap()
        .stages[1]
        .autoscaling
        .clone()
        .unwrap();
    assert_eq!(
        (a.min_capacity, a.max_capacity, a.target_invocations),
        (1, 4, 100)
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

mod catalogue {
    use super::*;
    use driftloop::catalogue::source::InMemoryCatalogue;
    use driftloop::error::Classify;

    const CATALOGUE: &str = include_str!("../../../infra/catalogue.example.json");

    fn approved(group: &str, version: i64) -> Value {
        let mut e = ev(APPROVED);
        e["detail"]["ModelPackageGroupName"] = json!(group);
        e["detail"]["ModelPackageArn"] = json!(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"
        ));
        e
    }

    fn with_catalogue(document: &str) -> (World, Arc<InMemoryCatalogue>) {
        let mut w = world(&env());
        let source = Arc::new(InMemoryCatalogue::new(document));
        w.deps.catalogue = Some(source.clone());
        (w, source)
    }

    fn endpoints(w: &World) -> Vec<String> {
        w.hosting.snapshot().endpoints.keys().cloned().collect()
    }

    #[tokio::test]
    async fn a_package_of_one_group_deploys_only_that_groups_endpoints_with_its_settings() {
        let (w, source) = with_catalogue(CATALOGUE);
        for group in ["churn", "house-prices", "support-topics"] {
            w.registry.add(package(group, 1, 0, Approved));
        }
        let out = handle(approved("support-topics", 1), &w.deps)
            .await
            .unwrap();
        assert_eq!(out.group, "support-topics");
        assert_eq!(out.ignored, None);
        assert!(
            out.settings
                .as_deref()
                .unwrap()
                .starts_with("catalogue memory://")
        );
        assert_eq!(out.stages.len(), 2);
        assert_eq!(out.stages[0].action, "created");
        assert_eq!(endpoints(&w), ["support-topics-staging"]);
        let snap = w.hosting.snapshot();
        let cfg = snap.configs.values().next().unwrap();
        assert_eq!(
            cfg.instance_type, "ml.m5.xlarge",
            "the entry's staging instance"
        );
        assert_eq!(
            cfg.capture.as_ref().unwrap().json_content_types,
            ["application/json", "application/jsonlines"]
        );
        assert_eq!(
            w.hosting.serving("support-topics-staging").unwrap(),
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/support-topics/1"
        );
        // Read once for the invocation.
        assert_eq!(source.loads(), 1);
        // The environment's model is still served for its own group, with its own settings.
        w.registry.add(package(GROUP, 1, 0, Approved));
        let out = w.deps_handle(APPROVED).await.unwrap();
        assert_eq!(out.settings.as_deref(), Some("environment"));
        assert_eq!(endpoints(&w), ["demo-staging", "support-topics-staging"]);
        assert_eq!(source.loads(), 2);
    }

    #[tokio::test]
    async fn a_group_in_neither_is_skipped_and_a_new_entry_counts_from_the_next_invocation() {
        let (w, source) = with_catalogue(CATALOGUE);
        w.registry.add(package("fraud", 1, 0, Approved));
        let out = handle(approved("fraud", 1), &w.deps).await.unwrap();
        let reason = out.ignored.unwrap();
        assert!(reason.contains("not \"fraud\""), "{reason}");
        assert!(
            reason.contains("not in the catalogue memory://catalogue.json@\"v1\""),
            "{reason}"
        );
        assert!(out.stages.is_empty() && endpoints(&w).is_empty());
        // A fourth model, uploaded: no restart, no new deps.
        let mut doc: Value = serde_json::from_str(CATALOGUE).unwrap();
        let mut fraud = doc["models"][0].clone();
        fraud["group"] = json!("fraud");
        fraud["stages"]["staging"]["endpointName"] = json!("fraud-staging");
        fraud["stages"]["production"]["endpointName"] = json!("fraud-prod");
        fraud["alarms"] = json!([]);
        fraud["retraining"]["pipeline"] = json!("fraud-build");
        doc["models"].as_array_mut().unwrap().push(fraud);
        source.replace(doc.to_string());
        let out = handle(approved("fraud", 1), &w.deps).await.unwrap();
        assert_eq!(out.ignored, None);
        assert!(out.settings.unwrap().ends_with("@\"v2\""));
        assert_eq!(endpoints(&w), ["fraud-staging"]);
    }

    #[tokio::test]
    async fn an_endpoint_back_in_service_converges_the_model_it_belongs_to() {
        let (w, _) = with_catalogue(CATALOGUE);
        w.registry.add(package("house-prices", 1, 0, Approved));
        let out = handle(
            in_service_event("house-prices-staging", "IN_SERVICE"),
            &w.deps,
        )
        .await
        .unwrap();
        assert_eq!(out.group, "house-prices");
        assert_eq!(endpoints(&w), ["house-prices-staging"]);
    }

    #[tokio::test]
    async fn a_broken_catalogue_fails_the_invocation_naming_the_field() {
        let mut doc: Value = serde_json::from_str(CATALOGUE).unwrap();
        doc["models"][1]["stages"]["production"]["instanceCount"] = json!(0);
        let (w, _) = with_catalogue(&doc.to_string());
        w.registry.add(package(GROUP, 1, 0, Approved));
        let e = w.deps_handle(APPROVED).await.unwrap_err();
        assert_eq!(e.error_type(), "Permanent.InvalidCatalogue");
        assert!(
            e.to_string()
                .contains(r#"models[1] (group "house-prices").stages.production.instanceCount"#),
            "{e}"
        );
        assert!(
            endpoints(&w).is_empty(),
            "nothing deployed from a broken catalogue"
        );
    }

    #[test]
    fn with_a_catalogue_the_environment_model_is_optional() {
        let vars = [
            ("CATALOGUE_S3_URI", "s3://config/catalogue.json"),
            (
                "SAGEMAKER_EXECUTION_ROLE_ARN",
                "arn:aws:iam::123456789012:role/sm",
            ),
        ];
        let c = Config::from_env(&vars).unwrap();
        assert!(c.single().is_none() && c.stages.is_empty());
        assert_eq!(
            c.catalogue.unwrap().to_string(),
            "s3://config/catalogue.json"
        );
        let vars = [(
            "SAGEMAKER_EXECUTION_ROLE_ARN",
            "arn:aws:iam::123456789012:role/sm",
        )];
        assert_eq!(
            Config::from_env(&vars).unwrap_err().var(),
            "MODEL_PACKAGE_GROUP_NAME"
        );
        let vars = [
            ("CATALOGUE_S3_URI", "not-s3"),
            (
                "SAGEMAKER_EXECUTION_ROLE_ARN",
                "arn:aws:iam::123456789012:role/sm",
            ),
        ];
        assert_eq!(
            Config::from_env(&vars).unwrap_err().var(),
            "CATALOGUE_S3_URI"
        );
    }
}

/// Loop-managed alarms and dashboard of catalogue models (issue 15, item 2), and the naming
/// convention the catalogue is read under (item 3).
mod managed {
    use super::*;
    use driftloop::catalogue::Convention;
    use driftloop::catalogue::alarms::MANAGED_MARKER;
    use driftloop::catalogue::source::InMemoryCatalogue;
    use driftloop::deploy::alarm::AlarmChange;
    use driftloop::error::Classify;

    const DASHBOARD: &str = "loop-a-driftloop-models";

    fn model(group: &str, metric: &str, window: u32) -> Value {
        json!({
            "group": group,
            "problem": {"type": "BinaryClassification"},
            "capture": {"destinationS3Uri": format!("s3://data/{group}/capture")},
            "stages": {"staging": {"endpointName": format!("{group}-staging")}},
            "monitoring": {"stages": ["staging"], "groundTruthS3Uri": format!("s3://data/{group}/labels"),
                           "windowMinutes": window, "scheduleName": format!("{group}-quality")},
            "alarms": [{"name": format!("loop-a.m-{group}-{metric}"), "metric": metric, "stage": "staging",
                        "threshold": "servedPackage"}],
            "retraining": {"pipeline": format!("{group}-build")}
        })
    }

    fn doc(models: &[Value]) -> String {
        json!({"version": 1, "models": models}).to_string()
    }

    fn convention() -> Convention {
        Convention {
            name_prefix: Some("loop-a-".into()),
            alarm_prefix: Some("loop-a.m-".into()),
            data_s3_uri: Some("s3://data/loop-a-".into()),
        }
    }

    fn world_with(document: &str) -> (World, Arc<InMemoryCatalogue>) {
        let mut w = world(&[
            (
                "SAGEMAKER_EXECUTION_ROLE_ARN",
                "arn:aws:iam::123456789012:role/sm",
            ),
            ("CATALOGUE_S3_URI", "s3://config/catalogue.json"),
            ("DASHBOARD_NAME", DASHBOARD),
            (
                "ALARM_ARN_PREFIX",
                "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:",
            ),
            ("METRICS_NAMESPACE", "driftloop-a"),
            ("CATALOGUE_NAME_PREFIX", "loop-a-"),
            ("CATALOGUE_ALARM_PREFIX", "loop-a.m-"),
            ("CATALOGUE_DATA_S3_URI", "s3://data/loop-a-"),
        ]);
        assert_eq!(w.deps.config.convention, convention());
        let source = Arc::new(
            InMemoryCatalogue::new(document)
                .with_convention(convention())
                .at("s3://config/catalogue.json"),
        );
        w.deps.catalogue = Some(source.clone());
        (w, source)
    }

    fn approved(group: &str, version: i64) -> Value {
        let mut e = ev(APPROVED);
        e["detail"]["ModelPackageGroupName"] = json!(group);
        e["detail"]["ModelPackageArn"] = json!(format!(
            "arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"
        ));
        e
    }

    fn upload() -> Value {
        json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
               "account": "123456789012", "time": "2026-12-02T10:00:00Z", "region": "eu-west-1",
               "resources": ["arn:aws:s3:::config"],
               "detail": {"bucket": {"name": "config"}, "object": {"key": "catalogue.json"}}})
    }

    fn daily() -> Value {
        json!({"version": "0", "id": "2", "detail-type": "Scheduled Event", "source": "aws.events",
               "account": "123456789012", "time": "2026-12-02T03:00:00Z", "region": "eu-west-1",
               "resources": ["arn:aws:events:eu-west-1:123456789012:rule/loop-a-catalogue-reconcile"],
               "detail": {}})
    }

    /// A package of `group` whose model-quality constraint on `metric` is `threshold`.
    fn constrained(
        w: &World,
        group: &str,
        version: i64,
        minute: i64,
        metric: &str,
        threshold: f64,
    ) {
        let uri = format!("s3://baselines/{group}/{version}/mq-constraints.json");
        w.store.insert(
            &uri,
            json!({"binary_classification_constraints": {metric: {"threshold": threshold, "comparison_operator": "LessThanThreshold"}}})
                .to_string(),
        );
        w.registry.add(with_model_quality(
            package(group, version, minute, Approved),
            &uri,
        ));
    }

    #[tokio::test]
    async fn a_deployment_creates_the_models_alarm_with_the_packages_threshold_then_updates_it() {
        let (w, _) = world_with(&doc(&[model("loop-a-churn", "f1", 1440)]));
        constrained(&w, "loop-a-churn", 1, 0, "f1", 0.72);
        let out = handle(approved("loop-a-churn", 1), &w.deps).await.unwrap();
        assert_eq!(out.stages[0].action, "created");
        let update = out.stages[0].alarm.as_ref().expect("the alarm followed");
        assert_eq!(update.change, Some(AlarmChange::Created), "{update:?}");
        let name = "loop-a.m-loop-a-churn-f1";
        let a = w.alarms.metric_alarm(name).expect("created");
        assert_eq!(
            (a.threshold, a.comparison_operator.as_str()),
            (0.72, "LessThanThreshold")
        );
        assert_eq!(a.namespace, "aws/sagemaker/Endpoints/model-metrics");
        assert_eq!(a.metric, "f1");
        assert_eq!(
            a.dimensions,
            [
                ("Endpoint".to_owned(), "loop-a-churn-staging".to_owned()),
                (
                    "MonitoringSchedule".to_owned(),
                    "loop-a-churn-quality".to_owned()
                )
            ]
        );
        assert_eq!(a.period_seconds, 86_400, "the model's daily window");
        assert_eq!(a.treat_missing_data, "ignore");
        assert!(
            a.description.starts_with(MANAGED_MARKER),
            "{}",
            a.description
        );
        assert!(
            w.alarms
                .tags(name)
                .contains(&("driftloop:model".to_owned(), "loop-a-churn".to_owned()))
        );
        // The deploy mark of the dashboard.
        let marks = w.metrics.named("ModelDeployed");
        assert_eq!(marks.len(), 1);
        assert!(
            marks[0]
                .dimensions
                .contains(&("ModelPackageGroup".to_owned(), "loop-a-churn".to_owned()))
        );
        assert_eq!(w.metrics.datums()[0].0, "driftloop-a");
        // A new package with another constraint: the same alarm, updated.
        constrained(&w, "loop-a-churn", 2, 10, "f1", 0.64);
        let out = handle(approved("loop-a-churn", 2), &w.deps).await.unwrap();
        assert_eq!(out.stages[0].action, "updated");
        let update = out.stages[0].alarm.as_ref().unwrap();
        assert_eq!(update.previous_threshold, Some(0.72));
        match &update.change {
            Some(AlarmChange::Updated { fields }) => {
                assert!(fields.contains(&"threshold".to_owned()), "{fields:?}")
            }
            other => panic!("expected an update, got {other:?}"),
        }
        assert_eq!(w.alarms.metric_alarm(name).unwrap().threshold, 0.64);
        assert_eq!(w.alarms.puts(), 2);
    }

    #[tokio::test]
    async fn a_reconcile_changes_nothing_when_nothing_differs() {
        let (w, _) = world_with(&doc(&[model("loop-a-churn", "f1", 60)]));
        constrained(&w, "loop-a-churn", 1, 0, "f1", 0.72);
        handle(approved("loop-a-churn", 1), &w.deps).await.unwrap();
        assert_eq!(w.alarms.puts(), 1);
        let out = handle(daily(), &w.deps).await.unwrap();
        let r = out.reconcile.expect("a reconcile report");
        assert_eq!(
            r.alarms[0].update.as_ref().unwrap().change,
            Some(AlarmChange::Unchanged)
        );
        assert_eq!(w.alarms.puts(), 1, "unchanged: no PutMetricAlarm");
        assert!(r.dashboard.as_ref().unwrap().written);
        assert_eq!(w.dashboards.puts(), 1);
        // Again: neither the alarm nor the dashboard is written.
        let out = handle(daily(), &w.deps).await.unwrap();
        assert!(!out.reconcile.unwrap().dashboard.unwrap().written);
        assert_eq!((w.alarms.puts(), w.dashboards.puts()), (1, 1));
        // An alarm edited outside the loop is put back.
        let mut edited = w.alarms.metric_alarm("loop-a.m-loop-a-churn-f1").unwrap();
        edited.period_seconds = 300;
        w.alarms
            .metric
            .lock()
            .unwrap()
            .get_mut("loop-a.m-loop-a-churn-f1")
            .unwrap()
            .0 = edited;
        let out = handle(daily(), &w.deps).await.unwrap();
        assert_eq!(
            out.reconcile.unwrap().alarms[0]
                .update
                .as_ref()
                .unwrap()
                .change,
            Some(AlarmChange::Updated {
                fields: vec!["period".into()]
            })
        );
        assert_eq!(
            w.alarms
                .metric_alarm("loop-a.m-loop-a-churn-f1")
                .unwrap()
                .period_seconds,
            3600
        );
    }

    #[tokio::test]
    async fn a_catalogue_upload_reconciles_a_new_model_and_reports_the_one_that_left() {
        let (w, source) = world_with(&doc(&[model("loop-a-churn", "f1", 60)]));
        constrained(&w, "loop-a-churn", 1, 0, "f1", 0.72);
        handle(approved("loop-a-churn", 1), &w.deps).await.unwrap();
        // A second model, already serving a package deployed before it joined the catalogue.
        constrained(&w, "loop-a-fraud", 1, 0, "auc", 0.9);
        source.replace(doc(&[
            model("loop-a-churn", "f1", 60),
            model("loop-a-fraud", "auc", 60),
        ]));
        handle(approved("loop-a-fraud", 1), &w.deps).await.unwrap();
        w.alarms
            .metric
            .lock()
            .unwrap()
            .remove("loop-a.m-loop-a-fraud-auc");
        // The upload of a catalogue without churn and with fraud.
        source.replace(doc(&[model("loop-a-fraud", "auc", 60)]));
        let out = handle(upload(), &w.deps).await.unwrap();
        let r = out.reconcile.expect("a reconcile");
        assert_eq!(r.alarms.len(), 1);
        assert_eq!(
            r.alarms[0].update.as_ref().unwrap().change,
            Some(AlarmChange::Created),
            "{r:?}"
        );
        assert_eq!(
            w.alarms
                .metric_alarm("loop-a.m-loop-a-fraud-auc")
                .unwrap()
                .threshold,
            0.9
        );
        // churn's alarm is left in place and reported.
        assert_eq!(r.orphaned.len(), 1);
        assert_eq!(r.orphaned[0].alarm_name, "loop-a.m-loop-a-churn-f1");
        assert!(w.alarms.metric_alarm("loop-a.m-loop-a-churn-f1").is_some());
        // The dashboard now shows fraud only.
        let body = w.dashboards.body(DASHBOARD).expect("written");
        let text = body.to_string();
        assert!(
            text.contains(
                "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:loop-a.m-loop-a-fraud-auc"
            ),
            "{text}"
        );
        assert!(!text.contains("loop-a-churn"), "{text}");
        assert!(text.contains("RetrainingStarted") && text.contains("loop-a-fraud-build"));
    }

    #[tokio::test]
    async fn a_model_not_serving_yet_waits_for_its_deployment() {
        let (w, _) = world_with(&doc(&[model("loop-a-churn", "f1", 60)]));
        let out = handle(daily(), &w.deps).await.unwrap();
        let r = out.reconcile.unwrap();
        assert!(
            r.alarms[0]
                .waiting
                .as_deref()
                .unwrap()
                .contains("no package"),
            "{r:?}"
        );
        assert_eq!(w.alarms.puts(), 0);
        // Registered but not deployed: still waiting (nothing to read the threshold from).
        constrained(&w, "loop-a-churn", 1, 0, "f1", 0.72);
        let r = handle(daily(), &w.deps).await.unwrap().reconcile.unwrap();
        assert!(
            r.alarms[0]
                .waiting
                .as_deref()
                .unwrap()
                .contains("does not serve"),
            "{r:?}"
        );
        assert_eq!(w.alarms.puts(), 0);
    }

    #[tokio::test]
    async fn a_failed_put_is_reported_and_the_next_reconcile_creates_it() {
        let (w, _) = world_with(&doc(&[model("loop-a-churn", "f1", 60)]));
        constrained(&w, "loop-a-churn", 1, 0, "f1", 0.72);
        *w.alarms.fail_put.lock().unwrap() = Some(driftloop::error::AwsError::classify(
            "cloudwatch",
            "PutMetricAlarm",
            Some("AccessDenied"),
            Some(403),
            "not authorized",
        ));
        let out = handle(approved("loop-a-churn", 1), &w.deps).await.unwrap();
        assert_eq!(
            out.stages[0].action, "created",
            "the deployment is what matters"
        );
        assert!(
            out.stages[0]
                .alarm
                .as_ref()
                .unwrap()
                .error
                .as_deref()
                .unwrap()
                .contains("not authorized")
        );
        assert!(w.alarms.metric_alarm("loop-a.m-loop-a-churn-f1").is_none());
        let r = handle(daily(), &w.deps).await.unwrap().reconcile.unwrap();
        assert_eq!(
            r.alarms[0].update.as_ref().unwrap().change,
            Some(AlarmChange::Created)
        );
    }

    #[tokio::test]
    async fn a_name_outside_the_convention_makes_the_catalogue_invalid_naming_model_and_field() {
        let mut m = model("loop-a-churn", "f1", 60);
        m["stages"]["staging"]["endpointName"] = json!("churn-staging");
        m["alarms"][0]["name"] = json!("churn-f1");
        m["capture"]["destinationS3Uri"] = json!("s3://elsewhere/capture");
        let (w, _) = world_with(&doc(&[m]));
        constrained(&w, "loop-a-churn", 1, 0, "f1", 0.72);
        let e = handle(approved("loop-a-churn", 1), &w.deps)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "Permanent.InvalidCatalogue");
        let msg = e.to_string();
        for part in [
            r#"models[0] (group "loop-a-churn").stages.staging.endpointName: "churn-staging" does not start with "loop-a-""#,
            r#"models[0] (group "loop-a-churn").alarms[0].name: "churn-f1" does not start with "loop-a.m-""#,
            r#"models[0] (group "loop-a-churn").capture.destinationS3Uri"#,
        ] {
            assert!(msg.contains(part), "{part} not in {msg}");
        }
        assert!(
            w.hosting.snapshot().endpoints.is_empty(),
            "nothing deployed"
        );
        // The reconcile refuses it the same way.
        assert_eq!(
            handle(upload(), &w.deps).await.unwrap_err().error_type(),
            "Permanent.InvalidCatalogue"
        );
    }

    #[test]
    fn the_convention_and_dashboard_come_from_the_environment() {
        let base = [
            ("CATALOGUE_S3_URI", "s3://config/catalogue.json"),
            (
                "SAGEMAKER_EXECUTION_ROLE_ARN",
                "arn:aws:iam::123456789012:role/sm",
            ),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let v: std::collections::HashMap<String, String> = base
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Config::from_env(&v)
        };
        let c = with(&[
            ("CATALOGUE_NAME_PREFIX", "loop-a-"),
            ("CATALOGUE_ALARM_PREFIX", "loop-a.m-"),
            ("DASHBOARD_NAME", DASHBOARD),
            (
                "ALARM_ARN_PREFIX",
                "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:",
            ),
        ])
        .unwrap();
        assert_eq!(c.convention.name_prefix.as_deref(), Some("loop-a-"));
        assert_eq!(c.dashboard.as_ref().unwrap().region, "eu-west-1");
        assert_eq!(c.metrics_namespace, "driftloop");
        // A stack name with capitals as the prefix: refused at start, naming the parameter.
        let e = with(&[("CATALOGUE_NAME_PREFIX", "Loop-A-")]).unwrap_err();
        assert_eq!(e.var(), "CATALOGUE_NAME_PREFIX");
        assert!(e.to_string().contains("CatalogueNamePrefix"), "{e}");
        assert_eq!(
            with(&[("DASHBOARD_NAME", DASHBOARD)]).unwrap_err().var(),
            "ALARM_ARN_PREFIX"
        );
        assert_eq!(
            with(&[("DASHBOARD_NAME", DASHBOARD), ("ALARM_ARN_PREFIX", "nope")])
                .unwrap_err()
                .var(),
            "ALARM_ARN_PREFIX"
        );
    }

    #[tokio::test]
    async fn an_upload_of_another_object_is_ignored() {
        let (w, _) = world_with(&doc(&[model("loop-a-churn", "f1", 60)]));
        let mut e = upload();
        e["detail"]["object"]["key"] = json!("catalogue.json.bak");
        let out = handle(e, &w.deps).await.unwrap();
        assert!(out.ignored.unwrap().contains("is not the catalogue"));
        assert!(out.reconcile.is_none());
        assert_eq!(w.dashboards.puts(), 0);
    }

    #[tokio::test]
    async fn without_a_catalogue_a_reconcile_is_ignored() {
        let w = world(&env());
        let out = handle(daily(), &w.deps).await.unwrap();
        assert!(out.ignored.unwrap().contains("nothing to reconcile"));
        assert_eq!(w.dashboards.puts(), 0);
    }
}
