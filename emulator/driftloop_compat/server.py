"""Serve moto (optionally with the compatibility layer) on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from . import MOTO_VERSION
from .wsgi_util import Environ, StartResponse, WsgiApp, respond


class AdminMiddleware:
    """``GET /driftloop/health``; ``POST /moto-api/reset`` (and ``/driftloop/reset``) also clear faults
    and the Lambda runtime registry (``/driftloop/lambda/runtimes``, see ``lambda_async``).

    Present in plain mode too (health only) so the tests and ``emulator/run`` can tell when a
    server answers; it changes nothing about how moto serves AWS calls.
    """

    def __init__(self, app: WsgiApp, compat: bool):
        self.app = app
        self.compat = compat
        self.started = time.time()

    def __call__(self, environ: Environ, start_response: StartResponse):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/driftloop/health":
            body = json.dumps({
                "ok": True, "compat": self.compat, "moto": MOTO_VERSION, "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 3),
            }).encode()
            return respond(start_response, 200, body, "application/json")
        if self.compat and path == "/driftloop/config":
            from . import emit

            if method in ("PUT", "POST"):
                try:
                    from .wsgi_util import read_body

                    values = json.loads(read_body(environ) or b"{}")
                    if not isinstance(values, dict):
                        raise ValueError("a JSON object is expected")
                except ValueError as exc:
                    return respond(start_response, 400, json.dumps({"error": str(exc)}).encode(), "application/json")
                return respond(start_response, 200, json.dumps(emit.set_config(values)).encode(), "application/json")
            return respond(start_response, 200, json.dumps(emit.config()).encode(), "application/json")
        if self.compat and method == "POST" and path == "/driftloop/sagemaker/status":
            from . import sagemaker
            from .wsgi_util import read_body

            try:
                values = json.loads(read_body(environ) or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("a JSON object is expected")
                result = sagemaker.set_status(values)
            except KeyError as exc:
                return respond(start_response, 404, json.dumps({"error": str(exc)}).encode(), "application/json")
            except ValueError as exc:
                return respond(start_response, 400, json.dumps({"error": str(exc)}).encode(), "application/json")
            return respond(start_response, 200, json.dumps(result).encode(), "application/json")
        if self.compat and path == "/driftloop/lambda/runtimes":
            from . import lambda_async
            from .wsgi_util import read_body

            if method in ("PUT", "POST"):
                try:
                    values = json.loads(read_body(environ) or b"{}")
                    if not isinstance(values, dict):
                        raise ValueError("a JSON object is expected")
                    result = lambda_async.register(values)
                except ValueError as exc:
                    return respond(start_response, 400, json.dumps({"error": str(exc)}).encode(), "application/json")
                return respond(start_response, 200, json.dumps(result).encode(), "application/json")
            return respond(start_response, 200, json.dumps(lambda_async.status()).encode(), "application/json")
        if self.compat and method == "POST" and path in ("/moto-api/reset", "/driftloop/reset"):
            from . import emit, lambda_async
            from .faults import REGISTRY

            REGISTRY.clear()
            emit.reset()
            lambda_async.reset()
            if path == "/driftloop/reset":
                environ["PATH_INFO"] = "/moto-api/reset"
        return self.app(environ, start_response)


def build_app(compat: bool = True) -> WsgiApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app: Any = DomainDispatcherApplication(create_backend_app)
    if compat:
        from . import cloudwatch, emit, events, lambda_async, s3, sagemaker, stepfunctions
        from .cbor import CborMiddleware
        from .faults import FaultMiddleware

        cloudwatch.apply()
        s3.apply()
        sagemaker.apply()
        events.apply()
        lambda_async.apply()
        emit.apply()  # after sagemaker.apply(): it wraps the fixed methods
        stepfunctions.apply()  # the ASL interpreter on, failed Map items fail the run, paged ItemReader
        # Lambda Invoke (direct, and Step Functions' lambda:invoke) -> cargo lambda watch; inside
        # FaultMiddleware so injected Lambda faults reach state machines too.
        app = stepfunctions.LambdaInvokeRouter(app)
        app = CborMiddleware(app)
        app = FaultMiddleware(app)
    return AdminMiddleware(app, compat)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m driftloop_compat", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 (default) lets the OS pick a free one")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--no-compat", action="store_true", default=os.environ.get("DRIFTLOOP_NO_COMPAT") == "1",
                        help="serve plain moto (no compatibility layer); also DRIFTLOOP_NO_COMPAT=1")
    parser.add_argument("--exit-with", type=int, metavar="PID",
                        help="exit when process PID is gone (test servers must not outlive their test run)")
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    app = build_app(compat=not args.no_compat)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.socket.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    mode = "plain moto" if args.no_compat else "moto + driftloop_compat"
    print(f"driftloop emulator ({mode} {MOTO_VERSION}) listening on http://{args.host}:{port} pid={os.getpid()}",
          flush=True)

    def stop(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with:
        import threading

        def watch(pid: int) -> None:
            while True:
                time.sleep(1)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    print(f"process {pid} is gone: stopping", flush=True)
                    os._exit(0)
                except PermissionError:
                    pass

        threading.Thread(target=watch, args=(args.exit_with,), daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
