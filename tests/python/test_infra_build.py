"""`sam build` is one workspace build: every function of infra/template.yaml uses SAM's makefile
build method, infra/Makefile has a `build-<LogicalId>` target for each (so a new function cannot be
forgotten), and a `sam build`'s sequence of make invocations runs `cargo lambda build` once.

The last test runs the Makefile for real with a stand-in for cargo lambda (CARGO_LAMBDA), the way
SAM does: one `make --makefile infra/Makefile build-<LogicalId>` per function, each with its own
ARTIFACTS_DIR."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from test_infra_support import INFRA, REPO, TEMPLATE, sam_template

MAKEFILE = INFRA / "Makefile"


def functions() -> dict[str, dict]:
    return {lid: r for lid, r in sam_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def make_rules() -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines) of infra/Makefile (the simple one-line-rule subset it uses)."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for line in MAKEFILE.read_text().splitlines():
        if line.startswith("\t") and current:
            rules[current][1].append(line.strip())
            continue
        m = re.match(r"^([A-Za-z0-9_$().-]+)\s*:(?!=)\s*(.*)$", line)
        current = None
        if m and not line.startswith((" ", "#")):
            current = m.group(1)
            rules[current] = (m.group(2).split(), [])
    return rules


def test_every_function_uses_the_makefile_build_method():
    fns = functions()
    assert len(fns) >= 5, sorted(fns)
    for lid, r in fns.items():
        md = r.get("Metadata", {})
        assert md.get("BuildMethod") == "makefile", f"{lid}: BuildMethod {md.get('BuildMethod')!r}, not makefile"
        # SAM reads the Makefile from ContextPath (relative to the template's folder): infra/Makefile.
        assert (TEMPLATE.parent / md.get("ContextPath", "") / "Makefile").resolve() == MAKEFILE, lid
        binary = md["BuildProperties"]["Binary"]
        assert (REPO / "functions" / binary / "Cargo.toml").is_file(), f"{lid}: no crate functions/{binary}"


def test_the_makefile_has_a_target_for_every_function_copying_its_binary():
    rules = make_rules()
    binaries = re.search(r"^BINARIES := (.+)$", MAKEFILE.read_text(), re.M).group(1).split()
    for lid, r in functions().items():
        target = f"build-{lid}"
        assert target in rules, f"infra/Makefile has no target {target}: add one for the new function"
        prereqs, recipe = rules[target]
        assert prereqs == ["$(STAMP)"], f"{target}: must depend on the one shared build only, not {prereqs}"
        binary = r["Metadata"]["BuildProperties"]["Binary"]
        assert recipe == [f"$(call copy,{binary})"], f"{target}: copies {recipe}, expected {binary}"
        assert binary in binaries, f"{binary} is not in the shared build's BINARIES {binaries}"
    # The shared build is the only recipe that runs cargo lambda.
    builders = [t for t, (_, recipe) in rules.items() if any("$(CARGO_LAMBDA)" in line for line in recipe)]
    assert builders == ["$(STAMP)"], builders


FAKE_CARGO_LAMBDA = textwrap.dedent("""\
    import os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(" ".join(args) + "\\n")
    out = args[args.index("--lambda-dir") + 1]
    for i, a in enumerate(args):
        if a == "-p":
            os.makedirs(os.path.join(out, args[i + 1]), exist_ok=True)
            with open(os.path.join(out, args[i + 1], "bootstrap"), "w") as f:
                f.write(args[i + 1] + " " + os.environ.get("FAKE_MARK", ""))
""")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_one_sam_build_runs_cargo_lambda_once(tmp_path):
    fake = tmp_path / "fake_cargo_lambda.py"
    fake.write_text(FAKE_CARGO_LAMBDA)
    log = tmp_path / "calls.log"
    env = {**os.environ, "CARGO_TARGET_DIR": str(tmp_path / "target"), "FAKE_LOG": str(log),
           "CARGO_LAMBDA": f"{sys.executable} {fake}"}
    env.pop("DRIFTLOOP_ARCH", None)

    def sam_build(mark: str) -> None:
        for lid, r in functions().items():  # as SAM does: one make per function, cwd = the workspace
            artifacts = tmp_path / mark / lid
            p = subprocess.run(["make", "--makefile", str(MAKEFILE), f"build-{lid}"], cwd=REPO, capture_output=True,
                               text=True, env={**env, "ARTIFACTS_DIR": str(artifacts), "FAKE_MARK": mark})
            assert p.returncode == 0, p.stdout + p.stderr
            binary = r["Metadata"]["BuildProperties"]["Binary"]
            assert (artifacts / "bootstrap").read_text().startswith(binary + " "), lid

    sam_build("cold")
    calls = log.read_text().splitlines()
    assert len(calls) == 1, calls
    assert calls[0].startswith("build --release --arm64 --lambda-dir "), calls[0]
    assert sorted(re.findall(r"-p (\S+)", calls[0])) == sorted(
        {r["Metadata"]["BuildProperties"]["Binary"] for r in functions().values()})
    # Nothing changed: the next sam build copies and runs no cargo at all.
    sam_build("warm")
    assert len(log.read_text().splitlines()) == 1
    # Another architecture is another build, into its own folder.
    p = subprocess.run(["make", "--makefile", str(MAKEFILE), "lambda-binaries"], cwd=tmp_path, capture_output=True,
                       text=True, env={**env, "DRIFTLOOP_ARCH": "x86_64"})
    assert p.returncode == 0, p.stdout + p.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2 and " --x86-64 " in calls[1] and "sam-lambda/x86_64" in calls[1], calls
    p = subprocess.run(["make", "--makefile", str(MAKEFILE), "lambda-binaries"], cwd=tmp_path, capture_output=True,
                       text=True, env={**env, "DRIFTLOOP_ARCH": "sparc"})
    assert p.returncode != 0 and "DRIFTLOOP_ARCH" in p.stderr


def test_a_target_outside_sam_refuses_without_artifacts_dir(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    stamp_dir = tmp_path / "target" / "sam-lambda" / "arm64"
    stamp_dir.mkdir(parents=True)
    (stamp_dir / ".built").touch()  # the shared build is fresh: only the copy runs
    env = {k: v for k, v in os.environ.items() if k not in ("ARTIFACTS_DIR", "DRIFTLOOP_ARCH")}
    env["CARGO_TARGET_DIR"] = str(tmp_path / "target")
    p = subprocess.run(["make", "--makefile", str(MAKEFILE), "build-GetApprovedModelFunction"], cwd=tmp_path,
                       capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "ARTIFACTS_DIR is not set" in p.stderr, p.stdout + p.stderr


def test_samconfig_builds_in_source():
    text = (INFRA / "samconfig.toml").read_text()
    import tomllib
    cfg = tomllib.loads(text)
    assert cfg["default"]["build"]["parameters"]["build_in_source"] is True
    assert cfg["default"]["global"]["parameters"]["stack_name"] == "driftloop"
