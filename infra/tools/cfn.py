"""CloudFormation helpers for the infra checks: a YAML loader for the short intrinsic tags, an
evaluator of intrinsics (parameters substituted, conditions evaluated, resource references turned
into deterministic placeholders) and the "loop model" both templates are compared on.

Used by tests/python/test_infra_*.py, infra/tools/spec.py and scripts/demo.py (the template's rules
and alarm on the emulator). Needs PyYAML only.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"  # the account of the events/ samples
REGION = "us-east-1"
PARTITION = "aws"
STACK = "driftloop"

NO_VALUE = object()


# ------------------------------------------------------------------------------------------ YAML
class _Loader(yaml.SafeLoader):
    pass


def _construct(tag: str):
    name = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def ctor(loader: yaml.Loader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return ctor


for _tag in ("Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
             "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr", "Length", "ToJsonString"):
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: str | Path) -> dict:
    text = Path(path).read_text()
    if str(path).endswith(".json"):
        return json.loads(text)
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


# ------------------------------------------------------------------------------------ evaluation
def parameter_values(template: dict, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults (and overrides); a parameter without a default gets a recognisable placeholder."""
    out: dict[str, Any] = {}
    for name, p in (template.get("Parameters") or {}).items():
        if name.startswith("BootstrapVersion"):
            continue
        if "Default" in p:
            v = p["Default"]
        elif name.endswith("RoleArn"):
            v = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        else:
            v = f"<{name}>"
        if p.get("Type") == "CommaDelimitedList" and isinstance(v, str):
            v = [x.strip() for x in v.split(",")]  # CloudFormation: "" is [""]
        out[name] = str(v) if p.get("Type") in ("String", "Number") else v
    out.update(overrides or {})
    return out


class Evaluator:
    """Evaluates the intrinsics of one template under given parameter values."""

    def __init__(self, template: dict, params: dict[str, Any], stack: str = STACK):
        self.t = template
        self.params = params
        self.stack = stack
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/0",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.t["Conditions"][name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        cond = self.t["Resources"][logical_id].get("Condition")
        return cond is None or self.condition(cond)

    def resources(self, type_: str) -> dict[str, dict]:
        """Logical id -> resource (unevaluated) of the resources of one type that exist."""
        return {lid: r for lid, r in self.t["Resources"].items() if r["Type"] == type_ and self.resource_enabled(lid)}

    # -- references
    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        res = self.t.get("Resources", {}).get(name)
        if res is None:
            raise KeyError(f"Ref to unknown {name}")
        props = res.get("Properties") or {}
        named = {"AWS::S3::Bucket": "BucketName", "AWS::CloudWatch::Alarm": "AlarmName",
                 "AWS::Logs::LogGroup": "LogGroupName", "AWS::CloudWatch::Dashboard": "DashboardName"}
        if res["Type"] in named and named[res["Type"]] in props:
            value = self.value(props[named[res["Type"]]])
            if value is not NO_VALUE:
                return value
        if res["Type"] in named or res["Type"] == "AWS::Events::EventBus":
            # A name CloudFormation generates: <stack>-<logical id>-<suffix>, lower case for buckets.
            if res["Type"] == "AWS::Events::EventBus" and "Name" in props:
                return self.value(props["Name"])
            generated = f"{self.stack}-{name}-GENERATED"
            return generated.lower() if res["Type"] == "AWS::S3::Bucket" else generated
        return f"<ref:{name}>"

    def get_att(self, name: str, attr: str) -> Any:
        res = self.t["Resources"][name]
        if res["Type"] == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{self.ref(name)}"
        if res["Type"] == "AWS::CloudWatch::Alarm" and attr == "Arn":
            return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{self.ref(name)}"
        if res["Type"] == "AWS::Events::EventBus" and attr == "Arn":
            return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{self.ref(name)}"
        if res["Type"] == "AWS::Events::Rule" and attr == "Arn":
            bus = (res.get("Properties") or {}).get("EventBusName")
            bus = self.value(bus) if bus is not None else "default"
            path = f"{name}" if bus == "default" else f"{bus}/{name}"
            return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{path}"
        return f"<getatt:{name}.{attr}>"

    # -- values
    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            out = [self.value(x) for x in v]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref":
                return self.ref(a)
            if k == "Condition":
                return self.condition(a)
            if k == "Fn::GetAtt":
                parts = a if isinstance(a, list) else a.split(".", 1)
                return self.get_att(parts[0], self.value(parts[1]))
            if k == "Fn::Sub":
                return self._sub(a)
            if k == "Fn::Join":
                sep, items = a
                return self.value(sep).join(str(x) for x in self.value(items))
            if k == "Fn::Select":
                idx, items = a
                return self.value(items)[int(self.value(idx))]
            if k == "Fn::Split":
                sep, s = a
                return str(self.value(s)).split(self.value(sep))
            if k == "Fn::If":
                cond, yes, no = a
                return self.value(yes if self.condition(cond) else no)
            if k == "Fn::Equals":
                x, y = (self.value(z) for z in a)
                return str(x) == str(y)
            if k == "Fn::Not":
                return not self.value(a[0])
            if k == "Fn::And":
                return all(self.value(z) for z in a)
            if k == "Fn::Or":
                return any(self.value(z) for z in a)
        out = {}
        for k, x in v.items():
            y = self.value(x)
            if y is not NO_VALUE:
                out[k] = y
        return out

    def _sub(self, a: Any) -> str:
        if isinstance(a, list):
            text, extra = a[0], {k: self.value(x) for k, x in a[1].items()}
        else:
            text, extra = a, {}

        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name and name.split(".", 1)[0] in self.t.get("Resources", {}):
                res, attr = name.split(".", 1)
                return str(self.get_att(res, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", repl, text)


# ------------------------------------------------------------------------------------ loop model
FUNCTIONS = ("GetApprovedModelFunction", "DeployOnApprovalFunction", "RetrainOnAlarmFunction", "CustomMetricsFunction",
             "CustomMetricsStagingFunction")

# Resources compared property for property (after evaluation) between the two templates.
COMPARED_TYPES = (
    "AWS::Events::Rule", "AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig", "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy", "AWS::Logs::LogGroup", "AWS::Events::EventBus", "AWS::StepFunctions::StateMachine",
    # issue 17: notifications
    "AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription", "AWS::KMS::Key", "AWS::KMS::Alias",
)
# Resources compared by logical id whose type is not compared as a whole (function roles differ in
# shape between SAM and CDK; the scale-out state machine's role is plain CloudFormation on both).
COMPARED_IDS = ("ScaleOutStateMachineRole",)
FUNCTION_PROPS = ("Runtime", "Architectures", "Handler", "MemorySize", "Timeout", "Environment", "LoggingConfig",
                  "DeadLetterConfig", "Description")


def _role_of(t: dict, fn: str) -> str:
    role = t["Resources"][fn]["Properties"]["Role"]
    return role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]


def _atomic_statements(ev: Evaluator, statements: list) -> set[str]:
    out = set()
    for s in ev.value(statements):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        cond = json.dumps(s.get("Condition"), sort_keys=True)
        for a in actions:
            for r in resources:
                out.add(f"{s['Effect']} {a} {r} {cond}")
    return out


def permissions(t: dict, ev: Evaluator, fn: str) -> dict:
    """The effective permissions of a function's role: atomic (action, resource, condition) triples."""
    role_id = _role_of(t, fn)
    role = t["Resources"][role_id]["Properties"]
    stmts: set[str] = set()
    for p in role.get("Policies") or []:
        stmts |= _atomic_statements(ev, p["PolicyDocument"]["Statement"])
    for r in ev.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in (r["Properties"].get("Roles") or []):
            stmts |= _atomic_statements(ev, r["Properties"]["PolicyDocument"]["Statement"])
    managed = sorted(str(ev.value(m)) for m in role.get("ManagedPolicyArns") or [])
    trust = ev.value(role["AssumeRolePolicyDocument"])["Statement"]
    principals = sorted(json.dumps(s.get("Principal"), sort_keys=True) for s in trust)
    return {"statements": sorted(stmts), "managed": managed, "trust": principals}


def _sorted_conditions(doc: Any) -> Any:
    """A policy document with each condition's value list sorted (a list of values is a set: any matches)."""
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    statements = doc.get("Statement")
    if isinstance(statements, list):
        out["Statement"] = []
        for s in statements:
            s = dict(s)
            if isinstance(s.get("Condition"), dict):
                s["Condition"] = {op: {k: sorted(v) if isinstance(v, list) else v for k, v in kv.items()}
                                  for op, kv in s["Condition"].items()}
            out["Statement"].append(s)
    return out


def _canonical(type_: str, raw: dict, props: dict) -> dict:
    """Spellings that differ between hand-written CloudFormation and CDK's L2 output but mean the same:
    a function named by Ref or by its ARN (GetAtt Arn), a dashboard body's JSON layout, the order of a
    condition's values in a resource policy."""
    props = copy.deepcopy(props)
    if type_ in ("AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig"):
        name = raw.get("FunctionName")
        if isinstance(name, dict) and "Fn::GetAtt" in name:
            att = name["Fn::GetAtt"] if isinstance(name["Fn::GetAtt"], list) else name["Fn::GetAtt"].split(".")
            if att[1] == "Arn":
                props["FunctionName"] = f"<ref:{att[0]}>"
    if type_ == "AWS::CloudWatch::Dashboard" and isinstance(props.get("DashboardBody"), str):
        props["DashboardBody"] = json.loads(props["DashboardBody"])
    if type_ == "AWS::StepFunctions::StateMachine" and isinstance(props.get("DefinitionString"), str):
        # The definition as Step Functions reads it: substitutions applied, JSON parsed.
        text = props["DefinitionString"]
        for k, v in (props.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + k + "}", str(v))
        props["DefinitionString"] = json.loads(text)
    for key in ("PolicyDocument", "Policy"):
        if key in props:
            props[key] = _sorted_conditions(props[key])
    return props


def loop_model(t: dict, overrides: dict[str, Any] | None = None) -> dict:
    """What must agree between template.yaml (SAM-transformed) and the CDK output."""
    ev = Evaluator(t, parameter_values(t, overrides))
    model: dict[str, Any] = {"resources": {}, "functions": {}}
    for lid, r in t["Resources"].items():
        if (r["Type"] in COMPARED_TYPES or lid in COMPARED_IDS) and ev.resource_enabled(lid):
            raw = r.get("Properties") or {}
            model["resources"][lid] = {
                "Type": r["Type"],
                "Properties": _canonical(r["Type"], raw, ev.value(raw)),
                "DeletionPolicy": r.get("DeletionPolicy") or "Delete",  # CloudFormation's default
            }
    for fn in FUNCTIONS:
        if not ev.resource_enabled(fn):
            continue  # a function under a false condition (CustomMetricsStagingFunction): absent on both sides
        r = t["Resources"][fn]
        props = ev.value(r["Properties"])
        model["functions"][fn] = {k: props.get(k) for k in FUNCTION_PROPS}
        model["functions"][fn]["permissions"] = permissions(t, ev, fn)
    model["parameters"] = {k: v for k, v in (t.get("Parameters") or {}).items() if not k.startswith("BootstrapVersion")}
    return model


def event_patterns(t: dict, overrides: dict[str, Any] | None = None, stack: str = STACK) -> dict[str, dict]:
    """Rule logical id -> {"pattern": evaluated EventPattern or None, "schedule": ..., "targets": [...]}
    for the rules that exist under the parameter values (in a stack named `stack`)."""
    ev = Evaluator(t, parameter_values(t, overrides), stack)
    out = {}
    for lid, r in ev.resources("AWS::Events::Rule").items():
        p = ev.value(r["Properties"])
        targets = []
        for tg in r["Properties"].get("Targets", []):
            arn = tg["Arn"]
            targets.append(arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else ev.value(arn))
        out[lid] = {"pattern": p.get("EventPattern"), "schedule": p.get("ScheduleExpression"),
                    "bus": p.get("EventBusName", "default"), "targets": targets, "raw": p}
    return out


def deepcopy(x: Any) -> Any:
    return copy.deepcopy(x)
