"""Step Functions for the scale-out mode (docs/scale-out.md) on moto 5.2.5's ASL interpreter.

moto executes state machines only when its ``stepfunctions.execute_state_machine`` config flag is
set (otherwise executions stay RUNNING forever with a canned history); ``apply()`` sets it. The
interpreter (``moto.stepfunctions.parser``) runs a Distributed Map with an S3 ItemReader, but:

* **a failed item does not fail the Map** (its result becomes ``null``, the run SUCCEEDS;
  ``ToleratedFailureCount``/``ToleratedFailurePercentage`` "currently have no effect"). AWS fails
  the Map run with ``States.ExceedToleratedFailureThreshold`` once the failures pass the
  thresholds (both 0 when unset). Fixed: after the items ran, the failed and timed-out items are
  counted against the declared thresholds (the run fails when it exceeds the count *and* the
  percentage, so a lone ``ToleratedFailureCount: 5`` tolerates 5 whatever the percentage);
* **the ``s3:listObjectsV2`` ItemReader reads one page** (at most 1,000 keys) and **an empty
  listing fails the run** with ``States.Runtime`` (``KeyError 'Contents'``); AWS pages through the
  whole prefix and runs zero items on an empty one. Fixed: every page, ``[]`` when empty;
* **``lambda:invoke`` reaches moto's Lambda** (Docker or an echo), never the project's binaries:
  see ``LambdaInvokeRouter`` below, which forwards ``Invoke`` to ``cargo lambda watch``.

``ItemBatcher``, ``EXPRESS`` child executions and ``ResultWriter`` result files stay unsupported
(the project's state machine uses none of them: see infra/template.yaml ``ScaleOutStateMachine``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import unquote

from .wsgi_util import Environ, StartResponse, WsgiApp, read_body, respond

_APPLIED = False


def enable_interpreter() -> None:
    """moto's config flag for the real ASL interpreter (process-global; not cleared by reset)."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


def _failed_items(record: Any) -> tuple[int, int]:
    counter = record.item_counter
    failed = counter.failed.get() + counter.timed_out.get()
    return failed, counter.total.get()


def _fail_map_on_tolerated_failures() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = DistributedIterationComponent._map_run

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        failed, total = _failed_items(eval_input.map_run_record)
        count = eval_input.tolerated_failure_count or 0
        percentage = eval_input.tolerated_failure_percentage or 0.0
        if failed > count and (total == 0 or failed * 100.0 / total > percentage):
            error_name = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            cause = (f"The specified tolerated failure threshold was exceeded: {failed} of {total} items failed "
                     f"(ToleratedFailureCount {count}, ToleratedFailurePercentage {percentage})")
            env.stack.pop()  # the items' outputs: the Map has no output
            raise FailureEventException(FailureEvent(
                env=env, error_name=error_name, event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=error_name.error_name, cause=cause)),
            ))

    _map_run.__wrapped__ = original
    DistributedIterationComponent._map_run = _map_run


def _paginate_item_reader() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
        ResourceEvalS3,
    )

    def _handle_list_objects_v2(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        s3 = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                           state_credentials=state_credentials)
        params = env.stack.pop()
        contents: list = []
        for page in s3.get_paginator("list_objects_v2").paginate(**params):
            contents.extend(page.get("Contents", []))
        # As the ItemReader delivers them: LastModified as text (moto's own reader does the same).
        for c in contents:
            if hasattr(c.get("LastModified"), "isoformat"):
                c["LastModified"] = c["LastModified"].isoformat()
        env.stack.append(contents)

    ResourceEvalS3._handle_list_objects_v2 = staticmethod(_handle_list_objects_v2)


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    enable_interpreter()
    _fail_map_on_tolerated_failures()
    _paginate_item_reader()
    _APPLIED = True


# ------------------------------------------------------------------------------------------------
# Lambda Invoke -> cargo lambda watch

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<fn>.+?)/invocations/?$")
ROUTES_PATH = "/driftloop/lambda-routes"
_ROUTES: dict[str, str] = {}
_ROUTES_LOCK = threading.Lock()


def routes_from_env(value: str | None = None) -> dict[str, str]:
    """``LAMBDA_ROUTES="custom-metrics=http://127.0.0.1:9000,*=http://127.0.0.1:9001"``."""
    value = os.environ.get("LAMBDA_ROUTES", "") if value is None else value
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, url = part.partition("=")
        out[name.strip()] = url.strip().rstrip("/")
    return out


def set_routes(routes: dict[str, str], replace: bool = False) -> dict[str, str]:
    with _ROUTES_LOCK:
        if replace:
            _ROUTES.clear()
        for name, url in routes.items():
            if url:
                _ROUTES[str(name)] = str(url).rstrip("/")
            else:
                _ROUTES.pop(str(name), None)
        return dict(_ROUTES)


def routes() -> dict[str, str]:
    with _ROUTES_LOCK:
        return dict(_ROUTES)


def function_name(raw: str) -> str:
    """``worker``, ``worker:live``, ``123:function:worker``, ``arn:aws:lambda:r:a:function:worker:1`` -> ``worker``."""
    raw = unquote(raw)
    if "function:" in raw:
        raw = raw.split("function:", 1)[1]
    return raw.split(":", 1)[0]


class LambdaInvokeRouter:
    """WSGI middleware: ``Invoke`` of a routed function is answered by an external Lambda runtime
    emulator (``cargo lambda watch``, which serves the same ``POST /2015-03-31/functions/{name}/invocations``).

    In server mode moto's Step Functions interpreter calls Lambda through a boto3 client pointed
    at ``http://localhost:$MOTO_PORT``, so every ``lambda:invoke`` task comes back through this
    stack (inside ``FaultMiddleware``: injected Lambda faults apply to them too). A route is
    ``name -> base URL`` (``*`` = any function), optionally ``URL#target`` to invoke another
    function name there. Routes come from ``LAMBDA_ROUTES`` and ``POST /driftloop/lambda-routes``
    (``{"routes": {...}, "replace": false}``; a name mapped to ``""`` is removed); ``GET`` lists them.

    cargo lambda answers a handler error with HTTP 500 and the runtime's error document; Lambda
    answers 200 + ``X-Amz-Function-Error: Unhandled`` with the same document, and that is what
    Step Functions reads its error name (``errorType``, e.g. ``Retryable.Throttled``) from: the
    router translates. An unknown function there (404) is ``ResourceNotFoundException``; an
    unreachable runtime is ``ServiceException`` (``Lambda.ServiceException`` in a state machine).
    """

    def __init__(self, app: WsgiApp, timeout: float = 900.0):
        self.app = app
        self.timeout = timeout
        set_routes(routes_from_env())

    def __call__(self, environ: Environ, start_response: StartResponse):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == ROUTES_PATH:
            if method in ("POST", "PUT"):
                try:
                    doc = json.loads(read_body(environ) or b"{}")
                    if not isinstance(doc, dict) or not isinstance(doc.get("routes", {}), dict):
                        raise ValueError('expected {"routes": {"name": "url"}}')
                except ValueError as exc:
                    return respond(start_response, 400, json.dumps({"error": str(exc)}).encode(), "application/json")
                current = set_routes(doc.get("routes", {}), replace=bool(doc.get("replace")))
                return respond(start_response, 200, json.dumps({"routes": current}).encode(), "application/json")
            return respond(start_response, 200, json.dumps({"routes": routes()}).encode(), "application/json")
        m = _INVOKE.match(path)
        if not m or method != "POST":
            return self.app(environ, start_response)
        name = function_name(m["fn"])
        table = routes()
        base = table.get(name) or table.get("*")
        if base is None:
            return self.app(environ, start_response)
        base, _, target = base.partition("#")
        target = target or name
        body = read_body(environ)
        url = f"{base}/2015-03-31/functions/{target}/invocations"
        headers = {"Content-Type": "application/json"}
        if environ.get("HTTP_X_AMZ_CLIENT_CONTEXT"):
            headers["X-Amz-Client-Context"] = environ["HTTP_X_AMZ_CLIENT_CONTEXT"]
        inv_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if inv_type == "DryRun":
            return self._send(start_response, 204, b"", {})
        if inv_type == "Event":  # fire and forget, like Lambda's asynchronous invoke
            threading.Thread(target=self._forward, args=(url, body, headers), daemon=True).start()
            return self._send(start_response, 202, b"", {})
        status, reply, function_error = self._forward(url, body, headers)
        if status == 404:
            return self._error(start_response, 404, "ResourceNotFoundException",
                               f"Function not found: {name} ({reply[:300].decode(errors='replace')})")
        if status is None:
            return self._error(start_response, 500, "ServiceException",
                               f"cannot reach the Lambda runtime for {name} at {base}: {reply.decode(errors='replace')}")
        extra = {"X-Amz-Executed-Version": "$LATEST"}
        if status >= 400 or function_error:
            extra["X-Amz-Function-Error"] = function_error or "Unhandled"
            try:
                json.loads(reply)
            except ValueError:
                reply = json.dumps({"errorType": "Unhandled", "errorMessage": reply.decode(errors="replace")}).encode()
        return self._send(start_response, 200, reply, extra)

    def _forward(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, bytes, str | None]:
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("X-Amz-Function-Error")
        except (urllib.error.URLError, OSError) as exc:
            return None, str(exc).encode(), None

    @staticmethod
    def _send(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]):
        text = {200: "OK", 202: "Accepted", 204: "No Content", 404: "Not Found", 500: "Internal Server Error"}[status]
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", str(uuid.uuid4()))] + list(headers.items())
        start_response(f"{status} {text}", hdrs)
        return [body]

    def _error(self, start_response: StartResponse, status: int, code: str, message: str):
        body = json.dumps({"Type": "User" if status < 500 else "Service", "message": message}).encode()
        return self._send(start_response, status, body, {"x-amzn-ErrorType": code})
