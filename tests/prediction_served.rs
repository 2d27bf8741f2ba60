//! Prediction drift against the emulator: the prediction baseline named by the served package's
//! `CustomerMetadataProperties` (`driftloop:prediction-baseline`, set with UpdateModelPackage
//! after registration) is read through the real SageMaker and S3 adapters, with the real clock.
//! Two endpoints serve that package in the same window: the one whose scores shifted publishes
//! `prediction_<statistic>` to CloudWatch (Model Monitor's data namespace and dimensions) and a
//! `baseline_drift_check` violation on feature `prediction`; the unshifted one publishes zeros and
//! no violation.

use std::sync::Arc;

use chrono::{Duration, Utc};
use custom_metrics::{Config, Deps, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::metrics::{Engine, MonitorConfig};
use driftloop::monitoring::baselines::PREDICTION_BASELINE_METADATA_KEY;
use driftloop::monitoring::window::WindowRule;
use driftloop_tests::monitoring::{DATA_NS, capture_line, datums, put, serve};
use driftloop_tests::seed::{create_group, create_package};
use driftloop_tests::{aws, unique};
use serde_json::{Value, json};

const SCHEDULE: &str = "prediction";

/// Record `i`'s score: one of ten short decimals `0.05 .. 0.95`, `shift` tenths higher (at most
/// 0.99).
fn score(i: usize, shift: usize) -> f64 {
    let j = i % 10 + shift;
    if j > 9 {
        0.99
    } else {
        format!("0.{j}5").parse().unwrap()
    }
}

/// The `prediction_statistics.json` of 1,000 reference scores (`driftloop-metrics run
/// --prediction-drift` writes the same).
fn prediction_baseline() -> String {
    let mut e = Engine::new(MonitorConfig {
        prediction_drift: true,
        ..MonitorConfig::default()
    });
    for i in 0..1000 {
        e.push_capture_line(
            &capture_line(&format!("r{i}"), "2024-01-01T00:00:00Z", score(i, 0)),
            "ref",
            i as u64,
        );
    }
    let r = e.finish().unwrap();
    r.prediction_statistics_json().unwrap().to_string()
}

/// custom-metrics for `endpoint`, data quality only (no problem type: no labels needed).
fn deps(aws: &driftloop::aws::Aws, bucket: &str, group: &str, endpoint: &str) -> Deps {
    let vars: std::collections::HashMap<String, String> = [
        ("CAPTURE_S3_URI", format!("s3://{bucket}/capture")),
        ("REPORT_S3_URI", format!("s3://{bucket}/reports")),
        ("ENDPOINT_NAME", endpoint.to_owned()),
        ("MODEL_PACKAGE_GROUP_NAME", group.to_owned()),
        ("MONITORING_SCHEDULE_NAME", SCHEDULE.into()),
        ("DEDUP_QUIET_SECONDS", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Deps {
        registry: Arc::new(SageMaker::new(aws.sagemaker())),
        serving: Arc::new(SageMaker::new(aws.sagemaker())),
        store: Arc::new(S3::new(aws.s3())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        config: Config::from_env(&vars).unwrap(),
        clock: system_clock(),
        executions: None,
        catalogue: None,
    }
}

#[tokio::test]
async fn a_shifted_output_drifts_from_the_served_packages_prediction_baseline() {
    let aws = aws().await;
    let group = unique("prediction");
    let bucket = group.to_ascii_lowercase();
    let s3 = aws.s3();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let sm = aws.sagemaker();
    create_group(&sm, &group).await;
    let arn = create_package(&sm, &group, "Approved", 1, false).await;
    let key = "baselines/1/prediction_statistics.json";
    put(&s3, &bucket, key, prediction_baseline()).await;
    let uri = format!("s3://{bucket}/{key}");
    sm.update_model_package()
        .model_package_arn(&arn)
        .customer_metadata_properties(PREDICTION_BASELINE_METADATA_KEY, &uri)
        .send()
        .await
        .expect("UpdateModelPackage");

    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    let hour = w.start.format("%Y/%m/%d/%H").to_string();
    let mut event: Value =
        serde_json::from_str(include_str!("../events/custom-metrics-schedule.json")).unwrap();
    event["time"] = json!(now.to_rfc3339());
    let mut runs = Vec::new();
    for (n, shift) in [(0, 3), (1, 0)] {
        let endpoint = format!("{group}-e{n}");
        serve(&sm, &endpoint, &format!("{group}-m{n}"), &arn).await;
        let mut capture = String::new();
        for i in 0..600 {
            let t = (w.start + Duration::seconds(i as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            capture.push_str(&capture_line(&format!("{n}-{i}"), &t, score(i, shift)));
            capture.push('\n');
        }
        put(
            &s3,
            &bucket,
            &format!("capture/{endpoint}/AllTraffic/{hour}/00-01-000-a.jsonl"),
            capture,
        )
        .await;
        let out = handle(event.clone(), &deps(&aws, &bucket, &group, &endpoint))
            .await
            .unwrap();
        let b = out.baseline.as_ref().unwrap();
        assert_eq!(b["modelPackageArn"], arn.as_str(), "{b}");
        assert_eq!(
            b["prediction"],
            json!({"source": "package", "uri": uri, "feature": "prediction"}),
            "{b}"
        );
        let metric = async |name: &str| datums(&aws, DATA_NS, name, &endpoint, SCHEDULE, &w).await;
        let drift = metric("prediction_baseline_drift").await;
        let ks = metric("prediction_ks").await;
        let psi = metric("prediction_psi").await;
        let report = out.windows[0].reports.as_ref().unwrap()["constraintViolations"]
            .as_str()
            .unwrap()
            .to_owned();
        let (bkt, key) = report
            .strip_prefix("s3://")
            .unwrap()
            .split_once('/')
            .unwrap();
        let body = s3.get_object().bucket(bkt).key(key).send().await.unwrap();
        let violations: Value =
            serde_json::from_slice(&body.body.collect().await.unwrap().into_bytes()).unwrap();
        let on_prediction: Vec<Value> = violations["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["feature_name"] == "prediction")
            .cloned()
            .collect();
        runs.push((
            out.windows[0].status.as_str().to_owned(),
            drift,
            ks,
            psi,
            on_prediction,
        ));
    }
    // Shifted: three tenths of the scores moved past the reference's top.
    let (status, drift, ks, psi, v) = &runs[0];
    assert_eq!(status, "CompletedWithViolations");
    assert_eq!((drift.len(), ks.len(), psi.len()), (1, 1, 1), "{runs:?}");
    assert!(
        drift[0] > 0.1,
        "over Model Monitor's default threshold: {drift:?}"
    );
    assert!((ks[0] - 0.3).abs() < 1e-9, "{ks:?}");
    assert!(psi[0] > 0.5, "{psi:?}");
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["constraint_check_type"], "baseline_drift_check");
    // Unshifted: the same distribution as the baseline.
    let (status, drift, ks, psi, v) = &runs[1];
    assert_eq!(status, "Completed");
    assert_eq!(
        (drift.as_slice(), ks.as_slice(), psi.as_slice()),
        (&[0.0][..], &[0.0][..], &[0.0][..])
    );
    assert!(v.is_empty(), "{v:?}");
}
