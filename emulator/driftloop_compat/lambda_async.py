"""Lambda asynchronous invocation for moto 5.2.5 (monkey patches, applied by ``apply()``): functions
run by a Runtime API emulator (``cargo lambda watch``), async retries, and the ``OnFailure`` /
``OnSuccess`` destinations of the function's event invoke config.

moto's gaps, which the tests (tests/python/test_emulator_lambda_async.py) show on plain moto:

* an EventBridge rule whose target is a Lambda function: ``PutEvents`` fails (moto's
  ``send_to_targets`` raises ``NotImplementedError`` for any target but logs, SQS, buses and API
  destinations);
* ``Invoke`` runs the function in Docker (or answers a canned string) and, for
  ``InvocationType=Event``, ignores ``MaximumRetryAttempts`` and ``DestinationConfig``: a failed
  invocation reaches no destination.

With this module, a function registered with a runtime endpoint (``POST /driftloop/lambda/runtimes``
``{"FunctionName": "<name or ARN>", "Url": "http://127.0.0.1:<port>/2015-03-31/functions/<binary>/invocations"}``;
``GET`` lists them, ``/moto-api/reset`` forgets them) is invoked there. An asynchronous invocation
(``InvocationType=Event``, or an EventBridge rule's Lambda target) answers 202 at once and runs in the
background: the function is invoked up to ``1 + MaximumRetryAttempts`` times (default 2 retries, as
AWS), ``RetryDelaySeconds`` apart (AWS waits about 1 then 2 minutes; default here 0.2 s, settable in
the same POST), and when every attempt failed, the invocation record AWS sends goes to the
``OnFailure`` destination (an SQS queue):

    {"version": "1.0", "timestamp": "...",
     "requestContext": {"requestId": "...", "functionArn": "...:$LATEST", "condition": "RetriesExhausted",
                        "approximateInvokeCount": 3},
     "requestPayload": <the event>,
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
     "responsePayload": {"errorType": "Permanent.BadEvent", "errorMessage": "..."}}

(``condition`` ``EventAgeExceeded`` when ``MaximumEventAgeInSeconds`` ran out first; a success
goes to ``OnSuccess`` with ``condition`` ``Success``.) An EventBridge Lambda target whose function
does not exist is dead-lettered to the target's ``DeadLetterConfig`` queue with EventBridge's
message attributes (``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``).
Unregistered functions keep moto's own behaviour for synchronous calls.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from moto.awslambda import models as lambda_models
from moto.events import models as ev_models
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

log = logging.getLogger("driftloop_compat.lambda_async")

_APPLIED = False
_LOCK = threading.Lock()
_RUNTIMES: dict[str, str] = {}  # function name -> invoke URL
DEFAULTS = {"RetryDelaySeconds": 0.2, "InvokeTimeoutSeconds": 900.0}
_CONFIG = dict(DEFAULTS)
_THREADS: list[threading.Thread] = []


# ------------------------------------------------------------------------------------ registry
def _name(function: str) -> str:
    """A function's name from its name, ARN or qualified ARN."""
    if function.startswith("arn:"):
        return function.split(":")[6]
    return function.split(":")[0]


def register(values: dict[str, Any]) -> dict[str, Any]:
    with _LOCK:
        for key in ("RetryDelaySeconds", "InvokeTimeoutSeconds"):
            if key in values:
                v = float(values[key])
                if v < 0:
                    raise ValueError(f"{key} must not be negative")
                _CONFIG[key] = v
        if "FunctionName" in values or "Url" in values:
            name, url = values.get("FunctionName"), values.get("Url")
            if not isinstance(name, str) or not name or not isinstance(url, str) or not url.startswith("http"):
                raise ValueError("FunctionName and an http(s) Url are expected")
            _RUNTIMES[_name(name)] = url
    return status()


def status() -> dict[str, Any]:
    with _LOCK:
        return {"runtimes": dict(_RUNTIMES), **_CONFIG}


def reset() -> None:
    with _LOCK:
        _RUNTIMES.clear()
        _CONFIG.clear()
        _CONFIG.update(DEFAULTS)


def runtime_url(function_name: str) -> str | None:
    with _LOCK:
        return _RUNTIMES.get(_name(function_name))


# ------------------------------------------------------------------------------------ invoking
def _post(url: str, payload: bytes, timeout: float) -> tuple[bool, bytes]:
    """(ok, response body) of one invocation through a Runtime API emulator."""
    req = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            errored = resp.headers.get("X-Amz-Function-Error") is not None
    except urllib.error.HTTPError as e:
        raw, errored = e.read(), True
    except (urllib.error.URLError, OSError) as e:
        body = {"errorType": "Runtime.Unavailable", "errorMessage": f"the function's runtime at {url} did not answer: {e}"}
        return False, json.dumps(body).encode()
    if not errored:
        try:
            out = json.loads(raw) if raw else None
        except ValueError:
            out = None
        # cargo lambda watch answers a function error with its Diagnostic as the body.
        if isinstance(out, dict) and "errorType" in out and "errorMessage" in out and len(out) <= 3:
            errored = True
    return not errored, raw


def _run(fn: Any, payload: bytes) -> tuple[bool, bytes]:
    url = runtime_url(fn.function_name)
    if url is not None:
        return _post(url, payload, _CONFIG["InvokeTimeoutSeconds"])
    # moto's own runner (Docker): its result and error flag.
    event = json.loads(payload) if payload else {}
    res, errored, _logs = fn._invoke_lambda(event=event)
    return not errored, res.encode() if isinstance(res, str) else res


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _send_to_destination(fn: Any, destination: str, record: dict[str, Any]) -> None:
    arn = parse_arn(destination)
    if arn.service == "sqs":
        from moto.sqs import sqs_backends

        sqs_backends[arn.account][arn.region].send_message(queue_name=arn.resource_id, message_body=json.dumps(record))
    elif arn.service == "sns":
        from moto.sns import sns_backends

        sns_backends[arn.account][arn.region].publish(message=json.dumps(record), arn=destination)
    else:
        log.warning("destination %s of %s: only SQS and SNS destinations are emulated", destination, fn.function_name)


def _invoke_config(fn: Any) -> dict[str, Any]:
    return dict(fn.event_invoke_config[0].config) if getattr(fn, "event_invoke_config", None) else {}


def _async_worker(fn: Any, payload: bytes, request_id: str, received: float) -> None:
    config = _invoke_config(fn)
    retries = int(config.get("MaximumRetryAttempts", 2))
    max_age = float(config.get("MaximumEventAgeInSeconds", 21600))
    destinations = config.get("DestinationConfig") or {}
    attempts = 0
    while True:
        attempts += 1
        ok, response = _run(fn, payload)
        if ok:
            condition = "Success"
            break
        if attempts > retries:
            condition = "RetriesExhausted"
            break
        delay = _CONFIG["RetryDelaySeconds"] * attempts  # AWS: about 1 min, then 2 min
        if time.time() + delay - received > max_age:
            condition = "EventAgeExceeded"
            break
        time.sleep(delay)
    target = (destinations.get("OnSuccess" if ok else "OnFailure") or {}).get("Destination")
    log.info("async invocation %s of %s: %s after %d attempt(s)%s", request_id, fn.function_name, condition, attempts,
             f" -> {target}" if target else "")
    if not target:
        return
    try:
        request_payload: Any = json.loads(payload) if payload else None
    except ValueError:
        request_payload = payload.decode(errors="replace")
    try:
        response_payload: Any = json.loads(response) if response else None
    except ValueError:
        response_payload = response.decode(errors="replace")
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _now(),
        "requestContext": {"requestId": request_id, "functionArn": f"{fn.function_arn}:$LATEST",
                           "condition": condition, "approximateInvokeCount": attempts},
        "requestPayload": request_payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "responsePayload": response_payload,
    }
    if not ok:
        record["responseContext"]["functionError"] = "Unhandled"
    _send_to_destination(fn, target, record)


def invoke_async(fn: Any, payload: bytes) -> str:
    """Starts an asynchronous invocation; returns its request id."""
    request_id = str(uuid.uuid4())
    t = threading.Thread(target=_async_worker, args=(fn, payload, request_id, time.time()), daemon=True,
                         name=f"lambda-async-{fn.function_name}")
    with _LOCK:
        _THREADS[:] = [x for x in _THREADS if x.is_alive()] + [t]
    t.start()
    return request_id


def _invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
            response_headers: Any) -> bytes | str | None:
    """LambdaBackend.invoke: registered runtimes, and asynchronous invocations."""
    inv_type = headers.get("X-Amz-Invocation-Type") or headers.get("x-amz-invocation-type") or "RequestResponse"
    registered = runtime_url(function_name) is not None
    if inv_type != "Event" and not registered:
        return _ORIGINAL_INVOKE(self, function_name, qualifier, body, headers, response_headers)
    fn = self.get_function(function_name, qualifier)
    payload = body.encode() if isinstance(body, str) else (body or b"")
    if inv_type == "Event":
        response_headers["x-amz-request-id"] = invoke_async(fn, payload)
        return b""
    if inv_type == "DryRun":
        return b""
    ok, response = _run(fn, payload)
    if not ok:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["Content-Length"] = str(len(response))
    return response


# ------------------------------------------------------------------------------------ EventBridge
def _iso(value: Any) -> Any:
    try:
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return value


def _dead_letter(rule: Any, target: dict[str, Any], event: Any, code: str, message: str) -> None:
    arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not arn:
        log.warning("rule %s target %s: %s (%s), no DeadLetterConfig", rule.name, target["Arn"], code, message)
        return
    from moto.sqs import sqs_backends

    q = parse_arn(arn)
    attrs = {"ERROR_CODE": code, "ERROR_MESSAGE": message, "RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"],
             "RETRY_ATTEMPTS": "0"}
    sqs_backends[q.account][q.region].send_message(
        queue_name=q.resource_id, message_body=json.dumps(event),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()})


def _send_to_lambda(rule: Any, target: dict[str, Any], original_event: dict[str, Any], transform_input: bool) -> None:
    if transform_input:
        transformer = target.get("InputTransformer", {})
        event: Any = EventTemplateParser.parse(input_template=transformer.get("InputTemplate"),
                                               input_paths_map=transformer.get("InputPathsMap", {}),
                                               event=original_event)
        if "Input" in target:
            event = json.loads(target["Input"])
    else:
        event = copy.deepcopy(original_event)
    if isinstance(event, dict) and "time" in event:
        event["time"] = _iso(event["time"])
    arn = parse_arn(target["Arn"])
    backend = lambda_models.lambda_backends[arn.account][arn.region]
    try:
        fn = backend.get_function(target["Arn"])
    except Exception as e:  # noqa: BLE001 - moto's UnknownFunctionException and friends
        _dead_letter(rule, target, event, "RESOURCE_NOT_FOUND", f"Lambda function {target['Arn']} does not exist: {e}")
        return
    invoke_async(fn, json.dumps(event).encode())


def _send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    lambda_targets = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
    if not lambda_targets:
        return _ORIGINAL_SEND(self, original_event, transform_input)
    if not self.event_pattern.matches_event(original_event):
        return None
    others = [t for t in self.targets if t not in lambda_targets]
    if others:
        rest = copy.copy(self)
        rest.targets = others
        _ORIGINAL_SEND(rest, original_event, transform_input)
    for target in lambda_targets:
        _send_to_lambda(self, target, original_event, transform_input)
    return None


_ORIGINAL_INVOKE: Any = None
_ORIGINAL_SEND: Any = None


def wait_idle(timeout: float = 60) -> bool:
    """True once every background invocation has ended (for tests)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with _LOCK:
            alive = [t for t in _THREADS if t.is_alive()]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def apply() -> None:
    global _APPLIED, _ORIGINAL_INVOKE, _ORIGINAL_SEND
    if _APPLIED:
        return
    _ORIGINAL_INVOKE = lambda_models.LambdaBackend.invoke
    _ORIGINAL_SEND = ev_models.Rule.send_to_targets
    lambda_models.LambdaBackend.invoke = _invoke
    ev_models.Rule.send_to_targets = _send_to_targets
    _APPLIED = True
