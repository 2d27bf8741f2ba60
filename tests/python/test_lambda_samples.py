"""Every `events/` sample of retrain-on-alarm and deploy-on-approval through its real binary under
`cargo lambda watch`, against the emulator — the way a user runs
`cargo lambda invoke <fn> --data-file events/<sample>.json`."""

import json
import subprocess
import sys
import uuid

import boto3
import pytest

from lambda_watch import REPO, Watch, emulator_env

EVENTS = REPO / "events"


@pytest.fixture(scope="module")
def env():
    return emulator_env()


def client(env, service):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def invoke(w, function, sample):
    rc, out, err = w.invoke(function, data_file=EVENTS / sample)
    assert rc == 0, f"{sample}: {out}\n{err}"
    return json.loads(out)


def test_retrain_samples(env):
    sm = client(env, "sagemaker")
    pipeline = f"driftloop-samples-{uuid.uuid4().hex[:8]}"  # runs may share one emulator
    sm.create_pipeline(PipelineName=pipeline, RoleArn="arn:aws:iam::123456789012:role/sm",
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}))
    extra = {"PIPELINE_NAME": pipeline, "COOLDOWN": "0", "SCHEDULE_PERIOD": "1h", "MAX_TRIGGER_AGE": "0"}
    with Watch("retrain-on-alarm", env, extra) as w:
        started = invoke(w, "retrain-on-alarm", "retrain-alarm-eventbridge.json")
        assert started["outcome"] == "Started", started
        assert started["pipelineName"] == pipeline
        again = invoke(w, "retrain-on-alarm", "retrain-alarm-eventbridge.json")
        assert again["outcome"] == "Skipped", again
        ok = invoke(w, "retrain-on-alarm", "retrain-alarm-eventbridge-ok.json")
        assert ok["outcome"] == "Skipped"
        assert "NotAlarm" in json.dumps(ok["skip"]), ok
        for sample in ("retrain-alarm-eventbridge-math.json", "retrain-alarm-action.json", "retrain-schedule.json"):
            out = invoke(w, "retrain-on-alarm", sample)
            assert out["outcome"] in ("Started", "Skipped"), (sample, out)
        rc, out, err = w.invoke("retrain-on-alarm", data_file=EVENTS / "retrain-request.json")
        # The sample asks for pipeline "churn-build", which this deployment is not configured for.
        assert rc != 0 and "Permanent.PipelineNotConfigured" in out + err, out + err
    executions = sm.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
    assert len(executions) >= 1
    assert len(executions) == len({e["PipelineExecutionArn"] for e in executions})


def seed_demo_group(env):
    """The samples name group driftloop-demo and its package 2: make sure both exist, v2 approved."""
    sm = client(env, "sagemaker")
    group = "driftloop-demo"
    try:
        have = len(sm.list_model_packages(ModelPackageGroupName=group, MaxResults=100)["ModelPackageSummaryList"])
    except Exception:
        have = 0
    if have < 2:
        subprocess.run([sys.executable, str(REPO / "scripts/seed_registry.py"), group, "--approved", "2", "--pending", "0"],
                       env=env, check=True, capture_output=True)
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/driftloop-demo/2"
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    return sm


def test_deploy_samples(env):
    sm = seed_demo_group(env)
    run = uuid.uuid4().hex[:8]  # runs may share one emulator
    staging, prod = f"samples-staging-{run}", f"samples-prod-{run}"
    extra = {
        "MODEL_PACKAGE_GROUP_NAME": "driftloop-demo",
        "SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
        "STAGING_ENDPOINT_NAME": staging,
        "PRODUCTION_ENDPOINT_NAME": prod,
        "DATA_CAPTURE_S3_URI": "s3://driftloop-samples-capture/capture",
    }
    with Watch("deploy-on-approval", env, extra) as w:
        approved = invoke(w, "deploy-on-approval", "deploy-package-approved.json")
        assert approved["stages"][0]["action"] == "created", approved
        assert approved["stages"][0]["endpoint"] == staging
        rejected = invoke(w, "deploy-on-approval", "deploy-package-rejected.json")
        # The registry still has the package approved: the replayed rejection changes nothing.
        assert rejected["stages"][0]["action"] == "up_to_date", rejected
        promoted = invoke(w, "deploy-on-approval", "deploy-promotion.json")
        assert promoted["promoted"].endswith("/driftloop-demo/2")
        # "created" on a fresh emulator; an earlier run may have promoted v2 already, and then the
        # approval above created production.
        assert promoted["stages"][1]["action"] in ("created", "up_to_date"), promoted
        assert promoted["stages"][1]["packageArn"].endswith("/driftloop-demo/2")
    ep = sm.describe_endpoint(EndpointName=prod)
    assert ep["EndpointStatus"] == "InService"
