"""infra/cdk/lib/parameters.generated.ts: the DriftLoop construct's typed props, from template.yaml's Parameters.

    python infra/tools/cdk_params.py --write     # regenerate after changing a parameter in template.yaml
    python infra/tools/cdk_params.py --check     # exit 1 when the TypeScript is stale (the tests do this too)

Each SAM parameter becomes a prop of the same name in camelCase (ModelPackageGroupName ->
modelPackageGroupName) with the parameter's description and default as its doc comment, a literal
union type where the parameter has AllowedValues, and the CloudFormation definition (type, default,
pattern, bounds) in PARAMETERS, which the construct validates literal values against and the app
turns into the stack's CfnParameters. A parameter without a default is a required prop.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
INFRA = HERE.parent
sys.path.insert(0, str(HERE))
from cfn import load_template  # noqa: E402

OUT = INFRA / "cdk" / "lib" / "parameters.generated.ts"
KEYS = ("Type", "Default", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "Description")


def prop_name(name: str) -> str:
    """ModelPackageGroupName -> modelPackageGroupName; SageMakerExecutionRoleArn -> sageMakerExecutionRoleArn."""
    return name[0].lower() + name[1:]


def ts_type(p: dict) -> str:
    if p["Type"] == "CommaDelimitedList":
        return "string[]"
    if "AllowedValues" in p:
        if p["Type"] == "Number":
            return " | ".join(str(v) for v in p["AllowedValues"])
        return " | ".join(json.dumps(str(v)) for v in p["AllowedValues"])
    return "number" if p["Type"] == "Number" else "string"


def doc(p: dict) -> str:
    text = p.get("Description", "")
    if "Default" in p:
        text += f"\n\n@default {json.dumps(p['Default'])}"
    text = text.replace("*/", "*\\/")
    return "\n".join(["  /**", *[f"   * {line}".rstrip() for line in text.splitlines()], "   */"])


def render(template_path: Path = INFRA / "template.yaml") -> str:
    params = load_template(template_path)["Parameters"]
    out = [
        "// Generated from infra/template.yaml by infra/tools/cdk_params.py --write; do not edit by hand.",
        "// tests/python/test_infra_cdk.py fails when it is stale.",
        "",
        "/** The SAM template's parameters, one typed prop each (same name, camelCase). */",
        "export interface DriftLoopParameters {",
    ]
    for name, p in params.items():
        unknown = set(p) - set(KEYS)
        if unknown:
            raise SystemExit(f"parameter {name}: unsupported {sorted(unknown)} (extend cdk_params.py)")
        out.append(doc(p))
        out.append(f"  readonly {prop_name(name)}{'' if 'Default' not in p else '?'}: {ts_type(p)};")
    out += [
        "}",
        "",
        "/** A parameter's CloudFormation definition (as in template.yaml). */",
        "export interface ParameterDefinition {",
        "  readonly prop: keyof DriftLoopParameters;",
        "  readonly type: 'String' | 'Number' | 'CommaDelimitedList';",
        "  readonly default?: string | number;",
        "  readonly allowedValues?: ReadonlyArray<string | number>;",
        "  readonly allowedPattern?: string;",
        "  readonly minValue?: number;",
        "  readonly maxValue?: number;",
        "  readonly description?: string;",
        "}",
        "",
        "/** Parameter name -> definition, in template.yaml's order. */",
        "export const PARAMETERS: Readonly<Record<string, ParameterDefinition>> = {",
    ]
    for name, p in params.items():
        fields = [f"prop: {json.dumps(prop_name(name))}"]
        for k in KEYS:
            if k in p:
                key = re.sub(r"^[A-Z]", lambda m: m.group(0).lower(), k)
                fields.append(f"{key}: {json.dumps(p[k], ensure_ascii=False)}")
        out.append(f"  {name}: {{ {', '.join(fields)} }},")
    out += ["};", ""]
    return "\n".join(out)


if __name__ == "__main__":
    text = render()
    if "--write" in sys.argv:
        OUT.write_text(text)
        print(f"wrote {OUT}")
    elif "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text() != text:
            sys.exit(f"{OUT} is stale: run python infra/tools/cdk_params.py --write")
        print("parameters.generated.ts is up to date")
    else:
        sys.stdout.write(text)
