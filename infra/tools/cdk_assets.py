"""The Lambda code assets of a synthesized CDK app (a cloud assembly, `cdk.out`): which function has
which asset folder, and whether that folder holds a `bootstrap` executable built for the function's
architecture.

    python infra/tools/cdk_assets.py CDK_OUT [STACK]     # one line per function; exit 1 on a problem

Used by infra/tools/cdk-bundle-check (after a real `cdk synth` with bundling) and by
tests/python/test_infra_cdk_bundling.py (after a synth with a stand-in for cargo lambda).
The architecture is read from the ELF header (e_machine), not from the file name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

# ELF e_machine values of Lambda's two architectures.
ELF_MACHINES = {183: "arm64", 62: "x86_64"}


@dataclass(frozen=True)
class FunctionAsset:
    logical_id: str
    architecture: str  # the function's Architectures (Lambda's default x86_64 when absent)
    asset: Path | None  # the asset folder, None when the function has no file asset
    binary_architecture: str | None  # from the bootstrap's ELF header; None when no bootstrap
    size: int | None

    @property
    def problem(self) -> str | None:
        if self.asset is None:
            return "no bundled asset folder in the cloud assembly (was bundling skipped?)"
        if self.binary_architecture is None:
            return f"no bootstrap executable in {self.asset}"
        if self.binary_architecture != self.architecture:
            return f"bootstrap is {self.binary_architecture}, the function runs on {self.architecture}"
        return None


def elf_architecture(path: Path) -> str:
    """'arm64', 'x86_64', or a description of what the file is instead."""
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return f"not an ELF file (starts with {head[:4]!r})"
    if head[4] != 2:
        return "a 32-bit ELF file"
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine}")


def function_assets(cdk_out: Path, stack: str = "driftloop") -> list[FunctionAsset]:
    template_path = cdk_out / f"{stack}.template.json"
    if not template_path.is_file():
        raise FileNotFoundError(f"{template_path} not found: not a cloud assembly of stack {stack!r}")
    template = json.loads(template_path.read_text())
    # Code.S3Key is "<asset hash>.zip"; the stack's asset manifest names each hash's folder.
    assets_path = cdk_out / f"{stack}.assets.json"
    files = json.loads(assets_path.read_text()).get("files", {}) if assets_path.is_file() else {}
    out = []
    for lid, r in sorted(template.get("Resources", {}).items()):
        if r.get("Type") != "AWS::Lambda::Function":
            continue
        archs = r.get("Properties", {}).get("Architectures", ["x86_64"])
        arch = archs[0] if isinstance(archs, list) and archs else str(archs)
        key = r.get("Properties", {}).get("Code", {}).get("S3Key")
        source = files.get(key.removesuffix(".zip"), {}).get("source", {}) if isinstance(key, str) else {}
        # Staged assets are folders of the assembly ("asset.<hash>"); an absolute path is the
        # unbundled source folder itself (bundling skipped).
        rel = source.get("path") if source.get("packaging") == "zip" else None
        asset = (cdk_out / rel) if rel and not Path(rel).is_absolute() else None
        boot = asset / "bootstrap" if asset else None
        if boot is not None and boot.is_file():
            out.append(FunctionAsset(lid, arch, asset, elf_architecture(boot), boot.stat().st_size))
        else:
            out.append(FunctionAsset(lid, arch, asset, None, None))
    if not out:
        raise ValueError(f"{template_path} defines no AWS::Lambda::Function")
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    cdk_out = Path(argv[1])
    assets = function_assets(cdk_out, argv[2] if len(argv) == 3 else "driftloop")
    bad = 0
    for a in assets:
        where = a.asset.relative_to(cdk_out) if a.asset else "-"
        size = f"{a.size / 1e6:.1f} MB" if a.size is not None else "-"
        status = a.problem or "ok"
        bad += a.problem is not None
        print(f"{a.logical_id}: {a.architecture}, {where}/bootstrap {size} ({a.binary_architecture}): {status}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
