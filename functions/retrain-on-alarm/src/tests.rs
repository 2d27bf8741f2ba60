use super::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use driftloop::doubles::{
    InMemoryAlarmStates, InMemoryConditionalStore, InMemoryPipelines, RecordingEvents,
    RecordingMetrics,
};
use driftloop::pipelines::ExecutionStatus;
use driftloop::publish::PublishError;
use driftloop::retrain::{Outcome, SkipReason};
use serde_json::json;

mod estimate;

const ALARM: &str = include_str!("../../../events/retrain-alarm-eventbridge.json");
const ALARM_OK: &str = include_str!("../../../events/retrain-alarm-eventbridge-ok.json");
const ALARM_MATH: &str = include_str!("../../../events/retrain-alarm-eventbridge-math.json");
const ALARM_ACTION: &str = include_str!("../../../events/retrain-alarm-action.json");
const SCHEDULE: &str = include_str!("../../../events/retrain-schedule.json");
const REQUEST: &str = include_str!("../../../events/retrain-request.json");
/// What the template's RetrainRecheckRule sends (its InputTransformer).
const RECHECK: &str = include_str!("../../../events/retrain-recheck.json");

fn ev(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

struct World {
    pipelines: Arc<InMemoryPipelines>,
    events: Arc<RecordingEvents>,
    metrics: Arc<RecordingMetrics>,
    alarms: Arc<InMemoryAlarmStates>,
    deps: Deps,
}

/// A function over in-memory doubles. The samples are from 2024, so the trigger age is not
/// limited unless `vars` sets it.
fn world(vars: &[(&str, &str)], now: DateTime<Utc>) -> World {
    let mut map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry(MAX_TRIGGER_AGE_VAR.to_string())
        .or_insert_with(|| "0".to_string());
    let config = Config::from_env(&map).unwrap();
    let pipelines = Arc::new(InMemoryPipelines::with_pipelines([
        "churn-build",
        "default-build",
    ]));
    pipelines.set_clock(Some(now));
    let events = Arc::new(RecordingEvents::default());
    let metrics = Arc::new(RecordingMetrics::default());
    let alarms = Arc::new(InMemoryAlarmStates::default());
    let deps = Deps {
        pipelines: pipelines.clone(),
        leases: Arc::new(InMemoryConditionalStore::default()),
        alarms: alarms.clone(),
        events: events.clone(),
        metrics: metrics.clone(),
        catalogue: None,
        config,
        clock: Arc::new(move || now),
    };
    World {
        pipelines,
        events,
        metrics,
        alarms,
        deps,
    }
}

const VARS: &[(&str, &str)] = &[
    (PIPELINE_VAR, "default-build"),
    (ROUTES_VAR, "churn-*=churn-build"),
    (COOLDOWN_VAR, "6h"),
    (
        CONTEXT_VAR,
        "alarm=TriggerAlarm,metric=DriftMetric,value=DriftValue,time=TriggerTime",
    ),
    (
        PARAMETERS_VAR,
        r#"{"TrainingInstanceType": "ml.m5.xlarge"}"#,
    ),
    (BUS_VAR, "mlops"),
    (NAMESPACE_VAR, "driftloop/test"),
];

fn at(s: &str) -> DateTime<Utc> {
    driftloop::events::parse_time_str(s).unwrap()
}

#[tokio::test]
async fn drift_alarm_starts_the_mapped_pipeline_and_publishes_started() {
    let w = world(VARS, at("2024-05-01T12:01:00Z"));
    let out = handle(ev(ALARM), &w.deps).await.unwrap();
    let r = &out.report;
    assert_eq!(r.outcome, OutcomeKind::Started);
    assert_eq!(r.pipeline_name.as_deref(), Some("churn-build"));
    let execs = w.pipelines.executions("churn-build");
    assert_eq!(execs.len(), 1);
    assert_eq!(
        r.pipeline_execution_arn.as_deref(),
        Some(execs[0].summary.arn.as_str())
    );
    let params = &execs[0].request.parameters;
    assert_eq!(params["TrainingInstanceType"], "ml.m5.xlarge");
    assert_eq!(params["TriggerAlarm"], "churn-feature-drift");
    assert_eq!(params["DriftMetric"], "feature_baseline_drift_total_charge");
    assert_eq!(params["DriftValue"], "0.31");
    assert_eq!(params["TriggerTime"], "2024-05-01T12:00:40.989Z");
    assert!(
        execs[0]
            .request
            .description
            .contains("alarm churn-feature-drift entered ALARM")
    );

    let events = w.events.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.source.as_str(), e.detail_type.as_str()),
        ("driftloop", "Retraining Started")
    );
    assert_eq!(e.event_bus_name.as_deref(), Some("mlops"));
    assert_eq!(
        e.detail["pipelineExecutionArn"],
        json!(execs[0].summary.arn)
    );
    assert_eq!(e.detail["trigger"]["kind"], "alarm");
    assert_eq!(e.detail["trigger"]["alarm"]["value"], 0.31);
    assert_eq!(
        e.resources,
        [
            execs[0].summary.arn.clone(),
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-feature-drift".into()
        ]
    );

    let m = w.metrics.datums();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, "driftloop/test");
    assert_eq!((m[0].1.name.as_str(), m[0].1.value), (STARTED_METRIC, 1.0));
    assert_eq!(
        m[0].1.dimensions,
        [("Pipeline".to_owned(), "churn-build".to_owned())]
    );
    assert_eq!(
        out.publication,
        Publication {
            event_id: Some("event-1".into()),
            metric_sent: true,
            errors: vec![]
        }
    );

    // The output is the event's detail plus the publication.
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v["outcome"], "Started");
    assert_eq!(v["publication"]["eventId"], "event-1");
    assert!(v["clientRequestToken"].as_str().unwrap().len() >= 32);
    let mut detail = v.clone();
    detail.as_object_mut().unwrap().remove("publication");
    assert_eq!(detail, e.detail);
}

#[tokio::test]
async fn ok_transition_is_a_published_no_op() {
    let w = world(VARS, at("2024-05-01T14:01:00Z"));
    let out = handle(ev(ALARM_OK), &w.deps).await.unwrap();
    let skip = out.report.skip.as_ref().unwrap();
    assert_eq!(skip.code, SkipReason::NotAlarm);
    assert!(skip.message.contains("changed to OK"));
    assert_eq!(
        (w.pipelines.list_calls(), w.pipelines.start_calls()),
        (0, 0)
    );
    let e = &w.events.of_type(SKIPPED_DETAIL_TYPE)[0];
    assert_eq!(e.detail["skip"]["code"], "NotAlarm");
    assert_eq!(e.detail["pipelineName"], "churn-build");
    let d = &w.metrics.named(SKIPPED_METRIC)[0];
    assert_eq!(
        d.dimensions,
        [
            ("Pipeline".to_owned(), "churn-build".to_owned()),
            ("Reason".to_owned(), "NotAlarm".to_owned())
        ]
    );
}

#[tokio::test]
async fn every_sample_is_accepted() {
    for (sample, outcome, pipeline) in [
        (ALARM, OutcomeKind::Started, "churn-build"),
        (ALARM_MATH, OutcomeKind::Started, "churn-build"),
        (ALARM_ACTION, OutcomeKind::Started, "churn-build"),
        (ALARM_OK, OutcomeKind::Skipped, "churn-build"),
        (SCHEDULE, OutcomeKind::Started, "churn-build"),
        (REQUEST, OutcomeKind::Started, "churn-build"),
    ] {
        let w = world(
            &[
                (PIPELINE_VAR, "default-build"),
                (ROUTES_VAR, "churn-*=churn-build"),
            ],
            at("2024-05-10T00:00:00Z"),
        );
        let out = handle(ev(sample), &w.deps).await.unwrap();
        assert_eq!(out.report.outcome, outcome, "{sample}");
        assert_eq!(out.report.pipeline_name.as_deref(), Some(pipeline));
        assert_eq!(w.events.events().len(), 1);
        assert_eq!(w.metrics.datums().len(), 1);
    }
}

#[tokio::test]
async fn redeliveries_and_later_alarms_within_the_cooldown_are_skipped_with_reasons() {
    let now = at("2024-05-01T12:01:00Z");
    let w = world(VARS, now);
    w.pipelines.set_new_status(ExecutionStatus::Succeeded);
    handle(ev(ALARM), &w.deps).await.unwrap();
    let again = handle(ev(ALARM), &w.deps).await.unwrap();
    assert_eq!(
        again.report.skip.as_ref().unwrap().code,
        SkipReason::AlreadyStarted
    );
    let mut later = ev(ALARM);
    later["detail"]["state"]["timestamp"] = json!("2024-05-01T12:30:00.000+0000");
    let out = handle(later, &w.deps).await.unwrap();
    let skip = out.report.skip.unwrap();
    assert_eq!(skip.code, SkipReason::Cooldown);
    assert!(
        skip.message.contains("within the 6h cooldown"),
        "{}",
        skip.message
    );
    assert_eq!(w.pipelines.executions("churn-build").len(), 1);
    let skipped = w.events.of_type(SKIPPED_DETAIL_TYPE);
    assert_eq!(skipped.len(), 2);
    assert_eq!(
        skipped[1].detail["skip"]["execution"]["status"],
        "Succeeded"
    );
    assert_eq!(w.metrics.named(SKIPPED_METRIC).len(), 2);
}

#[tokio::test]
async fn stale_triggers_are_skipped_and_reported() {
    let vars = [(PIPELINE_VAR, "churn-build"), (MAX_TRIGGER_AGE_VAR, "6h")];
    // The alarm sample's state changed at 2024-05-01T12:00:40Z.
    let w = world(&vars, at("2024-05-02T12:00:00Z"));
    let out = handle(ev(ALARM), &w.deps).await.unwrap();
    assert_eq!(out.report.outcome, OutcomeKind::Skipped);
    let skip = out.report.skip.as_ref().unwrap();
    assert_eq!(skip.code, SkipReason::Stale);
    assert!(
        skip.message
            .contains("older than the 6h maximum trigger age"),
        "{}",
        skip.message
    );
    assert!(w.pipelines.executions("churn-build").is_empty());
    let (_, m) = &w.metrics.datums()[0];
    assert_eq!(m.name, SKIPPED_METRIC);
    assert!(
        m.dimensions
            .contains(&("Reason".to_string(), "Stale".to_string())),
        "{m:?}"
    );
    // The same delivery on time starts the pipeline.
    let w = world(&vars, at("2024-05-01T12:05:00Z"));
    let out = handle(ev(ALARM), &w.deps).await.unwrap();
    assert_eq!(out.report.outcome, OutcomeKind::Started);
    // The default is a day; the variable is validated.
    let c = Config::from_env(&[(PIPELINE_VAR, "p")]).unwrap();
    assert_eq!(c.retrain.policy.max_trigger_age, Duration::hours(24));
    let err = Config::from_env(&[(PIPELINE_VAR, "p"), (MAX_TRIGGER_AGE_VAR, "soon")]).unwrap_err();
    assert!(err.to_string().contains(MAX_TRIGGER_AGE_VAR), "{err}");
}

#[tokio::test]
async fn schedule_after_a_successful_drift_retrain_is_skipped() {
    let w = world(
        &[
            (PIPELINE_VAR, "churn-build"),
            (COOLDOWN_VAR, "1h"),
            (SCHEDULE_PERIOD_VAR, "7d"),
        ],
        at("2024-05-06T03:00:05Z"),
    );
    w.pipelines.set_clock(Some(at("2024-05-03T06:11:00Z")));
    w.pipelines.set_new_status(ExecutionStatus::Succeeded);
    // The drift retrain three days earlier (clock of that invocation).
    let earlier = Deps {
        clock: Arc::new(|| at("2024-05-03T06:11:00Z")),
        ..clone_deps(&w.deps)
    };
    assert_eq!(
        handle(ev(ALARM_ACTION), &earlier)
            .await
            .unwrap()
            .report
            .outcome,
        OutcomeKind::Started
    );
    let out = handle(ev(SCHEDULE), &w.deps).await.unwrap();
    assert_eq!(
        out.report.skip.unwrap().code,
        SkipReason::RecentDriftRetrain
    );
    // Eight days later the schedule runs.
    let later = Deps {
        clock: Arc::new(|| at("2024-05-11T07:00:00Z")),
        ..clone_deps(&w.deps)
    };
    assert_eq!(
        handle(ev(SCHEDULE), &later).await.unwrap().report.outcome,
        OutcomeKind::Started
    );
}

fn clone_deps(d: &Deps) -> Deps {
    Deps {
        pipelines: d.pipelines.clone(),
        leases: d.leases.clone(),
        alarms: d.alarms.clone(),
        events: d.events.clone(),
        metrics: d.metrics.clone(),
        catalogue: d.catalogue.clone(),
        config: d.config.clone(),
        clock: d.clock.clone(),
    }
}

#[tokio::test]
async fn unsupported_and_invalid_events_are_permanent() {
    let w = world(VARS, Utc::now());
    let err = handle(json!({"model_package_group_name": "churn"}), &w.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.UnsupportedEvent");
    assert!(
        err.to_string()
            .contains("got an object with keys [model_package_group_name]"),
        "{err}"
    );
    assert!(err.to_string().contains("\"Scheduled Event\""), "{err}");
    let diag = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diag.error_type, "Permanent.UnsupportedEvent");

    let mut bad = ev(REQUEST);
    bad["detail"]["reason"] = json!("  ");
    let err = handle(bad, &w.deps).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.InvalidEvent");
    assert!(err.to_string().contains("reason"), "{err}");
    assert!(
        w.events.events().is_empty(),
        "nothing is published for a rejected event"
    );
}

#[tokio::test]
async fn an_unmapped_trigger_is_a_permanent_configuration_error() {
    let w = world(&[(ROUTES_VAR, "fraud-*=fraud-build")], Utc::now());
    let err = handle(ev(ALARM), &w.deps).await.unwrap_err();
    assert_eq!(err.error_type(), "Permanent.NoPipeline");
    assert!(err.to_string().contains("\"churn-feature-drift\""), "{err}");
    let mut req = ev(REQUEST);
    req["detail"]["pipelineName"] = json!("not-ours");
    assert_eq!(
        handle(req, &w.deps).await.unwrap_err().error_type(),
        "Permanent.PipelineNotConfigured"
    );
}

#[tokio::test]
async fn throttling_after_retries_is_retryable_and_the_redelivery_starts_once() {
    let w = world(VARS, at("2024-05-01T12:01:00Z"));
    let throttled = || {
        AwsError::classify(
            "sagemaker",
            "StartPipelineExecution",
            Some("ThrottlingException"),
            Some(400),
            "Rate exceeded",
        )
    };
    w.pipelines.fail_next("StartPipelineExecution", throttled());
    let err = handle(ev(ALARM), &w.deps).await.unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.Throttled"
    );
    assert!(w.events.events().is_empty());
    let out = handle(ev(ALARM), &w.deps).await.unwrap();
    assert_eq!(out.report.outcome, OutcomeKind::Started);
    assert_eq!(w.pipelines.executions("churn-build").len(), 1);
}

#[tokio::test]
async fn publishing_failures_are_reported_not_fatal() {
    let w = world(VARS, at("2024-05-01T12:01:00Z"));
    w.events.fail_next(driftloop::publish::failed_entry(
        Some("ThrottlingException"),
        Some("Rate exceeded"),
    ));
    w.metrics.fail_next(PublishError::Aws(AwsError::transport(
        "cloudwatch",
        "PutMetricData",
        "connection refused",
    )));
    let out = handle(ev(ALARM), &w.deps).await.unwrap();
    assert_eq!(out.report.outcome, OutcomeKind::Started);
    assert_eq!(w.pipelines.executions("churn-build").len(), 1);
    assert_eq!(out.publication.event_id, None);
    assert!(!out.publication.metric_sent);
    assert_eq!(out.publication.errors.len(), 2);
    assert!(
        out.publication.errors[0].starts_with("Retryable.Throttled: "),
        "{:?}",
        out.publication.errors
    );
    assert!(
        out.publication.errors[1].starts_with("Retryable.Transport: "),
        "{:?}",
        out.publication.errors
    );
}

#[test]
fn config_defaults_and_errors_name_the_variable() {
    let c = Config::from_env(&[(PIPELINE_VAR, "churn-build")]).unwrap();
    assert_eq!(c.retrain.policy, Policy::default());
    assert_eq!(c.retrain.policy.cooldown, Duration::hours(24));
    assert_eq!(c.retrain.policy.schedule_period, Duration::days(7));
    assert_eq!(c.namespace, "driftloop");
    assert_eq!(c.event_bus, None);
    assert_eq!(c.retrain.routes.resolve("anything"), Some("churn-build"));

    let c = Config::from_env(&[(ROUTES_VAR, r#"{"a": "p1"}"#), (COOLDOWN_VAR, "0")]).unwrap();
    assert_eq!(c.retrain.routes.resolve("a"), Some("p1"));
    assert_eq!(c.retrain.routes.resolve("b"), None);
    assert_eq!(c.retrain.policy.cooldown, Duration::zero());

    let err = Config::from_env(&[("OTHER", "x")]).unwrap_err();
    assert_eq!(err.var(), PIPELINE_VAR);
    assert!(err.to_string().contains("ALARM_PIPELINES"), "{err}");
    for (var, value) in [
        (PIPELINE_VAR, "bad name"),
        (ROUTES_VAR, "no-equals-sign"),
        (COOLDOWN_VAR, "30"),
        (SCHEDULE_PERIOD_VAR, "0"),
        (PARAMETERS_VAR, "[1]"),
        (CONTEXT_VAR, "colour=X"),
        (NAMESPACE_VAR, "AWS/SageMaker"),
    ] {
        let base = if var == PIPELINE_VAR {
            ("UNRELATED", "x")
        } else {
            (PIPELINE_VAR, "p")
        };
        let err = Config::from_env(&[(var, value), base]).unwrap_err();
        assert_eq!(err.var(), var, "{err}");
        assert_eq!(err.error_type(), "Permanent.Configuration");
    }
}

#[test]
fn metric_and_event_shapes() {
    let trigger = driftloop::retrain::parse_trigger(ev(SCHEDULE), Utc::now()).unwrap();
    let report = Report::new(
        trigger,
        Outcome::Skipped {
            pipeline: None,
            skip: driftloop::retrain::Skip {
                reason: SkipReason::Cooldown,
                message: "m".into(),
                execution: None,
            },
        },
    );
    let now = Utc.with_ymd_and_hms(2024, 5, 6, 3, 0, 0).unwrap();
    let d = report.metric(now);
    assert_eq!(
        d.dimensions,
        [("Reason".to_owned(), "Cooldown".to_owned())],
        "no Pipeline dimension when unknown"
    );
    assert_eq!(d.timestamp, Some(now));
    let e = report.event(None, now);
    assert_eq!(e.detail_type, SKIPPED_DETAIL_TYPE);
    assert_eq!(
        e.resources,
        ["arn:aws:events:us-east-1:123456789012:rule/churn-weekly-retrain"]
    );
    assert!(e.validate().is_ok());
}

/// The deps at another instant (the doubles shared), and the pipelines' clock moved with it.
fn at_time(w: &World, now: DateTime<Utc>) -> Deps {
    w.pipelines.set_clock(Some(now));
    Deps {
        clock: Arc::new(move || now),
        ..clone_deps(&w.deps)
    }
}

fn alarm_at(name: &str, ts: DateTime<Utc>) -> Value {
    let mut e = ev(ALARM);
    e["detail"]["alarmName"] = json!(name);
    e["detail"]["state"]["timestamp"] =
        json!(ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    e["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    )]);
    e
}

fn recheck_tick_event(rule: &str, time: DateTime<Utc>) -> Value {
    let mut e = ev(RECHECK);
    assert_eq!(
        rule, "driftloop-retrain-recheck",
        "the template's RECHECK_RULE"
    );
    e["time"] = json!(time.to_rfc3339());
    e
}

const RECHECK_VARS: &[(&str, &str)] = &[
    (PIPELINE_VAR, "churn-build"),
    (COOLDOWN_VAR, "6h"),
    (LEASE_VAR, "s3://state-bucket/retrain-leases/"),
    (RECHECK_RULE_VAR, "driftloop-retrain-recheck"),
    (RECHECK_PREFIX_VAR, "churn-"),
];

async fn tick(w: &World, now: DateTime<Utc>) -> RecheckOutput {
    match handle_event(
        recheck_tick_event("driftloop-retrain-recheck", now),
        &at_time(w, now),
    )
    .await
    .unwrap()
    {
        Response::Recheck(r) => r,
        other => panic!("expected a recheck: {other:?}"),
    }
}

fn codes(r: &RecheckOutput) -> Vec<(String, Option<SkipReason>)> {
    r.outcomes
        .iter()
        .map(|o| {
            (
                o.report.trigger.name.clone(),
                o.report.skip.as_ref().map(|s| s.code),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_alarm_skipped_for_the_cooldown_retrains_once_when_the_cooldown_ends() {
    let t0 = at("2026-03-02T10:00:00Z");
    let w = world(RECHECK_VARS, t0);
    // Runs finish at once (the busy case is the next test).
    w.pipelines.set_new_status(ExecutionStatus::Succeeded);
    // Two alarms enter ALARM a minute apart; the second is skipped for the cooldown.
    w.alarms
        .set("churn-quality", driftloop::retrain::AlarmState::Alarm, t0);
    let t1 = t0 + Duration::minutes(1);
    w.alarms
        .set("churn-drift", driftloop::retrain::AlarmState::Alarm, t1);
    let first = handle(alarm_at("churn-quality", t0), &at_time(&w, t0))
        .await
        .unwrap();
    assert_eq!(first.report.outcome, OutcomeKind::Started);
    let second = handle(alarm_at("churn-drift", t1), &at_time(&w, t1))
        .await
        .unwrap();
    assert_eq!(second.report.skip.unwrap().code, SkipReason::Cooldown);

    // Within the cooldown: still deferred, said so again; the served alarm is not retrained.
    let r = tick(&w, t0 + Duration::hours(1)).await;
    assert_eq!(
        codes(&r),
        [
            ("churn-quality".to_owned(), Some(SkipReason::AlreadyStarted)),
            ("churn-drift".to_owned(), Some(SkipReason::Cooldown)),
        ]
    );
    assert_eq!(w.pipelines.executions("churn-build").len(), 1);

    // The cooldown is over and churn-drift is still in ALARM: it retrains, once, with the token
    // of its own transition.
    let r = tick(&w, t0 + Duration::hours(6) + Duration::minutes(5)).await;
    assert_eq!(
        codes(&r),
        [
            ("churn-quality".to_owned(), Some(SkipReason::AlreadyStarted)),
            ("churn-drift".to_owned(), None),
        ]
    );
    let started = &r.outcomes[1].report;
    let direct = driftloop::retrain::plan(
        &driftloop::retrain::parse_trigger(alarm_at("churn-drift", t1), t1).unwrap(),
        &w.deps.config.retrain.routes,
        &w.deps.config.retrain.parameters,
    )
    .unwrap();
    assert_eq!(
        started.client_request_token.as_deref(),
        Some(direct.client_request_token.as_str()),
        "the recheck starts the transition's own execution"
    );
    assert!(
        started.trigger.reason.contains("still in ALARM"),
        "{}",
        started.trigger.reason
    );
    assert_eq!(w.pipelines.executions("churn-build").len(), 2);
    // Each outcome is published like a trigger's.
    assert!(
        w.events.events().len() >= 6,
        "{:?}",
        w.events.events().len()
    );

    // Further ticks (even past another cooldown) start nothing: one retrain per transition.
    for hours in [7, 13, 30] {
        let r = tick(&w, t0 + Duration::hours(hours)).await;
        assert!(
            codes(&r)
                .iter()
                .all(|(_, c)| *c == Some(SkipReason::AlreadyStarted)),
            "{hours}h: {:?}",
            codes(&r)
        );
    }
    assert_eq!(w.pipelines.executions("churn-build").len(), 2);

    // A new transition (OK, then ALARM again) is a new reason: it retrains after the cooldown.
    let t2 = t0 + Duration::hours(40);
    w.alarms
        .set("churn-drift", driftloop::retrain::AlarmState::Ok, t2);
    w.alarms.set(
        "churn-drift",
        driftloop::retrain::AlarmState::Alarm,
        t2 + Duration::minutes(1),
    );
    let r = tick(&w, t2 + Duration::minutes(2)).await;
    assert_eq!(codes(&r)[1], ("churn-drift".to_owned(), None));
    assert_eq!(w.pipelines.executions("churn-build").len(), 3);
}

#[tokio::test]
async fn a_running_execution_defers_and_an_alarm_older_than_the_window_is_declined() {
    let t0 = at("2026-03-02T10:00:00Z");
    let w = world(
        &[
            (PIPELINE_VAR, "churn-build"),
            (COOLDOWN_VAR, "0"),
            (LEASE_VAR, "s3://state-bucket/retrain-leases/"),
            (RECHECK_RULE_VAR, "driftloop-retrain-recheck"),
            (RECHECK_PREFIX_VAR, "churn-"),
        ],
        t0,
    );
    w.pipelines.add_execution(
        "churn-build",
        driftloop::pipelines::ExecutionSummary {
            arn: "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-build/execution/long"
                .into(),
            status: ExecutionStatus::Executing,
            start_time: t0 - Duration::hours(1),
            display_name: Some("manual".into()),
            description: None,
        },
    );
    w.pipelines.set_new_status(ExecutionStatus::Succeeded);
    w.alarms
        .set("churn-drift", driftloop::retrain::AlarmState::Alarm, t0);
    w.alarms.set(
        "churn-old",
        driftloop::retrain::AlarmState::Alarm,
        t0 - Duration::days(30),
    );
    w.alarms
        .set("other-alarm", driftloop::retrain::AlarmState::Alarm, t0);
    let r = tick(&w, t0 + Duration::minutes(10)).await;
    assert_eq!(
        codes(&r),
        [("churn-drift".to_owned(), Some(SkipReason::PipelineBusy))]
    );
    assert_eq!(r.declined.len(), 1);
    assert_eq!(r.declined[0].alarm, "churn-old");
    assert!(
        r.declined[0].message.contains("cannot be told"),
        "{}",
        r.declined[0].message
    );
    w.pipelines.set_status(
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-build/execution/long",
        ExecutionStatus::Succeeded,
    );
    let r = tick(&w, t0 + Duration::minutes(70)).await;
    assert_eq!(codes(&r), [("churn-drift".to_owned(), None)]);
    let r = tick(&w, t0 + Duration::minutes(130)).await;
    assert_eq!(
        codes(&r),
        [("churn-drift".to_owned(), Some(SkipReason::AlreadyStarted))]
    );
    assert_eq!(w.pipelines.executions("churn-build").len(), 2);
}

#[test]
fn recheck_and_lease_config() {
    let env: std::collections::HashMap<String, String> =
        [(PIPELINE_VAR, "p"), (RECHECK_RULE_VAR, "r")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let err = Config::from_env(&env).unwrap_err();
    assert!(err.to_string().contains(RECHECK_PREFIX_VAR), "{err}");
    let mut env = env;
    env.insert(LEASE_VAR.into(), "not-s3".into());
    env.insert(RECHECK_PREFIX_VAR.into(), "churn-".into());
    let err = Config::from_env(&env).unwrap_err();
    assert!(err.to_string().contains(LEASE_VAR), "{err}");
    env.insert(LEASE_VAR.into(), "s3://bucket/leases/".into());
    let c = Config::from_env(&env).unwrap();
    assert_eq!(
        c.lease.unwrap().object("p").to_string(),
        "s3://bucket/leases/p.json"
    );
    assert_eq!(c.recheck.unwrap().alarm_prefix, "churn-");
}

mod catalogue {
    use super::*;
    use driftloop::catalogue::source::InMemoryCatalogue;

    const CATALOGUE: &str = include_str!("../../../infra/catalogue.example.json");

    fn with_catalogue(document: &str) -> (World, Arc<InMemoryCatalogue>) {
        let now = at("2024-05-01T12:01:00Z");
        let mut w = world(VARS, now);
        for p in ["house-prices-build", "support-topics-build", "fraud-build"] {
            w.pipelines.create(p);
        }
        let source = Arc::new(InMemoryCatalogue::new(document));
        w.deps.catalogue = Some(source.clone());
        (w, source)
    }

    fn started(w: &World) -> Vec<(String, usize)> {
        [
            "churn-build",
            "default-build",
            "house-prices-build",
            "support-topics-build",
            "fraud-build",
        ]
        .into_iter()
        .map(|p| (p.to_owned(), w.pipelines.executions(p).len()))
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    #[tokio::test]
    async fn an_alarm_of_one_model_starts_only_that_models_pipeline_with_its_parameters() {
        let (w, source) = with_catalogue(CATALOGUE);
        let ts = at("2024-05-01T12:00:00Z");
        let out = handle(alarm_at("house-prices-prod-rmse", ts), &w.deps)
            .await
            .unwrap();
        assert_eq!(out.report.outcome, OutcomeKind::Started);
        assert_eq!(
            out.report.pipeline_name.as_deref(),
            Some("house-prices-build")
        );
        let model = out.model.unwrap();
        assert_eq!(model.group, "house-prices");
        assert!(model.catalogue.ends_with("@\"v1\""), "{}", model.catalogue);
        assert_eq!(started(&w), [("house-prices-build".to_owned(), 1)]);
        assert_eq!(source.loads(), 1, "one read per invocation");
        // churn's alarm: its pipeline, its fixed parameters and trigger facts (not the
        // environment's CONTEXT_PARAMETERS).
        let out = handle(alarm_at("churn-prod-f1", ts), &w.deps)
            .await
            .unwrap();
        assert_eq!(out.report.pipeline_name.as_deref(), Some("churn-build"));
        let exec = &w.pipelines.executions("churn-build")[0].request;
        assert_eq!(exec.parameters["TrainingInstanceType"], "ml.m5.xlarge");
        assert_eq!(exec.parameters["TriggerAlarm"], "churn-prod-f1");
        assert!(
            !exec.parameters.contains_key("DriftMetric"),
            "{:?}",
            exec.parameters
        );
        assert_eq!(source.loads(), 2);
    }

    #[tokio::test]
    async fn triggers_outside_the_catalogue_keep_the_environments_routes() {
        let (w, _) = with_catalogue(CATALOGUE);
        let ts = at("2024-05-01T12:00:00Z");
        let out = handle(alarm_at("churn-legacy-drift", ts), &w.deps)
            .await
            .unwrap();
        assert_eq!(out.model, None);
        assert_eq!(out.report.pipeline_name.as_deref(), Some("churn-build"));
        assert!(
            w.pipelines.executions("churn-build")[0]
                .request
                .parameters
                .contains_key("DriftMetric"),
            "the environment's CONTEXT_PARAMETERS"
        );
        let out = handle(alarm_at("unmapped", ts), &w.deps).await.unwrap();
        assert_eq!(out.report.pipeline_name.as_deref(), Some("default-build"));
    }

    #[tokio::test]
    async fn schedule_rules_and_requests_find_their_model() {
        let (w, _) = with_catalogue(CATALOGUE);
        let mut schedule = ev(SCHEDULE);
        schedule["resources"] =
            json!(["arn:aws:events:us-east-1:123456789012:rule/house-prices-weekly"]);
        schedule["time"] = json!("2024-05-01T12:00:00Z");
        let out = handle(schedule, &w.deps).await.unwrap();
        assert_eq!(out.model.unwrap().group, "house-prices");
        assert_eq!(
            out.report.pipeline_name.as_deref(),
            Some("house-prices-build")
        );
        let mut request = ev(REQUEST);
        request["detail"]["pipelineName"] = json!("support-topics-build");
        request["detail"]["parameters"] = json!({"MaxDepth": 6});
        request["time"] = json!("2024-05-01T12:00:00Z");
        let out = handle(request, &w.deps).await.unwrap();
        assert_eq!(out.model.unwrap().group, "support-topics");
        let exec = &w.pipelines.executions("support-topics-build")[0].request;
        assert_eq!(exec.parameters["Epochs"], "10");
        assert_eq!(exec.parameters["MaxDepth"], "6");
        // A request cannot change a model's fixed parameter.
        let mut request = ev(REQUEST);
        request["detail"]["pipelineName"] = json!("support-topics-build");
        request["detail"]["parameters"] = json!({"Epochs": 99});
        let e = handle(request, &w.deps).await.unwrap_err();
        assert_eq!(e.error_type(), "Permanent.ProtectedParameter");
    }

    #[tokio::test]
    async fn a_fourth_model_counts_from_the_next_invocation() {
        let (w, source) = with_catalogue(CATALOGUE);
        let ts = at("2024-05-01T12:00:00Z");
        let out = handle(alarm_at("fraud-prod-auc", ts), &w.deps)
            .await
            .unwrap();
        assert_eq!(out.model, None);
        assert_eq!(out.report.pipeline_name.as_deref(), Some("default-build"));
        let mut doc: Value = serde_json::from_str(CATALOGUE).unwrap();
        doc["models"].as_array_mut().unwrap().push(json!({
            "group": "fraud",
            "problem": {"type": "BinaryClassification"},
            "stages": {"staging": {"endpointName": "fraud-staging"}},
            "alarms": [{"name": "fraud-prod-auc", "metric": "auc", "stage": "staging", "threshold": "external"}],
            "retraining": {"pipeline": "fraud-build"}
        }));
        source.replace(doc.to_string());
        let out = handle(
            alarm_at("fraud-prod-auc", ts + Duration::minutes(1)),
            &w.deps,
        )
        .await
        .unwrap();
        assert_eq!(out.model.unwrap().group, "fraud");
        assert_eq!(out.report.pipeline_name.as_deref(), Some("fraud-build"));
        assert_eq!(w.pipelines.executions("fraud-build").len(), 1);
    }

    #[tokio::test]
    async fn an_alarm_that_does_not_retrain_starts_nothing() {
        let mut doc: Value = serde_json::from_str(CATALOGUE).unwrap();
        doc["models"][0]["alarms"][1]["retrain"] = json!(false);
        let (w, _) = with_catalogue(&doc.to_string());
        let e = handle(
            alarm_at("churn-prod-drift", at("2024-05-01T12:00:00Z")),
            &w.deps,
        )
        .await
        .unwrap_err();
        assert_eq!(e.error_type(), "Permanent.NoPipeline");
        assert!(started(&w).is_empty());
    }

    #[test]
    fn with_a_catalogue_no_pipeline_variable_is_needed() {
        let c = Config::from_env(&[(CATALOGUE_VAR, "s3://config/catalogue.json")]).unwrap();
        assert!(c.retrain.routes.is_empty());
        assert_eq!(
            Config::from_env(&[("X", "y")]).unwrap_err().var(),
            PIPELINE_VAR
        );
    }
}
