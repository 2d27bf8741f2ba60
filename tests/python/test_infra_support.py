"""Shared helpers for the infra tests (``test_infra_*.py``): no tests of its own.

- the SAM template (``infra/template.yaml``) loaded with its short intrinsic tags, and transformed
  to plain CloudFormation offline with aws-sam-translator (from the aws-sam-cli tool venv);
- the CDK app (``infra/cdk``) synthesized offline into a temporary directory (``npm ci`` first when
  ``node_modules`` is missing — the only network use, the npm registry; bundling skipped, so no
  Rust build);
- the tool venvs of aws-sam-cli and checkov (their boto3 pins conflict with the emulator venv's:
  ``infra/tools/toolenv.py`` creates each once, outside the clone).

Everything runs with AWS_ENDPOINT_URL pointing at a closed local port and dummy credentials, so a
tool that tried to reach AWS would fail instead of leaving the machine.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest

import cfn  # infra/tools, on sys.path through conftest.py
import toolenv

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
CDK = INFRA / "cdk"
TEMPLATE = INFRA / "template.yaml"
EVENTS = REPO / "events"


def offline_env(**extra: str) -> dict[str, str]:
    """The environment for the tools: no real credentials, no reachable AWS endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        AWS_DEFAULT_REGION=cfn.REGION,
        AWS_REGION=cfn.REGION,
        AWS_ACCESS_KEY_ID="offline",
        AWS_SECRET_ACCESS_KEY="offline",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
        BC_SKIP_MAPPING="TRUE",
        CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
    )
    env.update(extra)
    return env


def run(args: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env or offline_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def explain(p: subprocess.CompletedProcess) -> str:
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-8000:]}\n--- stderr\n{p.stderr[-8000:]}"


def cfn_lint_bin() -> str:
    here = Path(sys.executable).parent / "cfn-lint"
    return str(here) if here.exists() else (shutil.which("cfn-lint") or "cfn-lint")


@lru_cache(maxsize=None)
def tool(name: str) -> Path:
    return toolenv.tool_bin(name)


@lru_cache(maxsize=None)
def sam_template() -> dict:
    return cfn.load_template(TEMPLATE)


@lru_cache(maxsize=None)
def sam_transformed() -> dict:
    p = run([tool("sam") / "python", INFRA / "tools" / "sam_transform.py", TEMPLATE])
    assert p.returncode == 0, explain(p)
    return json.loads(p.stdout)


_SYNTH: dict[str, Path] = {}


def cdk_synth_dir() -> Path:
    """Synthesizes the CDK app once per session (npm ci first if node_modules is missing)."""
    if "dir" in _SYNTH:
        return _SYNTH["dir"]
    npm = shutil.which("npm")
    node = shutil.which("node")
    if not npm or not node:
        pytest.fail("node and npm are required for the CDK checks (apt-get install nodejs npm)")
    env = offline_env(npm_config_audit="false", npm_config_fund="false", npm_config_update_notifier="false")
    if not (CDK / "node_modules" / "aws-cdk-lib").is_dir():
        p = run([npm, "ci", "--no-audit", "--no-fund"], cwd=CDK, env=env, timeout=900)
        assert p.returncode == 0, "npm ci failed\n" + explain(p)
    p = run([node, CDK / "node_modules" / "typescript" / "bin" / "tsc", "-p", CDK], cwd=CDK, env=env)
    assert p.returncode == 0, "tsc failed\n" + explain(p)
    out = Path(tempfile.mkdtemp(prefix="driftloop-cdk-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    p = run([node, CDK / "dist" / "bin" / "app.js"], cwd=CDK,
            env=offline_env(CDK_OUTDIR=str(out), DRIFTLOOP_SKIP_BUNDLING="1"))
    assert p.returncode == 0, "cdk synth failed\n" + explain(p)
    _SYNTH["dir"] = out
    _SYNTH["output"] = p.stdout + p.stderr
    return out


def cdk_synth_output() -> str:
    cdk_synth_dir()
    return str(_SYNTH["output"])


def cdk_template_path() -> Path:
    return cdk_synth_dir() / "driftloop.template.json"


@lru_cache(maxsize=None)
def cdk_template() -> dict:
    return json.loads(cdk_template_path().read_text())


def checkov(path: Path) -> subprocess.CompletedProcess:
    return run([tool("checkov") / "checkov", "-f", path, "--framework", "cloudformation", "--compact",
                "--quiet", "--skip-download"], cwd=path.parent)
