"""CloudWatch over Smithy RPC v2 CBOR (what aws-sdk-cloudwatch >= 1.100 speaks).

Raw requests are built exactly as the Rust SDK sends them (path, headers, CBOR body, SigV4 with the
``monitoring`` scope); responses are checked on the wire (tag-1 timestamps, float doubles, no
nulls, headers). A boto3 client forced onto rpc-v2-cbor covers the same operations end to end.
"""

from __future__ import annotations

import datetime as dt
import json

import cbor2
import pytest
from botocore.exceptions import ClientError

from test_emulator_support import compat, decode_raw, no_nulls, now_utc, plain, tag1, unique  # noqa: F401


def _ok(resp) -> dict:
    assert resp.status_code == 200, (resp.status_code, resp.content[:500])
    assert resp.headers["Content-Type"] == "application/cbor"
    assert resp.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert resp.headers.get("x-amzn-RequestId")
    if not resp.content:
        return {}
    body = decode_raw(resp.content)
    assert isinstance(body, dict)
    no_nulls(body)
    return body


def _put_sample_data(server, ns: str, ts: dt.datetime) -> None:
    body = _ok(server.cbor("PutMetricData", {
        "Namespace": ns,
        "MetricData": [
            {"MetricName": "psi", "Dimensions": [{"Name": "EndpointName", "Value": "ep-1"}],
             "Timestamp": tag1(ts), "Value": 0.25, "Unit": "None", "StorageResolution": 60},
            {"MetricName": "psi", "Dimensions": [{"Name": "EndpointName", "Value": "ep-1"}],
             "Timestamp": tag1(ts), "Value": 0.75, "Unit": "None", "StorageResolution": 60},
            {"MetricName": "latency", "Timestamp": tag1(ts), "Unit": "Milliseconds",
             "StatisticValues": {"SampleCount": 4.0, "Sum": 10.0, "Minimum": 1.0, "Maximum": 4.0}},
            {"MetricName": "hist", "Timestamp": tag1(ts), "Values": [1.5, 2.5], "Counts": [1.0, 3.0]},
        ],
    }))
    assert body == {}  # PutMetricData has no output: empty body


# --- the gap: plain moto does not serve rpc-v2-cbor --------------------------------------------


def test_plain_moto_answers_404_to_cbor(plain):
    resp = plain.cbor("ListMetrics", {})
    assert resp.status_code == 404
    assert resp.headers.get("smithy-protocol") != "rpc-v2-cbor"


def test_plain_moto_rejects_boto3_cbor_client(plain):
    from botocore.parsers import ResponseParserError

    # moto's 404 page is HTML, which botocore's CBOR parser cannot even read.
    with pytest.raises((ClientError, ResponseParserError)):
        plain.cbor_boto3_cloudwatch().list_metrics()


# --- with the compatibility layer ---------------------------------------------------------------


def test_cbor_put_and_get_metric_data(compat):
    ns = unique("Drift/Cbor")
    ts = now_utc() - dt.timedelta(minutes=3)
    _put_sample_data(compat, ns, ts)
    body = _ok(compat.cbor("GetMetricData", {
        "MetricDataQueries": [
            {"Id": "psi", "Label": "PSI", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": ns, "MetricName": "psi",
                           "Dimensions": [{"Name": "EndpointName", "Value": "ep-1"}]},
                "Period": 60, "Stat": "Average"}},
            {"Id": "lat", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "latency"},
                                         "Period": 60, "Stat": "Sum"}},
        ],
        "StartTime": tag1(ts - dt.timedelta(minutes=5)),
        "EndTime": tag1(ts + dt.timedelta(minutes=5)),
        "ScanBy": "TimestampDescending",
    }))
    results = {r["Id"]: r for r in body["MetricDataResults"]}
    psi = results["psi"]
    assert psi["Label"] == "PSI"
    assert psi["StatusCode"] == "Complete"
    assert psi["Values"] == [0.5]
    assert all(isinstance(v, float) for v in psi["Values"])  # a double must be a CBOR float
    assert len(psi["Timestamps"]) == 1
    stamp = psi["Timestamps"][0]
    assert isinstance(stamp, cbor2.CBORTag) and stamp.tag == 1 and isinstance(stamp.value, float)
    assert abs(stamp.value - ts.timestamp()) < 61
    assert stamp.value % 60 == 0  # StartTime rounded down to the minute, as CloudWatch does
    assert results["lat"]["Values"] == [10.0]


def test_cbor_gzip_compressed_put_metric_data(compat):
    """The Rust SDK gzips PutMetricData bodies over 10 KiB (Content-Encoding: gzip)."""
    ns = unique("Drift/Gzip")
    ts = now_utc() - dt.timedelta(minutes=2)
    data = [{"MetricName": "m", "Timestamp": tag1(ts), "Value": float(i), "Unit": "Count",
             "Dimensions": [{"Name": "Feature", "Value": f"feature-{i:04d}-" + "x" * 40}]} for i in range(200)]
    payload = {"Namespace": ns, "MetricData": data}
    assert len(cbor2.dumps(payload)) > 10240
    _ok(compat.cbor("PutMetricData", payload, gzip_body=True))
    body = _ok(compat.cbor("ListMetrics", {"Namespace": ns}))
    assert len(body["Metrics"]) == 200


def test_cbor_get_metric_statistics_and_list_metrics(compat):
    ns = unique("Drift/Stats")
    ts = now_utc() - dt.timedelta(minutes=3)
    _put_sample_data(compat, ns, ts)
    body = _ok(compat.cbor("GetMetricStatistics", {
        "Namespace": ns, "MetricName": "latency",
        "StartTime": tag1(ts - dt.timedelta(minutes=5)), "EndTime": tag1(ts + dt.timedelta(minutes=5)),
        "Period": 60, "Statistics": ["Average", "Sum", "SampleCount", "Maximum", "Minimum"],
    }))
    assert body["Label"] == "latency"
    [point] = body["Datapoints"]
    assert point["Sum"] == 10.0 and point["SampleCount"] == 4.0 and point["Average"] == 2.5
    assert point["Maximum"] == 4.0 and point["Minimum"] == 1.0 and point["Unit"] == "Milliseconds"
    assert point["Timestamp"].tag == 1 and point["Timestamp"].value % 60 == 0
    metrics = _ok(compat.cbor("ListMetrics", {"Namespace": ns}))["Metrics"]
    names = sorted(m["MetricName"] for m in metrics)
    assert names == ["hist", "latency", "psi"]  # one entry per metric (moto repeats Values/Counts ones)
    psi = next(m for m in metrics if m["MetricName"] == "psi")
    assert psi["Dimensions"] == [{"Name": "EndpointName", "Value": "ep-1"}]
    filtered = _ok(compat.cbor("ListMetrics", {"Namespace": ns, "MetricName": "psi",
                                               "Dimensions": [{"Name": "EndpointName", "Value": "ep-1"}]}))
    assert [m["MetricName"] for m in filtered["Metrics"]] == ["psi"]


def test_cbor_metric_math_expression(compat):
    ns = unique("Drift/Math")
    ts = now_utc() - dt.timedelta(minutes=3)
    _put_sample_data(compat, ns, ts)
    body = _ok(compat.cbor("GetMetricData", {
        "MetricDataQueries": [
            {"Id": "m1", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": ns, "MetricName": "psi",
                           "Dimensions": [{"Name": "EndpointName", "Value": "ep-1"}]},
                "Period": 60, "Stat": "Maximum"}},
            {"Id": "pct", "Expression": "m1 * 100", "Label": "percent"},
        ],
        "StartTime": tag1(ts - dt.timedelta(minutes=5)), "EndTime": tag1(ts + dt.timedelta(minutes=5)),
    }))
    results = {r["Id"]: r for r in body["MetricDataResults"]}
    assert "m1" not in results  # ReturnData false
    assert results["pct"]["Label"] == "percent"
    assert results["pct"]["Values"] == [75.0]
    assert results["pct"]["Timestamps"][0].tag == 1


def test_cbor_alarms_lifecycle(compat):
    name, math_name = unique("drift-psi"), unique("drift-math")
    _ok(compat.cbor("PutMetricAlarm", {
        "AlarmName": name, "Namespace": "Drift", "MetricName": "psi",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep-1"}], "Statistic": "Average", "Period": 60,
        "EvaluationPeriods": 2, "DatapointsToAlarm": 1, "Threshold": 0.2,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:drift"], "ActionsEnabled": True,
    }))
    _ok(compat.cbor("PutMetricAlarm", {
        "AlarmName": math_name, "EvaluationPeriods": 1, "Threshold": 20.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing",
        "Metrics": [
            {"Id": "m1", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "Drift", "MetricName": "psi"}, "Period": 60, "Stat": "Maximum"}},
            {"Id": "e1", "Expression": "m1 * 100", "Label": "psi percent", "ReturnData": True},
        ],
    }))
    _ok(compat.cbor("SetAlarmState", {"AlarmName": name, "StateValue": "ALARM", "StateReason": "test"}))
    body = _ok(compat.cbor("DescribeAlarms", {"AlarmNames": [name, math_name]}))
    alarms = {a["AlarmName"]: a for a in body["MetricAlarms"]}
    simple, math = alarms[name], alarms[math_name]
    assert simple["StateValue"] == "ALARM" and simple["StateReason"] == "test"
    assert simple["Threshold"] == 0.2 and isinstance(simple["Threshold"], float)
    assert simple["ComparisonOperator"] == "GreaterThanThreshold"
    assert simple["TreatMissingData"] == "notBreaching"
    assert simple["EvaluationPeriods"] == 2 and isinstance(simple["EvaluationPeriods"], int)
    assert simple["DatapointsToAlarm"] == 1 and simple["Period"] == 60
    assert simple["ActionsEnabled"] is True
    assert simple["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:drift"]
    assert simple["StateUpdatedTimestamp"].tag == 1
    assert simple["AlarmArn"].endswith(f":alarm:{name}")
    assert math["Threshold"] == 20.0 and isinstance(math["Threshold"], float)
    metrics = {m["Id"]: m for m in math["Metrics"]}
    assert metrics["e1"]["Expression"] == "m1 * 100" and metrics["e1"]["ReturnData"] is True
    assert metrics["m1"]["MetricStat"]["Metric"]["MetricName"] == "psi"
    assert metrics["m1"]["MetricStat"]["Stat"] == "Maximum" and metrics["m1"]["ReturnData"] is False

    by_state = _ok(compat.cbor("DescribeAlarms", {"StateValue": "ALARM", "AlarmNamePrefix": name}))
    assert [a["AlarmName"] for a in by_state["MetricAlarms"]] == [name]
    assert _ok(compat.cbor("DeleteAlarms", {"AlarmNames": [name, math_name]})) == {}
    assert _ok(compat.cbor("DescribeAlarms", {"AlarmNames": [name, math_name]})).get("MetricAlarms", []) == []


def test_cbor_dashboards(compat):
    name = unique("drift-dash")
    dash = json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 3,
                                    "properties": {"markdown": "drift"}}]})
    body = _ok(compat.cbor("PutDashboard", {"DashboardName": name, "DashboardBody": dash}))
    assert body.get("DashboardValidationMessages", []) == []
    got = _ok(compat.cbor("GetDashboard", {"DashboardName": name}))
    assert got["DashboardName"] == name and json.loads(got["DashboardBody"]) == json.loads(dash)
    assert got["DashboardArn"].endswith(f"dashboard/{name}")
    listed = _ok(compat.cbor("ListDashboards", {"DashboardNamePrefix": name}))
    [entry] = listed["DashboardEntries"]
    assert entry["DashboardName"] == name and entry["LastModified"].tag == 1
    assert isinstance(entry["Size"], int)


def test_cbor_error_not_found(compat):
    resp = compat.cbor("GetDashboard", {"DashboardName": unique("missing")})
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/cbor"
    assert resp.headers["smithy-protocol"] == "rpc-v2-cbor"
    # awsQueryCompatible: the Rust SDK takes the error code from this header.
    assert resp.headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    body = decode_raw(resp.content)
    assert body["__type"] == "com.amazonaws.cloudwatch#DashboardNotFoundError"
    assert "does not exist" in body["message"]


def test_cbor_error_invalid_parameter(compat):
    ts = now_utc()
    resp = compat.cbor("GetMetricData", {
        "MetricDataQueries": [{"Id": "a", "MetricStat": {"Metric": {"Namespace": "X", "MetricName": "y"},
                                                         "Period": 60, "Stat": "Average"}}],
        "StartTime": tag1(ts), "EndTime": tag1(ts - dt.timedelta(hours=1)),
    })
    assert resp.status_code == 400
    body = decode_raw(resp.content)
    assert body["__type"].startswith("com.amazonaws.cloudwatch#")
    assert body["message"]
    assert resp.headers["x-amzn-query-error"].endswith(";Sender")


def test_cbor_unknown_operation_and_bad_body(compat):
    resp = compat.cbor("NoSuchOperation", {})
    assert resp.status_code == 404
    assert decode_raw(resp.content)["__type"].endswith("#UnknownOperationException")
    bad = compat.cbor("ListMetrics", None)
    assert bad.status_code == 200  # an empty body is an empty input structure
    import requests

    garbage = requests.post(f"{compat.url}/service/GraniteServiceVersion20100801/operation/ListMetrics",
                            data=b"\xff\xff", headers={"Content-Type": "application/cbor",
                                                       "smithy-protocol": "rpc-v2-cbor"}, timeout=10)
    assert garbage.status_code == 400
    assert decode_raw(garbage.content)["__type"].endswith("#SerializationException")


def test_cbor_unsigned_request_is_routed(compat):
    assert _ok(compat.cbor("ListDashboards", {}, signed=False)) is not None


def test_boto3_cbor_client_end_to_end(compat):
    cw = compat.cbor_boto3_cloudwatch()
    ns = unique("Drift/Boto")
    ts = now_utc() - dt.timedelta(minutes=2)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "psi", "Timestamp": ts, "Value": 0.4, "Unit": "None"},
        {"MetricName": "psi", "Timestamp": ts, "Value": 0.6, "Unit": "None"},
    ])
    out = cw.get_metric_data(
        MetricDataQueries=[{"Id": "a", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "psi"},
                                                       "Period": 60, "Stat": "Average"}}],
        StartTime=ts - dt.timedelta(minutes=5), EndTime=ts + dt.timedelta(minutes=5))
    assert out["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/cbor"
    [res] = out["MetricDataResults"]
    assert res["Values"] == [0.5]
    assert isinstance(res["Timestamps"][0], dt.datetime)
    assert abs(res["Timestamps"][0].timestamp() - ts.timestamp()) < 61
    name = unique("boto-alarm")
    cw.put_metric_alarm(AlarmName=name, Namespace=ns, MetricName="psi", Statistic="Average", Period=60,
                        EvaluationPeriods=1, Threshold=0.3, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="x")
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM" and alarm["Threshold"] == 0.3
    with pytest.raises(ClientError) as err:
        cw.get_dashboard(DashboardName=unique("nope"))
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_json_protocol_still_served(compat):
    """boto3's default CloudWatch protocol (awsJson1_0) passes straight through to moto."""
    cw = compat.client("cloudwatch")
    assert cw.meta.service_model.resolved_protocol == "json"
    assert "DashboardEntries" in cw.list_dashboards()


def test_cbor_indefinite_maps_and_integer_timestamps(compat):
    """aws-smithy-cbor writes structures as indefinite-length maps; tag 1 may carry an integer."""
    import requests

    ns = unique("Drift/Indef")
    ts = int((now_utc() - dt.timedelta(minutes=2)).timestamp())

    def indefinite(items: dict) -> bytes:
        return b"\xbf" + b"".join(cbor2.dumps(k) + (v if isinstance(v, bytes) else cbor2.dumps(v))
                                  for k, v in items.items()) + b"\xff"

    datum = indefinite({"MetricName": "m", "Timestamp": cbor2.dumps(cbor2.CBORTag(1, ts)), "Value": 2.0})
    body = indefinite({"Namespace": ns, "MetricData": b"\x9f" + datum + b"\xff"})
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor", "Accept": "application/cbor"}
    url = f"{compat.url}/service/GraniteServiceVersion20100801/operation/PutMetricData"
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 200
    out = _ok(compat.cbor("GetMetricStatistics", {
        "Namespace": ns, "MetricName": "m", "StartTime": cbor2.CBORTag(1, ts - 300), "EndTime": cbor2.CBORTag(1, ts + 300),
        "Period": 60, "Statistics": ["Sum"]}))
    assert [p["Sum"] for p in out["Datapoints"]] == [2.0]


def _unaligned_start_query(server):
    cw = server.client("cloudwatch")  # awsJson: plain moto serves it
    ns = unique("Drift/Align")
    ts = now_utc().replace(second=30) - dt.timedelta(minutes=3)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "m", "Timestamp": ts, "Value": 1.0}])
    start = ts.replace(second=17) - dt.timedelta(minutes=2)
    out = cw.get_metric_data(
        MetricDataQueries=[{"Id": "a", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "m"},
                                                       "Period": 60, "Stat": "Sum"}}],
        StartTime=start, EndTime=start + dt.timedelta(minutes=10))
    return out["MetricDataResults"][0]["Timestamps"]


def test_metric_timestamps_are_period_aligned(compat):
    [stamp] = _unaligned_start_query(compat)
    assert stamp.second == 0


def test_plain_moto_buckets_from_raw_start_time(plain):
    [stamp] = _unaligned_start_query(plain)
    assert stamp.second == 17


def test_plain_moto_mixes_namespaces_when_dimensions_given(plain):
    cw = plain.client("cloudwatch")
    ts = now_utc() - dt.timedelta(minutes=2)
    dims = [{"Name": "EndpointName", "Value": unique("ep")}]
    ns_a, ns_b = unique("Drift/A"), unique("Drift/B")
    cw.put_metric_data(Namespace=ns_a, MetricData=[{"MetricName": "psi", "Dimensions": dims, "Timestamp": ts, "Value": 1.0}])
    cw.put_metric_data(Namespace=ns_b, MetricData=[{"MetricName": "psi", "Dimensions": dims, "Timestamp": ts, "Value": 3.0}])
    out = cw.get_metric_data(
        MetricDataQueries=[{"Id": "a", "MetricStat": {"Metric": {"Namespace": ns_a, "MetricName": "psi", "Dimensions": dims},
                                                       "Period": 60, "Stat": "Sum"}}],
        StartTime=ts - dt.timedelta(minutes=5), EndTime=ts + dt.timedelta(minutes=5))
    assert out["MetricDataResults"][0]["Values"] == [4.0]  # ns_b's datum counted in ns_a


def test_namespaces_kept_apart_when_dimensions_given(compat):
    ts = now_utc() - dt.timedelta(minutes=2)
    dims = [{"Name": "EndpointName", "Value": unique("ep")}]
    ns_a, ns_b = unique("Drift/A"), unique("Drift/B")
    for ns, value in ((ns_a, 1.0), (ns_b, 3.0)):
        _ok(compat.cbor("PutMetricData", {"Namespace": ns, "MetricData": [
            {"MetricName": "psi", "Dimensions": dims, "Timestamp": tag1(ts), "Value": value}]}))
    body = _ok(compat.cbor("GetMetricData", {
        "MetricDataQueries": [{"Id": "a", "MetricStat": {"Metric": {"Namespace": ns_a, "MetricName": "psi",
                                                                    "Dimensions": dims}, "Period": 60, "Stat": "Sum"}}],
        "StartTime": tag1(ts - dt.timedelta(minutes=5)), "EndTime": tag1(ts + dt.timedelta(minutes=5))}))
    assert body["MetricDataResults"][0]["Values"] == [1.0]


def test_plain_moto_metric_math_and_list_metrics_gaps(plain):
    cw = plain.client("cloudwatch")
    ns = unique("Drift/PlainMath")
    ts = now_utc() - dt.timedelta(minutes=2)
    for _ in range(3):
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "m", "Timestamp": ts, "Value": 2.0}])
    assert len(cw.list_metrics(Namespace=ns)["Metrics"]) == 3  # one per datum
    out = cw.get_metric_data(MetricDataQueries=[
        {"Id": "m1", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "m"},
                                                         "Period": 60, "Stat": "Sum"}},
        {"Id": "x", "Expression": "m1 * 100"}],
        StartTime=ts - dt.timedelta(minutes=5), EndTime=ts + dt.timedelta(minutes=5))
    assert out["MetricDataResults"][0]["Values"] == []


def _put_with_and_without_extra_dimension(cw, ns: str, ts: dt.datetime, dims: list) -> None:
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "accuracy", "Dimensions": dims, "Timestamp": ts, "Value": 0.9},
        {"MetricName": "accuracy", "Dimensions": dims + [{"Name": "Publication", "Value": "provisional"}],
         "Timestamp": ts, "Value": 0.5}])


def _statistics(cw, ns: str, ts: dt.datetime, dims: list) -> list:
    out = cw.get_metric_statistics(Namespace=ns, MetricName="accuracy", Dimensions=dims,
                                   StartTime=ts - dt.timedelta(minutes=5), EndTime=ts + dt.timedelta(minutes=5),
                                   Period=600, Statistics=["SampleCount", "Average"])
    return [(d["SampleCount"], d["Average"]) for d in out["Datapoints"]]


def test_plain_moto_statistics_count_metrics_with_more_dimensions(plain):
    cw = plain.client("cloudwatch")
    ns, ts = unique("Quality/Plain"), now_utc() - dt.timedelta(minutes=2)
    dims = [{"Name": "Endpoint", "Value": unique("ep")}]
    _put_with_and_without_extra_dimension(cw, ns, ts, dims)
    assert _statistics(cw, ns, ts, dims) == [(2.0, 0.7)]  # the provisional datum blended in


def test_statistics_match_the_exact_dimension_set(compat):
    cw = compat.client("cloudwatch")
    ns, ts = unique("Quality/Exact"), now_utc() - dt.timedelta(minutes=2)
    dims = [{"Name": "Endpoint", "Value": unique("ep")}]
    _put_with_and_without_extra_dimension(cw, ns, ts, dims)
    assert _statistics(cw, ns, ts, dims) == [(1.0, 0.9)]
    assert _statistics(cw, ns, ts, dims + [{"Name": "Publication", "Value": "provisional"}]) == [(1.0, 0.5)]
    assert _statistics(cw, ns, ts, []) == []  # no dimensionless metric was put
