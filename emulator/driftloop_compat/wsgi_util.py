"""Small WSGI helpers shared by the middlewares."""

from __future__ import annotations

import gzip
import io
import uuid
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

STATUS_TEXT = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def read_body(environ: Environ) -> bytes:
    """Read the whole request body and put it back so the next app can read it again."""
    cached = environ.get("driftloop.body")
    if cached is not None:
        return cached
    stream = environ.get("wsgi.input")
    body = b""
    if stream is not None:
        length = environ.get("CONTENT_LENGTH") or ""
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n > 0:
            body = stream.read(n)
        elif n < 0 and environ.get("wsgi.input_terminated"):
            body = stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["driftloop.body"] = body
    if body or environ.get("CONTENT_LENGTH"):
        environ["CONTENT_LENGTH"] = str(len(body))
    return body


def decoded_body(environ: Environ) -> bytes:
    """The request body with a gzip Content-Encoding undone (CloudWatch compresses PutMetricData)."""
    body = read_body(environ)
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").lower()
    if "gzip" in encoding and body[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(body)
        except OSError:
            return body
    return body


def set_body(environ: Environ, body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["driftloop.body"] = body
    environ["CONTENT_LENGTH"] = str(len(body))


def respond(
    start_response: StartResponse,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> list[bytes]:
    hdrs = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    for k, v in (headers or {}).items():
        hdrs.append((k, v))
    start_response(f"{status} {STATUS_TEXT.get(status, 'Status')}", hdrs)
    return [body]


def call_app(app: WsgiApp, environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion and capture its status, headers and body."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"] = status
        captured["headers"] = list(headers)
        return lambda data: captured.setdefault("extra", []).append(data)

    result = app(environ, start_response)
    try:
        chunks = [*captured.get("extra", []), *list(result)]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status = int(str(captured.get("status", "500")).split(" ", 1)[0])
    return status, captured.get("headers", []), b"".join(chunks)


def credential_scope(environ: Environ) -> tuple[str | None, str | None]:
    """(region, service) from a SigV4 Authorization header, if any."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split(",")[0].split()[1]  # Credential=AKID/20260101/us-east-1/sagemaker/aws4_request
        parts = scope.split("=", 1)[1].split("/")
        return parts[2], parts[3]
    except (IndexError, ValueError):
        return None, None
