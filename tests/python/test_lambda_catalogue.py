"""Issue 15 end to end, as the functions run in a stack: one deployment — one environment per
function, the same for every model, naming the model catalogue (CATALOGUE_S3_URI, one S3 object) —
and three model groups with different problem types (A binary classification, B regression, C
multiclass classification). The real deploy-on-approval, retrain-on-alarm and custom-metrics
binaries run under `cargo lambda watch` (infra/tools/lambda_watch.py) against the emulator and are
invoked with `cargo lambda invoke`, as the other test_lambda_* tests do.

* approving a package of group B deploys B's endpoint only (A's and C's endpoints keep their
  configs);
* drift on A's endpoint — its accuracy, published by the scheduled custom-metrics run, below its
  alarm's threshold; the alarm's state change delivered twice — starts A's pipeline once, and
  neither B's nor C's;
* C's windows are evaluated by every scheduled run through both (and B's, before B serves, as
  NoData), and a label upload under C's ground-truth prefix recomputes C's window only;
* a fourth model added to the catalogue (an S3 upload: no function restarted, no environment
  changed) is monitored by the next scheduled run; a broken upload fails the run with the model
  and the field, and the fixed one is served again.

The windows are real recent hours (the functions publish no metric older than CloudWatch's two
weeks); every name carries the run's id, so runs do not see each other's models.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid

import pytest

from lambda_watch import emulator_clients, REPO, Watch, emulator_env

BUCKET = "driftloop-catalogue-e2e"
EVENTS = REPO / "events"
ROLE = "arn:aws:iam::123456789012:role/driftloop-catalogue-e2e"
NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
CLASSES = ["billing", "login", "shipping"]


@pytest.fixture(scope="module")
def env():
    return emulator_env()


@pytest.fixture(scope="module")
def aws(env):
    clients = emulator_clients(env, ("s3", "sagemaker", "cloudwatch", "events", "sqs"))
    try:
        clients["s3"].create_bucket(Bucket=BUCKET)
    except clients["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    return clients


class Model:
    """One catalogue entry and the names it owns."""

    def __init__(self, run: str, key: str, problem: str, metric: str, threshold: float, comparison: str):
        self.key, self.problem, self.metric, self.threshold, self.comparison = key, problem, metric, threshold, comparison
        self.group = f"{run}-{key}"
        self.endpoint = f"{self.group}-staging"
        self.pipeline = f"{self.group}-build"
        self.schedule = f"{self.group}-quality"
        self.alarm = f"{self.group}-{metric}"
        self.labels_prefix = f"{run}/labels/{key}"
        self.capture_uri = f"s3://{BUCKET}/{run}/capture"

    def entry(self) -> dict:
        problem = {"type": self.problem}
        if self.problem == "BinaryClassification":
            problem["probabilityThreshold"] = 0.5
        return {
            "group": self.group,
            "problem": problem,
            "capture": {"destinationS3Uri": self.capture_uri, "samplingPercentage": 100},
            "stages": {"staging": {"endpointName": self.endpoint}},
            "monitoring": {"stages": ["staging"], "groundTruthS3Uri": f"s3://{BUCKET}/{self.labels_prefix}",
                           "windowMinutes": 60, "scheduleName": self.schedule},
            "alarms": [{"name": self.alarm, "metric": self.metric, "stage": "staging", "threshold": "external"}],
            "retraining": {"pipeline": self.pipeline, "parameters": {"Model": self.key}},
        }


def capture_line(event_id: str, when: dt.datetime, features: str, output: str) -> str:
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": features, "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": output, "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0",
    })


def label_line(event_id: str, value: str) -> str:
    return json.dumps({"groundTruthData": {"data": value, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


def seed(aws, m: Model, hour: dt.datetime, n: int, wrong_every: int, rng: random.Random) -> str:
    """`n` predictions of `m` in `hour` and their labels, one in `wrong_every` wrong (regression:
    off by 3 instead of 0.1); returns the label object's key."""
    capture, labels = [], []
    for i in range(n):
        eid = f"{m.group}-{hour:%H}-{i}-{rng.getrandbits(32):08x}"
        wrong = i % wrong_every == 0
        if m.problem == "BinaryClassification":
            score = 0.9 if i % 2 == 0 else 0.1
            truth = int((score > 0.5) != wrong)
            output, label = f"{score}", str(truth)
        elif m.problem == "Regression":
            prediction = 10.0 + (i % 7)
            output, label = f"{prediction:.3f}", f"{prediction + (3.0 if wrong else 0.1):.3f}"
        else:
            predicted = CLASSES[i % 3]
            output, label = predicted, CLASSES[(i + 1) % 3] if wrong else predicted
        when = hour + dt.timedelta(seconds=int(3600 * i / n))
        capture.append(capture_line(eid, when, f"{i % 11},{(i * 7) % 5}", output))
        labels.append(label_line(eid, label))
    path = f"{hour:%Y/%m/%d/%H}"
    aws["s3"].put_object(Bucket=BUCKET, Key=f"{m.capture_uri[len(f's3://{BUCKET}/'):]}/{m.endpoint}/AllTraffic/{path}/00-00-000-{uuid.uuid4().hex[:8]}.jsonl",
                         Body=("\n".join(capture) + "\n").encode())
    key = f"{m.labels_prefix}/{path}/labels-{uuid.uuid4().hex[:8]}.jsonl"
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=("\n".join(labels) + "\n").encode())
    return key


def call(w: Watch, event: dict) -> dict:
    rc, out, err = w.invoke(w.package, data=event, timeout=240)
    assert rc == 0, f"{w.package}: {out}\n{err[-3000:]}"
    return json.loads(out)


def windows(out: dict) -> dict[str, list[dict]]:
    """custom-metrics' windows by endpoint: its catalogue fan-out's `targets` (the environment's
    model is in the catalogue, so no top-level `windows`)."""
    assert out.get("windows") == [], out
    found: dict[str, list[dict]] = {}
    for target in out.get("targets") or []:
        assert target["status"] != "Failed", target
        if target["status"] == "Ignored":
            continue
        found.setdefault(target["target"]["endpointName"], []).extend(target["windows"])
    return found


def scheduled(hour_end: dt.datetime) -> dict:
    event = json.loads((EVENTS / "custom-metrics-schedule.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["time"] = (hour_end + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def approval(aws, m: Model, arn: str) -> dict:
    event = json.loads((EVENTS / "deploy-package-approved.json").read_text())
    d = aws["sagemaker"].describe_model_package(ModelPackageName=arn)
    event["id"] = str(uuid.uuid4())
    event["time"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = [arn]
    event["detail"].update({"ModelPackageGroupName": m.group, "ModelPackageArn": arn, "ModelPackageVersion": d["ModelPackageVersion"],
                            "ModelPackageName": d.get("ModelPackageName", m.group)})
    return event


def alarm_event(m: Model, value: float, when: dt.datetime) -> dict:
    event = json.loads((EVENTS / "retrain-alarm-eventbridge.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{m.alarm}"]
    detail = event["detail"]
    detail["alarmName"] = m.alarm
    detail["state"]["reason"] = f"Threshold Crossed: 1 out of the last 1 datapoints [{value}] was less than the threshold ({m.threshold})."
    detail["state"]["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    detail["configuration"]["metrics"][0]["metricStat"] = {
        "metric": {"namespace": NAMESPACE, "name": m.metric, "dimensions": {"Endpoint": m.endpoint, "MonitoringSchedule": m.schedule}},
        "period": 3600, "stat": "Average"}
    return event


def metric(aws, m: Model, hour: dt.datetime) -> float | None:
    out = aws["cloudwatch"].get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": m.metric,
            "Dimensions": [{"Name": "Endpoint", "Value": m.endpoint}, {"Name": "MonitoringSchedule", "Value": m.schedule}]},
            "Period": 3600, "Stat": "Average"}}],
        StartTime=hour, EndTime=hour + dt.timedelta(hours=1))
    values = out["MetricDataResults"][0]["Values"]
    return values[-1] if values else None


def endpoint_config(aws, m: Model) -> str | None:
    try:
        return aws["sagemaker"].describe_endpoint(EndpointName=m.endpoint)["EndpointConfigName"]
    except aws["sagemaker"].exceptions.ClientError:
        return None


def executions(aws, m: Model) -> int:
    return len(aws["sagemaker"].list_pipeline_executions(PipelineName=m.pipeline)["PipelineExecutionSummaries"])


def register(aws, m: Model, version: int) -> str:
    """A group (at the first version), its pipeline, and a pending package; returns its ARN."""
    sm = aws["sagemaker"]
    if version == 1:
        sm.create_model_package_group(ModelPackageGroupName=m.group)
        sm.create_pipeline(PipelineName=m.pipeline, RoleArn=ROLE, PipelineDefinition=json.dumps(
            {"Version": "2020-12-01", "Parameters": [{"Name": "Model", "Type": "String", "DefaultValue": "none"}], "Steps": []}))
    out = sm.create_model_package(
        ModelPackageGroupName=m.group, ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={"Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                                                "ModelDataUrl": f"s3://{BUCKET}/models/{m.group}/{version}/model.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        CustomerMetadataProperties={"ModelName": f"{m.group}-{version}"})
    return out["ModelPackageArn"]


def approve(aws, deploy: Watch, m: Model, arn: str) -> dict:
    aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    return call(deploy, approval(aws, m, arn))


def test_three_models_one_stack_and_a_fourth_without_a_stack_change(env, aws):
    run = "cat-" + uuid.uuid4().hex[:8]
    rng = random.Random(run)
    a = Model(run, "a", "BinaryClassification", "accuracy", 0.8, "LessThanThreshold")
    b = Model(run, "b", "Regression", "rmse", 2.0, "GreaterThanThreshold")
    c = Model(run, "c", "MulticlassClassification", "accuracy", 0.6, "LessThanThreshold")
    d = Model(run, "d", "BinaryClassification", "accuracy", 0.8, "LessThanThreshold")
    catalogue_key = f"{run}/config/catalogue.json"

    def upload(models: list[Model]) -> None:
        doc = {"version": 1, "models": [m.entry() for m in models]}
        aws["s3"].put_object(Bucket=BUCKET, Key=catalogue_key, Body=json.dumps(doc).encode())

    upload([a, b, c])
    aws["events"].create_event_bus(Name=run)
    for m in (a, b, c):
        aws["cloudwatch"].put_metric_alarm(
            AlarmName=m.alarm, Namespace=NAMESPACE, MetricName=m.metric, Statistic="Average", Period=3600,
            EvaluationPeriods=1, Threshold=m.threshold, ComparisonOperator=m.comparison, TreatMissingData="ignore",
            Dimensions=[{"Name": "Endpoint", "Value": m.endpoint}, {"Name": "MonitoringSchedule", "Value": m.schedule}])

    # One stack: every function's environment names the catalogue, and (as the template's
    # parameters do) the stack's own model — A, which the catalogue names too, so its entry wins.
    stack = {
        "CATALOGUE_S3_URI": f"s3://{BUCKET}/{catalogue_key}",
        "MODEL_PACKAGE_GROUP_NAME": a.group,
        "EVENT_BUS_NAME": run,
        "AWS_LAMBDA_LOG_LEVEL": "info",
    }
    deploy_env = {**stack, "SAGEMAKER_EXECUTION_ROLE_ARN": ROLE, "STAGING_ENDPOINT_NAME": a.endpoint, "MAX_TRIGGER_AGE": "0"}
    retrain_env = {**stack, "PIPELINE_NAME": a.pipeline, "COOLDOWN": "0", "MAX_TRIGGER_AGE": "0", "METRICS_NAMESPACE": "driftloop"}
    metrics_env = {**stack, "CAPTURE_S3_URI": a.capture_uri, "REPORT_S3_URI": f"s3://{BUCKET}/{run}/reports",
                   "ENDPOINT_NAME": a.endpoint, "PROBLEM_TYPE": a.problem, "GROUND_TRUTH_S3_URI": f"s3://{BUCKET}/{a.labels_prefix}",
                   "MONITORING_SCHEDULE_NAME": a.schedule, "METRICS_NAMESPACE": NAMESPACE, "DEDUP_QUIET_SECONDS": "0"}
    watches = [Watch("deploy-on-approval", env, deploy_env), Watch("retrain-on-alarm", env, retrain_env),
               Watch("custom-metrics", env, metrics_env)]
    for w in watches:
        w.start()
    try:
        for w in watches:
            w.wait_ready()
        deploy, retrain, metrics = watches
        pids = [w.proc.pid for w in watches]

        # A and C serve their first packages.
        for m in (a, c):
            out = approve(aws, deploy, m, register(aws, m, 1))
            assert out["group"] == m.group and out["settings"].startswith("catalogue s3://"), out
            assert [(s["endpoint"], s["action"]) for s in out["stages"] if s["action"] != "nothing_to_deploy"] == [(m.endpoint, "created")], out
        configs = {m.key: endpoint_config(aws, m) for m in (a, c)}
        assert endpoint_config(aws, b) is None

        now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        h0, h1, h2, h3 = (now - dt.timedelta(hours=k) for k in (4, 3, 2, 1))

        # Hour 0, before B serves: one scheduled run evaluates every catalogue endpoint's window —
        # A's and C's with their traffic, B's (no capture yet) as NoData, not a failure.
        for m in (a, c):
            seed(aws, m, h0, 30, 10, rng)
        by = windows(call(metrics, scheduled(h0 + dt.timedelta(hours=1))))
        assert [by[m.endpoint][0]["status"] for m in (a, b, c)] == ["Completed", "NoData", "Completed"], by
        assert by[c.endpoint][0]["counts"]["records_matched"] == 30, by

        # Approving B's package deploys B's endpoint only.
        out = approve(aws, deploy, b, register(aws, b, 1))
        assert out["group"] == b.group and out.get("ignored") is None, out
        touched = [s["endpoint"] for s in out["stages"] if s["action"] in ("created", "updated")]
        assert touched == [b.endpoint], out
        assert endpoint_config(aws, b) is not None
        assert {m.key: endpoint_config(aws, m) for m in (a, c)} == configs, "B's approval redeployed A's or C's endpoint"
        configs[b.key] = endpoint_config(aws, b)

        # Hour 1: every model healthy; one scheduled run evaluates each endpoint's window.
        for m in (a, b, c):
            seed(aws, m, h1, 60, 10, rng)
        out = call(metrics, scheduled(h1 + dt.timedelta(hours=1)))
        by = windows(out)
        for m in (a, b, c):
            [win] = by.get(m.endpoint, [None])
            assert win is not None and win["status"] == "Completed", (m.key, out)
            assert win["counts"]["records_matched"] == 60, (m.key, win)
            value = metric(aws, m, h1)
            assert value is not None, f"no {m.metric} of {m.endpoint} for {h1}"
            assert (value >= m.threshold) if m.comparison == "LessThanThreshold" else (value <= m.threshold), (m.key, value)
        assert by[a.endpoint][0]["metrics"]["accuracy"] == pytest.approx(0.9)
        assert by[c.endpoint][0]["metrics"]["accuracy"] == pytest.approx(0.9)
        assert by[b.endpoint][0]["metrics"]["rmse"] > 0.1

        # Hour 2: A drifts (half its predictions wrong), B and C do not.
        seed(aws, a, h2, 60, 2, rng)
        for m in (b, c):
            seed(aws, m, h2, 60, 10, rng)
        out = call(metrics, scheduled(h2 + dt.timedelta(hours=1)))
        by = windows(out)
        assert all(by.get(m.endpoint) and by[m.endpoint][0]["status"] == "Completed" for m in (a, b, c)), out
        drifted = metric(aws, a, h2)
        assert drifted is not None and drifted < a.threshold, drifted
        aws["cloudwatch"].set_alarm_state(AlarmName=a.alarm, StateValue="ALARM", StateReason=f"accuracy {drifted} < {a.threshold}")
        event = alarm_event(a, drifted, h2 + dt.timedelta(hours=1, minutes=2))
        first, again = call(retrain, event), call(retrain, event)  # EventBridge delivers at least once
        assert first["outcome"] == "Started" and first["model"]["group"] == a.group, first
        assert first["pipelineName"] == a.pipeline, first
        assert again["outcome"] != "Started", again
        assert [executions(aws, m) for m in (a, b, c)] == [1, 0, 0]

        # Hour 3: C's labels land late; their upload recomputes C's window only.
        key = seed(aws, c, h3, 60, 10, rng)
        upload_event = json.loads((EVENTS / "custom-metrics-ground-truth-created.json").read_text())
        upload_event["id"] = str(uuid.uuid4())
        upload_event["detail"]["bucket"]["name"] = BUCKET
        upload_event["detail"]["object"]["key"] = key
        upload_event["resources"] = [f"arn:aws:s3:::{BUCKET}"]
        out = call(metrics, upload_event)
        by = windows(out)
        assert list(by) == [c.endpoint], out
        assert by[c.endpoint][0]["window"]["start"].startswith(h3.strftime("%Y-%m-%dT%H:00:00")), out

        # A fourth model: one upload to the catalogue, nothing restarted; the next scheduled run
        # monitors it beside the others.
        upload([a, b, c, d])
        aws["sagemaker"].create_model_package_group(ModelPackageGroupName=d.group)
        for m in (a, b, d):
            seed(aws, m, h3, 40, 10, rng)
        out = call(metrics, scheduled(h3 + dt.timedelta(hours=1)))
        by = windows(out)
        assert set(by) == {a.endpoint, b.endpoint, c.endpoint, d.endpoint}, out
        assert by[d.endpoint][0]["status"] == "Completed" and by[d.endpoint][0]["counts"]["records_matched"] == 40, out
        assert metric(aws, d, h3) == pytest.approx(0.9)
        assert by[c.endpoint][0]["status"] in ("Completed",), out
        assert metric(aws, c, h3) is not None

        # A broken upload (D's window does not divide a day) fails the next run with the model and
        # the field; the fixed upload is served again.
        broken = {"version": 1, "models": [m.entry() for m in (a, b, c, d)]}
        broken["models"][3]["monitoring"]["windowMinutes"] = 7
        aws["s3"].put_object(Bucket=BUCKET, Key=catalogue_key, Body=json.dumps(broken).encode())
        rc, out, err = metrics.invoke(metrics.package, data=scheduled(now), timeout=240)
        assert rc != 0, out
        flat = re.sub(r"[\s│]+", "", out + err)  # cargo lambda wraps the message in a box
        assert "Permanent.InvalidCatalogue" in flat, out + err
        assert re.sub(r"\s+", "", f'models[3] (group "{d.group}").monitoring.windowMinutes: 7: a window divides a day') in flat, out + err
        upload([a, b, c, d])
        assert set(windows(call(metrics, scheduled(h3 + dt.timedelta(hours=1))))) == {a.endpoint, b.endpoint, c.endpoint, d.endpoint}

        # Through it all: C monitored in every run, never redeployed, never retrained; the same
        # processes, the same environment.
        assert {m.key: endpoint_config(aws, m) for m in (a, b, c)} == configs
        assert [executions(aws, m) for m in (a, b, c)] == [1, 0, 0]
        assert [w.proc.pid for w in watches] == pids and all(w.proc.poll() is None for w in watches)
    finally:
        for w in watches:
            w.stop()
