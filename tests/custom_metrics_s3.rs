//! custom-metrics against the emulator where S3 behaves as on a locked-down AWS account, and with
//! more labels than the function's memory allows:
//! * `s3:ListBucket` scoped by prefix: S3 answers 403 AccessDenied (not 404) for a key that does
//!   not exist (the emulator's `403-missing` fault kind). A first S3-triggered run has no previous
//!   summary: it must run, and its retry must be up to date.
//! * `GROUND_TRUTH_MEMORY_MB` below what a window's labels need: `Permanent.GroundTruthTooLarge`.
//!
//! One test function: it sets a process environment variable the run reads, so nothing may run
//! beside it in this binary.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{Duration, Utc};
use custom_metrics::{Config, Deps, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::error::Classify;
use driftloop::monitoring::window::{Window, WindowRule, iso};
use driftloop_tests::{aws, emulator, unique};
use serde_json::{Value, json};

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: String) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .expect("PutObject");
}

/// `n` predictions in `w` and their labels in the window's first hour folder; the label key.
async fn seed(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    endpoint: &str,
    w: &Window,
    n: usize,
) -> String {
    let hour = w.start.format("%Y/%m/%d/%H").to_string();
    let mut capture = String::new();
    let mut labels = String::new();
    for i in 0..n {
        let id = format!("{:08x}-0000-4000-8000-{i:012x}", i as u32);
        let t = iso(w.start + Duration::milliseconds(i as i64 * 50));
        let score = if i % 2 == 0 { 0.8 } else { 0.3 };
        capture.push_str(&format!(
            r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{i},1","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{t}"}},"eventVersion":"0"}}"#
        ));
        capture.push('\n');
        let label = u8::from(i % 2 == 0);
        labels.push_str(&format!(r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#));
        labels.push('\n');
    }
    put(
        s3,
        bucket,
        &format!("capture/{endpoint}/AllTraffic/{hour}/00-01-000-a.jsonl"),
        capture,
    )
    .await;
    let key = format!("ground-truth/{hour}/labels.jsonl");
    put(s3, bucket, &key, labels).await;
    key
}

fn upload_event(bucket: &str, key: &str) -> Value {
    json!({"version": "0", "id": unique("ev"), "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": iso(Utc::now()), "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}, "reason": "PutObject"}})
}

async fn make_deps(bucket: &str, endpoint: &str) -> (Deps, aws_sdk_s3::Client) {
    let aws = aws().await;
    let s3 = aws.s3();
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("CreateBucket");
    let vars: std::collections::HashMap<String, String> = [
        ("CAPTURE_S3_URI", format!("s3://{bucket}/capture")),
        ("GROUND_TRUTH_S3_URI", format!("s3://{bucket}/ground-truth")),
        ("REPORT_S3_URI", format!("s3://{bucket}/reports")),
        ("ENDPOINT_NAME", endpoint.to_owned()),
        ("PROBLEM_TYPE", "BinaryClassification".into()),
        ("DEDUP_QUIET_SECONDS", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let deps = Deps {
        registry: Arc::new(SageMaker::new(aws.sagemaker())),
        serving: Arc::new(SageMaker::new(aws.sagemaker())),
        store: Arc::new(S3::new(s3.clone())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        config: Config::from_env(&vars).unwrap(),
        clock: system_clock(),
        executions: None,
        catalogue: None,
    };
    (deps, s3)
}

/// Arms a fault until cleared; its id.
fn arm(operation: &str, kind: &str, matching: &str) -> u64 {
    let body = json!({"operation": operation, "count": -1, "kind": kind, "match": matching});
    let (status, text) = emulator().http("POST", "/driftloop/faults", &body.to_string());
    assert_eq!(status, 201, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_u64()
        .unwrap()
}

fn hits(id: u64) -> u64 {
    let (_, body) = emulator().http("GET", "/driftloop/faults", "");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .and_then(|f| f["hits"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn first_run_under_403_for_missing_keys_and_labels_past_the_memory_limit() {
    // 1. A first S3-triggered run on the real clock where missing keys answer 403.
    let name = unique("cm403").to_ascii_lowercase();
    let endpoint = format!("{name}-ep");
    let (deps, s3) = make_deps(&name, &endpoint).await;
    let w = WindowRule::default().last_complete(Utc::now());
    let key = seed(&s3, &name, &endpoint, &w, 40).await;
    let get = arm("GetObject", "403-missing", &name);
    let head = arm("HeadObject", "403-missing", &name);
    let out = handle(upload_event(&name, &key), &deps)
        .await
        .expect("the first run runs");
    let o = &out.windows[0];
    assert_eq!(o.status, "Completed", "{o:?}");
    assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 40, "{o:?}");
    assert!(hits(get) >= 1, "the missing summary was answered with 403");
    let again = handle(upload_event(&name, &key), &deps).await.unwrap();
    assert_eq!(
        again.windows[0].decision.as_deref(),
        Some("up_to_date"),
        "{again:?}"
    );
    for id in [get, head] {
        emulator().http("DELETE", &format!("/driftloop/faults/{id}"), "");
    }

    // 2. More labels than GROUND_TRUTH_MEMORY_MB allows: a clear permanent error.
    let name = unique("cmmem").to_ascii_lowercase();
    let endpoint = format!("{name}-ep");
    let (deps, s3) = make_deps(&name, &endpoint).await;
    let w = WindowRule::default().last_complete(Utc::now() - Duration::hours(1));
    seed(&s3, &name, &endpoint, &w, 30_000).await;
    // SAFETY: this binary's only test; no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("GROUND_TRUTH_MEMORY_MB", "1") };
    let request = json!({"window": {"start": iso(w.start), "end": iso(w.end)}});
    let err = handle(request.clone(), &deps).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.GroundTruthTooLarge", "{err}");
    let m = err.to_string();
    assert!(
        m.contains("1 MiB") && m.contains("smaller windows") && m.contains("MemorySize"),
        "{m}"
    );
    // With the memory a 1024 MB function gives its labels, the same window is evaluated.
    unsafe { std::env::set_var("GROUND_TRUTH_MEMORY_MB", "512") };
    let out = handle(request, &deps).await.unwrap();
    assert_eq!(
        out.windows[0].counts.as_ref().unwrap()["records_matched"],
        30_000
    );
    unsafe { std::env::remove_var("GROUND_TRUTH_MEMORY_MB") };
}
