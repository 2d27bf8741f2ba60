//! Issue 15, custom-metrics on the emulator: one function, the catalogue in S3 (read through the
//! real S3 adapter, once per invocation). The schedule monitors every monitored endpoint of three
//! models of different problem types (reports in S3, metrics in CloudWatch, one event each); a
//! fourth model uploaded to the catalogue is monitored on the next run, with nothing rebuilt.
//! The real clock: the schedule's event is "now", its window the last complete hour.
//!
//! Scale: [`schedule_fan_out_over_many_endpoints`] times the schedule over generated endpoints —
//! 20 by default (CI), any series with `DRIFTLOOP_FANOUT_ENDPOINTS=25,50,100,200` (README "Many
//! models (catalogue)"), the function's `FANOUT_CONCURRENCY` from `DRIFTLOOP_FANOUT_CONCURRENCY`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Duration, Utc};
use custom_metrics::{Config, Deps, Output, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::catalogue::source::S3Catalogue;
use driftloop::monitoring::WindowRule;
use driftloop::monitoring::fanout::TargetStatus;
use driftloop::monitoring::window::Window;
use driftloop::storage::S3Uri;
use driftloop_tests::monitoring::{MODEL_NS, datums};
use driftloop_tests::seed::{create_group, create_package};
use driftloop_tests::{aws, unique};
use serde_json::{Value, json};

struct World {
    aws: driftloop::aws::Aws,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    deps: Deps,
    models: Vec<Value>,
}

/// A bucket, the function's dependencies on the real adapters with `CATALOGUE_S3_URI`, and its
/// environment's own endpoint (`{bucket}-env`, not in the catalogue, without data).
async fn world(concurrency: Option<usize>) -> World {
    let aws = aws().await;
    let bucket = unique("catmon").to_ascii_lowercase();
    let s3 = aws.s3();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let key = "driftloop/catalogue.json".to_owned();
    let uri = format!("s3://{bucket}/{key}");
    let mut vars: HashMap<String, String> = [
        ("CAPTURE_S3_URI", format!("s3://{bucket}/env-capture")),
        ("GROUND_TRUTH_S3_URI", format!("s3://{bucket}/env-labels")),
        ("REPORT_S3_URI", format!("s3://{bucket}/reports")),
        ("ENDPOINT_NAME", format!("{bucket}-env")),
        ("PROBLEM_TYPE", "BinaryClassification".into()),
        ("DEDUP_QUIET_SECONDS", "0".into()),
        ("CATALOGUE_S3_URI", uri.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(n) = concurrency {
        vars.insert("FANOUT_CONCURRENCY".into(), n.to_string());
    }
    let config = Config::from_env(&vars).expect("config");
    let deps = Deps::new(
        Arc::new(SageMaker::new(aws.sagemaker())),
        Arc::new(SageMaker::new(aws.sagemaker())),
        Arc::new(S3::new(s3.clone())),
        Arc::new(CloudWatch::new(aws.cloudwatch())),
        Arc::new(EventBridge::new(aws.eventbridge())),
        config,
        system_clock(),
    )
    .with_catalogue(Arc::new(S3Catalogue::new(
        Arc::new(S3::new(s3.clone())),
        S3Uri::parse(&uri).unwrap(),
    )));
    World {
        aws,
        s3,
        bucket,
        key,
        deps,
        models: Vec::new(),
    }
}

impl World {
    async fn put(&self, key: &str, body: String) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .expect("PutObject");
    }

    async fn upload(&self) {
        let doc = json!({"version": 1, "models": self.models});
        self.put(&self.key, doc.to_string()).await;
    }

    /// A model monitoring its production endpoint `{group}-prod` (capture under `capture/`,
    /// labels under `labels/{group}`).
    fn add(&mut self, group: &str, problem: &str, policy: &str) {
        self.models.push(json!({
            "group": group,
            "problem": {"type": problem},
            "capture": {"destinationS3Uri": format!("s3://{}/capture", self.bucket)},
            "stages": {
                "staging": {"endpointName": format!("{group}-staging")},
                "production": {"endpointName": format!("{group}-prod")}
            },
            "monitoring": {
                "stages": ["production"],
                "groundTruthS3Uri": format!("s3://{}/labels/{group}", self.bucket)
            },
            "baselines": {"policy": policy}
        }));
    }

    /// `n` records of `group`'s production endpoint inside `w` (one capture file, its labels in
    /// the folder of the window's first hour): outputs `output(i)`, labels `label(i)`.
    async fn seed(
        &self,
        group: &str,
        w: &Window,
        n: usize,
        output: impl Fn(usize) -> String,
        label: impl Fn(usize) -> String,
    ) {
        let hour = w.start.format("%Y/%m/%d/%H");
        let mut capture = String::new();
        let mut labels = String::new();
        for i in 0..n {
            let id = format!("{group}-{i}");
            let t = (w.start + Duration::seconds((i * 3000 / n.max(1)) as i64 + 1))
                .format("%Y-%m-%dT%H:%M:%SZ");
            capture.push_str(&format!(
                r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{t}"}},"eventVersion":"0"}}"#,
                output(i)
            ));
            capture.push('\n');
            labels.push_str(&format!(
                r#"{{"groundTruthData":{{"data":"{}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#,
                label(i)
            ));
            labels.push('\n');
        }
        self.put(
            &format!("capture/{group}-prod/AllTraffic/{hour}/00-00-000-x.jsonl"),
            capture,
        )
        .await;
        self.put(&format!("labels/{group}/{hour}/labels.jsonl"), labels)
            .await;
    }

    async fn schedule(&self, at: DateTime<Utc>) -> Output {
        let event = json!({"version": "0", "id": unique("tick"), "source": "aws.events",
            "detail-type": "Scheduled Event", "account": "123456789012", "region": "us-east-1",
            "time": at.to_rfc3339(), "resources": ["arn:aws:events:us-east-1:123456789012:rule/hourly"], "detail": {}});
        handle(event, &self.deps).await.expect("the schedule's run")
    }
}

fn target<'a>(out: &'a Output, endpoint: &str) -> &'a driftloop::monitoring::fanout::TargetOutcome {
    out.targets
        .iter()
        .find(|t| t.target.endpoint_name == endpoint)
        .unwrap_or_else(|| panic!("no target {endpoint}"))
}

fn metric(out: &Output, endpoint: &str, name: &str) -> f64 {
    let t = target(out, endpoint);
    t.windows[0].metrics.as_ref().unwrap()[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{endpoint}: no {name} in {:?}", t.windows[0].metrics))
}

/// The last complete hour before `now`: the window a scheduled run of the stack's defaults
/// (hourly, no offset) evaluates.
fn last_hour(now: DateTime<Utc>) -> Window {
    WindowRule {
        minutes: 60,
        offset_minutes: 0,
        ground_truth_delay_minutes: 0,
    }
    .last_complete(now)
}

#[tokio::test]
async fn three_models_on_one_schedule_and_a_fourth_monitored_on_the_next_run() {
    let mut w = world(None).await;
    let now = Utc::now();
    let window = last_hour(now);
    let tag = unique("g");
    let (a, b, c, d) = (
        format!("{tag}-a"),
        format!("{tag}-b"),
        format!("{tag}-c"),
        format!("{tag}-d"),
    );
    // a: the served package's baselines (its group exists, its endpoint does not: the latest
    // approved package, reported); b and c: no baselines.
    let sm = w.aws.sagemaker();
    create_group(&sm, &a).await;
    let package = create_package(&sm, &a, "Approved", 1, false).await;
    w.add(&a, "BinaryClassification", "servedPackage");
    w.add(&b, "Regression", "none");
    w.add(&c, "MulticlassClassification", "none");
    w.upload().await;
    w.seed(
        &a,
        &window,
        40,
        |i| ["0.9", "0.1"][i % 2].into(),
        |i| ["1", "0", "1", "1"][i % 4].into(),
    )
    .await;
    w.seed(
        &b,
        &window,
        40,
        |i| format!("{}", i % 5 + 2),
        |i| format!("{}", i % 5),
    )
    .await;
    w.seed(
        &c,
        &window,
        40,
        |i| ["cat", "dog"][i % 2].into(),
        |i| ["cat", "cat", "dog", "dog"][i % 4].into(),
    )
    .await;

    let started = Instant::now();
    let out = w.schedule(now).await;
    println!(
        "3 models + the environment's endpoint: {:?}",
        started.elapsed()
    );
    let names: Vec<_> = out
        .targets
        .iter()
        .map(|t| t.target.endpoint_name.clone())
        .collect();
    assert_eq!(
        names,
        [
            format!("{a}-prod"),
            format!("{b}-prod"),
            format!("{c}-prod"),
            format!("{}-env", w.bucket)
        ]
    );
    assert!(
        out.catalogue
            .as_deref()
            .unwrap()
            .starts_with(&format!("s3://{}/{}@", w.bucket, w.key))
    );
    for g in [&a, &b, &c] {
        let t = target(&out, &format!("{g}-prod"));
        assert_eq!(t.status, TargetStatus::Completed, "{g}: {t:?}");
        let o = &t.windows[0];
        assert_eq!((o.window.start, o.window.end), (window.start, window.end));
        assert_eq!(o.status, "Completed", "{g}");
        assert_eq!(o.counts.as_ref().unwrap()["records_matched"], 40, "{g}");
    }
    assert_eq!(
        target(&out, &format!("{}-env", w.bucket)).windows[0].status,
        "NoData"
    );
    // Each model's own problem type.
    assert!((metric(&out, &format!("{a}-prod"), "accuracy") - 0.75).abs() < 1e-12);
    assert!((metric(&out, &format!("{b}-prod"), "mae") - 2.0).abs() < 1e-12);
    assert!((metric(&out, &format!("{c}-prod"), "accuracy") - 0.5).abs() < 1e-12);
    let baseline = target(&out, &format!("{a}-prod"))
        .baseline
        .as_ref()
        .unwrap();
    assert_eq!(baseline["modelPackageArn"], json!(package), "{baseline}");
    assert_eq!(baseline["source"], "latestApproved");
    assert!(target(&out, &format!("{b}-prod")).baseline.is_none());
    // Reports in S3, metrics in CloudWatch under each endpoint's dimensions.
    for g in [&a, &b, &c] {
        let key = format!(
            "reports/{g}-prod/AllTraffic/custom-metrics/{}/{}/summary.json",
            window.start.format("%Y/%m/%d/%H"),
            window.id()
        );
        let summary = w.s3.get_object().bucket(&w.bucket).key(&key).send().await;
        assert!(summary.is_ok(), "{key}");
        let matched = datums(
            &w.aws,
            MODEL_NS,
            "records_matched",
            &format!("{g}-prod"),
            "custom-metrics",
            &window,
        )
        .await;
        assert_eq!(matched, [40.0], "{g}");
    }

    // A fourth model, uploaded: monitored on the next run, nothing else changed.
    w.add(&d, "Regression", "none");
    w.upload().await;
    w.seed(&d, &window, 10, |_| "3".into(), |_| "3".into())
        .await;
    // The next tick (the same window here, so the test does not wait an hour).
    let out = w.schedule(now).await;
    assert_eq!(out.targets.len(), 5);
    let dt = target(&out, &format!("{d}-prod"));
    assert_eq!(dt.status, TargetStatus::Completed, "{dt:?}");
    assert_eq!(dt.windows[0].window, window);
    assert_eq!(metric(&out, &format!("{d}-prod"), "mae"), 0.0);
    assert_eq!(dt.windows[0].publication.map(|p| p.as_str()), Some("final"));
    let d_matched = datums(
        &w.aws,
        MODEL_NS,
        "records_matched",
        &format!("{d}-prod"),
        "custom-metrics",
        &window,
    )
    .await;
    assert_eq!(d_matched, [10.0]);
    // a's window again, from the same inputs: the same run (same runId), which resumes after the
    // calls already sent - none - so CloudWatch keeps one datum set.
    let first = &target(&out, &format!("{a}-prod")).windows[0];
    assert_eq!(first.publication.map(|p| p.as_str()), Some("final"));
    assert_eq!(first.metrics_published, 0, "{first:?}");
    let matched = datums(
        &w.aws,
        MODEL_NS,
        "records_matched",
        &format!("{a}-prod"),
        "custom-metrics",
        &window,
    )
    .await;
    assert_eq!(matched, [40.0]);
}

/// The schedule over `n` generated endpoints (one model each, 100 records a window); the wall
/// time of the invocation.
async fn timed_run(n: usize) -> (std::time::Duration, Output) {
    // `DRIFTLOOP_FANOUT_CONCURRENCY`: the function's FANOUT_CONCURRENCY (default 8).
    let concurrency = std::env::var("DRIFTLOOP_FANOUT_CONCURRENCY")
        .ok()
        .map(|c| c.parse().expect("DRIFTLOOP_FANOUT_CONCURRENCY: a number"));
    let mut w = world(concurrency).await;
    let now = Utc::now();
    let window = last_hour(now);
    let tag = unique("s");
    let groups: Vec<String> = (0..n).map(|i| format!("{tag}-{i:03}")).collect();
    for (i, g) in groups.iter().enumerate() {
        let problem = [
            "BinaryClassification",
            "Regression",
            "MulticlassClassification",
        ][i % 3];
        w.add(g, problem, "none");
    }
    w.upload().await;
    for (i, g) in groups.iter().enumerate() {
        match i % 3 {
            0 => {
                w.seed(
                    g,
                    &window,
                    100,
                    |k| ["0.9", "0.1"][k % 2].into(),
                    |k| ["1", "0", "1", "1"][k % 4].into(),
                )
                .await
            }
            1 => {
                w.seed(
                    g,
                    &window,
                    100,
                    |k| format!("{}", k % 5 + 1),
                    |k| format!("{}", k % 5),
                )
                .await
            }
            _ => {
                w.seed(
                    g,
                    &window,
                    100,
                    |k| ["cat", "dog"][k % 2].into(),
                    |k| ["cat", "cat", "dog", "dog"][k % 4].into(),
                )
                .await
            }
        }
    }
    let started = Instant::now();
    let out = w.schedule(now).await;
    let elapsed = started.elapsed();
    let completed = out
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Completed)
        .count();
    assert_eq!(completed, n + 1, "every endpoint, and the environment's");
    for g in &groups {
        let t = target(&out, &format!("{g}-prod"));
        assert_eq!(
            t.windows[0].counts.as_ref().unwrap()["records_matched"],
            100,
            "{g}"
        );
    }
    (elapsed, out)
}

#[tokio::test]
async fn schedule_fan_out_over_many_endpoints() {
    let series: Vec<usize> = std::env::var("DRIFTLOOP_FANOUT_ENDPOINTS")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("DRIFTLOOP_FANOUT_ENDPOINTS: numbers, comma separated")
                })
                .collect()
        })
        .unwrap_or_else(|| vec![20]);
    let mut previous: Option<(usize, f64)> = None;
    for n in series {
        let (elapsed, _) = timed_run(n).await;
        let secs = elapsed.as_secs_f64();
        let growth = previous
            .map(|(m, s)| {
                format!(
                    ", x{:.2} the time of {m} for x{:.2} the endpoints",
                    secs / s,
                    n as f64 / m as f64
                )
            })
            .unwrap_or_default();
        println!(
            "fan-out: {n} endpoints in {secs:.2} s ({:.1} ms per endpoint{growth})",
            secs * 1000.0 / n as f64
        );
        assert!(
            secs < 600.0,
            "{n} endpoints must fit the function's 600 s timeout"
        );
        previous = Some((n, secs));
    }
}
