"""Opt-in AWS service events on the default bus (alarm state changes, model packages, pipelines),
and alarms starting in INSUFFICIENT_DATA."""

from __future__ import annotations

import contextlib
import json

import requests

from test_emulator_support import compat, plain, unique  # noqa: F401


@contextlib.contextmanager
def emitting(server):
    assert requests.put(f"{server.url}/driftloop/config", json={"emit_events": True}, timeout=10).json()["emit_events"]
    try:
        yield
    finally:
        requests.put(f"{server.url}/driftloop/config", json={"emit_events": False}, timeout=10)


def _queue_for(server, pattern: dict) -> tuple:
    ev, sqs = server.client("events"), server.client("sqs")
    url = sqs.create_queue(QueueName=unique("emit"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("emit-rule")
    ev.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    ev.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def _drain(sqs, url) -> list[dict]:
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_new_alarm_starts_insufficient_data_and_keeps_state_on_update(compat):
    cw = compat.client("cloudwatch")
    name = unique("alarm")
    kwargs = dict(AlarmName=name, Namespace="Drift", MetricName="psi", Statistic="Maximum", Period=60,
                  EvaluationPeriods=1, Threshold=0.2, ComparisonOperator="GreaterThanThreshold")
    cw.put_metric_alarm(**kwargs)
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="drift")
    cw.put_metric_alarm(**{**kwargs, "Threshold": 0.3})
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM" and alarm["Threshold"] == 0.3


def test_plain_moto_new_alarm_starts_ok(plain):
    cw = plain.client("cloudwatch")
    name = unique("alarm")
    cw.put_metric_alarm(AlarmName=name, Namespace="Drift", MetricName="psi", Statistic="Maximum", Period=60,
                        EvaluationPeriods=1, Threshold=0.2, ComparisonOperator="GreaterThanThreshold")
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "OK"


def test_alarm_state_change_event(compat):
    cw = compat.client("cloudwatch")
    name = unique("drift-alarm")
    sqs, url = _queue_for(compat, {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                                   "detail": {"alarmName": [name], "state": {"value": ["ALARM"]}}})
    cw.put_metric_alarm(
        AlarmName=name, AlarmDescription="drift on churn", EvaluationPeriods=1, Threshold=0.2,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[{"Id": "e1", "Expression": "MAX([m1, m2])", "Label": "max_drift", "ReturnData": True},
                 {"Id": "m1", "ReturnData": False, "MetricStat": {"Metric": {
                     "Namespace": "aws/sagemaker/Endpoints/data-metrics", "MetricName": "feature_baseline_drift_a",
                     "Dimensions": [{"Name": "Endpoint", "Value": "churn"}]}, "Period": 3600, "Stat": "Maximum"}},
                 {"Id": "m2", "ReturnData": False, "MetricStat": {"Metric": {
                     "Namespace": "aws/sagemaker/Endpoints/data-metrics", "MetricName": "feature_baseline_drift_b",
                     "Dimensions": [{"Name": "Endpoint", "Value": "churn"}]}, "Period": 3600, "Stat": "Maximum"}}])
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="before emission is on")
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="back")
    assert _drain(sqs, url) == []  # off by default
    with emitting(compat):
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed",
                           StateReasonData='{"version":"1.0"}')
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="same state: no event")
    [event] = _drain(sqs, url)
    assert event["source"] == "aws.cloudwatch" and event["account"] == "123456789012"
    assert event["resources"] == [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    detail = event["detail"]
    assert detail["alarmName"] == name
    assert detail["state"]["value"] == "ALARM" and detail["state"]["reason"] == "Threshold Crossed"
    assert detail["state"]["reasonData"] == '{"version":"1.0"}'
    assert detail["state"]["timestamp"].endswith("+0000")
    assert detail["previousState"]["value"] == "OK"
    assert detail["configuration"]["description"] == "drift on churn"
    metrics = {m["id"]: m for m in detail["configuration"]["metrics"]}
    assert metrics["e1"]["expression"] == "MAX([m1, m2])" and metrics["e1"]["returnData"] is True
    assert metrics["m1"]["metricStat"]["metric"]["dimensions"] == {"Endpoint": "churn"}
    assert metrics["m1"]["metricStat"]["period"] == 3600 and metrics["m1"]["returnData"] is False


def test_model_package_and_pipeline_events(compat):
    sm = compat.client("sagemaker")
    group, pipeline = unique("grp"), unique("pipe")
    sqs, url = _queue_for(compat, {"source": ["aws.sagemaker"], "$or": [
        {"detail": {"ModelPackageGroupName": [group]}}, {"resources": [{"prefix": f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{pipeline}"}]}]})
    sm.create_model_package_group(ModelPackageGroupName=group)
    sm.create_pipeline(PipelineName=pipeline, RoleArn="arn:aws:iam::123456789012:role/r",
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
    with emitting(compat):
        arn = sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": "img:1"}], "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        token = "emit-" + "t" * 27
        execution = sm.start_pipeline_execution(PipelineName=pipeline, ClientRequestToken=token)["PipelineExecutionArn"]
        sm.start_pipeline_execution(PipelineName=pipeline, ClientRequestToken=token)  # replay: no new events
    events = _drain(sqs, url)
    packages = [e for e in events if e["detail-type"] == "SageMaker Model Package State Change"]
    assert [e["detail"]["ModelApprovalStatus"] for e in packages] == ["PendingManualApproval", "Approved"]
    assert all(e["resources"] == [arn] and e["detail"]["ModelPackageArn"] == arn for e in packages)
    assert packages[-1]["detail"]["ModelPackageVersion"] == 1
    runs = [e for e in events if e["detail-type"] == "SageMaker Model Building Pipeline Execution Status Change"]
    assert [e["detail"]["currentPipelineExecutionStatus"] for e in runs] == ["Executing", "Succeeded"]
    assert runs[1]["detail"]["previousPipelineExecutionStatus"] == "Executing"
    assert all(e["detail"]["pipelineExecutionArn"] == execution for e in runs)


def test_config_api_and_reset(compat):
    url = f"{compat.url}/driftloop/config"
    assert requests.get(url, timeout=10).json() == {"emit_events": False}
    assert requests.put(url, data="[1]", timeout=10).status_code == 400
    assert requests.put(url, json={"emit_events": True}, timeout=10).json() == {"emit_events": True}
    compat.reset()
    assert requests.get(url, timeout=10).json() == {"emit_events": False}
