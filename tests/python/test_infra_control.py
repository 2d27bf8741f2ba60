"""Issue 14, control plane: only named principals steer the loop, and stacks coexist.

- The control bus's policy (evaluated for principals, sources and detail types with IAM's rules:
  an explicit Deny wins) admits the loop's requests only from ControlPrincipals.
- The rules that route requests are on the control bus and deliver the control envelope that
  driftloop::control checks; the functions know the bus (CONTROL_BUS_NAME).
- Each function's events:PutEvents is conditioned on source driftloop and its own outcome types.
- Direct invocation is granted only to EventBridge from the rules that target the function.
- Two stacks rendered with their defaults share no physical name, and neither stack's retrain rule
  matches the other's alarms.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

import pytest

from test_infra_support import REPO, cfn, sam_template

CONTRACT = (REPO / "shared" / "src" / "contract.rs").read_text()
CONTROL = (REPO / "shared" / "src" / "control.rs").read_text()
ACCOUNT = cfn.ACCOUNT
OPS = f"arn:aws:iam::{ACCOUNT}:role/ops"
CI = f"arn:aws:iam::{ACCOUNT}:role/ci"
INTRUDER = f"arn:aws:iam::{ACCOUNT}:role/admin-with-events-star"


def detail_types() -> tuple[set[str], set[str]]:
    """(requests, outcomes) as shared/src/contract.rs defines them."""
    names = dict(re.findall(r'DetailType::(\w+) => "([^"]+)"', CONTRACT))
    body = re.search(r"fn is_request\(self\) -> bool \{(.*?)\n    \}", CONTRACT, re.S).group(1)
    requests = {names[v] for v in re.findall(r"DetailType::(\w+)", body)}
    return requests, set(names.values()) - requests


REQUESTS, OUTCOMES = detail_types()


def evaluated(overrides: dict | None = None, stack: str = cfn.STACK) -> tuple[dict, cfn.Evaluator]:
    t = sam_template()
    return t, cfn.Evaluator(t, cfn.parameter_values(t, overrides), stack)


# ------------------------------------------------------------------------------ bus policy
def _matches(cond_op: str, key_value, wanted) -> bool:
    wanted = wanted if isinstance(wanted, list) else [wanted]
    if cond_op in ("StringEquals", "ArnEquals"):
        return key_value in wanted
    if cond_op in ("StringNotEquals", "ArnNotEquals"):
        return key_value not in wanted
    raise AssertionError(f"condition operator {cond_op} not modelled")


def _applies(statement: dict, principal: str, context: dict) -> bool:
    p = statement["Principal"]
    if p != "*":
        arns = p["AWS"] if isinstance(p["AWS"], list) else [p["AWS"]]
        if principal not in arns:
            return False
    for op, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not _matches(op, context[key], wanted):
                return False
    return True


def put_allowed(policy: dict, principal: str, source: str, detail_type: str, identity_allows: bool) -> bool:
    """IAM for one PutEvents entry on the bus: an explicit Deny wins; else the bus policy's Allow or
    (same account) the principal's own identity policy allows."""
    context = {"events:source": source, "events:detail-type": detail_type, "aws:PrincipalArn": principal}
    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and _applies(s, principal, context) for s in statements):
        return False
    return identity_allows or any(s["Effect"] == "Allow" and _applies(s, principal, context) for s in statements)


def bus_policy(overrides: dict | None = None) -> dict:
    t, ev = evaluated(overrides)
    bus = ev.value(t["Resources"]["ControlBus"]["Properties"])
    arn = f"arn:aws:events:{cfn.REGION}:{ACCOUNT}:event-bus/{cfn.STACK}-control"
    assert bus["Name"] == f"{cfn.STACK}-control"
    assert all(s["Resource"] == arn and s["Action"] == "events:PutEvents" for s in bus["Policy"]["Statement"])
    return bus["Policy"]


def test_the_control_bus_admits_requests_only_from_the_named_principals():
    policy = bus_policy({"ControlPrincipals": [OPS, CI]})
    for who in (OPS, CI):
        for dt in REQUESTS:
            # A named principal of another account needs only the bus policy; of this one, either.
            assert put_allowed(policy, who, "driftloop", dt, identity_allows=False), (who, dt)
    for dt in REQUESTS:
        # Anyone else is refused, even with events:PutEvents on * in their own policy.
        assert not put_allowed(policy, INTRUDER, "driftloop", dt, identity_allows=True), dt
    # The named principals may put nothing but the requests, with source driftloop.
    for dt in OUTCOMES | {"Anything Else"}:
        assert not put_allowed(policy, OPS, "driftloop", dt, identity_allows=True), dt
    assert not put_allowed(policy, OPS, "ops.tools", "Retrain Requested", identity_allows=True)
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert len(allow) == 1 and set(allow[0]["Condition"]["StringEquals"]["events:detail-type"]) == REQUESTS


def test_without_named_principals_nobody_puts_requests():
    policy = bus_policy()
    assert not [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    for who in (OPS, INTRUDER):
        assert not put_allowed(policy, who, "driftloop", "Model Promotion Requested", identity_allows=True)


# ------------------------------------------------------------------------------ routing
def test_requests_are_routed_only_from_the_control_bus_in_the_envelope_the_functions_check():
    t, ev = evaluated()
    rule_field = re.search(r'pub const RULE_FIELD: &str = "([^"]+)"', CONTROL).group(1)
    event_field = re.search(r'pub const EVENT_FIELD: &str = "([^"]+)"', CONTROL).group(1)
    routed = set()
    for lid, r in cfn.event_patterns(t).items():
        pattern = r["pattern"] or {}
        types = set(pattern.get("detail-type", []))
        if not types & REQUESTS:
            continue
        assert pattern["source"] == ["driftloop"] and types <= REQUESTS, lid
        assert r["bus"] == f"{cfn.STACK}-control", f"{lid} takes requests from {r['bus']}"
        routed |= types
        for target in r["raw"]["Targets"]:
            template = target["InputTransformer"]["InputTemplate"]
            filled = json.loads(template.replace("<aws.events.rule-arn>", "arn:x")
                                .replace("<aws.events.event.json>", '{"source": "driftloop"}'))
            assert filled == {rule_field: "arn:x", event_field: {"source": "driftloop"}}, lid
            fn = r["targets"][0]
            env = t["Resources"][fn]["Properties"]["Environment"]["Variables"]
            assert env["CONTROL_BUS_NAME"] == {"Ref": "ControlBus"}, fn
    assert routed == REQUESTS


def test_each_function_publishes_only_its_own_outcomes():
    t, ev = evaluated()
    seen: dict[str, set[str]] = {}
    for fn in ("DeployOnApprovalFunction", "RetrainOnAlarmFunction", "CustomMetricsFunction", "GetApprovedModelFunction"):
        for policy in t["Resources"][fn]["Properties"].get("Policies", []):
            for s in ev.value(policy["Statement"]):
                if s["Action"] == "events:PutEvents":
                    cond = s["Condition"]["StringEquals"]
                    assert cond["events:source"] == "driftloop", fn
                    seen[fn] = set(cond["events:detail-type"])
    assert "GetApprovedModelFunction" not in seen
    for fn, types in seen.items():
        assert types and types <= OUTCOMES, f"{fn} may publish {types - OUTCOMES}"
    assert set().union(*seen.values()) == OUTCOMES
    assert sum(len(v) for v in seen.values()) == len(OUTCOMES), "each outcome type has one publisher"


def test_direct_invocation_is_granted_only_to_the_rules_that_target_the_function():
    t, ev = evaluated()
    targets = {lid: r["targets"] for lid, r in cfn.event_patterns(t).items()}
    for lid, p in ev.resources("AWS::Lambda::Permission").items():
        props = t["Resources"][lid]["Properties"]
        assert props["Principal"] == "events.amazonaws.com" and props["Action"] == "lambda:InvokeFunction", lid
        rule = props["SourceArn"]["Fn::GetAtt"][0]
        assert props["FunctionName"]["Ref"] in targets[rule], f"{lid}: {rule} does not target the function"


# ------------------------------------------------------------------------------ two stacks
NAME_PROPS = {"AWS::S3::Bucket": "BucketName", "AWS::CloudWatch::Alarm": "AlarmName", "AWS::Logs::LogGroup": "LogGroupName",
              "AWS::CloudWatch::Dashboard": "DashboardName", "AWS::Events::EventBus": "Name", "AWS::Events::Rule": "Name",
              "AWS::SQS::Queue": "QueueName", "AWS::Serverless::Function": "FunctionName", "AWS::IAM::Role": "RoleName"}


def physical_names(stack: str) -> dict[str, str]:
    """Logical id -> physical name of every named resource (CloudFormation-generated names are
    unique by construction and contain the stack name: cfn.Evaluator renders them so)."""
    t, ev = evaluated(stack=stack)
    out = {}
    for lid, r in t["Resources"].items():
        if r["Type"] in NAME_PROPS and ev.resource_enabled(lid):
            name = (r.get("Properties") or {}).get(NAME_PROPS[r["Type"]])
            value = ev.value(name) if name is not None else cfn.NO_VALUE
            # No name given: CloudFormation generates <stack>-<logical id>-<random>.
            out[lid] = f"{stack}-{lid}-<generated>" if value is cfn.NO_VALUE else str(value)
    return out


def alarm_names(stack: str) -> set[str]:
    return {n for lid, n in physical_names(stack).items()
            if sam_template()["Resources"][lid]["Type"] == "AWS::CloudWatch::Alarm"}


def retrain_prefix(stack: str) -> str:
    t, _ = evaluated(stack=stack)
    return cfn.event_patterns(t, stack=stack)["RetrainOnAlarmRule"]["pattern"]["detail"]["alarmName"][0]["prefix"]


# "a" and "a-churn-x": with a plain "<stack>-" or no stack in the prefix, a's rule would match the other's alarms.
@pytest.mark.parametrize("stacks", [("driftloop", "driftloop-b"), ("a", "a-churn-x"), ("Loop", "loop")])
def test_two_stacks_with_their_defaults_coexist(stacks):
    first, second = (physical_names(s) for s in stacks)
    clashes = {n for n in first.values()} & {n for n in second.values()}
    assert not clashes, f"both stacks would create {clashes}"
    for mine, other in (stacks, stacks[::-1]):
        prefix = retrain_prefix(mine)
        assert mine in prefix
        assert any(n.startswith(prefix) for n in alarm_names(mine)), "a stack's rule catches its own alarm"
        caught = {n for n in alarm_names(other) if n.startswith(prefix)}
        assert not caught, f"{mine}'s retrain rule would retrain on {other}'s alarms {caught}"


def test_stack_names_cannot_contain_the_prefix_separator():
    # CloudFormation: a stack name is [A-Za-z][-A-Za-z0-9]*; the retrain prefix is "<stack>.<AlarmNamePrefix>",
    # so "<other>.<anything>" starts with "<stack>." only when other == stack.
    assert retrain_prefix("s").startswith("s.")
    assert not fnmatchcase("s-x.churn-model-quality-auc", retrain_prefix("s") + "*")
