"""AWS service events on the default EventBridge bus - opt in (moto emits none).

AWS sends these to the account's default bus; moto 5.2.5 sends nothing, so a local loop
"alarm -> EventBridge rule -> target" never fires. With emission on, the emulator puts:

* ``aws.cloudwatch`` / ``CloudWatch Alarm State Change`` when an alarm changes state (SetAlarmState),
  detail ``alarmName``, ``state``, ``previousState`` (value, reason, reasonData, timestamp),
  ``configuration`` (description, metrics with metricStat or expression);
* ``aws.sagemaker`` / ``SageMaker Model Package State Change`` on CreateModelPackage and on an
  UpdateModelPackage (detail: the package as DescribeModelPackage shows it);
* ``aws.sagemaker`` / ``SageMaker Model Building Pipeline Execution Status Change`` for a started
  execution (Executing -> Succeeded, as the emulator completes it at once).

Off by default (tests with broad rules would otherwise get surprise events). Turn on with
``DRIFTLOOP_EMIT_EVENTS=1`` when the server starts, or at run time with
``PUT /driftloop/config {"emit_events": true}``; ``POST /moto-api/reset`` restores the start value.

Also here (always on, it is not an event): a new alarm starts in ``INSUFFICIENT_DATA`` as on AWS
(moto: ``OK``), and PutMetricAlarm on an existing alarm keeps its state (moto resets it).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.sagemaker import models as sm_models

_LOCK = threading.Lock()
_DEFAULT = os.environ.get("DRIFTLOOP_EMIT_EVENTS") == "1"
_STATE = {"emit_events": _DEFAULT}
_APPLIED = False


def config() -> dict[str, Any]:
    with _LOCK:
        return dict(_STATE)


def set_config(values: dict[str, Any]) -> dict[str, Any]:
    with _LOCK:
        if "emit_events" in values:
            _STATE["emit_events"] = bool(values["emit_events"])
        return dict(_STATE)


def reset() -> None:
    set_config({"emit_events": _DEFAULT})


def _enabled() -> bool:
    with _LOCK:
        return bool(_STATE["emit_events"])


def _put(account: str, region: str, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
    from moto.events.models import events_backends

    events_backends[account][region].put_events([{
        "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
        "Resources": resources,
    }])


def _cw_time(value: datetime | None) -> str:
    value = value or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


# --- CloudWatch alarms ----------------------------------------------------------------------------

_orig_put_metric_alarm = cw_models.CloudWatchBackend.put_metric_alarm
_orig_set_alarm_state = cw_models.CloudWatchBackend.set_alarm_state


def put_metric_alarm(self: cw_models.CloudWatchBackend, name: str, *args: Any, **kwargs: Any) -> Any:
    prior = self.alarms.get(name)
    alarm = _orig_put_metric_alarm(self, name, *args, **kwargs)
    if prior is not None:
        for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
            setattr(alarm, attr, getattr(prior, attr))
        if hasattr(prior, "history") and hasattr(alarm, "history"):
            alarm.history = prior.history
    else:
        alarm.state_value = "INSUFFICIENT_DATA"
    return alarm


def _alarm_metrics(alarm: Any) -> list[dict[str, Any]]:
    def dims(values: list[Any]) -> dict[str, str]:
        return {d.name: d.value for d in values or []}

    if alarm.metric_data_queries:
        out = []
        for q in alarm.metric_data_queries:
            item: dict[str, Any] = {"id": q.id}
            if q.expression:
                item["expression"] = q.expression
            if q.label:
                item["label"] = q.label
            if q.metric_stat is not None:
                ms = q.metric_stat
                item["metricStat"] = {
                    "metric": {"namespace": ms.metric.namespace, "name": ms.metric.metric_name,
                               "dimensions": dims(ms.metric.dimensions)},
                    "period": int(ms.period) if ms.period is not None else None, "stat": ms.stat,
                }
                if ms.unit:
                    item["metricStat"]["unit"] = ms.unit
            item["returnData"] = q.return_data if q.return_data is not None else True
            out.append(item)
        return out
    stat = alarm.statistic or (alarm.extended_statistic if hasattr(alarm, "extended_statistic") else None)
    return [{
        "id": str(uuid.uuid4()),
        "metricStat": {"metric": {"namespace": alarm.namespace, "name": alarm.metric_name,
                                  "dimensions": dims(alarm.dimensions)},
                       "period": int(alarm.period) if alarm.period is not None else None, "stat": stat},
        "returnData": True,
    }]


def set_alarm_state(self: cw_models.CloudWatchBackend, alarm_name: str, reason: str, reason_data: str,
                    state_value: str) -> None:
    alarm = self.alarms.get(alarm_name)
    previous = None
    if alarm is not None:
        previous = (alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp)
    _orig_set_alarm_state(self, alarm_name, reason, reason_data, state_value)
    if alarm is None or previous is None or previous[0] == state_value or not _enabled():
        return
    state = {"value": state_value, "reason": reason or "", "timestamp": _cw_time(alarm.state_updated_timestamp)}
    if reason_data:
        state["reasonData"] = reason_data
    prev = {"value": previous[0], "reason": previous[1] or "", "timestamp": _cw_time(previous[3])}
    if previous[2] and previous[2] != "{}":
        prev["reasonData"] = previous[2]
    configuration: dict[str, Any] = {"metrics": _alarm_metrics(alarm)}
    if alarm.description:
        configuration["description"] = alarm.description
    detail = {"alarmName": alarm.name, "state": state, "previousState": prev, "configuration": configuration}
    _put(self.account_id, self.region_name, "aws.cloudwatch", "CloudWatch Alarm State Change", detail,
         [alarm.alarm_arn])


# --- SageMaker ------------------------------------------------------------------------------------


def _package_event(backend: sm_models.SageMakerModelBackend, arn: str) -> None:
    if not _enabled():
        return
    name = backend.model_package_name_mapping.get(arn, arn)
    package = backend.model_packages.get(name)
    if package is None:
        return
    detail = {k: _iso(v) for k, v in package.gen_response_object().items() if v not in (None, [], {})}
    _put(backend.account_id, backend.region_name, "aws.sagemaker", "SageMaker Model Package State Change",
         detail, [package.arn])


def wrap_sagemaker() -> None:
    backend = sm_models.SageMakerModelBackend
    orig_create = backend.create_model_package
    orig_update = backend.update_model_package  # the compat version when sagemaker.apply() ran first
    orig_start = backend.start_pipeline_execution

    def create_model_package(self: sm_models.SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        arn = orig_create(self, *args, **kwargs)
        _package_event(self, arn)
        return arn

    def update_model_package(self: sm_models.SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        arn = orig_update(self, *args, **kwargs)
        _package_event(self, arn)
        return arn

    def start_pipeline_execution(self: sm_models.SageMakerModelBackend, pipeline_name: str, *args: Any,
                                 **kwargs: Any) -> dict[str, str]:
        from .sagemaker import _PIPELINE_LOCK

        with _PIPELINE_LOCK:  # the same lock as the idempotency check: a replay must not look new
            before = set(self.pipelines[pipeline_name].pipeline_executions) if pipeline_name in self.pipelines else set()
            result = orig_start(self, pipeline_name, *args, **kwargs)
        arn = result["PipelineExecutionArn"]
        if _enabled() and arn not in before:  # an idempotent replay starts nothing
            pipeline = sm_models.get_pipeline_from_name(self.pipelines, pipeline_name)
            execution = pipeline.pipeline_executions[arn]
            base = {
                "pipelineArn": pipeline.arn, "pipelineExecutionArn": arn,
                "pipelineExecutionDisplayName": execution.pipeline_execution_display_name,
                "executionStartTime": _iso(execution.start_time),
            }
            if execution.pipeline_execution_description:
                base["pipelineExecutionDescription"] = execution.pipeline_execution_description
            for previous, current in ((None, "Executing"), ("Executing", execution.pipeline_execution_status)):
                detail = dict(base, currentPipelineExecutionStatus=current)
                if previous:
                    detail["previousPipelineExecutionStatus"] = previous
                    detail["executionEndTime"] = _iso(execution.last_modified_time)
                _put(self.account_id, self.region_name, "aws.sagemaker",
                     "SageMaker Model Building Pipeline Execution Status Change", detail, [pipeline.arn, arn])
        return result

    backend.create_model_package = create_model_package
    backend.update_model_package = update_model_package
    backend.start_pipeline_execution = start_pipeline_execution


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    cw_models.CloudWatchBackend.put_metric_alarm = put_metric_alarm
    cw_models.CloudWatchBackend.set_alarm_state = set_alarm_state
    wrap_sagemaker()
    _APPLIED = True
