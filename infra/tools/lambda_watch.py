"""Runs function binaries under `cargo lambda watch` (the Lambda Runtime API emulator) on a free
loopback port, stopped by PID, and invokes them: with `cargo lambda invoke`, as a user does (the
tests), or with a timed POST to the watch's invoke endpoint (the demo's latencies).

Used by tests/python/test_lambda_*.py and scripts/demo.py. The emulator to talk to comes from
AWS_ENDPOINT_URL (scripts/test and scripts/demo export it); without it emulator_env() starts the
project's emulator through `emulator/run start`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class WatchError(RuntimeError):
    """cargo lambda is missing, or its watch exited or never listened."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator_env() -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("AWS_ENDPOINT_URL"):
        out = subprocess.run(["bash", str(REPO / "emulator/run"), "start"], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v.strip("'\"")
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    return env


def emulator_clients(env: dict[str, str], names) -> dict:
    """boto3 clients for `names` against the emulator of `env` (as [`emulator_env`] gives it)."""
    import boto3  # the emulator venv's; imported here so the harness itself needs only the stdlib

    kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
              aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    return {name: boto3.client(name, **kw) for name in names}


def cargo_lambda() -> list[str]:
    exe = shutil.which("cargo-lambda")
    if exe is None:
        raise WatchError("cargo-lambda is not on PATH: run through scripts/test or add the emulator venv's bin/")
    return [exe, "lambda"]


class Watch:
    """`cargo lambda watch` for one package on a free loopback port; stopped by PID.

    As a context manager it starts and waits until the port listens; `start()` and `wait_ready()`
    apart let several watches start side by side. The log goes to `log` (default
    `.emulator/watch-<package>-<port>.log`)."""

    def __init__(self, package: str, env: dict[str, str], extra_env: dict[str, str] | None = None, *,
                 release: bool = False, log: Path | None = None):
        self.package = package
        self.port = free_port()
        self.env = dict(env, **(extra_env or {}))
        self.release = release
        self.log = log or REPO / ".emulator" / f"watch-{package}-{self.port}.log"
        self.log.parent.mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.invocations = 0                          # through post()
        self.latencies: list[tuple[float, bool]] = []  # (ms, cold) of each post()

    def start(self) -> None:
        cmd = cargo_lambda() + ["watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(self.port), "-p", self.package]
        if self.release:
            cmd.append("--release")
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise WatchError(f"cargo lambda watch for {self.package} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise WatchError(f"cargo lambda watch for {self.package} did not listen on {self.port}:\n{self.log.read_text()[-3000:]}")

    def __enter__(self) -> "Watch":
        self.start()
        self.wait_ready()
        return self

    def invoke(self, function: str, data_file: Path | None = None, data: dict | None = None,
               timeout: float = 600) -> tuple[int, str, str]:
        """`cargo lambda invoke`: (exit code, stdout, stderr); raises subprocess.TimeoutExpired
        after `timeout` seconds (a function that failed its init never answers)."""
        cmd = cargo_lambda() + ["invoke", function, "-A", "127.0.0.1", "-P", str(self.port), "--output-format", "json"]
        if data_file is not None:
            cmd += ["--data-file", str(data_file)]
        else:
            cmd += ["--data-ascii", json.dumps(data)]
        started = time.monotonic()
        p = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        self.last_latency = time.monotonic() - started
        return p.returncode, p.stdout, p.stderr

    def post(self, payload: Any, timeout: float = 900) -> tuple[bool, Any, float, bool]:
        """(ok, response, latency ms, cold) through the Runtime API emulator's invoke endpoint, the
        function name being the package's; the first call is the cold one."""
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/{self.package}/invocations"
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                errored = resp.headers.get("X-Amz-Function-Error") is not None
        except urllib.error.HTTPError as e:
            raw, errored = e.read(), True
        latency = (time.monotonic() - started) * 1000
        cold = self.invocations == 0
        self.invocations += 1
        self.latencies.append((latency, cold))
        try:
            out = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            out = raw.decode(errors="replace")
        if isinstance(out, dict) and "errorType" in out and "errorMessage" in out and len(out) <= 3:
            errored = True
        return (not errored), out, latency, cold

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(self, *exc) -> None:
        self.stop()
