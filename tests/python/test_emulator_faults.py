"""Fault injection: the next N calls of an operation fail with throttling or a 5xx, in the service's protocol."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

from test_emulator_support import compat, decode_raw, plain, unique  # noqa: F401


def _fault(server, **spec) -> dict:
    resp = requests.post(f"{server.url}/driftloop/faults", json=spec, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _faults(server) -> list[dict]:
    return requests.get(f"{server.url}/driftloop/faults", timeout=10).json()["faults"]


def _pipeline(sm) -> str:
    name = unique("pipe")
    sm.create_pipeline(PipelineName=name, RoleArn="arn:aws:iam::123456789012:role/r",
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
    return name


def test_throttle_json_operation_then_recover(compat):
    sm = compat.client("sagemaker")  # retries disabled
    name = _pipeline(sm)
    fault = _fault(compat, operation="StartPipelineExecution", count=2, kind="throttle", match=name)
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            sm.start_pipeline_execution(PipelineName=name)
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    [listed] = [f for f in _faults(compat) if f["id"] == fault["id"]]
    assert listed["remaining"] == 0 and listed["hits"] == 2


def test_sdk_retries_through_a_throttle(compat):
    sm = compat.client("sagemaker", retries=3)
    name = _pipeline(sm)
    _fault(compat, operation="StartPipelineExecution", count=2, kind="throttle", match=name)
    out = sm.start_pipeline_execution(PipelineName=name)
    assert out["ResponseMetadata"]["RetryAttempts"] == 2


def test_500_fault(compat):
    sm = compat.client("sagemaker")
    group = unique("grp")
    _fault(compat, operation="CreateModelPackageGroup", count=1, kind="500", match=group)
    with pytest.raises(ClientError) as err:
        sm.create_model_package_group(ModelPackageGroupName=group)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert err.value.response["Error"]["Code"] == "InternalFailure"
    sm.create_model_package_group(ModelPackageGroupName=group)


def test_match_scopes_the_fault(compat):
    sm = compat.client("sagemaker")
    mine, other = _pipeline(sm), _pipeline(sm)
    _fault(compat, operation="StartPipelineExecution", count=1, kind="throttle", match=mine)
    assert sm.start_pipeline_execution(PipelineName=other)["PipelineExecutionArn"]  # not matched
    with pytest.raises(ClientError):
        sm.start_pipeline_execution(PipelineName=mine)


def test_throttle_cbor_cloudwatch(compat):
    marker = unique("Drift/Fault")
    _fault(compat, operation="PutMetricData", count=1, kind="throttle", match=marker)
    resp = compat.cbor("PutMetricData", {"Namespace": marker, "MetricData": [{"MetricName": "m", "Value": 1.0}]})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/cbor"
    assert resp.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert resp.headers["x-amzn-query-error"] == "Throttling;Sender"
    assert decode_raw(resp.content)["__type"].endswith("#ThrottlingException")
    ok = compat.cbor("PutMetricData", {"Namespace": marker, "MetricData": [{"MetricName": "m", "Value": 1.0}]})
    assert ok.status_code == 200


def test_throttle_boto3_cbor_client_retries(compat):
    cw = compat.cbor_boto3_cloudwatch(retries=3)
    prefix = unique("dash")
    _fault(compat, operation="ListDashboards", count=2, kind="throttle", match=prefix)
    out = cw.list_dashboards(DashboardNamePrefix=prefix)
    assert out["ResponseMetadata"]["RetryAttempts"] == 2


def test_throttle_eventbridge_and_query_protocol(compat):
    ev = compat.client("events")
    rule = unique("rule")
    _fault(compat, operation="PutRule", count=1, kind="throttle", match=rule)
    with pytest.raises(ClientError) as err:
        ev.put_rule(Name=rule, EventPattern='{"source": ["x"]}')
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    ev.put_rule(Name=rule, EventPattern='{"source": ["x"]}')
    # awsQuery (form-encoded Action=...), e.g. CloudWatch's legacy protocol
    marker = unique("q")
    _fault(compat, operation="ListMetrics", count=1, kind="throttle", match=marker)
    resp = requests.post(compat.url, data={"Action": "ListMetrics", "Version": "2010-08-01", "Namespace": marker},
                         timeout=10)
    assert resp.status_code == 400 and b"<Code>Throttling</Code>" in resp.content


def test_s3_faults(compat):
    s3 = compat.client("s3")
    bucket = unique("bkt")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model/a.json", Body=b"{}")
    _fault(compat, operation="GetObject", count=1, kind="throttle", match=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="model/a.json")
    assert err.value.response["Error"]["Code"] == "SlowDown"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.get_object(Bucket=bucket, Key="model/a.json")["Body"].read() == b"{}"
    _fault(compat, operation="ListObjectsV2", count=1, kind="500", match=bucket)
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "InternalError"
    assert s3.list_objects_v2(Bucket=bucket, Prefix="model/")["KeyCount"] == 1


def test_admin_api_validation_and_clear(compat):
    bad = requests.post(f"{compat.url}/driftloop/faults", json={"operation": "X", "kind": "nope"}, timeout=10)
    assert bad.status_code == 400
    bad = requests.post(f"{compat.url}/driftloop/faults", json={"count": 1}, timeout=10)
    assert bad.status_code == 400
    marker = unique("never-matches")
    fault = _fault(compat, operation="DescribeEndpoint", count=-1, kind="503", match=marker)
    assert any(f["id"] == fault["id"] for f in _faults(compat))
    assert requests.delete(f"{compat.url}/driftloop/faults/{fault['id']}", timeout=10).json()["cleared"] == 1
    assert not any(f["id"] == fault["id"] for f in _faults(compat))


def test_reset_clears_faults_and_state(compat):
    # Runs against the shared server: only this test's own names are checked afterwards.
    marker = unique("reset-marker")
    _fault(compat, operation="DescribeEndpoint", count=5, kind="throttle", match=marker)
    sm = compat.client("sagemaker")
    group = unique("grp-reset")
    sm.create_model_package_group(ModelPackageGroupName=group)
    compat.reset()
    assert not any(f["match"] == marker for f in _faults(compat))
    with pytest.raises(ClientError):
        sm.describe_model_package_group(ModelPackageGroupName=group)


def test_plain_moto_has_no_fault_injection(plain):
    resp = requests.post(f"{plain.url}/driftloop/faults", json={"operation": "ListMetrics", "count": 1}, timeout=10)
    assert resp.status_code in (404, 500)  # moto has no such route (it routes it to a backend and fails)
    got = requests.get(f"{plain.url}/driftloop/faults", timeout=10)
    try:
        payload = got.json()
    except ValueError:
        payload = None
    assert not (isinstance(payload, dict) and "faults" in payload)


def _status(fn) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        fn()
    return err.value.response["ResponseMetadata"]["HTTPStatusCode"], err.value.response["Error"]["Code"]


def test_403_for_missing_keys_like_aws_without_list_bucket(compat):
    """With s3:ListBucket scoped by prefix, AWS answers 403 AccessDenied for a key that does not
    exist (it may not tell you whether it exists); existing keys are served."""
    s3 = compat.client("s3")
    bucket = unique("deny")
    other = unique("open")
    for b in (bucket, other):
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="reports/a.json", Body=b"{}")
    fault = _fault(compat, operation="GetObject", count=-1, kind="403-missing", match=bucket)
    _fault(compat, operation="HeadObject", count=-1, kind="403-missing", match=bucket)
    assert _status(lambda: s3.get_object(Bucket=bucket, Key="reports/none.json")) == (403, "AccessDenied")
    assert _status(lambda: s3.head_object(Bucket=bucket, Key="reports/none.json"))[0] == 403
    # Present keys are untouched, and so is every other bucket.
    assert s3.get_object(Bucket=bucket, Key="reports/a.json")["Body"].read() == b"{}"
    assert s3.head_object(Bucket=bucket, Key="reports/a.json")["ContentLength"] == 2
    assert _status(lambda: s3.get_object(Bucket=other, Key="reports/none.json")) == (404, "NoSuchKey")
    [listed] = [f for f in _faults(compat) if f["id"] == fault["id"]]
    assert listed["hits"] == 1 and listed["remaining"] == -1
    requests.delete(f"{compat.url}/driftloop/faults/{fault['id']}", timeout=10)
    assert _status(lambda: s3.get_object(Bucket=bucket, Key="reports/none.json")) == (404, "NoSuchKey")
    bad = requests.post(f"{compat.url}/driftloop/faults", json={"operation": "PutObject", "kind": "403-missing"},
                        timeout=10)
    assert bad.status_code == 400 and "GetObject" in bad.json()["error"]


def test_plain_moto_answers_404_for_missing_keys(plain):
    """The gap: moto has no notion of a caller without s3:ListBucket, so it always says 404."""
    s3 = plain.client("s3")
    bucket = unique("deny")
    s3.create_bucket(Bucket=bucket)
    assert _status(lambda: s3.get_object(Bucket=bucket, Key="reports/none.json")) == (404, "NoSuchKey")
    assert _status(lambda: s3.head_object(Bucket=bucket, Key="reports/none.json"))[0] == 404
