//! Label-free estimates against the emulator: the reference calibration named by the served
//! package's `CustomerMetadataProperties` (`driftloop:calibration`, set with UpdateModelPackage
//! after registration) is read through the real SageMaker and S3 adapters, with the real clock;
//! a window with capture but no labels publishes `estimated_*` to CloudWatch in Model Monitor's
//! model namespace and dimensions — and each endpoint's estimate follows the package it serves.

use std::sync::Arc;

use chrono::{Duration, Utc};
use custom_metrics::{Config, Deps, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::metrics::quality::calibration::fit_binary;
use driftloop::metrics::{Engine, MonitorConfig, ProblemType, QualityState};
use driftloop::monitoring::baselines::CALIBRATION_METADATA_KEY;
use driftloop::monitoring::window::WindowRule;
use driftloop_tests::monitoring::{MODEL_NS, capture_line, datums, put, serve};
use driftloop_tests::seed::{create_group, create_package_with_model_quality};
use driftloop_tests::{aws, unique};
use serde_json::{Value, json};

/// Record `i`: one of 20 scores `j/20 + 0.025`; `round(20·score)` of every 20 records at a score
/// are positive (`flip`: the opposite), so the score is (one minus) the positive rate.
fn record(i: usize, flip: bool) -> (f64, u8) {
    let s = (i % 20) as f64 / 20.0 + 0.025;
    let pos = (i / 20) % 20 < (20.0 * s).round() as usize;
    (s, u8::from(pos != flip))
}

/// A calibration fitted on 4,000 labelled reference records.
fn calibration(flip: bool) -> String {
    let (mut cap, mut gt) = (String::new(), String::new());
    for i in 0..4000 {
        let (s, y) = record(i, flip);
        cap.push_str(&capture_line(&format!("r{i}"), "2024-01-01T00:00:00Z", s));
        cap.push('\n');
        gt.push_str(&format!(r#"{{"groundTruthData":{{"data":"{y}","encoding":"CSV"}},"eventMetadata":{{"eventId":"r{i}"}},"eventVersion":"0"}}"#));
        gt.push('\n');
    }
    let mut e = Engine::new(MonitorConfig {
        problem_type: Some(ProblemType::BinaryClassification),
        ..MonitorConfig::default()
    });
    e.feed_ground_truth("gt", gt.as_bytes()).unwrap();
    e.feed_capture("cap", cap.as_bytes(), |_| {}).unwrap();
    let r = e.finish().unwrap();
    let Some(QualityState::Binary(b)) = e.snapshot().quality else {
        panic!("binary")
    };
    fit_binary(&b, r.quality.as_ref().unwrap(), 0.5, None, None, 0.05)
        .unwrap()
        .to_json()
        .to_string()
}

fn deps(aws: &driftloop::aws::Aws, bucket: &str, group: &str, endpoint: &str) -> Deps {
    let vars: std::collections::HashMap<String, String> = [
        ("CAPTURE_S3_URI", format!("s3://{bucket}/capture")),
        (
            "GROUND_TRUTH_S3_URI",
            format!("s3://{bucket}/ground-truth/{endpoint}"),
        ),
        ("REPORT_S3_URI", format!("s3://{bucket}/reports")),
        ("ENDPOINT_NAME", endpoint.to_owned()),
        ("PROBLEM_TYPE", "BinaryClassification".into()),
        ("MODEL_PACKAGE_GROUP_NAME", group.to_owned()),
        ("MONITORING_SCHEDULE_NAME", "quality".into()),
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
async fn each_endpoint_is_estimated_with_the_calibration_of_the_package_it_serves() {
    let aws = aws().await;
    let group = unique("estimate");
    let bucket = group.to_ascii_lowercase();
    let s3 = aws.s3();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let sm = aws.sagemaker();
    create_group(&sm, &group).await;
    let mq = format!("s3://{bucket}/baselines/mq.json");
    put(
        &s3,
        &bucket,
        "baselines/mq.json",
        json!({"version": 0.0, "binary_classification_constraints": {}}).to_string(),
    )
    .await;
    // v1: scores are probabilities; v2 (the latest approved): its scores mean the opposite, so its
    // calibration pools to a constant and expects accuracy about 0.5.
    let mut packages = Vec::new();
    for (n, flip) in [(1, false), (2, true)] {
        let arn = create_package_with_model_quality(&sm, &group, n, &mq).await;
        let key = format!("baselines/{n}/calibration.json");
        put(&s3, &bucket, &key, calibration(flip)).await;
        sm.update_model_package()
            .model_package_arn(&arn)
            .customer_metadata_properties(CALIBRATION_METADATA_KEY, format!("s3://{bucket}/{key}"))
            .send()
            .await
            .expect("UpdateModelPackage");
        packages.push(arn);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    // The metadata update kept the package's baselines (the compat layer's UpdateModelPackage).
    let d = sm
        .describe_model_package()
        .model_package_name(&packages[0])
        .send()
        .await
        .unwrap();
    assert!(d.drift_check_baselines().is_some());
    assert!(
        d.customer_metadata_properties()
            .is_some_and(|m| m.contains_key(CALIBRATION_METADATA_KEY))
    );

    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    let mut endpoints = Vec::new();
    for (n, arn) in packages.iter().enumerate() {
        let endpoint = format!("{group}-e{n}");
        serve(&sm, &endpoint, &format!("{group}-m{n}"), arn).await;
        // Capture of the window, no labels (they are weeks away).
        let hour = w.start.format("%Y/%m/%d/%H").to_string();
        let mut capture = String::new();
        for i in 0..2000 {
            let t = (w.start + Duration::seconds(i as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            capture.push_str(&capture_line(
                &format!("{endpoint}-{i}"),
                &t,
                record(i, false).0,
            ));
            capture.push('\n');
        }
        put(
            &s3,
            &bucket,
            &format!("capture/{endpoint}/AllTraffic/{hour}/00-01-000-a.jsonl"),
            capture,
        )
        .await;
        endpoints.push(endpoint);
    }

    let mut event: Value =
        serde_json::from_str(include_str!("../events/custom-metrics-schedule.json")).unwrap();
    event["time"] = json!(now.to_rfc3339());
    let mut estimates = Vec::new();
    for (endpoint, arn) in endpoints.iter().zip(&packages) {
        let out = handle(event.clone(), &deps(&aws, &bucket, &group, endpoint))
            .await
            .unwrap();
        let b = out.baseline.as_ref().unwrap();
        assert_eq!(b["modelPackageArn"], arn.as_str(), "{b}");
        assert_eq!(
            (b["source"].as_str(), b["calibration"].as_bool()),
            (Some("endpoint"), Some(true)),
            "{b}"
        );
        assert_eq!(out.windows[0].status, "NoData");
        let cw = datums(
            &aws,
            MODEL_NS,
            "estimated_accuracy",
            endpoint,
            "quality",
            &w,
        )
        .await;
        assert_eq!(
            cw.len(),
            1,
            "one estimated_accuracy datum for {endpoint}: {cw:?}"
        );
        estimates.push(cw[0]);
    }
    // v1's calibration: the expected accuracy of the window (the mean of max(p, 1-p) = 0.75 by
    // construction, the score being the positive rate); v2's: about 0.5.
    assert!((estimates[0] - 0.75).abs() < 0.02, "{estimates:?}");
    assert!((estimates[1] - 0.5).abs() < 0.05, "{estimates:?}");
}
