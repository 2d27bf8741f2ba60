"""Issue 17, operations: the notifications topic (encrypted with its own key, least-privilege
policy, optional email subscription), the rules that feed it the loop's outcomes with a readable
message, the operational alarms (errors, throttles, dead letters, custom-metrics duration) and the
dashboard's operations row, under every parameter variant of test_infra_templates.

The rules' patterns are put to TestEventPattern on the emulator with one sample event per
detail type of shared/src/contract.rs (`DetailType`), the detail shaped as its publisher serialises
it; their input transformers are delivered through the emulator (moto renders them) to a queue.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import boto3
import pytest
from botocore.config import Config

from test_infra_support import REPO, cfn, sam_template, sam_transformed
from test_infra_templates import VARIANTS, resources

TOPIC = "NotificationTopic"
# Function logical id prefix -> (function, its condition).
FUNCTIONS = {
    "GetApprovedModel": None, "DeployOnApproval": None, "RetrainOnAlarm": None, "CustomMetrics": None,
    "CustomMetricsStaging": "MonitorsStagingToo",
}
QUEUES = {**{f"{f}DLQ": c for f, c in FUNCTIONS.items()}, "NotificationDLQ": None}
GROUP = "driftloop-demo"        # ModelPackageGroupName's default
SCHEDULE = "churn-model-quality"  # MonitoringScheduleName's default


def evaluator(overrides=None, t=None):
    t = t or sam_template()
    return cfn.Evaluator(t, cfn.parameter_values(t, overrides))


def event(detail_type: str, detail: dict) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "driftloop",
            "account": cfn.ACCOUNT, "time": "2026-12-01T10:05:00Z", "region": cfn.REGION, "resources": [],
            "detail": detail}


# One event per detail type, the detail as its publisher serialises it (shared/src/monitoring/run.rs,
# retrain/report.rs, deploy/converge.rs StageOutcome, deploy/record.rs DeploymentFailure).
FAILURE = {"stage": "production", "endpoint": "churn-prod", "modelPackageGroupName": GROUP,
           "packageArn": f"arn:aws:sagemaker:us-east-1:{cfn.ACCOUNT}:model-package/{GROUP}/7", "packageVersion": 7,
           "endpointConfig": "churn-prod-7-abc", "servingConfig": "churn-prod-6-def",
           "reason": "Request to service failed. If failure persists after retry, contact customer support.",
           "requestedAt": "2026-12-01T09:00:00Z", "detectedAt": "2026-12-01T09:40:00Z",
           "recordedAs": "driftloop:deploy:production", "retry": "Approve another package or send a Model Promotion Requested."}
SAMPLES = {
    "Model Monitoring Requested": {"window": {"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z"}},
    "Model Monitoring Completed": {"runId": "r1", "status": "Completed", "monitoringScheduleName": SCHEDULE,
                                   "window": {"start": "2026-12-01T09:00:00.000Z", "end": "2026-12-01T10:00:00.000Z"},
                                   "violationCount": 0, "violations": []},
    "Model Monitoring Violations": {
        "runId": "r2", "status": "CompletedWithViolations", "monitoringScheduleName": SCHEDULE,
        "window": {"start": "2026-12-01T09:00:00.000Z", "end": "2026-12-01T10:00:00.000Z"},
        "target": {"endpoint": "churn-prod", "variant": "AllTraffic"}, "violationCount": 2,
        "violations": [{"metric_name": "auc", "constraint_check_type": "LessThanThreshold"}],
        "reports": {"statistics": "s3://b/reports/statistics.json",
                    "constraintViolations": "s3://b/reports/churn-prod/constraint_violations.json",
                    "summary": "s3://b/reports/summary.json"}},
    "Retrain Requested": {"pipelineName": "churn-build"},
    "Retraining Started": {"outcome": "started", "pipelineName": "churn-build",
                           "pipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:{cfn.ACCOUNT}:pipeline/churn-build/execution/abc123",
                           "trigger": {"kind": "alarm", "alarm": {"name": "driftloop.churn-model-quality-auc"}}},
    "Retraining Skipped": {"outcome": "skipped", "pipelineName": "churn-build",
                           "skip": {"code": "cooldown", "message": "an execution started 2h ago (cooldown 24h)"},
                           "trigger": {"kind": "schedule"}},
    "Model Promotion Requested": {"ModelPackageGroupName": GROUP},
    "Model Deployed": {"stage": "staging", "endpoint": "churn-staging", "action": "updated",
                       "packageArn": f"arn:aws:sagemaker:us-east-1:{cfn.ACCOUNT}:model-package/{GROUP}/7",
                       "packageVersion": 7, "endpointConfig": "churn-staging-7-abc", "modelPackageGroupName": GROUP,
                       "trigger": {"kind": "approval"}},
    "Model Deployment Skipped": {"stage": "staging", "endpoint": "churn-staging", "action": "up_to_date",
                                 "modelPackageGroupName": GROUP},
    "Deployment Failed": FAILURE,
    "Deployment Rolled Back": dict(FAILURE, reason="Alarm churn-5xx went into ALARM during the canary."),
}
# Which notification rule each detail type reaches (none: not for people, or a request).
NOTIFIED = {
    "Model Monitoring Violations": "NotifyViolationsRule",
    "Retraining Started": "NotifyRetrainingStartedRule",
    "Retraining Skipped": "NotifyRetrainingSkippedRule",
    "Model Deployed": "NotifyModelDeployedRule",
    "Deployment Failed": "NotifyDeploymentFailedRule",
    "Deployment Rolled Back": "NotifyDeploymentFailedRule",
}


def test_samples_cover_every_detail_type_of_the_contract():
    src = (REPO / "shared" / "src" / "contract.rs").read_text()
    types = set(re.findall(r'#\[serde\(rename = "([^"]+)"\)\]', src))
    assert len(types) == 11 and set(SAMPLES) == types, set(SAMPLES) ^ types


def notify_rules(overrides=None) -> dict:
    return {lid: r for lid, r in cfn.event_patterns(sam_template(), overrides).items()
            if r["targets"] == [f"<ref:{TOPIC}>"]}


@pytest.fixture(scope="module")
def emulator():
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        from test_emulator_support import get_server  # a private emulator, stopped at exit

        endpoint = get_server(compat=True).url
    kw = dict(endpoint_url=endpoint, region_name=cfn.REGION, aws_access_key_id="testing",
              aws_secret_access_key="testing", config=Config(retries={"max_attempts": 2}))
    return {s: boto3.client(s, **kw) for s in ("events", "sqs")}


# ------------------------------------------------------------------------------------ topic, key
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_topic_is_encrypted_with_a_key_only_its_publishers_may_use(variant):
    ev = evaluator(VARIANTS[variant])
    t = sam_template()
    topic = ev.value(t["Resources"][TOPIC]["Properties"])
    assert topic["KmsMasterKeyId"] == ev.value({"Ref": "NotificationKey"})
    assert "alias/aws/sns" not in json.dumps(topic), "EventBridge cannot publish to a topic under the AWS managed key"
    key = ev.value(t["Resources"]["NotificationKey"]["Properties"])
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert set(statements) == {"AccountAdministers", "RulesAndAlarmsEncryptForTheTopic"}
    assert statements["AccountAdministers"]["Principal"] == {"AWS": f"arn:aws:iam::{cfn.ACCOUNT}:root"}
    pub = statements["RulesAndAlarmsEncryptForTheTopic"]
    assert pub["Principal"] == {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]}
    assert sorted(pub["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    topic_arn = f"arn:aws:sns:{cfn.REGION}:{cfn.ACCOUNT}:{topic['TopicName']}"
    assert pub["Condition"] == {"StringEquals": {"aws:SourceAccount": cfn.ACCOUNT,
                                                 "kms:EncryptionContext:aws:sns:topicArn": topic_arn}}
    assert topic["TopicName"] == f"{cfn.STACK}-notifications", "stack-scoped: two stacks never share a topic"


def test_the_email_subscription_exists_only_with_an_address():
    t = sam_template()
    assert t["Parameters"]["NotificationEmail"]["Default"] == ""
    assert "NotificationEmailSubscription" not in resources(t, "AWS::SNS::Subscription")
    subs = resources(t, "AWS::SNS::Subscription", {"NotificationEmail": "ops@example.com"})
    assert list(subs) == ["NotificationEmailSubscription"]
    ev = evaluator({"NotificationEmail": "ops@example.com"})
    p = ev.value(subs["NotificationEmailSubscription"]["Properties"])
    assert p == {"TopicArn": ev.value({"Ref": TOPIC}), "Protocol": "email", "Endpoint": "ops@example.com"}
    pattern = re.compile(t["Parameters"]["NotificationEmail"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("ml-ops+loop@example.co.uk")
    assert not pattern.fullmatch("not-an-address") and not pattern.fullmatch("a@b") and not pattern.fullmatch("a b@c.d")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_topic_policy_admits_exactly_the_loops_rules_and_alarms(variant):
    overrides = VARIANTS[variant]
    t = sam_template()
    ev = evaluator(overrides)
    [policy] = resources(t, "AWS::SNS::TopicPolicy", overrides).values()
    doc = ev.value(policy["Properties"])
    assert doc["Topics"] == [ev.value({"Ref": TOPIC})]
    rules = {ev.get_att(lid, "Arn") for lid in notify_rules(overrides)}
    alarms = {ev.get_att(lid, "Arn") for lid, a in resources(t, "AWS::CloudWatch::Alarm", overrides).items()
              if ev.value(a["Properties"]).get("AlarmActions") == [ev.value({"Ref": TOPIC})]}
    assert len(rules) == 5 and alarms == {ev.get_att(a, "Arn") for a in expected_alarms(ev)}
    by_principal = {}
    for s in doc["PolicyDocument"]["Statement"]:
        assert s["Effect"] == "Allow" and s["Action"] == "sns:Publish" and s["Resource"] == ev.value({"Ref": TOPIC}), s
        by_principal[s["Principal"]["Service"]] = s["Condition"]
    assert set(by_principal) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    assert set(by_principal["events.amazonaws.com"]["ArnEquals"]["aws:SourceArn"]) == rules
    cw = by_principal["cloudwatch.amazonaws.com"]
    assert set(cw["ArnEquals"]["aws:SourceArn"]) == alarms
    assert cw["StringEquals"] == {"aws:SourceAccount": cfn.ACCOUNT}
    # The loop's own alarms (model quality, drift) reach retraining through EventBridge, not the topic.
    assert not any(":alarm:driftloop." in a for a in alarms)


# ------------------------------------------------------------------------------------ rules
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_notification_rules_listen_to_the_loops_outcomes(variant):
    rules = notify_rules(VARIANTS[variant])
    assert set(rules) == set(NOTIFIED.values())
    for lid, r in rules.items():
        assert r["bus"] == "default", f"{lid}: the functions publish on EventBusName (default)"
        raw = r["raw"]["Targets"]
        assert len(raw) == 1 and raw[0]["DeadLetterConfig"]["Arn"] == evaluator().get_att("NotificationDLQ", "Arn")
        assert raw[0]["InputTransformer"]["InputTemplate"].startswith('"driftloop: ')


def test_each_outcome_reaches_exactly_its_notification_rule(emulator):
    rules = notify_rules()
    for detail_type, detail in SAMPLES.items():
        e = event(detail_type, detail)
        got = {lid for lid, r in rules.items() if emulator["events"].test_event_pattern(
            EventPattern=json.dumps(r["pattern"]), Event=json.dumps(e))["Result"]}
        assert got == ({NOTIFIED[detail_type]} if detail_type in NOTIFIED else set()), detail_type


@pytest.mark.parametrize("detail_type,change", [
    ("Model Monitoring Violations", {"monitoringScheduleName": "another-stacks-schedule"}),
    ("Model Deployed", {"modelPackageGroupName": "another-group"}),
    ("Deployment Failed", {"modelPackageGroupName": "another-group"}),
])
def test_another_loops_outcomes_on_the_same_bus_notify_nobody(detail_type, change, emulator):
    e = event(detail_type, dict(SAMPLES[detail_type], **change))
    for lid, r in notify_rules().items():
        assert not emulator["events"].test_event_pattern(EventPattern=json.dumps(r["pattern"]), Event=json.dumps(e))["Result"], lid
    other = dict(event(detail_type, SAMPLES[detail_type]), source="someone.else")
    for lid, r in notify_rules().items():
        assert not emulator["events"].test_event_pattern(EventPattern=json.dumps(r["pattern"]), Event=json.dumps(other))["Result"], lid


def render(transformer: dict, e: dict) -> str:
    """EventBridge's rendering of a string InputTemplate: each <name> replaced by the value at its
    path (strings unquoted)."""
    out = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        node = e
        for part in path.removeprefix("$.").split("."):
            assert isinstance(node, dict) and part in node, f"{path}: no {part} in the sample"
            node = node[part]
        out = out.replace(f"<{name}>", node if isinstance(node, str) else json.dumps(node))
    return json.loads(out)


EXPECTED_MESSAGES = {
    "Model Monitoring Violations": "driftloop: 2 constraint violation(s) in the window 2026-12-01T09:00:00.000Z to "
                                   "2026-12-01T10:00:00.000Z of monitoring schedule churn-model-quality "
                                   "(CompletedWithViolations). Report: s3://b/reports/churn-prod/constraint_violations.json",
    "Retraining Started": "driftloop: retraining started - pipeline churn-build, execution "
                          f"arn:aws:sagemaker:us-east-1:{cfn.ACCOUNT}:pipeline/churn-build/execution/abc123 (trigger: alarm).",
    "Retraining Skipped": "driftloop: retraining skipped - pipeline churn-build: cooldown - an execution started 2h ago "
                          "(cooldown 24h) (trigger: schedule).",
    "Model Deployed": f"driftloop: staging endpoint churn-staging updated - now serving version 7 of {GROUP} "
                      f"(arn:aws:sagemaker:us-east-1:{cfn.ACCOUNT}:model-package/{GROUP}/7).",
    "Deployment Failed": f"driftloop: Deployment Failed - production endpoint churn-prod, version 7 of {GROUP} - "
                         f"reason: {FAILURE['reason']} - to retry: {FAILURE['retry']}",
    "Deployment Rolled Back": f"driftloop: Deployment Rolled Back - production endpoint churn-prod, version 7 of {GROUP} - "
                              f"reason: Alarm churn-5xx went into ALARM during the canary. - to retry: {FAILURE['retry']}",
}


@pytest.mark.parametrize("detail_type", sorted(NOTIFIED))
def test_each_notification_is_one_readable_line(detail_type):
    rule = notify_rules()[NOTIFIED[detail_type]]
    [target] = rule["raw"]["Targets"]
    message = render(target["InputTransformer"], event(detail_type, SAMPLES[detail_type]))
    assert message == EXPECTED_MESSAGES[detail_type]
    assert "<" not in message and "\n" not in message


@pytest.mark.parametrize("detail_type", ["Model Monitoring Violations", "Retraining Skipped", "Model Deployed"])
def test_the_emulator_delivers_the_rendered_message(detail_type, emulator):
    """The rule as the template defines it (pattern, InputTransformer) on the emulator's bus, its
    target a queue standing in for the topic: what arrives is the readable line."""
    ev, sqs = emulator["events"], emulator["sqs"]
    lid = NOTIFIED[detail_type]
    rule = notify_rules()[lid]
    [target] = rule["raw"]["Targets"]
    name = f"notify-{uuid.uuid4().hex[:10]}"
    bus = ev.create_event_bus(Name=name)["EventBusArn"] and name
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ev.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(rule["pattern"]), State="ENABLED")
    ev.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn, "InputTransformer": target["InputTransformer"]}])
    out = ev.put_events(Entries=[{"Source": "driftloop", "DetailType": detail_type, "EventBusName": bus,
                                  "Detail": json.dumps(SAMPLES[detail_type])}])
    assert out["FailedEntryCount"] == 0
    [msg] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
    assert json.loads(msg["Body"]) == EXPECTED_MESSAGES[detail_type]


# ------------------------------------------------------------------------------------ alarms
def expected_alarms(ev) -> dict[str, tuple[str, str, str | None]]:
    """Alarm logical id -> (namespace, metric, the resource whose condition it shares)."""
    out = {}
    for f, cond in FUNCTIONS.items():
        if cond and not ev.condition(cond):
            continue
        out[f"{f}ErrorsAlarm"] = ("AWS/Lambda", "Errors", f"{f}Function")
        out[f"{f}ThrottlesAlarm"] = ("AWS/Lambda", "Throttles", f"{f}Function")
        if f.startswith("CustomMetrics"):
            out[f"{f}DurationAlarm"] = ("AWS/Lambda", "Duration", f"{f}Function")
    for q, cond in QUEUES.items():
        if cond and not ev.condition(cond):
            continue
        out[f"{q}DepthAlarm"] = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", q)
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_operational_alarms_cover_every_function_and_queue(variant):
    overrides = VARIANTS[variant]
    t = sam_template()
    ev = evaluator(overrides)
    expected = expected_alarms(ev)
    ops = {lid: a for lid, a in resources(t, "AWS::CloudWatch::Alarm", overrides).items()
           if lid not in ("ModelQualityAlarm",) and not lid.startswith("DriftAlarm")}
    assert set(ops) == set(expected), set(ops) ^ set(expected)
    for lid, (namespace, metric, owner) in expected.items():
        raw = t["Resources"][lid]
        assert raw.get("Condition") == t["Resources"][owner].get("Condition"), f"{lid}: the condition of {owner}"
        a = ev.value(raw["Properties"])
        assert (a["Namespace"], a["MetricName"]) == (namespace, metric), lid
        [dim] = raw["Properties"]["Dimensions"]
        if namespace == "AWS/Lambda":
            assert dim == {"Name": "FunctionName", "Value": {"Ref": owner}}, lid
        else:
            assert dim == {"Name": "QueueName", "Value": {"Fn::GetAtt": [owner, "QueueName"]}}, lid
        assert a["AlarmActions"] == [ev.value({"Ref": TOPIC})] and a["TreatMissingData"] == "notBreaching", lid
        assert a["ComparisonOperator"] == "GreaterThanThreshold" and a["EvaluationPeriods"] == a["DatapointsToAlarm"] == 1
        assert a["AlarmName"] == f"{cfn.STACK}-ops-" + a["AlarmName"].split("-ops-", 1)[1] and "." not in a["AlarmName"]
        if metric == "Duration":
            timeout = t["Resources"][owner]["Properties"]["Timeout"]
            assert a["Statistic"] == "Maximum" and float(a["Threshold"]) == 0.8 * timeout * 1000, lid
        elif metric == "ApproximateNumberOfMessagesVisible":
            assert a["Statistic"] == "Maximum" and float(a["Threshold"]) == 0, lid
        else:
            assert a["Statistic"] == "Sum" and float(a["Threshold"]) == 0, lid
    names = [ev.value(a["Properties"])["AlarmName"] for a in ops.values()]
    assert len(set(names)) == len(names)


def test_the_staging_function_has_its_own_queue_alarms_and_policy():
    t = sam_template()
    on, off = evaluator(), evaluator({"ProductionEndpointName": ""})
    assert on.condition("MonitorsStagingToo") and not off.condition("MonitorsStagingToo")
    for lid in ("CustomMetricsStagingDLQ", "CustomMetricsStagingDLQPolicy", "CustomMetricsStagingInvokeConfig",
                "CustomMetricsStagingErrorsAlarm", "CustomMetricsStagingThrottlesAlarm",
                "CustomMetricsStagingDurationAlarm", "CustomMetricsStagingDLQDepthAlarm"):
        assert t["Resources"][lid]["Condition"] == "MonitorsStagingToo", lid
    policy = on.value(t["Resources"]["CustomMetricsStagingDLQPolicy"]["Properties"]["PolicyDocument"])
    [s] = policy["Statement"]
    assert set(s["Condition"]["ArnEquals"]["aws:SourceArn"]) == {on.get_att("CustomMetricsStagingScheduleRule", "Arn")}
    with_labels = evaluator({"StagingGroundTruthPrefix": "ground-truth/staging"})
    policy = with_labels.value(t["Resources"]["CustomMetricsStagingDLQPolicy"]["Properties"]["PolicyDocument"])
    assert set(policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]) == {
        with_labels.get_att("CustomMetricsStagingScheduleRule", "Arn"), with_labels.get_att("StagingGroundTruthRule", "Arn")}
    # The production queue's policy no longer names the staging rules.
    prod = on.value(t["Resources"]["CustomMetricsDLQPolicy"]["Properties"]["PolicyDocument"])
    assert not any("Staging" in a for a in prod["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_failed_invocations_are_recorded_with_their_error_in_the_functions_queue(variant):
    """OnFailure destinations (the record has requestContext.condition and responsePayload's
    errorType), each function's role allowed to send to its queue and to no other."""
    overrides = VARIANTS[variant]
    t = sam_transformed()
    ev = evaluator(overrides, t)
    configs = resources(t, "AWS::Lambda::EventInvokeConfig", overrides)
    for f, cond in FUNCTIONS.items():
        fn = f"{f}Function"
        if cond and not ev.condition(cond):
            assert f"{f}InvokeConfig" not in configs
            continue
        c = ev.value(configs[f"{f}InvokeConfig"]["Properties"])
        assert c["DestinationConfig"] == {"OnFailure": {"Destination": ev.get_att(f"{f}DLQ", "Arn")}}, f
        assert "DeadLetterConfig" not in t["Resources"][fn]["Properties"], f"{fn}: the plain DLQ has no error type"
        sends = [a.split(" ")[2] for a in cfn.permissions(t, ev, fn)["statements"] if a.split(" ")[1] == "sqs:SendMessage"]
        assert sends == [ev.get_att(f"{f}DLQ", "Arn")], (fn, sends)


# ------------------------------------------------------------------------------------ dashboard
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_dashboard_has_an_operations_row(variant):
    overrides = VARIANTS[variant]
    t = sam_template()
    ev = evaluator(overrides)
    body = json.loads(ev.value(t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    ops = [w for w in body["widgets"] if w["properties"]["title"].startswith("Operations")]
    assert len(ops) == 4
    [alarm_widget] = [w for w in ops if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(ev.get_att(a, "Arn") for a in expected_alarms(ev))
    lines = [m for w in ops if w["type"] == "metric" for m in w["properties"]["metrics"]]
    functions = {ev.value({"Ref": f"{f}Function"}) for f, c in FUNCTIONS.items() if not c or ev.condition(c)}
    assert {m[3] for m in lines if m[1] == "Errors"} == functions
    assert {m[3] for m in lines if m[1] == "Throttles"} == functions
    queues = {ev.get_att(q, "QueueName") for q, c in QUEUES.items() if not c or ev.condition(c)}
    assert {m[3] for m in lines if m[1] == "ApproximateNumberOfMessagesVisible"} == queues
    assert {m[3] for m in lines if m[1] == "Duration"} == {f for f in functions if "CustomMetrics" in f}
