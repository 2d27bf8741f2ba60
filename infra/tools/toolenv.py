"""Isolated venvs for the infra tools whose pins conflict with the emulator venv.

aws-sam-cli pins ``boto3[crt]==1.43.108`` and checkov pins ``boto3==1.35.49`` / ``networkx<2.7``;
the emulator venv has boto3 1.44.5. Each tool therefore gets its own venv, created on first use
from ``infra/tools/requirements-<tool>.txt`` under ``$DRIFTLOOP_CACHE/infra-tools`` (default
``~/.cache/driftloop/infra-tools``), named by the hash of the requirements file so a pin change
makes a new one. A file lock makes concurrent first uses (pytest-xdist, two engineers) safe.

    python infra/tools/toolenv.py sam        # prints the venv's bin directory (creating it once)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    base = os.environ.get("DRIFTLOOP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "driftloop"
    )
    return Path(base) / "infra-tools"


def python_for_venv() -> str:
    """A python3 >= 3.9 that can make venvs (pyenv shims may exist for versions that do not run)."""
    for c in (os.environ.get("DRIFTLOOP_PYTHON"), "python3.12", "python3.11", "python3"):
        p = c and shutil.which(c)
        if p and subprocess.run([p, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 9))"],
                                capture_output=True).returncode == 0:
            return p
    return getattr(sys, "_base_executable", sys.executable)


def tool_bin(tool: str) -> Path:
    """The bin/ directory of the venv for ``tool`` (``sam`` or ``checkov``), created when missing."""
    req = HERE / f"requirements-{tool}.txt"
    if not req.is_file():
        raise FileNotFoundError(req)
    digest = hashlib.sha256(req.read_bytes()).hexdigest()[:12]
    venv = cache_dir() / f"{tool}-{digest}"
    ok = venv / ".driftloop-ok"
    if ok.is_file():
        return venv / "bin"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{tool}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ok.is_file():
            return venv / "bin"
        shutil.rmtree(venv, ignore_errors=True)
        print(f"toolenv: creating {venv} (first use)", file=sys.stderr)
        subprocess.run([python_for_venv(), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=False)
        try:
            subprocess.run([*pip, "install", "-r", str(req)], check=True)
        except subprocess.CalledProcessError:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        ok.touch()
    return venv / "bin"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: toolenv.py sam|checkov")
    print(tool_bin(sys.argv[1]))
