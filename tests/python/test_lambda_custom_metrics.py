"""custom-metrics as a user runs it: the binary under `cargo lambda watch`, invoked through
`cargo lambda invoke` with every `events/custom-metrics-*.json` sample, against the seeded emulator.

The samples name fixed places (bucket `driftloop-monitoring`, ground truth under
`ground-truth/churn/`, 2024-05-01); each test run writes its reports under its own prefix and
listens on its own event bus, so runs do not see each other's outputs.
"""

import json
import time
import uuid

import pytest

from lambda_watch import emulator_clients, REPO, Watch, emulator_env

BUCKET = "driftloop-monitoring"
EVENTS = REPO / "events"
SAMPLES = sorted(EVENTS.glob("custom-metrics-*.json"))
ENDPOINT = "churn"


def cap(event_id, time_, score):
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "42,1.5", "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": str(score), "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": time_},
        "eventVersion": "0",
    })


def label(event_id, value):
    return json.dumps({"groundTruthData": {"data": str(value), "encoding": "CSV"}, "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


@pytest.fixture(scope="module")
def env():
    return emulator_env()


@pytest.fixture(scope="module")
def aws(env):
    clients = emulator_clients(env, ("s3", "events", "sqs"))
    try:
        clients["s3"].create_bucket(Bucket=BUCKET)
    except clients["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    return clients


@pytest.fixture(scope="module")
def run(aws):
    """A fresh report prefix, and a bus whose rule delivers the function's events to a queue."""
    run_id = "py-" + uuid.uuid4().hex[:10]
    ev, sqs = aws["events"], aws["sqs"]
    ev.create_event_bus(Name=run_id)
    queue_url = sqs.create_queue(QueueName=run_id)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ev.put_rule(Name=run_id, EventBusName=run_id, EventPattern=json.dumps({"source": ["driftloop"]}))
    ev.put_targets(Rule=run_id, EventBusName=run_id, Targets=[{"Id": "q", "Arn": arn}])
    return {"id": run_id, "queue": queue_url}


def put(aws, key, lines):
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


def seed_hour(aws, hour, n, salt):
    """`n` predictions in hour `2024-05-01T{hour}` and their labels (every 4th wrong)."""
    path = f"2024/05/01/{hour}"
    ids = [f"{salt}-{hour}-{i}" for i in range(n)]
    put(aws, f"capture/{ENDPOINT}/AllTraffic/{path}/00-00-000-a.jsonl",
        [cap(e, f"2024-05-01T{hour}:{i % 60:02d}:00Z", 0.9 if i % 2 == 0 else 0.1) for i, e in enumerate(ids)])
    key = f"ground-truth/churn/{path}/labels-0001.jsonl"
    put(aws, key, [label(e, int((i % 2 == 0) != (i % 4 == 1))) for i, e in enumerate(ids)])
    return key


def seed_batch(aws, n, salt):
    """A daily batch transform with GenerateInferenceId: manifests and CSV output `score,id,time`."""
    ids = [f"{salt}-batch-{i}" for i in range(n)]
    put(aws, "transform/churn-daily/output/part-0.csv.out",
        [f"{0.9 if i % 2 == 0 else 0.1},{e},2024-05-01T03:{i % 60:02d}:00Z" for i, e in enumerate(ids)])
    capture = "batch-capture/churn-daily"
    aws["s3"].put_object(Bucket=BUCKET, Key=f"{capture}/output/2024/05/01/03/manifest.json",
                         Body=json.dumps([{"prefix": f"s3://{BUCKET}/transform/churn-daily/output/"}, "part-0.csv.out"]).encode())
    aws["s3"].put_object(Bucket=BUCKET, Key=f"{capture}/input/2024/05/01/03/manifest.json",
                         Body=json.dumps([{"prefix": f"s3://{BUCKET}/transform/churn-daily/input/"}, "part-0.csv"]).encode())
    put(aws, "ground-truth/churn/2024/05/01/20/batch-labels.jsonl", [label(e, 1 if i % 2 == 0 else 0) for i, e in enumerate(ids)])


def received(aws, queue, n):
    out = []
    for _ in range(10):
        for m in aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            out.append(json.loads(m["Body"]))
            aws["sqs"].delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        if len(out) >= n:
            break
    return out


def read_json(aws, uri):
    assert uri.startswith(f"s3://{BUCKET}/"), uri
    body = aws["s3"].get_object(Bucket=BUCKET, Key=uri[len(f"s3://{BUCKET}/"):])["Body"].read()
    return json.loads(body)


def invoke(w, sample):
    rc, out, err = w.invoke("custom-metrics", data_file=sample)
    assert rc == 0, f"{sample.name}: {out}\n{err}"
    return json.loads(out)


def test_every_sample_under_cargo_lambda_watch(env, aws, run):
    assert {s.name for s in SAMPLES} == {
        "custom-metrics-schedule.json", "custom-metrics-ground-truth-created.json",
        "custom-metrics-backfill.json", "custom-metrics-batch-transform.json",
    }
    salt = run["id"]
    upload_key = seed_hour(aws, "09", 40, salt)
    for hour in ("06", "07", "08"):
        seed_hour(aws, hour, 20, salt)
    seed_batch(aws, 30, salt)
    extra = {
        "CAPTURE_S3_URI": f"s3://{BUCKET}/capture",
        "GROUND_TRUTH_S3_URI": f"s3://{BUCKET}/ground-truth/churn",
        "REPORT_S3_URI": f"s3://{BUCKET}/reports/{run['id']}",
        "ENDPOINT_NAME": ENDPOINT,
        "PROBLEM_TYPE": "BinaryClassification",
        "MONITORING_SCHEDULE_NAME": "churn-quality",
        "EVENT_BUS_NAME": run["id"],
        "DEDUP_QUIET_SECONDS": "0",
        "AWS_LAMBDA_LOG_LEVEL": "info",
    }
    with Watch("custom-metrics", env, extra) as w:
        # Schedule at 10:05: the window 09:00-10:00.
        out = invoke(w, EVENTS / "custom-metrics-schedule.json")
        [o] = out["windows"]
        assert o["window"] == {"start": "2024-05-01T09:00:00.000Z", "end": "2024-05-01T10:00:00.000Z"}
        assert o["status"] == "Completed" and o["counts"]["records_matched"] == 40
        # The window is older than CloudWatch's two weeks: reports and event, no metrics.
        assert "14 days" in o["metricsSkipped"]
        stats = read_json(aws, o["reports"]["statistics"])
        assert stats["binary_classification_metrics"]["accuracy"]["value"] == 0.75
        assert read_json(aws, o["reports"]["summary"])["runId"] == o["runId"]
        [event] = received(aws, run["queue"], 1)
        assert event["detail-type"] == "Model Monitoring Completed"
        assert event["detail"]["reports"] == o["reports"]

        # The labels' Object Created event, after the scheduled run read them: nothing new.
        out = invoke(w, EVENTS / "custom-metrics-ground-truth-created.json")
        assert [x["decision"] for x in out["windows"]] == ["up_to_date"]
        # Labels corrected (re-uploaded): the window is recomputed once.
        time.sleep(1.1)
        seed_hour(aws, "09", 40, salt)
        out = invoke(w, EVENTS / "custom-metrics-ground-truth-created.json")
        assert [x["decision"] for x in out["windows"]] == ["run"]
        assert out["trigger"]["object"]["key"] == upload_key

        # Backfill 06:00-09:00 in hourly windows.
        out = invoke(w, EVENTS / "custom-metrics-backfill.json")
        assert [x["window"]["start"][11:16] for x in out["windows"]] == ["06:00", "07:00", "08:00"]
        assert all(x["counts"]["records_matched"] == 20 for x in out["windows"])

        # Batch transform: manifests, output rows joined through the generated inference id.
        out = invoke(w, EVENTS / "custom-metrics-batch-transform.json")
        [o] = out["windows"]
        assert o["status"] == "Completed", o
        assert o["counts"]["records_matched"] == 30
        assert o["metrics"]["accuracy"] == 1.0
        assert "/batch-transform/churn-daily-batch/" in o["reports"]["statistics"]

        events = received(aws, run["queue"], 5)
        assert len(events) == 5, [e["detail"]["trigger"] for e in events]
        assert sorted(e["detail"]["trigger"] for e in events) == ["direct"] * 4 + ["groundTruthUpload"]

        # A bad request is a permanent error that says what is wrong.
        rc, out, err = w.invoke("custom-metrics", data={"window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T09:00:00Z"}})
        assert rc != 0
        assert "Permanent.BadEvent" in out + err

