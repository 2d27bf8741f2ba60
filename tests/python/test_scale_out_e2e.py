"""The scale-out mode end to end (issue 18): the template's ScaleOutStateMachine on the emulator's
ASL interpreter, its lambda:invoke tasks routed to the custom-metrics binary under
`cargo lambda watch` (driftloop_compat.stepfunctions).

A window of 60 capture objects and 15 label objects (labels of many capture objects each, some
predictions unlabelled, one label without a prediction) is evaluated twice by the same binary:
once in one invocation, once handed to the state machine (cut into byte slices that split both
sides). The reports, the counts, the metrics and the event are the same; a re-run publishes no
metric twice; an execution with a failing item fails visibly and publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
import requests

from lambda_watch import emulator_clients, REPO, Watch, emulator_env

BUCKET = "driftloop-scaleout"
ENDPOINT = "churn"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:custom-metrics"


def cap(event_id: str, time_: str, score: float, age: int) -> str:
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": f"{age},1.5", "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": str(score), "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": time_},
        "eventVersion": "0",
    })


def label(event_id: str, value: int) -> str:
    return json.dumps({"groundTruthData": {"data": str(value), "encoding": "CSV"},
                       "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


def definition() -> str:
    """The template's state machine, substituted as CloudFormation would."""
    spec = json.loads((REPO / "infra" / "loop.json").read_text())
    props = spec["resources"]["ScaleOutStateMachine"]["Properties"]
    text = props["DefinitionString"]
    return text.replace("${CustomMetricsArn}", FUNCTION_ARN).replace("${MaxConcurrency}", "8")


@pytest.fixture(scope="module")
def env():
    return emulator_env()


@pytest.fixture(scope="module")
def aws(env):
    clients = emulator_clients(env, ("s3", "events", "sqs", "stepfunctions"))
    try:
        clients["s3"].create_bucket(Bucket=BUCKET)
    except clients["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    return clients


def seed(aws, run_id: str, hour: dt.datetime) -> None:
    path = hour.strftime("%Y/%m/%d/%H")
    labels: list[list[str]] = [[] for _ in range(15)]
    for f in range(60):
        lines = []
        for r in range(8):
            i = f * 8 + r
            eid = f"{run_id}-{i:05d}"
            score = (i % 10) / 10 + 0.05
            t = (hour + dt.timedelta(minutes=f % 60, seconds=r * 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(cap(eid, t, score, 20 + i % 40))
            if i % 13:
                right = int(score > 0.5)
                labels[i % 15].append(label(eid, 1 - right if i % 5 == 0 else right))
        aws["s3"].put_object(Bucket=BUCKET, Key=f"capture/{run_id}/{ENDPOINT}/AllTraffic/{path}/{f:02d}-00-000-x.jsonl",
                             Body=("\n".join(lines) + "\n").encode())
    labels[4].append(label("no-such-prediction", 1))
    for k, ls in enumerate(labels):
        aws["s3"].put_object(Bucket=BUCKET, Key=f"ground-truth/{run_id}/{path}/labels-{k:04d}.jsonl",
                             Body=("\n".join(ls) + "\n").encode())


def received(aws, queue: str, n: int) -> list[dict]:
    out: list[dict] = []
    for _ in range(15):
        for m in aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            out.append(json.loads(m["Body"]))
            aws["sqs"].delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        if len(out) >= n:
            break
    return out


def key_of(uri: str) -> str:
    assert uri.startswith(f"s3://{BUCKET}/"), uri
    return uri[len(f"s3://{BUCKET}/"):]


def read_json(aws, uri: str) -> dict:
    return json.loads(aws["s3"].get_object(Bucket=BUCKET, Key=key_of(uri))["Body"].read())


def wait(aws, arn: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while (d := aws["stepfunctions"].describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.time() < deadline, f"{arn} still running"
        time.sleep(0.5)
    return d


def comparable_stats(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc.pop("evaluation_time", None)
    (doc.get("dataset") or {}).pop("evaluation_time", None)
    return doc


def test_a_window_through_the_state_machine_equals_one_invocation(env, aws):
    run_id = "so-" + uuid.uuid4().hex[:8]
    hour = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    window = {"start": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "end": (hour + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    seed(aws, run_id, hour)
    ev, sqs, sfn = aws["events"], aws["sqs"], aws["stepfunctions"]
    ev.create_event_bus(Name=run_id)
    queue = sqs.create_queue(QueueName=run_id)["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ev.put_rule(Name=run_id, EventBusName=run_id, EventPattern=json.dumps({"source": ["driftloop"]}))
    ev.put_targets(Rule=run_id, EventBusName=run_id, Targets=[{"Id": "q", "Arn": qarn}])
    machine = sfn.create_state_machine(name=f"{run_id}-scale-out", definition=definition(),
                                       roleArn="arn:aws:iam::123456789012:role/scale-out")["stateMachineArn"]
    extra = {
        "CAPTURE_S3_URI": f"s3://{BUCKET}/capture/{run_id}",
        "GROUND_TRUTH_S3_URI": f"s3://{BUCKET}/ground-truth/{run_id}",
        "REPORT_S3_URI": f"s3://{BUCKET}/reports/{run_id}",
        "ENDPOINT_NAME": ENDPOINT,
        "PROBLEM_TYPE": "BinaryClassification",
        "DATA_QUALITY": "true",
        "MONITORING_SCHEDULE_NAME": "churn-quality",
        "METRICS_NAMESPACE": f"driftloop/{run_id}",
        "EVENT_BUS_NAME": run_id,
        "DEDUP_QUIET_SECONDS": "0",
        "SCALE_OUT_STATE_MACHINE_ARN": machine,
        "SCALE_OUT_BYTES": "0",          # only on request: the same binary serves both runs
        "SCALE_OUT_SLICE_BYTES": "4000",  # ~ one capture object or one label object per worker
    }
    emu = env["AWS_ENDPOINT_URL"]
    with Watch("custom-metrics", env, extra) as w:
        routes = requests.post(f"{emu}/driftloop/lambda-routes", json={"routes": {"custom-metrics": f"http://127.0.0.1:{w.port}"}},
                               timeout=10)
        routes.raise_for_status()
        try:
            # 1. One invocation.
            ok, single, _, _ = w.post({"window": window})
            assert ok, single
            [o1] = single["windows"]
            assert o1["status"] == "Completed", o1
            assert o1["metricsPublished"] > 0, o1
            reports = o1["reports"]
            one = {k: read_json(aws, reports[k]) for k in ("statistics", "constraintViolations", "summary")}
            [e1] = received(aws, queue, 1)
            # Start over: the window's folder (reports, CloudWatch ledger) removed.
            folder = key_of(reports["summary"]).rsplit("/", 1)[0] + "/"
            for obj in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix=folder).get("Contents", []):
                aws["s3"].delete_object(Bucket=BUCKET, Key=obj["Key"])

            # 2. Handed to the state machine.
            ok, out, _, _ = w.post({"window": window, "scaleOut": True})
            assert ok, out
            [o2] = out["windows"]
            assert o2["status"] == "ScaledOut" and o2["runId"] == o1["runId"], o2
            d = wait(aws, o2["executionArn"])
            assert d["status"] == "SUCCEEDED", d
            reduced = json.loads(d["output"])
            assert reduced["status"] == "Completed" and reduced["runId"] == o1["runId"]
            assert reduced["metricsPublished"] == o1["metricsPublished"]
            execution_input = json.loads(d["input"])
            slices = execution_input["slices"]
            listed = aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix=slices["prefix"])["Contents"]
            assert len(listed) == slices["count"] >= 40, slices
            sides = [read_json(aws, f"s3://{BUCKET}/{o['Key']}") for o in listed]
            assert sum(1 for s in sides if s["groundTruth"]) >= 10, "the labels are split over workers too"
            assert max(len(s["capture"]) for s in sides) <= 2
            [mr] = sfn.list_map_runs(executionArn=o2["executionArn"])["mapRuns"]
            counts = sfn.describe_map_run(mapRunArn=mr["mapRunArn"])["itemCounts"]
            assert counts["succeeded"] == slices["count"] and counts["failed"] == 0, counts

            two = {k: read_json(aws, reports[k]) for k in ("statistics", "constraintViolations", "summary")}
            assert comparable_stats(two["statistics"]) == comparable_stats(one["statistics"])
            assert two["constraintViolations"] == one["constraintViolations"]
            for k in ("runId", "status", "counts", "metrics", "violations", "inputs", "fingerprint", "text", "engineCounts"):
                assert two["summary"][k] == one["summary"][k], k
            assert one["summary"]["counts"]["records_unmatched_labels"] == 1
            assert one["summary"]["counts"]["records_unmatched_predictions"] > 0
            [e2] = received(aws, queue, 1)
            assert e2["detail"] == e1["detail"], "the same event"

            # 3. Re-run (a new execution over the same plan): same reports, no metric sent twice.
            again = sfn.start_execution(stateMachineArn=machine, name=f"{run_id}-again", input=d["input"])
            d3 = wait(aws, again["executionArn"])
            assert d3["status"] == "SUCCEEDED", d3
            assert json.loads(d3["output"])["metricsPublished"] == 0
            assert json.loads(d3["output"])["metricsSkipped"], d3["output"]
            assert comparable_stats(read_json(aws, reports["statistics"])) == comparable_stats(one["statistics"])
            received(aws, queue, 1)  # its event (same runId: consumers drop duplicates)

            # 4. A failing item fails the run visibly (no Catch; ToleratedFailureCount 0) and the
            #    reduce does not run: an item that is no slice of the plan is a permanent error.
            bad_prefix = slices["prefix"].replace("/slices/", "/not-slices/")
            aws["s3"].put_object(Bucket=BUCKET, Key=f"{bad_prefix}000000.json", Body=b"{}")
            aws["s3"].put_object(Bucket=BUCKET, Key=f"{bad_prefix}000001.json", Body=b"{}")
            bad = dict(execution_input, slices=dict(slices, prefix=bad_prefix))
            failed = sfn.start_execution(stateMachineArn=machine, name=f"{run_id}-bad", input=json.dumps(bad))
            d4 = wait(aws, failed["executionArn"])
            assert d4["status"] == "FAILED", d4
            assert d4["error"] == "States.ExceedToleratedFailureThreshold", d4
            history = [e["type"] for e in sfn.get_execution_history(executionArn=failed["executionArn"])["events"]]
            assert "MapRunFailed" in history and "ExecutionFailed" in history
            assert not any(t.startswith("TaskStateEntered") for t in history), "the reduce must not run"
            assert received(aws, queue, 0) == []
        finally:
            requests.post(f"{emu}/driftloop/lambda-routes", json={"routes": {"custom-metrics": ""}}, timeout=10)
