//! The catalogue: the schedule fans out over every monitored endpoint of every model, a label
//! upload goes to the model of the longest ground-truth prefix, a direct request selects its
//! target, one target's failure does not stop the others.

use super::*;
use driftloop::catalogue::source::InMemoryCatalogue;
use driftloop::error::Classify;
use driftloop::monitoring::fanout::TargetStatus;

const CAT_CAPTURE: &str = "s3://driftloop-monitoring/models/capture";
const LABELS: &str = "s3://driftloop-monitoring/models/labels";

/// One catalogue entry monitoring its production endpoint `{group}-prod`, labels under
/// `{LABELS}/{labels}`.
fn entry(group: &str, problem: Value, labels: &str) -> Value {
    json!({
        "group": group,
        "problem": problem,
        "capture": {"destinationS3Uri": CAT_CAPTURE},
        "stages": {
            "staging": {"endpointName": format!("{group}-staging")},
            "production": {"endpointName": format!("{group}-prod")}
        },
        "monitoring": {
            "stages": ["production"],
            "groundTruthS3Uri": format!("{LABELS}/{labels}"),
            "scheduleName": format!("{group}-quality")
        },
        "baselines": {"policy": "none"}
    })
}

fn three() -> Vec<Value> {
    vec![
        entry("a", json!({"type": "BinaryClassification"}), "a"),
        entry("b", json!({"type": "Regression"}), "b"),
        entry("c", json!({"type": "MulticlassClassification"}), "c"),
    ]
}

fn document(models: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"version": 1, "models": models})).unwrap()
}

fn catalogue_world(models: &[Value]) -> (World, Arc<InMemoryCatalogue>) {
    let mut w = world(&[]);
    let c = Arc::new(InMemoryCatalogue::new(document(models)));
    w.deps.catalogue = Some(c.clone());
    (w, c)
}

/// `n` records of `group`'s production endpoint in `hour` (`2024-05-01T09`): capture whose
/// output is `output(i)` and labels `label(i)`.
fn seed_model(
    store: &InMemoryStore,
    group: &str,
    labels: &str,
    hour: &str,
    n: usize,
    output: impl Fn(usize) -> String,
    label: impl Fn(usize) -> String,
) {
    let path = hour.replace(['-', 'T'], "/");
    let mut capture = String::new();
    let mut truth = String::new();
    for i in 0..n {
        let id = format!("{group}-{hour}-{i:05}");
        let time = format!("{hour}:{:02}:{:02}Z", i * 59 / n.max(1), i % 60);
        capture.push_str(&format!(
            r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{time}"}},"eventVersion":"0"}}"#,
            output(i)
        ));
        capture.push('\n');
        truth.push_str(&format!(
            r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#,
            label(i)
        ));
        truth.push('\n');
    }
    store.insert(
        &format!("{CAT_CAPTURE}/{group}-prod/AllTraffic/{path}/00-00-000-x.jsonl"),
        capture,
    );
    store.insert(&format!("{LABELS}/{labels}/{path}/labels.jsonl"), truth);
}

/// Binary `a` (accuracy 0.75), regression `b` (every prediction 1 too high: MAE 1), multiclass
/// `c` (accuracy 0.5), each with `n` records in the hour.
fn seed_three(store: &InMemoryStore, hour: &str, n: usize) {
    seed_model(
        store,
        "a",
        "a",
        hour,
        n,
        |i| if i % 2 == 0 { "0.9" } else { "0.1" }.into(),
        |i| {
            if i % 4 == 3 {
                "1".to_owned()
            } else {
                (1 - i % 2).to_string()
            }
        },
    );
    seed_model(
        store,
        "b",
        "b",
        hour,
        n,
        |i| format!("{}", i % 7 + 1),
        |i| format!("{}", i % 7),
    );
    seed_model(
        store,
        "c",
        "c",
        hour,
        n,
        |i| ["cat", "dog"][i % 2].into(),
        |i| ["cat", "cat", "dog", "dog"][i % 4].into(),
    );
}

fn target<'a>(out: &'a Output, endpoint: &str) -> &'a TargetOutcome {
    out.targets
        .iter()
        .find(|t| t.target.endpoint_name == endpoint)
        .unwrap_or_else(|| panic!("no target {endpoint} in {:?}", endpoint_names(out)))
}

fn endpoint_names(out: &Output) -> Vec<&str> {
    out.targets
        .iter()
        .map(|t| t.target.endpoint_name.as_str())
        .collect()
}

fn metric_of(t: &TargetOutcome, name: &str) -> f64 {
    t.windows[0].metrics.as_ref().unwrap()[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} in {:?}", t.windows[0].metrics))
}

fn schedule() -> Value {
    serde_json::from_str(SCHEDULE).unwrap()
}

#[tokio::test]
async fn the_schedule_monitors_every_monitored_endpoint_of_every_model_once() {
    let (w, c) = catalogue_world(&three());
    seed_three(&w.store, "2024-05-01T09", 40);
    let out = handle(schedule(), &w.deps).await.unwrap();
    assert_eq!(c.loads(), 1, "one catalogue read per invocation");
    assert_eq!(
        out.catalogue.as_deref(),
        Some("memory://catalogue.json@\"v1\"")
    );
    // The three catalogue endpoints, then the environment's one (not named by the catalogue).
    assert_eq!(
        endpoint_names(&out),
        ["a-prod", "b-prod", "c-prod", "churn"]
    );
    for t in &out.targets[..3] {
        assert_eq!(t.status, TargetStatus::Completed, "{t:?}");
        assert_eq!(t.windows.len(), 1);
        let o = &t.windows[0];
        assert_eq!(
            (o.window.start, o.window.end),
            (t_("2024-05-01T09:00:00Z"), t_("2024-05-01T10:00:00Z"))
        );
        assert_eq!(o.status, "Completed");
        assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 40);
        assert!(t.target.source.starts_with("catalogue memory://"));
    }
    let env = target(&out, "churn");
    assert_eq!(env.target.source, "environment");
    assert_eq!(env.windows[0].status, "NoData");
    // Each model's problem type, from its entry.
    assert!((metric_of(target(&out, "a-prod"), "accuracy") - 0.75).abs() < 1e-12);
    assert!((metric_of(target(&out, "b-prod"), "mae") - 1.0).abs() < 1e-12);
    assert!((metric_of(target(&out, "c-prod"), "accuracy") - 0.5).abs() < 1e-12);
    assert!(target(&out, "b-prod").windows[0].metrics.as_ref().unwrap()["accuracy"].is_null());
    // Reports under each endpoint's own folder and schedule; metrics with its own dimensions.
    for g in ["a", "b", "c"] {
        let summary = format!(
            "{REPORTS}/{g}-prod/AllTraffic/{g}-quality/2024/05/01/09/20240501T0900Z-20240501T1000Z/summary.json"
        );
        assert_eq!(json_at(&w.store, &summary)["status"], "Completed", "{g}");
        let matched: Vec<_> = w
            .metrics
            .named("records_matched")
            .into_iter()
            .filter(|d| {
                d.dimensions
                    == vec![
                        ("Endpoint".to_owned(), format!("{g}-prod")),
                        ("MonitoringSchedule".to_owned(), format!("{g}-quality")),
                    ]
            })
            .collect();
        assert_eq!(matched.len(), 1, "one datum set per window of {g}");
        assert_eq!(matched[0].value, 40.0);
    }
    assert_eq!(
        w.events.events().len(),
        4,
        "one event per endpoint's window"
    );
}

fn t_(s: &str) -> DateTime<Utc> {
    t(s)
}

#[tokio::test]
async fn a_model_added_to_the_catalogue_is_monitored_on_the_next_run() {
    let (w, c) = catalogue_world(&three());
    seed_three(&w.store, "2024-05-01T09", 20);
    let first = handle(schedule(), &w.deps).await.unwrap();
    assert!(!endpoint_names(&first).contains(&"d-prod"));
    let mut models = three();
    models.push(entry("d", json!({"type": "Regression"}), "d"));
    c.replace(document(&models));
    seed_model(
        &w.store,
        "d",
        "d",
        "2024-05-01T09",
        10,
        |_| "2".into(),
        |_| "2".into(),
    );
    let second = handle(schedule(), &w.deps).await.unwrap();
    assert_eq!(c.loads(), 2);
    assert_eq!(
        endpoint_names(&second),
        ["a-prod", "b-prod", "c-prod", "d-prod", "churn"]
    );
    let d = target(&second, "d-prod");
    assert_eq!(d.status, TargetStatus::Completed);
    assert_eq!(metric_of(d, "mae"), 0.0);
    assert_eq!(
        second.catalogue.as_deref(),
        Some("memory://catalogue.json@\"v2\"")
    );
}

#[tokio::test]
async fn a_store_fault_on_one_models_capture_does_not_stop_the_others() {
    for (code, status, class) in [
        ("SlowDown", 503, "Retryable"),
        ("AccessDenied", 403, "Permanent"),
    ] {
        let (w, _) = catalogue_world(&three());
        seed_three(&w.store, "2024-05-01T09", 30);
        w.store
            .fail_under(&format!("{CAT_CAPTURE}/b-prod/"), code, status);
        let Evaluated { output, failure } = evaluate(schedule(), &w.deps).await.unwrap();
        let b = target(&output, "b-prod");
        assert_eq!(b.status, TargetStatus::Failed, "{code}");
        assert_eq!(b.windows[0].status, "Failed");
        assert!(
            b.error_type.as_deref().unwrap().starts_with(class),
            "{code}: {:?}",
            b.error_type
        );
        for ok in ["a-prod", "c-prod", "churn"] {
            assert_eq!(target(&output, ok).status, TargetStatus::Completed, "{ok}");
        }
        assert_eq!(
            target(&output, "c-prod").windows[0]
                .counts
                .as_ref()
                .unwrap()["records_matched"],
            30
        );
        let e = failure.expect("a failed target fails the invocation");
        assert!(e.error_type().starts_with(class), "{e}");
        assert!(
            e.to_string()
                .starts_with("1 of 4 monitored endpoints failed"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("endpoint \"b-prod\" (group \"b\", production)"),
            "{e}"
        );
        // handle() returns the same failure.
        let (w2, _) = catalogue_world(&three());
        w2.store
            .fail_under(&format!("{CAT_CAPTURE}/b-prod/"), code, status);
        let err = handle(schedule(), &w2.deps).await.unwrap_err();
        assert!(err.error_type().starts_with(class), "{}", err.error_type());
    }
}

#[tokio::test]
async fn a_retryable_target_failure_wins_over_a_permanent_one() {
    let (w, _) = catalogue_world(&three());
    seed_three(&w.store, "2024-05-01T09", 10);
    w.store
        .fail_under(&format!("{CAT_CAPTURE}/a-prod/"), "AccessDenied", 403);
    w.store
        .fail_under(&format!("{CAT_CAPTURE}/c-prod/"), "SlowDown", 503);
    let err = handle(schedule(), &w.deps).await.unwrap_err();
    assert!(err.is_retryable(), "{}", err.error_type());
    assert!(err.to_string().starts_with("2 of 4"), "{err}");
}

fn upload(key: &str) -> Value {
    upload_event(key)
}

#[tokio::test]
async fn a_label_upload_goes_to_the_model_of_the_longest_ground_truth_prefix() {
    let models = vec![
        entry("a", json!({"type": "BinaryClassification"}), "a"),
        // Nested below a's prefix, and a sibling that shares its first letters.
        entry("nested", json!({"type": "Regression"}), "a/special"),
        entry("sibling", json!({"type": "Regression"}), "ab"),
    ];
    let (w, _) = catalogue_world(&models);
    let key = |labels: &str| {
        format!(
            "{}/{labels}/2024/05/01/09/new.jsonl",
            LABELS.trim_start_matches("s3://driftloop-monitoring/")
        )
    };
    for (labels, endpoint) in [
        ("a", "a-prod"),
        ("a/special", "nested-prod"),
        ("ab", "sibling-prod"),
        ("a/specialist", "a-prod"),
    ] {
        seed_model(
            &w.store,
            "x",
            labels,
            "2024-05-01T09",
            1,
            |_| "1".into(),
            |_| "1".into(),
        );
        let out = handle(upload(&key(labels)), &w.deps).await.unwrap();
        assert_eq!(endpoint_names(&out), [endpoint], "{labels}");
        assert_eq!(out.targets[0].status, TargetStatus::Completed, "{labels}");
        assert_eq!(out.targets[0].windows.len(), 1, "{labels}");
    }
    // Under no model's prefix, nor the environment's: ignored with the reason.
    let out = handle(upload("models/other/2024/05/01/09/x.jsonl"), &w.deps)
        .await
        .unwrap();
    assert!(out.targets.is_empty() && out.windows.is_empty());
    let reason = out.ignored.unwrap();
    assert!(reason.contains("not under the ground truth"), "{reason}");
    assert!(reason.contains("memory://catalogue.json"), "{reason}");
    assert!(reason.contains("GROUND_TRUTH_S3_URI"), "{reason}");
    // The environment's labels: its own endpoint, as without a catalogue.
    seed_hour(&w.store, "2024-05-01T09", 20, 0);
    let out = handle(
        upload("ground-truth/churn/2024/05/01/09/labels-0001.jsonl"),
        &w.deps,
    )
    .await
    .unwrap();
    assert!(out.targets.is_empty());
    assert_eq!(out.windows.len(), 1);
    assert_eq!(
        out.windows[0].counts.as_ref().unwrap()["records_matched"],
        20
    );
}

#[tokio::test]
async fn a_model_monitoring_two_stages_runs_both_on_its_label_upload() {
    let mut m = entry("two", json!({"type": "Regression"}), "two");
    m["monitoring"]["stages"] = json!(["staging", "production"]);
    let (w, _) = catalogue_world(&[m]);
    let out = handle(upload("models/labels/two/2024/05/01/09/l.jsonl"), &w.deps)
        .await
        .unwrap();
    assert_eq!(endpoint_names(&out), ["two-staging", "two-prod"]);
    assert_eq!(out.targets[0].target.stage.as_deref(), Some("staging"));
}

#[tokio::test]
async fn a_direct_request_selects_its_target() {
    let (w, _) = catalogue_world(&three());
    seed_three(&w.store, "2024-05-01T09", 10);
    let window = json!({"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"});
    let out = handle(json!({"window": window, "endpointName": "b-prod"}), &w.deps)
        .await
        .unwrap();
    assert_eq!(endpoint_names(&out), ["b-prod"]);
    let out = handle(
        json!({"window": window, "group": "c", "stage": "production", "dataQuality": true}),
        &w.deps,
    )
    .await
    .unwrap();
    assert_eq!(endpoint_names(&out), ["c-prod"]);
    assert_eq!(out.targets[0].windows[0].status, "Completed");
    // As a Model Monitoring Requested event too.
    let event = json!({"version": "0", "id": "x", "source": "driftloop", "detail-type": "Model Monitoring Requested",
        "time": "2024-05-01T12:00:00Z", "detail": {"window": window, "group": "a"}});
    assert_eq!(
        endpoint_names(&handle(event, &w.deps).await.unwrap()),
        ["a-prod"]
    );
    // No selection: the environment's endpoint, as without a catalogue.
    let out = handle(json!({"window": window}), &w.deps).await.unwrap();
    assert!(out.targets.is_empty());
    assert_eq!(out.windows.len(), 1);
    for (bad, says) in [
        (
            json!({"group": "nope"}),
            "group \"nope\" is not in the catalogue",
        ),
        (
            json!({"stage": "production"}),
            "needs the model's \"group\"",
        ),
        (
            json!({"group": "a", "stage": "staging"}),
            "monitors no stage \"staging\"",
        ),
        (
            json!({"group": "a", "stage": "prod"}),
            "expected staging or production",
        ),
        (
            json!({"endpointName": "a-staging"}),
            "not a monitored stage",
        ),
        (json!({"group": 3}), "must be a non-empty string"),
    ] {
        let e = handle(bad.clone(), &w.deps).await.unwrap_err();
        assert_eq!(e.error_type(), "Permanent.BadEvent", "{bad}");
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
    // The metrics' identity stays the entry's.
    let e = handle(
        json!({"group": "a", "monitoringScheduleName": "other"}),
        &w.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.InvalidOverride", "{e}");
}

#[tokio::test]
async fn without_a_catalogue_group_and_stage_are_unknown_request_fields() {
    let w = world(&[]);
    let e = handle(json!({"group": "a"}), &w.deps).await.unwrap_err();
    assert_eq!(e.error_type(), "Permanent.BadEvent");
    assert!(e.to_string().contains("unknown field \"group\""), "{e}");
}

#[tokio::test]
async fn an_invalid_or_missing_catalogue_fails_the_invocation_before_any_window() {
    let (w, c) = catalogue_world(&three());
    c.replace(b"{\"version\": 1, \"models\": [{\"group\": \"a\"}]}".to_vec());
    let e = handle(schedule(), &w.deps).await.unwrap_err();
    assert_eq!(e.error_type(), "Permanent.InvalidCatalogue", "{e}");
    assert!(e.to_string().contains("models[0] (group \"a\")"), "{e}");
    assert!(w.events.events().is_empty() && w.metrics.datums().is_empty());
}

#[tokio::test]
async fn the_environments_model_named_by_the_catalogue_is_the_catalogues() {
    // The environment's endpoint `churn` is a's production endpoint here: monitored once, with
    // the entry's settings.
    let mut a = entry("a", json!({"type": "BinaryClassification"}), "a");
    a["stages"]["production"]["endpointName"] = json!("churn");
    let (w, _) = catalogue_world(&[a]);
    let out = handle(schedule(), &w.deps).await.unwrap();
    assert_eq!(endpoint_names(&out), ["churn"]);
    assert_eq!(out.targets[0].target.group.as_deref(), Some("a"));
}

#[test]
fn catalogue_and_concurrency_variables_are_checked() {
    let c = config(&[("CATALOGUE_S3_URI", "s3://cfg/driftloop/catalogue.json")]);
    assert_eq!(c.catalogue.unwrap().key, "driftloop/catalogue.json");
    assert_eq!(c.fanout_concurrency, fanout::DEFAULT_CONCURRENCY);
    assert_eq!(config(&[("FANOUT_CONCURRENCY", "3")]).fanout_concurrency, 3);
    for (var, bad) in [
        ("CATALOGUE_S3_URI", "https://x/y.json"),
        ("FANOUT_CONCURRENCY", "0"),
        ("FANOUT_CONCURRENCY", "65"),
        ("FANOUT_CONCURRENCY", "many"),
    ] {
        let mut vars: std::collections::HashMap<String, String> = base_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        vars.insert(var.into(), bad.into());
        assert_eq!(Config::from_env(&vars).unwrap_err().var(), var, "{bad}");
    }
}
