"""EventBridge: TestEventPattern, and PutRule/PutTargets/PutEvents delivering to SQS."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from test_emulator_support import compat, plain, unique  # noqa: F401

EVENT = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "account": "123456789012",
    "source": "aws.sagemaker", "time": "2026-11-21T10:00:00Z", "region": "us-east-1", "resources": [],
    "detail-type": "SageMaker Model Package State Change",
    "detail": {"ModelPackageGroupName": "churn", "ModelApprovalStatus": "Approved", "ModelPackageVersion": 3},
}
PATTERN = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
           "detail": {"ModelApprovalStatus": ["Approved"], "ModelPackageGroupName": [{"prefix": "chu"}]}}


def test_test_event_pattern_matches(compat):
    ev = compat.client("events")
    assert ev.test_event_pattern(EventPattern=json.dumps(PATTERN), Event=json.dumps(EVENT))["Result"] is True
    rejected = dict(EVENT, detail={**EVENT["detail"], "ModelApprovalStatus": "Rejected"})
    assert ev.test_event_pattern(EventPattern=json.dumps(PATTERN), Event=json.dumps(rejected))["Result"] is False
    numeric = {"detail": {"ModelPackageVersion": [{"numeric": [">", 2]}]}}
    assert ev.test_event_pattern(EventPattern=json.dumps(numeric), Event=json.dumps(EVENT))["Result"] is True


def test_test_event_pattern_errors(compat):
    ev = compat.client("events")
    with pytest.raises(ClientError) as err:
        ev.test_event_pattern(EventPattern='{"source": "not-an-array"}', Event=json.dumps(EVENT))
    assert err.value.response["Error"]["Code"] == "InvalidEventPatternException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as err:
        ev.test_event_pattern(EventPattern="{not json", Event=json.dumps(EVENT))
    assert err.value.response["Error"]["Code"] == "InvalidEventPatternException"
    with pytest.raises(ClientError) as err:
        ev.test_event_pattern(EventPattern=json.dumps(PATTERN), Event=json.dumps({"source": "x"}))
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_plain_moto_test_event_pattern_has_no_result(plain):
    ev = plain.client("events")
    out = ev.test_event_pattern(EventPattern=json.dumps(PATTERN), Event=json.dumps(EVENT))
    assert "Result" not in out


def _rule_to_queue(server):
    ev, sqs = server.client("events"), server.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("rule")
    ev.put_rule(Name=rule, EventPattern=json.dumps({**PATTERN, "detail": {**PATTERN["detail"],
                                                                          "ModelPackageGroupName": [rule]}}))
    ev.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    return ev, sqs, queue_url, rule


def _receive(sqs, queue_url):
    return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])


def test_put_events_delivers_to_sqs(compat):
    ev, sqs, queue_url, rule = _rule_to_queue(compat)
    detail = {"ModelPackageGroupName": rule, "ModelApprovalStatus": "Approved", "ModelPackageVersion": 7}
    out = ev.put_events(Entries=[
        {"Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change", "Detail": json.dumps(detail),
         "Resources": ["arn:aws:sagemaker:us-east-1:123456789012:model-package/x/7"]},
        {"Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change",
         "Detail": json.dumps({**detail, "ModelApprovalStatus": "Rejected"})},
    ])
    assert out["FailedEntryCount"] == 0 and len(out["Entries"]) == 2
    [message] = _receive(sqs, queue_url)
    event = json.loads(message["Body"])
    assert event["detail"] == detail
    assert event["detail-type"] == "SageMaker Model Package State Change"
    assert event["source"] == "aws.sagemaker" and event["region"] == "us-east-1"
    assert event["account"] == "123456789012"  # moto's default target input drops it
    assert event["id"] == out["Entries"][0]["EventId"]
    assert event["resources"] == ["arn:aws:sagemaker:us-east-1:123456789012:model-package/x/7"]
    assert event["time"].endswith("Z")
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert _receive(sqs, queue_url) == []


def test_plain_moto_delivered_event_lacks_account(plain):
    ev, sqs, queue_url, rule = _rule_to_queue(plain)
    ev.put_events(Entries=[{"Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change",
                            "Detail": json.dumps({"ModelPackageGroupName": rule, "ModelApprovalStatus": "Approved"})}])
    [message] = _receive(sqs, queue_url)
    assert "account" not in json.loads(message["Body"])
