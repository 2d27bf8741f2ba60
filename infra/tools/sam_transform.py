"""Transforms infra/template.yaml (SAM) into plain CloudFormation JSON, offline.

Runs with the aws-sam-cli tool venv's python (it ships aws-sam-translator), e.g.
    $(python infra/tools/toolenv.py sam)/python infra/tools/sam_transform.py infra/template.yaml
Local CodeUris are replaced by a placeholder S3 location first (as cfn-lint does): the transform
only needs a location, the build is `sam build`'s business.
"""

import json
import sys
from pathlib import Path

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfn import load_template  # noqa: E402


class _NoManagedPolicies:
    def load(self):
        return {}


def transform(path):
    t = load_template(path)
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r.setdefault("Properties", {})["CodeUri"] = "s3://driftloop-placeholder/code.zip"
    t.setdefault("Globals", {}).get("Function", {}).pop("CodeUri", None)
    # A session with a region and no credentials: the transform only reads the region.
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="none", aws_secret_access_key="none")
    translator = Translator(_NoManagedPolicies(), Parser(), boto_session=session)
    return translator.translate(sam_template=t, parameter_values={})


if __name__ == "__main__":
    json.dump(transform(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
