"""Shared helpers for the emulator tests (``test_emulator_*.py``): no tests of its own.

Two servers are started once per pytest session, on free ports of 127.0.0.1: moto with the
driftloop compatibility layer, and plain moto (``--no-compat``) so that every gap can be shown to
exist without the layer. They are stopped by PID at exit, whatever the tests' outcome.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.model
import cbor2
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
EMULATOR_DIR = REPO / "emulator"
REGION = "us-east-1"
CREDS = Credentials("testing", "testing")
CW_TARGET = "GraniteServiceVersion20100801"

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


class Server:
    def __init__(self, compat: bool):
        self.compat = compat
        self.tmp = Path(tempfile.mkdtemp(prefix="driftloop-emu-"))
        self.log_path = self.tmp / "server.log"
        port_file = self.tmp / "port"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(EMULATOR_DIR) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("DRIFTLOOP_NO_COMPAT", None)
        args = [sys.executable, "-m", "driftloop_compat", "--host", "127.0.0.1", "--port", "0",
                "--port-file", str(port_file), "--exit-with", str(os.getpid())]
        if not compat:
            args.append("--no-compat")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited: {self.log_path.read_text()}")
            if self.port is None and port_file.exists() and port_file.read_text().strip():
                self.port = int(port_file.read_text().strip())
            if self.port is not None:
                try:
                    if requests.get(f"{self.url}/driftloop/health", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"emulator did not answer in 30 s: {self.log_path.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    # -- clients -------------------------------------------------------------------------

    def client(self, service: str, retries: int | None = 0, **config: Any):
        cfg = Config(region_name=REGION, retries={"max_attempts": retries, "mode": "standard"} if retries is not None
                     else None, s3={"addressing_style": "path"}, **config)
        return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     region_name=REGION).client(service, endpoint_url=self.url, config=cfg)

    def cbor_boto3_cloudwatch(self, retries: int = 0):
        """A boto3 CloudWatch client forced onto smithy-rpc-v2-cbor (botocore prefers JSON)."""
        original = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
        with _PROTOCOL_LOCK:
            botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = ("smithy-rpc-v2-cbor",) + tuple(
                p for p in original if p != "smithy-rpc-v2-cbor")
            try:
                client = self.client("cloudwatch", retries=retries)
            finally:
                botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = original
        assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
        return client

    def cbor(self, operation: str, payload: dict | None, *, gzip_body: bool = False,
             signed: bool = True) -> requests.Response:
        """An rpc-v2-cbor CloudWatch call exactly as aws-sdk-cloudwatch 1.140 sends it."""
        body = b"" if payload is None else cbor2.dumps(payload)
        headers = {
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "Accept": "application/cbor",
            "x-amzn-query-mode": "true",
        }
        if gzip_body:
            import gzip

            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        url = f"{self.url}/service/{CW_TARGET}/operation/{operation}"
        if signed:
            req = AWSRequest(method="POST", url=url, data=body, headers=headers)
            SigV4Auth(CREDS, "monitoring", REGION).add_auth(req)
            headers = dict(req.headers.items())
        return requests.post(url, data=body, headers=headers, timeout=30)

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()


_PROTOCOL_LOCK = threading.Lock()
_SERVERS: dict[bool, Server] = {}
_SERVERS_LOCK = threading.Lock()


def get_server(compat: bool) -> Server:
    with _SERVERS_LOCK:
        if compat not in _SERVERS:
            _SERVERS[compat] = Server(compat)
        return _SERVERS[compat]


@atexit.register
def stop_servers() -> None:
    with _SERVERS_LOCK:
        for server in _SERVERS.values():
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _SERVERS.clear()


@pytest.fixture(scope="session")
def compat() -> Server:
    """moto + the driftloop compatibility layer."""
    server = get_server(True)
    yield server


@pytest.fixture(scope="session")
def plain() -> Server:
    """Plain moto 5.2.5, to show each gap exists without the layer."""
    server = get_server(False)
    yield server


def tag1(value: dt.datetime | float) -> cbor2.CBORTag:
    """A Smithy timestamp as the Rust SDK encodes it: tag 1 over float epoch seconds."""
    if isinstance(value, dt.datetime):
        value = value.timestamp()
    return cbor2.CBORTag(1, float(value))


class Raw:
    """A strict little CBOR reader that keeps the wire types: tags stay ``cbor2.CBORTag`` (cbor2
    itself turns tag 1 into a datetime), floats stay ``float`` and integers ``int`` - which is what
    the Rust decoder checks (a double must be a CBOR float; a timestamp must be tag 1)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def _take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        if len(out) != n:
            raise ValueError("truncated CBOR")
        self.pos += n
        return out

    def _arg(self, info: int) -> int | None:
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            return int.from_bytes(self._take(1 << (info - 24)), "big")
        if info == 31:
            return None
        raise ValueError(f"bad additional info {info}")

    def item(self) -> Any:
        import struct

        first = self._byte()
        major, info = first >> 5, first & 31
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info in (22, 23):
                return None
            if info == 25:
                return float(struct.unpack(">e", self._take(2))[0])
            if info == 26:
                return float(struct.unpack(">f", self._take(4))[0])
            if info == 27:
                return struct.unpack(">d", self._take(8))[0]
            if info == 31:
                return _BREAK
            raise ValueError(f"unsupported simple value {info}")
        arg = self._arg(info)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            if arg is None:
                parts = []
                while (part := self.item()) is not _BREAK:
                    parts.append(part)
                return (b"" if major == 2 else "").join(parts)
            raw = self._take(arg)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            out = []
            while arg is None or len(out) < arg:
                value = self.item()
                if value is _BREAK:
                    break
                out.append(value)
            return out
        if major == 5:
            out_map = {}
            while arg is None or len(out_map) < arg:
                key = self.item()
                if key is _BREAK:
                    break
                out_map[key] = self.item()
            return out_map
        if major == 6:
            return cbor2.CBORTag(arg, self.item())
        raise ValueError("unreachable")


_BREAK = object()


def decode_raw(body: bytes) -> Any:
    """Decode a whole CBOR body with wire types kept (see ``Raw``); trailing bytes are an error."""
    reader = Raw(body)
    value = reader.item()
    if reader.pos != len(body):
        raise AssertionError("trailing bytes after the CBOR item")
    return value


def no_nulls(value: Any, path: str = "$") -> None:
    if value is None:
        raise AssertionError(f"null member at {path}")
    if isinstance(value, dict):
        for k, v in value.items():
            no_nulls(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            no_nulls(v, f"{path}[{i}]")


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**12}"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
