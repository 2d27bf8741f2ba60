#!/usr/bin/env python3
"""driftloop's whole loop on one machine, two models from one stack: drift → alarm → retrain →
approve → deploy for one, steady monitoring for the other, on the emulator.

Run through `scripts/demo` (which sets up the venv, builds the functions and starts the emulator).
What it does:

* creates in the emulator what infra/template.yaml defines — its EventBridge rules with the
  template's own event patterns (SQS queues stand in for the Lambda targets and are drained into the
  real function binaries running under `cargo lambda watch`), the alarms on the model-quality
  metrics, the SageMaker pipelines and model package groups — and uploads the model catalogue
  (README "Many models (catalogue)") that the three functions read through `CATALOGUE_S3_URI`: two
  models, `driftloop-demo` (binary classification, the one that drifts) and
  `driftloop-demo-prices` (regression, which stays healthy), each with its own endpoint,
  ground-truth prefix, schedule name, alarm and build pipeline;
* plays a story with generated data, hour by simulated hour, both models' traffic every hour: v1
  of each approved and deployed with data capture; healthy traffic; drifted traffic for the first
  model until its metric crosses the threshold and its alarm fires (evaluated from GetMetricData as
  CloudWatch would, its state change put on the bus *twice*); retrain-on-alarm starts that model's
  pipeline exactly once; the pipeline's run is simulated by registering v2 (with its reference
  calibration, `driftloop-metrics calibrate` on its validation set); v2 approved →
  deploy-on-approval updates that model's endpoint → the metric recovers; then a new segment whose
  labels have not landed: custom-metrics publishes `estimated_accuracy` from the served package's
  calibration, the alarm on it fires and retrain-on-alarm starts the pipeline once more. Every
  scheduled custom-metrics run evaluates both endpoints' windows (the catalogue's fan-out);
* prints a timeline with each step's latency (cold and warm invocations), a summary, and writes a
  dashboard-like SVG (one panel per model: metric, threshold, retraining and deployment marks) plus
  timeline.json.

It exits non-zero when the story does not happen — including when the healthy model's pipeline
ever starts, its endpoint is redeployed after its first deployment, or one of its windows goes
unmonitored.
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
# The story's two models: one catalogue, one stack


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
REPORT_URI = f"s3://{BUCKET}/reports"
CATALOGUE_URI = f"s3://{BUCKET}/config/catalogue.json"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the catalogue the demo uploads: its group, staging endpoint, monitoring (ground
    truth below its own prefix, its schedule name as the metrics' MonitoringSchedule dimension),
    its model-quality alarm (the template's ModelQualityAlarm rendered for it) and build pipeline."""
    key: str                   # the demo's short name (logs, panels)
    group: str
    pipeline: str
    staging: str
    schedule: str
    ground_truth_prefix: str   # below BUCKET; no model's prefix is a prefix of another's
    problem: str               # the catalogue's problem.type
    metric: str
    threshold: float
    comparison: str            # the alarm's ComparisonOperator
    alarm_prefix: str          # the template's AlarmNamePrefix for its alarm
    part: str                  # its part in the story

    @property
    def alarm(self) -> str:
        return f"driftloop.{self.alarm_prefix}model-quality-{self.metric}"

    @property
    def ground_truth_uri(self) -> str:
        return f"s3://{BUCKET}/{self.ground_truth_prefix}"

    def breaches(self, value: float) -> bool:
        return value < self.threshold if self.comparison == "LessThanThreshold" else value > self.threshold


# The stack's own group (the template's parameters name it): it drifts and is retrained.
DRIFTING = ModelSpec("churn", GROUP, PIPELINE, STAGING, SCHEDULE, "ground-truth/churn", "BinaryClassification",
                     METRIC, THRESHOLD, "LessThanThreshold", "driftloop-demo-", "drifts and is retrained")
# A second group named only by the catalogue: a regression model that stays healthy.
HEALTHY = ModelSpec("prices", "driftloop-demo-prices", "driftloop-demo-prices-build", "driftloop-demo-prices-staging",
                    "driftloop-demo-prices-quality", "ground-truth/prices", "Regression",
                    "rmse", 1.0, "GreaterThanThreshold", "driftloop-demo-prices-", "stays healthy, keeps being monitored")
SPECS = (DRIFTING, HEALTHY)

# infra/template.yaml's parameters as the demo sets them: one stack, its parameters naming the
# drifting model (the single-model special case); the catalogue adds the second.
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
    "CatalogueS3Uri": CATALOGUE_URI,
    # Every catalogue name starts with it (group, endpoint, pipeline): the template's deploy rules
    # then admit both models by prefix.
    "CatalogueNamePrefix": "driftloop-demo",
}


def alarm_params(m: ModelSpec) -> dict[str, Any]:
    """The template's parameters that render its ModelQualityAlarm for model `m`."""
    return {"StagingEndpointName": m.staging, "MonitoringScheduleName": m.schedule, "MetricName": m.metric,
            "AlarmThreshold": m.threshold, "AlarmComparisonOperator": m.comparison, "AlarmNamePrefix": m.alarm_prefix,
            "ProblemType": m.problem}


def catalogue_document() -> dict[str, Any]:
    """The catalogue the demo uploads to CATALOGUE_URI (README "Many models (catalogue)"): both
    models, each with its staging endpoint and capture, its monitoring, its alarms (created by the
    demo from the template, so `external` thresholds) and its build pipeline."""
    def entry(m: ModelSpec, problem: dict[str, Any], alarms: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "group": m.group,
            "problem": problem,
            "capture": {"destinationS3Uri": CAPTURE_URI, "samplingPercentage": 100},
            "stages": {"staging": {"endpointName": m.staging}},
            "monitoring": {"stages": ["staging"], "groundTruthS3Uri": m.ground_truth_uri, "windowMinutes": 60,
                           "scheduleName": m.schedule},
            "alarms": [{"name": name, "metric": metric, "stage": "staging", "threshold": "external"} for name, metric in alarms],
            "retraining": {"pipeline": m.pipeline},
        }
    return {"version": 1, "models": [
        entry(DRIFTING, {"type": DRIFTING.problem, "probabilityThreshold": 0.5},
              [(ALARM, METRIC), (ESTIMATE_ALARM, ESTIMATE_METRIC)]),
        entry(HEALTHY, {"type": HEALTHY.problem}, [(HEALTHY.alarm, HEALTHY.metric)]),
    ]}


# ----------------------------------------------------------------------------------------------
# The story's world: data generation and the simulated endpoints


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# The drifting model's versions: v1 learned y ~ x1 + x2; after the drift the world is y ~ x1 - x2,
# which v2 learns.
MODELS: dict[int, Callable[[float, float], float]] = {
    1: lambda x1, x2: sigmoid(3.0 * (x1 + x2)),
    2: lambda x1, x2: sigmoid(3.0 * (x1 - x2)),
}


def world_label(rng: random.Random, x1: float, x2: float, drifted: bool) -> int:
    z = 3.0 * ((x1 - x2) if drifted else (x1 + x2))
    return 1 if rng.random() < sigmoid(z) else 0


# The healthy model: a price from two inputs, y = 2 x1 - x2 + 3 + noise (sd 0.5); v1 learned it
# (its rmse stays near 0.5, under the 1.0 threshold), and the world does not change.
PRICE_NOISE = 0.5


def price_model(x1: float, x2: float) -> float:
    return 2.0 * x1 - x2 + 3.0


def price_world(rng: random.Random, x1: float, x2: float) -> float:
    return 2.0 * x1 - x2 + 3.0 + rng.gauss(0, PRICE_NOISE)


@dataclass
class Story:
    args: argparse.Namespace
    tl: Timeline
    env: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)
    functions: dict[str, Watch] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)       # binary → queue URL
    # Per model (ModelSpec.key): each hourly window's metric, the panel's marks, the windows the
    # scheduled runs evaluated, and every stage deploy-on-approval created or updated.
    points: dict[str, list[tuple[dt.datetime, float]]] = field(default_factory=lambda: {m.key: [] for m in SPECS})
    marks: dict[str, list[tuple[dt.datetime, str]]] = field(default_factory=lambda: {m.key: [] for m in SPECS})
    monitored: dict[str, list[str]] = field(default_factory=lambda: {m.key: [] for m in SPECS})
    deployments: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {m.key: [] for m in SPECS})
    estimate_points: list[tuple[dt.datetime, float]] = field(default_factory=list)
    # Each alarm's state as the demo last evaluated it (a new alarm starts in INSUFFICIENT_DATA).
    alarm_states: dict[str, str] = field(default_factory=lambda: {
        ALARM: "INSUFFICIENT_DATA", ESTIMATE_ALARM: "INSUFFICIENT_DATA", HEALTHY.alarm: "INSUFFICIENT_DATA"})
    pipeline_starts: int = 0
    estimate_starts: int = 0           # executions the estimated_accuracy alarm started
    hours_played: int = 0
    healthy_config: str | None = None  # the healthy endpoint's config after its first deployment
    metrics_cli: Path | None = None    # driftloop-metrics, for the reference calibrations

    @property
    def alarm_state(self) -> str:
        """The accuracy alarm's state."""
        return self.alarm_states[ALARM]

    @property
    def metric_points(self) -> list[tuple[dt.datetime, float]]:
        """The drifting model's accuracy points."""
        return self.points[DRIFTING.key]


def spec_of_endpoint(endpoint: str | None) -> ModelSpec | None:
    return next((m for m in SPECS if m.staging == endpoint), None)


def spec_of_group(group: str | None) -> ModelSpec | None:
    return next((m for m in SPECS if m.group == group), None)


def function_env(base: dict[str, str], binary: str) -> dict[str, str]:
    common = {
        "AWS_LAMBDA_LOG_FORMAT": "Text",
        "RUST_LOG": "info",
        "MODEL_PACKAGE_GROUP_NAME": GROUP,
        "EVENT_BUS_NAME": "default",
        # The model catalogue: every function reads it once per invocation.
        "CATALOGUE_S3_URI": CATALOGUE_URI,
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
            # The story compresses hours into seconds while the functions read the real clock: a
            # cooldown of hours would span the whole run and skip step 6's retrain (simulated hours
            # after the first). Redeliveries are still caught by the trigger's identity
            # (AlreadyStarted), which is what the story checks. (The catalogue's models name no
            # cooldown of their own, so this one applies to them.)
            "COOLDOWN": "0",
            "METRICS_NAMESPACE": "driftloop",
        },
        "custom-metrics": {
            "CAPTURE_S3_URI": CAPTURE_URI,
            "GROUND_TRUTH_S3_URI": DRIFTING.ground_truth_uri,
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


def widen_for_catalogue(pattern: dict[str, Any]) -> list[str]:
    """The template's rules still name the stack's own group and endpoints (README "Not
    catalogue-driven yet"): a deployed stack serves another catalogue group once those lists are
    widened deliberately, and so does the demo, for the catalogue's groups and endpoints only.
    Returns what it added (nothing when the pattern already admits them, e.g. by prefix)."""
    detail = pattern.get("detail")
    added: list[str] = []
    if not isinstance(detail, dict):
        return added
    for key, names in (("ModelPackageGroupName", [m.group for m in SPECS]), ("EndpointName", [m.staging for m in SPECS])):
        values = detail.get(key)
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            extra = [n for n in names if n not in values]
            if extra:
                detail[key] = values + extra
                added += extra
    return added


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
        widened = widen_for_catalogue(rule.pattern)
        w.events.put_rule(Name=rule.name[:64], EventPattern=json.dumps(rule.pattern), State="ENABLED")
        w.events.put_targets(Rule=rule.name[:64], Targets=[{"Id": "fn", "Arn": arn}])
        story.tl.log("wire", f"rule {rule.name} → {binary}  pattern {json.dumps(rule.pattern)[:90]}")
        if widened:
            story.tl.log("wire", f"rule {rule.name} widened for the catalogue: + {', '.join(widened)} "
                                 "(the template's rules name the stack's own group and endpoints)")


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
                if ok and binary == "deploy-on-approval" and isinstance(out, dict):
                    record_deployments(story, out)
                w.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        idle = 0 if got else idle + 1
        if not got:
            time.sleep(0.2)
    for binary, n in (expect_at_least or {}).items():
        expect(len(outputs.get(binary, [])) >= n, f"expected {n} deliveries to {binary}, got {len(outputs.get(binary, []))}")
    return outputs


def record_deployments(story: Story, out: dict[str, Any]) -> None:
    """Every stage deploy-on-approval created or updated, by the model owning its endpoint; each
    model's settings came from the catalogue."""
    expect(str(out.get("settings", "")).startswith(f"catalogue {CATALOGUE_URI}"),
           f"deploy-on-approval served {out.get('group')} from {out.get('settings')}, not the catalogue")
    for stage in out.get("stages", []):
        if stage.get("action") in ("created", "updated"):
            m = spec_of_endpoint(stage.get("endpoint")) or spec_of_group(out.get("group"))
            expect(m is not None, f"deploy-on-approval deployed an endpoint of no catalogue model: {stage}")
            story.deployments[m.key].append({"sim": story.tl.sim_now, **stage})


def summarize(binary: str, ok: bool, out: Any) -> str:
    if not ok:
        return f"ERROR {out.get('errorType') if isinstance(out, dict) else out}"
    if not isinstance(out, dict):
        return str(out)[:100]
    if binary == "deploy-on-approval":
        stages = "; ".join(f"{s['stage']}: {s['action']} v{s.get('packageVersion')}" for s in out.get("stages", []))
        return f"{out.get('group')} {stages}" + (f" (ignored: {out['ignored']})" if out.get("ignored") else "")
    if binary == "retrain-on-alarm":
        if out.get("outcome") == "Started":
            return f"Started {out.get('displayName')} (model {(out.get('model') or {}).get('group')}, pipeline {out.get('pipelineName')})"
        return f"Skipped ({(out.get('skip') or {}).get('code')})"
    if binary == "custom-metrics":
        parts = []
        for endpoint, win in windows_of(out):
            m = spec_of_endpoint(endpoint)
            c = win.get("counts") or {}
            metrics = win.get("metrics") or {}
            what = f"{m.key if m else endpoint} {win['window']['start'][11:16]}-{win['window']['end'][11:16]} {win['status']}"
            if win.get("decision"):
                what += f"/{win['decision']}"
            if c:
                what += f", {c.get('records_matched', 0)} matched"
                if c.get("records_malformed"):
                    what += f", {c['records_malformed']} malformed"
            metric = m.metric if m else METRIC
            if metric in metrics and win["status"] != "NoData":  # a window without labels publishes no metric
                what += f", {metric} {metrics[metric]:.3f}"
            parts.append(what + f", {win.get('violationCount', 0)} violations, {win.get('metricsPublished', 0)} datums")
        return "; ".join(parts) or "no window"
    return json.dumps(out)[:140]


def windows_of(out: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """Each window a custom-metrics invocation evaluated, with its endpoint: the catalogue
    fan-out's `targets` (one per monitored endpoint), else the environment's endpoint's `windows`."""
    if not isinstance(out, dict):
        return []
    found: list[tuple[str | None, dict[str, Any]]] = [(STAGING, win) for win in out.get("windows") or []]
    for target in out.get("targets") or []:
        endpoint = (target.get("target") or {}).get("endpointName")
        found += [(endpoint, win) for win in target.get("windows") or []]
    return found


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


def label_record(inference_id: str, label: int | str) -> str:
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




def register_package(story: Story, w: World, m: ModelSpec, version_hint: int) -> str:
    """Registers version `version_hint` of model `m` as its training pipeline would: its
    model-quality baseline and, for the classifier, in its customer metadata, its reference
    calibration (which so follows the served model)."""
    base = f"s3://{BUCKET}/baselines/{m.key}/v{version_hint}"
    metadata = {"ModelName": f"{m.group}-v{version_hint}"}
    if m is DRIFTING:
        metadata[CALIBRATION_KEY] = reference_calibration(story, w, version_hint)
    out = w.sm.create_model_package(
        ModelPackageGroupName=m.group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                            "ModelDataUrl": f"s3://{BUCKET}/models/{m.key}/v{version_hint}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
        DriftCheckBaselines={"ModelQuality": {
            "Constraints": {"ContentType": "application/json", "S3Uri": f"{base}/constraints.json"}}},
        CustomerMetadataProperties=metadata,
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
    story.tl.log("registry", f"{d['ModelPackageGroupName']} v{d['ModelPackageVersion']} approved (event on the bus)")


def endpoint_config(w: World, endpoint: str) -> str | None:
    try:
        return w.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except w.sm.exceptions.ClientError:
        return None


def serving_version(w: World, endpoint: str = STAGING) -> int | None:
    """Which package version `endpoint` serves: endpoint → config → model → package."""
    config = endpoint_config(w, endpoint)
    if config is None:
        return None
    cfg = w.sm.describe_endpoint_config(EndpointConfigName=config)
    model = w.sm.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])
    arn = (model.get("PrimaryContainer") or {}).get("ModelPackageName", "")
    return int(arn.rsplit("/", 1)[1]) if arn else None


def upload_labels(story: Story, w: World, rng: random.Random, m: ModelSpec, hour: dt.datetime, lines: list[str]) -> None:
    """The hour's labels below the model's ground-truth prefix, and S3's EventBridge notification
    of the upload (the emulator's S3 does not send it)."""
    key = f"{m.ground_truth_prefix}/{hour:%Y/%m/%d/%H}/labels-{uuid.UUID(int=rng.getrandbits(128))}.jsonl"
    body = ("\n".join(lines) + "\n").encode()
    w.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    put_event(w, "aws.s3", "Object Created", {
        "version": "0", "bucket": {"name": BUCKET},
        "object": {"key": key, "size": len(body), "etag": uuid.UUID(int=rng.getrandbits(128)).hex, "sequencer": "0"},
        "request-id": "DEMO", "requester": "123456789012", "reason": "PutObject",
    }, hour + dt.timedelta(minutes=59), [f"arn:aws:s3:::{BUCKET}"])


def capture_key(rng: random.Random, m: ModelSpec, hour: dt.datetime) -> str:
    return f"capture/{m.staging}/AllTraffic/{hour:%Y/%m/%d/%H}/{hour:%M-%S}-000-{uuid.UUID(int=rng.getrandbits(128))}.jsonl"


def traffic(story: Story, w: World, rng: random.Random, hour: dt.datetime, n: int, drifted: bool,
            labels: bool = True, segment: bool = False) -> tuple[int, float]:
    """`n` requests to the drifting model's endpoint during `hour`: data capture as SageMaker
    writes it, and (`labels`) their labels. `segment`: a new customer segment whose two inputs move
    together (x2 ≈ x1), where the serving model is unsure. Returns the serving version and the
    hour's realised accuracy."""
    version = serving_version(w, STAGING)
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
    w.s3.put_object(Bucket=BUCKET, Key=capture_key(rng, DRIFTING, hour), Body=("\n".join(capture_lines) + "\n").encode())
    if not labels:
        story.tl.log("traffic", f"{n} requests in hour {hour:%H}:00; their labels have not landed (weeks away)")
        return version, right / n
    upload_labels(story, w, rng, DRIFTING, hour, label_lines)
    return version, right / n


def price_traffic(story: Story, w: World, rng: random.Random, hour: dt.datetime, n: int) -> float:
    """`n` requests to the healthy model's endpoint during `hour`, their capture and their labels
    (its world does not change); returns the hour's realised rmse."""
    version = serving_version(w, HEALTHY.staging)
    expect(version == 1, f"{HEALTHY.staging} serves version {version}, expected its first package throughout")
    capture_lines, label_lines, sq = [], [], 0.0
    for i in range(n):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        prediction, price = price_model(x1, x2), price_world(rng, x1, x2)
        sq += (prediction - price) ** 2
        inference_id = str(uuid.UUID(int=rng.getrandbits(128)))
        t = hour + dt.timedelta(seconds=int(3600 * i / n))
        capture_lines.append(capture_record(x1, x2, prediction, str(uuid.UUID(int=rng.getrandbits(128))), inference_id, t))
        label_lines.append(label_record(inference_id, f"{price:.4f}"))
    w.s3.put_object(Bucket=BUCKET, Key=capture_key(rng, HEALTHY, hour), Body=("\n".join(capture_lines) + "\n").encode())
    upload_labels(story, w, rng, HEALTHY, hour, label_lines)
    return math.sqrt(sq / n)


def read_metric(w: World, m: ModelSpec, start: dt.datetime, end: dt.datetime, metric: str | None = None) -> list[tuple[dt.datetime, float]]:
    out = w.cw.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric or m.metric,
            "Dimensions": [{"Name": "Endpoint", "Value": m.staging}, {"Name": "MonitoringSchedule", "Value": m.schedule}]},
            "Period": 3600, "Stat": "Average"}}],
        StartTime=start, EndTime=end,
    )
    r = out["MetricDataResults"][0]
    return sorted(zip(r["Timestamps"], r["Values"]))


def evaluate_alarm(story: Story, w: World, window_end: dt.datetime, m: ModelSpec = DRIFTING, name: str | None = None,
                   metric: str | None = None) -> bool:
    """Evaluates model `m`'s alarm `name` on `metric` (default: its model-quality alarm) as
    CloudWatch would (1 of 1 datapoints, period 1 h) from GetMetricData, missing data as its
    TreatMissingData says (the template's `ignore` keeps the state); on a state change sets the
    alarm state and puts the state-change event on the bus twice. Returns True when the alarm went
    into ALARM."""
    name, metric = name or m.alarm, metric or m.metric
    points = read_metric(w, m, window_end - dt.timedelta(hours=1), window_end + dt.timedelta(minutes=1), metric)
    alarm = w.cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    state = story.alarm_states[name]
    previous = {"value": state, "reason": "previous evaluation",
                "timestamp": (window_end - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")}
    less = alarm["ComparisonOperator"] == "LessThanThreshold"
    if not points:
        missing = alarm.get("TreatMissingData", "missing")
        if missing == "ignore":
            return False
        new_state = {"notBreaching": "OK", "breaching": "ALARM"}.get(missing, "INSUFFICIENT_DATA")
        value = None
    else:
        value = points[-1][1]
        breaching = value < alarm["Threshold"] if less else value > alarm["Threshold"]
        new_state = "ALARM" if breaching else "OK"
    if new_state == state:
        return False
    relation = ("less" if less else "greater") if new_state == "ALARM" else ("not less" if less else "not greater")
    reason = f"Threshold Crossed: 1 out of the last 1 datapoints [{value}] was {relation} than the threshold ({alarm['Threshold']})."
    w.cw.set_alarm_state(AlarmName=name, StateValue=new_state, StateReason=reason)
    story.tl.log("alarm", f"{state} → {new_state} ({metric} = {value})" + ("" if m is DRIFTING else f" on {m.staging}"))
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
                                      "dimensions": {"Endpoint": m.staging, "MonitoringSchedule": m.schedule}},
                           "period": 3600, "stat": "Average"}}]},
    }
    for _ in range(2):  # EventBridge delivers at least once: the demo delivers twice
        put_event(w, "aws.cloudwatch", "CloudWatch Alarm State Change", detail, window_end,
                  [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"])
    story.alarm_states[name] = new_state
    return new_state == "ALARM"


def run_monitoring(story: Story, w: World, window_end: dt.datetime) -> dict[str, float | None]:
    """The scheduled custom-metrics run for the hour that just ended (EventBridge Scheduler's
    event): one invocation, every catalogue endpoint's window. Returns each model's metric."""
    event = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": iso(window_end), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/driftloop-demo-monitoring-schedule"], "detail": {},
    }
    fn = story.functions["custom-metrics"]
    ok, out, latency, cold = fn.post(event)
    story.tl.log("invoke", f"Scheduled Event → custom-metrics: {summarize('custom-metrics', ok, out)}", latency, cold)
    expect(ok, f"custom-metrics failed: {out}")
    hour = window_end - dt.timedelta(hours=1)
    for endpoint, win in windows_of(out):
        m = spec_of_endpoint(endpoint)
        if m is not None and win.get("window", {}).get("end", "")[:16] == iso(window_end)[:16]:
            story.monitored[m.key].append(win.get("status", "?"))
    estimated = read_metric(w, DRIFTING, hour, window_end + dt.timedelta(minutes=1), ESTIMATE_METRIC)
    if estimated:
        story.estimate_points.append((hour, estimated[-1][1]))
    values: dict[str, float | None] = {}
    for m in SPECS:
        points = read_metric(w, m, hour, window_end + dt.timedelta(minutes=1))
        values[m.key] = points[-1][1] if points else None
        if points:
            story.points[m.key].append((hour, points[-1][1]))
    return values


def latest_estimate(story: Story, hour: dt.datetime) -> float | None:
    return next((v for t, v in reversed(story.estimate_points) if t == hour), None)


def upload_catalogue(story: Story, w: World, out_dir: Path) -> None:
    """Writes the catalogue, checks it as an operator would (`driftloop-metrics catalogue
    validate`, README "Check a change before uploading it") and uploads it: it is live from the
    next invocation."""
    doc = catalogue_document()
    path = out_dir / "catalogue.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    p = subprocess.run([str(metrics_cli(story)), "catalogue", "validate", str(path)], capture_output=True, text=True)
    expect(p.returncode == 0, f"driftloop-metrics catalogue validate {path} failed:\n{p.stdout[-3000:]}{p.stderr[-2000:]}")
    for line in p.stdout.splitlines():
        if line.startswith("model ") or "retrains with" in line or line.strip().startswith("monitored:"):
            story.tl.log("catalogue", line.strip())
    w.s3.put_object(Bucket=BUCKET, Key=CATALOGUE_URI[len(f"s3://{BUCKET}/"):], Body=path.read_bytes())
    story.tl.log("catalogue", f"{len(doc['models'])} models → {CATALOGUE_URI} (CATALOGUE_S3_URI of the three functions)")


def check_healthy(story: Story, w: World, when: str) -> None:
    """The healthy model was left alone: its pipeline never started, its endpoint not redeployed
    after its first deployment, and every hour played so far monitored (a Completed window and
    its metric within the threshold)."""
    executions = w.sm.list_pipeline_executions(PipelineName=HEALTHY.pipeline)["PipelineExecutionSummaries"]
    expect(not executions, f"{when}: {HEALTHY.pipeline} (the healthy model's pipeline) started {len(executions)} time(s)")
    deployed = story.deployments[HEALTHY.key]
    expect(len(deployed) == 1, f"{when}: {HEALTHY.staging} was deployed {len(deployed)} times, expected once: {deployed}")
    expect(endpoint_config(w, HEALTHY.staging) == story.healthy_config,
           f"{when}: {HEALTHY.staging} now runs {endpoint_config(w, HEALTHY.staging)}, not its first config {story.healthy_config}")
    windows = story.monitored[HEALTHY.key]
    expect(windows == ["Completed"] * story.hours_played,
           f"{when}: the healthy model's windows of {story.hours_played} hours: {windows}")
    points = story.points[HEALTHY.key]
    expect(len(points) == story.hours_played, f"{when}: {HEALTHY.metric} of {HEALTHY.staging} for {len(points)} of {story.hours_played} hours")
    expect(not any(HEALTHY.breaches(v) for _, v in points), f"{when}: {HEALTHY.metric} of the healthy model crossed its threshold: {points}")
    expect(story.alarm_states[HEALTHY.alarm] == "OK", f"{when}: the healthy model's alarm is {story.alarm_states[HEALTHY.alarm]}")


def run_story(args: argparse.Namespace) -> int:
    tl = Timeline()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    story = Story(args, tl, dict(os.environ))
    w = World()
    rng = random.Random(args.seed)
    prices_rng = random.Random(args.seed + 1)  # its own draws: the drifting model's data stays as it was
    per_hour = 300 if args.short else 1500
    prices_per_hour = 200 if args.short else 600
    healthy_hours, drift_hours, recovery_hours, unlabelled_hours = (2, 2, 2, 1) if args.short else (4, 4, 4, 2)
    start = (dt.datetime.now(UTC) - dt.timedelta(hours=healthy_hours + drift_hours + recovery_hours + unlabelled_hours + 3)).replace(minute=0, second=0, microsecond=0)
    tl.sim_now = start
    ok = False
    try:
        tl.step("set-up: the template's rules and alarms, the catalogue, the pipelines, the registry")
        w.s3.create_bucket(Bucket=BUCKET)
        template = cfn.load_template(REPO / "infra" / "template.yaml")
        wire(story, w, template)
        for m in SPECS:
            w.sm.create_model_package_group(ModelPackageGroupName=m.group)
            w.sm.create_pipeline(PipelineName=m.pipeline, RoleArn=ROLE, PipelineDefinition=json.dumps(
                {"Version": "2020-12-01", "Parameters": [], "Steps": []}))
        # The alarms: the template's ModelQualityAlarm, rendered for each model (the demo creates
        # them; the catalogue names them with `external` thresholds).
        alarm = template_alarm(template)
        expect(alarm["AlarmName"] == ALARM, f"the template's alarm is {alarm['AlarmName']}, the demo expects {ALARM}")
        w.cw.put_metric_alarm(**alarm)
        tl.log("wire", f"alarm {ALARM}: {alarm['MetricName']} {alarm['ComparisonOperator']} {alarm['Threshold']} ({alarm['Namespace']})")
        estimate_alarm = template_alarm(template, {"MetricName": ESTIMATE_METRIC})
        expect(estimate_alarm["AlarmName"] == ESTIMATE_ALARM, f"the template's alarm on {ESTIMATE_METRIC} is {estimate_alarm['AlarmName']}, the demo expects {ESTIMATE_ALARM}")
        w.cw.put_metric_alarm(**estimate_alarm)
        tl.log("wire", f"alarm {ESTIMATE_ALARM}: {estimate_alarm['MetricName']} {estimate_alarm['ComparisonOperator']} {estimate_alarm['Threshold']} "
                       f"(the template's alarm with MetricName={ESTIMATE_METRIC})")
        healthy_alarm = template_alarm(template, alarm_params(HEALTHY))
        expect(healthy_alarm["AlarmName"] == HEALTHY.alarm, f"the template's alarm for {HEALTHY.group} is {healthy_alarm['AlarmName']}, the demo expects {HEALTHY.alarm}")
        expect({"Name": "Endpoint", "Value": HEALTHY.staging} in healthy_alarm["Dimensions"], f"{HEALTHY.alarm} watches {healthy_alarm['Dimensions']}")
        w.cw.put_metric_alarm(**healthy_alarm)
        tl.log("wire", f"alarm {HEALTHY.alarm}: {healthy_alarm['MetricName']} {healthy_alarm['ComparisonOperator']} {healthy_alarm['Threshold']} "
                       f"on {HEALTHY.staging} (the template's alarm rendered for the second model)")
        upload_catalogue(story, w, out_dir)
        for f in ("deploy-on-approval", "retrain-on-alarm", "custom-metrics"):
            fn = Watch(f, function_env(story.env, f), release=args.release, log=out_dir / f"{f}.log")
            story.functions[f] = fn
            fn.start()
        for fn in story.functions.values():
            fn.wait_ready(timeout=900)
        tl.log("functions", f"{len(story.functions)} functions under cargo lambda watch ({'release' if args.release else 'debug'})")
        tl.log("functions", f"the simulated training pipeline calibrates with {metrics_cli(story)}")

        tl.step("1. v1 of each model registered and approved → each deployed with data capture")
        v1 = register_package(story, w, DRIFTING, 1)
        approve(story, w, v1, start)
        drain(story, w, {"deploy-on-approval": 1})
        expect(serving_version(w, STAGING) == 1, "v1 is not serving after its approval")
        expect(endpoint_config(w, HEALTHY.staging) is None, f"{HEALTHY.staging} exists before its group's first approval")
        story.marks[DRIFTING.key].append((start, "v1 deployed"))
        p1 = register_package(story, w, HEALTHY, 1)
        approve(story, w, p1, start)
        drain(story, w, {"deploy-on-approval": 1})
        expect(serving_version(w, HEALTHY.staging) == 1, f"{HEALTHY.group} v1 is not serving after its approval")
        expect(serving_version(w, STAGING) == 1 and len(story.deployments[DRIFTING.key]) == 1,
               f"approving {HEALTHY.group} touched {STAGING}: {story.deployments[DRIFTING.key]}")
        story.healthy_config = endpoint_config(w, HEALTHY.staging)
        story.marks[HEALTHY.key].append((start, "v1 deployed"))

        hour = start
        def play(hours: int, drifted: bool, label: str, labels: bool = True, segment: bool = False) -> list[tuple[float | None, float]]:
            """Plays `hours` hours of both models; returns each hour's (estimated, realised)
            accuracy of the drifting one."""
            nonlocal hour
            seen = []
            for _ in range(hours):
                tl.sim_now = hour
                version, realised = traffic(story, w, rng, hour, per_hour, drifted, labels, segment)
                realised_rmse = price_traffic(story, w, prices_rng, hour, prices_per_hour)
                end = hour + dt.timedelta(hours=1)
                tl.sim_now = end
                # The label uploads → custom-metrics, event-driven, each routed by its prefix.
                drain(story, w, {"custom-metrics": 2 if labels else 1})
                values = run_monitoring(story, w, end)  # the hourly schedule, both endpoints
                story.hours_played += 1
                value, rmse = values[DRIFTING.key], values[HEALTHY.key]
                estimate = latest_estimate(story, hour)
                tl.log("metric", f"{label} hour {hour:%H}:00, v{version} serving: {METRIC} = {value if value is None else round(value, 3)}, "
                                 f"{ESTIMATE_METRIC} = {estimate if estimate is None else round(estimate, 3)}")
                tl.log("metric", f"  {HEALTHY.key} ({HEALTHY.staging}, v1 serving): {HEALTHY.metric} = {rmse if rmse is None else round(rmse, 3)} "
                                 f"(realised {realised_rmse:.3f})")
                seen.append((estimate, realised))
                fired = evaluate_alarm(story, w, end)
                fired_estimate = evaluate_alarm(story, w, end, DRIFTING, ESTIMATE_ALARM, ESTIMATE_METRIC)
                fired_healthy = evaluate_alarm(story, w, end, HEALTHY)
                outputs = drain(story, w)
                expect(not fired_healthy, f"the healthy model's alarm {HEALTHY.alarm} fired ({HEALTHY.metric} = {rmse})")
                if fired:
                    on_alarm(story, w, outputs, end)
                if fired_estimate:
                    on_estimate_alarm(story, w, outputs, end)
                check_healthy(story, w, f"{label} hour {hour:%H}:00")
                hour = end
            return seen

        tl.step("2. healthy traffic and ground truth for both → metrics within threshold")
        play(healthy_hours, False, "healthy")
        expect(story.alarm_state == "OK", f"alarm is {story.alarm_state} after healthy traffic")
        expect(all(v >= THRESHOLD for _, v in story.metric_points), "healthy metric below threshold")

        expect(len(story.estimate_points) == healthy_hours, f"custom-metrics published {ESTIMATE_METRIC} for {len(story.estimate_points)} of {healthy_hours} hours")

        tl.step(f"3. drifted traffic for {GROUP} → its metric crosses the threshold → its alarm fires ({HEALTHY.group}'s world unchanged)")
        story.marks[DRIFTING.key].append((hour, "drift begins"))
        drifted = play(drift_hours, True, "drifted")
        expect(story.pipeline_starts == 1, f"the pipeline started {story.pipeline_starts} times, expected exactly once")
        expect(serving_version(w, STAGING) == 2, "v2 is not serving after the retrain")
        expect(story.alarm_states[ESTIMATE_ALARM] == "OK", f"the {ESTIMATE_METRIC} alarm is {story.alarm_states[ESTIMATE_ALARM]} during the concept drift")
        expect(all(e is not None for e, _ in drifted), f"no {ESTIMATE_METRIC} in a drifted hour: {drifted}")
        tl.log("estimate", f"{ESTIMATE_METRIC} stayed {drifted[0][0]:.3f} while v1's realised accuracy fell to {drifted[0][1]:.3f}: the drift changed what the "
                           "scores mean, not the scores - a concept shift only labels can show (README \"When to trust it\")")

        tl.step("5. v2 serving → metrics recover")
        play(recovery_hours, True, "recovered")
        expect(story.alarm_state == "OK", f"alarm is {story.alarm_state} after v2 was deployed")

        tl.step(f"6. a new segment, its labels weeks away → {ESTIMATE_METRIC} (v2's calibration) crosses the threshold → its alarm fires")
        story.marks[DRIFTING.key].append((hour, "unlabelled segment"))
        unlabelled = play(unlabelled_hours, True, "unlabelled", labels=False, segment=True)
        expect(story.estimate_starts == 1, f"the {ESTIMATE_METRIC} alarm started {story.estimate_starts} executions, expected exactly one")
        expect(story.alarm_state == "OK", f"the accuracy alarm is {story.alarm_state}: windows without labels publish no accuracy (TreatMissingData ignore)")
        estimate, realised = unlabelled[0]
        expect(estimate is not None and abs(estimate - realised) < 0.1, f"estimate {estimate} vs realised {realised}")
        tl.log("estimate", f"once the labels land, the hour's realised accuracy will be {realised:.3f} (estimated {estimate:.3f} with no label)")

        tl.step(f"7. the healthy model: {HEALTHY.group} left alone through it all")
        check_healthy(story, w, "at the end")
        executions = w.sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
        expect(len(executions) == 2, f"{PIPELINE} ran {len(executions)} times, expected 2 (the accuracy alarm's and the estimate's)")
        tl.log("healthy", f"{HEALTHY.pipeline}: 0 executions; {HEALTHY.staging}: deployed once ({story.healthy_config}), never redeployed; "
                          f"{len(story.monitored[HEALTHY.key])} of {story.hours_played} windows monitored, {HEALTHY.metric} "
                          f"{min(v for _, v in story.points[HEALTHY.key]):.3f}-{max(v for _, v in story.points[HEALTHY.key]):.3f} "
                          f"(threshold {HEALTHY.threshold}); {PIPELINE}: {len(executions)} executions")
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
    tl.step(f"4. retrain-on-alarm starts {PIPELINE} (that model's pipeline only) exactly once; the run is simulated by registering v2")
    executions = w.sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    story.pipeline_starts = len(executions)
    tl.log("pipeline", f"{len(executions)} execution(s) of {PIPELINE} after {len(outputs.get('retrain-on-alarm', []))} deliveries")
    expect(len(outputs.get("retrain-on-alarm", [])) >= 2, "the alarm event was not delivered twice to retrain-on-alarm")
    expect(len(executions) == 1, f"expected exactly one pipeline execution, got {len(executions)}")
    started = [o for o in outputs.get("retrain-on-alarm", []) if isinstance(o, dict) and o.get("outcome") == "Started"]
    expect(len(started) == 1 and (started[0].get("model") or {}).get("group") == GROUP and started[0].get("pipelineName") == PIPELINE,
           f"the alarm of {GROUP} was not served by its catalogue entry: {started}")
    others = w.sm.list_pipeline_executions(PipelineName=HEALTHY.pipeline)["PipelineExecutionSummaries"]
    expect(not others, f"the alarm of {GROUP} started {HEALTHY.pipeline} too")
    tl.log("pipeline", f"0 executions of {HEALTHY.pipeline} (the other model's)")
    story.marks[DRIFTING.key].append((when, "alarm → retrain started"))
    v2 = register_package(story, w, DRIFTING, 2)
    tl.log("pipeline", "simulated run registered v2 (PendingManualApproval)")
    approve(story, w, v2, when + dt.timedelta(minutes=20))
    before = len(story.deployments[HEALTHY.key])
    drain(story, w, {"deploy-on-approval": 1})
    expect(serving_version(w, STAGING) == 2, "v2 is not serving after its approval")
    expect(len(story.deployments[HEALTHY.key]) == before and endpoint_config(w, HEALTHY.staging) == story.healthy_config,
           f"approving {GROUP} v2 redeployed {HEALTHY.staging}")
    story.marks[DRIFTING.key].append((when + dt.timedelta(minutes=20), "v2 deployed"))


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
    expect(len(started) == 1 and started[0].get("pipelineName") == PIPELINE and (started[0].get("model") or {}).get("group") == GROUP,
           f"expected one start of {PIPELINE} for the catalogue's {GROUP}: {deliveries}")
    story.marks[DRIFTING.key].append((when, "estimate alarm → retrain started"))


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
    print(f"  {DRIFTING.key} ({GROUP}): metric points: {len(story.metric_points)}   pipeline executions: {story.pipeline_starts}   final alarm state: {story.alarm_state}")
    print(f"    {ESTIMATE_METRIC} points: {len(story.estimate_points)}   executions it started: {story.estimate_starts}   "
          f"its alarm: {story.alarm_states[ESTIMATE_ALARM]}")
    print(f"  {HEALTHY.key} ({HEALTHY.group}): {HEALTHY.metric} points: {len(story.points[HEALTHY.key])}   windows monitored: "
          f"{len(story.monitored[HEALTHY.key])} of {story.hours_played} hours   deployments: {len(story.deployments[HEALTHY.key])}   "
          f"its alarm: {story.alarm_states[HEALTHY.alarm]}")
    print(f"  dashboard: {out_dir / 'dashboard.svg'}   timeline: {out_dir / 'timeline.json'}   catalogue: {out_dir / 'catalogue.json'}")
    print(f"\n{'the loop closed: drift → alarm → retrain → approve → deploy → recovery; before labels: ' + ESTIMATE_METRIC + ' → alarm → retrain; ' + HEALTHY.group + ' monitored throughout, never retrained' if ok else 'THE STORY DID NOT HAPPEN'}")


def render_svg(story: Story) -> str:
    """The dashboard: one panel per model on one time axis — its metric per hourly window (red
    where it breaches), the threshold, its deployment, drift and retraining marks (and, for the
    classifier, estimated_accuracy dashed)."""
    # Per panel: title and subtitle, a band of mark labels (3 rows), the plot, the time axis.
    W, L, R, HEAD, PH, PT, PB, ROW = 900, 70, 30, 56, 370, 100, 44, 13
    series = [p for m in SPECS for p in story.points[m.key]] + story.estimate_points
    marks = [mk for m in SPECS for mk in story.marks[m.key]]
    H = HEAD + PH * len(SPECS) + 24
    if not series:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}"><text x="20" y="40">no data</text></svg>'
    t0 = min([p[0] for p in series] + [mk[0] for mk in marks])
    t1 = max([p[0] + dt.timedelta(hours=1) for p in series] + [mk[0] for mk in marks])
    span = max((t1 - t0).total_seconds(), 1)
    x = lambda t: L + (W - L - R) * (t - t0).total_seconds() / span
    mid = lambda t: x(t + dt.timedelta(minutes=30))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{L}" y="24" font-size="16" font-weight="bold">driftloop demo · {len(SPECS)} models, one stack</text>',
             f'<text x="{L}" y="42" fill="#555">the model catalogue {CATALOGUE_URI}: each model its own endpoint, alarm and pipeline</text>']
    colors = {"retrain": "#9467bd", "deployed": "#2ca02c", "drift": "#ff7f0e", "alarm": "#d62728", "unlabelled": "#8c564b"}
    for n, m in enumerate(SPECS):
        top = HEAD + n * PH
        bottom = top + PH - PB
        pts = story.points[m.key]
        if m.problem == "Regression":  # an error metric: from 0 to a round value above the threshold and every point
            raw = max([m.threshold * 1.5] + [v * 1.1 for _, v in pts])
            lo, hi = 0.0, 4 * math.ceil(raw / 4 / 0.1) * 0.1
        else:
            lo, hi = 0.0, 1.0
        y = lambda v, top=top, bottom=bottom, lo=lo, hi=hi: top + PT + (bottom - top - PT) * (1 - (v - lo) / (hi - lo))
        est = story.estimate_points if m is DRIFTING else []
        parts.append(f'<rect x="4" y="{top + 4}" width="{W - 8}" height="{PH - 8}" fill="none" stroke="#ddd"/>')
        parts.append(f'<text x="{L}" y="{top + 24}" font-size="14" font-weight="bold">{m.staging} · group {m.group} ({m.problem})</text>')
        parts.append(f'<text x="{L}" y="{top + 42}" fill="#555">{m.metric}{" and " + ESTIMATE_METRIC if est else ""} (model-metrics) · {m.part}</text>')
        legend = f'<tspan fill="#1f77b4">— {m.metric}</tspan>'
        if est:
            legend = f'<tspan fill="#8c564b">- - {ESTIMATE_METRIC} (no labels needed)</tspan>   ' + legend
        parts.append(f'<text x="{W - R}" y="{top + 42}" text-anchor="end">{legend}</text>')
        for i in range(5):
            v = lo + (hi - lo) * i / 4
            parts.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                         f'<text x="{L - 8}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{v:.2f}</text>')
        side = "below" if m.comparison == "LessThanThreshold" else "above"
        parts.append(f'<line x1="{L}" x2="{W - R}" y1="{y(m.threshold):.1f}" y2="{y(m.threshold):.1f}" stroke="#d62728" stroke-dasharray="6,4"/>'
                     f'<text x="{W - R}" y="{y(m.threshold) - 6:.1f}" text-anchor="end" fill="#d62728">threshold {m.threshold} (alarm {side})</text>')
        for i, (t, label) in enumerate(sorted(story.marks[m.key])):
            color = next((c for k, c in colors.items() if k in label), "#555")
            dash = ' stroke-dasharray="3,3"' if "drift" in label else ""
            # A label near the right edge ends at its line instead of starting there.
            anchor, tx = ("end", x(t) - 4) if x(t) > W - R - 160 else ("start", x(t) + 4)
            row_y = top + PT - 6 - ROW * (2 - i % 3)
            parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{row_y - ROW + 2}" y2="{bottom}" stroke="{color}" stroke-width="2"{dash}/>'
                         f'<text x="{tx:.1f}" y="{row_y}" text-anchor="{anchor}" fill="{color}">{label}</text>')
        if pts:
            path = " ".join(f"{'M' if i == 0 else 'L'}{mid(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(pts))
            parts.append(f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="2.5"/>')
            for t, v in pts:
                fill = "#d62728" if m.breaches(v) else "#1f77b4"
                parts.append(f'<circle cx="{mid(t):.1f}" cy="{y(v):.1f}" r="4" fill="{fill}"/>')
        if est:
            path = " ".join(f"{'M' if i == 0 else 'L'}{mid(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(est))
            parts.append(f'<path d="{path}" fill="none" stroke="#8c564b" stroke-width="2" stroke-dasharray="6,3"/>')
            for t, v in est:
                fill = "#d62728" if v < THRESHOLD else "#8c564b"
                parts.append(f'<rect x="{mid(t) - 3:.1f}" y="{y(v) - 3:.1f}" width="6" height="6" fill="{fill}"/>')
        if m is HEALTHY:
            deployed = len(story.deployments[m.key])
            parts.append(f'<text x="{L + 8}" y="{bottom - 10}" fill="#2ca02c">{len(story.monitored[m.key])} of {story.hours_played} windows monitored · '
                         f'deployed {deployed}× · pipeline {m.pipeline} never started</text>')
        axis = sorted({t for t, _ in series})
        step = max(1, len(axis) // 8)
        for t in axis[::step]:
            parts.append(f'<text x="{x(t):.1f}" y="{bottom + 18}" text-anchor="middle" fill="#555">{t:%H:%M}</text>')
    parts.append(f'<text x="{(W + L) / 2}" y="{H - 10}" text-anchor="middle" fill="#555">simulated time (UTC), one point per hourly window</text>')
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
