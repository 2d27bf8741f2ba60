#!/usr/bin/env python3
"""Seed a Model Registry group in the emulator (or any endpoint in AWS_ENDPOINT_URL).

    python scripts/seed_registry.py GROUP [--approved N] [--pending M] [--pipeline NAME]

Registers N approved packages followed by M pending ones, each with an image, a model artifact,
a data-quality drift-check baseline and a ModelName in its customer metadata, and prints a JSON
summary (the ARNs, and which one get-approved-model must return). With --pipeline, also an (empty)
SageMaker pipeline of that name, for retrain-on-alarm to start. Uses boto3 from the project venv.
"""
import argparse
import json
import os
import sys

import boto3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("group")
    ap.add_argument("--approved", type=int, default=2)
    ap.add_argument("--pending", type=int, default=1)
    ap.add_argument("--pipeline", help="also create this (empty) model-build pipeline")
    args = ap.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("AWS_ENDPOINT_URL is not set: eval \"$(emulator/run start)\" first", file=sys.stderr)
        return 2
    sm = boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    try:
        sm.create_model_package_group(ModelPackageGroupName=args.group)
    except sm.exceptions.ClientError as e:  # an existing group is fine
        if "already exists" not in str(e):
            raise
    arns = []
    statuses = ["Approved"] * args.approved + ["PendingManualApproval"] * args.pending
    for n, status in enumerate(statuses, start=1):
        base = f"s3://driftloop-demo-baselines/{args.group}/{n}"
        out = sm.create_model_package(
            ModelPackageGroupName=args.group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{
                    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1",
                    "ModelDataUrl": f"s3://driftloop-demo-models/{args.group}/{n}/model.tar.gz",
                }],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            DriftCheckBaselines={"ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{base}/statistics.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"{base}/constraints.json"},
            }},
            CustomerMetadataProperties={"ModelName": f"{args.group}-model-{n}"},
        )
        arns.append({"arn": out["ModelPackageArn"], "status": status})
    if args.pipeline:
        try:
            sm.create_pipeline(PipelineName=args.pipeline, RoleArn="arn:aws:iam::123456789012:role/driftloop-demo",
                               PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}))
        except sm.exceptions.ClientError as e:  # an existing pipeline is fine
            if "already exists" not in str(e).lower():
                raise
    approved = [a["arn"] for a in arns if a["status"] == "Approved"]
    print(json.dumps({"group": args.group, "packages": arns, "latest_approved": approved[-1] if approved else None}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
