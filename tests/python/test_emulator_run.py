"""``emulator/run``: start prints the environment, the server answers, reset, fault, stop kills the PID.

Runs with its own state directory so it never touches a developer's running emulator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import boto3
import pytest
import requests
from botocore.config import Config

from test_emulator_support import REPO

RUN = REPO / "emulator" / "run"


def _run(state, *args, check=True, extra_env=None):
    env = dict(os.environ, DRIFTLOOP_STATE=str(state))
    env.update(extra_env or {})
    proc = subprocess.run([str(RUN), *args], env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"emulator/run {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def _parse_exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        assert line.startswith("export "), line
        key, value = line[len("export "):].split("=", 1)
        env[key] = value
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not reaped yet) is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def state(tmp_path):
    yield tmp_path
    # whatever happened, stop what this test started, by the PID in its state file
    env_file = tmp_path / "emulator.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("DRIFTLOOP_EMULATOR_PID="):
                pid = int(line.split("=", 1)[1])
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_start_env_reset_fault_stop(state):
    started = time.time()
    out = _run(state, "start")
    env = _parse_exports(out.stdout)
    url = env["AWS_ENDPOINT_URL"]
    assert url.startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_DEFAULT_REGION"] == "us-east-1"
    pid = int(env["DRIFTLOOP_EMULATOR_PID"])
    assert _alive(pid)
    assert time.time() - started < 30
    health = requests.get(f"{url}/driftloop/health", timeout=5).json()
    assert health["compat"] is True and health["pid"] == pid

    # the AWS environment it prints is enough for a client
    sm = boto3.client("sagemaker", endpoint_url=url, region_name=env["AWS_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    sm.create_model_package_group(ModelPackageGroupName="run-test")
    assert len(sm.list_model_package_groups()["ModelPackageGroupSummaryList"]) == 1

    # a second start reuses the running server
    again = _parse_exports(_run(state, "start").stdout)
    assert again["DRIFTLOOP_EMULATOR_PID"] == str(pid) and again["AWS_ENDPOINT_URL"] == url
    assert _parse_exports(_run(state, "env").stdout)["AWS_ENDPOINT_URL"] == url
    assert f"pid={pid}" in _run(state, "status").stdout

    # fault through the script
    fault = _run(state, "fault", "ListModelPackageGroups", "1", "throttle").stdout
    assert '"operation": "ListModelPackageGroups"' in fault
    with pytest.raises(Exception) as err:
        boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing",
                     config=Config(retries={"max_attempts": 0, "mode": "standard"})
                     ).list_model_package_groups()
    assert "ThrottlingException" in str(err.value)

    # reset wipes moto's state and the faults
    _run(state, "fault", "ListModelPackageGroups", "3", "500")
    _run(state, "reset")
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert '"faults": []' in _run(state, "fault", "list").stdout

    # stop kills the PID and removes the state file
    _run(state, "stop")
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert not (state / "emulator.env").exists()
    assert _run(state, "status", check=False).returncode == 3
    with pytest.raises(requests.RequestException):
        requests.get(f"{url}/driftloop/health", timeout=2)


def test_start_plain_moto_and_stale_state(state):
    env = _parse_exports(_run(state, "start", extra_env={"DRIFTLOOP_NO_COMPAT": "1"}).stdout)
    pid = int(env["DRIFTLOOP_EMULATOR_PID"])
    assert requests.get(f"{env['AWS_ENDPOINT_URL']}/driftloop/health", timeout=5).json()["compat"] is False
    # a server that died leaves a stale state file: start replaces it with a new server
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    fresh = _parse_exports(_run(state, "start").stdout)
    assert fresh["DRIFTLOOP_EMULATOR_PID"] != str(pid)
    assert requests.get(f"{fresh['AWS_ENDPOINT_URL']}/driftloop/health", timeout=5).json()["compat"] is True
    _run(state, "stop")
    assert not _alive(int(fresh["DRIFTLOOP_EMULATOR_PID"]))


def test_concurrent_starts_share_one_server(state):
    env = dict(os.environ, DRIFTLOOP_STATE=str(state))
    procs = [subprocess.Popen([str(RUN), "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(3)]
    outs = [_parse_exports(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({o["DRIFTLOOP_EMULATOR_PID"] for o in outs}) == 1
    assert len({o["AWS_ENDPOINT_URL"] for o in outs}) == 1
    _run(state, "stop")
    assert not _alive(int(outs[0]["DRIFTLOOP_EMULATOR_PID"]))
