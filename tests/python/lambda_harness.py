"""Runs function binaries under `cargo lambda watch` (the Lambda Runtime API emulator) and invokes
them with `cargo lambda invoke`, as a user does. No tests of its own.

The emulator to talk to comes from AWS_ENDPOINT_URL (scripts/test exports it); without it the
project's emulator is started through `emulator/run start`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


def cargo_lambda() -> list[str]:
    exe = shutil.which("cargo-lambda")
    if exe is None:
        raise RuntimeError("cargo-lambda is not on PATH: run through scripts/test or add the emulator venv's bin/")
    return [exe, "lambda"]


class Watch:
    """`cargo lambda watch` for one package on a free loopback port; stopped by PID."""

    def __init__(self, package: str, env: dict[str, str], extra_env: dict[str, str] | None = None):
        self.package = package
        self.port = free_port()
        self.env = dict(env, **(extra_env or {}))
        self.log = REPO / ".emulator" / f"watch-{package}-{self.port}.log"
        self.log.parent.mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Watch":
        cmd = cargo_lambda() + ["watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(self.port), "-p", self.package]
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cargo lambda watch exited: {self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"cargo lambda watch did not listen on {self.port}: {self.log.read_text()[-3000:]}")

    def invoke(self, function: str, data_file: Path | None = None, data: dict | None = None) -> tuple[int, str, str]:
        cmd = cargo_lambda() + ["invoke", function, "-A", "127.0.0.1", "-P", str(self.port), "--output-format", "json"]
        if data_file is not None:
            cmd += ["--data-file", str(data_file)]
        else:
            cmd += ["--data-ascii", json.dumps(data)]
        started = time.monotonic()
        p = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=600)
        self.last_latency = time.monotonic() - started
        return p.returncode, p.stdout, p.stderr

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
        self._log.close()
