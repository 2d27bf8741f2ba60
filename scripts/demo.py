#!/usr/bin/env python3
"""driftloop's whole loop on one machine: drift → alarm → retrain → approve → deploy, on the emulator.

Run through `scripts/demo` (which sets up the venv, builds the functions and starts the emulator).
What it does:

* creates in the emulator what infra/template.yaml defines — its EventBridge rules with the
  template's own event patterns (SQS queues stand in for the Lambda targets and are drained into the
  real function binaries running under `cargo lambda watch`), the alarm on the model-quality metric,
  the SageMaker pipeline and the model package group;
* plays a story with generated data, hour by simulated hour: v1 approved and deployed with data
  capture; healthy traffic; drifted traffic until the metric crosses the threshold and the alarm
  fires (evaluated from GetMetricData as CloudWatch would, its state change put on the bus *twice*);
  retrain-on-alarm starts the pipeline exactly once; the pipeline's run is simulated by registering
  v2 (with its reference calibration, `driftloop-metrics calibrate` on its validation set); v2
  approved → deploy-on-approval updates the endpoint → the metric recovers; then a new segment whose
  labels have not landed: custom-metrics publishes `estimated_accuracy` from the served package's
  calibration, the alarm on it fires and retrain-on-alarm starts the pipeline once more;
* prints a timeline with each step's latency (cold and warm invocations), a summary, and writes a
  dashboard-like SVG (metric, threshold, retraining and deployment marks) plus timeline.json.

It exits non-zero when the story does not happen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "infra" / "tools"))  # the project's Python tools, shared with tests/python
import cfn  # noqa: E402  - the CloudFormation evaluator the infra tests trust
from lambda_watch import Watch, WatchError  # noqa: E402  - the lambda tests' `cargo lambda watch` harness

UTC = dt.timezone.utc


# ----------------------------------------------------------------------------------------------
# Timeline


@dataclass
class Entry:
    at: float
    sim_time: str
    kind: str
    message: str
    latency_ms: float | None = None
    cold: bool | None = None


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.entries: list[Entry] = []
        self.sim_now: dt.datetime | None = None

    def log(self, kind: str, message: str, latency_ms: float | None = None, cold: bool | None = None) -> None:
        e = Entry(time.monotonic() - self.t0, self.sim_now.strftime("%H:%M") if self.sim_now else "--:--", kind, message, latency_ms, cold)
        self.entries.append(e)
        lat = ""
        if latency_ms is not None:
            lat = f"  [{latency_ms:7.1f} ms{' cold' if cold else ''}]"
        print(f"{e.at:7.1f}s  sim {e.sim_time}  {kind:<10} {message}{lat}", flush=True)

    def step(self, title: str) -> None:
        print(f"\n── {title} " + "─" * max(0, 72 - len(title)), flush=True)
        self.log("step", title)


class StoryFailed(Exception):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StoryFailed(what)


# ----------------------------------------------------------------------------------------------
# The template's event rules and alarm, read from infra/template.yaml by infra/tools/cfn.py


@dataclass
class Rule:
    name: str
    function: str            # binary name
    pattern: dict[str, Any]


def template_rules(t: dict) -> list[Rule]:
    """Every pattern-based EventBridge rule of the template that targets one of the functions, its
    pattern evaluated by infra/tools/cfn.py under the demo's parameters."""
    ev = cfn.Evaluator(t, cfn.parameter_values(t, TEMPLATE_PARAMS))
    binaries = {lid: r["Metadata"]["BuildProperties"]["Binary"]
                for lid, r in ev.resources("AWS::Serverless::Function").items()}
    rules: list[Rule] = []
    for lid, rule in cfn.event_patterns(t, TEMPLATE_PARAMS).items():
        if rule["pattern"] is None:
            continue  # schedules: the demo plays EventBridge Scheduler and invokes directly
        rules += [Rule(lid, binaries[target], rule["pattern"]) for target in rule["targets"] if target in binaries]
    return rules


def template_alarm(t: dict, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template's model-quality alarm (under the demo's parameters, with `params` on top), as
    PutMetricAlarm arguments."""
    ev = cfn.Evaluator(t, cfn.parameter_values(t, {**TEMPLATE_PARAMS, **(params or {})}))
    alarms = ev.resources("AWS::CloudWatch::Alarm")
    expect("ModelQualityAlarm" in alarms, "infra/template.yaml defines no ModelQualityAlarm")
    props = ev.value(alarms["ModelQualityAlarm"]["Properties"])
    keys = ["AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period",
            "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData"]
    args = {k: props[k] for k in keys if k in props}
    for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if k in args:
            args[k] = int(args[k])
    args["Threshold"] = float(args["Threshold"])
    return args


# ----------------------------------------------------------------------------------------------
# The story's world: data generation and the simulated endpoint


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# The "models": v1 learned y ~ x1 + x2; after the drift the world is y ~ x1 - x2, which v2 learns.
MODELS: dict[int, Callable[[float, float], float]] = {
    1: lambda x1, x2: sigmoid(3.0 * (x1 + x2)),
    2: lambda x1, x2: sigmoid(3.0 * (x1 - x2)),
}


def world_label(rng: random.Random, x1: float, x2: float, drifted: bool) -> int:
    z = 3.0 * ((x1 - x2) if drifted else (x1 + x2))
    return 1 if rng.random() < sigmoid(z) else 0


@dataclass
class Story:
    args: argparse.Namespace
    tl: Timeline
    env: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)
    functions: dict[str, Watch] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)       # binary → queue URL
    metric_points: list[tuple[dt.datetime, float]] = field(default_factory=list)
    marks: list[tuple[dt.datetime, str]] = field(default_factory=list)
    estimate_points: list[tuple[dt.datetime, float]] = field(default_factory=list)
    # Each alarm's state as the demo last evaluated it (a new alarm starts in INSUFFICIENT_DATA).
    alarm_states: dict[str, str] = field(default_factory=lambda: {ALARM: "INSUFFICIENT_DATA", ESTIMATE_ALARM: "INSUFFICIENT_DATA"})
    pipeline_starts: int = 0
    estimate_starts: int = 0           # executions the estimated_accuracy alarm started
    metrics_cli: Path | None = None    # driftloop-metrics, for the reference calibrations

    @property
    def alarm_state(self) -> str:
        """The accuracy alarm's state."""
        return self.alarm_states[ALARM]



# ----------------------------------------------------------------------------------------------
# The story


GROUP = "driftloop-demo"
PIPELINE = "driftloop-demo-build"
STAGING = "driftloop-demo-staging"
SCHEDULE = "driftloop-demo-model-quality"
METRIC = "accuracy"
NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
THRESHOLD = 0.7
ALARM = "driftloop.driftloop-demo-model-quality-accuracy"  # the template names it <stack>.<AlarmNamePrefix>model-quality-<MetricName> (stack "driftloop", as infra/tools/cfn.py renders it)
# The label-free estimate custom-metrics publishes from the served package's reference calibration,
# and its alarm: the template's ModelQualityAlarm rendered with MetricName=estimated_accuracy.
ESTIMATE_METRIC = "estimated_accuracy"
ESTIMATE_ALARM = "driftloop.driftloop-demo-model-quality-estimated_accuracy"
CALIBRATION_KEY = "driftloop:calibration"  # the package's CustomerMetadataProperties key naming it
VALIDATION_RECORDS = 4000                  # the simulated training pipeline's validation set
ROLE = "arn:aws:iam::123456789012:role/driftloop-demo-sagemaker"
BUCKET = "driftloop-demo-data"
CAPTURE_URI = f"s3://{BUCKET}/capture"
GROUND_TRUTH_URI = f"s3://{BUCKET}/ground-truth"
REPORT_URI = f"s3://{BUCKET}/reports"

# infra/template.yaml's parameters as the demo sets them.
TEMPLATE_PARAMS = {
    "ModelPackageGroupName": GROUP,
    "PipelineName": PIPELINE,
    "StagingEndpointName": STAGING,
    "ProductionEndpointName": "",  # the demo plays staging only
    "MonitoringScheduleName": SCHEDULE,
    "MetricName": METRIC,
    "MetricsNamespace": NAMESPACE,
    "AlarmThreshold": THRESHOLD,
    "AlarmComparisonOperator": "LessThanThreshold",
    "AlarmNamePrefix": "driftloop-demo-",
    "DataBucketName": BUCKET,
    "CapturePrefix": "capture",
    "GroundTruthPrefix": "ground-truth",
    "ReportPrefix": "reports",
    "ProblemType": "BinaryClassification",
    "SageMakerExecutionRoleArn": ROLE,
    "EventBusName": "default",
}


def function_env(base: dict[str, str], binary: str) -> dict[str, str]:
    common = {
        "AWS_LAMBDA_LOG_FORMAT": "Text",
        "RUST_LOG": "info",
        "MODEL_PACKAGE_GROUP_NAME": GROUP,
        "EVENT_BUS_NAME": "default",
    }
    own = {
        "get-approved-model": {},
        "deploy-on-approval": {
            "SAGEMAKER_EXECUTION_ROLE_ARN": ROLE,
            "STAGING_ENDPOINT_NAME": STAGING,
            "STAGING_INSTANCE_TYPE": "ml.m5.large",
            "DATA_CAPTURE_S3_URI": CAPTURE_URI,
            "DATA_CAPTURE_SAMPLING_PERCENTAGE": "100",
        },
        "retrain-on-alarm": {
            "PIPELINE_NAME": PIPELINE,
            # Which alarm starts which pipeline: here both the accuracy alarm (PIPELINE_NAME, the
            # default) and the estimate's start the one build pipeline.
            "ALARM_PIPELINES": json.dumps({ESTIMATE_ALARM: PIPELINE}),
            # The story compresses hours into seconds while the functions read the real clock: a
            # cooldown of hours would span the whole run and skip step 6's retrain (simulated hours
            # after the first). Redeliveries are still caught by the trigger's identity
            # (AlreadyStarted), which is what the story checks.
            "COOLDOWN": "0",
            "METRICS_NAMESPACE": "driftloop",
        },
        "custom-metrics": {
            "CAPTURE_S3_URI": CAPTURE_URI,
            "GROUND_TRUTH_S3_URI": GROUND_TRUTH_URI,
            "REPORT_S3_URI": REPORT_URI,
            "ENDPOINT_NAME": STAGING,
            "VARIANT_NAME": "AllTraffic",
            "PROBLEM_TYPE": "BinaryClassification",
            "PROBABILITY_THRESHOLD": "0.5",
            "METRICS_NAMESPACE": NAMESPACE,
            "MONITORING_SCHEDULE_NAME": SCHEDULE,
            "WINDOW_MINUTES": "60",
            "WINDOW_OFFSET_MINUTES": "0",
            "DEDUP_QUIET_SECONDS": "1",
        },
    }[binary]
    return {**base, **common, **own}


class World:
    """The emulator's AWS, through boto3."""

    def __init__(self) -> None:
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.sm = boto3.client("sagemaker", region_name=region)
        self.s3 = boto3.client("s3", region_name=region)
        self.events = boto3.client("events", region_name=region)
        self.sqs = boto3.client("sqs", region_name=region)
        self.cw = boto3.client("cloudwatch", region_name=region)


def iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def put_event(w: World, source: str, detail_type: str, detail: dict, when: dt.datetime, resources: list[str] | None = None) -> None:
    out = w.events.put_events(Entries=[{
        "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail),
        "Resources": resources or [], "Time": when, "EventBusName": "default",
    }])
    expect(out.get("FailedEntryCount", 0) == 0, f"PutEvents failed: {out}")


def wire(story: Story, w: World, template: dict) -> None:
    """The template's rules on the emulator's bus, each targeting an SQS queue per function."""
    rules = template_rules(template)
    expect(bool(rules), "infra/template.yaml defines no pattern rules for the functions")
    for rule in rules:
        binary = rule.function
        if binary not in story.queues:
            url = w.sqs.create_queue(QueueName=f"demo-{binary}")["QueueUrl"]
            story.queues[binary] = url
        arn = w.sqs.get_queue_attributes(QueueUrl=story.queues[binary], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        w.events.put_rule(Name=rule.name[:64], EventPattern=json.dumps(rule.pattern), State="ENABLED")
        w.events.put_targets(Rule=rule.name[:64], Targets=[{"Id": "fn", "Arn": arn}])
        story.tl.log("wire", f"rule {rule.name} → {binary}  pattern {json.dumps(rule.pattern)[:90]}")


def drain(story: Story, w: World, expect_at_least: dict[str, int] | None = None, rounds: int = 3) -> dict[str, list[Any]]:
    """Delivers every queued event to its function; returns the function outputs by binary."""
    outputs: dict[str, list[Any]] = {b: [] for b in story.queues}
    idle = 0
    while idle < rounds:
        got = False
        for binary, url in story.queues.items():
            msgs = w.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            for m in msgs:
                got = True
                event = json.loads(m["Body"])
                fn = story.functions[binary]
                ok, out, latency, cold = fn.post(event)
                what = f"{event.get('detail-type')} → {binary}"
                story.tl.log("invoke", f"{what}: {summarize(binary, ok, out)}", latency, cold)
                outputs[binary].append(out if ok else {"error": out})
                w.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        idle = 0 if got else idle + 1
        if not got:
            time.sleep(0.2)
    for binary, n in (expect_at_least or {}).items():
        expect(len(outputs.get(binary, [])) >= n, f"expected {n} deliveries to {binary}, got {len(outputs.get(binary, []))}")
    return outputs


def summarize(binary: str, ok: bool, out: Any) -> str:
    if not ok:
        return f"ERROR {out.get('errorType') if isinstance(out, dict) else out}"
    if not isinstance(out, dict):
        return str(out)[:100]
    if binary == "deploy-on-approval":
        return "; ".join(f"{s['stage']}: {s['action']} v{s.get('packageVersion')}" for s in out.get("stages", []))
    if binary == "retrain-on-alarm":
        if out.get("outcome") == "Started":
            return f"Started {out.get('displayName')}"
        return f"Skipped ({(out.get('skip') or {}).get('code')})"
    if binary == "custom-metrics":
        parts = []
        for win in out.get("windows", []):
            c = win.get("counts") or {}
            m = win.get("metrics") or {}
            what = f"{win['window']['start'][11:16]}-{win['window']['end'][11:16]} {win['status']}"
            if win.get("decision"):
                what += f"/{win['decision']}"
            if c:
                what += f", {c.get('records_matched', 0)} matched, {c.get('records_malformed', 0)} malformed"
            if METRIC in m and win["status"] != "NoData":  # a window without labels publishes no accuracy
                what += f", {METRIC} {m[METRIC]:.3f}"
            parts.append(what + f", {win.get('violationCount', 0)} violations, {win.get('metricsPublished', 0)} datums")
        return "; ".join(parts) or "no window"
    return json.dumps(out)[:140]


def metrics_cli(story: Story) -> Path:
    """driftloop-metrics (the CLI of the metrics engine): $DRIFTLOOP_METRICS_BIN (scripts/test builds
    it), else built here in the story's profile."""
    if story.metrics_cli is None:
        given = os.environ.get("DRIFTLOOP_METRICS_BIN")
        if given and Path(given).is_file():
            story.metrics_cli = Path(given)
        else:
            profile = ["--release"] if story.args.release else []
            cmd = ["cargo", "build", *profile, "-p", "driftloop", "--no-default-features", "--features", "cli", "--bin", "driftloop-metrics"]
            story.tl.log("build", " ".join(cmd))
            subprocess.run(cmd, cwd=REPO, check=True)
            target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
            story.metrics_cli = target / ("release" if story.args.release else "debug") / "driftloop-metrics"
    return story.metrics_cli


def capture_record(x1: float, x2: float, p: float, event_id: str, inference_id: str, t: dt.datetime) -> str:
    """One request as SageMaker's data capture writes it."""
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": f"{x1:.4f},{x2:.4f}", "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": f"{p:.6f}", "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceId": inference_id, "inferenceTime": iso(t)},
        "eventVersion": "0",
    })


def label_record(inference_id: str, label: int) -> str:
    return json.dumps({"groundTruthData": {"data": str(label), "encoding": "CSV"},
                       "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"})


def reference_calibration(story: Story, w: World, version: int) -> str:
    """The simulated training pipeline's last step: model `version`'s reference calibration on its
    labelled validation set (drawn from the world it was trained for), written by `driftloop-metrics
    calibrate` and uploaded beside its baselines; returns its S3 URI (README "Performance before
    labels")."""
    rng = random.Random(story.args.seed * 1000 + version)  # its own draws: the traffic stays as it was
    model, drifted = MODELS[version], version == 2
    with tempfile.TemporaryDirectory(prefix=f"demo-calibration-v{version}-") as tmp:
        d = Path(tmp)
        (d / "capture").mkdir()
        (d / "labels").mkdir()
        capture, labels = [], []
        for i in range(VALIDATION_RECORDS):
            x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
            inference_id = f"validation-v{version}-{i}"
            capture.append(capture_record(x1, x2, model(x1, x2), inference_id, inference_id, dt.datetime(2024, 1, 1, tzinfo=UTC)))
            labels.append(label_record(inference_id, world_label(rng, x1, x2, drifted)))
        (d / "capture" / "validation.jsonl").write_text("\n".join(capture) + "\n")
        (d / "labels" / "validation.jsonl").write_text("\n".join(labels) + "\n")
        cmd = [str(metrics_cli(story)), "calibrate", "--capture", str(d / "capture"), "--ground-truth", str(d / "labels"),
               "--output", str(d / "out")]
        p = subprocess.run(cmd, capture_output=True, text=True)
        expect(p.returncode == 0, f"driftloop-metrics calibrate failed: {p.stderr[-2000:]}")
        body = (d / "out" / "calibration.json").read_bytes()
    cal = json.loads(body)
    key = f"baselines/v{version}/calibration.json"
    w.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    story.tl.log("pipeline", f"v{version}'s reference calibration: {VALIDATION_RECORDS} labelled validation records → "
                             f"{len(cal['counts'])} score bins (driftloop-metrics calibrate) → s3://{BUCKET}/{key}")
    return f"s3://{BUCKET}/{key}"


def register_package(story: Story, w: World, version_hint: int) -> str:
    """Registers model `version_hint` as the training pipeline would: its model-quality baseline and,
    in its customer metadata, its reference calibration (which so follows the served model)."""
    calibration = reference_calibration(story, w, version_hint)
    base = f"s3://{BUCKET}/baselines/v{version_hint}"
    out = w.sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                            "ModelDataUrl": f"s3://{BUCKET}/models/v{version_hint}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
        DriftCheckBaselines={"ModelQuality": {
            "Constraints": {"ContentType": "application/json", "S3Uri": f"{base}/constraints.json"}}},
        CustomerMetadataProperties={"ModelName": f"driftloop-demo-v{version_hint}", CALIBRATION_KEY: calibration},
    )
    return out["ModelPackageArn"]


def approve(story: Story, w: World, arn: str, when: dt.datetime) -> None:
    """Approves a package and emits the event SageMaker emits (the emulator does not)."""
    w.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    d = w.sm.describe_model_package(ModelPackageName=arn)
    detail = {
        "ModelPackageGroupName": d["ModelPackageGroupName"], "ModelPackageVersion": d["ModelPackageVersion"],
        "ModelPackageArn": arn, "ModelPackageName": d.get("ModelPackageName", ""),
        "CreationTime": int(d["CreationTime"].timestamp() * 1000), "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "Approved", "InferenceSpecification": d.get("InferenceSpecification", {}),
    }
    put_event(w, "aws.sagemaker", "SageMaker Model Package State Change", detail, when, [arn])
    story.tl.log("registry", f"v{d['ModelPackageVersion']} approved (event on the bus)")


def serving_version(w: World) -> int | None:
    """Which package version the staging endpoint serves: endpoint → config → model → package."""
    try:
        ep = w.sm.describe_endpoint(EndpointName=STAGING)
    except w.sm.exceptions.ClientError:
        return None
    cfg = w.sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
    model = w.sm.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
    arn = (model.get("PrimaryContainer") or {}).get("ModelPackageName", "")
    return int(arn.rsplit("/", 1)[1]) if arn else None


def traffic(story: Story, w: World, rng: random.Random, hour: dt.datetime, n: int, drifted: bool,
            labels: bool = True, segment: bool = False) -> tuple[int, float]:
    """`n` requests to the endpoint during `hour`: data capture as SageMaker writes it, and (`labels`)
    their labels. `segment`: a new customer segment whose two inputs move together (x2 ≈ x1), where
    the serving model is unsure. Returns the serving version and the hour's realised accuracy."""
    version = serving_version(w)
    expect(version in MODELS, f"the endpoint serves no known model (version {version})")
    model = MODELS[version]
    capture_lines, label_lines, right = [], [], 0
    for i in range(n):
        x1 = rng.gauss(0, 1)
        x2 = x1 + 0.1 * rng.gauss(0, 1) if segment else rng.gauss(0, 1)
        p = model(x1, x2)
        inference_id = str(uuid.UUID(int=rng.getrandbits(128)))
        t = hour + dt.timedelta(seconds=int(3600 * i / n))
        capture_lines.append(capture_record(x1, x2, p, str(uuid.UUID(int=rng.getrandbits(128))), inference_id, t))
        label = world_label(rng, x1, x2, drifted)
        right += int((p > 0.5) == (label == 1))
        label_lines.append(label_record(inference_id, label))
    cap_key = f"capture/{STAGING}/AllTraffic/{hour:%Y/%m/%d/%H}/{hour:%M-%S}-000-{uuid.UUID(int=rng.getrandbits(128))}.jsonl"
    gt_key = f"ground-truth/{hour:%Y/%m/%d/%H}/labels-{uuid.UUID(int=rng.getrandbits(128))}.jsonl"
    body = ("\n".join(label_lines) + "\n").encode()
    w.s3.put_object(Bucket=BUCKET, Key=cap_key, Body=("\n".join(capture_lines) + "\n").encode())
    if not labels:
        story.tl.log("traffic", f"{n} requests in hour {hour:%H}:00; their labels have not landed (weeks away)")
        return version, right / n
    w.s3.put_object(Bucket=BUCKET, Key=gt_key, Body=body)
    # S3's EventBridge notification of the label upload (the emulator's S3 does not send it).
    put_event(w, "aws.s3", "Object Created", {
        "version": "0", "bucket": {"name": BUCKET},
        "object": {"key": gt_key, "size": len(body), "etag": uuid.UUID(int=rng.getrandbits(128)).hex, "sequencer": "0"},
        "request-id": "DEMO", "requester": "123456789012", "reason": "PutObject",
    }, hour + dt.timedelta(minutes=59), [f"arn:aws:s3:::{BUCKET}"])
    return version, right / n


def read_metric(w: World, start: dt.datetime, end: dt.datetime, metric: str = METRIC) -> list[tuple[dt.datetime, float]]:
    out = w.cw.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric,
            "Dimensions": [{"Name": "Endpoint", "Value": STAGING}, {"Name": "MonitoringSchedule", "Value": SCHEDULE}]},
            "Period": 3600, "Stat": "Average"}}],
        StartTime=start, EndTime=end,
    )
    r = out["MetricDataResults"][0]
    return sorted(zip(r["Timestamps"], r["Values"]))


def evaluate_alarm(story: Story, w: World, window_end: dt.datetime, name: str = ALARM, metric: str = METRIC) -> bool:
    """Evaluates alarm `name` on `metric` as CloudWatch would (1 of 1 datapoints, period 1 h) from
    GetMetricData, missing data as its TreatMissingData says (the template's `ignore` keeps the
    state); on a state change sets the alarm state and puts the state-change event on the bus twice.
    Returns True when the alarm went into ALARM."""
    points = read_metric(w, window_end - dt.timedelta(hours=1), window_end + dt.timedelta(minutes=1), metric)
    alarm = w.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    state = story.alarm_states[name]
    previous = {"value": state, "reason": "previous evaluation",
                "timestamp": (window_end - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")}
    if not points:
        missing = alarm.get("TreatMissingData", "missing")
        if missing == "ignore":
            return False
        new_state = {"notBreaching": "OK", "breaching": "ALARM"}.get(missing, "INSUFFICIENT_DATA")
        value = None
    else:
        value = points[-1][1]
        breaching = value < alarm["Threshold"] if alarm["ComparisonOperator"] == "LessThanThreshold" else value > alarm["Threshold"]
        new_state = "ALARM" if breaching else "OK"
    if new_state == state:
        return False
    reason = f"Threshold Crossed: 1 out of the last 1 datapoints [{value}] was {'less' if new_state == 'ALARM' else 'not less'} than the threshold ({alarm['Threshold']})."
    w.cw.set_alarm_state(AlarmName=name, StateValue=new_state, StateReason=reason)
    story.tl.log("alarm", f"{state} → {new_state} ({metric} = {value})")
    now_stamp = window_end.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    detail = {
        "alarmName": name,
        "state": {"value": new_state, "reason": reason, "timestamp": now_stamp,
                  "reasonData": json.dumps({"version": "1.0", "queryDate": now_stamp, "statistic": "Average", "period": 3600,
                                            "recentDatapoints": [value] if value is not None else [], "threshold": alarm["Threshold"]})},
        "previousState": previous,
        "configuration": {"description": alarm.get("AlarmDescription", ""), "metrics": [{
            "id": "m1", "returnData": True,
            "metricStat": {"metric": {"namespace": NAMESPACE, "name": metric,
                                      "dimensions": {"Endpoint": STAGING, "MonitoringSchedule": SCHEDULE}},
                           "period": 3600, "stat": "Average"}}]},
    }
    for _ in range(2):  # EventBridge delivers at least once: the demo delivers twice
        put_event(w, "aws.cloudwatch", "CloudWatch Alarm State Change", detail, window_end,
                  [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"])
    story.alarm_states[name] = new_state
    return new_state == "ALARM"


def run_monitoring(story: Story, w: World, window_end: dt.datetime) -> float | None:
    """The scheduled custom-metrics run for the hour that just ended (EventBridge Scheduler's event)."""
    event = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": iso(window_end), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/driftloop-demo-monitoring-schedule"], "detail": {},
    }
    fn = story.functions["custom-metrics"]
    ok, out, latency, cold = fn.post(event)
    story.tl.log("invoke", f"Scheduled Event → custom-metrics: {summarize('custom-metrics', ok, out)}", latency, cold)
    expect(ok, f"custom-metrics failed: {out}")
    estimated = read_metric(w, window_end - dt.timedelta(hours=1), window_end + dt.timedelta(minutes=1), ESTIMATE_METRIC)
    if estimated:
        story.estimate_points.append((window_end - dt.timedelta(hours=1), estimated[-1][1]))
    points = read_metric(w, window_end - dt.timedelta(hours=1), window_end + dt.timedelta(minutes=1))
    if points:
        story.metric_points.append((window_end - dt.timedelta(hours=1), points[-1][1]))
        return points[-1][1]
    return None


def latest_estimate(story: Story, hour: dt.datetime) -> float | None:
    return next((v for t, v in reversed(story.estimate_points) if t == hour), None)


def run_story(args: argparse.Namespace) -> int:
    tl = Timeline()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    story = Story(args, tl, dict(os.environ))
    w = World()
    rng = random.Random(args.seed)
    per_hour = 300 if args.short else 1500
    healthy_hours, drift_hours, recovery_hours, unlabelled_hours = (2, 2, 2, 1) if args.short else (4, 4, 4, 2)
    start = (dt.datetime.now(UTC) - dt.timedelta(hours=healthy_hours + drift_hours + recovery_hours + unlabelled_hours + 3)).replace(minute=0, second=0, microsecond=0)
    tl.sim_now = start
    ok = False
    try:
        tl.step("set-up: the template's rules, the alarm, the pipeline, the registry")
        w.s3.create_bucket(Bucket=BUCKET)
        template = cfn.load_template(REPO / "infra" / "template.yaml")
        wire(story, w, template)
        w.sm.create_model_package_group(ModelPackageGroupName=GROUP)
        w.sm.create_pipeline(PipelineName=PIPELINE, RoleArn=ROLE, PipelineDefinition=json.dumps(
            {"Version": "2020-12-01", "Parameters": [], "Steps": []}))
        alarm = template_alarm(template)
        expect(alarm["AlarmName"] == ALARM, f"the template's alarm is {alarm['AlarmName']}, the demo expects {ALARM}")
        w.cw.put_metric_alarm(**alarm)
        tl.log("wire", f"alarm {ALARM}: {alarm['MetricName']} {alarm['ComparisonOperator']} {alarm['Threshold']} ({alarm['Namespace']})")
        estimate_alarm = template_alarm(template, {"MetricName": ESTIMATE_METRIC})
        expect(estimate_alarm["AlarmName"] == ESTIMATE_ALARM, f"the template's alarm on {ESTIMATE_METRIC} is {estimate_alarm['AlarmName']}, the demo expects {ESTIMATE_ALARM}")
        w.cw.put_metric_alarm(**estimate_alarm)
        tl.log("wire", f"alarm {ESTIMATE_ALARM}: {estimate_alarm['MetricName']} {estimate_alarm['ComparisonOperator']} {estimate_alarm['Threshold']} "
                       f"(the template's alarm with MetricName={ESTIMATE_METRIC})")
        for f in ("deploy-on-approval", "retrain-on-alarm", "custom-metrics"):
            fn = Watch(f, function_env(story.env, f), release=args.release, log=out_dir / f"{f}.log")
            story.functions[f] = fn
            fn.start()
        for fn in story.functions.values():
            fn.wait_ready(timeout=900)
        tl.log("functions", f"{len(story.functions)} functions under cargo lambda watch ({'release' if args.release else 'debug'})")
        tl.log("functions", f"the simulated training pipeline calibrates with {metrics_cli(story)}")

        tl.step("1. v1 registered and approved → deployed with data capture")
        v1 = register_package(story, w, 1)
        approve(story, w, v1, start)
        drain(story, w, {"deploy-on-approval": 1})
        expect(serving_version(w) == 1, "v1 is not serving after its approval")
        story.marks.append((start, "v1 deployed"))

        hour = start
        def play(hours: int, drifted: bool, label: str, labels: bool = True, segment: bool = False) -> list[tuple[float | None, float]]:
            """Plays `hours` hours; returns each hour's (estimated, realised) accuracy."""
            nonlocal hour
            seen = []
            for _ in range(hours):
                tl.sim_now = hour
                version, realised = traffic(story, w, rng, hour, per_hour, drifted, labels, segment)
                end = hour + dt.timedelta(hours=1)
                tl.sim_now = end
                if labels:
                    drain(story, w, {"custom-metrics": 1})  # the label upload → custom-metrics, event-driven
                value = run_monitoring(story, w, end)  # the hourly schedule
                estimate = latest_estimate(story, hour)
                tl.log("metric", f"{label} hour {hour:%H}:00, v{version} serving: {METRIC} = {value if value is None else round(value, 3)}, "
                                 f"{ESTIMATE_METRIC} = {estimate if estimate is None else round(estimate, 3)}")
                seen.append((estimate, realised))
                fired = evaluate_alarm(story, w, end)
                fired_estimate = evaluate_alarm(story, w, end, ESTIMATE_ALARM, ESTIMATE_METRIC)
                outputs = drain(story, w)
                if fired:
                    on_alarm(story, w, outputs, end)
                if fired_estimate:
                    on_estimate_alarm(story, w, outputs, end)
                hour = end
            return seen

        tl.step("2. healthy traffic and ground truth → metric within threshold")
        play(healthy_hours, False, "healthy")
        expect(story.alarm_state == "OK", f"alarm is {story.alarm_state} after healthy traffic")
        expect(all(v >= THRESHOLD for _, v in story.metric_points), "healthy metric below threshold")

        expect(len(story.estimate_points) == healthy_hours, f"custom-metrics published {ESTIMATE_METRIC} for {len(story.estimate_points)} of {healthy_hours} hours")

        tl.step("3. drifted traffic → the metric crosses the threshold → the alarm fires")
        story.marks.append((hour, "drift begins"))
        drifted = play(drift_hours, True, "drifted")
        expect(story.pipeline_starts == 1, f"the pipeline started {story.pipeline_starts} times, expected exactly once")
        expect(serving_version(w) == 2, "v2 is not serving after the retrain")
        expect(story.alarm_states[ESTIMATE_ALARM] == "OK", f"the {ESTIMATE_METRIC} alarm is {story.alarm_states[ESTIMATE_ALARM]} during the concept drift")
        expect(all(e is not None for e, _ in drifted), f"no {ESTIMATE_METRIC} in a drifted hour: {drifted}")
        tl.log("estimate", f"{ESTIMATE_METRIC} stayed {drifted[0][0]:.3f} while v1's realised accuracy fell to {drifted[0][1]:.3f}: the drift changed what the "
                           "scores mean, not the scores - a concept shift only labels can show (README \"When to trust it\")")

        tl.step("5. v2 serving → metrics recover")
        play(recovery_hours, True, "recovered")
        expect(story.alarm_state == "OK", f"alarm is {story.alarm_state} after v2 was deployed")

        tl.step(f"6. a new segment, its labels weeks away → {ESTIMATE_METRIC} (v2's calibration) crosses the threshold → its alarm fires")
        story.marks.append((hour, "unlabelled segment"))
        unlabelled = play(unlabelled_hours, True, "unlabelled", labels=False, segment=True)
        expect(story.estimate_starts == 1, f"the {ESTIMATE_METRIC} alarm started {story.estimate_starts} executions, expected exactly one")
        expect(story.alarm_state == "OK", f"the accuracy alarm is {story.alarm_state}: windows without labels publish no accuracy (TreatMissingData ignore)")
        estimate, realised = unlabelled[0]
        expect(estimate is not None and abs(estimate - realised) < 0.1, f"estimate {estimate} vs realised {realised}")
        tl.log("estimate", f"once the labels land, the hour's realised accuracy will be {realised:.3f} (estimated {estimate:.3f} with no label)")
        ok = True
    except (StoryFailed, WatchError) as e:
        tl.log("FAILED", str(e))
    finally:
        for fn in story.functions.values():
            fn.stop()
        write_outputs(story, out_dir, ok)
    return 0 if ok else 1


def on_alarm(story: Story, w: World, outputs: dict[str, list[Any]], when: dt.datetime) -> None:
    tl = story.tl
    tl.step("4. retrain-on-alarm starts the pipeline exactly once; the run is simulated by registering v2")
    executions = w.sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    story.pipeline_starts = len(executions)
    tl.log("pipeline", f"{len(executions)} execution(s) of {PIPELINE} after {len(outputs.get('retrain-on-alarm', []))} deliveries")
    expect(len(outputs.get("retrain-on-alarm", [])) >= 2, "the alarm event was not delivered twice to retrain-on-alarm")
    expect(len(executions) == 1, f"expected exactly one pipeline execution, got {len(executions)}")
    story.marks.append((when, "alarm → retrain started"))
    v2 = register_package(story, w, 2)
    tl.log("pipeline", "simulated run registered v2 (PendingManualApproval)")
    approve(story, w, v2, when + dt.timedelta(minutes=20))
    drain(story, w, {"deploy-on-approval": 1})
    expect(serving_version(w) == 2, "v2 is not serving after its approval")
    story.marks.append((when + dt.timedelta(minutes=20), "v2 deployed"))


def on_estimate_alarm(story: Story, w: World, outputs: dict[str, list[Any]], when: dt.datetime) -> None:
    """The estimated_accuracy alarm went into ALARM: retrain-on-alarm (its state change delivered
    twice) starts the pipeline once."""
    tl = story.tl
    executions = w.sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    deliveries = outputs.get("retrain-on-alarm", [])
    started = [o for o in deliveries if isinstance(o, dict) and o.get("outcome") == "Started"]
    story.estimate_starts += len(started)
    story.pipeline_starts = len(executions)
    tl.log("pipeline", f"{len(executions)} execution(s) of {PIPELINE} after {len(deliveries)} deliveries of the {ESTIMATE_METRIC} alarm, "
                       f"{len(started)} started by it")
    expect(len(deliveries) >= 2, f"the {ESTIMATE_METRIC} alarm event was not delivered twice to retrain-on-alarm")
    expect(len(started) == 1 and started[0].get("pipelineName") == PIPELINE, f"expected one start of {PIPELINE}: {deliveries}")
    story.marks.append((when, "estimate alarm → retrain started"))


# ----------------------------------------------------------------------------------------------
# Outputs: summary, timeline.json, dashboard.svg


def write_outputs(story: Story, out_dir: Path, ok: bool) -> None:
    tl = story.tl
    (out_dir / "timeline.json").write_text(json.dumps([e.__dict__ for e in tl.entries], indent=1, default=str))
    svg = render_svg(story)
    (out_dir / "dashboard.svg").write_text(svg)
    print("\n── summary " + "─" * 62)
    for binary, fn in story.functions.items():
        if fn.latencies:
            cold = [l for l, c in fn.latencies if c]
            warm = sorted(l for l, c in fn.latencies if not c)
            med = warm[len(warm) // 2] if warm else float("nan")
            print(f"  {binary:<20} {fn.invocations:3d} invocations   cold {cold[0] if cold else float('nan'):8.1f} ms   warm median {med:7.1f} ms")
    print(f"  metric points: {len(story.metric_points)}   pipeline executions: {story.pipeline_starts}   final alarm state: {story.alarm_state}")
    print(f"  {ESTIMATE_METRIC} points: {len(story.estimate_points)}   executions it started: {story.estimate_starts}   "
          f"its alarm: {story.alarm_states[ESTIMATE_ALARM]}")
    print(f"  dashboard: {out_dir / 'dashboard.svg'}   timeline: {out_dir / 'timeline.json'}")
    print(f"\n{'the loop closed: drift → alarm → retrain → approve → deploy → recovery; before labels: ' + ESTIMATE_METRIC + ' → alarm → retrain' if ok else 'THE STORY DID NOT HAPPEN'}")


def render_svg(story: Story) -> str:
    W, H, L, R, T, B = 900, 380, 70, 30, 50, 60
    pts = story.metric_points
    if not pts:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}"><text x="20" y="40">no data</text></svg>'
    est = story.estimate_points
    t0 = min([p[0] for p in pts + est] + [m[0] for m in story.marks])
    t1 = max([p[0] + dt.timedelta(hours=1) for p in pts + est] + [m[0] for m in story.marks])
    span = max((t1 - t0).total_seconds(), 1)
    x = lambda t: L + (W - L - R) * (t - t0).total_seconds() / span
    y = lambda v: T + (H - T - B) * (1 - v)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{L}" y="24" font-size="15" font-weight="bold">{STAGING} · {METRIC} and {ESTIMATE_METRIC} (model-metrics) · driftloop demo</text>',
             f'<text x="{W - R}" y="24" text-anchor="end" fill="#1f77b4">— {METRIC}</text>'
             f'<text x="{W - R}" y="40" text-anchor="end" fill="#8c564b">- - {ESTIMATE_METRIC} (no labels needed)</text>']
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{L - 8}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{v:.2f}</text>')
    parts.append(f'<line x1="{L}" x2="{W - R}" y1="{y(THRESHOLD):.1f}" y2="{y(THRESHOLD):.1f}" stroke="#d62728" stroke-dasharray="6,4"/>'
                 f'<text x="{W - R}" y="{y(THRESHOLD) - 6:.1f}" text-anchor="end" fill="#d62728">threshold {THRESHOLD}</text>')
    colors = {"retrain": "#9467bd", "deployed": "#2ca02c", "drift": "#ff7f0e", "alarm": "#d62728", "unlabelled": "#8c564b"}
    for i, (t, label) in enumerate(sorted(story.marks)):
        color = next((c for k, c in colors.items() if k in label), "#555")
        dash = ' stroke-dasharray="3,3"' if "drift" in label else ""
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{T}" y2="{H - B}" stroke="{color}" stroke-width="2"{dash}/>'
                     f'<text x="{x(t) + 4:.1f}" y="{T + 12 + 14 * (i % 3)}" fill="{color}">{label}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(t + dt.timedelta(minutes=30)):.1f},{y(v):.1f}" for i, (t, v) in enumerate(pts))
    parts.append(f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="2.5"/>')
    for t, v in pts:
        fill = "#d62728" if v < THRESHOLD else "#1f77b4"
        parts.append(f'<circle cx="{x(t + dt.timedelta(minutes=30)):.1f}" cy="{y(v):.1f}" r="4" fill="{fill}"/>')
    if est:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(t + dt.timedelta(minutes=30)):.1f},{y(v):.1f}" for i, (t, v) in enumerate(est))
        parts.append(f'<path d="{path}" fill="none" stroke="#8c564b" stroke-width="2" stroke-dasharray="6,3"/>')
        for t, v in est:
            fill = "#d62728" if v < THRESHOLD else "#8c564b"
            parts.append(f'<rect x="{x(t + dt.timedelta(minutes=30)) - 3:.1f}" y="{y(v) - 3:.1f}" width="6" height="6" fill="{fill}"/>')
    step = max(1, len(pts) // 8)
    for t, _ in pts[::step]:
        parts.append(f'<text x="{x(t):.1f}" y="{H - B + 18}" text-anchor="middle" fill="#555">{t:%H:%M}</text>')
    parts.append(f'<text x="{(W + L) / 2}" y="{H - 14}" text-anchor="middle" fill="#555">simulated time (UTC), one point per hourly window</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description="Run driftloop's whole loop on the local emulator.")
    ap.add_argument("--release", action="store_true", help="run the release builds (default: debug)")
    ap.add_argument("--short", action="store_true", help="the short story (CI end-to-end test)")
    ap.add_argument("--out", default=str(REPO / "out" / "demo"), help="where the timeline and the plot go")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("AWS_ENDPOINT_URL is not set: run through scripts/demo", file=sys.stderr)
        return 2
    return run_story(args)


if __name__ == "__main__":
    sys.exit(main())
