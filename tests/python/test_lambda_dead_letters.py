"""Issue 17: a failed invocation reaches the dead-letter destination with its error type, end to end.

custom-metrics (the real binary under `cargo lambda watch`) is registered with the emulator as a
Lambda function configured as infra/template.yaml configures it (CustomMetricsInvokeConfig:
MaximumRetryAttempts, MaximumEventAgeInSeconds, OnFailure -> its queue). An asynchronous invoke
(what EventBridge does) and an EventBridge rule delivery, each with a window that ends before it
starts, fail with Permanent.BadEvent on every attempt; Lambda's invocation record then waits in the
queue, carrying the request and the error type (driftloop_compat.lambda_async plays Lambda's async
machinery; tests/python/test_emulator_lambda_async.py shows the gap on plain moto).
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import pytest
import requests

import cfn
from lambda_watch import emulator_clients, REPO, Watch, emulator_env

BUCKET = "driftloop-monitoring"
BAD_WINDOW = {"window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T09:00:00Z"}}


@pytest.fixture(scope="module")
def env():
    return emulator_env()


@pytest.fixture(scope="module")
def aws(env):
    return emulator_clients(env, ("iam", "lambda", "sqs", "events", "s3"))


def template_invoke_config() -> dict:
    t = cfn.load_template(REPO / "infra" / "template.yaml")
    ev = cfn.Evaluator(t, cfn.parameter_values(t))
    props = ev.value(t["Resources"]["CustomMetricsInvokeConfig"]["Properties"])
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == ev.get_att("CustomMetricsDLQ", "Arn")
    return props


def receive(aws, url, n, timeout):
    out, deadline = [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        for m in aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", []):
            out.append(json.loads(m["Body"]))
            aws["sqs"].delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_a_failing_custom_metrics_invocation_lands_in_its_queue_with_its_error_type(env, aws):
    config = template_invoke_config()
    retries = int(config["MaximumRetryAttempts"])
    assert retries == 2, "the template retries custom-metrics twice"
    run = "dl-" + uuid.uuid4().hex[:10]
    try:
        aws["s3"].create_bucket(Bucket=BUCKET)
    except aws["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    queue_url = aws["sqs"].create_queue(QueueName=f"{run}-CustomMetricsDLQ")["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = aws["iam"].create_role(RoleName=run, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "")
    name = f"{run}-custom-metrics"
    fn_arn = aws["lambda"].create_function(FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                                           Code={"ZipFile": buf.getvalue()}, Timeout=600)["FunctionArn"]
    aws["lambda"].put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=retries, MaximumEventAgeInSeconds=int(config["MaximumEventAgeInSeconds"]),
        DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    extra = {
        "CAPTURE_S3_URI": f"s3://{BUCKET}/capture",
        "GROUND_TRUTH_S3_URI": f"s3://{BUCKET}/ground-truth/churn",
        "REPORT_S3_URI": f"s3://{BUCKET}/reports/{run}",
        "ENDPOINT_NAME": "churn",
        "PROBLEM_TYPE": "BinaryClassification",
        "MONITORING_SCHEDULE_NAME": "churn-quality",
        "EVENT_BUS_NAME": run,
        "AWS_LAMBDA_LOG_LEVEL": "info",
    }
    with Watch("custom-metrics", env, extra) as w:
        url = f"http://127.0.0.1:{w.port}/2015-03-31/functions/custom-metrics/invocations"
        r = requests.post(f"{env['AWS_ENDPOINT_URL']}/driftloop/lambda/runtimes",
                          json={"FunctionName": name, "Url": url, "RetryDelaySeconds": 0.2}, timeout=10)
        r.raise_for_status()
        # 1. InvocationType=Event, as EventBridge invokes.
        out = aws["lambda"].invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(BAD_WINDOW).encode())
        assert out["StatusCode"] == 202
        [record] = receive(aws, queue_url, 1, timeout=600)
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 1 + retries
        assert record["requestContext"]["functionArn"] == f"{fn_arn}:$LATEST"
        assert record["requestPayload"] == BAD_WINDOW
        assert record["responseContext"]["functionError"] == "Unhandled"
        error = record["responsePayload"]
        assert error["errorType"] == "Permanent.BadEvent", error
        assert error["errorMessage"], error

        # 2. Through an EventBridge rule (an on-demand monitoring request with the same bad window).
        ev = aws["events"]
        ev.create_event_bus(Name=run)
        ev.put_rule(Name=run, EventBusName=run, EventPattern=json.dumps(
            {"source": ["driftloop"], "detail-type": ["Model Monitoring Requested"]}))
        ev.put_targets(Rule=run, EventBusName=run, Targets=[{"Id": "custom-metrics", "Arn": fn_arn}])
        sent = ev.put_events(Entries=[{"Source": "driftloop", "DetailType": "Model Monitoring Requested", "EventBusName": run,
                                       "Detail": json.dumps(BAD_WINDOW)}])
        assert sent["FailedEntryCount"] == 0
        [record] = receive(aws, queue_url, 1, timeout=600)
        assert record["requestPayload"]["id"] == sent["Entries"][0]["EventId"]
        assert record["requestPayload"]["detail"] == BAD_WINDOW
        assert record["responsePayload"]["errorType"].startswith("Permanent."), record["responsePayload"]
        assert record["requestContext"]["approximateInvokeCount"] == 1 + retries
