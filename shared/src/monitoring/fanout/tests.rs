use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::clock::fixed_clock;
use crate::doubles::{
    InMemoryHosting, InMemoryRegistry, InMemoryStore, RecordingEvents, RecordingMetrics,
};
use crate::error::AwsError;
use crate::metrics::{CaptureFormat, ProblemType};
use crate::storage::{ObjectInfo, S3Uri};

const CAPTURE: &str = "s3://bkt/capture";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn settings(endpoint: &str) -> Settings {
    Settings {
        capture_mode: super::super::CaptureMode::Realtime,
        endpoint_name: Some(endpoint.into()),
        variant_name: "AllTraffic".into(),
        capture: S3Uri::parse(CAPTURE).unwrap(),
        ground_truth: Some(S3Uri::parse(&format!("s3://bkt/labels/{endpoint}")).unwrap()),
        report: S3Uri::parse("s3://bkt/reports").unwrap(),
        batch_format: CaptureFormat::BatchCsv,
        problem_type: Some(ProblemType::Regression),
        inference_attribute: None,
        probability_attribute: None,
        probability_threshold: 0.5,
        ground_truth_attribute: None,
        positive_label: "1".into(),
        negative_label: "0".into(),
        forecast_quantiles: vec![0.5],
        forecast_seasonality: 1,
        data_quality: None,
        model_package_group: None,
        metrics_namespace: None,
        metrics_dimensions: vec![],
        schedule_name: "q".into(),
        event_bus: None,
        feature_names: None,
        prediction_baseline: None,
        prediction_feature: None,
    }
}

fn target(endpoint: &str) -> MonitorTarget {
    MonitorTarget {
        id: TargetId {
            endpoint_name: endpoint.into(),
            group: Some(endpoint.into()),
            stage: Some("production".into()),
            source: "test".into(),
        },
        settings: settings(endpoint),
        window: WindowRule {
            minutes: 60,
            offset_minutes: 0,
            ground_truth_delay_minutes: 0,
        },
    }
}

/// An in-memory store whose listings take a while, counting how many run at once.
#[derive(Default)]
struct SlowStore {
    inner: InMemoryStore,
    running: AtomicUsize,
    most: AtomicUsize,
    listed: Mutex<Vec<String>>,
}

#[async_trait]
impl ObjectStore for SlowStore {
    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, AwsError> {
        self.inner.get(uri).await
    }
    async fn put(&self, uri: &S3Uri, body: Vec<u8>, content_type: &str) -> Result<(), AwsError> {
        self.inner.put(uri, body, content_type).await
    }
    async fn list(&self, prefix: &S3Uri) -> Result<Vec<ObjectInfo>, AwsError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.listed.lock().unwrap().push(prefix.to_string());
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        let r = self.inner.list(prefix).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

struct World {
    store: Arc<dyn ObjectStore>,
    slow: Arc<SlowStore>,
    registry: InMemoryRegistry,
    hosting: InMemoryHosting,
    metrics: RecordingMetrics,
    events: RecordingEvents,
    clock: Clock,
}

impl World {
    fn new() -> World {
        let slow = Arc::new(SlowStore::default());
        World {
            store: slow.clone(),
            slow,
            registry: InMemoryRegistry::default(),
            hosting: InMemoryHosting::default(),
            metrics: RecordingMetrics::default(),
            events: RecordingEvents::default(),
            clock: fixed_clock(t("2024-05-01T12:00:00Z")),
        }
    }

    fn ports(&self) -> Ports<'_> {
        Ports {
            registry: &self.registry,
            serving: &self.hosting,
            store: &self.store,
            metrics: &self.metrics,
            events: &self.events,
            clock: &self.clock,
        }
    }
}

const LIMITS: Limits = Limits {
    capture_lookback: Duration::zero(),
    read_concurrency: 2,
    dedup_quiet: std::time::Duration::ZERO,
};

fn schedule() -> Trigger {
    Trigger::Schedule {
        time: t("2024-05-01T10:05:00Z"),
        rule: None,
    }
}

/// One record of `endpoint` in 09:00-10:00, predicted `p`, labelled `l`.
fn seed(store: &InMemoryStore, endpoint: &str, p: f64, l: f64) {
    store.insert(
        &format!("{CAPTURE}/{endpoint}/AllTraffic/2024/05/01/09/00-00-000-x.jsonl"),
        format!(
            r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{p}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{endpoint}-1","inferenceTime":"2024-05-01T09:10:00Z"}},"eventVersion":"0"}}"#
        ),
    );
    store.insert(
        &format!("s3://bkt/labels/{endpoint}/2024/05/01/09/l.jsonl"),
        format!(
            r#"{{"groundTruthData":{{"data":"{l}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{endpoint}-1"}},"eventVersion":"0"}}"#
        ),
    );
}

#[tokio::test]
async fn targets_run_concurrently_within_the_bound_and_each_once() {
    let w = World::new();
    let targets: Vec<_> = (0..12).map(|i| target(&format!("ep{i:02}"))).collect();
    for (i, t) in targets.iter().enumerate() {
        seed(&w.slow.inner, &t.id.endpoint_name, i as f64 + 1.0, i as f64);
    }
    let out = fan_out(w.ports(), &LIMITS, &schedule(), targets, 3).await;
    assert_eq!(out.len(), 12);
    let most = w.slow.most.load(Ordering::SeqCst);
    assert!(
        most <= 3,
        "at most 3 targets at a time, saw {most} listings at once"
    );
    assert!(most >= 2, "targets overlap, saw {most}");
    for (i, o) in out.iter().enumerate() {
        // In the order given, each evaluated once, with its own data.
        assert_eq!(o.target.endpoint_name, format!("ep{i:02}"));
        assert_eq!(o.status, TargetStatus::Completed);
        assert_eq!(o.evaluated(), 1);
        let mae = o.windows[0].metrics.as_ref().unwrap()["mae"]
            .as_f64()
            .unwrap();
        assert_eq!(mae, 1.0);
    }
    assert_eq!(w.events.events().len(), 12);
    assert_eq!(tally(&out), (12, 0, 0));
}

#[tokio::test]
async fn a_target_with_the_identity_of_an_earlier_one_is_not_run_again() {
    let w = World::new();
    seed(&w.slow.inner, "ep", 2.0, 1.0);
    let mut again = target("ep");
    again.id.group = Some("other".into());
    let out = fan_out(
        w.ports(),
        &LIMITS,
        &schedule(),
        vec![target("ep"), again],
        4,
    )
    .await;
    assert_eq!(out[0].status, TargetStatus::Completed);
    assert_eq!(out[1].status, TargetStatus::Ignored);
    assert!(
        out[1]
            .ignored
            .as_deref()
            .unwrap()
            .contains("endpoint \"ep\" (group \"ep\", production)")
    );
    assert_eq!(w.events.events().len(), 1, "the window evaluated once");
    // Another schedule name is another identity (its own reports and metrics).
    let mut other = target("ep");
    other.settings.schedule_name = "q2".into();
    let out = fan_out(
        w.ports(),
        &LIMITS,
        &schedule(),
        vec![target("ep"), other],
        4,
    )
    .await;
    assert_eq!(tally(&out), (2, 0, 0));
}

#[tokio::test]
async fn a_failing_target_is_listed_and_the_others_complete() {
    let w = World::new();
    for e in ["a", "b", "c"] {
        seed(&w.slow.inner, e, 2.0, 1.0);
    }
    w.slow
        .inner
        .fail_under(&format!("{CAPTURE}/b/"), "SlowDown", 503);
    let out = fan_out(
        w.ports(),
        &LIMITS,
        &schedule(),
        vec![target("a"), target("b"), target("c")],
        1,
    )
    .await;
    assert_eq!(tally(&out), (2, 1, 0));
    let b = &out[1];
    assert_eq!(b.status, TargetStatus::Failed);
    assert_eq!(b.error_type.as_deref(), Some("Retryable.Throttled"));
    assert!(b.error.as_deref().unwrap().contains("injected fault"));
    assert_eq!(b.errors.len(), 1);
    assert_eq!(b.windows[0].status, OutcomeStatus::Failed);
    let json = serde_json::to_value(b).unwrap();
    assert_eq!(json["status"], "Failed");
    assert_eq!(json["target"]["endpointName"], "b");
    assert_eq!(json["errorType"], "Retryable.Throttled");
    assert_eq!(w.events.events().len(), 2);
}

#[tokio::test]
async fn a_bad_direct_window_fails_each_target_as_a_bad_event() {
    let w = World::new();
    let trigger = crate::monitoring::parse_trigger(serde_json::json!({
        "window": {"start": "2024-05-01T06:00:00Z", "end": "2024-05-01T00:00:00Z"}
    }))
    .unwrap();
    let out = fan_out(w.ports(), &LIMITS, &trigger, vec![target("a")], 2).await;
    assert_eq!(out[0].status, TargetStatus::Failed);
    assert_eq!(out[0].error_type.as_deref(), Some("Permanent.BadEvent"));
}
