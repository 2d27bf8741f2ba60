"""Lambda asynchronous invocation (driftloop_compat.lambda_async): EventBridge Lambda targets and
InvocationType=Event, retried per the function's event invoke config, then recorded in its
OnFailure destination with the error type - the gap on plain moto, and the fix.

The function here is a stand-in Runtime API endpoint (a local HTTP server answering like `cargo
lambda watch`); tests/python/test_lambda_dead_letters.py does the same with a real binary.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from botocore.exceptions import ClientError

from test_emulator_support import compat, plain, unique  # noqa: F401

ACCOUNT = "123456789012"


class FakeRuntime:
    """Answers invocations like `cargo lambda watch`: /fail/... with a Diagnostic (and
    X-Amz-Function-Error), /ok/... with the event echoed; records every request body."""

    def __init__(self):
        calls = self.calls = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                calls.append((self.path, json.loads(body or b"null")))
                if "/fail/" in self.path:
                    out = json.dumps({"errorType": "Permanent.BadEvent", "errorMessage": "window end before start"}).encode()
                    self.send_response(200)
                    self.send_header("X-Amz-Function-Error", "Unhandled")
                else:
                    out = json.dumps({"echo": json.loads(body or b"null")}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, kind: str, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{kind}/2015-03-31/functions/{name}/invocations"

    def count(self, name: str) -> int:
        return sum(1 for path, _ in self.calls if f"/functions/{name}/" in path)


@pytest.fixture(scope="module")
def runtime():
    r = FakeRuntime()
    yield r
    r.server.shutdown()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


def _queue(server, name):
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _function(server, *, retries: int, on_failure: str | None = None, on_success: str | None = None) -> tuple[str, str]:
    iam, lam = server.client("iam"), server.client("lambda")
    name = unique("fn")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    arn = lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                              Code={"ZipFile": _zip()}, Timeout=30)["FunctionArn"]
    destinations = {}
    if on_failure:
        destinations["OnFailure"] = {"Destination": on_failure}
    if on_success:
        destinations["OnSuccess"] = {"Destination": on_success}
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=retries, MaximumEventAgeInSeconds=3600,
                                         DestinationConfig=destinations)
    return name, arn


def _register(server, name, url):
    r = requests.post(f"{server.url}/driftloop/lambda/runtimes",
                      json={"FunctionName": name, "Url": url, "RetryDelaySeconds": 0.05}, timeout=10)
    r.raise_for_status()
    return r.json()


def _receive(server, url, n=1, timeout=15.0):
    sqs, out, deadline = server.client("sqs"), [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     MessageAttributeNames=["All"]).get("Messages", []):
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


# ------------------------------------------------------------------------------------ the gap
def test_plain_moto_async_failure_reaches_no_destination(plain):
    url, qarn = _queue(plain, unique("dlq"))
    name, _ = _function(plain, retries=1, on_failure=qarn)
    out = plain.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b'{"bad": true}')
    assert out["StatusCode"] == 202
    assert _receive(plain, url, timeout=3) == [], "plain moto records no failed async invocation"


def test_plain_moto_cannot_deliver_to_a_lambda_target(plain):
    _, fn_arn = _function(plain, retries=0)
    ev = plain.client("events")
    rule = unique("rule")
    ev.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))
    ev.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": fn_arn}])
    with pytest.raises(ClientError) as err:  # NotImplementedError inside PutEvents
        ev.put_events(Entries=[{"Source": rule, "DetailType": "x", "Detail": "{}"}])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500


# ------------------------------------------------------------------------------------ the fix
def test_a_failed_async_invocation_is_retried_then_recorded_on_failure(compat, runtime):
    url, qarn = _queue(compat, unique("dlq"))
    name, fn_arn = _function(compat, retries=1, on_failure=qarn)
    _register(compat, name, runtime.url("fail", name))
    payload = {"window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T09:00:00Z"}}
    out = compat.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload).encode())
    assert out["StatusCode"] == 202
    [m] = _receive(compat, url)
    record = json.loads(m["Body"])
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    ctx = record["requestContext"]
    assert ctx["condition"] == "RetriesExhausted" and ctx["approximateInvokeCount"] == 2
    assert ctx["functionArn"] == f"{fn_arn}:$LATEST" and re.fullmatch(r"[0-9a-f-]{36}", ctx["requestId"])
    assert record["requestPayload"] == payload
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"] == {"errorType": "Permanent.BadEvent", "errorMessage": "window end before start"}
    assert runtime.count(name) == 2, "1 + MaximumRetryAttempts attempts"
    assert _receive(compat, url, timeout=2) == [], "one record per event"


def test_no_retries_means_one_attempt(compat, runtime):
    url, qarn = _queue(compat, unique("dlq"))
    name, _ = _function(compat, retries=0, on_failure=qarn)
    _register(compat, name, runtime.url("fail", name))
    compat.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    [m] = _receive(compat, url)
    assert json.loads(m["Body"])["requestContext"]["approximateInvokeCount"] == 1
    assert runtime.count(name) == 1


def test_a_success_goes_to_on_success_only(compat, runtime):
    fail_url, fail_arn = _queue(compat, unique("dlq"))
    ok_url, ok_arn = _queue(compat, unique("ok"))
    name, _ = _function(compat, retries=2, on_failure=fail_arn, on_success=ok_arn)
    _register(compat, name, runtime.url("ok", name))
    compat.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 1}')
    [m] = _receive(compat, ok_url)
    record = json.loads(m["Body"])
    assert record["requestContext"]["condition"] == "Success" and record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"] == {"echo": {"n": 1}} and "functionError" not in record["responseContext"]
    assert _receive(compat, fail_url, timeout=2) == []


def test_an_eventbridge_lambda_target_is_invoked_asynchronously(compat, runtime):
    url, qarn = _queue(compat, unique("dlq"))
    name, fn_arn = _function(compat, retries=1, on_failure=qarn)
    _register(compat, name, runtime.url("fail", name))
    ev = compat.client("events")
    rule = unique("rule")
    ev.put_rule(Name=rule, EventPattern=json.dumps({"source": ["driftloop"], "detail-type": [rule]}))
    ev.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": fn_arn}])
    out = ev.put_events(Entries=[{"Source": "driftloop", "DetailType": rule, "Detail": json.dumps({"k": "v"})}])
    assert out["FailedEntryCount"] == 0
    [m] = _receive(compat, url)
    record = json.loads(m["Body"])
    event = record["requestPayload"]
    assert event["detail-type"] == rule and event["detail"] == {"k": "v"} and event["account"] == ACCOUNT
    assert event["id"] == out["Entries"][0]["EventId"] and event["time"].endswith("Z")
    assert record["responsePayload"]["errorType"] == "Permanent.BadEvent"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_a_rule_targeting_a_missing_function_dead_letters_the_event(compat):
    url, qarn = _queue(compat, unique("rule-dlq"))
    ev = compat.client("events")
    rule = unique("rule")
    rule_arn = ev.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))["RuleArn"]
    missing = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{unique('gone')}"
    ev.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": missing, "DeadLetterConfig": {"Arn": qarn}}])
    ev.put_events(Entries=[{"Source": rule, "DetailType": "x", "Detail": "{}"}])
    [m] = _receive(compat, url)
    attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
    assert attrs["ERROR_CODE"] == "RESOURCE_NOT_FOUND" and attrs["RULE_ARN"] == rule_arn and attrs["TARGET_ARN"] == missing
    assert json.loads(m["Body"])["source"] == rule


def test_a_synchronous_invoke_of_a_registered_function_reports_its_error(compat, runtime):
    name, _ = _function(compat, retries=0)
    _register(compat, name, runtime.url("fail", name))
    out = compat.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorType"] == "Permanent.BadEvent"


def test_the_registry_refuses_bad_entries_and_is_reset(compat):
    r = requests.post(f"{compat.url}/driftloop/lambda/runtimes", json={"FunctionName": "x", "Url": "ftp://no"}, timeout=10)
    assert r.status_code == 400
    _register(compat, "to-forget", "http://127.0.0.1:9/x")
    assert "to-forget" in requests.get(f"{compat.url}/driftloop/lambda/runtimes", timeout=10).json()["runtimes"]
    requests.post(f"{compat.url}/driftloop/reset", timeout=30).raise_for_status()
    assert requests.get(f"{compat.url}/driftloop/lambda/runtimes", timeout=10).json()["runtimes"] == {}
