"""Fault injection: make the next N calls of a named operation fail, in the service's own protocol.

Admin API (served by this middleware on the emulator's port):

* ``POST /driftloop/faults`` with JSON ``{"operation": "StartPipelineExecution", "count": 2,
  "kind": "throttle" | "500" | "503", "match": "optional substring", "service": "optional"}``
  -> 201 ``{"id": ..., ...}``. ``count`` -1 means every call until cleared.
* ``GET /driftloop/faults`` -> ``{"faults": [...]}`` with ``remaining`` and ``hits`` of each.
* ``DELETE /driftloop/faults`` clears all; ``DELETE /driftloop/faults/<id>`` one.

An operation is recognised as the rpc-v2-cbor URL's ``/operation/<Op>`` (CloudWatch), the
``X-Amz-Target`` suffix (awsJson: SageMaker, EventBridge, SQS, CloudWatch via boto3), the query
protocol's ``Action``, S3's REST calls by method and path (``GetObject``, ``PutObject``,
``ListObjectsV2``, ``HeadObject``, ``DeleteObject``, ``CreateBucket``, ``HeadBucket``, ...), and any
other REST call as ``"<METHOD> <path prefix>"``. ``match`` must occur in the URL (path and query)
or the request body - it lets concurrent tests scope a fault to their own resource names.
``service``, when given, must equal the SigV4 signing name or the target prefix (case-insensitive).

Errors: ``throttle`` is HTTP 400 with code ``ThrottlingException`` (CloudWatch: the query code
``Throttling``; S3: 503 ``SlowDown``), ``500`` is HTTP 500 ``InternalFailure`` (S3: ``InternalError``),
``503`` is HTTP 503 ``ServiceUnavailable``. Every one of them is retryable for the AWS SDKs.

``403-missing`` (for ``GetObject`` / ``HeadObject`` only) shows S3 as a caller without
``s3:ListBucket`` on the key's prefix sees it: a request for a key that does **not** exist is
answered HTTP 403 ``AccessDenied`` instead of 404 ``NoSuchKey`` (HEAD: 403 without a body); keys
that exist are served as usual. Only the calls it turned into a 403 count as hits (and use up
``count``); use ``count: -1`` with a ``match`` (the bucket) to keep a bucket in this mode until cleared.
It is not retryable.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .cbor import SERVICES as CBOR_SERVICES
from .cbor import cbor_error, match_cbor_request
from .wsgi_util import Environ, StartResponse, WsgiApp, credential_scope, decoded_body, read_body, respond

KINDS = ("throttle", "500", "503", "403-missing")
MISSING_DENIED = "403-missing"
MISSING_DENIED_OPERATIONS = ("GetObject", "HeadObject", "s3:GetObject", "s3:HeadObject")


@dataclass
class Fault:
    id: int
    operation: str
    kind: str
    count: int
    match: str | None = None
    service: str | None = None
    remaining: int = 0
    hits: int = 0
    created: float = field(default_factory=time.time)


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.RLock()  # take() consumes under the lock
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        op = spec.get("operation") or spec.get("Operation")
        if not isinstance(op, str) or not op:
            raise ValueError("'operation' (string) is required")
        kind = str(spec.get("kind", "throttle")).lower()
        if kind in ("throttling", "throttled"):
            kind = "throttle"
        if kind in ("deny-missing", "403-if-missing", "accessdenied-missing"):
            kind = MISSING_DENIED
        if kind not in KINDS:
            raise ValueError(f"'kind' must be one of {', '.join(KINDS)}")
        try:
            count = int(spec.get("count", 1))
        except (TypeError, ValueError):
            raise ValueError("'count' must be an integer") from None
        if count == 0 or count < -1:
            raise ValueError("'count' must be positive, or -1 for every call")
        if kind == MISSING_DENIED and op not in MISSING_DENIED_OPERATIONS:
            raise ValueError(f"kind {MISSING_DENIED!r} applies to GetObject or HeadObject only")
        match = spec.get("match")
        if match is not None and not isinstance(match, str):
            raise ValueError("'match' must be a string")
        service = spec.get("service")
        with self._lock:
            fault = Fault(next(self._ids), op, kind, count, match or None, service or None, remaining=count)
            self._faults.append(fault)
            return fault

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self, fault_id: int | None = None) -> int:
        with self._lock:
            before = len(self._faults)
            if fault_id is None:
                self._faults.clear()
            else:
                self._faults = [f for f in self._faults if f.id != fault_id]
            return before - len(self._faults)

    def active(self) -> bool:
        return any(f.remaining != 0 for f in self._faults)

    def take(self, call: "Call", environ: Environ, kinds: tuple[str, ...] | None = None,
             consume: bool = True) -> Fault | None:
        """The first armed fault this call matches (of ``kinds``, default: all but
        ``403-missing``), consumed by one unless ``consume`` is false; None if none applies."""
        with self._lock:
            for fault in self._faults:
                if kinds is None and fault.kind == MISSING_DENIED:
                    continue
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.remaining == 0 or not call.matches(fault.operation):
                    continue
                if fault.service and fault.service.lower() not in call.services:
                    continue
                if fault.match and not call.contains(fault.match, environ):
                    continue
                if consume:
                    self.consume(fault)
                return fault
        return None

    def consume(self, fault: Fault) -> None:
        with self._lock:
            if fault.remaining > 0:
                fault.remaining -= 1
            fault.hits += 1


REGISTRY = FaultRegistry()


# ---------------------------------------------------------------------------------------------
# recognising the operation of a request


S3_BUCKET_SUBRESOURCES = {
    "GET": [("list-type", "ListObjectsV2"), ("versions", "ListObjectVersions"), ("uploads", "ListMultipartUploads"),
            ("location", "GetBucketLocation"), ("tagging", "GetBucketTagging"), ("policy", "GetBucketPolicy"),
            ("notification", "GetBucketNotificationConfiguration"), ("versioning", "GetBucketVersioning")],
    "PUT": [("tagging", "PutBucketTagging"), ("policy", "PutBucketPolicy"),
            ("notification", "PutBucketNotificationConfiguration"), ("versioning", "PutBucketVersioning")],
    "POST": [("delete", "DeleteObjects")],
}


def s3_operation(method: str, path: str, query: dict[str, list[str]], environ: Environ) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if len(parts) == 1:  # bucket level (path-style)
        for key, name in S3_BUCKET_SUBRESOURCES.get(method, []):
            if key in query:
                return name
        return {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket",
                "HEAD": "HeadBucket"}.get(method, f"{method} {path}")
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPart"
        if "tagging" in query:
            return "PutObjectTagging"
        if environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            return "CopyObject"
        return "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    if method == "GET" and "tagging" in query:
        return "GetObjectTagging"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, f"{method} {path}")


@dataclass
class Call:
    protocol: str  # cbor | json | query | s3 | rest
    operation: str
    services: set[str]
    method: str
    path: str
    content_type: str = ""

    def matches(self, wanted: str) -> bool:
        if wanted == self.operation:
            return True
        if ":" in wanted and wanted.split(":", 1)[1] == self.operation:  # "s3:GetObject"
            return wanted.split(":", 1)[0].lower() in self.services
        if " " in wanted:  # "<METHOD> <path prefix>"
            method, prefix = wanted.split(" ", 1)
            return method.upper() == self.method and self.path.startswith(prefix)
        return False

    def contains(self, needle: str, environ: Environ) -> bool:
        url = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        if needle in url:
            return True
        from urllib.parse import unquote

        if needle in unquote(url):
            return True
        body = decoded_body(environ)
        return needle.encode() in body


def classify(environ: Environ) -> Call | None:
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "")
    ctype = environ.get("CONTENT_TYPE", "") or ""
    _, signing = credential_scope(environ)
    services = {s.lower() for s in (signing,) if s}

    cbor = match_cbor_request(environ)
    if cbor is not None:
        smithy_service, op = cbor
        services.add(smithy_service.lower())
        if smithy_service in CBOR_SERVICES:
            services.update(x.lower() for x in CBOR_SERVICES[smithy_service][:2])
        return Call("cbor", op, services, method, path, ctype)

    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, op = target.rpartition(".")
        services.add(prefix.lower())
        return Call("json", op, services, method, path, ctype)

    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    action = query.get("Action", [None])[0]
    if not action and ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(read_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
        action = form.get("Action", [None])[0]
    if action:
        return Call("query", action, services, method, path, ctype)

    if signing == "s3" or (signing is None and not path.startswith("/2015-03-31/")):
        services.add("s3")
        return Call("s3", s3_operation(method, path, query, environ), services, method, path, ctype)
    return Call("rest", f"{method} {path}", services, method, path, ctype)


# ---------------------------------------------------------------------------------------------
# answering with the injected error


def access_denied(call: Call, fault: Fault, start_response: StartResponse):
    """S3's answer to a caller without s3:ListBucket asking for a key that does not exist."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
        "<RequestId>driftloop-fault</RequestId><HostId>driftloop</HostId></Error>"
    ).encode()
    if call.method == "HEAD":
        xml = b""
    return respond(start_response, 403, xml, "application/xml", {"x-driftloop-fault": str(fault.id)})


def fault_response(call: Call, fault: Fault, environ: Environ, start_response: StartResponse):
    throttle = fault.kind == "throttle"
    status = 400 if throttle else int(fault.kind)
    message = "Rate exceeded" if throttle else (
        "We encountered an internal error. Please try again." if status == 500 else "Service unavailable"
    )
    code = "ThrottlingException" if throttle else ("InternalFailure" if status == 500 else "ServiceUnavailable")
    fault_side = "Sender" if throttle else "Receiver"
    note = {"x-driftloop-fault": str(fault.id)}

    if call.protocol == "cbor":
        smithy_service, _ = match_cbor_request(environ) or ("", "")
        namespace = CBOR_SERVICES.get(smithy_service, ("", "", "smithy.framework"))[2]
        query_code = "Throttling" if throttle else code
        ns = namespace if throttle else "smithy.framework"
        resp = cbor_error(start_response, status, ns, code, message, query_code, fault_side)
        return resp
    if call.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"x-amzn-ErrorType": code, **note}
        if environ.get("HTTP_X_AMZN_QUERY_MODE", "").lower() == "true":
            headers["x-amzn-query-error"] = f"{'Throttling' if throttle else code};{fault_side}"
        ctype = call.content_type if "json" in call.content_type else "application/x-amz-json-1.1"
        return respond(start_response, status, body, ctype, headers)
    if call.protocol == "query":
        qcode = "Throttling" if throttle else code
        xml = (
            "<ErrorResponse><Error>"
            f"<Type>{fault_side}</Type><Code>{qcode}</Code><Message>{escape(message)}</Message>"
            "</Error><RequestId>driftloop-fault</RequestId></ErrorResponse>"
        ).encode()
        return respond(start_response, status, xml, "text/xml", note)
    if call.protocol == "s3":
        if throttle:
            status, code, message = 503, "SlowDown", "Please reduce your request rate."
        elif status == 500:
            code = "InternalError"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            "<RequestId>driftloop-fault</RequestId><HostId>driftloop</HostId></Error>"
        ).encode()
        if call.method == "HEAD":
            xml = b""
        return respond(start_response, status, xml, "application/xml", note)
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return respond(start_response, 429 if throttle else status, body, "application/json",
                   {"x-amzn-ErrorType": code, **note})


# ---------------------------------------------------------------------------------------------
# the middleware


def _json(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
    return respond(start_response, status, json.dumps(payload, indent=1).encode(), "application/json")


class FaultMiddleware:
    def __init__(self, app: WsgiApp, registry: FaultRegistry = REGISTRY):
        self.app = app
        self.registry = registry

    def admin(self, environ: Environ, start_response: StartResponse):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        rest = environ.get("PATH_INFO", "")[len("/driftloop/faults"):].strip("/")
        if method == "GET" and not rest:
            return _json(start_response, 200, {"faults": self.registry.list()})
        if method == "POST" and not rest:
            try:
                spec = json.loads(read_body(environ) or b"{}")
                specs = spec if isinstance(spec, list) else [spec]
                made = [asdict(self.registry.add(s)) for s in specs]
            except (ValueError, AttributeError, TypeError) as exc:
                return _json(start_response, 400, {"error": str(exc)})
            return _json(start_response, 201, made if isinstance(spec, list) else made[0])
        if method == "DELETE":
            if not rest:
                return _json(start_response, 200, {"cleared": self.registry.clear()})
            try:
                return _json(start_response, 200, {"cleared": self.registry.clear(int(rest))})
            except ValueError:
                return _json(start_response, 400, {"error": "fault id must be an integer"})
        return _json(start_response, 405, {"error": f"{method} not allowed here"})

    def __call__(self, environ: Environ, start_response: StartResponse):
        path = environ.get("PATH_INFO", "")
        if path == "/driftloop/faults" or path.startswith("/driftloop/faults/"):
            return self.admin(environ, start_response)
        if path.startswith("/moto-api/") or path.startswith("/driftloop/"):
            return self.app(environ, start_response)
        if self.registry.active():
            call = classify(environ)
            if call is not None:
                fault = self.registry.take(call, environ)
                if fault is not None:
                    return fault_response(call, fault, environ, start_response)
                denying = self.registry.take(call, environ, kinds=(MISSING_DENIED,), consume=False)
                if denying is not None:
                    return self.deny_if_missing(call, denying, environ, start_response)
        return self.app(environ, start_response)

    def deny_if_missing(self, call: Call, fault: Fault, environ: Environ, start_response: StartResponse):
        """Serves the request, but turns moto's 404 for a missing key into S3's 403."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        result = self.app(environ, capture)
        try:
            body = b"".join(captured.get("written", [])) + b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if captured.get("status", "").startswith("404"):
            self.registry.consume(fault)
            return access_denied(call, fault, start_response)
        start_response(captured["status"], captured["headers"])
        return [body]
