//! custom-metrics against the emulator: S3 (listing, streamed reads, reports), CloudWatch over
//! CBOR (PutMetricData, read back with GetMetricData), EventBridge (a rule on the run's bus
//! delivering to an SQS queue), fault injection on PutMetricData.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, Statistic};
use aws_sdk_eventbridge::types::Target as RuleTarget;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Duration, Utc};
use custom_metrics::{Config, Deps, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::error::Classify;
use driftloop::monitoring::window::{Window, WindowRule};
use driftloop_tests::{aws, emulator, unique};
use serde_json::{Value, json};

const MODEL_NS: &str = "aws/sagemaker/Endpoints/model-metrics";

/// A raw awsJson 1.0 call to the emulator's SQS (the workspace has no SQS SDK crate).
fn sqs(op: &str, body: Value) -> Value {
    let host = emulator()
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let body = body.to_string();
    let mut stream = TcpStream::connect(&host).expect("connect to emulator");
    stream
        .set_read_timeout(Some(StdDuration::from_secs(30)))
        .unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.{op}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, payload) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "SQS {op}: {raw}"
    );
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    serde_json::from_str(&payload).unwrap_or(Value::Null)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

struct Setup {
    deps: Deps,
    s3: aws_sdk_s3::Client,
    cw: aws_sdk_cloudwatch::Client,
    bucket: String,
    endpoint: String,
    queue_url: String,
}

/// A bucket, an event bus with a rule delivering `driftloop` events to a fresh queue, and the
/// function's dependencies on the real adapters.
async fn setup(extra: &[(&str, &str)]) -> Setup {
    let aws = aws().await;
    let name = unique("cm");
    let bucket = name.to_ascii_lowercase();
    let s3 = aws.s3();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let ev = aws.eventbridge();
    ev.create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("CreateEventBus");
    let queue_url = sqs("CreateQueue", json!({"QueueName": name}))["QueueUrl"]
        .as_str()
        .expect("QueueUrl")
        .to_owned();
    let arn = sqs(
        "GetQueueAttributes",
        json!({"QueueUrl": queue_url, "AttributeNames": ["QueueArn"]}),
    )["Attributes"]["QueueArn"]
        .as_str()
        .expect("QueueArn")
        .to_owned();
    ev.put_rule()
        .name(&name)
        .event_bus_name(&name)
        .event_pattern(json!({"source": ["driftloop"], "detail-type": ["Model Monitoring Completed", "Model Monitoring Violations"]}).to_string())
        .send()
        .await
        .expect("PutRule");
    ev.put_targets()
        .rule(&name)
        .event_bus_name(&name)
        .targets(RuleTarget::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .expect("PutTargets");
    let endpoint = format!("{name}-ep");
    let mut vars: std::collections::HashMap<String, String> = [
        ("CAPTURE_S3_URI", format!("s3://{bucket}/capture")),
        ("GROUND_TRUTH_S3_URI", format!("s3://{bucket}/ground-truth")),
        ("REPORT_S3_URI", format!("s3://{bucket}/reports")),
        ("ENDPOINT_NAME", endpoint.clone()),
        ("PROBLEM_TYPE", "BinaryClassification".into()),
        ("MONITORING_SCHEDULE_NAME", "quality".into()),
        ("EVENT_BUS_NAME", name.clone()),
        ("DEDUP_QUIET_SECONDS", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
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
    Setup {
        deps,
        s3,
        cw: aws.cloudwatch(),
        bucket,
        endpoint,
        queue_url,
    }
}

impl Setup {
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

    async fn get_json(&self, uri: &str) -> Value {
        let key = uri
            .strip_prefix(&format!("s3://{}/", self.bucket))
            .expect("a report in the test bucket");
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("GetObject");
        serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap()
    }

    /// Seeds `n` predictions inside `w` (two capture files plus one malformed line) and their
    /// labels (every 4th wrong) in the ground-truth folder of the window's first hour.
    async fn seed(&self, w: &Window, n: usize) {
        self.seed_labels_at(w, n, w.start).await;
    }

    /// [`Setup::seed`] with the labels uploaded into the folder of `labels_hour`; returns their
    /// key.
    async fn seed_labels_at(&self, w: &Window, n: usize, labels_hour: DateTime<Utc>) -> String {
        let hour = w.start.format("%Y/%m/%d/%H").to_string();
        let mut files = [String::new(), String::new()];
        let mut labels = String::new();
        for i in 0..n {
            let id = format!("{}-{i}", self.endpoint);
            let t = (w.start + Duration::seconds(i as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let score = if i % 2 == 0 { 0.8 } else { 0.3 };
            files[i % 2].push_str(&format!(
                r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{i},1","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{t}"}},"eventVersion":"0"}}"#
            ));
            files[i % 2].push('\n');
            let label = u8::from((i % 2 == 0) != (i % 4 == 1));
            labels.push_str(&format!(r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#));
            labels.push('\n');
        }
        files[1].push_str("{\"captureData\": truncated\n");
        let prefix = format!("capture/{}/AllTraffic/{hour}", self.endpoint);
        self.put(&format!("{prefix}/00-01-000-a.jsonl"), files[0].clone())
            .await;
        self.put(&format!("{prefix}/00-02-000-b.jsonl"), files[1].clone())
            .await;
        let key = format!(
            "ground-truth/{}/labels.jsonl",
            labels_hour.format("%Y/%m/%d/%H")
        );
        self.put(&key, labels).await;
        key
    }

    /// `stat` of a metric at the window's start with Model Monitor's dimensions plus `extra`
    /// (`[("Publication", "provisional")]`: the provisional stream), read with
    /// GetMetricStatistics over the window's hour.
    async fn statistic(
        &self,
        name: &str,
        w: &Window,
        extra: &[(&str, &str)],
        stat: Statistic,
    ) -> Vec<f64> {
        let at = |t: DateTime<Utc>| aws_smithy_types::DateTime::from_secs(t.timestamp());
        let mut req = self
            .cw
            .get_metric_statistics()
            .namespace(MODEL_NS)
            .metric_name(name)
            .dimensions(
                Dimension::builder()
                    .name("Endpoint")
                    .value(&self.endpoint)
                    .build(),
            )
            .dimensions(
                Dimension::builder()
                    .name("MonitoringSchedule")
                    .value("quality")
                    .build(),
            );
        for (k, v) in extra {
            req = req.dimensions(Dimension::builder().name(*k).value(*v).build());
        }
        let out = req
            .start_time(at(w.start))
            .end_time(at(w.end))
            .period(3600)
            .statistics(stat.clone())
            .send()
            .await
            .expect("GetMetricStatistics");
        out.datapoints()
            .iter()
            .filter_map(|d| match stat {
                Statistic::SampleCount => d.sample_count(),
                Statistic::Sum => d.sum(),
                Statistic::Average => d.average(),
                Statistic::Maximum => d.maximum(),
                _ => d.minimum(),
            })
            .collect()
    }

    /// The `driftloop` events delivered to the queue (waits up to ~10 s for `n`).
    fn received(&self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        for _ in 0..10 {
            let r = sqs(
                "ReceiveMessage",
                json!({"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
            );
            for m in r["Messages"].as_array().cloned().unwrap_or_default() {
                out.push(serde_json::from_str::<Value>(m["Body"].as_str().unwrap()).unwrap());
                sqs(
                    "DeleteMessage",
                    json!({"QueueUrl": self.queue_url, "ReceiptHandle": m["ReceiptHandle"]}),
                );
            }
            if out.len() >= n {
                break;
            }
        }
        out
    }

    /// One value of a metric at the window's start, read back with GetMetricData.
    async fn metric(&self, name: &str, w: &Window, stat: &str) -> Vec<f64> {
        let metric = Metric::builder()
            .namespace(MODEL_NS)
            .metric_name(name)
            .dimensions(
                Dimension::builder()
                    .name("Endpoint")
                    .value(&self.endpoint)
                    .build(),
            )
            .dimensions(
                Dimension::builder()
                    .name("MonitoringSchedule")
                    .value("quality")
                    .build(),
            )
            .build();
        let q = MetricDataQuery::builder()
            .id("m")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(60)
                    .stat(stat)
                    .build(),
            )
            .build();
        let at = |t: DateTime<Utc>| aws_smithy_types::DateTime::from_secs(t.timestamp());
        let out = self
            .cw
            .get_metric_data()
            .metric_data_queries(q)
            .start_time(at(w.start - Duration::minutes(5)))
            .end_time(at(w.start + Duration::minutes(5)))
            .send()
            .await
            .expect("GetMetricData");
        out.metric_data_results()
            .first()
            .map(|r| r.values().to_vec())
            .unwrap_or_default()
    }
}

fn schedule_event(time: DateTime<Utc>) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/custom-metrics-schedule.json")).unwrap();
    e["time"] = json!(time.to_rfc3339());
    e
}

#[tokio::test]
async fn seeded_window_gives_reports_metrics_and_an_event_through_the_bus() {
    let s = setup(&[]).await;
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    s.seed(&w, 200).await;
    let out = handle(schedule_event(now), &s.deps).await.unwrap();
    let o = &out.windows[0];
    assert_eq!(o.window, w);
    assert_eq!(o.status, "Completed", "{o:?}");
    let counts = o.counts.clone().unwrap();
    assert_eq!(
        (
            counts["records_matched"].as_u64(),
            counts["records_malformed"].as_u64()
        ),
        (Some(200), Some(1)),
        "{counts}"
    );

    // Reports in S3.
    let reports = o.reports.clone().unwrap();
    let stats = s.get_json(reports["statistics"].as_str().unwrap()).await;
    assert_eq!(stats["dataset"]["item_count"], 200);
    assert_eq!(
        stats["binary_classification_metrics"]["accuracy"]["value"],
        0.75
    );
    assert_eq!(
        s.get_json(reports["constraintViolations"].as_str().unwrap())
            .await,
        json!({"violations": []})
    );
    assert_eq!(
        s.get_json(reports["summary"].as_str().unwrap()).await["runId"],
        json!(o.run_id)
    );

    // Metrics, read back.
    assert_eq!(s.metric("accuracy", &w, "Average").await, [0.75]);
    assert_eq!(s.metric("records_matched", &w, "Sum").await, [200.0]);
    assert_eq!(s.metric("records_malformed", &w, "Sum").await, [1.0]);
    assert_eq!(s.metric("window_empty", &w, "Sum").await, [0.0]);

    // The event, through a rule on the bus, in the queue.
    let events = s.received(1);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e["source"].as_str(), e["detail-type"].as_str()),
        (Some("driftloop"), Some("Model Monitoring Completed"))
    );
    assert_eq!(
        e["detail"]["window"]["start"],
        w.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(e["detail"]["reports"], reports);
    assert_eq!(e["detail"]["counts"]["records_malformed"], 1);
    assert!(
        e["detail"]["errorSamples"][0]
            .as_str()
            .unwrap()
            .contains("00-02-000-b.jsonl")
    );
}

#[tokio::test]
async fn an_empty_window_is_published_as_no_data() {
    let s = setup(&[]).await;
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    let out = handle(schedule_event(now), &s.deps).await.unwrap();
    assert_eq!(out.windows[0].status, "NoData");
    assert_eq!(s.metric("window_empty", &w, "Sum").await, [1.0]);
    assert_eq!(s.metric("records_matched", &w, "Sum").await, [0.0]);
    let events = s.received(1);
    assert_eq!(events[0]["detail"]["status"], "NoData");
    assert_eq!(
        events[0]["detail"]["reason"],
        "no data capture in the window"
    );
}

#[tokio::test]
async fn throttled_put_metric_data_is_retried() {
    let s = setup(&[]).await;
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    s.seed(&w, 20).await;
    // More throttles than the SDK's own three attempts: the function retries the call itself.
    emulator().inject_fault("PutMetricData", 4, "throttle", &s.endpoint);
    let out = handle(schedule_event(now), &s.deps).await.unwrap();
    assert!(out.windows[0].metrics_published > 0);
    assert_eq!(
        emulator().fault_remaining(&s.endpoint),
        Some(0),
        "every injected throttle was hit"
    );
    assert_eq!(
        s.metric("records_matched", &w, "Sum").await,
        [20.0],
        "sent exactly once"
    );
    assert_eq!(s.received(1).len(), 1);
}

#[tokio::test]
async fn a_burst_of_ground_truth_uploads_runs_once() {
    let s = setup(&[]).await;
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now - Duration::hours(2));
    s.seed(&w, 30).await;
    let hour = w.start.format("%Y/%m/%d/%H").to_string();
    let mut keys = vec![format!("ground-truth/{hour}/labels.jsonl")];
    for i in 0..4 {
        let key = format!("ground-truth/{hour}/labels-{i}.jsonl");
        s.put(&key, String::new()).await;
        keys.push(key);
    }
    let template: Value = serde_json::from_str(include_str!(
        "../events/custom-metrics-ground-truth-created.json"
    ))
    .unwrap();
    let event = |key: &str| {
        let mut e = template.clone();
        e["detail"]["bucket"]["name"] = json!(s.bucket);
        e["detail"]["object"]["key"] = json!(key);
        e
    };
    // The five invocations run concurrently.
    let (a, b, c, d, e) = tokio::join!(
        handle(event(&keys[0]), &s.deps),
        handle(event(&keys[1]), &s.deps),
        handle(event(&keys[2]), &s.deps),
        handle(event(&keys[3]), &s.deps),
        handle(event(&keys[4]), &s.deps)
    );
    let decisions: Vec<String> = [a, b, c, d, e]
        .into_iter()
        .map(|r| r.unwrap().windows[0].decision.clone().unwrap())
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| *d == "run").count(),
        1,
        "{decisions:?}"
    );
    assert_eq!(
        decisions.iter().filter(|d| *d == "superseded").count(),
        4,
        "{decisions:?}"
    );
    let events = s.received(1);
    assert_eq!(events.len(), 1, "one event for the burst: {events:?}");
    assert_eq!(events[0]["detail"]["trigger"], "groundTruthUpload");
    assert_eq!(events[0]["detail"]["counts"]["records_matched"], 30);
    // Redelivery of every event of the burst: nothing more.
    for k in &keys {
        let out = handle(event(k), &s.deps).await.unwrap();
        assert_ne!(out.windows[0].decision.as_deref(), Some("run"));
    }
    assert!(s.received(1).is_empty());
}

#[tokio::test]
async fn missing_bucket_is_a_permanent_error() {
    let s = setup(&[(
        "CAPTURE_S3_URI",
        "s3://driftloop-no-such-bucket-anywhere/capture",
    )])
    .await;
    let err = handle(schedule_event(Utc::now()), &s.deps)
        .await
        .unwrap_err();
    assert!(
        err.error_type().starts_with("Permanent."),
        "{}",
        err.error_type()
    );
}

// ---- Issue 13: the real clock, the stack's defaults, one figure per window and stream ----

const STACK_DEFAULTS: &[(&str, &str)] =
    &[("WINDOW_MINUTES", "60"), ("WINDOW_OFFSET_MINUTES", "60")];
const PROVISIONAL: &[(&str, &str)] = &[("Publication", "provisional")];

fn upload_event(bucket: &str, key: &str) -> Value {
    let mut e: Value = serde_json::from_str(include_str!(
        "../events/custom-metrics-ground-truth-created.json"
    ))
    .unwrap();
    e["detail"]["bucket"]["name"] = json!(bucket);
    e["detail"]["object"]["key"] = json!(key);
    e["time"] = json!(Utc::now().to_rfc3339());
    e
}

#[tokio::test]
async fn labels_uploaded_now_publish_the_previous_hour_provisionally_then_the_schedule_finally() {
    let s = setup(STACK_DEFAULTS).await;
    let now = Utc::now();
    let hour = driftloop::monitoring::window::floor_hour(now);
    let w = Window::new(hour - Duration::hours(1), hour).unwrap();
    // Predictions of the previous hour, their labels uploaded now into the current hour's folder.
    let key = s.seed_labels_at(&w, 40, now).await;
    let out = handle(upload_event(&s.bucket, &key), &s.deps)
        .await
        .unwrap();
    let o = out
        .windows
        .iter()
        .find(|o| o.window == w)
        .unwrap_or_else(|| panic!("{w} not planned: {out:?}"));
    assert_eq!(o.decision.as_deref(), Some("run"), "{o:?}");
    assert_eq!(o.publication.map(|p| p.as_str()), Some("provisional"));
    assert!(o.metrics_published > 0);
    // In CloudWatch, in this invocation: the provisional stream, not the alarm's metric.
    assert_eq!(
        s.statistic("accuracy", &w, PROVISIONAL, Statistic::Average)
            .await,
        [0.75]
    );
    assert_eq!(
        s.statistic("records_matched", &w, PROVISIONAL, Statistic::SampleCount)
            .await,
        [1.0]
    );
    assert!(
        s.statistic("accuracy", &w, &[], Statistic::SampleCount)
            .await
            .is_empty(),
        "a provisional figure never enters the alarm's metric"
    );
    let events = s.received(1);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["publication"], "provisional");

    // The scheduled run (the tick after the window is due): the final figure, once.
    let fin = handle(schedule_event(w.end + Duration::minutes(65)), &s.deps)
        .await
        .unwrap();
    let f = &fin.windows[0];
    assert_eq!(f.window, w);
    assert_eq!(f.publication.map(|p| p.as_str()), Some("final"));
    assert_eq!(s.metric("accuracy", &w, "Average").await, [0.75]);
    assert_eq!(
        s.statistic("accuracy", &w, &[], Statistic::SampleCount)
            .await,
        [1.0]
    );
    assert_eq!(
        s.statistic("records_matched", &w, &[], Statistic::Sum)
            .await,
        [40.0],
        "the dashboard's Sum counts the window once"
    );
    assert_eq!(s.received(1)[0]["detail"]["publication"], "final");

    // Re-running the same inputs adds no datapoint: the schedule redelivered, the upload
    // redelivered.
    let again = handle(schedule_event(w.end + Duration::minutes(65)), &s.deps)
        .await
        .unwrap();
    assert_eq!(again.windows[0].metrics_published, 0);
    let redelivered = handle(upload_event(&s.bucket, &key), &s.deps)
        .await
        .unwrap();
    assert!(
        redelivered.windows.iter().all(|o| o.metrics_published == 0),
        "{redelivered:?}"
    );
    assert_eq!(
        s.statistic("accuracy", &w, &[], Statistic::SampleCount)
            .await,
        [1.0]
    );
    assert_eq!(
        s.statistic("records_matched", &w, PROVISIONAL, Statistic::SampleCount)
            .await,
        [1.0]
    );
    let summary = s
        .get_json(f.reports.as_ref().unwrap()["summary"].as_str().unwrap())
        .await;
    assert_eq!(summary["publication"], "final");
    assert_eq!(summary["cloudwatch"]["final"]["runId"], json!(f.run_id));
}
