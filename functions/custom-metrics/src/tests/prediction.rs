//! Prediction drift (`prediction_<statistic>`, `prediction_baseline_drift`, violations with
//! feature `prediction`): the model output against the served package's prediction baseline
//! (`driftloop:prediction-baseline`), `PREDICTION_BASELINE_S3_URI`, or the `PREDICTION_FEATURE`
//! column of its data-quality baseline.

use super::*;
use driftloop::monitoring::baselines::PREDICTION_BASELINE_METADATA_KEY;

const PREDICTION: &str = "s3://baselines/churn/3/prediction_statistics.json";

/// Record `i`'s score: ten scores `0.05 .. 0.95`, each a tenth of the records, moved up by
/// `shift` tenths (clamped at 0.99). Short decimals: serde_json's default float parsing (the
/// baseline is read with it) is exact for them, but may be one ulp off for a 17-digit value such
/// as `0.1 + 0.05`, which would split a tie group between baseline and window.
fn score(i: usize, shift: usize) -> f64 {
    let j = i % 10 + shift;
    if j > 9 {
        0.99
    } else {
        format!("0.{j}5").parse().unwrap()
    }
}

/// `n` records of the hour starting at `hour`, scores shifted by `shift`, with labels.
fn seed(store: &InMemoryStore, hour: &str, n: usize, shift: usize) {
    let path = hour.replace(['-', 'T'], "/");
    let (mut capture, mut truth) = (String::new(), String::new());
    for i in 0..n {
        let id = format!("{hour}-{i:05}");
        let time = format!("{hour}:{:02}:{:02}Z", (i / 60) % 60, i % 60);
        capture.push_str(&cap(&id, &time, score(i, shift), 30));
        capture.push('\n');
        truth.push_str(&gt(&id, u8::from(i % 3 == 0)));
        truth.push('\n');
    }
    store.insert(
        &format!("{CAPTURE}/churn/AllTraffic/{path}/00-00-000-a.jsonl"),
        capture,
    );
    store.insert(&format!("{GT}/{path}/labels-0001.jsonl"), truth);
}

/// The `prediction_statistics.json` of a reference window of the unshifted scores (what
/// `driftloop-metrics run --prediction-drift` writes).
fn reference_prediction_statistics() -> String {
    let mut e = Engine::new(MonitorConfig {
        prediction_drift: true,
        ..MonitorConfig::default()
    });
    for i in 0..1000 {
        e.push_capture_line(
            &cap(&format!("ref-{i}"), "2024-04-01T00:00:00Z", score(i, 0), 30),
            "ref",
            i as u64,
        );
    }
    e.finish()
        .unwrap()
        .prediction_statistics_json()
        .unwrap()
        .to_string()
}

/// Package v3 served, naming its prediction baseline in its customer metadata.
fn world_with_prediction_baseline(extra: &[(&'static str, &str)]) -> World {
    let mut env = vec![("MODEL_PACKAGE_GROUP_NAME", "churn")];
    env.extend_from_slice(extra);
    let w = world(&env);
    let mut p = package("churn", 3, 10, ApprovalStatus::Approved);
    p.drift_check_data_quality = Baseline::default();
    p.customer_metadata
        .insert(PREDICTION_BASELINE_METADATA_KEY.into(), PREDICTION.into());
    let arn = p.summary.arn.clone();
    w.registry.add(p);
    w.hosting.serve("churn", "churn-v3", &arn);
    w.store
        .insert(PREDICTION, reference_prediction_statistics());
    w
}

fn prediction_violations(e: &driftloop::publish::OutgoingEvent) -> Vec<Value> {
    e.detail["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["feature_name"] == "prediction")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_shifted_output_publishes_prediction_drift_and_a_violation() {
    let w = world_with_prediction_baseline(&[]);
    seed(&w.store, "2024-05-01T09", 500, 3);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(
        b["prediction"],
        json!({"source": "package", "uri": PREDICTION, "feature": "prediction"}),
        "{b}"
    );
    assert!(b["uris"].as_array().unwrap().contains(&json!(PREDICTION)));
    let o = &out.windows[0];
    assert_eq!(o.status, "CompletedWithViolations", "{o:?}");
    // In Model Monitor's data namespace, with the alarm's dimensions.
    let data: Vec<_> = w
        .metrics
        .datums()
        .into_iter()
        .filter(|(_, d)| d.name.starts_with("prediction_"))
        .collect();
    assert!(data.iter().all(|(ns, _)| ns == ENDPOINT_DATA_NAMESPACE));
    for name in [
        "prediction_baseline_drift",
        "prediction_psi",
        "prediction_js",
        "prediction_ks",
        "prediction_ks_pvalue",
        "prediction_hellinger",
        "prediction_wasserstein",
    ] {
        assert_eq!(metric(&w, name).len(), 1, "{name}: {data:?}");
    }
    // Over Model Monitor's default threshold (0.1); KS D: three tenths of the reference lie
    // below every shifted score.
    let drift = metric(&w, "prediction_baseline_drift")[0];
    assert!(drift > 0.15, "{drift}");
    let ks = metric(&w, "prediction_ks")[0];
    assert!((ks - 0.3).abs() < 0.01, "{ks}");
    assert!(metric(&w, "prediction_psi")[0] > 0.5, "{data:?}");
    let e = &w.events.events()[0];
    assert_eq!(e.detail_type, VIOLATIONS);
    let v = prediction_violations(e);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["constraint_check_type"], "baseline_drift_check");
    assert!(
        v[0]["description"]
            .as_str()
            .unwrap()
            .contains("exceeds threshold: 0.1")
    );
    assert!((e.detail["metrics"]["prediction_psi"].as_f64().unwrap() > 0.5));
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let violations = json_at(&w.store, &format!("{dir}/constraint_violations.json"));
    assert!(
        violations["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["feature_name"] == "prediction")
    );
}

#[tokio::test]
async fn an_unshifted_output_publishes_zero_drift_and_no_violation() {
    let w = world_with_prediction_baseline(&[]);
    seed(&w.store, "2024-05-01T09", 500, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows[0].status, "Completed", "{:?}", out.windows[0]);
    assert_eq!(metric(&w, "prediction_baseline_drift"), [0.0]);
    assert_eq!(metric(&w, "prediction_ks"), [0.0]);
    assert_eq!(metric(&w, "prediction_psi"), [0.0]);
    assert!(prediction_violations(&w.events.events()[0]).is_empty());
}

#[tokio::test]
async fn the_environments_baseline_and_feature_override_the_packages() {
    // The data-quality baseline's `_c0` (the output column) is a constant 0.5: PREDICTION_FEATURE
    // picks it from the file PREDICTION_BASELINE_S3_URI names, not the package's metadata.
    let w = world_with_prediction_baseline(&[
        (
            "PREDICTION_BASELINE_S3_URI",
            "s3://baselines/churn/1/statistics.json",
        ),
        ("PREDICTION_FEATURE", "_c0"),
    ]);
    dq_baseline(&w.store);
    seed(&w.store, "2024-05-01T09", 500, 0);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["prediction"]["source"], "environment", "{b}");
    assert_eq!(b["prediction"]["feature"], "_c0");
    assert!(!b["uris"].as_array().unwrap().contains(&json!(PREDICTION)));
    // Half the scores are above the baseline's constant.
    let ks = metric(&w, "prediction_ks");
    assert!(ks[0] >= 0.5, "{ks:?}");
    assert_eq!(prediction_violations(&w.events.events()[0]).len(), 1);
}

#[tokio::test]
async fn without_a_package_group_the_environments_baseline_still_applies() {
    let w = world(&[("PREDICTION_BASELINE_S3_URI", PREDICTION)]);
    w.store
        .insert(PREDICTION, reference_prediction_statistics());
    seed(&w.store, "2024-05-01T09", 500, 3);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageGroupName"], Value::Null);
    assert_eq!(b["prediction"]["source"], "environment");
    assert_eq!(w.registry.list_calls(), 0, "no registry without a group");
    let ks = metric(&w, "prediction_ks");
    assert!((ks[0] - 0.3).abs() < 0.01, "{ks:?}");
    // A bad URI is a configuration error naming the variable.
    let vars: std::collections::HashMap<String, String> = base_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([(
            "PREDICTION_BASELINE_S3_URI".into(),
            "baselines/x.json".into(),
        )])
        .collect();
    let e = Config::from_env(&vars).unwrap_err();
    assert!(e.to_string().contains("PREDICTION_BASELINE_S3_URI"), "{e}");
}

#[tokio::test]
async fn an_unusable_prediction_baseline_is_reported_and_the_run_goes_on() {
    let w = world_with_prediction_baseline(&[]);
    w.store.insert(PREDICTION, "not json".to_owned());
    seed(&w.store, "2024-05-01T09", 200, 3);
    let out = handle(serde_json::from_str(SCHEDULE).unwrap(), &w.deps)
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["prediction"], Value::Null);
    assert!(
        b["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .contains("driftloop:prediction-baseline")),
        "{b}"
    );
    assert_eq!(out.windows[0].status, "Completed");
    assert!(metric(&w, "prediction_baseline_drift").is_empty());
    assert_eq!(metric(&w, "accuracy").len(), 1);
}
