"""infra/template.yaml: lint-clean (cfn-lint, sam validate --lint, checkov), wired as designed
(every rule target retried and dead-lettered, permissions per rule), least-privilege IAM, and
environment variables that the functions actually read.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from test_infra_support import (
    INFRA, REPO, TEMPLATE, cfn, cfn_lint_bin, checkov, explain, run, sam_template, sam_transformed, tool,
)

FUNCTIONS = {
    "GetApprovedModelFunction": "get-approved-model",
    "DeployOnApprovalFunction": "deploy-on-approval",
    "RetrainOnAlarmFunction": "retrain-on-alarm",
    "CustomMetricsFunction": "custom-metrics",
    "CustomMetricsStagingFunction": "custom-metrics",
}
# Parameter sets the structural checks run under: the defaults, and every condition flipped.
VARIANTS = {
    "defaults": {},
    "flipped": {"ProductionEndpointName": "", "RetrainSchedule": "", "AlarmFollowsModel": "false",
                "MetricsNamespace": "driftloop/quality",
                "AlarmPipelines": "fraud-*=fraud-build", "AlarmPipelinesPattern": "fraud-*"},
}
# The monitoring modes the stack deploys besides the default (test_infra_monitoring_modes.py checks
# each in depth); every structural check here runs under them too.
MODES = {
    "forecast": {"ProblemType": "Forecast", "ForecastQuantiles": "0.2,0.5,0.8", "ForecastSeasonality": "24",
                 "MetricName": "mean_wQL", "AlarmComparisonOperator": "GreaterThanThreshold", "AlarmThreshold": "0.3"},
    "batch": {"CaptureMode": "batchTransform", "BatchOutputFormat": "csv", "BatchOutputBucketName": "churn-transform-jobs",
              "BatchOutputPrefix": "transform/churn-daily", "CapturePrefix": "batch-capture/churn-daily",
              "GroundTruthDelayMinutes": "1440", "MetricName": "accuracy"},
    "batch-in-data-bucket": {"CaptureMode": "batchTransform", "BatchOutputFormat": "json",
                             "BatchOutputPrefix": "transform/churn-daily", "MetricsNamespace": "driftloop/batch"},
    # A1 (aws-samples/amazon-sagemaker-drift-detection): an alarm on feature_baseline_drift_fare_amount > 0.4.
    "dataquality": {"ProblemType": "", "DriftAlarmFeatures": "fare_amount,passenger_count", "DriftAlarmThreshold": "0.4",
                    "MonitoringScheduleName": "nyc-taxi-data-quality"},
}
VARIANTS.update(MODES)


def resources(t: dict, type_: str, overrides: dict | None = None) -> dict:
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
    return {k: r for k, r in t["Resources"].items() if r["Type"] == type_ and ev.resource_enabled(k)}


# ------------------------------------------------------------------------------------------ linters
def test_loop_json_is_generated_from_the_template():
    p = run([sys.executable, INFRA / "tools" / "spec.py", "--check"])
    assert p.returncode == 0, "infra/loop.json is stale: run python infra/tools/spec.py --write\n" + explain(p)


def test_cfn_lint_template_is_clean():
    p = run([cfn_lint_bin(), TEMPLATE])
    assert p.returncode == 0, explain(p)


def test_sam_validate_lint_passes_offline():
    p = run([tool("sam") / "sam", "validate", "--lint", "--template", TEMPLATE], cwd=INFRA)
    assert p.returncode == 0, explain(p)
    assert "is a valid SAM Template" in p.stdout + p.stderr, explain(p)


def test_checkov_template_is_clean_or_justified():
    p = checkov(TEMPLATE)
    assert p.returncode == 0, explain(p)
    assert "Failed checks: 0" in p.stdout, explain(p)
    # Every skip is justified inline.
    for lid, r in sam_template()["Resources"].items():
        for skip in (r.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (lid, skip)
            assert len(skip.get("comment", "")) > 30, f"{lid}: skip {skip['id']} needs a real justification"


# ------------------------------------------------------------------------------------------ functions
def test_functions_are_rust_on_arm64_from_one_workspace():
    t = sam_template()
    g = t["Globals"]["Function"]
    assert g["Runtime"] == "provided.al2023" and g["Architectures"] == ["arm64"] and g["Handler"] == "bootstrap"
    assert (TEMPLATE.parent / g["CodeUri"] / "Cargo.toml").resolve() == REPO / "Cargo.toml", "CodeUri: the workspace root"
    seen = {}
    for lid, r in t["Resources"].items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        assert "CodeUri" not in r["Properties"], f"{lid}: one shared CodeUri (Globals)"
        assert r["Metadata"]["BuildMethod"] == "rust-cargolambda"
        seen[lid] = r["Metadata"]["BuildProperties"]["Binary"]
        p = r["Properties"]
        assert p["LoggingConfig"]["LogFormat"] == "JSON" and p["LoggingConfig"]["ApplicationLogLevel"] == {"Ref": "LogLevel"}
        assert 128 <= p["MemorySize"] <= 3008 and 3 <= p["Timeout"] <= 900
        # Issue 17: failed async invocations go to the OnFailure destination (with their errorType),
        # not to a plain DLQ (which keeps the event only).
        assert "DeadLetterQueue" not in p, f"{lid}: use the EventInvokeConfig's OnFailure destination"
        [config] = [c for c in t["Resources"].values() if c["Type"] == "AWS::Lambda::EventInvokeConfig"
                    and c["Properties"]["FunctionName"] == {"Ref": lid}]
        assert config.get("Condition") == r.get("Condition"), lid
        queue = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert queue == lid.removesuffix("Function") + "DLQ" and t["Resources"][queue]["Type"] == "AWS::SQS::Queue"
        assert t["Resources"][queue].get("Condition") == r.get("Condition"), lid
        grants = [s for pol in p["Policies"] for s in pol["Statement"] if s.get("Action") == "sqs:SendMessage"]
        assert grants == [{"Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage",
                           "Resource": {"Fn::GetAtt": [queue, "Arn"]}}], lid
    assert seen == FUNCTIONS
    members = {re.search(r'^name = "([^"]+)"', (d / "Cargo.toml").read_text(), re.M).group(1)
               for d in (REPO / "functions").iterdir() if (d / "Cargo.toml").is_file()}
    missing = set(FUNCTIONS.values()) - members
    # custom-metrics may still be in the making; the finished ones must be workspace binaries.
    assert missing <= {"custom-metrics"}, f"binaries without a crate: {missing}"


def _documented_vars(crate: str) -> set[str]:
    """Upper-case names a function's source mentions (doc tables, consts, string literals), with
    ``{STAGE}_X`` expanded."""
    text = "\n".join(p.read_text() for p in (REPO / "functions" / crate / "src").glob("*.rs"))
    names = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', text)) | set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", text))
    for suffix in re.findall(r"\{STAGE\}_([A-Z0-9_]+)", text):
        names |= {f"STAGING_{suffix}", f"PRODUCTION_{suffix}"}
    # deploy-on-approval reads per-stage variables as var("INSTANCE_TYPE") -> "{STAGE}_INSTANCE_TYPE".
    var_fn = re.findall(r'var\("([A-Z_]+)"\)', text)
    names |= {f"{stage}_{v}" for v in var_fn for stage in ("STAGING", "PRODUCTION")}
    return names


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_environment_variables_are_read_by_the_function(function):
    crate = FUNCTIONS[function]
    src = REPO / "functions" / crate / "src"
    env = sam_template()["Resources"][function]["Properties"]["Environment"]["Variables"]
    if not src.is_dir():
        pytest.skip(f"functions/{crate} does not exist yet (its variables are the assumed ones in infra/README.md)")
    unknown = set(env) - _documented_vars(crate)
    assert not unknown, f"{function} sets variables functions/{crate} does not read: {sorted(unknown)}"


def test_required_variables_are_set():
    env = {f: sam_template()["Resources"][f]["Properties"]["Environment"]["Variables"] for f in FUNCTIONS}
    assert {"MODEL_PACKAGE_GROUP_NAME", "SAGEMAKER_EXECUTION_ROLE_ARN", "STAGING_ENDPOINT_NAME"} <= set(env["DeployOnApprovalFunction"])
    assert "PIPELINE_NAME" in env["RetrainOnAlarmFunction"]
    assert {"CAPTURE_S3_URI", "REPORT_S3_URI", "ENDPOINT_NAME", "GROUND_TRUTH_S3_URI", "PROBLEM_TYPE"} <= set(env["CustomMetricsFunction"])
    # The buses and namespaces the functions publish to are the ones IAM allows.
    for f in ("DeployOnApprovalFunction", "RetrainOnAlarmFunction", "CustomMetricsFunction"):
        assert env[f]["EVENT_BUS_NAME"] == {"Ref": "EventBusName"}
    assert env["RetrainOnAlarmFunction"]["METRICS_NAMESPACE"] == {"Ref": "LoopMetricsNamespace"}


# ------------------------------------------------------------------------------------------ wiring
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rule_target_is_retried_dead_lettered_and_permitted(variant):
    t = sam_template()
    overrides = VARIANTS[variant]
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
    rules = resources(t, "AWS::Events::Rule", overrides)
    assert len(rules) >= 5
    permissions = {(json.dumps(r["Properties"]["FunctionName"]), json.dumps(r["Properties"]["SourceArn"]))
                   for r in resources(t, "AWS::Lambda::Permission", overrides).values()}
    queue_policies = resources(t, "AWS::SQS::QueuePolicy", overrides)
    for lid, rule in rules.items():
        p = rule["Properties"]
        assert ("EventPattern" in p) != ("ScheduleExpression" in p), lid
        assert p["State"] == "ENABLED"
        for target in p["Targets"]:
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, lid
            assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400, lid
            queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert t["Resources"][queue]["Type"] == "AWS::SQS::Queue"
            if target["Arn"] == {"Ref": "NotificationTopic"}:
                # Issue 17: the topic's policy lets this rule publish (test_infra_operations.py).
                assert queue == "NotificationDLQ", lid
                topic_policy = ev.value(t["Resources"]["NotificationTopicPolicy"]["Properties"]["PolicyDocument"])
                sources = [a for s in topic_policy["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}
                           for a in s["Condition"]["ArnEquals"]["aws:SourceArn"]]
                assert ev.value({"Fn::GetAtt": [lid, "Arn"]}) in sources, f"{lid}: the topic's policy does not allow the rule"
            else:
                fn = target["Arn"]["Fn::GetAtt"][0]
                assert (json.dumps({"Ref": fn}), json.dumps({"Fn::GetAtt": [lid, "Arn"]})) in permissions, \
                    f"{lid}: no lambda:InvokeFunction permission for events.amazonaws.com from this rule"
                # A function's events are dead-lettered in its own queue (CustomMetricsStaging's too).
                assert queue == fn.removesuffix("Function") + "DLQ", (lid, queue)
            # The queue's policy lets EventBridge send this rule's dead letters (and nothing else).
            allowed = []
            for qp in queue_policies.values():
                if {"Ref": queue} in qp["Properties"]["Queues"]:
                    for s in ev.value(qp["Properties"]["PolicyDocument"]["Statement"]):
                        assert s["Principal"] == {"Service": "events.amazonaws.com"} and s["Action"] == "sqs:SendMessage"
                        allowed += s["Condition"]["ArnEquals"]["aws:SourceArn"]
            assert ev.value({"Fn::GetAtt": [lid, "Arn"]}) in allowed, f"{lid}: {queue}'s policy does not allow the rule"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_alarm_is_caught_by_the_retrain_rule(variant):
    t = sam_template()
    ev = cfn.Evaluator(t, cfn.parameter_values(t, VARIANTS[variant]))
    prefix = ev.value(t["Resources"]["RetrainOnAlarmRule"]["Properties"]["EventPattern"])["detail"]["alarmName"][0]["prefix"]
    alarms = resources(t, "AWS::CloudWatch::Alarm", VARIANTS[variant])
    assert alarms, f"{variant}: no alarm"
    for lid in alarms:
        a = ev.value(t["Resources"][lid]["Properties"])
        if lid.endswith(("ErrorsAlarm", "ThrottlesAlarm", "DurationAlarm", "DLQDepthAlarm")):
            # Issue 17's operational alarms notify people and never start retraining (no dot: no
            # stack's <stack name>.<AlarmNamePrefix> prefix can match).
            assert "." not in a["AlarmName"] and not a["AlarmName"].startswith(prefix), (lid, a["AlarmName"])
            assert a["AlarmActions"] == [ev.value({"Ref": "NotificationTopic"})], lid
            continue
        assert a["AlarmName"].startswith(prefix), (lid, a["AlarmName"])
        assert a["TreatMissingData"] == "ignore" and "AlarmActions" not in a


def test_alarm_is_explicit_and_caught_by_the_retrain_rule():
    t = sam_template()
    ev = cfn.Evaluator(t, cfn.parameter_values(t))
    alarm = ev.value(t["Resources"]["ModelQualityAlarm"]["Properties"])
    assert alarm["TreatMissingData"] in ("ignore", "missing", "notBreaching", "breaching")
    assert "TreatMissingData" in t["Resources"]["ModelQualityAlarm"]["Properties"]
    assert alarm["Namespace"] == "aws/sagemaker/Endpoints/model-metrics" and alarm["MetricName"] == "auc"
    assert {d["Name"] for d in alarm["Dimensions"]} == {"Endpoint", "MonitoringSchedule"}
    pattern = ev.value(t["Resources"]["RetrainOnAlarmRule"]["Properties"]["EventPattern"])
    prefix = pattern["detail"]["alarmName"][0]["prefix"]
    assert alarm["AlarmName"].startswith(prefix)
    assert "AlarmActions" not in alarm, "state changes reach retrain-on-alarm through EventBridge, once"


def test_dashboard_has_metric_threshold_retraining_marks_and_record_counts():
    """The threshold line is the alarm's (annotations.alarms), so it follows the alarm when
    deploy-on-approval moves the threshold; no constant line that would go stale."""
    t = sam_template()
    for variant, overrides in VARIANTS.items():
        ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
        body = json.loads(ev.value(t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
        text = json.dumps(body)
        assert '"horizontal"' not in text, f"{variant}: a constant threshold line"
        graphed = [w["properties"]["annotations"]["alarms"] for w in body["widgets"] if "annotations" in w["properties"]]
        alarms = sorted(a for a in resources(t, "AWS::CloudWatch::Alarm", overrides)
                        if a == "ModelQualityAlarm" or a.startswith("DriftAlarm"))
        assert graphed == [[ev.value({"Fn::GetAtt": [a, "Arn"]})] for a in alarms], variant
        for w in body["widgets"]:
            if "annotations" in w["properties"]:
                assert "metrics" not in w["properties"], "an alarm graph shows the alarm's own metric"
        first = body["widgets"][0]["properties"]
        if "ModelQualityAlarm" in alarms:
            assert first["annotations"]["alarms"] == [ev.value({"Fn::GetAtt": ["ModelQualityAlarm", "Arn"]})]
            assert ev.value({"Ref": "MetricName"}) in first["title"]
        assert any(m[1] == "RetrainingStarted" for w in body["widgets"] for m in w["properties"].get("metrics", [])
                   if isinstance(m[0], str))
        for name in ("records_matched", "records_unmatched_predictions", "records_malformed", "window_empty"):
            assert name in text
        model_ns = "aws/sagemaker/ModelMonitoring/model-metrics" if overrides.get("CaptureMode") == "batchTransform" \
            else "aws/sagemaker/Endpoints/model-metrics"
        ns = overrides.get("MetricsNamespace") or (model_ns if overrides.get("ProblemType") != "" else model_ns.replace("model-", "data-"))
        records = next(w["properties"] for w in body["widgets"] if w["properties"]["title"].startswith("Records"))
        assert {m[0] for m in records["metrics"]} == {ns}, variant


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_data_bucket_is_private_encrypted_and_notifies_eventbridge(variant):
    t = sam_transformed()
    buckets = resources(t, "AWS::S3::Bucket", VARIANTS[variant])
    assert list(buckets) == ["DataBucket"]
    p = buckets["DataBucket"]["Properties"]
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(p["PublicAccessBlockConfiguration"][k] is True for k in
               ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    assert p["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


# ------------------------------------------------------------------------------------------ IAM
UNSCOPABLE = {"sagemaker:ListModelPackages", "cloudwatch:PutMetricData"}  # no resource type in IAM


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_iam_is_least_privilege(variant):
    t = sam_transformed()
    ev = cfn.Evaluator(t, cfn.parameter_values(t, VARIANTS[variant]))
    for fn in FUNCTIONS:
        perms = cfn.permissions(t, ev, fn)
        assert perms["managed"] == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
        for atom in perms["statements"]:
            effect, action, resource, cond = atom.split(" ", 3)
            cond = json.loads(cond)
            assert effect == "Allow"
            assert "*" not in action, f"{fn}: wildcard action {action}"
            if resource == "*":
                assert action in UNSCOPABLE, f"{fn}: {action} on *"
            if action == "cloudwatch:PutMetricData":
                assert cond and cond["StringEquals"]["cloudwatch:namespace"], f"{fn}: PutMetricData without namespace"
            if action == "iam:PassRole":
                assert cond == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
                assert resource == "arn:aws:iam::123456789012:role/SageMakerExecutionRoleArn"
            if action.startswith("sagemaker:") and resource != "*":
                assert re.match(r"arn:aws:sagemaker:us-east-1:123456789012:(model-package/driftloop-demo/\*|"
                                r"pipeline/churn-build|pipeline/fraud-\*|model/driftloop-demo-\*|"
                                r"endpoint/churn-(staging|prod)|endpoint-config/churn-(staging|prod)-\*)$", resource), \
                    f"{fn}: {action} on {resource}"
            if action == "events:PutEvents":
                assert resource == "arn:aws:events:us-east-1:123456789012:event-bus/default"
                # Issue 14: only its own outcomes (source driftloop, its detail types).
                assert cond["StringEquals"]["events:source"] == "driftloop", f"{fn}: PutEvents without a source condition"
                assert cond["StringEquals"]["events:detail-type"], f"{fn}: PutEvents without a detail-type condition"
            if action.startswith("s3:") and "driftloop-databucket-generated" in resource:
                assert re.search(r"driftloop-databucket-generated(/(capture|batch-capture/churn-daily|ground-truth/churn|"
                                 r"reports|transform/churn-daily|driftloop-state/retrain-leases)/\*)?$", resource), resource
                if action == "s3:ListBucket":
                    assert cond["StringLike"]["s3:prefix"], f"{fn}: ListBucket without a prefix condition"
                else:
                    assert "/" in resource.split(":::", 1)[1], f"{fn}: {action} on the whole bucket"
            if action.startswith("s3:"):
                assert re.match(r"arn:aws:s3:::(driftloop-databucket-generated|driftloop-demo-models/\*$|"
                                r"churn-transform-jobs(/transform/churn-daily/\*)?$)", resource), f"{fn}: {action} on {resource}"
                if resource == "arn:aws:s3:::churn-transform-jobs":
                    assert action == "s3:ListBucket" and cond == {"StringLike": {"s3:prefix": ["transform/churn-daily/*"]}}
            if action == "s3:PutObject":
                # retrain-on-alarm writes its pipeline leases only (issue 14).
                allowed = "/driftloop-state/retrain-leases/*" if fn == "RetrainOnAlarmFunction" else "/reports/*"
                assert resource.endswith(allowed), f"{fn}: writes outside the {allowed} prefix: {resource}"
            if action == "cloudwatch:DescribeAlarms" and fn == "RetrainOnAlarmFunction":
                assert resource == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:driftloop.churn-*", f"{fn}: {resource}"
    actions = lambda fn: {a.split(" ")[1] for a in cfn.permissions(t, ev, fn)["statements"]}  # noqa: E731
    assert actions("GetApprovedModelFunction") == {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage", "sqs:SendMessage"}
    assert "sagemaker:StartPipelineExecution" in actions("RetrainOnAlarmFunction")
    started = {a.split(" ")[2] for a in cfn.permissions(t, ev, "RetrainOnAlarmFunction")["statements"]
               if a.split(" ")[1] == "sagemaker:StartPipelineExecution"}
    routed = {"arn:aws:sagemaker:us-east-1:123456789012:pipeline/fraud-*"} if variant == "flipped" else set()
    assert started == {"arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-build"} | routed
    assert not actions("RetrainOnAlarmFunction") & {"iam:PassRole", "sagemaker:CreateEndpoint"}
    # Its S3 access is the lease prefix only (issue 14: the per-pipeline leases).
    retrain_s3 = {a.split(" ")[2] for a in cfn.permissions(t, ev, "RetrainOnAlarmFunction")["statements"]
                  if a.split(" ")[1].startswith("s3:")}
    assert retrain_s3 == {"arn:aws:s3:::driftloop-databucket-generated/driftloop-state/retrain-leases/*",
                          "arn:aws:s3:::driftloop-databucket-generated"}, retrain_s3
    assert {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "iam:PassRole"} <= actions("DeployOnApprovalFunction")
    follows = VARIANTS[variant].get("AlarmFollowsModel", "true") == "true" and VARIANTS[variant].get("ProblemType") != ""
    assert ("cloudwatch:PutMetricAlarm" in actions("DeployOnApprovalFunction")) == follows
    assert not actions("CustomMetricsFunction") & {"iam:PassRole", "sagemaker:CreateEndpoint", "sagemaker:StartPipelineExecution"}


SCALE_OUT_RETRIED = {"Lambda.TooManyRequestsException", "Lambda.ServiceException", "Retryable.Throttled",
                     "Retryable.ServerError", "Retryable.Transport", "Retryable.Busy"}


def scale_out_definition(t: dict, overrides: dict | None = None) -> dict:
    """The state machine's definition with its substitutions applied (as Step Functions reads it)."""
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
    props = t["Resources"]["ScaleOutStateMachine"]["Properties"]
    text = props["DefinitionString"]
    for k, v in ev.value(props["DefinitionSubstitutions"]).items():
        text = text.replace("${" + k + "}", str(v))
    return json.loads(text)


@pytest.mark.parametrize("variant", ["defaults", "flipped"])
def test_scale_out_state_machine_fans_out_fails_visibly_and_is_scoped(variant):
    """Issue 18: the Distributed Map over the window's slices, retried, failing on any failed item,
    then one reduce; custom-metrics can start it; its role does nothing else."""
    t = sam_transformed()
    overrides = dict(VARIANTS[variant], ScaleOutMaxConcurrency="40")
    ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
    d = scale_out_definition(t, overrides)
    assert d["StartAt"] == "Workers"
    m = d["States"]["Workers"]
    assert m["Type"] == "Map" and m["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert m["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert m["ItemReader"]["Parameters"] == {"Bucket.$": "$.slices.bucket", "Prefix.$": "$.slices.prefix"}
    assert m["MaxConcurrency"] == 40
    assert m["ToleratedFailureCount"] == 0 and "ToleratedFailurePercentage" not in m
    assert m["ResultPath"] is None, "the Map's output is dropped: the reduce lists the partials (no 256 KB bound)"
    assert m["ItemSelector"]["scaleOut"]["mode"] == "worker" and m["Next"] == "Reduce"
    worker = m["ItemProcessor"]["States"]["Worker"]
    reduce_ = d["States"]["Reduce"]
    assert reduce_["Parameters"]["Payload"]["scaleOut"]["mode"] == "reduce" and reduce_["End"] is True
    for task in (worker, reduce_):
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["Parameters"]["FunctionName"] == "<getatt:CustomMetricsFunction.Arn>"
        retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
        assert SCALE_OUT_RETRIED <= retried, SCALE_OUT_RETRIED - retried
        assert not retried & {"States.ALL", "States.TaskFailed"}, "permanent errors are not retried"
        assert "Catch" not in task, "a failed item fails the run"
    props = ev.value(t["Resources"]["ScaleOutStateMachine"]["Properties"])
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:" + props["StateMachineName"]
    env = ev.value(t["Resources"]["CustomMetricsFunction"]["Properties"]["Environment"])["Variables"]
    assert env["SCALE_OUT_STATE_MACHINE_ARN"] == arn
    assert env["SCALE_OUT_BYTES"] == "8589934592" and env["SCALE_OUT_SLICE_BYTES"] == "134217728"
    started = [a for a in cfn.permissions(t, ev, "CustomMetricsFunction")["statements"]
               if a.split(" ")[1] == "states:StartExecution"]
    assert [a.split(" ")[2] for a in started] == [arn]
    # The role: invoke custom-metrics, list the report prefix, run the Map's children; log
    # delivery and X-Ray (no resource types) only on *.
    role = ev.value(t["Resources"]["ScaleOutStateMachineRole"]["Properties"])
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    atoms = []
    for pol in role["Policies"]:
        for st in pol["PolicyDocument"]["Statement"]:
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            ress = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            atoms += [(a, r, json.dumps(st.get("Condition"), sort_keys=True)) for a in acts for r in ress]
    for a, r, cond in atoms:
        assert "*" not in a
        if r == "*":
            assert a.split(":")[0] in ("logs", "xray"), (a, r)
        elif a == "lambda:InvokeFunction":
            assert r in ("<getatt:CustomMetricsFunction.Arn>", "<getatt:CustomMetricsFunction.Arn>:*")
        elif a == "s3:ListBucket":
            assert json.loads(cond) == {"StringLike": {"s3:prefix": ["reports/*"]}}, cond
        elif a == "states:StartExecution":
            assert r == arn
        else:
            assert a in ("states:DescribeExecution", "states:StopExecution"), a
            assert r == arn.replace(":stateMachine:", ":execution:") + "/*"
    assert {a for a, _, _ in atoms if not a.startswith(("logs:", "xray:"))} == {
        "lambda:InvokeFunction", "s3:ListBucket", "states:StartExecution", "states:DescribeExecution",
        "states:StopExecution"}


def test_rollback_alarms_reach_production_updates():
    """Issue 14: the rollback alarms parameter is wired to the function, which may read them."""
    t = sam_transformed()
    for overrides, expected in (({}, ""), ({"ProductionRollbackAlarms": "churn-5xx,churn-latency"}, "churn-5xx,churn-latency")):
        ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
        env = ev.value(t["Resources"]["DeployOnApprovalFunction"]["Properties"]["Environment"]["Variables"])
        assert env["PRODUCTION_ROLLBACK_ALARMS"] == expected
        reads = [a for a in cfn.permissions(t, ev, "DeployOnApprovalFunction")["statements"]
                 if a.split(" ")[1] == "cloudwatch:DescribeAlarms" and a.split(" ")[2].endswith(":alarm:*")]
        assert bool(reads) == bool(expected), reads
    pattern = re.compile(sam_template()["Parameters"]["ProductionRollbackAlarms"]["AllowedPattern"])
    assert pattern.match("") and pattern.match("a,b") and pattern.match(",".join(["x"] * 10))
    assert not pattern.match(",".join(["x"] * 11)) and not pattern.match("a,,b")


def test_production_autoscaling_is_wired_and_scoped():
    """Issue 14: autoscaling parameters reach the function; its Application Auto Scaling rights are
    limited to SageMaker targets and exist only when autoscaling is on."""
    t = sam_transformed()
    for overrides, on in (({}, False), ({"ProductionAutoScalingMaxCapacity": 6, "ProductionAutoScalingMinCapacity": 2}, True),
                          ({"ProductionAutoScalingMaxCapacity": 6, "ProductionEndpointName": ""}, False)):
        ev = cfn.Evaluator(t, cfn.parameter_values(t, overrides))
        env = ev.value(t["Resources"]["DeployOnApprovalFunction"]["Properties"]["Environment"]["Variables"])
        assert str(env["PRODUCTION_AUTOSCALING_MAX_CAPACITY"]) == ("6" if on else "0"), env
        atoms = cfn.permissions(t, ev, "DeployOnApprovalFunction")["statements"]
        scaling = [a for a in atoms if a.split(" ")[1].startswith("application-autoscaling:")]
        assert bool(scaling) == on, scaling
        for a in scaling:
            _, _, resource, cond = a.split(" ", 3)
            assert resource.endswith(":scalable-target/*")
            assert json.loads(cond) == {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}}
        if on:
            assert str(env["PRODUCTION_AUTOSCALING_MIN_CAPACITY"]) == "2"
            assert {"application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeregisterScalableTarget"} == {a.split(" ")[1] for a in scaling}


def test_rules_listen_on_the_right_bus():
    """AWS services publish on the default bus; driftloop's requests arrive on the control bus only
    (issue 14: they used to be taken from EventBusName, where anyone may put them)."""
    for lid, r in resources(sam_template(), "AWS::Events::Rule").items():
        p = r["Properties"]
        sources = (p.get("EventPattern") or {}).get("source", ["aws.events"])
        if all(s.startswith("aws.") for s in sources):
            assert "EventBusName" not in p, f"{lid}: AWS events arrive on the default bus"
        elif p["Targets"][0]["Arn"] == {"Ref": "NotificationTopic"}:
            # Issue 17: the loop's outcomes, where the functions publish them.
            assert sources == ["driftloop"] and p["EventBusName"] == {"Ref": "EventBusName"}, lid
        else:
            assert sources == ["driftloop"] and p["EventBusName"] == {"Ref": "ControlBus"}, lid


def test_readme_documents_every_parameter():
    readme = (INFRA / "README.md").read_text()
    missing = [p for p in sam_template()["Parameters"] if f"| `{p}` |" not in readme]
    assert not missing, f"infra/README.md's parameters table lacks {missing}"
