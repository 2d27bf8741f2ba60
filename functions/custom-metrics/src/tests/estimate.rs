//! Label-free estimates (`estimated_*`) from the reference calibration the served model's package
//! names in its `CustomerMetadataProperties` (`driftloop:calibration`).

use super::*;
use driftloop::metrics::quality::calibration::fit_binary;
use driftloop::metrics::{ProblemType, QualityState};
use driftloop::monitoring::baselines::CALIBRATION_METADATA_KEY;

const CALIBRATION: &str = "s3://baselines/churn/3/calibration.json";

/// Record `i` of a calibrated stream: 20 scores `j/20 + 0.025`; of every 20 records at a score,
/// `round(20·score)` are positive, so the score is the positive rate.
fn record(i: usize) -> (f64, u8) {
    let j = i % 20;
    let s = j as f64 / 20.0 + 0.025;
    let r = (i / 20) % 20;
    (s, u8::from(r < (20.0 * s).round() as usize))
}

/// `n` records of the hour starting at `hour`: capture always, labels when `labels`.
/// `skew`: records with a score below 0.5 are kept only every `skew`-th time (a covariate shift
/// towards high scores that keeps the calibration).
fn seed(store: &InMemoryStore, hour: &str, n: usize, labels: bool, skew: usize) -> usize {
    let path = hour.replace(['-', 'T'], "/");
    let (mut capture, mut truth, mut kept) = (String::new(), String::new(), 0);
    for i in 0..n {
        let (s, y) = record(i);
        if s < 0.5 && i % skew != 0 {
            continue;
        }
        kept += 1;
        let id = format!("{hour}-{i:05}");
        let time = format!("{hour}:{:02}:{:02}Z", (i / 60) % 60, i % 60);
        capture.push_str(&cap(&id, &time, s, 30));
        capture.push('\n');
        truth.push_str(&gt(&id, y));
        truth.push('\n');
    }
    store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/{path}/00-00-000-a.jsonl"),
        capture,
    );
    if labels {
        store.insert(&format!("{GT}/{path}/labels-0001.jsonl"), truth);
    }
    kept
}

/// The calibration of 4,000 labelled reference records (the `calibrate` command's fit).
fn reference_calibration() -> String {
    let cfg = MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        ..MonitorConfig::default()
    };
    let (mut capture, mut truth) = (String::new(), String::new());
    for i in 0..4000 {
        let (s, y) = record(i);
        capture.push_str(&cap(&format!("ref-{i}"), "2024-04-01T00:00:00Z", s, 30));
        capture.push('\n');
        truth.push_str(&gt(&format!("ref-{i}"), y));
        truth.push('\n');
    }
    let mut e = Engine::new(cfg);
    e.feed_ground_truth("gt", truth.as_bytes()).unwrap();
    e.feed_capture("cap", capture.as_bytes(), |_| {}).unwrap();
    let r = e.finish().unwrap();
    let Some(QualityState::Binary(b)) = e.snapshot().quality else {
        panic!("binary")
    };
    let c = fit_binary(&b, r.quality.as_ref().unwrap(), 0.5, None, None, 0.05).unwrap();
    c.to_json().to_string()
}

fn calibrated_world() -> World {
    let w = world(&[("MODEL_PACKAGE_GROUP_NAME", "churn")]);
    let mut p = package("churn", 3, 10, ApprovalStatus::Approved);
    p.drift_check_data_quality = Baseline::default();
    p.customer_metadata
        .insert(CALIBRATION_METADATA_KEY.into(), CALIBRATION.into());
    w.registry.add(p);
    w.store.insert(CALIBRATION, reference_calibration());
    w
}

#[tokio::test]
async fn a_window_without_labels_publishes_estimates_in_the_alarms_metric() {
    let w = calibrated_world();
    let n = seed(&w.store, "2024-05-01T09", 2000, false, 4);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.baseline.as_ref().unwrap()["calibration"], true);
    let o = &out.windows[0];
    assert_eq!(o.status, "NoData", "no labels yet");
    // The estimate, in Model Monitor's model namespace and dimensions: what an alarm watches.
    let est = w.metrics.named("estimated_accuracy");
    assert_eq!(est.len(), 1);
    assert_eq!(
        est[0].dimensions,
        vec![
            ("Endpoint".into(), "churn".into()),
            ("MonitoringSchedule".into(), "churn-quality".into())
        ]
    );
    assert_eq!(est[0].timestamp, Some(t("2024-05-01T09:00:00Z")));
    let datums = w.metrics.datums();
    assert!(
        datums
            .iter()
            .filter(|(_, d)| d.name.starts_with("estimat"))
            .all(|(ns, _)| ns == ENDPOINT_MODEL_NAMESPACE)
    );
    for name in [
        "estimated_precision",
        "estimated_recall",
        "estimated_f1",
        "estimated_auc",
        "estimated_accuracy_std",
        "estimation_reliable",
    ] {
        assert_eq!(metric(&w, name).len(), 1, "{name}");
    }
    assert_eq!(metric(&w, "estimation_reliable"), [1.0]);
    assert_eq!(metric(&w, "records_matched"), [0.0], "no labels yet");
    // The expected accuracy of the seeded window, computed by hand from its composition.
    let expected: f64 = (0..2000)
        .filter(|i| record(*i).0 >= 0.5 || i % 4 == 0)
        .map(|i| {
            let s = record(i).0;
            let p = (20.0 * s).round() / 20.0;
            if s > 0.5 { p } else { 1.0 - p }
        })
        .sum::<f64>()
        / n as f64;
    assert!(
        (est[0].value - expected).abs() < 0.02,
        "{} vs {expected}",
        est[0].value
    );
    // The event and the summary carry the estimates too.
    let e = &w.events.events()[0];
    assert!(
        (e.detail["metrics"]["estimated_accuracy"].as_f64().unwrap() - est[0].value).abs() < 1e-12
    );
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let summary = json_at(&w.store, &format!("{dir}/summary.json"));
    assert!(
        summary["text"]
            .as_str()
            .unwrap()
            .contains("estimated_accuracy")
    );
    assert!(
        summary["baseline"]["uris"]
            .as_array()
            .unwrap()
            .contains(&json!(CALIBRATION))
    );
}

#[tokio::test]
async fn with_labels_the_estimate_sits_beside_the_realised_metric() {
    let w = calibrated_world();
    seed(&w.store, "2024-05-01T09", 2000, true, 3);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows[0].status, "Completed");
    let (acc, est) = (metric(&w, "accuracy"), metric(&w, "estimated_accuracy"));
    assert_eq!((acc.len(), est.len()), (1, 1));
    assert!((acc[0] - est[0]).abs() < 0.03, "{acc:?} {est:?}");
    let (auc, est_auc) = (metric(&w, "auc"), metric(&w, "estimated_auc"));
    assert!((auc[0] - est_auc[0]).abs() < 0.03, "{auc:?} {est_auc:?}");
}

#[tokio::test]
async fn an_unreadable_calibration_is_reported_and_the_run_goes_on() {
    let w = calibrated_world();
    w.store
        .insert(CALIBRATION, r#"{"kind": "statistics"}"#.to_owned());
    seed(&w.store, "2024-05-01T09", 400, true, 1);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["calibration"], false);
    assert!(
        b["problems"][0]
            .as_str()
            .unwrap()
            .contains("driftloop:calibration"),
        "{b}"
    );
    assert_eq!(out.windows[0].status, "Completed");
    assert!(metric(&w, "estimated_accuracy").is_empty());
    assert_eq!(metric(&w, "accuracy").len(), 1);
}
