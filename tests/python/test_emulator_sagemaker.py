"""SageMaker gaps of moto 5.2.5 closed by the compatibility layer, and the operations the project uses."""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from test_emulator_support import compat, plain, unique  # noqa: F401

ROLE = "arn:aws:iam::123456789012:role/driftloop"


def _model_and_configs(sm, *, capture: bool = True):
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1",
                                      "ModelDataUrl": "s3://models/model.tar.gz"})
    cfg1, cfg2 = unique("cfg-a"), unique("cfg-b")
    extra = {}
    if capture:
        extra["DataCaptureConfig"] = {
            "EnableCapture": True, "InitialSamplingPercentage": 50, "DestinationS3Uri": "s3://capture/ep",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
        }
    sm.create_endpoint_config(EndpointConfigName=cfg1, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}], **extra)
    sm.create_endpoint_config(EndpointConfigName=cfg2, ProductionVariants=[
        {"VariantName": "Blue", "ModelName": model, "InitialInstanceCount": 2,
         "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0}])
    return model, cfg1, cfg2


# --- UpdateEndpoint -------------------------------------------------------------------------------


def test_update_endpoint_switches_config(compat):
    sm = compat.client("sagemaker")
    _, cfg1, cfg2 = _model_and_configs(sm)
    ep = unique("ep")
    arn = sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)["EndpointArn"]
    before = sm.describe_endpoint(EndpointName=ep)
    time.sleep(0.05)
    out = sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2, DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}})
    assert out["EndpointArn"] == arn
    after = sm.describe_endpoint(EndpointName=ep)
    assert after["EndpointConfigName"] == cfg2
    assert after["EndpointStatus"] == "InService"
    assert [v["VariantName"] for v in after["ProductionVariants"]] == ["Blue"]
    assert after["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert after["LastModifiedTime"] > before["LastModifiedTime"]
    assert after["CreationTime"] == before["CreationTime"]
    assert after["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert "DataCaptureConfig" not in after  # the new config captures nothing


def test_update_endpoint_validation_errors(compat):
    sm = compat.client("sagemaker")
    _, cfg1, _ = _model_and_configs(sm, capture=False)
    with pytest.raises(ClientError) as err:
        sm.update_endpoint(EndpointName=unique("missing"), EndpointConfigName=cfg1)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ep = unique("ep")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    with pytest.raises(ClientError) as err:
        sm.update_endpoint(EndpointName=ep, EndpointConfigName=unique("missing-cfg"))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == cfg1


def test_plain_moto_update_endpoint_is_not_implemented(plain):
    sm = plain.client("sagemaker")
    _, cfg1, cfg2 = _model_and_configs(sm, capture=False)
    ep = unique("ep")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    with pytest.raises(ClientError) as err:
        sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


# --- DescribeEndpoint.DataCaptureConfig is a DataCaptureConfigSummary -------------------------------


def test_describe_endpoint_data_capture_summary(compat):
    sm = compat.client("sagemaker")
    _, cfg1, _ = _model_and_configs(sm)
    ep = unique("ep")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    summary = sm.describe_endpoint(EndpointName=ep)["DataCaptureConfig"]
    assert summary == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 50,
                       "DestinationS3Uri": "s3://capture/ep"}
    config = sm.describe_endpoint_config(EndpointConfigName=cfg1)["DataCaptureConfig"]
    assert config["InitialSamplingPercentage"] == 50
    assert config["CaptureContentTypeHeader"]["CsvContentTypes"] == ["text/csv"]
    assert [o["CaptureMode"] for o in config["CaptureOptions"]] == ["Input", "Output"]


def test_plain_moto_describe_endpoint_lacks_capture_status(plain):
    sm = plain.client("sagemaker")
    _, cfg1, _ = _model_and_configs(sm)
    ep = unique("ep")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    summary = sm.describe_endpoint(EndpointName=ep)["DataCaptureConfig"]
    assert "CaptureStatus" not in summary and "CurrentSamplingPercentage" not in summary


# --- StartPipelineExecution + ClientRequestToken ---------------------------------------------------


def _pipeline(sm) -> str:
    name = unique("pipe")
    sm.create_pipeline(PipelineName=name, RoleArn=ROLE,
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
    return name


def test_start_pipeline_execution_is_idempotent(compat):
    sm = compat.client("sagemaker")
    name = _pipeline(sm)
    token = "tok-" + "a" * 28
    first = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"]
    again = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"]
    other = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken="tok-" + "b" * 28)["PipelineExecutionArn"]
    assert first == again != other
    arns = [e["PipelineExecutionArn"] for e in sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]]
    assert sorted(arns) == sorted({first, other})
    # the same token on another pipeline is another execution
    name2 = _pipeline(sm)
    assert sm.start_pipeline_execution(PipelineName=name2, ClientRequestToken=token)["PipelineExecutionArn"] != first


def test_start_pipeline_execution_token_concurrent(compat):
    sm_clients = [compat.client("sagemaker") for _ in range(8)]
    name = _pipeline(sm_clients[0])
    token = "concurrent-" + "c" * 21
    arns: list[str] = []
    barrier = threading.Barrier(len(sm_clients))

    def go(client):
        barrier.wait()
        arns.append(client.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"])

    threads = [threading.Thread(target=go, args=(c,)) for c in sm_clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(arns) == len(sm_clients) and len(set(arns)) == 1
    listed = sm_clients[0].list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert len(listed) == 1


def test_plain_moto_ignores_client_request_token(plain):
    sm = plain.client("sagemaker")
    name = _pipeline(sm)
    token = "tok-" + "a" * 28
    first = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"]
    again = sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token)["PipelineExecutionArn"]
    assert first != again


# --- ListPipelineExecutions / DescribePipelineExecution --------------------------------------------


def test_list_pipeline_executions_order_pagination_status(compat):
    sm = compat.client("sagemaker")
    name = _pipeline(sm)
    started = []
    for i in range(5):
        started.append(sm.start_pipeline_execution(PipelineName=name, PipelineExecutionDisplayName=f"run-{i}")
                        ["PipelineExecutionArn"])
        time.sleep(0.01)
    listed = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in listed] == started[::-1]  # newest first (AWS default)
    assert all(e["PipelineExecutionStatus"] == "Succeeded" for e in listed)
    assert all("PipelineExecutionFailureReason" not in e for e in listed)
    asc = sm.list_pipeline_executions(PipelineName=name, SortOrder="Ascending")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in asc] == started
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sm.list_pipeline_executions(PipelineName=name, MaxResults=2, **kwargs)
        pages.append([e["PipelineExecutionArn"] for e in page["PipelineExecutionSummaries"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sum(pages, []) == started[::-1]
    described = sm.describe_pipeline_execution(PipelineExecutionArn=started[0])
    assert described["PipelineExecutionStatus"] == "Succeeded"
    assert "FailureReason" not in described
    assert described["PipelineExecutionDisplayName"] == "run-0"


def test_plain_moto_reports_none_failure_reason(plain):
    sm = plain.client("sagemaker")
    name = _pipeline(sm)
    sm.start_pipeline_execution(PipelineName=name)
    [summary] = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionFailureReason"] == "None"


# --- model packages ---------------------------------------------------------------------------------


def _package(sm, group: str, status: str, i: int = 0, **extra) -> str:
    return sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "img:1", "ModelDataUrl": f"s3://models/{group}/{i}.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelMetrics={"ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://b/{i}/statistics.json"},
            "Constraints": {"ContentType": "application/json", "S3Uri": f"s3://b/{i}/constraints.json"}}},
        DriftCheckBaselines={"ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://b/{i}/drift-statistics.json"},
            "Constraints": {"ContentType": "application/json", "S3Uri": f"s3://b/{i}/drift-constraints.json"}}},
        **extra,
    )["ModelPackageArn"]


def test_update_model_package_keeps_omitted_fields(compat):
    sm = compat.client("sagemaker")
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = _package(sm, group, "PendingManualApproval",
                   CustomerMetadataProperties={"ModelName": "churn", "owner": "ml", "stale": "1"})
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="ok")
    d = sm.describe_model_package(ModelPackageName=arn)
    assert d["ModelApprovalStatus"] == "Approved"
    assert d["CustomerMetadataProperties"] == {"ModelName": "churn", "owner": "ml", "stale": "1"}
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"owner": "mlops", "new": "x"},
                            CustomerMetadataPropertiesToRemove=["stale"])
    d = sm.describe_model_package(ModelPackageName=arn)
    assert d["CustomerMetadataProperties"] == {"ModelName": "churn", "owner": "mlops", "new": "x"}
    assert d["ModelApprovalStatus"] == "Approved"  # not wiped by an update that omits it
    assert d["ApprovalDescription"] == "ok"
    assert d["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"].endswith("drift-statistics.json")


def test_plain_moto_update_model_package_wipes_metadata(plain):
    sm = plain.client("sagemaker")
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = _package(sm, group, "PendingManualApproval", CustomerMetadataProperties={"ModelName": "churn"})
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    assert "CustomerMetadataProperties" not in sm.describe_model_package(ModelPackageName=arn)


def test_list_model_packages_sort_filter_paginate(compat):
    """What get-approved-model relies on: newest approved first, every page, >100 packages."""
    sm = compat.client("sagemaker")
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arns = []
    for i in range(105):
        status = "Approved" if i % 3 == 0 else ("Rejected" if i % 3 == 1 else "PendingManualApproval")
        arns.append((_package(sm, group, status, i), status))
    approved = [a for a, s in arns if s == "Approved"]
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                      SortBy="CreationTime", SortOrder="Descending", MaxResults=10, **kwargs)
        pages += 1
        seen += page["ModelPackageSummaryList"]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 4
    assert [p["ModelPackageArn"] for p in seen] == approved[::-1]
    assert all(p["ModelApprovalStatus"] == "Approved" and p["ModelPackageStatus"] == "Completed" for p in seen)
    assert seen[0]["ModelPackageVersion"] == 103
    everything = sm.list_model_packages(ModelPackageGroupName=group, MaxResults=100)
    assert len(everything["ModelPackageSummaryList"]) == 100 and everything.get("NextToken")
    ascending = everything["ModelPackageSummaryList"]
    assert ascending[0]["ModelPackageVersion"] == 1  # default order: oldest first (Ascending)
    d = sm.describe_model_package(ModelPackageName=approved[-1])
    assert d["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/102.tar.gz")
    assert d["ModelMetrics"]["ModelDataQuality"]["Constraints"]["S3Uri"].endswith("102/constraints.json")


# --- DescribeEndpointConfig without capture ------------------------------------------------------


def test_describe_endpoint_config_without_capture_omits_it(compat):
    sm = compat.client("sagemaker")
    _, _, cfg2 = _model_and_configs(sm)
    described = sm.describe_endpoint_config(EndpointConfigName=cfg2)
    assert "DataCaptureConfig" not in described
    assert described["ProductionVariants"][0]["VariantName"] == "Blue"
    ep = unique("ep")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg2)  # still works with such a config
    assert "DataCaptureConfig" not in sm.describe_endpoint(EndpointName=ep)


def test_plain_moto_describe_endpoint_config_has_empty_capture(plain):
    sm = plain.client("sagemaker")
    _, _, cfg2 = _model_and_configs(sm)
    assert sm.describe_endpoint_config(EndpointConfigName=cfg2)["DataCaptureConfig"] == {}


def test_status_control_sets_endpoint_and_pipeline_execution_status(compat):
    """The test control behind busy-endpoint and running-pipeline tests (the emulator completes
    updates and runs at once)."""
    import requests

    sm = compat.client("sagemaker")
    _, cfg1, _ = _model_and_configs(sm, capture=False)
    ep = unique("ctl")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    url = f"{compat.url}/driftloop/sagemaker/status"
    r = requests.post(url, json={"endpoint": ep, "status": "Updating"})
    assert r.status_code == 200, r.text
    assert sm.describe_endpoint(EndpointName=ep)["EndpointStatus"] == "Updating"
    pipeline = unique("ctl-pipeline")
    sm.create_pipeline(PipelineName=pipeline, RoleArn=ROLE,
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
    arn = sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]
    r = requests.post(url, json={"pipeline_execution": arn, "status": "Executing"})
    assert r.status_code == 200, r.text
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    assert requests.post(url, json={"endpoint": unique("nope"), "status": "x"}).status_code == 404
    assert requests.post(url, json={"endpoint": ep}).status_code == 400


def test_held_update_keeps_serving_the_current_config(compat):
    """An update in flight, as AWS shows it: Updating, EndpointConfigName still the serving config,
    the new one in PendingDeploymentSummary; completing it switches, failing it abandons it."""
    import requests

    sm = compat.client("sagemaker")
    _, cfg1, cfg2 = _model_and_configs(sm, capture=False)
    ep = unique("hold")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    url = f"{compat.url}/driftloop/sagemaker/status"
    assert requests.post(url, json={"endpoint": ep, "hold_updates": True}).status_code == 200
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    d = sm.describe_endpoint(EndpointName=ep)
    assert d["EndpointStatus"] == "Updating"
    assert d["EndpointConfigName"] == cfg1
    assert d["PendingDeploymentSummary"]["EndpointConfigName"] == cfg2
    assert d["PendingDeploymentSummary"]["StartTime"].year >= 2024
    assert requests.post(url, json={"endpoint": ep, "status": "InService"}).status_code == 200
    d = sm.describe_endpoint(EndpointName=ep)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", cfg2)
    assert "PendingDeploymentSummary" not in d
    assert d["ProductionVariants"][0]["VariantName"] == "Blue"
    # A failed update leaves the old config serving.
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    assert requests.post(url, json={"endpoint": ep, "status": "Failed", "failure_reason": "boom"}).status_code == 200
    d = sm.describe_endpoint(EndpointName=ep)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("Failed", cfg2)
    assert "PendingDeploymentSummary" not in d
    # Released: updates complete at once again.
    assert requests.post(url, json={"endpoint": ep, "hold_updates": False, "status": "InService"}).status_code == 200
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    assert sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == cfg1
    assert requests.post(url, json={"endpoint": ep, "hold_updates": "yes"}).status_code == 400


def test_plain_moto_never_shows_an_update_in_flight(plain):
    """Plain moto has no UpdateEndpoint and no PendingDeploymentSummary: an endpoint is never seen
    serving one config while moving to another."""
    sm = plain.client("sagemaker")
    _, cfg1, cfg2 = _model_and_configs(sm, capture=False)
    ep = unique("hold")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    with pytest.raises(Exception):
        sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    assert "PendingDeploymentSummary" not in sm.describe_endpoint(EndpointName=ep)


# --- failed and rolled-back updates (status control "next_update"), in-progress refusal ----------


def test_status_control_next_update_fails_or_rolls_back(compat):
    """AWS leaves an endpoint whose update failed, or whose blue/green deployment rolled back on
    its alarms, InService on the config it served before, with a FailureReason; the emulator
    completes every update at once unless told so."""
    import requests

    sm = compat.client("sagemaker")
    _, cfg1, cfg2 = _model_and_configs(sm, capture=False)
    ep = unique("fate")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    url = f"{compat.url}/driftloop/sagemaker/status"
    reason = 'Failed to download model data for container "container_1"'
    r = requests.post(url, json={"endpoint": ep, "next_update": "fail", "failure_reason": reason})
    assert r.status_code == 200, r.text
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    after = sm.describe_endpoint(EndpointName=ep)
    assert (after["EndpointStatus"], after["EndpointConfigName"], after["FailureReason"]) == ("InService", cfg1, reason)
    assert [v["VariantName"] for v in after["ProductionVariants"]] == ["AllTraffic"]
    # Rolled back: the deployment config is kept, the config is not switched.
    r = requests.post(url, json={"endpoint": ep, "next_update": "roll_back",
                                 "failure_reason": "Alarm demo-5xx went to ALARM; rolled back"})
    assert r.status_code == 200, r.text
    deployment = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 60}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "demo-5xx"}]}}
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2, DeploymentConfig=deployment)
    after = sm.describe_endpoint(EndpointName=ep)
    assert after["EndpointConfigName"] == cfg1
    assert "rolled back" in after["FailureReason"]
    assert after["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": "demo-5xx"}]
    # Only the next update: the one after lands and clears the reason.
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    after = sm.describe_endpoint(EndpointName=ep)
    assert after["EndpointConfigName"] == cfg2
    assert "FailureReason" not in after
    # A cancelled fate does nothing; bad bodies are refused.
    requests.post(url, json={"endpoint": ep, "next_update": "fail", "failure_reason": "x"})
    assert requests.post(url, json={"endpoint": ep, "next_update": None}).status_code == 200
    sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    assert sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == cfg1
    assert requests.post(url, json={"endpoint": ep, "next_update": "explode"}).status_code == 400
    assert requests.post(url, json={"endpoint": ep, "next_update": "fail"}).status_code == 400
    assert requests.post(url, json={"endpoint": unique("nope"), "next_update": "fail",
                                    "failure_reason": "x"}).status_code == 404


def test_update_of_an_in_progress_endpoint_is_refused(compat):
    import requests

    sm = compat.client("sagemaker")
    _, cfg1, cfg2 = _model_and_configs(sm, capture=False)
    ep = unique("busy")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    requests.post(f"{compat.url}/driftloop/sagemaker/status", json={"endpoint": ep, "status": "Updating"})
    with pytest.raises(ClientError) as err:
        sm.update_endpoint(EndpointName=ep, EndpointConfigName=cfg2)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in err.value.response["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName=ep)["EndpointConfigName"] == cfg1


def test_plain_moto_cannot_show_a_failed_update(plain):
    """Plain moto has no status control, and its UpdateEndpoint is not implemented (above), so a
    failed or rolled-back update cannot be shown without the layer."""
    import requests

    sm = plain.client("sagemaker")
    _, cfg1, _ = _model_and_configs(sm, capture=False)
    ep = unique("fate")
    sm.create_endpoint(EndpointName=ep, EndpointConfigName=cfg1)
    r = requests.post(f"{plain.url}/driftloop/sagemaker/status",
                      json={"endpoint": ep, "next_update": "fail", "failure_reason": "x"})
    assert r.status_code != 200
    assert "FailureReason" not in sm.describe_endpoint(EndpointName=ep)
