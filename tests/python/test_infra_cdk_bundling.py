"""infra/cdk with bundling ON, cheaply: the app synthesized the way `cdk synth` does it for real
(cargo-lambda-cdk's local bundling: `cargo lambda --version` found on PATH, then one
`cargo lambda build` per RustFunction), with a stand-in for cargo on PATH that records its
arguments and writes a small ELF `bootstrap` for the architecture it was asked for. Proves the
build commands (release, the functions' architecture, one binary each, flattened into the asset),
that every function's asset is its own binary's, and that infra/tools/cdk_assets.py (the check
infra/tools/cdk-bundle-check runs after a real bundled synth) tells a wrong architecture.

The real build (`bash infra/tools/cdk-bundle-check`) is a release build of every function: too heavy
for the test run; its figures are in infra/README.md ("With CDK").
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

import cdk_assets  # infra/tools
from test_infra_support import CDK, INFRA, cdk_synth_dir, explain, offline_env, run, sam_template

FAKE_CARGO = textwrap.dedent("""\
    #!/usr/bin/env python3
    # Stand-in for `cargo lambda` (tests/python/test_infra_cdk_bundling.py).
    import json, os, sys
    args = sys.argv[1:]
    if args[:2] == ["lambda", "--version"]:
        print("cargo-lambda 0.0.0 (stand-in)")
        sys.exit(0)
    if args[:2] != ["lambda", "build"]:
        sys.exit(f"stand-in cargo: unexpected {args}")
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({"args": args, "cwd": os.getcwd()}) + "\\n")
    out = args[args.index("--lambda-dir") + 1]
    binary = args[args.index("--bin") + 1]
    arm = "--arm64" in args
    machine = 183 if arm else 62  # EM_AARCH64, EM_X86_64
    header = b"\\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + (3).to_bytes(2, "little") + machine.to_bytes(2, "little")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bootstrap"), "wb") as f:
        f.write(header + bytes(44) + b"binary=" + binary.encode())
    os.chmod(os.path.join(out, "bootstrap"), 0o755)
""")


def sam_binaries() -> dict[str, str]:
    """logical id -> the crate whose binary template.yaml's function runs (BuildProperties.Binary)."""
    return {lid: r["Metadata"]["BuildProperties"]["Binary"] for lid, r in sam_template()["Resources"].items()
            if r["Type"] == "AWS::Serverless::Function"}


def bundled_synth(tmp: Path, **env: str) -> tuple[Path, list[dict]]:
    cdk_synth_dir()  # npm ci + tsc done
    fake = tmp / "bin"
    fake.mkdir()
    (fake / "cargo").write_text(FAKE_CARGO)
    (fake / "cargo").chmod(0o755)
    out, log = tmp / "cdk.out", tmp / "cargo.log"
    base = offline_env()
    base.pop("DRIFTLOOP_SKIP_BUNDLING", None)
    base.pop("DRIFTLOOP_ARCH", None)
    base.update(PATH=f"{fake}:{base['PATH']}", CDK_OUTDIR=str(out), FAKE_LOG=str(log), **env)
    p = run(["node", CDK / "dist" / "bin" / "app.js"], cwd=CDK, env=base)
    assert p.returncode == 0, "bundled synth failed\n" + explain(p)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return out, calls


@pytest.fixture(scope="module", params=["arm64", "x86_64"])
def synthesized(request, tmp_path_factory):
    """(architecture, cloud assembly, the stand-in's calls): the default (arm64) and DRIFTLOOP_ARCH=x86_64."""
    arch = request.param
    out, calls = bundled_synth(tmp_path_factory.mktemp(f"bundled-{arch}"),
                               **({"DRIFTLOOP_ARCH": arch} if arch != "arm64" else {}))
    return arch, out, calls


def test_a_bundled_synth_builds_each_binary_once_for_the_functions_architecture(synthesized):
    arch, out, calls = synthesized
    flag = {"arm64": "--arm64", "x86_64": "--x86-64"}[arch]
    binaries = sam_binaries()
    # One build per distinct binary: the staging monitor reuses custom-metrics' asset.
    built = sorted(c["args"][c["args"].index("--bin") + 1] for c in calls)
    assert built == sorted(set(binaries.values())), built
    for c in calls:
        a = c["args"]
        binary = a[a.index("--bin") + 1]
        assert "--release" in a and flag in a, a
        assert a[a.index("--flatten") + 1] == binary, a
        assert Path(c["cwd"]).resolve() == INFRA.parent.resolve(), c["cwd"]  # the workspace root
    assets = {a.logical_id: a for a in cdk_assets.function_assets(out)}
    assert sorted(assets) == sorted(binaries)
    for lid, a in assets.items():
        assert a.problem is None, (lid, a.problem)
        assert a.architecture == arch, (lid, a.architecture)
        # Each function's asset is its own binary's bootstrap.
        assert (a.asset / "bootstrap").read_bytes().endswith(b"binary=" + binaries[lid].encode()), lid
    assert assets["CustomMetricsStagingFunction"].asset == assets["CustomMetricsFunction"].asset
    assert cdk_assets.main(["cdk_assets.py", str(out)]) == 0


def test_the_asset_check_tells_a_binary_of_the_wrong_architecture(synthesized, capsys, tmp_path):
    arch, synth_out, _ = synthesized
    other = {"arm64": ("x86_64", 62), "x86_64": ("arm64", 183)}[arch]
    out = tmp_path / "cdk.out"
    shutil.copytree(synth_out, out)
    # retrain-on-alarm's asset rebuilt for the other architecture behind the function's back.
    victim = next(a for a in cdk_assets.function_assets(out) if a.logical_id == "RetrainOnAlarmFunction")
    boot = victim.asset / "bootstrap"
    data = bytearray(boot.read_bytes())
    data[18:20] = other[1].to_bytes(2, "little")
    boot.write_bytes(bytes(data))
    problems = {a.logical_id: a.problem for a in cdk_assets.function_assets(out) if a.problem}
    assert problems == {"RetrainOnAlarmFunction": f"bootstrap is {other[0]}, the function runs on {arch}"}, problems
    assert cdk_assets.main(["cdk_assets.py", str(out)]) == 1
    assert f"RetrainOnAlarmFunction: {arch}" in capsys.readouterr().out
    # A missing binary is a problem too, not a pass.
    victim = next(a for a in cdk_assets.function_assets(out) if a.logical_id == "GetApprovedModelFunction")
    (victim.asset / "bootstrap").unlink()
    again = {a.logical_id: a.problem for a in cdk_assets.function_assets(out)}
    assert again["GetApprovedModelFunction"].startswith("no bootstrap executable"), again


def test_an_offline_synth_has_no_bundled_assets_and_the_check_says_so():
    assets = cdk_assets.function_assets(cdk_synth_dir())
    assert assets and all(a.problem and "bundling skipped" in a.problem for a in assets), assets


def test_the_app_refuses_an_unknown_architecture():
    cdk_synth_dir()
    with tempfile.TemporaryDirectory() as d:
        p = run(["node", CDK / "dist" / "bin" / "app.js"], cwd=CDK,
                env=offline_env(CDK_OUTDIR=d, DRIFTLOOP_SKIP_BUNDLING="1", DRIFTLOOP_ARCH="amd64"))
        assert p.returncode != 0 and 'DRIFTLOOP_ARCH must be arm64 or x86_64, not "amd64"' in p.stderr, explain(p)


def test_the_elf_reader_names_both_lambda_architectures_and_rejects_other_files():
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "bootstrap"
        for machine, name in cdk_assets.ELF_MACHINES.items():
            f.write_bytes(b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(10) + machine.to_bytes(2, "little"))
            assert cdk_assets.elf_architecture(f) == name
        f.write_bytes(b"#!/bin/sh\necho not a binary\n")
        assert cdk_assets.elf_architecture(f).startswith("not an ELF file")
    if shutil.which("true"):
        real = Path(shutil.which("true")).resolve()
        assert cdk_assets.elf_architecture(real) in ("x86_64", "arm64")  # this machine's own executable
