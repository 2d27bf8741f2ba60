"""Step Functions on the emulator (driftloop_compat.stepfunctions): each gap the scale-out state
machine hits, shown on plain moto 5.2.5 and closed by the layer.

* plain moto does not execute state machines (the interpreter is behind a config flag);
* a failed Distributed Map item does not fail the run;
* the ``s3:listObjectsV2`` ItemReader reads one page (1,000 keys) and fails on an empty prefix;
* ``lambda:invoke`` (and a direct ``Invoke``) never reaches ``cargo lambda watch``.

A small stand-in for ``cargo lambda watch`` (same path, same status codes) serves the Lambda side
here; tests/python/test_scale_out_e2e.py runs the real custom-metrics binary under it.
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

ROLE = "arn:aws:iam::123456789012:role/driftloop-sfn-test"


class FakeWatch:
    """``POST /2015-03-31/functions/{name}/invocations`` as cargo lambda watch answers it: 200 and
    the handler's JSON, 500 + ``{"errorType", "errorMessage"}`` on a handler error, 404 for an
    unknown function. Function ``echo-item`` returns ``{"key": Key}``, failing with
    ``Retryable.Throttled`` once per key containing ``flaky`` and ``Permanent.Bad`` on ``boom``."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                m = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not m or m[1] != "echo-item":
                    return self.reply(404, {"title": "Missing function", "detail": f"no {m and m[1]}"})
                with outer.lock:
                    outer.calls.append((m[1], body))
                    seen = sum(1 for _, b in outer.calls if b == body)
                key = body.get("Key", "")
                if "boom" in key:
                    return self.reply(500, {"errorType": "Permanent.Bad", "errorMessage": f"refusing {key}"})
                if "flaky" in key and seen == 1:
                    return self.reply(500, {"errorType": "Retryable.Throttled", "errorMessage": "slow down"})
                return self.reply(200, {"key": key, "by": "fake-watch"})

            def reply(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def watch():
    w = FakeWatch()
    yield w
    w.stop()


def _config(server, doc: dict) -> None:
    requests.post(f"{server.url}/moto-api/config", json=doc, timeout=10).raise_for_status()


def _interpreter_on(server) -> None:
    """What plain moto needs to execute at all (the layer sets it itself)."""
    _config(server, {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})


def _run(server, definition: dict, timeout: float = 90, execution_input: dict | None = None) -> dict:
    sfn = server.client("stepfunctions")
    arn = sfn.create_state_machine(name=unique("sm"), definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input or {}))["executionArn"]
    deadline = time.time() + timeout
    while (d := sfn.describe_execution(executionArn=ex))["status"] == "RUNNING" and time.time() < deadline:
        time.sleep(0.2)
    return d


def _bucket(server, n: int, prefix: str, keys: list[str] | None = None) -> str:
    s3 = server.client("s3")
    bucket = unique("sfn")
    s3.create_bucket(Bucket=bucket)
    for k in keys if keys is not None else [f"{prefix}{i:05d}" for i in range(n)]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    return bucket


def _map(bucket: str, prefix: str, processor: dict, start: str, **extra) -> dict:
    return {"StartAt": "Fanout", "States": {"Fanout": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": bucket, "Prefix": prefix}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": start, "States": processor},
        "MaxConcurrency": 20, "End": True, **extra}}}


PASS_KEY = {"Item": {"Type": "Pass", "Parameters": {"key.$": "$.Key"}, "End": True}}
BOOM_FAILS = {
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.Key", "StringMatches": "*boom*", "Next": "Boom"}],
              "Default": "Ok"},
    "Boom": {"Type": "Fail", "Error": "Permanent.Bad", "Cause": "a failing item"},
    # Only the key: plain moto's items carry LastModified as a datetime, which its DescribeExecution
    # cannot serialise (the layer's reader gives the ISO text AWS gives).
    "Ok": {"Type": "Pass", "Parameters": {"key.$": "$.Key"}, "End": True},
}


def test_plain_moto_does_not_execute_state_machines_the_layer_does(plain, compat):
    pass_only = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ran": True}, "End": True}}}
    # Plain moto, its flag not set (the first test of this file; the later ones set it there).
    d = _run(plain, pass_only, timeout=3)
    assert json.loads(d.get("output") or "{}") != {"ran": True}, "plain moto ran a state machine"
    d = _run(compat, pass_only)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"ran": True}


def test_a_failed_map_item_fails_the_run(plain, compat):
    keys = ["mix/a", "mix/boom-1", "mix/c"]
    _interpreter_on(plain)
    d = _run(plain, _map(_bucket(plain, 0, "", keys), "mix/", BOOM_FAILS, "Check", ToleratedFailureCount=0))
    assert d["status"] == "SUCCEEDED", "the gap: plain moto ignores the failed item"
    assert json.loads(d["output"]).count(None) == 1
    d = _run(compat, _map(_bucket(compat, 0, "", keys), "mix/", BOOM_FAILS, "Check", ToleratedFailureCount=0))
    assert d["status"] == "FAILED", d
    assert d["error"] == "States.ExceedToleratedFailureThreshold"
    assert "1 of 3 items failed" in d["cause"]
    # Within the declared threshold the run goes on, as on AWS.
    d = _run(compat, _map(_bucket(compat, 0, "", keys), "mix/", BOOM_FAILS, "Check", ToleratedFailureCount=1))
    assert d["status"] == "SUCCEEDED", d
    sfn = compat.client("stepfunctions")
    failed_history = [e["type"] for e in sfn.get_execution_history(executionArn=d["executionArn"])["events"]]
    assert "MapRunSucceeded" in failed_history


def test_item_reader_reads_every_page_and_empty_prefixes(plain, compat):
    _interpreter_on(plain)
    for server, expected in ((plain, 1000), (compat, 1005)):
        d = _run(server, _map(_bucket(server, 1005, "many/"), "many/", PASS_KEY, "Item"), timeout=180)
        assert d["status"] == "SUCCEEDED", d
        out = json.loads(d["output"])
        assert len(out) == expected, (server.compat, len(out))
        if server.compat:
            assert out[-1] == {"key": "many/01004"}
    d = _run(plain, _map(_bucket(plain, 0, "", []), "nothing/", PASS_KEY, "Item"))
    assert d["status"] == "FAILED" and d["error"] == "States.Runtime", "the gap: an empty listing fails"
    d = _run(compat, _map(_bucket(compat, 0, "", []), "nothing/", PASS_KEY, "Item"))
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == [], d


def _function(server, name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bootstrap", "#!/bin/sh\n")
    iam = server.client("iam")
    try:
        iam.create_role(RoleName="driftloop-sfn-test", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    except ClientError:
        pass
    try:
        server.client("lambda").create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE,
                                                Handler="bootstrap", Code={"ZipFile": buf.getvalue()})
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceConflictException"


def test_lambda_invoke_reaches_the_runtime_emulator(plain, compat, watch):
    _interpreter_on(plain)
    for server in (plain, compat):
        _function(server, "echo-item")
    r = requests.post(f"{compat.url}/driftloop/lambda-routes", json={"routes": {"echo-item": watch.url}}, timeout=10)
    assert r.json()["routes"]["echo-item"] == watch.url
    # Plain moto answers Invoke itself (an echo without Docker): the runtime never sees it.
    out = plain.client("lambda").invoke(FunctionName="echo-item", Payload=json.dumps({"Key": "a"}))
    assert json.loads(out["Payload"].read()) != {"key": "a", "by": "fake-watch"}
    assert watch.calls == []
    lam = compat.client("lambda")
    out = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:echo-item", Payload=json.dumps({"Key": "a"}))
    assert out["StatusCode"] == 200 and "FunctionError" not in out
    assert json.loads(out["Payload"].read()) == {"key": "a", "by": "fake-watch"}
    # A handler error: cargo lambda's 500 becomes Lambda's 200 + FunctionError, errorType kept.
    out = lam.invoke(FunctionName="echo-item", Payload=json.dumps({"Key": "boom"}))
    assert out["StatusCode"] == 200 and out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorType"] == "Permanent.Bad"
    requests.post(f"{compat.url}/driftloop/lambda-routes", json={"routes": {"gone": watch.url}}, timeout=10)
    with pytest.raises(ClientError) as err:
        lam.invoke(FunctionName="gone", Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # lambda:invoke in a Distributed Map: routed, the error name is the handler's errorType, so
    # Retry on Retryable.Throttled retries the flaky item and the permanent one fails the run.
    invoke = {"Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                       "Parameters": {"FunctionName": "echo-item", "Payload.$": "$"}, "OutputPath": "$.Payload",
                       "Retry": [{"ErrorEquals": ["Retryable.Throttled"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                       "End": True}}
    bucket = _bucket(compat, 0, "", ["in/a", "in/flaky-1", "in/c"])
    d = _run(compat, _map(bucket, "in/", invoke, "Work", ToleratedFailureCount=0))
    assert d["status"] == "SUCCEEDED", d
    assert sorted(o["key"] for o in json.loads(d["output"])) == ["in/a", "in/c", "in/flaky-1"]
    assert sum(1 for _, b in watch.calls if b.get("Key") == "in/flaky-1") == 2
    bucket = _bucket(compat, 0, "", ["in/a", "in/boom-1"])
    d = _run(compat, _map(bucket, "in/", invoke, "Work", ToleratedFailureCount=0))
    assert d["status"] == "FAILED" and d["error"] == "States.ExceedToleratedFailureThreshold", d
    requests.post(f"{compat.url}/driftloop/lambda-routes", json={"routes": {"echo-item": "", "gone": ""}}, timeout=10)
