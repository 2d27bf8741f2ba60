"""infra/template.yaml with a catalogue (issue 15): IAM no wider than the naming convention
(CatalogueNamePrefix for SageMaker names and data paths, <stack name>.<AlarmNamePrefix> for
alarms), the event rules taking every catalogue group and endpoint, the reconcile rules, and two
stacks with default parameters side by side: no physical name in common, disjoint grants.
"""

from __future__ import annotations

import json
import re

import pytest

from test_infra_support import cfn, sam_template, sam_transformed

CATALOGUE = {"CatalogueS3Uri": "s3://driftloop-config/catalogue/models.json"}
FUNCTIONS = ["DeployOnApprovalFunction", "RetrainOnAlarmFunction", "CustomMetricsFunction",
             "CustomMetricsStagingFunction", "GetApprovedModelFunction"]
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def atoms(t: dict, stack: str, overrides: dict) -> dict[str, set[tuple[str, str, str]]]:
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides), stack=stack)
    out = {}
    for fn in FUNCTIONS:
        if not ev.resource_enabled(fn):
            continue
        out[fn] = {tuple(a.split(" ", 3)[1:]) for a in cfn.permissions(t, ev, fn)["statements"]}
    return out


def environment(t: dict, stack: str, overrides: dict, fn: str) -> dict:
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides), stack=stack)
    return ev.value(t["Resources"][fn]["Properties"]["Environment"]["Variables"])


@pytest.mark.parametrize("prefix", ["", "ml-"])
def test_what_a_catalogue_adds_to_iam_is_exactly_the_convention(prefix):
    """Every grant the catalogue adds names the convention's prefixes, or is one of the few that
    IAM cannot scope by name (each with its condition) — nothing else."""
    t = sam_transformed()
    overrides = dict(CATALOGUE, CatalogueNamePrefix=prefix)
    p = prefix or "driftloop-"  # the default: <stack name>-
    bucket = "arn:aws:s3:::driftloop-databucket-generated"
    allowed = [
        rf"{ARN}:(model-package/{p}\*/\*|model/{p}\*|endpoint-config/{p}\*|endpoint/{p}\*|pipeline/{p}\*)",
        rf"arn:aws:iam::123456789012:role/{p}\*",
        r"arn:aws:cloudwatch:us-east-1:123456789012:alarm:driftloop\.churn-\*",
        r"arn:aws:cloudwatch::123456789012:dashboard/driftloop-driftloop-models",
        r"arn:aws:s3:::driftloop-config/catalogue/models\.json",
        rf"{bucket}/{p}\*",
    ]
    without = atoms(t, "driftloop", {})
    with_ = atoms(t, "driftloop", overrides)
    added_any = False
    for fn, grants in with_.items():
        for action, resource, cond in sorted(grants - without.get(fn, set())):
            added_any = True
            cond = json.loads(cond)
            if any(re.fullmatch(a, resource) for a in allowed):
                if action == "iam:PassRole":
                    assert cond == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
                continue
            # What IAM cannot scope by name, each with the condition that scopes it.
            if resource == bucket and action == "s3:ListBucket":
                assert cond == {"StringLike": {"s3:prefix": [f"{p}*"]}}, (fn, cond)
            elif resource.endswith(":scalable-target/*"):
                assert cond == {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}}
            elif action == "cloudwatch:DescribeAlarms" and resource.endswith(":alarm:*"):
                # SageMaker reads a stage's rollbackAlarms (the catalogue's, named freely) with the
                # function's rights: read-only, as with ProductionRollbackAlarms.
                assert fn == "DeployOnApprovalFunction"
            else:
                pytest.fail(f"{fn}: {action} on {resource} {cond} is wider than the catalogue convention")
    assert added_any
    # Every catalogue function gets its reading and writing of the convention's names.
    deploy = {a for a, r, _ in with_["DeployOnApprovalFunction"] if p in r or "driftloop-models" in r or "alarm:driftloop." in r}
    assert {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:CreateModel", "sagemaker:UpdateModelPackage",
            "cloudwatch:PutMetricAlarm", "cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "iam:PassRole"} <= deploy
    assert ("sagemaker:StartPipelineExecution", f"{ARN}:pipeline/{p}*") in {(a, r) for a, r, _ in with_["RetrainOnAlarmFunction"]}
    metrics = {(a, r) for a, r, _ in with_["CustomMetricsFunction"]}
    assert ("s3:GetObject", f"{bucket}/{p}*") in metrics and ("sagemaker:DescribeEndpoint", f"{ARN}:endpoint/{p}*") in metrics


def test_the_functions_read_the_convention_the_iam_grants():
    t = sam_template()
    env = environment(t, "driftloop-a", CATALOGUE, "DeployOnApprovalFunction")
    assert env["CATALOGUE_NAME_PREFIX"] == "driftloop-a-"
    assert env["CATALOGUE_ALARM_PREFIX"] == "driftloop-a.churn-"
    assert env["CATALOGUE_DATA_S3_URI"] == "s3://driftloop-a-databucket-generated/driftloop-a-"
    assert env["DASHBOARD_NAME"] == "driftloop-a-driftloop-models"
    assert env["ALARM_ARN_PREFIX"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
    assert env["METRICS_NAMESPACE"] == "driftloop"
    retrain = environment(t, "driftloop-a", CATALOGUE, "RetrainOnAlarmFunction")
    assert retrain["CATALOGUE_NAME_PREFIX"] == "driftloop-a-"
    # The alarm prefix is the one the retrain rule and the recheck take.
    assert retrain["CATALOGUE_ALARM_PREFIX"] == retrain["RECHECK_ALARM_PREFIX"]
    # Without a catalogue nothing of it is set.
    env = environment(t, "driftloop-a", {}, "DeployOnApprovalFunction")
    assert not {"CATALOGUE_NAME_PREFIX", "DASHBOARD_NAME", "ALARM_ARN_PREFIX"} & set(env)


def test_the_rules_take_every_catalogue_group_and_endpoint_and_reconcile():
    t = sam_template()
    patterns = {k: v["pattern"] for k, v in cfn.event_patterns(t, dict(CATALOGUE, CatalogueNamePrefix="ml-")).items()}
    assert {"prefix": "ml-"} in patterns["DeployOnApprovalPackageRule"]["detail"]["ModelPackageGroupName"]
    assert {"prefix": "ml-"} in patterns["DeployOnApprovalPromotionRule"]["detail"]["ModelPackageGroupName"]
    assert {"prefix": "ml-"} in patterns["DeployOnApprovalEndpointRule"]["detail"]["EndpointName"]
    upload = patterns["DeployOnApprovalCatalogueRule"]
    assert upload["source"] == ["aws.s3"] and upload["detail-type"] == ["Object Created"]
    assert upload["detail"]["bucket"]["name"] == ["driftloop-config"]
    assert upload["detail"]["object"]["key"] == [{"prefix": "catalogue"}]
    ev = cfn.Evaluator(t, cfn.parameter_values(t, CATALOGUE))
    assert ev.value(t["Resources"]["DeployOnApprovalReconcileRule"]["Properties"]["ScheduleExpression"]) == "rate(1 day)"
    # Without a catalogue: the one group, no reconcile rules.
    plain = {k: v["pattern"] for k, v in cfn.event_patterns(t, {}).items()}
    assert plain["DeployOnApprovalPackageRule"]["detail"]["ModelPackageGroupName"] == ["driftloop-demo"]
    assert "DeployOnApprovalCatalogueRule" not in plain and "DeployOnApprovalReconcileRule" not in plain


# (FunctionName is a reference on permissions and invoke configs; the functions are unnamed.)
NAME_PROPERTIES = ("AlarmName", "DashboardName", "Name", "QueueName", "LogGroupName", "BucketName",
                   "StateMachineName", "RoleName", "TopicName", "AliasName", "RuleName")


def physical_names(t: dict, stack: str, overrides: dict) -> set[str]:
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides), stack=stack)
    names = set()
    for lid, r in t["Resources"].items():
        if not ev.resource_enabled(lid):
            continue
        props = r.get("Properties") or {}
        explicit = [k for k in NAME_PROPERTIES if k in props]
        for k in explicit:
            v = ev.value(props[k])
            if isinstance(v, str):
                names.add(f"{r['Type']}:{v}")
        if not explicit:
            # CloudFormation generates <stack name>-<logical id>-<suffix>.
            names.add(f"{r['Type']}:{stack}-{lid}-GENERATED")
    # The names the functions make at run time.
    for fn, var in [("DeployOnApprovalFunction", "DASHBOARD_NAME"), ("RetrainOnAlarmFunction", "RECHECK_RULE"),
                    ("DeployOnApprovalFunction", "CATALOGUE_ALARM_PREFIX"), ("CustomMetricsFunction", "SCALE_OUT_STATE_MACHINE_ARN")]:
        env = ev.value(t["Resources"][fn]["Properties"]["Environment"]["Variables"])
        if var in env:
            names.add(f"{var}:{env[var]}")
    return names


# The single model of the parameters (ModelPackageGroupName, the endpoints, PipelineName, the
# artifacts bucket and execution role, the default event bus, the catalogue object - read only -
# when both are given the same), the unscopable '*' ones (each with its condition) and the read-only
# DescribeAlarms of rollback alarms: two stacks given the same model
# manage the same model; these are the operator's names, not the stack's.
SHARED_BY_PARAMETERS = re.compile(
    rf"({ARN}:(model-package/driftloop-demo/\*|model/driftloop-demo-\*|endpoint/churn-(staging|prod)|"
    rf"endpoint-config/churn-(staging|prod)-\*|pipeline/churn-build)|arn:aws:s3:::driftloop-demo-models/\*|"
    r"arn:aws:iam::123456789012:role/SageMakerExecutionRoleArn|arn:aws:events:us-east-1:123456789012:event-bus/default|"
    r"\*|arn:aws:cloudwatch:us-east-1:123456789012:alarm:\*|arn:aws:s3:::driftloop-config/catalogue/models\.json|"
    r"arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/\*)$")


@pytest.mark.parametrize("overrides", [{}, CATALOGUE], ids=["defaults", "catalogue"])
def test_two_stacks_coexist(overrides):
    t = sam_transformed()
    a, b = physical_names(t, "loop-a", overrides), physical_names(t, "loop-b", overrides)
    assert len(a) > 40
    assert not a & b, f"physical names in common: {sorted(a & b)}"
    grants_a, grants_b = atoms(t, "loop-a", overrides), atoms(t, "loop-b", overrides)
    # The evaluator leaves a queue's Arn unresolved: it is the stack's own (a generated name).
    own = lambda stack, r: f"{stack}:{r}" if r.startswith("<getatt:") else r  # noqa: E731
    resources = lambda stack, g: {own(stack, r) for atoms_ in g.values() for _, r, _ in atoms_}  # noqa: E731
    common = resources("loop-a", grants_a) & resources("loop-b", grants_b)
    wider = sorted(r for r in common if not SHARED_BY_PARAMETERS.match(r))
    assert not wider, f"both stacks are granted {wider}"
    if overrides:
        # The catalogue's grants are the stack's own: loop-a-*, loop-a.churn-*, its dashboard.
        cat_a = {r for g in grants_a.values() for _, r, _ in g if "loop-a" in r}
        assert any(r.endswith("/loop-a-*") for r in cat_a) and any("alarm:loop-a.churn-*" in r for r in cat_a)
        assert any(r.endswith("dashboard/loop-a-driftloop-models") for r in cat_a)
