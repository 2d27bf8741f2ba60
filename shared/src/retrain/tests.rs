use std::sync::Arc;

use chrono::{Duration, TimeZone};
use serde_json::{Value, json};

use super::*;
use crate::doubles::InMemoryPipelines;
use crate::events::EventError;

const ALARM: &str = include_str!("../../../events/retrain-alarm-eventbridge.json");
const ALARM_OK: &str = include_str!("../../../events/retrain-alarm-eventbridge-ok.json");
const ALARM_MATH: &str = include_str!("../../../events/retrain-alarm-eventbridge-math.json");
const ALARM_ACTION: &str = include_str!("../../../events/retrain-alarm-action.json");
const SCHEDULE: &str = include_str!("../../../events/retrain-schedule.json");
const REQUEST: &str = include_str!("../../../events/retrain-request.json");

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    crate::events::parse_time_str(s).unwrap()
}

fn now() -> DateTime<Utc> {
    t("2024-05-10T00:00:00Z")
}

fn parse(s: &str) -> Trigger {
    parse_trigger(json(s), now()).unwrap()
}

/// The alarm-action payload of the transition an EventBridge alarm event describes.
fn as_alarm_action(eventbridge: &Value) -> Value {
    json!({
        "source": "aws.cloudwatch",
        "alarmArn": eventbridge["resources"][0],
        "accountId": eventbridge["account"],
        "time": eventbridge["detail"]["state"]["timestamp"],
        "region": eventbridge["region"],
        "alarmData": eventbridge["detail"],
    })
}

/// An alarm event of `name` entering `state` from `previous` at `ts`.
fn alarm_event(name: &str, state: &str, previous: &str, ts: &str) -> Value {
    let mut ev = json(ALARM);
    ev["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    )]);
    ev["detail"]["alarmName"] = json!(name);
    ev["detail"]["state"]["value"] = json!(state);
    ev["detail"]["state"]["timestamp"] = json!(ts);
    ev["detail"]["previousState"]["value"] = json!(previous);
    ev
}

fn settings(cooldown: Duration) -> RetrainSettings {
    RetrainSettings {
        routes: PipelineRoutes::parse(Some("default-build".into()), Some("churn-*=churn-build"))
            .unwrap(),
        parameters: ParameterSettings::default(),
        policy: Policy {
            cooldown,
            schedule_period: Duration::days(7),
            // The samples are from 2024; the age rule has its own test.
            max_trigger_age: Duration::zero(),
        },
    }
}

fn summary(
    arn: &str,
    status: ExecutionStatus,
    start: DateTime<Utc>,
    display: &str,
) -> ExecutionSummary {
    ExecutionSummary {
        arn: arn.into(),
        status,
        start_time: start,
        display_name: Some(display.into()),
        description: None,
    }
}

// ---------------------------------------------------------------------------------------------
// parsing

#[test]
fn eventbridge_single_metric_alarm() {
    let tr = parse(ALARM);
    assert_eq!(tr.kind, TriggerKind::Alarm);
    assert_eq!(tr.via, TriggerVia::EventBridge);
    assert_eq!(tr.name, "churn-feature-drift");
    assert_eq!(tr.time, t("2024-05-01T12:00:40.989Z"));
    let a = tr.alarm.as_ref().unwrap();
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
    assert_eq!(
        a.metric.as_deref(),
        Some("feature_baseline_drift_total_charge")
    );
    assert_eq!(
        a.namespace.as_deref(),
        Some("aws/sagemaker/Endpoints/data-metrics")
    );
    assert_eq!(a.dimensions["Endpoint"], "churn-prod");
    assert_eq!(a.value, Some(0.31));
    assert_eq!(a.threshold, Some(0.2));
    assert_eq!(
        a.alarm_arn.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-feature-drift")
    );
    assert!(!a.composite);
    assert!(tr.reason.starts_with(
        "alarm churn-feature-drift entered ALARM at 2024-05-01T12:00:40.989Z: Threshold Crossed"
    ));
    assert_eq!(tr.identity, ["churn-feature-drift", "1714564840989"]);
}

#[test]
fn metric_math_alarm_uses_the_expression_that_returns_data() {
    let tr = parse(ALARM_MATH);
    let a = tr.alarm.unwrap();
    assert_eq!(a.metric.as_deref(), Some("max_feature_drift"));
    assert_eq!(a.namespace, None);
    assert_eq!(a.value, Some(0.42));
    assert_eq!(a.threshold, Some(0.25));
    assert_eq!(a.previous_state, Some(AlarmState::InsufficientData));
}

#[test]
fn alarm_action_payload() {
    let tr = parse(ALARM_ACTION);
    assert_eq!(tr.via, TriggerVia::AlarmAction);
    assert_eq!(tr.name, "churn-model-quality-auc");
    assert_eq!(tr.time, t("2024-05-03T06:10:22.401Z"));
    let a = tr.alarm.unwrap();
    assert_eq!(
        (a.metric.as_deref(), a.value, a.threshold),
        (Some("auc"), Some(0.71), Some(0.8))
    );
    assert_eq!(
        tr.resources,
        ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-model-quality-auc"]
    );
}

#[test]
fn the_same_transition_gives_the_same_token_whichever_way_it_arrives() {
    let routes = settings(Duration::zero()).routes;
    let p = ParameterSettings::default();
    let eb = json(ALARM);
    let via_eventbridge = plan(&parse_trigger(eb.clone(), now()).unwrap(), &routes, &p).unwrap();
    let via_action = plan(
        &parse_trigger(as_alarm_action(&eb), now()).unwrap(),
        &routes,
        &p,
    )
    .unwrap();
    assert_eq!(via_eventbridge, via_action);
    // The state timestamp spelled as epoch milliseconds, and a redelivery with another envelope id
    // and time: still the same request.
    let mut redelivered = eb.clone();
    redelivered["id"] = json!("another-id");
    redelivered["time"] = json!("2024-05-01T12:09:00Z");
    redelivered["detail"]["state"]["timestamp"] = json!(1714564840989_i64);
    assert_eq!(
        plan(&parse_trigger(redelivered, now()).unwrap(), &routes, &p).unwrap(),
        via_eventbridge
    );
    // A later transition of the same alarm is another trigger.
    let later = alarm_event(
        "churn-feature-drift",
        "ALARM",
        "OK",
        "2024-05-01T16:00:40.989+0000",
    );
    assert_ne!(
        plan(&parse_trigger(later, now()).unwrap(), &routes, &p)
            .unwrap()
            .client_request_token,
        via_eventbridge.client_request_token
    );
}

#[test]
fn schedule_events_from_rules_and_the_scheduler() {
    let tr = parse(SCHEDULE);
    assert_eq!(tr.kind, TriggerKind::Schedule);
    assert_eq!(tr.name, "churn-weekly-retrain");
    assert_eq!(tr.time, t("2024-05-06T03:00:00Z"));
    assert!(tr.alarm.is_none() && precheck(&tr).is_none());
    let mut ev = json(SCHEDULE);
    ev["source"] = json!("aws.scheduler");
    ev["resources"] =
        json!(["arn:aws:scheduler:us-east-1:123456789012:schedule/default/churn-nightly"]);
    assert_eq!(parse_trigger(ev, now()).unwrap().name, "churn-nightly");
    let mut ev = json(SCHEDULE);
    ev.as_object_mut().unwrap().remove("time");
    assert!(
        parse_trigger(ev, now())
            .unwrap_err()
            .to_string()
            .contains("no \"time\"")
    );
}

#[test]
fn retrain_requests() {
    let tr = parse(REQUEST);
    assert_eq!(tr.kind, TriggerKind::Request);
    assert_eq!(tr.name, "alice@example.com");
    let r = tr.request.as_ref().unwrap();
    assert_eq!(r.pipeline.as_deref(), Some("churn-build"));
    assert_eq!(r.parameters["MaxDepth"], "6");
    assert!(!r.force);
    assert_eq!(
        tr.identity,
        ["driftloop", "9f506172-8394-a5b6-c7d8-e9f0a1b2c3d4"]
    );
    assert!(tr.reason.contains("new labelled data"));

    let mut ev = json(REQUEST);
    ev["detail"]["requestId"] = json!("ticket-42");
    assert_eq!(
        parse_trigger(ev, now()).unwrap().identity,
        ["driftloop", "ticket-42"]
    );

    let mut ev = json(REQUEST);
    ev["detail"].as_object_mut().unwrap().remove("reason");
    let err = parse_trigger(ev, now()).unwrap_err();
    assert!(err.to_string().contains("\"reason\" is required"), "{err}");

    let mut ev = json(REQUEST);
    ev["detail"]["parameters"] = json!({"bad name": "x"});
    assert!(
        parse_trigger(ev, now())
            .unwrap_err()
            .to_string()
            .contains("parameter name")
    );

    let mut ev = json(REQUEST);
    ev["detail"]["parameters"] = json!({"Nested": {"a": 1}});
    assert!(
        parse_trigger(ev, now())
            .unwrap_err()
            .to_string()
            .contains("string, number or boolean")
    );
}

#[test]
fn other_shapes_are_rejected_saying_what_is_expected() {
    let cases = [
        json!({"alarmName": "x"}),
        json!([1, 2]),
        json!(null),
        json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm Configuration Change", "detail": {}}),
        json!({"source": "aws.sagemaker", "detail-type": "Retrain Requested", "detail": {"reason": "x"}}),
        json!({"source": "driftloop", "detail-type": "Retraining Started", "detail": {}}),
    ];
    for ev in cases {
        let err = parse_trigger(ev.clone(), now()).unwrap_err();
        assert!(
            matches!(err, EventError::UnexpectedShape { .. }),
            "{ev}: {err}"
        );
        assert!(
            err.to_string()
                .contains("\"CloudWatch Alarm State Change\""),
            "{err}"
        );
        assert!(err.to_string().contains("\"Retrain Requested\""), "{err}");
    }
    // Right shape, broken content: says what is wrong.
    let mut ev = json(ALARM);
    ev["detail"]["state"]["timestamp"] = json!("yesterday");
    let err = parse_trigger(ev, now()).unwrap_err();
    assert!(
        matches!(err, EventError::Invalid { .. }) && err.to_string().contains("yesterday"),
        "{err}"
    );
    let err = parse_trigger(json!({"alarmData": {"state": {}}}), now()).unwrap_err();
    assert!(err.to_string().contains("alarm-action payload"), "{err}");
}

/// Why the upstream `aws_lambda_events` alarm types are not used (see `input.rs`).
#[test]
fn upstream_alarm_types_reject_real_events() {
    use aws_lambda_events::cloudwatch_alarms::CloudWatchMetricAlarm;
    // A one-day period (86400 s) does not fit its u16 `period`.
    let err = serde_json::from_value::<CloudWatchMetricAlarm>(json(ALARM_ACTION)).unwrap_err();
    assert!(err.to_string().contains("86400"), "{err}");
    // A metric-math alarm has an expression entry without `metricStat`.
    let mut math = as_alarm_action(&json(ALARM_MATH));
    for m in math["alarmData"]["configuration"]["metrics"]
        .as_array_mut()
        .unwrap()
    {
        if let Some(stat) = m.get_mut("metricStat") {
            stat["period"] = json!(300);
        }
    }
    let err = serde_json::from_value::<CloudWatchMetricAlarm>(math.clone()).unwrap_err();
    assert!(err.to_string().contains("metricStat"), "{err}");
    // Both parse here.
    assert!(parse_trigger(math, now()).is_ok());
    assert!(parse_trigger(json(ALARM_ACTION), now()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// precheck

#[test]
fn only_a_transition_into_alarm_acts() {
    let skip = precheck(&parse(ALARM_OK)).unwrap();
    assert_eq!(skip.reason, SkipReason::NotAlarm);
    assert!(skip.message.contains("changed to OK"));
    let insufficient = alarm_event("a", "INSUFFICIENT_DATA", "ALARM", "2024-05-01T12:00:00Z");
    assert_eq!(
        precheck(&parse_trigger(insufficient, now()).unwrap())
            .unwrap()
            .reason,
        SkipReason::NotAlarm
    );
    let again = alarm_event("a", "ALARM", "ALARM", "2024-05-01T12:00:00Z");
    assert_eq!(
        precheck(&parse_trigger(again, now()).unwrap())
            .unwrap()
            .reason,
        SkipReason::AlreadyInAlarm
    );
    assert!(precheck(&parse(ALARM)).is_none());
    assert!(
        precheck(&parse(ALARM_MATH)).is_none(),
        "INSUFFICIENT_DATA -> ALARM acts"
    );
    let mut first = json(ALARM);
    first["detail"]
        .as_object_mut()
        .unwrap()
        .remove("previousState");
    assert!(
        precheck(&parse_trigger(first, now()).unwrap()).is_none(),
        "no previous state: acts"
    );
    let mut suppressed = json(ALARM);
    suppressed["detail"]["state"]["actionsSuppressedBy"] = json!("WaitPeriod");
    assert_eq!(
        precheck(&parse_trigger(suppressed, now()).unwrap())
            .unwrap()
            .reason,
        SkipReason::ActionsSuppressed
    );
}

// ---------------------------------------------------------------------------------------------
// plan

#[test]
fn plan_routes_names_and_describes() {
    let s = settings(Duration::zero());
    let req = plan(&parse(ALARM), &s.routes, &s.parameters).unwrap();
    assert_eq!(req.pipeline, "churn-build");
    assert!(req.client_request_token.len() >= 32 && req.client_request_token.len() <= 128);
    assert!(
        req.display_name
            .starts_with("drift-churn-feature-drift-20240501T120040Z-"),
        "{}",
        req.display_name
    );
    assert!(token::is_valid_display_name(&req.display_name));
    assert!(
        req.description
            .starts_with("driftloop alarm retraining: alarm churn-feature-drift entered ALARM")
    );
    assert!(req.parameters.is_empty());

    // Schedules route by their rule name, through the same map ("churn-*").
    let sched = plan(&parse(SCHEDULE), &s.routes, &s.parameters).unwrap();
    assert_eq!(sched.pipeline, "churn-build");
    let mut other = json(SCHEDULE);
    other["resources"] = json!(["arn:aws:events:us-east-1:123456789012:rule/nightly"]);
    assert_eq!(
        plan(
            &parse_trigger(other, now()).unwrap(),
            &s.routes,
            &s.parameters
        )
        .unwrap()
        .pipeline,
        "default-build"
    );
    assert!(
        sched
            .display_name
            .starts_with("scheduled-churn-weekly-retrain-20240506T030000Z-")
    );

    let req = plan(&parse(REQUEST), &s.routes, &s.parameters).unwrap();
    assert_eq!(req.pipeline, "churn-build");
    assert!(
        req.display_name
            .starts_with("ondemand-alice-example-com-20240504T093000Z-"),
        "{}",
        req.display_name
    );

    // Long reasons are cut to SageMaker's 3072 characters.
    let mut long = json(ALARM);
    long["detail"]["state"]["reason"] = json!("é".repeat(5000));
    let req = plan(
        &parse_trigger(long, now()).unwrap(),
        &s.routes,
        &s.parameters,
    )
    .unwrap();
    assert_eq!(req.description.chars().count(), MAX_DESCRIPTION);
}

#[test]
fn unmapped_and_unconfigured_pipelines_are_plan_errors() {
    let routes = PipelineRoutes::parse(None, Some("churn-feature-*=churn-build")).unwrap();
    let p = ParameterSettings::default();
    let err = plan(&parse(SCHEDULE), &routes, &p).unwrap_err();
    assert_eq!(
        err,
        PlanError::NoPipeline {
            kind: TriggerKind::Schedule,
            name: "churn-weekly-retrain".into()
        }
    );
    assert!(
        err.to_string().contains("ALARM_PIPELINES") && err.to_string().contains("PIPELINE_NAME")
    );
    assert_eq!(err.error_type(), "Permanent.NoPipeline");
    let mut ev = json(REQUEST);
    ev["detail"]["pipelineName"] = json!("someone-elses-pipeline");
    let err = plan(&parse_trigger(ev, now()).unwrap(), &routes, &p).unwrap_err();
    assert_eq!(err.error_type(), "Permanent.PipelineNotConfigured");
}

#[test]
fn parameters_fixed_then_context_then_request() {
    let params = ParameterSettings {
        fixed: settings::parse_fixed_parameters(r#"{"TrainingInstanceType": "ml.m5.xlarge", "TriggerType": "fixed"}"#).unwrap(),
        context: settings::parse_context_parameters(
            "trigger=TriggerType,alarm=TriggerAlarm,metric=DriftMetric,namespace=DriftNamespace,value=DriftValue,threshold=DriftThreshold,time=TriggerTime",
        )
        .unwrap(),
    };
    let routes = settings(Duration::zero()).routes;
    let req = plan(&parse(ALARM), &routes, &params).unwrap();
    let expect: BTreeMap<String, String> = [
        ("TrainingInstanceType", "ml.m5.xlarge"),
        ("TriggerType", "alarm"),
        ("TriggerAlarm", "churn-feature-drift"),
        ("DriftMetric", "feature_baseline_drift_total_charge"),
        ("DriftNamespace", "aws/sagemaker/Endpoints/data-metrics"),
        ("DriftValue", "0.31"),
        ("DriftThreshold", "0.2"),
        ("TriggerTime", "2024-05-01T12:00:40.989Z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(req.parameters, expect);

    // A schedule has no metric: those parameters are left out (the pipeline's defaults apply).
    let req = plan(&parse(SCHEDULE), &routes, &params).unwrap();
    assert!(
        !req.parameters.contains_key("DriftMetric") && !req.parameters.contains_key("DriftValue")
    );
    assert_eq!(req.parameters["TriggerType"], "schedule");

    // A request adds its own parameters, but cannot replace the operator's fixed ones (issue 14:
    // this used to let the request win) nor the trigger facts.
    let err = plan(&parse(REQUEST), &routes, &params).unwrap_err();
    assert_eq!(err.error_type(), "Permanent.ProtectedParameter");
    assert!(
        err.to_string()
            .contains("\"TrainingInstanceType\" is fixed"),
        "{err}"
    );
    let mut ev = json(REQUEST);
    ev["detail"]["parameters"] = json!({"MaxDepth": "6", "TrainingInstanceType": "ml.m5.xlarge"});
    let req = plan(&parse_trigger(ev, now()).unwrap(), &routes, &params).unwrap();
    assert_eq!(req.parameters["TrainingInstanceType"], "ml.m5.xlarge");
    assert_eq!(req.parameters["MaxDepth"], "6");
    let mut ev = json(REQUEST);
    ev["detail"]["parameters"] = json!({"TriggerAlarm": "forged"});
    let err = plan(&parse_trigger(ev, now()).unwrap(), &routes, &params).unwrap_err();
    assert!(err.to_string().contains("trigger's alarm"), "{err}");
    // Without fixed or context parameters a request's parameters pass as asked.
    let req = plan(&parse(REQUEST), &routes, &ParameterSettings::default()).unwrap();
    assert_eq!(req.parameters["TrainingInstanceType"], "ml.m5.2xlarge");
}

// ---------------------------------------------------------------------------------------------
// decide

fn alarm_request(cooldown: Duration) -> (Trigger, StartExecution, RetrainSettings) {
    let s = settings(cooldown);
    let tr = parse(ALARM);
    let req = plan(&tr, &s.routes, &s.parameters).unwrap();
    (tr, req, s)
}

#[test]
fn decide_skip_rules_in_order() {
    let (tr, req, s) = alarm_request(Duration::hours(6));
    let n = now();
    assert_eq!(decide(&tr, &req, &[], n, &s.policy), Decision::Start);

    let same = summary(
        "arn:same",
        ExecutionStatus::Executing,
        n - Duration::hours(1),
        &req.display_name,
    );
    let busy = summary(
        "arn:busy",
        ExecutionStatus::Executing,
        n - Duration::days(2),
        "manual-run",
    );
    let recent = summary(
        "arn:recent",
        ExecutionStatus::Failed,
        n - Duration::hours(5),
        "manual-run",
    );
    let old = summary(
        "arn:old",
        ExecutionStatus::Succeeded,
        n - Duration::hours(7),
        "manual-run",
    );

    let skip = |execs: &[ExecutionSummary]| match decide(&tr, &req, execs, n, &s.policy) {
        Decision::Skip(s) => (s.reason, s.execution.unwrap().arn, s.message),
        Decision::Start => panic!("expected a skip for {execs:?}"),
    };
    let (reason, arn, msg) = skip(&[busy.clone(), same.clone()]);
    assert_eq!(
        (reason, arn.as_str()),
        (SkipReason::AlreadyStarted, "arn:same")
    );
    assert!(msg.contains("already started execution arn:same"), "{msg}");
    let (reason, arn, msg) = skip(&[recent.clone(), busy.clone()]);
    assert_eq!(
        (reason, arn.as_str()),
        (SkipReason::PipelineBusy, "arn:busy")
    );
    assert!(
        msg.contains("already executing arn:busy (started 2d ago)"),
        "{msg}"
    );
    let (reason, arn, msg) = skip(&[old.clone(), recent.clone()]);
    assert_eq!((reason, arn.as_str()), (SkipReason::Cooldown, "arn:recent"));
    assert!(msg.contains("within the 6h cooldown"), "{msg}");
    assert_eq!(
        decide(&tr, &req, &[old], n, &s.policy),
        Decision::Start,
        "outside the cooldown"
    );
    // Stopping/Stopped/Failed executions outside the cooldown do not block.
    let stopped = summary(
        "arn:stopping",
        ExecutionStatus::Stopping,
        n - Duration::days(1),
        "x",
    );
    assert_eq!(decide(&tr, &req, &[stopped], n, &s.policy), Decision::Start);
    // Zero cooldown: only the identity and Executing rules remain.
    let zero = Policy {
        cooldown: Duration::zero(),
        ..s.policy
    };
    assert_eq!(decide(&tr, &req, &[recent], n, &zero), Decision::Start);
}

#[test]
fn triggers_older_than_the_maximum_age_are_skipped_even_when_forced() {
    let mut s = settings(Duration::zero());
    s.policy.max_trigger_age = Duration::hours(24);
    for (sample, force) in [(ALARM, false), (SCHEDULE, false), (REQUEST, true)] {
        let mut ev = json(sample);
        if force {
            ev["detail"]["force"] = json!(true);
        }
        let tr = parse_trigger(ev, now()).unwrap();
        let req = plan(&tr, &s.routes, &s.parameters).unwrap();
        // Within the age: starts.
        let fresh = tr.time + Duration::hours(23);
        assert_eq!(decide(&tr, &req, &[], fresh, &s.policy), Decision::Start);
        // Older: skipped, naming the age and the limit.
        let late = tr.time + Duration::hours(25);
        match decide(&tr, &req, &[], late, &s.policy) {
            Decision::Skip(skip) => {
                assert_eq!(skip.reason, SkipReason::Stale);
                assert!(skip.execution.is_none());
                assert!(
                    skip.message
                        .contains("older than the 1d maximum trigger age")
                        && skip.message.contains("25h ago"),
                    "{}",
                    skip.message
                );
            }
            Decision::Start => panic!("a stale {sample} started"),
        }
        // A redelivery of a trigger that started an execution says so, however late.
        let started = summary(
            "arn:mine",
            ExecutionStatus::Succeeded,
            tr.time,
            &req.display_name,
        );
        assert!(matches!(
            decide(&tr, &req, &[started], late, &s.policy),
            Decision::Skip(Skip {
                reason: SkipReason::AlreadyStarted,
                ..
            })
        ));
        // Zero: no limit.
        s.policy.max_trigger_age = Duration::zero();
        assert_eq!(
            decide(&tr, &req, &[], tr.time + Duration::days(300), &s.policy),
            Decision::Start
        );
        s.policy.max_trigger_age = Duration::hours(24);
        // A trigger from the future (clock skew) is not stale.
        assert_eq!(
            decide(&tr, &req, &[], tr.time - Duration::hours(2), &s.policy),
            Decision::Start
        );
    }
}

#[test]
fn forced_requests_ignore_the_cooldown_but_not_a_running_execution() {
    let s = settings(Duration::hours(6));
    let mut ev = json(REQUEST);
    ev["detail"]["force"] = json!(true);
    let tr = parse_trigger(ev, now()).unwrap();
    let req = plan(&tr, &s.routes, &s.parameters).unwrap();
    let recent = summary(
        "arn:recent",
        ExecutionStatus::Succeeded,
        now() - Duration::minutes(5),
        "x",
    );
    assert_eq!(
        decide(&tr, &req, std::slice::from_ref(&recent), now(), &s.policy),
        Decision::Start
    );
    let running = summary(
        "arn:running",
        ExecutionStatus::Executing,
        now() - Duration::minutes(5),
        "x",
    );
    assert!(matches!(
        decide(&tr, &req, &[running], now(), &s.policy),
        Decision::Skip(Skip {
            reason: SkipReason::PipelineBusy,
            ..
        })
    ));
    // Unforced, the same request waits for the cooldown.
    let tr = parse(REQUEST);
    let req = plan(&tr, &s.routes, &s.parameters).unwrap();
    assert!(matches!(
        decide(&tr, &req, &[recent], now(), &s.policy),
        Decision::Skip(Skip {
            reason: SkipReason::Cooldown,
            ..
        })
    ));
}

#[test]
fn schedule_skips_after_a_successful_drift_retrain_within_its_period() {
    let s = settings(Duration::hours(1));
    let tr = parse(SCHEDULE);
    let req = plan(&tr, &s.routes, &s.parameters).unwrap();
    let n = tr.time;
    let drift_ok = summary(
        "arn:drift",
        ExecutionStatus::Succeeded,
        n - Duration::days(3),
        "drift-churn-x-20240503T000000Z-abcd1234",
    );
    match decide(&tr, &req, std::slice::from_ref(&drift_ok), n, &s.policy) {
        Decision::Skip(skip) => {
            assert_eq!(skip.reason, SkipReason::RecentDriftRetrain);
            assert!(
                skip.message.contains("within the 7d schedule period"),
                "{}",
                skip.message
            );
        }
        Decision::Start => panic!("expected RecentDriftRetrain"),
    }
    let drift_failed = ExecutionSummary {
        status: ExecutionStatus::Failed,
        ..drift_ok.clone()
    };
    assert_eq!(
        decide(&tr, &req, &[drift_failed], n, &s.policy),
        Decision::Start,
        "a failed drift retrain does not count"
    );
    let drift_old = ExecutionSummary {
        start_time: n - Duration::days(8),
        ..drift_ok.clone()
    };
    assert_eq!(
        decide(&tr, &req, &[drift_old], n, &s.policy),
        Decision::Start,
        "outside the period"
    );
    let scheduled = summary(
        "arn:s",
        ExecutionStatus::Succeeded,
        n - Duration::days(3),
        "scheduled-x-20240503T000000Z-abcd1234",
    );
    assert_eq!(
        decide(&tr, &req, &[scheduled], n, &s.policy),
        Decision::Start,
        "only drift-triggered ones count"
    );
    // An alarm trigger is not subject to the schedule rule.
    let (atr, areq, _) = alarm_request(Duration::hours(1));
    assert_eq!(
        decide(&atr, &areq, &[drift_ok], n, &s.policy),
        Decision::Start
    );
}

// ---------------------------------------------------------------------------------------------
// evaluate, against the in-memory runner

fn runner() -> Arc<InMemoryPipelines> {
    Arc::new(InMemoryPipelines::with_pipelines([
        "churn-build",
        "default-build",
    ]))
}

fn started(o: &Outcome) -> &str {
    match o {
        Outcome::Started { execution_arn, .. } => execution_arn,
        Outcome::Skipped { skip, .. } => panic!("expected a start, got {skip:?}"),
    }
}

fn skipped(o: &Outcome) -> SkipReason {
    match o {
        Outcome::Skipped { skip, .. } => skip.reason,
        Outcome::Started { .. } => panic!("expected a skip"),
    }
}

#[tokio::test]
async fn fifty_sequential_redeliveries_start_one_execution() {
    let r = runner();
    r.set_new_status(ExecutionStatus::Succeeded);
    let s = settings(Duration::zero());
    let tr = parse(ALARM);
    let first = evaluate(&tr, r.as_ref(), &s, Utc::now()).await.unwrap();
    let arn = started(&first).to_owned();
    for _ in 0..49 {
        let o = evaluate(&tr, r.as_ref(), &s, Utc::now()).await.unwrap();
        assert_eq!(skipped(&o), SkipReason::AlreadyStarted);
    }
    assert_eq!(r.executions("churn-build").len(), 1);
    assert_eq!(r.executions("churn-build")[0].summary.arn, arn);
    assert_eq!(r.start_calls(), 1);
}

#[tokio::test]
async fn fifty_concurrent_deliveries_share_one_execution_through_the_token() {
    let r = runner();
    let s = Arc::new(settings(Duration::zero()));
    let tr = Arc::new(parse(ALARM));
    // Every delivery lists before any starts: the check cannot see the others.
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (r, s, tr, barrier) = (r.clone(), s.clone(), tr.clone(), barrier.clone());
            tokio::spawn(async move {
                let req = plan(&tr, &s.routes, &s.parameters).unwrap();
                let execs =
                    recent_executions(r.as_ref(), &req.pipeline, Utc::now() - s.policy.lookback())
                        .await
                        .unwrap();
                barrier.wait().await;
                assert_eq!(
                    decide(&tr, &req, &execs, Utc::now(), &s.policy),
                    Decision::Start
                );
                r.start_execution(&req).await.unwrap()
            })
        })
        .collect();
    let mut arns = Vec::new();
    for t in tasks {
        arns.push(t.await.unwrap());
    }
    assert_eq!(
        r.start_calls(),
        50,
        "all fifty passed the check and called Start"
    );
    assert_eq!(
        r.executions("churn-build").len(),
        1,
        "the token made them one execution"
    );
    assert!(arns.iter().all(|a| a == &arns[0]));
}

#[tokio::test]
async fn out_of_order_ok_after_a_later_alarm_neither_retrains_twice_nor_misses() {
    // History: ALARM@12:00 (from OK), OK@14:00, ALARM@16:00 (from OK). Delivered: ALARM@12:00,
    // ALARM@16:00, then the OK@14:00 late, then redeliveries of both ALARMs.
    let r = runner();
    r.set_new_status(ExecutionStatus::Succeeded);
    let s = settings(Duration::zero());
    let a1 = parse_trigger(
        alarm_event(
            "churn-feature-drift",
            "ALARM",
            "OK",
            "2024-05-01T12:00:40.989+0000",
        ),
        now(),
    )
    .unwrap();
    let ok = parse(ALARM_OK);
    let a3 = parse_trigger(
        alarm_event(
            "churn-feature-drift",
            "ALARM",
            "OK",
            "2024-05-01T16:00:40.100+0000",
        ),
        now(),
    )
    .unwrap();
    let e1 = started(&evaluate(&a1, r.as_ref(), &s, Utc::now()).await.unwrap()).to_owned();
    let e3 = started(&evaluate(&a3, r.as_ref(), &s, Utc::now()).await.unwrap()).to_owned();
    assert_ne!(e1, e3, "the second transition into ALARM is not missed");
    assert_eq!(
        skipped(&evaluate(&ok, r.as_ref(), &s, Utc::now()).await.unwrap()),
        SkipReason::NotAlarm
    );
    for tr in [&a3, &a1, &a3] {
        assert_eq!(
            skipped(&evaluate(tr, r.as_ref(), &s, Utc::now()).await.unwrap()),
            SkipReason::AlreadyStarted
        );
    }
    assert_eq!(r.executions("churn-build").len(), 2);

    // With a cooldown, the second transition within it is skipped (with a reason), not started.
    let r = runner();
    let s = settings(Duration::hours(24));
    started(&evaluate(&a1, r.as_ref(), &s, Utc::now()).await.unwrap());
    assert_eq!(
        skipped(&evaluate(&a3, r.as_ref(), &s, Utc::now()).await.unwrap()),
        SkipReason::PipelineBusy
    );
    assert_eq!(
        skipped(&evaluate(&ok, r.as_ref(), &s, Utc::now()).await.unwrap()),
        SkipReason::NotAlarm
    );
    assert_eq!(r.executions("churn-build").len(), 1);
}

#[tokio::test]
async fn no_ops_do_not_touch_the_pipeline() {
    let r = runner();
    let s = settings(Duration::zero());
    let o = evaluate(&parse(ALARM_OK), r.as_ref(), &s, now())
        .await
        .unwrap();
    assert_eq!(
        o,
        Outcome::Skipped {
            pipeline: Some("churn-build".into()),
            skip: precheck(&parse(ALARM_OK)).unwrap()
        }
    );
    assert_eq!((r.list_calls(), r.start_calls()), (0, 0));
}

#[tokio::test]
async fn aws_errors_keep_their_class() {
    let r = runner();
    r.fail_next(
        "ListPipelineExecutions",
        AwsError::classify(
            "sagemaker",
            "ListPipelineExecutions",
            Some("ThrottlingException"),
            Some(400),
            "Rate exceeded",
        ),
    );
    let err = evaluate(
        &parse(ALARM),
        r.as_ref(),
        &settings(Duration::zero()),
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Retryable.Throttled");
    let missing = RetrainSettings {
        routes: PipelineRoutes::parse(Some("not-created".into()), None).unwrap(),
        ..settings(Duration::zero())
    };
    let err = evaluate(&parse(ALARM), r.as_ref(), &missing, now())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.NotFound");
}

#[tokio::test]
async fn listing_follows_pages_and_keeps_the_lookback() {
    let mut r = InMemoryPipelines::with_pipelines(["p"]);
    r.page_size = 3;
    let n = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    for i in 0..10 {
        r.add_execution(
            "p",
            summary(
                &format!("arn:{i}"),
                ExecutionStatus::Succeeded,
                n - Duration::hours(i),
                "x",
            ),
        );
    }
    r.add_execution(
        "p",
        summary(
            "arn:ancient",
            ExecutionStatus::Executing,
            n - Duration::days(30),
            "x",
        ),
    );
    let got = recent_executions(&r, "p", n - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(got.len(), 10);
    assert_eq!(got[0].arn, "arn:0");
    assert!(got.windows(2).all(|w| w[0].start_time >= w[1].start_time));
    assert_eq!(r.list_calls(), 4);
}

#[test]
fn closed_sets_serialise_as_their_strings() {
    for r in SkipReason::ALL {
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        assert_eq!(r.to_string(), r.as_str());
    }
    for k in TriggerKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
        assert_eq!(k.to_string(), k.as_str());
    }
    use report::OutcomeKind;
    for (kind, text, detail_type, metric) in [
        (
            OutcomeKind::Started,
            "Started",
            "Retraining Started",
            "RetrainingStarted",
        ),
        (
            OutcomeKind::Skipped,
            "Skipped",
            "Retraining Skipped",
            "RetrainingSkipped",
        ),
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(text));
        assert_eq!(kind.detail_type().as_str(), detail_type);
        assert_eq!(kind.metric_name(), metric);
    }
    assert_eq!(RETRAIN_REQUESTED, "Retrain Requested");
    assert!(EXPECTED.contains(&format!("{RETRAIN_REQUESTED:?}")));
    assert!(EXPECTED.contains(&format!("{:?}", crate::contract::SOURCE)));
}
