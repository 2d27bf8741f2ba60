use super::*;
use chrono::{DateTime, Utc};
use driftloop::doubles::{InMemoryRegistry, InMemoryStore, package};
use driftloop::doubles::{RecordingEvents, RecordingMetrics};
use driftloop::metrics::dq::suggest::suggest_constraints;
use driftloop::metrics::{Engine, MonitorConfig};
use driftloop::monitoring::report::{
    COMPLETED, ENDPOINT_DATA_NAMESPACE, ENDPOINT_MODEL_NAMESPACE, VIOLATIONS,
};
use driftloop::monitoring::run::{PUBLISH_ATTEMPTS, SOURCE};
use driftloop::registry::{ApprovalStatus, Baseline};
use serde_json::json;

const SCHEDULE: &str = include_str!("../../../events/custom-metrics-schedule.json");
const UPLOAD: &str = include_str!("../../../events/custom-metrics-ground-truth-created.json");
const BACKFILL: &str = include_str!("../../../events/custom-metrics-backfill.json");
const BATCH: &str = include_str!("../../../events/custom-metrics-batch-transform.json");

const CAPTURE: &str = "s3://driftloop-monitoring/capture";
const GT: &str = "s3://driftloop-monitoring/ground-truth/churn";
const REPORTS: &str = "s3://driftloop-monitoring/reports";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn base_env() -> Vec<(&'static str, String)> {
    vec![
        ("CAPTURE_S3_URI", CAPTURE.into()),
        ("GROUND_TRUTH_S3_URI", GT.into()),
        ("REPORT_S3_URI", REPORTS.into()),
        ("ENDPOINT_NAME", "churn".into()),
        ("PROBLEM_TYPE", "BinaryClassification".into()),
        ("MONITORING_SCHEDULE_NAME", "churn-quality".into()),
        ("DEDUP_QUIET_SECONDS", "0".into()),
        ("READ_CONCURRENCY", "3".into()),
    ]
}

fn config(extra: &[(&'static str, &str)]) -> Config {
    let mut vars: std::collections::HashMap<String, String> = base_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_env(&vars).unwrap()
}

struct World {
    store: Arc<InMemoryStore>,
    metrics: Arc<RecordingMetrics>,
    events: Arc<RecordingEvents>,
    registry: Arc<InMemoryRegistry>,
    deps: Deps,
}

fn world_with(config: Config, now: &str) -> World {
    let store = Arc::new(InMemoryStore::default());
    let metrics = Arc::new(RecordingMetrics::default());
    let events = Arc::new(RecordingEvents::default());
    let registry = Arc::new(InMemoryRegistry::default());
    let now = t(now);
    let deps = Deps {
        registry: registry.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        events: events.clone(),
        config,
        clock: Arc::new(move || now),
    };
    World {
        store,
        metrics,
        events,
        registry,
        deps,
    }
}

fn world(extra: &[(&'static str, &str)]) -> World {
    world_with(config(extra), "2024-05-01T12:00:00Z")
}

/// A real-time capture line: CSV input `age,plan`, CSV output score.
fn cap(id: &str, time: &str, score: f64, age: u32) -> String {
    format!(
        r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{age},{plan}","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{time}"}},"eventVersion":"0"}}"#,
        plan = if age.is_multiple_of(2) {
            "basic"
        } else {
            "premium"
        }
    )
}

fn gt(id: &str, label: u8) -> String {
    format!(
        r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#
    )
}

/// `n` predictions in the hour starting at `hour` (`2024-05-01T09`), split over two capture
/// files, and their labels in the ground-truth folder of the same hour: score > 0.5 is right
/// except for every 5th record.
fn seed_hour(store: &InMemoryStore, hour: &str, n: usize, age_shift: u32) -> (usize, usize) {
    let path = hour.replace(['-', 'T'], "/");
    let mut files = [String::new(), String::new()];
    let mut labels = String::new();
    for i in 0..n {
        let id = format!("{hour}-{i:05}");
        let score = (i % 10) as f64 / 10.0 + 0.05;
        let minute = (i * 59 / n.max(1)) as u32;
        let time = format!("{hour}:{minute:02}:{:02}Z", i % 60);
        files[i % 2].push_str(&cap(&id, &time, score, 20 + age_shift + (i % 40) as u32));
        files[i % 2].push('\n');
        let right = u8::from(score > 0.5);
        labels.push_str(&gt(&id, if i % 5 == 0 { 1 - right } else { right }));
        labels.push('\n');
    }
    store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/{path}/00-00-000-a.jsonl"),
        files[0].clone(),
    );
    store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/{path}/30-00-000-b.jsonl"),
        files[1].clone(),
    );
    store.insert(&format!("{GT}/{path}/labels-0001.jsonl"), labels);
    (n, n)
}

fn json_at(store: &InMemoryStore, uri: &str) -> Value {
    serde_json::from_str(&store.text(uri).unwrap_or_else(|| panic!("no object {uri}"))).unwrap()
}

fn report_dir(window: &str, hour_path: &str) -> String {
    format!("{REPORTS}/churn/AllTraffic/churn-quality/{hour_path}/{window}")
}

fn metric(w: &World, name: &str) -> Vec<f64> {
    w.metrics.named(name).iter().map(|d| d.value).collect()
}

#[tokio::test]
async fn scheduled_run_writes_reports_metrics_and_one_event() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 400, 0);
    seed_hour(&w.store, "2024-05-01T10", 50, 0); // the next window: not read
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows.len(), 1);
    let o = &out.windows[0];
    assert_eq!(
        (o.window.start, o.window.end),
        (t("2024-05-01T09:00:00Z"), t("2024-05-01T10:00:00Z"))
    );
    assert_eq!(o.status, "Completed");
    assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 400);

    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let stats = json_at(&w.store, &format!("{dir}/statistics.json"));
    assert_eq!(stats["dataset"]["item_count"], 400);
    // Every 5th record is wrong: accuracy 0.8, with a standard deviation (>= 200 samples).
    let acc = &stats["binary_classification_metrics"]["accuracy"];
    assert!(
        (acc["value"].as_f64().unwrap() - 0.8).abs() < 1e-12,
        "{acc}"
    );
    assert!(acc["standard_deviation"].is_number());
    assert_eq!(
        json_at(&w.store, &format!("{dir}/constraint_violations.json")),
        json!({"violations": []})
    );
    let summary = json_at(&w.store, &format!("{dir}/summary.json"));
    assert_eq!(summary["status"], "Completed");
    assert_eq!(summary["inputs"]["captureObjects"], 2);
    assert_eq!(summary["fingerprint"].as_str().unwrap().len(), 32);
    assert!(summary["text"].as_str().unwrap().contains("400 matched"));

    // Model Monitor's namespace and dimensions; the datums at the window's start.
    let datums = w.metrics.datums();
    assert!(
        datums.iter().all(|(ns, _)| ns == ENDPOINT_MODEL_NAMESPACE),
        "no data quality without a baseline"
    );
    let accuracy = w.metrics.named("accuracy");
    assert_eq!(accuracy.len(), 1);
    assert!((accuracy[0].value - 0.8).abs() < 1e-12);
    assert_eq!(accuracy[0].timestamp, Some(t("2024-05-01T09:00:00Z")));
    assert_eq!(
        accuracy[0].dimensions,
        vec![
            ("Endpoint".into(), "churn".into()),
            ("MonitoringSchedule".into(), "churn-quality".into())
        ]
    );
    assert_eq!(metric(&w, "records_matched"), [400.0]);
    assert_eq!(metric(&w, "records_malformed"), [0.0]);
    assert_eq!(metric(&w, "window_empty"), [0.0]);
    assert!(w.metrics.call_sizes().iter().all(|n| *n <= 1000));

    let events = w.events.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.source.as_str(), e.detail_type.as_str()),
        (SOURCE, COMPLETED)
    );
    assert_eq!(
        e.detail["window"],
        json!({"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"})
    );
    assert_eq!(
        e.detail["reports"]["statistics"],
        format!("{dir}/statistics.json")
    );
    assert_eq!(e.detail["trigger"], "schedule");
    assert!((e.detail["metrics"]["accuracy"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    assert_eq!(
        e.detail["metricsPublished"].as_u64().unwrap() as usize,
        datums.len()
    );
}

#[tokio::test]
async fn offset_shifts_the_scheduled_window_and_reads_late_labels() {
    // Offset 60: the 10:05 run evaluates 08:00-09:00, and reads labels collected until 10:00.
    let w = world(&[("WINDOW_OFFSET_MINUTES", "60")]);
    seed_hour(&w.store, "2024-05-01T08", 100, 0);
    // Move the labels to the next hour's folder: collected late.
    let labels = w
        .store
        .text(&format!("{GT}/2024/05/01/08/labels-0001.jsonl"))
        .unwrap();
    w.store
        .objects
        .lock()
        .unwrap()
        .remove(&format!("{GT}/2024/05/01/08/labels-0001.jsonl"));
    w.store
        .insert(&format!("{GT}/2024/05/01/09/late.jsonl"), labels);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows[0].window.start, t("2024-05-01T08:00:00Z"));
    assert_eq!(
        out.windows[0].counts.as_ref().unwrap()["records_matched"],
        100
    );
}

#[tokio::test]
async fn a_capture_file_started_just_before_the_window_is_read() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    // Started 09:58:30, records from 09:58:31 to 10:00:10 (in the window: 2).
    let late_file: String = [
        ("a", "09:58:31"),
        ("b", "09:59:59"),
        ("c", "10:00:00"),
        ("d", "10:00:10"),
    ]
    .iter()
    .map(|(id, t)| cap(&format!("edge-{id}"), &format!("2024-05-01T{t}Z"), 0.9, 30) + "\n")
    .collect();
    w.store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/58-30-000-edge.jsonl"),
        late_file.clone(),
    );
    // Started 09:50, like the hour's other files: cannot hold records of 10:00 any more; not read.
    w.store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/50-00-000-old.jsonl"),
        late_file,
    );
    let labels: String = ["a", "b", "c", "d"]
        .iter()
        .map(|id| gt(&format!("edge-{id}"), 1) + "\n")
        .collect();
    w.store
        .insert(&format!("{GT}/2024/05/01/10/edge-labels.jsonl"), labels);
    let out = handle(
        json!({"window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"}}),
        &w.deps,
    )
    .await
    .unwrap();
    let o = &out.windows[0];
    let c = o.counts.as_ref().unwrap();
    assert_eq!(
        (
            c["records_matched"].as_u64(),
            c["records_outside_window"].as_u64()
        ),
        (Some(2), Some(2)),
        "{c}"
    );
    let off = world(&[("CAPTURE_FILE_LOOKBACK_MINUTES", "0")]);
    for (k, v) in w.store.objects.lock().unwrap().iter() {
        off.store
            .objects
            .lock()
            .unwrap()
            .insert(k.clone(), v.clone());
    }
    let out = handle(
        json!({"window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"}}),
        &off.deps,
    )
    .await
    .unwrap();
    assert_eq!(
        out.windows[0].status, "NoData",
        "without the lookback the window has no capture"
    );
}

#[tokio::test]
async fn malformed_lines_are_counted_published_and_sampled() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 20, 0);
    w.store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/59-00-000-bad.jsonl"),
        "{\"truncated\n\u{0}garbage\n",
    );
    w.store.insert(
        &format!("{GT}/2024/05/01/09/bad-labels.jsonl"),
        "not json\n",
    );
    w.store.objects.lock().unwrap().insert(
        format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/59-30-000-latin1.jsonl"),
        (vec![0xff, 0xfe, b'\n'], "application/octet-stream".into()),
    );
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let counts = out.windows[0].counts.clone().unwrap();
    assert_eq!(counts["records_malformed"], 4, "{counts}");
    assert_eq!(counts["records_matched"], 20);
    assert_eq!(metric(&w, "records_malformed"), [4.0]);
    let e = &w.events.events()[0];
    let samples = e.detail["errorSamples"].as_array().unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s.as_str().unwrap().contains("59-00-000-bad.jsonl:1")),
        "{samples:?}"
    );
}

#[tokio::test]
async fn an_empty_window_is_an_explicit_outcome() {
    let w = world(&[]);
    // Capture but no ground truth.
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    w.store
        .objects
        .lock()
        .unwrap()
        .retain(|k, _| !k.starts_with(GT));
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "NoData");
    assert_eq!(o.reason.as_deref(), Some("no ground truth for the window"));
    assert_eq!(metric(&w, "window_empty"), [1.0]);
    assert_eq!(metric(&w, "records_matched"), [0.0]);
    assert_eq!(metric(&w, "records_unmatched_predictions"), [10.0]);
    let e = &w.events.events()[0];
    assert_eq!(e.detail_type, COMPLETED);
    assert_eq!(e.detail["status"], "NoData");
    assert!(
        w.store
            .text(&format!(
                "{}/summary.json",
                report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09")
            ))
            .is_some()
    );

    // Nothing at all.
    let w = world(&[]);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(
        out.windows[0].reason.as_deref(),
        Some("no data capture in the window")
    );
    assert_eq!(w.events.events()[0].detail["counts"]["window_empty"], 1);
}

#[tokio::test]
async fn model_quality_constraints_of_the_approved_package_raise_violations() {
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    let mut p = package("churn", 3, 10, ApprovalStatus::Approved);
    p.drift_check_data_quality = Baseline::default();
    p.drift_check_model_quality = Baseline {
        statistics: None,
        constraints: Some("s3://baselines/churn/3/mq-constraints.json".into()),
    };
    w.registry.add(p);
    w.registry.add(package(
        "churn",
        4,
        20,
        ApprovalStatus::PendingManualApproval,
    ));
    w.store.insert(
        "s3://baselines/churn/3/mq-constraints.json",
        r#"{"version":0.0,"binary_classification_constraints":{"accuracy":{"threshold":0.9,"comparison_operator":"LessThanThreshold"},"recall":{"threshold":0.1,"comparison_operator":"LessThanThreshold"}}}"#,
    );
    seed_hour(&w.store, "2024-05-01T09", 100, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(
        out.baseline.as_ref().unwrap()["modelPackageArn"],
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
    );
    let o = &out.windows[0];
    assert_eq!(
        (o.status.as_str(), o.violation_count),
        ("CompletedWithViolations", 1)
    );
    let e = &w.events.events()[0];
    assert_eq!(e.detail_type, VIOLATIONS);
    assert_eq!(e.detail["violations"][0]["metric_name"], "accuracy");
    assert_eq!(
        e.resources,
        ["arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"]
    );
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    assert_eq!(
        json_at(&w.store, &format!("{dir}/constraint_violations.json"))["violations"][0]["constraint_check_type"],
        "LessThanThreshold"
    );
    assert_eq!(metric(&w, "constraint_violations"), [1.0]);
}

/// A data-quality baseline suggested from "training" capture.
fn dq_baseline(store: &InMemoryStore) {
    let mut engine = Engine::new(MonitorConfig {
        data_quality: true,
        ..Default::default()
    });
    for i in 0..500u32 {
        engine.push_capture_line(
            &cap(
                &format!("train-{i}"),
                "2024-04-01T00:00:00Z",
                0.5,
                20 + i % 40,
            ),
            "train",
            u64::from(i),
        );
    }
    let r = engine.finish().unwrap();
    store.insert(
        "s3://baselines/churn/1/statistics.json",
        r.data_quality_statistics_json().unwrap().to_string(),
    );
    store.insert(
        "s3://baselines/churn/1/constraints.json",
        suggest_constraints(r.data_quality.as_ref().unwrap()).to_string(),
    );
}

#[tokio::test]
async fn data_quality_baseline_turns_on_drift_checks_and_data_metrics() {
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    w.registry
        .add(package("churn", 1, 0, ApprovalStatus::Approved));
    dq_baseline(&w.store);
    // Ages shifted by 100: drift on the age column (`_c1`: output first, then input).
    seed_hour(&w.store, "2024-05-01T09", 300, 100);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "CompletedWithViolations", "{o:?}");
    let dq: Vec<_> = w
        .metrics
        .datums()
        .into_iter()
        .filter(|(ns, _)| ns == ENDPOINT_DATA_NAMESPACE)
        .map(|(_, d)| d)
        .collect();
    let drift = dq
        .iter()
        .find(|d| d.name == "feature_baseline_drift__c1")
        .expect("drift metric");
    assert!(drift.value > 0.5, "{drift:?}");
    assert!(dq.iter().any(|d| d.name == "feature_non_null__c1"));
    let e = &w.events.events()[0];
    assert_eq!(e.detail_type, VIOLATIONS);
    assert!(
        e.detail["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["constraint_check_type"] == "baseline_drift_check"
                && v["feature_name"] == "_c1")
    );
    assert!(
        e.detail["metrics"]["feature_baseline_drift__c1"]
            .as_f64()
            .unwrap()
            > 0.5
    );
}

#[tokio::test]
async fn missing_baselines_are_reported_not_fatal() {
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    w.registry
        .add(package("churn", 1, 0, ApprovalStatus::Approved)); // its baseline files do not exist
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let problems = out.baseline.as_ref().unwrap()["problems"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(out.windows[0].status, "Completed");
    let none = world(&[("MODEL_PACKAGE_GROUP_NAME", "nothing-approved")]);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &none.deps)
        .await
        .unwrap();
    assert!(
        out.baseline.unwrap()["problems"][0]
            .as_str()
            .unwrap()
            .contains("no approved")
    );
    // A throttled registry is retryable.
    let throttled = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    throttled.registry.fail_next(AwsError::classify(
        "sagemaker",
        "ListModelPackages",
        Some("ThrottlingException"),
        Some(400),
        "slow",
    ));
    let err = handle(serde_json::from_str(SCHEDULE).unwrap(), &throttled.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Retryable.Throttled");
}

fn upload_event(key: &str) -> Value {
    let mut e: Value = serde_json::from_str(UPLOAD).unwrap();
    e["detail"]["object"]["key"] = json!(key);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_uploads_makes_one_run() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 50, 0);
    w.store
        .objects
        .lock()
        .unwrap()
        .retain(|k, _| !k.starts_with(GT));
    let keys: Vec<String> = (0..6)
        .map(|i| format!("ground-truth/churn/2024/05/01/09/labels-{i:04}.jsonl"))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let labels: String = (0..50)
            .filter(|n| n % 6 == i)
            .map(|n| gt(&format!("2024-05-01T09-{n:05}"), 1) + "\n")
            .collect();
        w.store
            .insert(&format!("s3://driftloop-monitoring/{k}"), labels);
    }
    let World {
        store,
        metrics,
        events,
        deps,
        ..
    } = w;
    let deps = Arc::new(deps);
    let mut tasks = Vec::new();
    for k in &keys {
        let deps = deps.clone();
        let event = upload_event(k);
        tasks.push(tokio::spawn(async move { handle(event, &deps).await }));
    }
    let mut decisions = Vec::new();
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out.windows.len(), 1);
        decisions.push(out.windows[0].decision.clone().unwrap());
    }
    assert_eq!(
        decisions.iter().filter(|d| *d == "run").count(),
        1,
        "{decisions:?}"
    );
    assert_eq!(decisions.iter().filter(|d| *d == "superseded").count(), 5);
    assert_eq!(decisions[5], "run", "the newest upload's invocation runs");
    assert_eq!(events.events().len(), 1);
    assert_eq!(
        events.events()[0].detail["counts"]["records_matched"],
        50,
        "it read every file of the burst"
    );
    assert_eq!(metrics.named("records_matched").len(), 1);

    // A redelivery of the newest event: the inputs are unchanged.
    let again = handle(upload_event(&keys[5]), &deps).await.unwrap();
    assert_eq!(again.windows[0].decision.as_deref(), Some("up_to_date"));
    assert_eq!(events.events().len(), 1);
    // A later upload changes the inputs: one more run.
    let late = "ground-truth/churn/2024/05/01/09/labels-0099.jsonl";
    store.insert(
        &format!("s3://driftloop-monitoring/{late}"),
        gt("2024-05-01T09-00001", 0),
    );
    let more = handle(upload_event(late), &deps).await.unwrap();
    assert_eq!(more.windows[0].decision.as_deref(), Some("run"));
    assert_eq!(events.events().len(), 2);
}

#[tokio::test]
async fn a_run_that_failed_to_publish_is_not_up_to_date_for_its_retry() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    w.events.fail_next(PublishError::Invalid {
        what: "event",
        reason: "refused".into(),
    });
    let err = handle(serde_json::from_str(UPLOAD).unwrap(), &w.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.InvalidPublication");
    let summary = json_at(
        &w.store,
        &format!(
            "{}/summary.json",
            report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09")
        ),
    );
    assert!(
        summary["fingerprint"].is_null(),
        "reports written, completion not marked"
    );
    // The redelivered event runs again and completes.
    let out = handle(serde_json::from_str(UPLOAD).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows[0].decision.as_deref(), Some("run"));
    assert_eq!(w.events.events().len(), 1);
    let summary = json_at(
        &w.store,
        &format!(
            "{}/summary.json",
            report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09")
        ),
    );
    assert_eq!(summary["eventId"], json!(out.windows[0].event_id));
    assert_eq!(summary["fingerprint"].as_str().unwrap().len(), 32);
    let again = handle(serde_json::from_str(UPLOAD).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(again.windows[0].decision.as_deref(), Some("up_to_date"));
}

#[tokio::test]
async fn uploads_for_windows_not_due_or_elsewhere_do_nothing() {
    let w = world_with(
        config(&[("WINDOW_OFFSET_MINUTES", "120")]),
        "2024-05-01T10:30:00Z",
    );
    seed_hour(&w.store, "2024-05-01T09", 5, 0);
    let out = handle(serde_json::from_str(UPLOAD).unwrap(), &w.deps)
        .await
        .unwrap();
    // Labels of 09:xx can belong to 07:00 (due at 10:00), 08:00 (due at 11:00) and 09:00 (12:00).
    let d: Vec<_> = out
        .windows
        .iter()
        .map(|o| (o.window.start, o.decision.clone().unwrap()))
        .collect();
    assert_eq!(
        d,
        [
            (t("2024-05-01T07:00:00Z"), "run".to_owned()),
            (t("2024-05-01T08:00:00Z"), "not_due".to_owned()),
            (t("2024-05-01T09:00:00Z"), "not_due".to_owned())
        ]
    );
    assert_eq!(w.events.events().len(), 1);
    let out = handle(upload_event("elsewhere/2024/05/01/09/x.jsonl"), &w.deps)
        .await
        .unwrap();
    assert!(
        out.ignored
            .unwrap()
            .contains("not under the ground-truth prefix")
    );
}

#[tokio::test]
async fn backfill_evaluates_each_window_and_reruns_overwrite() {
    let w = world(&[]);
    for h in ["06", "07", "08"] {
        seed_hour(&w.store, &format!("2024-05-01T{h}"), 30, 0);
    }
    let event: Value = serde_json::from_str(BACKFILL).unwrap();
    let out = handle(event.clone(), &w.deps).await.unwrap();
    assert_eq!(out.windows.len(), 3);
    assert!(out.windows.iter().all(|o| o.status == "Completed" && o.counts.as_ref().unwrap()["records_matched"] == 30));
    assert_eq!(w.events.events().len(), 3);
    let reports = |store: &InMemoryStore| {
        store
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(REPORTS))
            .cloned()
            .collect::<Vec<_>>()
    };
    let first = reports(&w.store);
    assert_eq!(first.len(), 9);
    assert!(first.contains(&format!(
        "{}/summary.json",
        report_dir("20240501T0700Z-20240501T0800Z", "2024/05/01/07")
    )));
    handle(event, &w.deps).await.unwrap();
    assert_eq!(
        reports(&w.store),
        first,
        "a re-run overwrites the same keys"
    );
    assert_eq!(
        out.windows[0].run_id,
        handle(serde_json::from_str(BACKFILL).unwrap(), &w.deps)
            .await
            .unwrap()
            .windows[0]
            .run_id
    );
}

#[tokio::test]
async fn overrides_apply_per_request_and_bad_ones_are_permanent() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 20, 0);
    let req = json!({"window": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"},
        "metricsNamespace": "driftloop/churn", "eventBusName": "monitoring",
        "metricsDimensions": {"Team": "risk"}, "probabilityThreshold": 0.99});
    let out = handle(req, &w.deps).await.unwrap();
    assert_eq!(out.windows[0].status, "Completed");
    assert!(
        w.metrics
            .datums()
            .iter()
            .all(|(ns, d)| ns == "driftloop/churn"
                && d.dimensions
                    == [
                        ("Endpoint".into(), "churn".into()),
                        ("MonitoringSchedule".into(), "churn-quality".into()),
                        ("Team".into(), "risk".into())
                    ])
    );
    let e = &w.events.events()[0];
    assert_eq!(e.event_bus_name.as_deref(), Some("monitoring"));
    assert!(
        e.detail["reports"]["summary"]
            .as_str()
            .unwrap()
            .contains("/churn/AllTraffic/churn-quality/")
    );
    // Threshold 0.99: nothing predicted positive -> recall 0.
    assert_eq!(e.detail["metrics"]["recall"], 0.0);
    for (bad, field) in [
        (json!({"captureS3Uri": "https://x"}), "captureS3Uri"),
        (json!({"problemType": "ranking"}), "problemType"),
        (
            json!({"metricsNamespace": "AWS/SageMaker"}),
            "metricsNamespace",
        ),
        (json!({"probabilityThreshold": 2.0}), "probabilityThreshold"),
        (
            json!({"metricsDimensions": {"Team": ""}}),
            "metricsDimensions",
        ),
        // Issue 14: a request cannot change whose metric it is (these used to be accepted).
        (
            json!({"metricsDimensions": {"Endpoint": "churn-prod"}}),
            "identity dimension",
        ),
        (
            json!({"metricsDimensions": {"MonitoringSchedule": "x"}}),
            "identity dimension",
        ),
        (
            json!({"monitoringScheduleName": "adhoc"}),
            "monitoringScheduleName",
        ),
        (json!({"endpointName": "churn-prod"}), "endpointName"),
        (
            json!({"endpointName": "churn-prod", "captureS3Uri": "s3://elsewhere/capture"}),
            "Endpoint dimension",
        ),
    ] {
        let err = handle(bad, &w.deps).await.unwrap_err();
        assert_eq!(err.error_type(), "Permanent.InvalidOverride");
        assert!(err.to_string().contains(field), "{err}");
    }
    let err = handle(json!({"windw": {}}), &w.deps).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.BadEvent");
}

/// Batch transform CSV output with GenerateInferenceId: `score,<id>,<time>`.
#[tokio::test]
async fn batch_transform_manifests_are_joined_through_the_generated_inference_id() {
    let w = world(&[]);
    let capture = "s3://driftloop-monitoring/batch-capture/churn-daily";
    let mut out0 = String::new();
    let mut out1 = String::new();
    let mut labels = String::new();
    for i in 0..40 {
        let id = format!("5b7a0c1e-0000-4000-8000-{i:012}");
        let score = if i % 2 == 0 { 0.9 } else { 0.2 };
        let row = format!("{score},{id},2024-05-01T03:{:02}:00Z\n", i % 60);
        if i < 20 {
            out0.push_str(&row)
        } else {
            out1.push_str(&row)
        }
        labels.push_str(&gt(&id, u8::from(i % 2 == 0 || i % 8 == 1)));
        labels.push('\n');
    }
    w.store.insert(
        "s3://driftloop-monitoring/transform/out/part-0.csv.out",
        out0,
    );
    w.store.insert(
        "s3://driftloop-monitoring/transform/out/part-1.csv.out",
        out1,
    );
    w.store.insert(
        &format!("{capture}/output/2024/05/01/03/manifest-1.json"),
        r#"[{"prefix":"s3://driftloop-monitoring/transform/out/"},"part-0.csv.out","part-1.csv.out"]"#,
    );
    w.store.insert(
        &format!("{capture}/input/2024/05/01/03/manifest-1.json"),
        r#"[{"prefix":"s3://driftloop-monitoring/transform/in/"},"part-0.csv"]"#,
    );
    w.store
        .insert(&format!("{GT}/2024/05/01/12/labels.jsonl"), labels);
    let out = handle(serde_json::from_str(BATCH).unwrap(), &w.deps)
        .await
        .unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "Completed", "{o:?}");
    assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 40);
    // 20 predicted positive, all right; of 20 predicted negative, 5 (i % 8 == 1) are positives.
    assert_eq!(o.metrics.as_ref().unwrap()["precision"], 1.0);
    assert_eq!(o.metrics.as_ref().unwrap()["recall"], 0.8);
    let e = &w.events.events()[0];
    assert_eq!(e.detail["target"], json!({"mode": "batchTransform"}));
    assert_eq!(e.detail["inputs"]["outputManifests"], 1);
    assert_eq!(e.detail["inputs"]["inputManifests"], 1);
    assert!(
        e.detail["reports"]["statistics"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{REPORTS}/batch-transform/churn-daily-batch/2024/05/01/00/"
            ))
    );
    let (ns, d) = &w.metrics.datums()[0];
    assert_eq!(ns, "aws/sagemaker/ModelMonitoring/model-metrics");
    assert_eq!(
        d.dimensions,
        vec![("MonitoringSchedule".into(), "churn-daily-batch".into())]
    );
    // JSON lines output (`SageMakerInferenceId` / `SageMakerInferenceTime`), score by JSON path.
    let json_rows: String = (0..40)
        .map(|i| {
            let id = format!("5b7a0c1e-0000-4000-8000-{i:012}");
            format!("{}\n", json!({"SageMakerInferenceId": id, "SageMakerInferenceTime": "2024-05-01T05:00:00Z", "prediction": {"score": if i % 2 == 0 { 0.9 } else { 0.2 }}}))
        })
        .collect();
    w.store.insert(
        "s3://driftloop-monitoring/transform/json/part-0.jsonl.out",
        json_rows,
    );
    let json_capture = "s3://driftloop-monitoring/batch-capture/json";
    w.store.insert(
        &format!("{json_capture}/output/2024/05/01/05/m.json"),
        r#"[{"prefix":"s3://driftloop-monitoring/transform/json/"},"part-0.jsonl.out"]"#,
    );
    let mut req: Value = serde_json::from_str(BATCH).unwrap();
    req["captureS3Uri"] = json!(json_capture);
    req["batchOutputFormat"] = json!("json");
    req["probabilityAttribute"] = json!("prediction.score");
    let out = handle(req, &w.deps).await.unwrap();
    let o = &out.windows[0];
    assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 40, "{o:?}");
    assert_eq!(o.metrics.as_ref().unwrap()["recall"], 0.8);

    // A broken manifest is a permanent, named error.
    w.store.insert(
        &format!("{capture}/output/2024/05/01/04/manifest-2.json"),
        "{oops",
    );
    let err = handle(serde_json::from_str(BATCH).unwrap(), &w.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.BadManifest");
    assert!(err.to_string().contains("manifest-2.json"));
}

#[tokio::test]
async fn throttled_metrics_are_retried_and_permanent_failures_fail() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    let throttle = || {
        PublishError::Aws(AwsError::classify(
            "cloudwatch",
            "PutMetricData",
            Some("Throttling"),
            Some(400),
            "Rate exceeded",
        ))
    };
    w.metrics.fail_next(throttle());
    w.metrics.fail_next(throttle());
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert!(out.windows[0].metrics_published > 0);
    assert_eq!(
        metric(&w, "records_matched"),
        [10.0],
        "sent once, after the retries"
    );
    w.metrics.fail_next(PublishError::Aws(AwsError::classify(
        "cloudwatch",
        "PutMetricData",
        Some("InvalidParameterValue"),
        Some(400),
        "bad",
    )));
    let err = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.Client");
    for _ in 0..PUBLISH_ATTEMPTS {
        w.metrics.fail_next(throttle());
    }
    let err = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.Throttled"
    );
}

#[tokio::test]
async fn windows_older_than_cloudwatch_accepts_get_reports_and_an_event_only() {
    let w = world_with(config(&[]), "2024-06-01T00:00:00Z");
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert!(
        out.windows[0]
            .metrics_skipped
            .as_deref()
            .unwrap()
            .contains("14 days")
    );
    assert!(w.metrics.datums().is_empty());
    assert_eq!(w.events.events().len(), 1);
}

#[test]
fn config_defaults_and_errors_name_the_variable() {
    let c = config(&[]);
    assert_eq!(
        c.window,
        WindowRule {
            minutes: 60,
            offset_minutes: 0,
            ground_truth_delay_minutes: 0
        }
    );
    assert_eq!(c.settings.variant_name, "AllTraffic");
    assert_eq!(c.settings.capture_mode, CaptureMode::Realtime);
    assert_eq!(
        config(&[("WINDOW_OFFSET_MINUTES", "90")])
            .window
            .ground_truth_delay_minutes,
        90
    );
    assert_eq!(
        config(&[("METRICS_DIMENSIONS", "Team=risk, Stage=prod")])
            .settings
            .metrics_dimensions
            .len(),
        2
    );
    let vars = |extra: &[(&str, &str)]| {
        let mut m: std::collections::HashMap<String, String> = base_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in extra {
            m.insert((*k).to_owned(), (*v).to_owned());
        }
        m
    };
    for (extra, var) in [
        (vec![("CAPTURE_S3_URI", "")], "CAPTURE_S3_URI"),
        (vec![("REPORT_S3_URI", "bucket/x")], "REPORT_S3_URI"),
        (vec![("ENDPOINT_NAME", " ")], "ENDPOINT_NAME"),
        (vec![("GROUND_TRUTH_S3_URI", "")], "GROUND_TRUTH_S3_URI"),
        (vec![("PROBLEM_TYPE", "ranking")], "PROBLEM_TYPE"),
        (vec![("WINDOW_MINUTES", "50")], "WINDOW_MINUTES"),
        (
            vec![("PROBABILITY_THRESHOLD", "1.5")],
            "PROBABILITY_THRESHOLD",
        ),
        (vec![("METRICS_NAMESPACE", "AWS/x")], "METRICS_NAMESPACE"),
        (
            vec![("METRICS_DIMENSIONS", "novalue")],
            "METRICS_DIMENSIONS",
        ),
        (vec![("CAPTURE_MODE", "stream")], "CAPTURE_MODE"),
        (vec![("DATA_QUALITY", "maybe")], "DATA_QUALITY"),
        (vec![("READ_CONCURRENCY", "0")], "READ_CONCURRENCY"),
        (vec![("DEDUP_QUIET_SECONDS", "3600")], "DEDUP_QUIET_SECONDS"),
        (
            vec![("CAPTURE_FILE_LOOKBACK_MINUTES", "90")],
            "CAPTURE_FILE_LOOKBACK_MINUTES",
        ),
    ] {
        let err = Config::from_env(&vars(&extra)).unwrap_err();
        assert_eq!(err.var(), var, "{err}");
    }
    // Batch transform needs no endpoint; data quality alone needs no ground truth.
    let c = Config::from_env(&vars(&[
        ("CAPTURE_MODE", "batchTransform"),
        ("ENDPOINT_NAME", ""),
        ("PROBLEM_TYPE", ""),
        ("GROUND_TRUTH_S3_URI", ""),
    ]))
    .unwrap();
    assert_eq!(c.settings.capture_mode, CaptureMode::BatchTransform);
}

#[test]
fn every_documented_sample_parses() {
    for sample in [SCHEDULE, UPLOAD, BACKFILL, BATCH] {
        parse_trigger(serde_json::from_str(sample).unwrap()).unwrap();
    }
    let bad = handle_blocking(json!("a string"));
    assert_eq!(bad.unwrap_err().error_type(), "Permanent.BadEvent");
}

fn handle_blocking(event: Value) -> Result<Output, Error> {
    let w = world(&[]);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(handle(event, &w.deps))
}
