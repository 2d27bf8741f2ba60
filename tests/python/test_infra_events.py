"""Every events/ sample matches exactly the rules of infra/template.yaml meant for it, and no other.

The template's event patterns are evaluated (parameters at their defaults, plus the samples'
bucket name from infra/event-samples.json; intrinsics resolved) and put to EventBridge's
TestEventPattern on the project's emulator (AWS_ENDPOINT_URL when scripts/test exported one, else
a private instance started by test_emulator_support). infra/event-samples.json says which rules
each sample is for; a sample it does not list fails the test, so a new sample gets classified.
"""

from __future__ import annotations

import copy
import json
import os

import boto3
import pytest
from botocore.config import Config

from test_infra_support import EVENTS, INFRA, cfn, sam_template

EXPECTED = json.loads((INFRA / "event-samples.json").read_text())
SAMPLE_PARAMETERS = EXPECTED["_parameters"]
SAMPLES = sorted(p.name for p in EVENTS.glob("*.json"))


@pytest.fixture(scope="module")
def events_client(request):
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        from test_emulator_support import get_server  # starts a private emulator, stopped at exit

        endpoint = get_server(compat=True).url
    return boto3.client("events", endpoint_url=endpoint, region_name=cfn.REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 2}))


@pytest.fixture(scope="module")
def rules():
    """The rules that invoke the functions (the notification rules, on the loop's outcomes, are
    test_infra_operations.py's)."""
    return {lid: r for lid, r in cfn.event_patterns(sam_template(), SAMPLE_PARAMETERS).items()
            if r["targets"] != ["<ref:NotificationTopic>"]}


def matches(client, pattern: dict, event: dict) -> bool:
    return client.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))["Result"]


def matching_rules(client, rules: dict, event: dict) -> set[str]:
    return {lid for lid, r in rules.items() if r["pattern"] and matches(client, r["pattern"], event)}


def test_every_sample_is_classified():
    unknown = [s for s in SAMPLES if s not in EXPECTED]
    assert not unknown, f"classify these samples in infra/event-samples.json (which rules are they for?): {unknown}"
    stale = [k for k in EXPECTED if not k.startswith("_") and k not in SAMPLES]
    assert not stale, f"infra/event-samples.json lists samples that no longer exist: {stale}"


def test_every_rule_is_exercised_by_a_sample(rules):
    meant = {r for k, v in EXPECTED.items() if not k.startswith("_") for r in v["rules"]}
    # The on-demand monitoring request has no sample (custom-metrics' direct samples are its payloads).
    assert set(rules) - meant <= {"CustomMetricsRequestRule"}, f"rules without a sample: {set(rules) - meant}"


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_matches_exactly_its_rules(sample, rules, events_client):
    if sample not in EXPECTED:
        pytest.fail(f"{sample} is not classified in infra/event-samples.json")
    spec = EXPECTED[sample]
    event = json.loads((EVENTS / sample).read_text())
    expected = set(spec["rules"])
    assert expected <= set(rules), f"{sample}: rules {expected - set(rules)} do not exist (with the default parameters)"
    if spec["kind"] == "direct":
        assert "detail-type" not in event, f"{sample} looks like an EventBridge event, not a direct invocation"
        # Not an event EventBridge could route: TestEventPattern rejects it (missing envelope
        # fields) or no pattern matches it.
        for lid, r in rules.items():
            if r["pattern"]:
                try:
                    assert not matches(events_client, r["pattern"], event), f"{sample} matches {lid}"
                except events_client.exceptions.ClientError as e:
                    assert "not valid" in str(e), e
        return
    got = matching_rules(events_client, rules, event)
    if spec["kind"] == "schedule":
        assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
        assert got == set(), f"{sample}: a scheduled event must match no pattern rule, matched {got}"
        for lid in expected:
            assert rules[lid]["schedule"] and not rules[lid]["pattern"], f"{lid} is not a schedule rule"
        return
    assert got == expected, f"{sample}: matched {sorted(got)}, meant for {sorted(expected)}"
    # Issue 14: driftloop's requests arrive on the stack's control bus only (they used to on EventBusName).
    bus = f"{cfn.STACK}-control"
    for lid in expected:  # the rule sits on the bus its events arrive on: AWS services' on the default bus
        assert rules[lid]["bus"] == ("default" if event["source"].startswith("aws.") else bus), lid


def _load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


NEAR_MISSES = [
    # (sample, change, why it must match nothing)
    ("deploy-package-approved.json", {"detail.ModelPackageGroupName": "another-group"}, "another group"),
    ("deploy-package-approved.json", {"detail.ModelApprovalStatus": "PendingManualApproval"}, "not a decision"),
    ("deploy-promotion.json", {"detail.ModelPackageGroupName": "another-group"}, "another group's promotion"),
    ("deploy-promotion.json", {"source": "someone.else"}, "not driftloop's event"),
    ("retrain-alarm-eventbridge.json", {"detail.alarmName": "billing-alarm"}, "an alarm outside the prefix"),
    ("retrain-alarm-eventbridge.json", {"detail.state.value": "INSUFFICIENT_DATA"}, "not ALARM"),
    ("retrain-request.json", {"detail-type": "Retraining Started"}, "retrain-on-alarm's own output"),
    ("custom-metrics-ground-truth-created.json", {"detail.object.key": "capture/churn-prod/AllTraffic/2024/05/01/09/x.jsonl"}, "capture, not ground truth"),
    ("custom-metrics-ground-truth-created.json", {"detail.object.key": "reports/x/summary.json"}, "custom-metrics' own report (no loop)"),
    ("custom-metrics-ground-truth-created.json", {"detail.bucket.name": "someone-elses-bucket"}, "another bucket"),
    ("custom-metrics-ground-truth-created.json", {"detail-type": "Object Deleted"}, "a deletion"),
]


def _mutate(event: dict, changes: dict) -> dict:
    event = copy.deepcopy(event)
    for path, value in changes.items():
        node = event
        *parents, leaf = path.split(".") if not path.startswith("detail-type") else [path]
        for p in parents:
            node = node[p]
        node[leaf] = value
    return event


@pytest.mark.parametrize("sample,changes,why", NEAR_MISSES, ids=[f"{s}:{w}" for s, _, w in NEAR_MISSES])
def test_near_misses_match_no_rule(sample, changes, why, rules, events_client):
    if not (EVENTS / sample).exists():
        pytest.skip(f"events/{sample} does not exist")
    event = _mutate(_load(sample), changes)
    assert matching_rules(events_client, rules, event) == set(), why


OUTPUT_EVENTS = ["Model Monitoring Completed", "Model Monitoring Violations", "Retraining Started",
                 "Retraining Skipped", "Model Deployed", "Model Deployment Skipped"]


@pytest.mark.parametrize("detail_type", OUTPUT_EVENTS)
def test_the_functions_own_events_trigger_nothing(detail_type, rules, events_client):
    """No feedback loops: what the functions emit on the bus reaches none of the loop's rules."""
    event = {"version": "0", "id": "1", "detail-type": detail_type, "source": "driftloop", "account": cfn.ACCOUNT,
             "time": "2024-05-01T00:00:00Z", "region": cfn.REGION, "resources": [],
             "detail": {"ModelPackageGroupName": "driftloop-demo", "modelPackageGroupName": "driftloop-demo"}}
    assert matching_rules(events_client, rules, event) == set()


def test_the_stacks_own_alarm_entering_alarm_starts_retraining(rules, events_client):
    t = sam_template()
    ev = cfn.Evaluator(t, cfn.parameter_values(t, SAMPLE_PARAMETERS))
    alarm = ev.value(t["Resources"]["ModelQualityAlarm"]["Properties"])
    event = _load("retrain-alarm-eventbridge.json")
    event["detail"]["alarmName"] = alarm["AlarmName"]
    event["resources"] = [ev.get_att("ModelQualityAlarm", "Arn")]
    assert matching_rules(events_client, rules, event) == {"RetrainOnAlarmRule"}
    event["detail"]["state"]["value"] = "OK"
    assert matching_rules(events_client, rules, event) == set()


def test_the_recheck_rule_sends_its_sample():
    """RetrainRecheckRule's InputTransformer, applied to a scheduled event, gives
    events/retrain-recheck.json (issue 14: the function recognises the tick by the rule it names)."""
    t = sam_template()
    ev = cfn.Evaluator(t, cfn.parameter_values(t))  # stack "driftloop"
    target = t["Resources"]["RetrainRecheckRule"]["Properties"]["Targets"][0]
    transformer = target["InputTransformer"]
    sample = _load("retrain-recheck.json")
    values = {name: sample[path.removeprefix("$.")] for name, path in transformer["InputPathsMap"].items()}
    rendered = ev.value(transformer["InputTemplate"])
    for name, value in values.items():
        rendered = rendered.replace(f"<{name}>", value)
    assert json.loads(rendered) == sample
    env = ev.value(t["Resources"]["RetrainOnAlarmFunction"]["Properties"]["Environment"]["Variables"])
    assert env["RECHECK_RULE"] == "driftloop-retrain-recheck", "stack-scoped (two stacks coexist)"
    assert sample["resources"][0].endswith(f":rule/{env['RECHECK_RULE']}")
