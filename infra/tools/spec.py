"""infra/loop.json: the loop's wiring extracted from infra/template.yaml, which the CDK app builds from.

    python infra/tools/spec.py --write     # regenerate after editing template.yaml
    python infra/tools/spec.py --check     # exit 1 when loop.json is stale (the tests do this too)

template.yaml is the one hand-edited source; loop.json is its CloudFormation-JSON form minus the
SAM specifics (functions become RustFunctions in CDK); the test that synthesizes the CDK app
compares the result with the SAM-transformed template.yaml resource by resource.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
INFRA = HERE.parent
sys.path.insert(0, str(HERE))
from cfn import load_template  # noqa: E402

SPEC = INFRA / "loop.json"


def extract(template_path=INFRA / "template.yaml") -> dict:
    t = load_template(template_path)
    g = t.get("Globals", {}).get("Function", {})
    functions, resources = {}, {}
    for lid, r in t["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            p = r["Properties"]
            functions[lid] = {
                "binary": r["Metadata"]["BuildProperties"]["Binary"],
                "runtime": p.get("Runtime", g.get("Runtime")),
                "architectures": p.get("Architectures", g.get("Architectures")),
                "handler": p.get("Handler", g.get("Handler")),
                "description": p["Description"],
                "memorySize": p["MemorySize"],
                "timeout": p["Timeout"],
                "environment": p["Environment"]["Variables"],
                "loggingConfig": p["LoggingConfig"],
                "statements": [s for pol in p["Policies"] for s in pol["Statement"]],
                "checkovSkips": r["Metadata"].get("checkov", {}).get("skip", []),
            }
            if r.get("Condition"):
                functions[lid]["condition"] = r["Condition"]
            # The plain async DLQ, if a function still has one (issue 17: failed invocations go to
            # the OnFailure destination of its AWS::Lambda::EventInvokeConfig, with their errorType).
            if p.get("DeadLetterQueue"):
                functions[lid]["deadLetterTargetArn"] = p["DeadLetterQueue"]["TargetArn"]
        else:
            resources[lid] = r
    return {
        "_comment": "Generated from infra/template.yaml by infra/tools/spec.py --write; do not edit by hand.",
        "description": t["Description"],
        "parameters": t["Parameters"],
        "conditions": t["Conditions"],
        "functions": functions,
        "resources": resources,
        "outputs": t.get("Outputs", {}),
    }


def render(spec: dict) -> str:
    return json.dumps(spec, indent=1, sort_keys=False) + "\n"


if __name__ == "__main__":
    text = render(extract())
    if "--write" in sys.argv:
        SPEC.write_text(text)
        print(f"wrote {SPEC}")
    elif "--check" in sys.argv:
        if not SPEC.is_file() or SPEC.read_text() != text:
            sys.exit(f"{SPEC} is stale: run python infra/tools/spec.py --write")
        print("loop.json is up to date")
    else:
        sys.stdout.write(text)
