//! retrain-on-alarm against the emulator: the real SageMaker, EventBridge and CloudWatch adapters
//! over HTTP, the emulator's ClientRequestToken idempotency, and fault injection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, Statistic};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::error::{Classify, ErrorClass};
use driftloop::pipelines::PipelineRunner;
use driftloop::publish::{EventPublisher, MetricDatum, MetricPublisher, MetricUnit, OutgoingEvent};
use driftloop::retrain::lease::{ConditionalStore, LeaseState};
use driftloop::retrain::{SkipReason, parse_trigger, plan};
use driftloop_tests::{aws, emulator, unique};
use retrain_on_alarm::{
    BUS_VAR, CONTEXT_VAR, COOLDOWN_VAR, Config, Deps, LEASE_VAR, MAX_TRIGGER_AGE_VAR,
    NAMESPACE_VAR, OutcomeKind, Output, PARAMETERS_VAR, PIPELINE_VAR, RECHECK_PREFIX_VAR,
    RECHECK_RULE_VAR, RecheckOutput, Response, STARTED_METRIC, handle, handle_event, system_clock,
};
use serde_json::{Value, json};

const ALARM: &str = include_str!("../events/retrain-alarm-eventbridge.json");
const ALARM_OK: &str = include_str!("../events/retrain-alarm-eventbridge-ok.json");
const SCHEDULE: &str = include_str!("../events/retrain-schedule.json");
const REQUEST: &str = include_str!("../events/retrain-request.json");

const PIPELINE_DEFINITION: &str = r#"{"Version": "2020-12-01", "Metadata": {}, "Parameters": [{"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.m5.large"}, {"Name": "TriggerAlarm", "Type": "String", "DefaultValue": "none"}, {"Name": "DriftValue", "Type": "String", "DefaultValue": "0"}], "Steps": []}"#;

struct Setup {
    deps: Arc<Deps>,
    sm: aws_sdk_sagemaker::Client,
    cw: aws_sdk_cloudwatch::Client,
    pipeline: String,
    namespace: String,
    alarm: String,
    s3: aws_sdk_s3::Client,
}

/// A fresh pipeline, event bus and metric namespace; `vars` add to / override the environment.
async fn setup(vars: &[(&str, &str)]) -> Setup {
    let aws = aws().await;
    let sm = aws.sagemaker();
    let pipeline = unique("retrain");
    sm.create_pipeline()
        .pipeline_name(&pipeline)
        .pipeline_definition(PIPELINE_DEFINITION)
        .role_arn("arn:aws:iam::123456789012:role/driftloop-pipeline")
        .send()
        .await
        .expect("CreatePipeline");
    let bus = unique("bus");
    aws.eventbridge()
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("CreateEventBus");
    let namespace = format!("driftloop-test/{}", unique("ns"));
    let lease_bucket = unique("leases");
    aws.s3()
        .create_bucket()
        .bucket(&lease_bucket)
        .send()
        .await
        .expect("CreateBucket");
    let lease_uri = format!("s3://{lease_bucket}/retrain-leases/");
    let mut env: HashMap<String, String> = [
        (LEASE_VAR, lease_uri.as_str()),
        (PIPELINE_VAR, pipeline.as_str()),
        (COOLDOWN_VAR, "0"),
        // The events are the 2024 samples (and variations): no age limit.
        (MAX_TRIGGER_AGE_VAR, "0"),
        (BUS_VAR, bus.as_str()),
        (NAMESPACE_VAR, namespace.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let deps = Deps {
        pipelines: Arc::new(SageMaker::new(sm.clone())),
        leases: Arc::new(S3::new(aws.s3())),
        alarms: Arc::new(CloudWatch::new(aws.cloudwatch())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        catalogue: None,
        config: Config::from_env(&env).expect("config"),
        clock: system_clock(),
    };
    Setup {
        deps: Arc::new(deps),
        sm,
        cw: aws.cloudwatch(),
        pipeline,
        namespace,
        alarm: unique("drift-alarm"),
        s3: aws.s3(),
    }
}

impl Setup {
    /// The sample alarm event for this test's alarm, in `state` from `previous` at `ts`.
    fn alarm_event(&self, state: &str, previous: &str, ts: &str) -> Value {
        let mut ev: Value =
            serde_json::from_str(if state == "OK" { ALARM_OK } else { ALARM }).unwrap();
        ev["resources"] = json!([format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}",
            self.alarm
        )]);
        ev["detail"]["alarmName"] = json!(self.alarm);
        ev["detail"]["state"]["value"] = json!(state);
        ev["detail"]["state"]["timestamp"] = json!(ts);
        ev["detail"]["previousState"]["value"] = json!(previous);
        ev
    }

    /// The pipeline's executions as SageMaker lists them: (arn, display name).
    async fn executions(&self) -> Vec<(String, String)> {
        let out = self
            .sm
            .list_pipeline_executions()
            .pipeline_name(&self.pipeline)
            .send()
            .await
            .expect("ListPipelineExecutions");
        out.pipeline_execution_summaries()
            .iter()
            .map(|s| {
                (
                    s.pipeline_execution_arn().unwrap_or_default().to_owned(),
                    s.pipeline_execution_display_name()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    async fn handle(&self, event: Value) -> Output {
        handle(event, &self.deps).await.expect("handle")
    }
}

fn skip_code(out: &Output) -> SkipReason {
    out.report
        .skip
        .as_ref()
        .unwrap_or_else(|| panic!("expected a skip: {out:?}"))
        .code
}

/// The injected faults matching `needle`: (id, remaining, hits).
fn faults_for(needle: &str) -> Vec<(u64, i64, i64)> {
    let (status, body) = emulator().http("GET", "/driftloop/faults", "");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["match"].as_str() == Some(needle))
        .map(|f| {
            (
                f["id"].as_u64().unwrap(),
                f["remaining"].as_i64().unwrap(),
                f["hits"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn alarm_starts_one_execution_with_parameters_and_publishes_event_and_metric() {
    let s = setup(&[
        (CONTEXT_VAR, "alarm=TriggerAlarm,value=DriftValue"),
        (
            PARAMETERS_VAR,
            r#"{"TrainingInstanceType": "ml.m5.xlarge"}"#,
        ),
    ])
    .await;
    let out = s
        .handle(s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000"))
        .await;
    assert_eq!(out.report.outcome, OutcomeKind::Started);
    let arn = out.report.pipeline_execution_arn.clone().unwrap();
    let execs = s.executions().await;
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].0, arn);
    assert_eq!(Some(&execs[0].1), out.report.display_name.as_ref());
    assert!(execs[0].1.starts_with("drift-"), "{}", execs[0].1);

    let params =
        s.sm.list_pipeline_parameters_for_execution()
            .pipeline_execution_arn(&arn)
            .send()
            .await
            .unwrap();
    let params: HashMap<&str, &str> = params
        .pipeline_parameters()
        .iter()
        .map(|p| (p.name().unwrap_or_default(), p.value().unwrap_or_default()))
        .collect();
    assert_eq!(params["TrainingInstanceType"], "ml.m5.xlarge");
    assert_eq!(params["TriggerAlarm"], s.alarm);
    assert_eq!(params["DriftValue"], "0.31");
    let described =
        s.sm.describe_pipeline_execution()
            .pipeline_execution_arn(&arn)
            .send()
            .await
            .unwrap();
    assert!(
        described
            .pipeline_execution_description()
            .unwrap()
            .contains(&format!("alarm {} entered ALARM", s.alarm))
    );

    assert!(out.publication.event_id.is_some(), "{:?}", out.publication);
    assert!(
        out.publication.metric_sent && out.publication.errors.is_empty(),
        "{:?}",
        out.publication
    );
    let metrics =
        s.cw.list_metrics()
            .namespace(&s.namespace)
            .send()
            .await
            .expect("ListMetrics");
    let started: Vec<_> = metrics
        .metrics()
        .iter()
        .filter(|m| m.metric_name() == Some(STARTED_METRIC))
        .collect();
    assert_eq!(started.len(), 1, "{metrics:?}");
    assert_eq!(started[0].dimensions()[0].name(), Some("Pipeline"));
    assert_eq!(
        started[0].dimensions()[0].value(),
        Some(s.pipeline.as_str())
    );
}

#[tokio::test]
async fn fifty_sequential_deliveries_start_exactly_one_execution() {
    let s = setup(&[]).await;
    let event = s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000");
    let first = s.handle(event.clone()).await;
    let arn = first
        .report
        .pipeline_execution_arn
        .clone()
        .expect("the first delivery starts");
    for _ in 1..50 {
        let out = s.handle(event.clone()).await;
        assert_eq!(skip_code(&out), SkipReason::AlreadyStarted);
        assert_eq!(
            out.report
                .skip
                .as_ref()
                .unwrap()
                .execution
                .as_ref()
                .unwrap()
                .arn,
            arn
        );
    }
    assert_eq!(s.executions().await.len(), 1);
    // The same transition through the alarm action (instead of EventBridge) is the same trigger.
    let action = json!({
        "source": "aws.cloudwatch",
        "alarmArn": event["resources"][0],
        "accountId": "123456789012",
        "time": event["detail"]["state"]["timestamp"],
        "region": "us-east-1",
        "alarmData": event["detail"],
    });
    assert_eq!(
        skip_code(&s.handle(action).await),
        SkipReason::AlreadyStarted
    );
    assert_eq!(s.executions().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_concurrent_deliveries_start_exactly_one_execution() {
    let s = setup(&[]).await;
    let event = s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (deps, event) = (s.deps.clone(), event.clone());
            tokio::spawn(async move { handle(event, &deps).await.expect("handle") })
        })
        .collect();
    let mut arns = Vec::new();
    for t in tasks {
        let out = t.await.unwrap();
        match out.report.outcome {
            OutcomeKind::Started => arns.push(out.report.pipeline_execution_arn.unwrap()),
            OutcomeKind::Skipped => {
                assert_eq!(skip_code(&out), SkipReason::AlreadyStarted);
                arns.push(out.report.skip.unwrap().execution.unwrap().arn);
            }
        }
    }
    let execs = s.executions().await;
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert!(
        arns.iter().all(|a| a == &execs[0].0),
        "every delivery reports the one execution"
    );

    // The race itself, forced: fifty concurrent starts of the same planned request (every one of
    // them past the check) through the adapter still make one execution, by the token.
    let now = (system_clock())();
    let trigger = parse_trigger(
        s.alarm_event("ALARM", "OK", "2024-05-02T08:00:00.000+0000"),
        now,
    )
    .unwrap();
    let request = Arc::new(
        plan(
            &trigger,
            &s.deps.config.retrain.routes,
            &s.deps.config.retrain.parameters,
        )
        .unwrap(),
    );
    let runner = Arc::new(SageMaker::new(s.sm.clone()));
    let starts: Vec<_> = (0..50)
        .map(|_| {
            let (runner, request) = (runner.clone(), request.clone());
            tokio::spawn(async move {
                runner
                    .start_execution(&request)
                    .await
                    .expect("StartPipelineExecution")
            })
        })
        .collect();
    let mut started = Vec::new();
    for t in starts {
        started.push(t.await.unwrap());
    }
    assert!(started.iter().all(|a| a == &started[0]));
    assert_eq!(s.executions().await.len(), 2, "one per trigger");
}

#[tokio::test]
async fn throttled_start_is_retried_by_the_sdk_and_starts_one_execution() {
    let s = setup(&[]).await;
    emulator().inject_fault("StartPipelineExecution", 2, "throttle", &s.pipeline);
    let out = s
        .handle(s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000"))
        .await;
    assert_eq!(out.report.outcome, OutcomeKind::Started);
    assert_eq!(s.executions().await.len(), 1);
    let faults = faults_for(&s.pipeline);
    assert_eq!(
        faults.iter().map(|f| (f.1, f.2)).collect::<Vec<_>>(),
        [(0, 2)],
        "both throttles were hit, then it went through"
    );
}

#[tokio::test]
async fn throttling_beyond_the_sdk_retries_is_retryable_and_the_redelivery_starts_one() {
    let s = setup(&[]).await;
    let body = json!({"operation": "StartPipelineExecution", "count": 50, "kind": "throttle", "match": s.pipeline});
    let (status, text) = emulator().http("POST", "/driftloop/faults", &body.to_string());
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_u64()
        .unwrap();
    let event = s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000");
    let err = handle(event.clone(), &s.deps).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable.Throttled", "{err}");
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.Throttled"
    );
    let hits = faults_for(&s.pipeline)[0].2;
    assert!(
        hits >= 2,
        "the SDK retried before giving up ({hits} attempts)"
    );
    assert!(s.executions().await.is_empty());
    // The throttling ends; EventBridge / Lambda redeliver the same event.
    let (status, text) = emulator().http("DELETE", &format!("/driftloop/faults/{id}"), "");
    assert_eq!(status, 200, "{text}");
    let out = s.handle(event.clone()).await;
    assert_eq!(out.report.outcome, OutcomeKind::Started);
    assert_eq!(
        skip_code(&s.handle(event).await),
        SkipReason::AlreadyStarted
    );
    assert_eq!(s.executions().await.len(), 1);
}

#[tokio::test]
async fn out_of_order_ok_after_a_later_alarm_neither_retrains_twice_nor_misses() {
    // History: ALARM@12:00 (from OK) -> OK@14:00 -> ALARM@16:00 (from OK).
    // Delivered: ALARM@12:00, ALARM@16:00, OK@14:00 (late), then redeliveries of both ALARMs.
    let s = setup(&[]).await;
    let a1 = s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000");
    let ok = s.alarm_event("OK", "ALARM", "2024-05-01T14:00:40.515+0000");
    let a3 = s.alarm_event("ALARM", "OK", "2024-05-01T16:00:40.100+0000");
    let e1 = s
        .handle(a1.clone())
        .await
        .report
        .pipeline_execution_arn
        .expect("first ALARM starts");
    let e3 = s
        .handle(a3.clone())
        .await
        .report
        .pipeline_execution_arn
        .expect("the later ALARM is not missed");
    assert_ne!(e1, e3);
    assert_eq!(skip_code(&s.handle(ok.clone()).await), SkipReason::NotAlarm);
    assert_eq!(skip_code(&s.handle(a3).await), SkipReason::AlreadyStarted);
    assert_eq!(skip_code(&s.handle(a1).await), SkipReason::AlreadyStarted);
    assert_eq!(s.executions().await.len(), 2);

    // With a cooldown, the later transition is skipped (with its reason), and still only one runs.
    let s = setup(&[(COOLDOWN_VAR, "1h")]).await;
    let a1 = s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000");
    let a3 = s.alarm_event("ALARM", "OK", "2024-05-01T16:00:40.100+0000");
    assert_eq!(
        s.handle(a1.clone()).await.report.outcome,
        OutcomeKind::Started
    );
    let skipped = s.handle(a3).await;
    assert_eq!(skip_code(&skipped), SkipReason::Cooldown);
    assert!(
        skipped
            .report
            .skip
            .as_ref()
            .unwrap()
            .message
            .contains("within the 1h cooldown")
    );
    assert_eq!(skip_code(&s.handle(ok).await), SkipReason::NotAlarm);
    assert_eq!(skip_code(&s.handle(a1).await), SkipReason::AlreadyStarted);
    assert_eq!(s.executions().await.len(), 1);
}

#[tokio::test]
async fn a_running_execution_blocks_new_triggers_until_it_finishes() {
    let s = setup(&[]).await;
    let a1 = s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000");
    let a3 = s.alarm_event("ALARM", "OK", "2024-05-01T16:00:40.100+0000");
    let e1 = s
        .handle(a1)
        .await
        .report
        .pipeline_execution_arn
        .expect("started");
    // The emulator completes runs at once; make this one still running.
    emulator().set_sagemaker_status(json!({"pipeline_execution": e1, "status": "Executing"}));
    let busy = s.handle(a3.clone()).await;
    assert_eq!(skip_code(&busy), SkipReason::PipelineBusy);
    let skip = busy.report.skip.unwrap();
    assert_eq!(skip.execution.unwrap().arn, e1);
    assert!(
        skip.message.contains("already executing"),
        "{}",
        skip.message
    );
    // It finishes (failed); the redelivered later alarm now starts its own run.
    emulator().set_sagemaker_status(json!({"pipeline_execution": e1, "status": "Failed"}));
    assert_eq!(s.handle(a3).await.report.outcome, OutcomeKind::Started);
    assert_eq!(s.executions().await.len(), 2);
}

#[tokio::test]
async fn scheduled_retrain_after_a_successful_drift_retrain_is_skipped() {
    let s = setup(&[]).await;
    // The emulator's executions succeed at once.
    assert_eq!(
        s.handle(s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000"))
            .await
            .report
            .outcome,
        OutcomeKind::Started
    );
    let mut schedule: Value = serde_json::from_str(SCHEDULE).unwrap();
    schedule["time"] = json!(1_714_964_400_000_i64);
    let out = s.handle(schedule).await;
    assert_eq!(skip_code(&out), SkipReason::RecentDriftRetrain);
    assert!(out.publication.event_id.is_some());
    assert_eq!(s.executions().await.len(), 1);
}

#[tokio::test]
async fn on_demand_requests_pass_their_parameters_and_force_only_overrides_the_cooldown() {
    let s = setup(&[(COOLDOWN_VAR, "1h")]).await;
    let request = |id: &str, force: bool| {
        let mut ev: Value = serde_json::from_str(REQUEST).unwrap();
        ev["id"] = json!(id);
        ev["detail"]["pipelineName"] = json!(s.pipeline);
        ev["detail"]["parameters"] = json!({"TrainingInstanceType": "ml.c5.4xlarge"});
        ev["detail"]["force"] = json!(force);
        ev
    };
    let first = s.handle(request("req-1", false)).await;
    let arn = first
        .report
        .pipeline_execution_arn
        .clone()
        .expect("started");
    assert!(
        first
            .report
            .display_name
            .as_deref()
            .unwrap()
            .starts_with("ondemand-alice-example-com-")
    );
    let params =
        s.sm.list_pipeline_parameters_for_execution()
            .pipeline_execution_arn(&arn)
            .send()
            .await
            .unwrap();
    assert_eq!(
        params.pipeline_parameters()[0].value(),
        Some("ml.c5.4xlarge")
    );
    assert_eq!(
        skip_code(&s.handle(request("req-1", false)).await),
        SkipReason::AlreadyStarted,
        "same event id"
    );
    assert_eq!(
        skip_code(&s.handle(request("req-2", false)).await),
        SkipReason::Cooldown,
        "another request, within 1h"
    );
    assert_eq!(
        s.handle(request("req-3", true)).await.report.outcome,
        OutcomeKind::Started,
        "forced"
    );
    assert_eq!(s.executions().await.len(), 2);
}

#[tokio::test]
async fn a_missing_pipeline_is_a_permanent_error() {
    let s = setup(&[(PIPELINE_VAR, "never-created-pipeline")]).await;
    let err = handle(
        s.alarm_event("ALARM", "OK", "2024-05-01T12:00:40.989+0000"),
        &s.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(err.to_string().contains("never-created-pipeline"), "{err}");
}

#[tokio::test]
async fn eventbridge_adapter_surfaces_failed_entries_and_refuses_oversized_ones() {
    let aws = aws().await;
    let bus = unique("bus");
    aws.eventbridge()
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let events = EventBridge::new(aws.eventbridge());
    let ok = OutgoingEvent::new("driftloop", "Adapter Probe", json!({"n": 1})).on_bus(Some(&bus));
    assert!(!events.publish(&ok).await.unwrap().is_empty());

    // PutEvents answers 200 with FailedEntryCount=1 for an entry without a source.
    let failed = OutgoingEvent::new("", "Adapter Probe", json!({"n": 1})).on_bus(Some(&bus));
    let err = events.publish(&failed).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.Client", "{err}");
    assert!(
        err.to_string().contains("InvalidArgument")
            && err.to_string().contains("FailedEntryCount=1"),
        "{err}"
    );

    let huge = OutgoingEvent::new(
        "driftloop",
        "Adapter Probe",
        json!({"blob": "x".repeat(300 * 1024)}),
    )
    .on_bus(Some(&bus));
    assert_eq!(
        events.publish(&huge).await.unwrap_err().error_type(),
        "Permanent.EventTooLarge"
    );

    let missing = OutgoingEvent::new("driftloop", "Adapter Probe", json!({}))
        .on_bus(Some(unique("no-such-bus")));
    assert_eq!(
        events.publish(&missing).await.unwrap_err().class(),
        ErrorClass::Permanent
    );
}

#[tokio::test]
async fn cloudwatch_adapter_batches_by_1000_and_never_sends_non_finite_values() {
    let aws = aws().await;
    let cw = aws.cloudwatch();
    let metrics = CloudWatch::new(cw.clone());
    let namespace = format!("driftloop-test/{}", unique("batch"));
    let mut datums: Vec<MetricDatum> = (0..1001)
        .map(|_| MetricDatum::new("BatchProbe", 2.0, MetricUnit::Count).dimension("Probe", "a"))
        .collect();
    datums
        .push(MetricDatum::new("BatchProbe", f64::NAN, MetricUnit::Count).dimension("Probe", "a"));
    datums.push(
        MetricDatum::new("BatchProbe", f64::INFINITY, MetricUnit::Count).dimension("Probe", "a"),
    );
    let report = metrics
        .put_metrics(&namespace, datums)
        .await
        .expect("PutMetricData");
    assert_eq!(
        (report.sent, report.calls, report.dropped.len()),
        (1001, 2, 2)
    );

    let now = SystemTime::now();
    let stats = cw
        .get_metric_statistics()
        .namespace(&namespace)
        .metric_name("BatchProbe")
        .dimensions(Dimension::builder().name("Probe").value("a").build())
        .start_time((now - Duration::from_secs(3600)).into())
        .end_time((now + Duration::from_secs(3600)).into())
        .period(7200)
        .statistics(Statistic::SampleCount)
        .statistics(Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics");
    let count: f64 = stats
        .datapoints()
        .iter()
        .filter_map(|d| d.sample_count())
        .sum();
    let sum: f64 = stats.datapoints().iter().filter_map(|d| d.sum()).sum();
    assert_eq!((count, sum), (1001.0, 2002.0), "{stats:?}");
    let listed = cw
        .list_metrics()
        .namespace(&namespace)
        .dimensions(DimensionFilter::builder().name("Probe").value("a").build())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.metrics().len(), 1);
}

/// `n` different alarms entering ALARM at once, each handled by its own task.
async fn concurrent_distinct_alarms(s: &Setup, n: usize) -> Vec<Output> {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut event = s.alarm_event("ALARM", "OK", &ts);
            let name = format!("{}-{i}", s.alarm);
            event["detail"]["alarmName"] = json!(name);
            let (deps, barrier) = (s.deps.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                handle(event, &deps).await.expect("handle")
            })
        })
        .collect();
    let mut outs = Vec::new();
    for t in tasks {
        outs.push(t.await.unwrap());
    }
    outs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_distinct_alarms_start_one_execution_under_the_lease() {
    let s = setup(&[(COOLDOWN_VAR, "1h")]).await;
    let outs = concurrent_distinct_alarms(&s, 12).await;
    let started: Vec<_> = outs
        .iter()
        .filter(|o| o.report.outcome == OutcomeKind::Started)
        .collect();
    assert_eq!(started.len(), 1, "{outs:#?}");
    let arn = started[0].report.pipeline_execution_arn.clone().unwrap();
    for o in outs
        .iter()
        .filter(|o| o.report.outcome == OutcomeKind::Skipped)
    {
        let skip = o.report.skip.as_ref().unwrap();
        assert!(
            matches!(skip.code, SkipReason::Cooldown | SkipReason::PipelineBusy),
            "{skip:?}"
        );
        assert_eq!(
            skip.execution.as_ref().unwrap().arn,
            arn,
            "skipped for the one started"
        );
    }
    let execs = s.executions().await;
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(execs[0].0, arn);
    // The lease is released and remembers the start.
    let lease = s.deps.config.lease.as_ref().unwrap().object(&s.pipeline);
    let body = S3::new(s.s3.clone())
        .read(&lease)
        .await
        .unwrap()
        .unwrap()
        .body;
    let state: LeaseState = serde_json::from_slice(&body).unwrap();
    assert_eq!(state.holder, None);
    assert_eq!(state.last_started.unwrap().arn, arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn without_the_lease_concurrent_distinct_alarms_can_double_start() {
    // The same race with the mechanism off (LEASE_S3_URI unset): check-then-start is not atomic
    // across different tokens, and more than one execution starts. This is what the lease test
    // above would see without the lease.
    let mut most = 0;
    for _ in 0..5 {
        let s = setup(&[(COOLDOWN_VAR, "1h"), (LEASE_VAR, "")]).await;
        assert!(s.deps.config.lease.is_none());
        concurrent_distinct_alarms(&s, 12).await;
        most = most.max(s.executions().await.len());
        if most > 1 {
            break;
        }
    }
    assert!(most > 1, "the race never showed: {most} execution(s)");
}

/// Creates `name` (a metric alarm) and sets it to ALARM; returns its state timestamp as the
/// alarm's state-change event carries it.
async fn alarm_in_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str) -> String {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("driftloop-test/recheck")
        .metric_name("auc")
        .statistic(Statistic::Average)
        .period(3600)
        .evaluation_periods(1)
        .threshold(0.8)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("Threshold Crossed: auc 0.61 < 0.8")
        .send()
        .await
        .expect("SetAlarmState");
    let out = cw
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .expect("DescribeAlarms");
    let a = &out.metric_alarms()[0];
    let t = a
        .state_transitioned_timestamp()
        .or(a.state_updated_timestamp())
        .unwrap();
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn an_alarm_still_in_alarm_after_the_cooldown_retrains_once_on_the_recheck() {
    let prefix = format!("{}-", unique("recheck"));
    let rule = unique("retrain-recheck");
    let s = setup(&[
        (COOLDOWN_VAR, "4s"),
        (RECHECK_RULE_VAR, &rule),
        (RECHECK_PREFIX_VAR, &prefix),
    ])
    .await;
    let (a, b) = (format!("{prefix}quality"), format!("{prefix}drift"));
    let ta = alarm_in_alarm(&s.cw, &a).await;
    let tb = alarm_in_alarm(&s.cw, &b).await;
    let event = |name: &str, ts: &str| {
        let mut e = s.alarm_event("ALARM", "OK", ts);
        e["detail"]["alarmName"] = json!(name);
        e
    };
    assert_eq!(
        s.handle(event(&a, &ta)).await.report.outcome,
        OutcomeKind::Started
    );
    assert_eq!(
        skip_code(&s.handle(event(&b, &tb)).await),
        SkipReason::Cooldown
    );

    let tick = || async {
        let mut e: Value = serde_json::from_str(SCHEDULE).unwrap();
        e["resources"] = json!([format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")]);
        e["time"] = json!(chrono::Utc::now().to_rfc3339());
        match handle_event(e, &s.deps).await.expect("recheck") {
            Response::Recheck(r) => r,
            other => panic!("expected a recheck: {other:?}"),
        }
    };
    let codes = |r: &RecheckOutput| -> Vec<(String, Option<SkipReason>)> {
        let mut v: Vec<_> = r
            .outcomes
            .iter()
            .map(|o| {
                (
                    o.report.trigger.name.clone(),
                    o.report.skip.as_ref().map(|k| k.code),
                )
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    // Within the cooldown: b is still deferred; a was served by its own execution.
    let r = tick().await;
    assert_eq!(
        codes(&r),
        [
            (b.clone(), Some(SkipReason::Cooldown)),
            (a.clone(), Some(SkipReason::AlreadyStarted))
        ]
    );
    assert_eq!(s.executions().await.len(), 1);

    // The real clock moves past the cooldown; b is still in ALARM (no new transition).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = tick().await;
    assert_eq!(
        codes(&r),
        [
            (b.clone(), None),
            (a.clone(), Some(SkipReason::AlreadyStarted))
        ]
    );
    let started = r
        .outcomes
        .iter()
        .find(|o| o.report.trigger.name == b)
        .unwrap();
    assert!(
        started.publication.event_id.is_some(),
        "{:?}",
        started.publication
    );
    assert_eq!(s.executions().await.len(), 2);

    // Later ticks, past another cooldown too, start nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for _ in 0..2 {
        let r = tick().await;
        assert_eq!(
            codes(&r),
            [
                (b.clone(), Some(SkipReason::AlreadyStarted)),
                (a.clone(), Some(SkipReason::AlreadyStarted))
            ]
        );
    }
    assert_eq!(s.executions().await.len(), 2);
}
