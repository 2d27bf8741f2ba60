use super::*;
use chrono::{DateTime, Duration, Utc};
use driftloop::doubles::{InMemoryHosting, InMemoryRegistry, InMemoryStore, package};
use driftloop::doubles::{RecordingEvents, RecordingMetrics};
use driftloop::metrics::dq::suggest::suggest_constraints;
use driftloop::metrics::{Engine, MonitorConfig};
use driftloop::monitoring::Baselines;
use driftloop::monitoring::Publication;
use driftloop::monitoring::Window;
use driftloop::monitoring::report::{
    COMPLETED, ENDPOINT_DATA_NAMESPACE, ENDPOINT_MODEL_NAMESPACE, VIOLATIONS,
};
use driftloop::monitoring::run::{PUBLISH_ATTEMPTS, SOURCE};
use driftloop::monitoring::{CaptureMode, WindowRule};
use driftloop::registry::{ApprovalStatus, Baseline};
use serde_json::json;

mod catalogue;
mod estimate;
mod prediction;
mod scaleout;

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
    hosting: Arc<InMemoryHosting>,
    deps: Deps,
}

fn world_with(config: Config, now: &str) -> World {
    let store = Arc::new(InMemoryStore::default());
    let metrics = Arc::new(RecordingMetrics::default());
    let events = Arc::new(RecordingEvents::default());
    let registry = Arc::new(InMemoryRegistry::default());
    let hosting = Arc::new(InMemoryHosting::default());
    let now = t(now);
    let deps = Deps {
        registry: registry.clone(),
        serving: hosting.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        events: events.clone(),
        config,
        clock: Arc::new(move || now),
        executions: None,
        catalogue: None,
    };
    World {
        store,
        metrics,
        events,
        registry,
        hosting,
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

/// Group `churn`: v3 approved with strict model-quality constraints (accuracy ≥ 0.9: the seeded
/// hour's 0.8 violates), v4 approved later with loose ones (accuracy ≥ 0.1).
fn two_approved_packages(w: &World) -> (String, String) {
    let mut arns = Vec::new();
    for (version, minute, threshold) in [(3, 10, 0.9), (4, 20, 0.1)] {
        let mut p = package("churn", version, minute, ApprovalStatus::Approved);
        p.drift_check_data_quality = Baseline::default();
        let uri = format!("s3://baselines/churn/{version}/mq-constraints.json");
        p.drift_check_model_quality.constraints = Some(uri.clone());
        arns.push(p.summary.arn.clone());
        w.registry.add(p);
        w.store.insert(
            &uri,
            format!(
                r#"{{"version":0.0,"binary_classification_constraints":{{"accuracy":{{"threshold":{threshold},"comparison_operator":"LessThanThreshold"}}}}}}"#
            ),
        );
    }
    (arns[0].clone(), arns[1].clone())
}

#[tokio::test]
async fn the_endpoint_is_checked_against_the_package_it_serves() {
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    let (v3, v4) = two_approved_packages(&w);
    // The endpoint still serves v3 although v4 is the latest approved (e.g. production, not yet
    // promoted).
    w.hosting.serve("churn", "churn-3", &v3);
    seed_hour(&w.store, "2024-05-01T09", 100, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], v3.as_str());
    assert_eq!(b["source"], "endpoint");
    assert_eq!(b["fallbackReason"], Value::Null);
    assert_eq!(b["served"]["endpointConfigName"], "churn-churn-3");
    assert_eq!(b["served"]["modelName"], "churn-3");
    let o = &out.windows[0];
    assert_eq!(
        (o.status.as_str(), o.violation_count),
        ("CompletedWithViolations", 1)
    );
    let e = &w.events.events()[0];
    assert_eq!(e.detail["baseline"]["source"], "endpoint");
    assert_eq!(e.resources, [v3.as_str()]);
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let summary = json_at(&w.store, &format!("{dir}/summary.json"));
    assert_eq!(summary["baseline"]["modelPackageArn"], v3.as_str());
    let first_fp = summary["fingerprint"].clone();

    // Once the endpoint has moved to v4, the same window is checked against v4's constraints.
    w.hosting.serve("churn", "churn-4", &v4);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(
        out.baseline.as_ref().unwrap()["modelPackageArn"],
        v4.as_str()
    );
    assert_eq!(
        (
            out.windows[0].status.as_str(),
            out.windows[0].violation_count
        ),
        ("Completed", 0)
    );
    let summary = json_at(&w.store, &format!("{dir}/summary.json"));
    assert_eq!(summary["baseline"]["served"]["modelName"], "churn-4");
    assert_ne!(
        summary["fingerprint"], first_fp,
        "another package, other inputs"
    );
}

#[tokio::test]
async fn without_a_served_package_the_latest_approved_is_used_and_reported() {
    // No such endpoint (e.g. deployed outside the loop under another name).
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    let (_, v4) = two_approved_packages(&w);
    seed_hour(&w.store, "2024-05-01T09", 100, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], v4.as_str());
    assert_eq!(b["source"], "latestApproved");
    assert_eq!(b["fallbackReason"], "endpoint \"churn\" does not exist");
    assert_eq!(out.windows[0].violation_count, 0);
    assert_eq!(
        w.events.events()[0].detail["baseline"]["fallbackReason"],
        "endpoint \"churn\" does not exist"
    );

    // A model deployed from an image and artifact: no ModelPackageName.
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    let (v3, v4) = two_approved_packages(&w);
    w.hosting.serve("churn", "churn-custom", &v3);
    w.hosting
        .state
        .lock()
        .unwrap()
        .models
        .remove("churn-custom");
    w.hosting.add_unregistered_model("churn-custom");
    seed_hour(&w.store, "2024-05-01T09", 100, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], v4.as_str());
    assert_eq!(b["source"], "latestApproved");
    assert!(
        b["fallbackReason"]
            .as_str()
            .unwrap()
            .contains("names no ModelPackageName"),
        "{b}"
    );

    // A throttled DescribeEndpoint is retryable: the run fails and is redelivered.
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    let (v3, _) = two_approved_packages(&w);
    w.hosting.serve("churn", "churn-3", &v3);
    w.hosting.fail_next_read(AwsError::classify(
        "sagemaker",
        "DescribeEndpoint",
        Some("ThrottlingException"),
        Some(400),
        "Rate exceeded",
    ));
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    let err = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Retryable.Throttled");
    assert!(w.events.events().is_empty());
}

#[tokio::test]
async fn without_a_package_group_the_endpoint_is_not_looked_up() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.baseline, None);
    assert_eq!(w.hosting.snapshot().reads, 0);
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
    let datums = w.metrics.datums().len();
    assert!(datums > 0, "the metrics went out before the event failed");
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
    assert_eq!(
        w.metrics.datums().len(),
        datums,
        "the retry of the same inputs puts no datum twice"
    );
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
async fn uploads_evaluate_every_ended_window_and_skip_open_ones_or_elsewhere() {
    // Changed on purpose (issue 13): windows that have ended are evaluated at once
    // (provisionally), due or not; before, 08:00 and 09:00 waited for their scheduled runs.
    let w = world_with(
        config(&[("WINDOW_OFFSET_MINUTES", "120")]),
        "2024-05-01T10:30:00Z",
    );
    seed_hour(&w.store, "2024-05-01T09", 5, 0);
    let out = handle(serde_json::from_str(UPLOAD).unwrap(), &w.deps)
        .await
        .unwrap();
    // Labels of 09:xx can belong to 07:00, 08:00 and 09:00: all have ended at 10:30.
    let d: Vec<_> = out
        .windows
        .iter()
        .map(|o| {
            (
                o.window.start,
                o.decision.clone().unwrap(),
                o.publication.map(|p| p.as_str()),
            )
        })
        .collect();
    assert_eq!(
        d,
        [
            (
                t("2024-05-01T07:00:00Z"),
                "run".to_owned(),
                Some("provisional")
            ),
            (
                t("2024-05-01T08:00:00Z"),
                "run".to_owned(),
                Some("provisional")
            ),
            (
                t("2024-05-01T09:00:00Z"),
                "run".to_owned(),
                Some("provisional")
            )
        ]
    );
    assert_eq!(w.events.events().len(), 3);
    // At 09:30 the 09:00 window is still open: skipped; 07:00 and 08:00 run.
    let early = world_with(
        config(&[("WINDOW_OFFSET_MINUTES", "120")]),
        "2024-05-01T09:30:00Z",
    );
    seed_hour(&early.store, "2024-05-01T09", 5, 0);
    let out = handle(serde_json::from_str(UPLOAD).unwrap(), &early.deps)
        .await
        .unwrap();
    let d: Vec<_> = out
        .windows
        .iter()
        .map(|o| o.decision.clone().unwrap())
        .collect();
    assert_eq!(d, ["run", "run", "open"]);
    assert!(
        out.windows[2]
            .reason
            .as_deref()
            .unwrap()
            .contains("still open")
    );
    assert_eq!(early.events.events().len(), 2);
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
    // Three reports and the final stream's record per window (changed on purpose: the record is
    // new in issue 13).
    assert_eq!(first.len(), 12);
    assert!(first.contains(&format!(
        "{}/cloudwatch-final.json",
        report_dir("20240501T0700Z-20240501T0800Z", "2024/05/01/07")
    )));
    assert!(
        out.windows
            .iter()
            .all(|o| o.publication == Some(Publication::Final))
    );
    let datums = w.metrics.datums().len();
    assert!(datums > 0);
    assert!(first.contains(&format!(
        "{}/summary.json",
        report_dir("20240501T0700Z-20240501T0800Z", "2024/05/01/07")
    )));
    let again = handle(event, &w.deps).await.unwrap();
    assert_eq!(
        reports(&w.store),
        first,
        "a re-run overwrites the same keys"
    );
    assert_eq!(
        w.metrics.datums().len(),
        datums,
        "a re-run of the same inputs puts no datum"
    );
    assert!(again.windows.iter().all(|o| {
        o.metrics_published == 0
            && o.metrics_skipped
                .as_deref()
                .unwrap()
                .contains("same inputs")
    }));
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
    // After the daily window (a backfill of a due window: final, Model Monitor's dimensions).
    let w = world_with(config(&[]), "2024-05-02T06:00:00Z");
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

    // A broken manifest is skipped: the window is evaluated from the others, and the manifest is
    // counted as malformed capture with a sample naming it (issue 13: no longer a failed window).
    w.store.insert(
        &format!("{capture}/output/2024/05/01/04/manifest-2.json"),
        "{oops",
    );
    let out = handle(serde_json::from_str(BATCH).unwrap(), &w.deps)
        .await
        .unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "Completed", "{o:?}");
    let counts = o.counts.as_ref().unwrap();
    assert_eq!(counts["records_matched"], 40, "{counts}");
    assert_eq!(counts["records_malformed"], 1, "{counts}");
    let e = w.events.events().last().unwrap().clone();
    let samples = e.detail["errorSamples"].as_array().unwrap();
    assert!(
        samples.iter().any(|s| {
            let s = s.as_str().unwrap();
            s.contains("manifest-2.json") && s.contains("not a batch capture manifest")
        }),
        "{samples:?}"
    );
    assert_eq!(e.detail["inputs"]["outputManifests"], 2);
}

/// Out-of-range direct invocations and events: `Permanent.BadEvent` naming what is wrong, never a
/// panic (which the caller would see as `alloc::boxed::Box<dyn Any + Send>`).
#[tokio::test]
async fn adversarial_times_windows_and_splits_are_permanent_errors() {
    let w = world(&[
        ("WINDOW_OFFSET_MINUTES", "44640"),
        ("GROUND_TRUTH_DELAY_MINUTES", "44640"),
    ]);
    let max = "+262143-12-31T23:59:59Z";
    let min = "-262144-01-01T00:00:00Z";
    let upload_at = |time: Value| {
        let mut e = upload_event("ground-truth/churn/not-an-hour/labels.jsonl");
        e["time"] = time;
        e
    };
    let cases = [
        (
            json!({"window": {"start": "+262143-12-31T22:00:00Z", "end": max}}),
            "supported range",
        ),
        (
            json!({"window": {"start": min, "end": "2024-05-01T00:00:00Z"}}),
            "supported range",
        ),
        (
            json!({"window": {"start": "2024-05-01T00:00:00Z", "end": max}, "splitMinutes": 60}),
            "supported range",
        ),
        (
            json!({"window": {"start": "1969-12-31T23:00:00Z", "end": "1970-01-01T01:00:00Z"}}),
            "supported range",
        ),
        (json!({"time": max}), "supported range"),
        (json!({"time": min}), "supported range"),
        (json!({"time": i64::MAX}), "out of range"),
        (json!({"time": i64::MIN}), "out of range"),
        (json!({"time": -1}), "supported range"),
        // Epoch milliseconds at chrono's extremes (readable, then out of range).
        (json!({"time": 8_210_266_876_799_999i64}), "supported range"),
        (
            json!({"time": -8_334_601_228_800_000i64}),
            "supported range",
        ),
        (
            json!({"window": {"start": 253_402_300_800_000i64, "end": 8_210_266_876_799_999i64}}),
            "supported range",
        ),
        (
            upload_at(json!(8_210_266_876_799_999i64)),
            "supported range",
        ),
        (json!({"time": 1e300}), "out of range"),
        (
            json!({"window": {"start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"}}),
            "31 days",
        ),
        (
            json!({"window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}, "splitMinutes": 44641}),
            "44640",
        ),
        (
            json!({"window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}, "splitMinutes": 0}),
            "split",
        ),
        (
            json!({"window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}, "splitMinutes": 4294967296u64}),
            "expected u32",
        ),
        (
            json!({"window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}, "splitMinutes": -1}),
            "expected u32",
        ),
        (
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": max, "detail": {}}),
            "supported range",
        ),
        (
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": min, "detail": {}}),
            "supported range",
        ),
        (upload_at(json!(max)), "supported range"),
        (upload_at(json!(min)), "supported range"),
        (
            json!({"source": "driftloop", "detail-type": "Model Monitoring Requested",
                "detail": {"window": {"start": min, "end": max}}}),
            "supported range",
        ),
    ];
    for (event, says) in cases {
        let err = handle(event.clone(), &w.deps)
            .await
            .expect_err(&event.to_string());
        assert_eq!(err.error_type(), "Permanent.BadEvent", "{event}: {err}");
        // chrono reads no year beyond four digits in RFC 3339: those are unreadable times.
        let m = err.to_string();
        assert!(
            m.contains(says) || m.contains("neither ISO-8601"),
            "{event}: {err}"
        );
    }
    // The earliest and latest supported windows are evaluated (nothing is there: NoData).
    for (start, end) in [
        ("1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z"),
        ("9999-12-31T22:00:00Z", "9999-12-31T23:00:00Z"),
    ] {
        let out = handle(json!({"window": {"start": start, "end": end}}), &w.deps)
            .await
            .unwrap();
        assert_eq!(out.windows[0].status, "NoData", "{start}");
    }
    assert!(
        w.metrics.datums().is_empty(),
        "far past and future windows send no metrics"
    );
}

/// Capture records whose `inferenceTime` lies at (or past) chrono's extremes are outside every
/// window: counted, the window still evaluated.
#[tokio::test]
async fn inference_times_at_chronos_extremes_are_counted_outside_the_window() {
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 20, 0);
    let lines = [
        cap("x-max", "+262143-12-31T23:59:59Z", 0.9, 30),
        cap("x-min", "-262144-01-01T00:00:00Z", 0.9, 30),
        cap("x-past", "+999999999-01-01T00:00:00Z", 0.9, 30),
        cap("x-year0", "0000-01-01T00:00:00Z", 0.9, 30),
    ]
    .join("\n");
    w.store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/45-00-000-extreme.jsonl"),
        lines,
    );
    w.store.insert(
        &format!("{GT}/2024/05/01/09/extreme-labels.jsonl"),
        ["x-max", "x-min", "x-past", "x-year0"]
            .map(|id| gt(id, 1))
            .join("\n"),
    );
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let counts = out.windows[0].counts.clone().unwrap();
    assert_eq!(counts["records_matched"], 20, "{counts}");
    assert_eq!(counts["records_outside_window"], 4, "{counts}");
    assert_eq!(counts["records_unmatched_labels"], 4, "{counts}");
}

/// With `s3:ListBucket` scoped by prefix, S3 answers 403 AccessDenied for a missing key: the
/// first S3-triggered run of a window (no previous summary) still runs, and its retry is up to
/// date. A real denial on the reports bucket still fails.
#[tokio::test]
async fn a_first_run_where_missing_keys_answer_403_is_not_a_failure() {
    let w = world(&[]);
    w.store.deny_missing(true);
    seed_hour(&w.store, "2024-05-01T09", 30, 0);
    let event = upload_event("ground-truth/churn/2024/05/01/09/labels-0001.jsonl");
    let out = handle(event.clone(), &w.deps).await.unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "Completed", "{o:?}");
    assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 30);
    let again = handle(event, &w.deps).await.unwrap();
    assert_eq!(
        again.windows[0].decision.as_deref(),
        Some("up_to_date"),
        "{again:?}"
    );
    assert_eq!(w.events.events().len(), 1);
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
    // Fresh worlds: a re-run of the published window puts nothing (changed on purpose, issue 13).
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
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
    let w = world(&[]);
    seed_hour(&w.store, "2024-05-01T09", 10, 0);
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
        (vec![("FORECAST_QUANTILES", "0.5,1")], "FORECAST_QUANTILES"),
        (vec![("FORECAST_SEASONALITY", "0")], "FORECAST_SEASONALITY"),
        (
            vec![("FORECAST_SEASONALITY", "10001")],
            "FORECAST_SEASONALITY",
        ),
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
    // Forecast: the quantiles and seasonality reach the engine's configuration.
    assert_eq!(c.settings.forecast_quantiles, [0.1, 0.5, 0.9]);
    assert_eq!(c.settings.forecast_seasonality, 1);
    let f = config(&[
        ("PROBLEM_TYPE", "Forecast"),
        ("FORECAST_QUANTILES", "0.2,0.8"),
        ("FORECAST_SEASONALITY", "24"),
    ]);
    assert_eq!(f.settings.forecast_quantiles, [0.2, 0.8]);
    assert_eq!(f.settings.forecast_seasonality, 24);
    let w = driftloop::monitoring::Window::new(
        "2024-05-01T09:00:00Z".parse().unwrap(),
        "2024-05-01T10:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let mc = driftloop::monitoring::feed::monitor_config(&f.settings, &w, &Baselines::default());
    assert_eq!(
        (mc.forecast_quantiles, mc.seasonality),
        (vec![0.2, 0.8], 24)
    );
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

// ---- Issue 13: event-driven monitoring on the real clock, one figure per window and stream ----

/// The stack's defaults (infra/template.yaml): hourly windows, `WindowOffsetMinutes` 60, the
/// ground-truth delay defaulting to the offset.
const STACK_DEFAULTS: &[(&str, &str)] =
    &[("WINDOW_MINUTES", "60"), ("WINDOW_OFFSET_MINUTES", "60")];

/// A world on the system clock.
fn real_world(extra: &[(&'static str, &str)]) -> World {
    let mut w = world(extra);
    w.deps.clock = system_clock();
    w
}

const ALARM_DIMENSIONS: [(&str, &str); 2] = [
    ("Endpoint", "churn"),
    ("MonitoringSchedule", "churn-quality"),
];

fn dims(d: &driftloop::publish::MetricDatum) -> Vec<(&str, &str)> {
    d.dimensions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The datums of `name` in the alarm's metric (Model Monitor's dimensions exactly).
fn in_alarm_metric(w: &World, name: &str) -> Vec<f64> {
    w.metrics
        .named(name)
        .iter()
        .filter(|d| dims(d) == ALARM_DIMENSIONS)
        .map(|d| d.value)
        .collect()
}

fn in_provisional_stream(w: &World, name: &str) -> Vec<f64> {
    w.metrics
        .named(name)
        .iter()
        .filter(|d| dims(d).contains(&("Publication", "provisional")))
        .map(|d| d.value)
        .collect()
}

/// Predictions of the previous hour (real clock) and their labels uploaded now, into the current
/// hour's folder (as Model Monitor expects: the upload hour). Returns the window and the key.
fn labels_uploaded_now(w: &World, n: usize, name: &str) -> (Window, String) {
    let now = Utc::now();
    let prev = driftloop::monitoring::window::floor_hour(now) - Duration::hours(1);
    seed_hour(&w.store, &prev.format("%Y-%m-%dT%H").to_string(), n, 0);
    let seeded = format!("{GT}/{}/labels-0001.jsonl", prev.format("%Y/%m/%d/%H"));
    let labels = w.store.text(&seeded).unwrap();
    w.store.objects.lock().unwrap().remove(&seeded);
    let key = format!("ground-truth/churn/{}/{name}", now.format("%Y/%m/%d/%H"));
    w.store
        .insert(&format!("s3://driftloop-monitoring/{key}"), labels);
    (Window::new(prev, prev + Duration::hours(1)).unwrap(), key)
}

fn summary_of(w: &World, window: &Window) -> Value {
    json_at(
        &w.store,
        &format!(
            "{}/summary.json",
            report_dir(
                &window.id(),
                &window.start.format("%Y/%m/%d/%H").to_string()
            )
        ),
    )
}

#[tokio::test]
async fn labels_uploaded_now_for_the_previous_hour_are_evaluated_in_the_same_invocation() {
    let w = real_world(STACK_DEFAULTS);
    let (window, key) = labels_uploaded_now(&w, 100, "labels-now.jsonl");
    let out = handle(upload_event(&key), &w.deps).await.unwrap();
    // The previous hour's window now, the current (still open) one skipped.
    let o = out
        .windows
        .iter()
        .find(|o| o.window == window)
        .unwrap_or_else(|| panic!("{window} not planned: {out:?}"));
    assert_eq!(o.decision.as_deref(), Some("run"), "{o:?}");
    assert_eq!(o.status, "Completed");
    assert_eq!(o.publication, Some(Publication::Provisional));
    assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 100);
    assert!((o.metrics.as_ref().unwrap()["accuracy"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    let open: Vec<_> = out.windows.iter().filter(|o| o.window != window).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].window.start, window.end);
    assert_eq!(open[0].decision.as_deref(), Some("open"));
    // Published in this invocation, to the provisional stream only (never the alarm's metric).
    assert!(o.metrics_published > 0);
    let accuracy = in_provisional_stream(&w, "accuracy");
    assert_eq!(accuracy.len(), 1);
    assert!((accuracy[0] - 0.8).abs() < 1e-12);
    assert_eq!(in_provisional_stream(&w, "records_matched"), [100.0]);
    assert!(in_alarm_metric(&w, "accuracy").is_empty());
    assert!(
        w.metrics
            .named("accuracy")
            .iter()
            .all(|d| d.timestamp == Some(window.start))
    );
    let e = &w.events.events()[0];
    assert_eq!(e.detail["publication"], "provisional");
    assert_eq!(e.detail["trigger"], "groundTruthUpload");
    let summary = summary_of(&w, &window);
    assert_eq!(summary["publication"], "provisional");
    assert_eq!(
        summary["cloudwatch"]["provisional"]["runId"],
        json!(o.run_id)
    );
    assert!(summary["cloudwatch"]["final"].is_null());
}

#[tokio::test]
async fn a_provisional_then_a_final_run_leave_one_datum_set_in_the_alarms_metric() {
    let w = real_world(STACK_DEFAULTS);
    let (window, key) = labels_uploaded_now(&w, 100, "labels-a.jsonl");
    let first = handle(upload_event(&key), &w.deps).await.unwrap();
    assert_eq!(first.windows[0].publication, Some(Publication::Provisional));
    // More labels (20 corrections: every 5th wrong label fixed): a second provisional run. Its
    // figures are in the reports and the event; the provisional stream keeps the first figure.
    let fixes: String = (0..100)
        .step_by(5)
        .map(|i| {
            let id = format!("{}-{i:05}", window.start.format("%Y-%m-%dT%H"));
            let score = (i % 10) as f64 / 10.0 + 0.05;
            gt(&id, u8::from(score > 0.5)) + "\n"
        })
        .collect();
    let key_b = key.replace("labels-a.jsonl", "labels-b.jsonl");
    w.store
        .insert(&format!("s3://driftloop-monitoring/{key_b}"), fixes);
    let second = handle(upload_event(&key_b), &w.deps).await.unwrap();
    let o2 = &second.windows[0];
    assert_eq!(
        (o2.decision.as_deref(), o2.publication),
        (Some("run"), Some(Publication::Provisional))
    );
    assert_eq!(o2.metrics_published, 0);
    assert!(
        o2.metrics_skipped
            .as_deref()
            .unwrap()
            .contains("provisional figure"),
        "{o2:?}"
    );
    assert_eq!(in_provisional_stream(&w, "records_matched").len(), 1);
    assert_eq!(w.events.events().len(), 2);

    // The scheduled run of the window (its next tick after it is due): final, the last word.
    let mut schedule: Value = serde_json::from_str(SCHEDULE).unwrap();
    schedule["time"] = json!((window.end + Duration::minutes(65)).to_rfc3339());
    let fin = handle(schedule.clone(), &w.deps).await.unwrap();
    let f = &fin.windows[0];
    assert_eq!(f.window, window);
    assert_eq!(f.publication, Some(Publication::Final));
    assert!(f.metrics_published > 0);
    let final_accuracy = f.metrics.as_ref().unwrap()["accuracy"].as_f64().unwrap();
    assert_eq!(
        in_alarm_metric(&w, "accuracy"),
        [final_accuracy],
        "one datum, the final figure"
    );
    assert_eq!(
        in_alarm_metric(&w, "records_matched"),
        [100.0],
        "the dashboard's Sum counts the window once, not once per run"
    );
    assert_eq!(in_provisional_stream(&w, "accuracy").len(), 1);
    // The schedule's event redelivered: the same inputs, nothing more.
    let again = handle(schedule, &w.deps).await.unwrap();
    assert_eq!(again.windows[0].publication, Some(Publication::Final));
    assert_eq!(again.windows[0].metrics_published, 0);
    assert_eq!(in_alarm_metric(&w, "accuracy").len(), 1);
    // Labels after the final run: a revision, in the reports and the event only.
    let key_c = key.replace("labels-a.jsonl", "labels-c.jsonl");
    w.store.insert(
        &format!("s3://driftloop-monitoring/{key_c}"),
        gt(
            &format!("{}-{:05}", window.start.format("%Y-%m-%dT%H"), 1),
            0,
        ),
    );
    let late = handle(upload_event(&key_c), &w.deps).await.unwrap();
    let r = &late.windows[0];
    assert_eq!(r.publication, Some(Publication::Revision));
    assert_eq!(r.metrics_published, 0);
    assert!(
        r.metrics_skipped
            .as_deref()
            .unwrap()
            .contains("final figure")
    );
    assert_eq!(in_alarm_metric(&w, "accuracy").len(), 1);
    assert_eq!(in_alarm_metric(&w, "records_matched").len(), 1);
    let last = w.events.events().last().cloned().unwrap();
    assert_eq!(last.detail["publication"], "revision");
    let summary = summary_of(&w, &window);
    assert_eq!(summary["publication"], "revision");
    assert_eq!(summary["cloudwatch"]["final"]["runId"], json!(f.run_id));
}

#[tokio::test]
async fn a_publication_stopped_half_way_resumes_after_the_calls_sent() {
    // Model and data metrics: two PutMetricData calls.
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    w.registry
        .add(package("churn", 1, 0, ApprovalStatus::Approved));
    dq_baseline(&w.store);
    seed_hour(&w.store, "2024-05-01T09", 50, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let record_uri = format!("{dir}/cloudwatch-final.json");
    let mut record = json_at(&w.store, &record_uri);
    assert_eq!(
        (record["calls"].as_u64(), record["callsSent"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(record["runId"], json!(out.windows[0].run_id));
    let first: Vec<_> = w.metrics.datums();
    let data_calls = first
        .iter()
        .filter(|(ns, _)| ns == ENDPOINT_DATA_NAMESPACE)
        .count();
    assert!(data_calls > 0);
    // As if the run had died after its first call: the retry sends the second call only.
    record["callsSent"] = json!(1);
    w.store.insert(&record_uri, record.to_string());
    let retry = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(retry.windows[0].metrics_published, data_calls);
    let sent_again: Vec<_> = w.metrics.datums()[first.len()..].to_vec();
    assert!(
        sent_again
            .iter()
            .all(|(ns, _)| ns == ENDPOINT_DATA_NAMESPACE)
    );
    assert_eq!(json_at(&w.store, &record_uri)["callsSent"], 2);
    // The first call's datums (the model metrics) went out once.
    let mut seen = std::collections::HashSet::new();
    for (ns, d) in w.metrics.datums() {
        if ns == ENDPOINT_MODEL_NAMESPACE {
            assert!(seen.insert(d.name.clone()), "{} sent twice", d.name);
        }
    }
    assert!(seen.contains("accuracy"));
    // A complete record: a further re-run sends nothing.
    let before = w.metrics.datums().len();
    handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(w.metrics.datums().len(), before);
}

// Header-named Model Monitor baselines (issue 13): a real baseline made with `header=True,
// output_columns_position='START'` (aws-samples/aws-ml-jp nyctaxi, 143 named features, the
// output `pickup_count` first) and one of Model Monitor's own runs on it, copied with their
// provenance in shared/tests/data/conformance/PROVENANCE.tsv.
const NYC_CONSTRAINTS: &str = include_str!(
    "../../../shared/tests/data/conformance/awsmljp-nyctaxi-data_quality/baseline/constraints.json"
);
const NYC_RUN_STATISTICS: &str = include_str!(
    "../../../shared/tests/data/conformance/awsmljp-nyctaxi-data_quality/reports/2020/04/06/01/statistics.json"
);
const NYC_RUN_VIOLATIONS: &str = include_str!(
    "../../../shared/tests/data/conformance/awsmljp-nyctaxi-data_quality/reports/2020/04/06/01/constraint_violations.json"
);

/// Headerless capture of the run's values (from its sketches: they hold every value), the output
/// column first, in the hour `2024-05-01T09`, with the `shifted` features moved out of range.
fn seed_nyc_hour(store: &InMemoryStore, shifted: &[&str]) -> usize {
    use driftloop::metrics::BaselineStatistics;
    use driftloop::metrics::dq::sample::rows_from_statistics;
    let stats = BaselineStatistics::parse(NYC_RUN_STATISTICS).unwrap();
    let mut rows = rows_from_statistics(&stats);
    for name in shifted {
        let i = stats.features.iter().position(|f| f.name == *name).unwrap();
        for r in rows.iter_mut() {
            r[i] = format!("{:?}", r[i].parse::<f64>().unwrap() + 1e6);
        }
    }
    let mut file = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line = json!({
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": r[1..].join(","), "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": r[0], "encoding": "CSV"},
            },
            "eventMetadata": {"eventId": format!("nyc-{i}"), "inferenceTime": format!("2024-05-01T09:{:02}:00Z", i % 60)},
            "eventVersion": "0",
        });
        file.push_str(&line.to_string());
        file.push('\n');
    }
    store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/00-00-000-a.jsonl"),
        file,
    );
    rows.len()
}

/// A data-quality-only world monitoring against the nyctaxi baseline (package group `nyctaxi`).
fn nyc_world(extra: &[(&'static str, &str)]) -> World {
    let mut vars = vec![
        ("PROBLEM_TYPE", ""),
        ("MODEL_PACKAGE_GROUP_NAME", "nyctaxi"),
    ];
    vars.extend_from_slice(extra);
    let w = world_with(config(&vars), "2024-05-01T12:00:00Z");
    w.registry
        .add(package("nyctaxi", 1, 0, ApprovalStatus::Approved));
    w.store.insert(
        "s3://baselines/nyctaxi/1/statistics.json",
        NYC_RUN_STATISTICS.to_owned(),
    );
    w.store.insert(
        "s3://baselines/nyctaxi/1/constraints.json",
        NYC_CONSTRAINTS.to_owned(),
    );
    w
}

fn kinds_of(violations: &Value) -> std::collections::BTreeSet<(String, String)> {
    violations
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["feature_name"].as_str().unwrap_or_default().to_owned(),
                v["constraint_check_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_header_named_baseline_names_headerless_capture_by_position() {
    let w = nyc_world(&[]);
    let shifted = ["history_28slots", "fare_amount_mean_100slot"];
    assert_eq!(seed_nyc_hour(&w.store, &shifted), 93);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "CompletedWithViolations", "{o:?}");
    // Violations: what Model Monitor itself reported on this data besides drift (data types of
    // the String/Integral baseline features, completeness), and drift of the shifted features
    // only — no missing or extra column.
    let real: Value = serde_json::from_str(NYC_RUN_VIOLATIONS).unwrap();
    let mut expected: std::collections::BTreeSet<_> = kinds_of(&real["violations"])
        .into_iter()
        .filter(|(_, check)| check != "baseline_drift_check")
        .collect();
    assert_eq!(expected.len(), 13);
    for f in shifted {
        expected.insert((f.to_owned(), "baseline_drift_check".to_owned()));
    }
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let report = json_at(&w.store, &format!("{dir}/constraint_violations.json"));
    assert_eq!(kinds_of(&report["violations"]), expected);
    let e = &w.events.events()[0];
    assert_eq!(e.detail_type, VIOLATIONS);
    assert_eq!(kinds_of(&e.detail["violations"]), expected);
    // The statistics and the drift metrics carry the baseline's names.
    let stats = json_at(&w.store, &format!("{dir}/statistics.json"));
    assert_eq!(stats["features"][0]["name"], "pickup_count");
    assert_eq!(stats["features"].as_array().unwrap().len(), 143);
    let drift: Vec<_> = w
        .metrics
        .datums()
        .into_iter()
        .filter(|(ns, d)| {
            ns == ENDPOINT_DATA_NAMESPACE && d.name.starts_with("feature_baseline_drift_")
        })
        .map(|(_, d)| d)
        .collect();
    assert_eq!(drift.len(), 143);
    assert!(
        drift
            .iter()
            .all(|d| !d.name.starts_with("feature_baseline_drift__c"))
    );
    for d in &drift {
        let is_shifted = shifted
            .iter()
            .any(|f| d.name == format!("feature_baseline_drift_{f}"));
        assert_eq!(d.value > 0.1, is_shifted, "{d:?}");
    }
    assert!(
        e.detail["metrics"]["feature_baseline_drift_history_28slots"]
            .as_f64()
            .unwrap()
            > 0.5
    );
}

#[tokio::test]
async fn feature_names_override_the_baselines_names() {
    // The baseline's names with the output renamed: `pickup_count` is missing, `pickups` extra.
    let c: Value = serde_json::from_str(NYC_CONSTRAINTS).unwrap();
    let mut names: Vec<String> = c["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    names[0] = "pickups".into();
    let joined = names.join(",");
    let w = nyc_world(&[("FEATURE_NAMES", &joined)]);
    assert_eq!(w.deps.config.settings.feature_names.as_ref(), Some(&names));
    seed_nyc_hour(&w.store, &[]);
    handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let got =
        kinds_of(&json_at(&w.store, &format!("{dir}/constraint_violations.json"))["violations"]);
    assert!(
        got.contains(&("pickup_count".into(), "missing_column_check".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("pickups".into(), "extra_column_check".into())),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|(_, c)| c == "baseline_drift_check"),
        "{got:?}"
    );
    // The extra column is measured under its own name; the baseline's has no data to drift.
    assert!(!w.metrics.named("feature_data_pickups").is_empty());
    assert!(
        w.metrics
            .named("feature_baseline_drift_pickup_count")
            .is_empty()
    );
    assert!(
        !w.metrics
            .named("feature_baseline_drift_history_12slots")
            .is_empty()
    );
    // A bad list names the variable.
    let mut vars: std::collections::HashMap<String, String> = base_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for bad in ["a,,b", "a,b,a"] {
        vars.insert("FEATURE_NAMES".into(), bad.into());
        assert_eq!(Config::from_env(&vars).unwrap_err().var(), "FEATURE_NAMES");
    }
}

/// `ENGINE_THREADS`: objects parsed on several threads by the broadcast join — the same
/// result as one thread (ids captured twice across objects, re-labelled, unmatched on both
/// sides, an object vanished after listing, data quality on); and the setting is validated.
#[test]
fn threads_give_the_one_thread_result() {
    use driftloop::monitoring::feed::{compute_with, engine_threads};
    use driftloop::monitoring::inputs::Inputs;
    use driftloop::storage::{ObjectInfo, S3Uri};
    let c = config(&[("DATA_QUALITY", "true")]);
    let store = Arc::new(InMemoryStore::default());
    let mut capture = Vec::new();
    let mut ground_truth = Vec::new();
    for f in 0..7 {
        let lines: Vec<String> = (0..60)
            .map(|i| {
                let n = f * 55 + i; // ids overlap between consecutive objects
                let time = format!("2024-05-01T09:{:02}:00Z", n % 60);
                cap(
                    &format!("id-{n}"),
                    &time,
                    (n % 10) as f64 / 10.0,
                    (n % 37) as u32,
                )
            })
            .collect();
        let uri = format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/part-{f}.jsonl");
        store.insert(&uri, lines.join("\n"));
        capture.push(ObjectInfo {
            uri: S3Uri::parse(&uri).unwrap(),
            size: 1,
            last_modified: None,
        });
    }
    // Listed, then gone before it is read: skipped as vanished on any thread.
    capture.insert(
        3,
        ObjectInfo {
            uri: S3Uri::parse(&format!(
                "{CAPTURE}/churn/AllTraffic/2024/05/01/09/part-gone.jsonl"
            ))
            .unwrap(),
            size: 1,
            last_modified: None,
        },
    );
    for f in 0..3 {
        let lines: Vec<String> = (0..200)
            .map(|i| gt(&format!("id-{}", 20 + f * 120 + i), ((i + f) % 2) as u8))
            .collect();
        let uri = format!("{GT}/2024/05/01/09/labels-{f}.jsonl");
        store.insert(&uri, lines.join("\n"));
        ground_truth.push(ObjectInfo {
            uri: S3Uri::parse(&uri).unwrap(),
            size: 1,
            last_modified: None,
        });
    }
    let inputs = Inputs {
        capture,
        manifests: Vec::new(),
        input_manifests: 0,
        ground_truth,
        skipped_manifests: Vec::new(),
    };
    let w = Window::new(t("2024-05-01T09:00:00Z"), t("2024-05-01T10:00:00Z")).unwrap();
    let store: Arc<dyn driftloop::storage::ObjectStore> = store;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = |threads: usize| {
        let (r, vanished) = rt
            .block_on(compute_with(
                &store,
                3,
                &c.settings,
                &w,
                &Baselines::default(),
                &inputs,
                None,
                threads,
            ))
            .unwrap();
        assert_eq!(vanished, 1, "{threads} threads");
        let mut stats = r.statistics_json();
        stats["dataset"]["evaluation_time"] = json!(null);
        (
            r.counts.clone(),
            stats,
            r.data_quality_statistics_json(),
            r.cloudwatch_metrics().len(),
        )
    };
    let one = run(1);
    assert!(
        one.0.duplicate_capture_ids > 0 && one.0.duplicate_ground_truth_ids > 0,
        "{:?}",
        one.0
    );
    assert!(
        one.0.unmatched_labels > 0 && one.0.unmatched_predictions > 0,
        "{:?}",
        one.0
    );
    for threads in [2, 4] {
        let many = run(threads);
        assert_eq!(many.0, one.0, "{threads} threads");
        assert_eq!(many.1, one.1, "{threads} threads");
        assert_eq!(many.3, one.3);
        let (a, b) = (many.2.unwrap(), one.2.clone().unwrap());
        assert_eq!(a["dataset"], b["dataset"]);
    }
    let env =
        |v: &str| std::collections::HashMap::from([("ENGINE_THREADS".to_string(), v.to_string())]);
    assert_eq!(engine_threads(&env("3")).unwrap(), 3);
    assert_eq!(
        engine_threads(&std::collections::HashMap::<String, String>::new()).unwrap(),
        1
    );
    assert!(engine_threads(&env("all")).unwrap() >= 1);
    let e = engine_threads(&env("-2")).unwrap_err();
    assert_eq!(e.error_type(), "Permanent.InvalidSetting");
}
