"""Everything custom-metrics can do is deployable from infra/template.yaml: Forecast, batch transform
and data-quality-only monitoring (with a drift alarm per named feature - A1, the
`feature_baseline_drift_fare_amount` alarm of aws-samples/amazon-sagemaker-drift-detection).

For each mode: the parameter set renders (infra/tools/cfn.py) to the function variables, IAM grants,
alarms and dashboard that mode needs; a template defaulting to the set passes cfn-lint and checkov;
the parameters' bounds are the function's (Config::from_env); and the function environment the
template renders runs custom-metrics under `cargo lambda watch` on the emulator over a window of the
real clock, publishing the very metric each alarm watches (namespace, name, dimensions, statistic,
period as the alarm states them), from objects the rendered IAM policy lets it read.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import random
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from lambda_watch import emulator_clients, Watch, emulator_env
from test_infra_support import REPO, cfn, cfn_lint_bin, checkov, explain, run, sam_template

FORECAST = {"ProblemType": "Forecast", "ForecastQuantiles": "0.2,0.5,0.8", "ForecastSeasonality": "24",
            "MetricName": "mean_wQL", "AlarmComparisonOperator": "GreaterThanThreshold", "AlarmThreshold": "0.3"}
BATCH = {"CaptureMode": "batchTransform", "BatchOutputFormat": "csv", "BatchOutputBucketName": "churn-transform-jobs",
         "BatchOutputPrefix": "transform/churn-daily", "CapturePrefix": "batch-capture/churn-daily",
         "GroundTruthDelayMinutes": "1440", "MetricName": "accuracy"}
DATA_QUALITY = {"ProblemType": "", "DriftAlarmFeatures": "fare_amount", "DriftAlarmThreshold": "0.4",
                "MonitoringScheduleName": "nyc-taxi-data-quality"}
MODES = {"forecast": FORECAST, "batch": BATCH, "dataquality": DATA_QUALITY}


def rendered(overrides: dict) -> tuple[cfn.Evaluator, dict]:
    t = sam_template()
    return cfn.Evaluator(t, cfn.parameter_values(t, overrides)), t


def function_env(overrides: dict) -> dict[str, str]:
    ev, t = rendered(overrides)
    return {k: str(v) for k, v in ev.value(t["Resources"]["CustomMetricsFunction"]["Properties"]["Environment"]["Variables"]).items()}


def alarms(overrides: dict) -> dict[str, dict]:
    """The loop's alarms (model quality, drift: they start retraining); the operational alarms of
    issue 17 are test_infra_operations.py's."""
    ev, t = rendered(overrides)
    return {lid: ev.value(t["Resources"][lid]["Properties"]) for lid in ev.resources("AWS::CloudWatch::Alarm")
            if lid == "ModelQualityAlarm" or lid.startswith("DriftAlarm")}


def statements(overrides: dict) -> list[dict]:
    ev, t = rendered(overrides)
    return [s for pol in ev.value(t["Resources"]["CustomMetricsFunction"]["Properties"]["Policies"]) for s in pol["Statement"]]


def namespaces_allowed(overrides: dict) -> list[str]:
    [s] = [s for s in statements(overrides) if s["Action"] == "cloudwatch:PutMetricData"]
    return s["Condition"]["StringEquals"]["cloudwatch:namespace"]


def allows(stmts: list[dict], action: str, arn: str, prefix: str | None = None) -> bool:
    for s in stmts:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        if action in actions and any(fnmatch.fnmatchcase(arn, r) for r in resources):
            if prefix is None:
                return True
            pats = s.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [])
            if any(fnmatch.fnmatchcase(prefix, p) for p in pats):
                return True
    return False


# ------------------------------------------------------------------------------------------ rendering
def test_forecast_renders_its_quantiles_seasonality_and_alarm():
    env = function_env(FORECAST)
    assert env["PROBLEM_TYPE"] == "Forecast"
    assert env["FORECAST_QUANTILES"] == "0.2,0.5,0.8" and env["FORECAST_SEASONALITY"] == "24"
    assert env["GROUND_TRUTH_S3_URI"].endswith("/ground-truth/churn")
    assert "FORECAST_QUANTILES" not in function_env({}), "only a Forecast stack sets them"
    [alarm] = alarms(FORECAST).values()
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ComparisonOperator"]) == \
        ("aws/sagemaker/Endpoints/model-metrics", "mean_wQL", "GreaterThanThreshold")
    assert namespaces_allowed(FORECAST) == ["aws/sagemaker/Endpoints/model-metrics", "aws/sagemaker/Endpoints/data-metrics"]


def test_batch_transform_renders_capture_mode_namespaces_and_grants():
    env = function_env(BATCH)
    assert env["CAPTURE_MODE"] == "batchTransform" and env["BATCH_OUTPUT_FORMAT"] == "csv"
    assert env["CAPTURE_S3_URI"] == "s3://driftloop-databucket-generated/batch-capture/churn-daily"
    assert "ENDPOINT_NAME" not in env, "batch transform metrics have no Endpoint dimension"
    assert env["GROUND_TRUTH_DELAY_MINUTES"] == "1440"
    # The namespaces custom-metrics uses for batch transform (shared/src/monitoring/report.rs).
    report = (REPO / "shared/src/monitoring/report.rs").read_text()
    batch_ns = re.findall(r'BATCH_(?:MODEL|DATA)_NAMESPACE: &str = "([^"]+)"', report)
    assert namespaces_allowed(BATCH) == batch_ns == [
        "aws/sagemaker/ModelMonitoring/model-metrics", "aws/sagemaker/ModelMonitoring/data-metrics"]
    [alarm] = alarms(BATCH).values()
    assert alarm["Namespace"] == "aws/sagemaker/ModelMonitoring/model-metrics"
    assert alarm["Dimensions"] == [{"Name": "MonitoringSchedule", "Value": "churn-model-quality"}]
    stmts = statements(BATCH)
    data = "arn:aws:s3:::driftloop-databucket-generated"
    assert allows(stmts, "s3:ListBucket", data, "batch-capture/churn-daily/output/2026/12/01/10/")
    assert allows(stmts, "s3:GetObject", f"{data}/batch-capture/churn-daily/output/2026/12/01/10/m.json")
    assert allows(stmts, "s3:GetObject", "arn:aws:s3:::churn-transform-jobs/transform/churn-daily/part-0.csv.out")
    assert allows(stmts, "s3:ListBucket", "arn:aws:s3:::churn-transform-jobs", "transform/churn-daily/part-0.csv.out")
    assert not allows(stmts, "s3:GetObject", "arn:aws:s3:::churn-transform-jobs/other/x")
    assert not allows(stmts, "s3:PutObject", "arn:aws:s3:::churn-transform-jobs/transform/churn-daily/x")
    # Output in the data bucket: the grant is the prefix there, and no other bucket.
    inside = dict(BATCH, BatchOutputBucketName="")
    stmts = statements(inside)
    assert allows(stmts, "s3:GetObject", f"{data}/transform/churn-daily/part-0.csv.out")
    assert not any("churn-transform-jobs" in json.dumps(s) for s in stmts)
    # Real-time stacks get no batch grants.
    assert not allows(statements({}), "s3:GetObject", f"{data}/transform/churn-daily/part-0.csv.out")


def test_data_quality_only_renders_a1_drift_alarm_without_ground_truth():
    env = function_env(DATA_QUALITY)
    assert env["PROBLEM_TYPE"] == "" and "GROUND_TRUTH_S3_URI" not in env and env["DATA_QUALITY"] == "auto"
    ev, t = rendered(DATA_QUALITY)
    assert not ev.resource_enabled("GroundTruthRule") and not ev.resource_enabled("ModelQualityAlarm")
    stmts = statements(DATA_QUALITY)
    assert not allows(stmts, "s3:GetObject", "arn:aws:s3:::driftloop-databucket-generated/ground-truth/churn/x")
    # A1: the alarm on feature_baseline_drift_fare_amount, threshold 0.4, period 3600, in the
    # namespace and with the dimensions custom-metrics publishes (Model Monitor's).
    assert list(alarms(DATA_QUALITY)) == ["DriftAlarm1"]
    a = alarms(DATA_QUALITY)["DriftAlarm1"]
    assert a["AlarmName"] == "driftloop.churn-feature-drift-fare_amount"
    assert (a["Namespace"], a["MetricName"], a["Threshold"], a["Period"], a["ComparisonOperator"]) == (
        "aws/sagemaker/Endpoints/data-metrics", "feature_baseline_drift_fare_amount", "0.4", "3600", "GreaterThanThreshold")
    assert a["Dimensions"] == [{"Name": "Endpoint", "Value": "churn-prod"},
                               {"Name": "MonitoringSchedule", "Value": "nyc-taxi-data-quality"}]
    # deploy-on-approval has no model-quality alarm to move.
    dep = ev.value(t["Resources"]["DeployOnApprovalFunction"]["Properties"]["Environment"]["Variables"])
    assert dep["PRODUCTION_ALARM_NAME"] == "" and dep["STAGING_ALARM_NAME"] == ""


def test_five_drift_alarm_slots_follow_the_feature_list():
    names = "fare_amount,passenger_count,trip_distance,pickup_hour,tip.pct"
    got = alarms(dict(DATA_QUALITY, DriftAlarmFeatures=names))
    assert sorted(got) == [f"DriftAlarm{i}" for i in range(1, 6)]
    assert [got[f"DriftAlarm{i}"]["MetricName"] for i in range(1, 6)] == [f"feature_baseline_drift_{n}" for n in names.split(",")]
    # With a problem type the drift alarms come on top of the model-quality alarm.
    both = alarms({"DriftAlarmFeatures": "fare_amount"})
    assert sorted(both) == ["DriftAlarm1", "ModelQualityAlarm"]
    assert alarms({}).keys() == {"ModelQualityAlarm"}
    # A sixth feature has no slot: the parameter refuses it instead of dropping it.
    pattern = sam_template()["Parameters"]["DriftAlarmFeatures"]["AllowedPattern"]
    assert re.fullmatch(pattern, names) and not re.fullmatch(pattern, names + ",six")
    assert not re.fullmatch(pattern, "fare amount") and re.fullmatch(pattern, "")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_dashboard_graphs_each_alarm_with_its_own_threshold(mode):
    ev, t = rendered(MODES[mode])
    body = json.loads(ev.value(t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    lines = [w["properties"]["annotations"] for w in body["widgets"] if "annotations" in w["properties"]]
    arns = [ev.value({"Fn::GetAtt": [lid, "Arn"]}) for lid in sorted(alarms(MODES[mode]))]
    assert lines == [{"alarms": [a]} for a in arns]
    assert "horizontal" not in json.dumps(body)


# ------------------------------------------------------------------------------------------ bounds
def test_parameter_bounds_are_the_functions():
    p = sam_template()["Parameters"]
    # WindowRule::validate_minutes: divides a day, or whole days, at most 31 days.
    accepted = [m for m in range(1, 44641) if 1440 % m == 0 or m % 1440 == 0]
    assert [int(v) for v in p["WindowMinutes"]["AllowedValues"]] == accepted
    for name in ("WindowOffsetMinutes", "GroundTruthDelayMinutes"):
        assert (p[name]["MinValue"], p[name]["MaxValue"]) == (0, 44640), name
    assert (p["ForecastSeasonality"]["MinValue"], p["ForecastSeasonality"]["MaxValue"]) == (1, 10000)
    # parse_problem, plus "" (unset: data quality only).
    assert set(p["ProblemType"]["AllowedValues"]) == {"", "Regression", "BinaryClassification", "MulticlassClassification", "Forecast"}
    assert set(p["CaptureMode"]["AllowedValues"]) == {"realtime", "batchTransform"}
    assert set(p["BatchOutputFormat"]["AllowedValues"]) == {"csv", "json"}
    assert set(p["DataQuality"]["AllowedValues"]) == {"auto", "true", "false"}
    q = p["ForecastQuantiles"]["AllowedPattern"]
    for ok in ("0.1,0.5,0.9", "0.05", "0.10", ",".join(f"0.{i:02d}" for i in range(1, 21))):
        assert re.fullmatch(q, ok), ok
    for bad in ("", "0", "0.0", "1", "1.0", "0.5,,0.9", "0.5 ,0.9", "-0.1", ",".join(f"0.{i:02d}" for i in range(1, 22))):
        assert not re.fullmatch(q, bad), bad
    ns = p["MetricsNamespace"]["AllowedPattern"]
    assert re.fullmatch(ns, "") and re.fullmatch(ns, "driftloop/quality") and re.fullmatch(ns, "a:b")
    assert not re.fullmatch(ns, "AWS/SageMaker") and not re.fullmatch(ns, ":x"), "validate_namespace refuses these"


# ------------------------------------------------------------------------------------------ linters
def _template_defaulting_to(overrides: dict, path: Path) -> Path:
    t = json.loads(json.dumps(sam_template()))
    for k, v in overrides.items():
        t["Parameters"][k]["Default"] = v
    path.write_text(json.dumps(t, indent=1))
    return path


@pytest.mark.parametrize("mode", sorted(MODES))
def test_mode_passes_cfn_lint_and_checkov(mode, tmp_path):
    """cfn-lint checks the defaults against each parameter's constraints (so the set is deployable
    as given) and every condition combination; checkov evaluates the set's defaults."""
    path = _template_defaulting_to(MODES[mode], tmp_path / f"template-{mode}.json")
    p = run([cfn_lint_bin(), path])
    assert p.returncode == 0, explain(p)
    p = checkov(path)
    assert p.returncode == 0, explain(p)
    assert "Failed checks: 0" in p.stdout, explain(p)


def test_lint_notices_a_value_the_function_refuses(tmp_path):
    path = _template_defaulting_to(dict(FORECAST, ForecastQuantiles="0.5,1.5"), tmp_path / "bad.json")
    p = run([cfn_lint_bin(), path])
    assert p.returncode != 0 and "E2015 Default should be allowed by AllowedPattern" in p.stdout, explain(p)


# ------------------------------------------------------------------------------------------ emulator
@pytest.fixture(scope="module")
def env():
    return emulator_env()


@pytest.fixture(scope="module")
def aws(env):
    return emulator_clients(env, ("s3", "cloudwatch", "sagemaker"))


def window_of_the_real_clock() -> tuple[dt.datetime, dt.datetime]:
    """The last complete hour before the previous one: labels for it land in the next hour's folder."""
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Stack:
    """One rendered stack on the emulator: its buckets, the objects seeded for the function, and
    the function run with the environment the template renders."""

    def __init__(self, aws, overrides: dict, salt: str):
        self.aws, self.salt = aws, salt
        # Own buckets and schedule dimension per run: runs on one emulator never see each other's metrics.
        self.overrides = dict(overrides, DataBucketName=f"m5-data-{salt}", ModelArtifactsBucketName=f"m5-models-{salt}",
                              MonitoringScheduleName=f"{overrides.get('MonitoringScheduleName', 'churn')}-{salt}")
        if overrides.get("BatchOutputBucketName"):
            self.overrides["BatchOutputBucketName"] = f"m5-jobs-{salt}"
        self.env = function_env(self.overrides)
        self.alarms = alarms(self.overrides)
        self.statements = statements(self.overrides)
        self.data = self.overrides["DataBucketName"]
        self.seeded: list[tuple[str, str]] = []
        for b in {self.data, self.overrides["ModelArtifactsBucketName"], self.overrides.get("BatchOutputBucketName") or self.data}:
            aws["s3"].create_bucket(Bucket=b)

    def put(self, bucket: str, key: str, body: str | bytes) -> None:
        self.aws["s3"].put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
        self.seeded.append((bucket, key))

    def key(self, uri_var: str, rest: str) -> tuple[str, str]:
        bucket, _, prefix = self.env[uri_var][len("s3://"):].partition("/")
        return bucket, f"{prefix}/{rest}"

    def invoke(self, env, start: dt.datetime, end: dt.datetime) -> dict:
        extra = dict(self.env, DEDUP_QUIET_SECONDS="0", AWS_LAMBDA_LOG_LEVEL="info")
        with Watch("custom-metrics", env, extra) as w:
            rc, out, err = w.invoke("custom-metrics", data={"window": {"start": iso(start), "end": iso(end)}})
        assert rc == 0, f"{out}\n{err}"
        return json.loads(out)

    def assert_reads_were_granted(self) -> None:
        """Every object seeded for the function (capture, manifests, batch output, labels,
        baselines) is one the rendered policy lets it read."""
        for bucket, key in self.seeded:
            assert allows(self.statements, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"), f"no s3:GetObject on {bucket}/{key}"

    def watched(self, alarm: dict, start: dt.datetime, end: dt.datetime) -> list[float]:
        """The datapoints of the alarm's metric, as the alarm queries it."""
        stat = alarm["Statistic"]
        out = self.aws["cloudwatch"].get_metric_statistics(
            Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm["Dimensions"],
            StartTime=start - dt.timedelta(minutes=1), EndTime=end, Period=int(alarm["Period"]), Statistics=[stat])
        return [p[stat] for p in out["Datapoints"]]

    def alarm_is_accepted(self, alarm: dict) -> None:
        cw = self.aws["cloudwatch"]
        props = {k: alarm[k] for k in ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic", "ComparisonOperator",
                                       "TreatMissingData")}
        cw.put_metric_alarm(**props, Period=int(alarm["Period"]), EvaluationPeriods=int(alarm["EvaluationPeriods"]),
                            DatapointsToAlarm=int(alarm["DatapointsToAlarm"]), Threshold=float(alarm["Threshold"]))
        [got] = cw.describe_alarms(AlarmNames=[alarm["AlarmName"]])["MetricAlarms"]
        assert got["MetricName"] == alarm["MetricName"]


def capture_line(event_id: str, at: dt.datetime, inp: dict, out: dict) -> str:
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(inp), "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": json.dumps(out), "encoding": "JSON"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
        "eventVersion": "0",
    })


def label_line(event_id: str, data: str, encoding: str) -> str:
    return json.dumps({"groundTruthData": {"data": data, "encoding": encoding}, "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


def hour_path(t: dt.datetime) -> str:
    return t.strftime("%Y/%m/%d/%H")


def breaches(alarm: dict, value: float) -> bool:
    th = float(alarm["Threshold"])
    return {"GreaterThanThreshold": value > th, "GreaterThanOrEqualToThreshold": value >= th,
            "LessThanThreshold": value < th, "LessThanOrEqualToThreshold": value <= th}[alarm["ComparisonOperator"]]


def test_forecast_stack_runs_on_the_emulator(env, aws):
    stack = Stack(aws, FORECAST, uuid.uuid4().hex[:10])
    start, end = window_of_the_real_clock()
    rng = random.Random(7)
    caps, labels = [], []
    for i in range(24):
        history = [10 + 5 * ((h % 24) / 24) + rng.random() for h in range(48)]
        actual = [history[-24 + k] + rng.uniform(-1, 1) for k in range(3)]
        mean = [a + rng.uniform(-2, 2) for a in actual]
        quantiles = {"0.2": [m - 2 for m in mean], "0.5": mean, "0.8": [m + 2 for m in mean]}
        eid = f"{stack.salt}-f{i}"
        caps.append(capture_line(eid, start + dt.timedelta(minutes=2 * i),
                                 {"instances": [{"start": "2026-01-01 00:00:00", "target": history}]},
                                 {"predictions": [{"quantiles": quantiles, "mean": mean}]}))
        labels.append(label_line(eid, json.dumps(actual), "JSON"))
    endpoint = stack.env["ENDPOINT_NAME"]
    stack.put(*stack.key("CAPTURE_S3_URI", f"{endpoint}/AllTraffic/{hour_path(start)}/00-00-000-f.jsonl"), "\n".join(caps) + "\n")
    stack.put(*stack.key("GROUND_TRUTH_S3_URI", f"{hour_path(end)}/labels.jsonl"), "\n".join(labels) + "\n")
    out = stack.invoke(env, start, end)
    [w] = out["windows"]
    assert w["status"] in ("Completed", "CompletedWithViolations"), w
    assert w["counts"]["records_matched"] == 24
    # The configured quantiles and seasonality reached the engine.
    assert {"wQL_0.2", "wQL_0.5", "wQL_0.8", "mean_wQL", "MASE"} <= set(w["metrics"]), w["metrics"]
    assert "wQL_0.1" not in w["metrics"]
    [alarm] = stack.alarms.values()
    points = stack.watched(alarm, start, end)
    assert points and abs(points[0] - w["metrics"]["mean_wQL"]) < 1e-9, points
    stack.alarm_is_accepted(alarm)
    stack.assert_reads_were_granted()


def test_batch_transform_stack_runs_on_the_emulator(env, aws):
    stack = Stack(aws, BATCH, uuid.uuid4().hex[:10])
    start, end = window_of_the_real_clock()
    jobs = stack.overrides["BatchOutputBucketName"]
    prefix = stack.overrides["BatchOutputPrefix"]
    ids = [f"{stack.salt}-b{i}" for i in range(30)]
    rows = [f"{0.9 if i % 2 == 0 else 0.1},{e},{iso(start + dt.timedelta(minutes=i))}" for i, e in enumerate(ids)]
    stack.put(jobs, f"{prefix}/part-0.csv.out", "\n".join(rows) + "\n")
    manifest = [{"prefix": f"s3://{jobs}/{prefix}/"}, "part-0.csv.out"]
    stack.put(*stack.key("CAPTURE_S3_URI", f"output/{hour_path(start)}/manifest.json"), json.dumps(manifest))
    stack.put(*stack.key("CAPTURE_S3_URI", f"input/{hour_path(start)}/manifest.json"),
              json.dumps([{"prefix": f"s3://{jobs}/input/"}, "part-0.csv"]))
    # 3 of 30 labels disagree: accuracy 0.9.
    stack.put(*stack.key("GROUND_TRUTH_S3_URI", f"{hour_path(end)}/labels.jsonl"),
              "\n".join(label_line(e, str(int((i % 2 == 0) != (i % 10 == 3))), "CSV") for i, e in enumerate(ids)) + "\n")
    out = stack.invoke(env, start, end)
    [w] = out["windows"]
    assert w["status"] in ("Completed", "CompletedWithViolations"), w
    assert w["counts"]["records_matched"] == 30 and abs(w["metrics"]["accuracy"] - 0.9) < 1e-12
    [alarm] = stack.alarms.values()
    assert alarm["Namespace"] == "aws/sagemaker/ModelMonitoring/model-metrics"
    assert stack.watched(alarm, start, end) == [pytest.approx(0.9)]
    # Nothing under the endpoint namespaces (the PutMetricData condition would refuse it on AWS).
    listed = aws["cloudwatch"].list_metrics(Dimensions=[{"Name": "MonitoringSchedule", "Value": stack.env["MONITORING_SCHEDULE_NAME"]}])
    used = {m["Namespace"] for m in listed["Metrics"]}
    assert used and used <= set(namespaces_allowed(stack.overrides)), used
    stack.alarm_is_accepted(alarm)
    stack.assert_reads_were_granted()


def metrics_cli() -> str:
    path = os.environ.get("DRIFTLOOP_METRICS_BIN")
    if path:
        return path
    subprocess.run(["cargo", "build", "-q", "-p", "driftloop", "--no-default-features", "--features", "cli",
                    "--bin", "driftloop-metrics"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "debug" / "driftloop-metrics")


def test_data_quality_only_stack_runs_on_the_emulator_a1(env, aws, tmp_path):
    """A1: the baseline comes from the model package (data-quality statistics and constraints,
    as a QualityCheckStep registers them); drifted fares put feature_baseline_drift_fare_amount
    above the alarm's 0.4 in the alarm's namespace and dimensions; no ground truth anywhere."""
    salt = uuid.uuid4().hex[:10]
    stack = Stack(aws, dict(DATA_QUALITY, ModelPackageGroupName=f"m5-taxi-{salt}", DriftAlarmFeatures="fare_amount,passenger_count"), salt)
    start, end = window_of_the_real_clock()
    rng = random.Random(11)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"fare_amount": round(rng.uniform(5, 30), 2), "passenger_count": rng.randint(1, 4)}) + "\n"
                             for _ in range(400)))
    p = subprocess.run([metrics_cli(), "suggest-baseline", "--dataset", str(train), "--json-lines", "-o", str(tmp_path / "base")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    models = stack.overrides["ModelArtifactsBucketName"]
    for name in ("statistics.json", "constraints.json"):
        stack.put(models, f"baselines/{name}", (tmp_path / "base" / name).read_bytes())
    sm = aws["sagemaker"]
    group = stack.overrides["ModelPackageGroupName"]
    sm.create_model_package_group(ModelPackageGroupName=group)
    dq = {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{models}/baselines/statistics.json"},
          "Constraints": {"ContentType": "application/json", "S3Uri": f"s3://{models}/baselines/constraints.json"}}
    package = sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                                                "ModelDataUrl": f"s3://{models}/model.tar.gz"}],
                                "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
        ModelMetrics={"ModelDataQuality": dq}, DriftCheckBaselines={"ModelDataQuality": dq},
    )["ModelPackageArn"]
    # The endpoint serves that package (endpoint -> config -> model -> package), as deploy-on-approval builds it.
    endpoint = stack.env["ENDPOINT_NAME"]
    sm.create_model(ModelName=f"{group}-1", PrimaryContainer={"ModelPackageName": package},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker")
    sm.create_endpoint_config(EndpointConfigName=f"{endpoint}-{salt}", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{group}-1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    try:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-{salt}")
    except sm.exceptions.ClientError:
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-{salt}")
    caps = [capture_line(f"{salt}-d{i}", start + dt.timedelta(minutes=i % 60),
                         {"fare_amount": round(rng.uniform(60, 90), 2), "passenger_count": rng.randint(1, 4)}, {"score": 0.5})
            for i in range(200)]
    stack.put(*stack.key("CAPTURE_S3_URI", f"{endpoint}/AllTraffic/{hour_path(start)}/00-00-000-d.jsonl"), "\n".join(caps) + "\n")
    out = stack.invoke(env, start, end)
    [w] = out["windows"]
    assert w["status"] in ("Completed", "CompletedWithViolations"), w
    assert out["baseline"]["dataQuality"] is True, out["baseline"]
    assert w["counts"]["records_ground_truth"] == 0
    fare, count = stack.alarms["DriftAlarm1"], stack.alarms["DriftAlarm2"]
    assert (fare["MetricName"], fare["Namespace"]) == ("feature_baseline_drift_fare_amount", "aws/sagemaker/Endpoints/data-metrics")
    [drift] = stack.watched(fare, start, end)
    assert breaches(fare, drift), drift
    # The run's own report holds the same figure.
    bucket, _, key = w["reports"]["summary"][len("s3://"):].partition("/")
    summary = json.loads(aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert re.search(r'"feature_baseline_drift_fare_amount": ?([0-9.e-]+)', json.dumps(summary)), "drift not in the summary"
    assert float(re.search(r'"feature_baseline_drift_fare_amount": ?([0-9.e-]+)', json.dumps(summary)).group(1)) == pytest.approx(drift)
    [calm] = stack.watched(count, start, end)
    assert not breaches(count, calm), calm
    # No problem type: the record counts are in the data namespace (the dashboard's records widget).
    assert aws["cloudwatch"].list_metrics(Namespace="aws/sagemaker/Endpoints/data-metrics", MetricName="records_captured",
                                          Dimensions=fare["Dimensions"])["Metrics"]
    for a in (fare, count):
        stack.alarm_is_accepted(a)
    stack.assert_reads_were_granted()


# ------------------------------------------------------------------------------------------ staging
def staging_env(overrides: dict) -> dict[str, str] | None:
    ev, t = rendered(overrides)
    if not ev.resource_enabled("CustomMetricsStagingFunction"):
        return None
    return {k: str(v) for k, v in ev.value(t["Resources"]["CustomMetricsStagingFunction"]["Properties"]["Environment"]["Variables"]).items()}


def test_staging_is_monitored_against_its_own_package_with_its_own_dimensions():
    """Issue 13 item 3: production and staging are both monitored, each as its own endpoint (its own
    ENDPOINT_NAME, hence Endpoint dimension, report folder and served package), on the schedule; staging's
    labels only from StagingGroundTruthPrefix (else data quality only); both may read what their endpoint serves."""
    prod, staging = function_env({}), staging_env({})
    assert prod["ENDPOINT_NAME"] == "churn-prod" and staging["ENDPOINT_NAME"] == "churn-staging"
    assert "GROUND_TRUTH_S3_URI" not in staging and staging["PROBLEM_TYPE"] == ""
    ev, t = rendered({})
    assert ev.resource_enabled("CustomMetricsStagingScheduleRule")
    target = ev.value(t["Resources"]["CustomMetricsStagingScheduleRule"]["Properties"]["Targets"])[0]
    assert target["Arn"] == ev.get_att("CustomMetricsStagingFunction", "Arn")
    stmts = [s for pol in ev.value(t["Resources"]["CustomMetricsStagingFunction"]["Properties"]["Policies"]) for s in pol["Statement"]]
    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    assert allows(stmts, "sagemaker:DescribeEndpoint", f"{arn}:endpoint/churn-staging")
    assert not allows(stmts, "sagemaker:DescribeEndpoint", f"{arn}:endpoint/churn-prod")
    assert allows(statements({}), "sagemaker:DescribeEndpoint", f"{arn}:endpoint/churn-prod")
    assert allows(statements({}), "sagemaker:DescribeModel", f"{arn}:model/driftloop-demo-3-abc")
    assert not allows(stmts, "s3:GetObject", "arn:aws:s3:::driftloop-databucket-generated/ground-truth/churn/x")
    # Staging labels: model quality of staging and its own upload trigger.
    labelled = staging_env({"StagingGroundTruthPrefix": "ground-truth/churn-staging"})
    assert labelled["GROUND_TRUTH_S3_URI"] == "s3://driftloop-databucket-generated/ground-truth/churn-staging"
    assert labelled["PROBLEM_TYPE"] == prod["PROBLEM_TYPE"] != ""
    ev, _ = rendered({"StagingGroundTruthPrefix": "ground-truth/churn-staging"})
    assert ev.resource_enabled("StagingGroundTruthRule")
    # Production off (custom-metrics then monitors staging itself), batch transform or opted out: none.
    for off in ({"ProductionEndpointName": ""}, BATCH, {"MonitorStaging": "false"}):
        assert staging_env(off) is None, off
    assert function_env({"ProductionEndpointName": ""})["ENDPOINT_NAME"] == "churn-staging"
    assert function_env({"FeatureNames": "fare,passengers"})["FEATURE_NAMES"] == "fare,passengers"
    assert "FEATURE_NAMES" not in function_env({})


def test_prediction_baseline_parameters_reach_both_custom_metrics_functions():
    """Issue 16 item 2 in custom-metrics: PredictionBaselineKey (in the model artifacts bucket, which
    both functions may read) and PredictionFeature become PREDICTION_BASELINE_S3_URI and
    PREDICTION_FEATURE of production's and staging's function alike; unset, neither is set (each
    served package's own driftloop:prediction-baseline applies)."""
    params = {"PredictionBaselineKey": "churn/prediction_statistics.json", "PredictionFeature": "_c0"}
    ev, t = rendered(params)
    bucket = ev.params["ModelArtifactsBucketName"]
    for env in (function_env(params), staging_env(params)):
        assert env["PREDICTION_BASELINE_S3_URI"] == f"s3://{bucket}/churn/prediction_statistics.json"
        assert env["PREDICTION_FEATURE"] == "_c0"
    for env in (function_env({}), staging_env({})):
        assert "PREDICTION_BASELINE_S3_URI" not in env and "PREDICTION_FEATURE" not in env
    for lid in ("CustomMetricsFunction", "CustomMetricsStagingFunction"):
        stmts = [s for pol in ev.value(t["Resources"][lid]["Properties"]["Policies"]) for s in pol["Statement"]]
        assert allows(stmts, "s3:GetObject", f"arn:aws:s3:::{bucket}/churn/prediction_statistics.json"), lid
    for bad in ("/leading-slash.json", "has space.json"):
        assert not re.fullmatch(t["Parameters"]["PredictionBaselineKey"]["AllowedPattern"], bad), bad
    assert not re.fullmatch(t["Parameters"]["PredictionFeature"]["AllowedPattern"], " _c0")
