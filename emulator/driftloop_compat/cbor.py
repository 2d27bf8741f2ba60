"""Smithy RPC v2 CBOR for CloudWatch, translated to and from moto's awsJson1_0 support.

aws-sdk-cloudwatch >= 1.100 (and botocore's model) use ``smithy.protocols#rpcv2Cbor``:

* request: ``POST /service/GraniteServiceVersion20100801/operation/<Op>``, ``Content-Type:
  application/cbor``, ``smithy-protocol: rpc-v2-cbor``, the input structure as a CBOR map (PutMetricData
  bodies may be gzip'd with ``Content-Encoding: gzip``);
* response: the same header, ``Content-Type: application/cbor``, the output structure as a CBOR map
  with null members left out, lists as arrays, timestamps as tag 1 over epoch seconds, doubles as
  floats (the Rust decoder accepts nothing else for a double), blobs as byte strings; an operation
  without output answers with an empty body;
* errors: a CBOR map with ``__type`` (the error's shape ID) and ``message``, the HTTP status of the
  error's model, and - CloudWatch being ``awsQueryCompatible`` - ``x-amzn-query-error: Code;Sender``,
  which is the code the Rust SDK matches on.

moto 5.2.5 only answers CloudWatch's query and JSON protocols (404 for the above). This middleware
decodes the CBOR input with the service model's shapes into the awsJson document moto parses,
calls moto, and encodes moto's JSON answer back with the output (or error) shape.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from functools import lru_cache
from typing import Any

import cbor2
from botocore.model import ListShape, MapShape, OperationNotFoundError, ServiceModel, Shape, StructureShape

from .wsgi_util import Environ, StartResponse, WsgiApp, call_app, credential_scope, decoded_body, respond, set_body

CBOR_PATH = re.compile(r"^/service/(?P<service>[A-Za-z0-9_.\-]+)/operation/(?P<op>[A-Za-z0-9_]+)/?$")
CBOR_CONTENT_TYPE = "application/cbor"

# Smithy service name (botocore "targetPrefix") -> (botocore service name, SigV4 signing name, shape namespace)
SERVICES = {
    "GraniteServiceVersion20100801": ("cloudwatch", "monitoring", "com.amazonaws.cloudwatch"),
}


@lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def match_cbor_request(environ: Environ) -> tuple[str, str] | None:
    """(smithy service, operation) when the request is an rpcv2Cbor call, else None."""
    m = CBOR_PATH.match(environ.get("PATH_INFO", ""))
    if not m:
        return None
    ctype = environ.get("CONTENT_TYPE", "").lower()
    proto = environ.get("HTTP_SMITHY_PROTOCOL", "").lower()
    if proto != "rpc-v2-cbor" and not ctype.startswith(CBOR_CONTENT_TYPE):
        return None
    return m.group("service"), m.group("op")


# ---------------------------------------------------------------------------------------------
# shape-aware value conversion


def _epoch(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return _epoch(value.value)
    if isinstance(value, str):
        from botocore.utils import parse_timestamp

        return parse_timestamp(value).timestamp()
    return None


def cbor_to_json(value: Any, shape: Shape | None) -> Any:
    """A decoded CBOR input value -> the awsJson value moto's JSON parser reads."""
    if value is None or shape is None:
        return value
    t = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return value
        if getattr(shape, "is_document_type", False):
            return value
        out = {}
        for key, member_value in value.items():
            member = shape.members.get(key)
            if member is None or member_value is None:
                continue  # unknown members and nulls are ignored, as a Smithy server does
            out[key] = cbor_to_json(member_value, member)
        return out
    if isinstance(shape, ListShape):
        return [cbor_to_json(v, shape.member) for v in value if v is not None] if isinstance(value, list) else value
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return value
        return {str(k): cbor_to_json(v, shape.value) for k, v in value.items() if v is not None}
    if t == "timestamp":
        return _epoch(value)
    if t == "blob":
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        return value
    if t in ("double", "float"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = float(value)
            if math.isnan(f):
                return "NaN"
            if math.isinf(f):
                return "Infinity" if f > 0 else "-Infinity"
            return f
        return value
    if t in ("integer", "long", "short", "byte"):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    return value


def json_to_cbor(value: Any, shape: Shape | None) -> Any:
    """moto's awsJson output value -> the value to CBOR-encode for the shape."""
    if value is None:
        return None
    if shape is None:
        return value
    t = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict) or getattr(shape, "is_document_type", False):
            return value
        out = {}
        for name, member in shape.members.items():
            if name not in value:
                continue
            converted = json_to_cbor(value[name], member)
            if converted is not None:
                out[name] = converted
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return value
        return [json_to_cbor(v, shape.member) for v in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return value
        return {k: json_to_cbor(v, shape.value) for k, v in value.items() if v is not None}
    if t == "timestamp":
        seconds = _epoch(value)
        if seconds is None:
            return None
        # Milliseconds are the protocol's precision; a float is what every SDK decoder accepts.
        return cbor2.CBORTag(1, round(float(seconds), 3))
    if t == "blob":
        if isinstance(value, str):
            try:
                return base64.b64decode(value)
            except ValueError:
                return value.encode()
        return value
    if t in ("double", "float"):
        if isinstance(value, str):
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return value
    if t in ("integer", "long", "short", "byte"):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return value
        return value
    if t == "boolean":
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)
    if t == "string":
        return value if isinstance(value, str) else str(value)
    return value


# ---------------------------------------------------------------------------------------------
# errors


def error_body(namespace: str, shape_name: str, message: str, extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"__type": f"{namespace}#{shape_name}", "message": message}
    if extra:
        for k, v in extra.items():
            if k not in ("__type", "message", "Message") and v is not None:
                body[k] = v
    return cbor2.dumps(body)


def cbor_error(
    start_response: StartResponse,
    status: int,
    namespace: str,
    shape_name: str,
    message: str,
    query_code: str | None = None,
    fault: str = "Sender",
    extra: dict[str, Any] | None = None,
) -> list[bytes]:
    headers = {"smithy-protocol": "rpc-v2-cbor"}
    if query_code:
        headers["x-amzn-query-error"] = f"{query_code};{fault}"
    return respond(start_response, status, error_body(namespace, shape_name, message, extra), CBOR_CONTENT_TYPE, headers)


def _find_error_shape(model: ServiceModel, code: str) -> StructureShape | None:
    """moto names errors by shape name (``Prefix#ShapeName``) or by query code; find the shape."""
    for shape in model.error_shapes:
        if shape.name == code or shape.error_code == code:
            return shape
    return None


# ---------------------------------------------------------------------------------------------
# the middleware


class CborMiddleware:
    def __init__(self, app: WsgiApp):
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse):
        matched = match_cbor_request(environ)
        if matched is None:
            return self.app(environ, start_response)
        smithy_service, op = matched
        if smithy_service not in SERVICES:
            return cbor_error(
                start_response, 404, "smithy.framework", "UnknownOperationException",
                f"Service {smithy_service} is not served over rpc-v2-cbor by this emulator",
            )
        botocore_name, signing_name, namespace = SERVICES[smithy_service]
        model = service_model(botocore_name)
        try:
            operation = model.operation_model(op)
        except OperationNotFoundError:
            return cbor_error(start_response, 404, "smithy.framework", "UnknownOperationException",
                              f"Unknown operation {op}")
        if environ.get("REQUEST_METHOD", "").upper() != "POST":
            return cbor_error(start_response, 405, "smithy.framework", "UnknownOperationException",
                              "rpc-v2-cbor operations are POST only")

        raw = decoded_body(environ)
        try:
            decoded = cbor2.loads(raw) if raw else {}
        except Exception as exc:  # noqa: BLE001 - any decode failure is the client's
            return cbor_error(start_response, 400, "smithy.framework", "SerializationException",
                              f"Could not decode CBOR body: {exc}", "SerializationException")
        if decoded is None:
            decoded = {}
        if not isinstance(decoded, dict):
            return cbor_error(start_response, 400, "smithy.framework", "SerializationException",
                              "The CBOR body must be a map", "SerializationException")
        json_input = cbor_to_json(decoded, operation.input_shape) if operation.input_shape else {}

        inner = dict(environ)
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT", "driftloop.body"):
            inner.pop(key, None)
        inner["PATH_INFO"] = "/"
        inner["RAW_URI"] = "/"
        inner["REQUEST_URI"] = "/"
        inner["QUERY_STRING"] = ""
        inner["REQUEST_METHOD"] = "POST"
        inner["CONTENT_TYPE"] = "application/x-amz-json-1.0"
        inner["HTTP_X_AMZ_TARGET"] = f"{smithy_service}.{op}"
        region, _ = credential_scope(environ)
        if not environ.get("HTTP_AUTHORIZATION") or region is None:
            # moto routes by the SigV4 scope; give an unsigned request one so it reaches CloudWatch.
            region = region or "us-east-1"
            inner["HTTP_AUTHORIZATION"] = (
                f"AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{signing_name}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            )
        set_body(inner, json.dumps(json_input).encode())

        status, headers, body = call_app(self.app, inner)
        header_map = {k.lower(): v for k, v in headers}
        passthrough = {}
        if "x-amzn-requestid" in header_map:
            passthrough["x-amzn-RequestId"] = header_map["x-amzn-requestid"]

        if 200 <= status < 300:
            if operation.output_shape is None or not operation.output_shape.members:
                out_body = b""
            else:
                try:
                    parsed = json.loads(body) if body.strip() else {}
                except ValueError:
                    parsed = {}
                out_body = cbor2.dumps(json_to_cbor(parsed, operation.output_shape))
            hdrs = {"smithy-protocol": "rpc-v2-cbor", **passthrough}
            return _respond_keep_id(start_response, status, out_body, hdrs)

        # error: moto answered in awsJson (or crashed with HTML)
        try:
            parsed = json.loads(body) if body.strip() else {}
            if not isinstance(parsed, dict):
                parsed = {}
        except ValueError:
            parsed = {}
        code = str(parsed.get("__type") or header_map.get("x-amzn-errortype") or "")
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        message = parsed.get("message") or parsed.get("Message") or ""
        if not code:
            code = "InternalFailure" if status >= 500 else "ValidationError"
            if not message:
                message = body.decode("utf-8", "replace")[:500] or f"HTTP {status}"
        shape = _find_error_shape(model, code)
        if shape is not None:
            shape_name = shape.name
            query_code = shape.error_code or shape.name
            ns = namespace
            extra = json_to_cbor({k: v for k, v in parsed.items() if k in shape.members}, shape)
            fault = "Sender" if shape.metadata.get("error", {}).get("senderFault") else "Receiver"
            if status < 400:
                status = shape.metadata.get("error", {}).get("httpStatusCode", 400)
        else:
            shape_name, query_code, extra = code, code, None
            ns = namespace if status < 500 else "smithy.framework"
            fault = "Sender" if status < 500 else "Receiver"
        query_header = header_map.get("x-amzn-query-error")
        if query_header and ";" in query_header:
            query_code, fault = query_header.split(";", 1)
        err = error_body(ns, shape_name, message, extra)
        hdrs = {"smithy-protocol": "rpc-v2-cbor", "x-amzn-query-error": f"{query_code};{fault}", **passthrough}
        return _respond_keep_id(start_response, status, err, hdrs)


def _respond_keep_id(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    from .wsgi_util import STATUS_TEXT

    hdrs = [("Content-Type", CBOR_CONTENT_TYPE), ("Content-Length", str(len(body)))]
    if "x-amzn-RequestId" not in headers:
        import uuid

        hdrs.append(("x-amzn-RequestId", str(uuid.uuid4())))
    hdrs.extend(headers.items())
    start_response(f"{status} {STATUS_TEXT.get(status, 'Status')}", hdrs)
    return [body]
