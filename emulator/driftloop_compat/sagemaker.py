"""SageMaker fixes for moto 5.2.5 (monkey patches, applied by ``apply()``)."""

from __future__ import annotations

import base64
import copy
import json
import threading
from datetime import datetime, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.utils import arn_formatter

_PIPELINE_LOCK = threading.RLock()
_APPLIED = False


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


# ---------------------------------------------------------------------------------------------
# UpdateEndpoint (moto: "The update_endpoint action has not been implemented", HTTP 500)


def update_endpoint(
    self: sm_models.SageMakerModelBackend,
    endpoint_name: str,
    endpoint_config_name: str,
    retain_all_variant_properties: bool | None = None,
    exclude_retained_variant_properties: list[dict[str, Any]] | None = None,
    deployment_config: dict[str, Any] | None = None,
    retain_deployment_config: bool | None = None,
) -> str:
    endpoint = self.endpoints.get(endpoint_name) if endpoint_name else None
    if endpoint is None:
        arn = sm_models.FakeEndpoint.arn_formatter(endpoint_name or "", self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.endpoint_configs.get(endpoint_config_name) if endpoint_config_name else None
    if config is None:
        arn = sm_models.FakeEndpointConfig.arn_formatter(endpoint_config_name or "", self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
    if endpoint.endpoint_status in _IN_PROGRESS:
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    fate = _take_update_fate(self, endpoint_name)
    if fate is not None:
        # The update is accepted but does not land (see set_status's "next_update"): AWS goes
        # Updating (RollingBack) -> InService on the config it served, with a FailureReason.
        if deployment_config:
            endpoint.last_deployment_config = deployment_config
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = fate[1]
        endpoint.last_modified_time = utcnow()
        return endpoint.arn
    if getattr(endpoint, "driftloop_hold_updates", False):
        # Held (status control): like AWS during an update, the endpoint stays Updating, keeps
        # serving its current config, and shows the new one as its PendingDeploymentSummary
        # until the update completes (status control ``"status": "InService"``).
        endpoint.driftloop_pending_update = dict(
            endpoint_config_name=endpoint_config_name,
            retain_all_variant_properties=retain_all_variant_properties,
            exclude_retained_variant_properties=exclude_retained_variant_properties,
            deployment_config=deployment_config,
            retain_deployment_config=retain_deployment_config,
            start_time=utcnow(),
        )
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        endpoint.last_modified_time = utcnow()
        return endpoint.arn
    return _complete_update(
        self,
        endpoint,
        config,
        endpoint_config_name,
        retain_all_variant_properties,
        exclude_retained_variant_properties,
        deployment_config,
        retain_deployment_config,
    )


def _complete_update(
    self: sm_models.SageMakerModelBackend,
    endpoint: Any,
    config: Any,
    endpoint_config_name: str,
    retain_all_variant_properties: bool | None,
    exclude_retained_variant_properties: list[dict[str, Any]] | None,
    deployment_config: dict[str, Any] | None,
    retain_deployment_config: bool | None,
) -> str:
    described = config.response_object
    old_variants = {v["VariantName"]: v for v in endpoint.production_variants}
    new_variants = endpoint._process_production_variants(described["ProductionVariants"])
    if retain_all_variant_properties:
        excluded = {p.get("VariantPropertyType") for p in exclude_retained_variant_properties or []}
        for variant in new_variants:
            old = old_variants.get(variant["VariantName"])
            if old is None:
                continue
            if "DesiredInstanceCount" not in excluded:
                for key in ("CurrentInstanceCount", "DesiredInstanceCount"):
                    if key in old:
                        variant[key] = old[key]
            if "DesiredWeight" not in excluded:
                for key in ("CurrentWeight", "DesiredWeight"):
                    if key in old:
                        variant[key] = old[key]
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = new_variants
    endpoint.data_capture_config = described.get("DataCaptureConfig")
    if deployment_config:
        endpoint.last_deployment_config = deployment_config
    elif not retain_deployment_config and hasattr(endpoint, "last_deployment_config"):
        del endpoint.last_deployment_config
    # AWS goes Updating -> InService; the emulator completes the update at once.
    endpoint.endpoint_status = "InService"
    endpoint.failure_reason = None
    endpoint.last_modified_time = utcnow()
    return endpoint.arn


_FATE_LOCK = threading.Lock()
_IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
UPDATE_FATES = ("fail", "roll_back")


def _take_update_fate(backend: sm_models.SageMakerModelBackend, endpoint_name: str) -> tuple[str, str | None] | None:
    with _FATE_LOCK:
        fates: dict[str, tuple[str, str | None]] = backend.__dict__.setdefault("_driftloop_update_fates", {})
        return fates.pop(endpoint_name, None)


def _response_update_endpoint(self: sm_responses.SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
        retain_all_variant_properties=self._get_param("RetainAllVariantProperties"),
        exclude_retained_variant_properties=self._get_param("ExcludeRetainedVariantProperties"),
        deployment_config=self._get_param("DeploymentConfig"),
        retain_deployment_config=self._get_param("RetainDeploymentConfig"),
    )
    return ActionResult({"EndpointArn": arn})


# DescribeEndpoint: DataCaptureConfig is a DataCaptureConfigSummary (CaptureStatus and
# CurrentSamplingPercentage are required members; moto passes the endpoint config's shape through).
_orig_describe_endpoint = sm_models.SageMakerModelBackend.describe_endpoint


def describe_endpoint(self: sm_models.SageMakerModelBackend, endpoint_name: str) -> dict[str, Any]:
    response = copy.copy(_orig_describe_endpoint(self, endpoint_name))
    pending = getattr(self.endpoints.get(endpoint_name), "driftloop_pending_update", None)
    if pending:
        response["PendingDeploymentSummary"] = {
            "EndpointConfigName": pending["endpoint_config_name"],
            "StartTime": pending["start_time"],
        }
    capture = response.get("DataCaptureConfig")
    if isinstance(capture, dict) and capture:
        enabled = capture.get("EnableCapture", True)
        summary = {
            "EnableCapture": bool(enabled),
            "CaptureStatus": "Started" if enabled else "Stopped",
            "CurrentSamplingPercentage": capture.get("CurrentSamplingPercentage", capture.get("InitialSamplingPercentage", 0)),
            "DestinationS3Uri": capture.get("DestinationS3Uri"),
        }
        if capture.get("KmsKeyId"):
            summary["KmsKeyId"] = capture["KmsKeyId"]
        response["DataCaptureConfig"] = summary
    else:
        response.pop("DataCaptureConfig", None)  # moto answers {} for an endpoint without capture
    return response


_orig_describe_endpoint_config = sm_models.SageMakerModelBackend.describe_endpoint_config


def describe_endpoint_config_response(self: sm_responses.SageMakerResponse) -> ActionResult:
    """moto answers ``"DataCaptureConfig": {}`` for a config without capture; AWS leaves it out
    (an SDK would otherwise see a capture config with no destination). Patched at the response
    level: moto's create_endpoint reads the backend's dict and needs the key."""
    name = self._get_param("EndpointConfigName")
    response = dict(_orig_describe_endpoint_config(self.sagemaker_backend, name))
    for key in ("DataCaptureConfig", "AsyncInferenceConfig", "ExplainerConfig"):
        if key in response and not response[key]:
            del response[key]
    return ActionResult(response)


# ---------------------------------------------------------------------------------------------
# StartPipelineExecution: ClientRequestToken idempotency (thread-safe; moto server is threaded)

_orig_start_pipeline_execution = sm_models.SageMakerModelBackend.start_pipeline_execution


def start_pipeline_execution(
    self: sm_models.SageMakerModelBackend,
    pipeline_name: str,
    pipeline_execution_display_name: str,
    pipeline_parameters: list[dict[str, Any]],
    pipeline_execution_description: str,
    parallelism_configuration: dict[str, int],
    client_request_token: str,
) -> dict[str, str]:
    with _PIPELINE_LOCK:
        tokens: dict[tuple[str, str], str] = self.__dict__.setdefault("_driftloop_pipeline_tokens", {})
        if client_request_token:
            pipeline = sm_models.get_pipeline_from_name(self.pipelines, pipeline_name)
            key = (pipeline.pipeline_name, client_request_token)
            known = tokens.get(key)
            if known is not None and known in pipeline.pipeline_executions:
                return {"PipelineExecutionArn": known}
        result = _orig_start_pipeline_execution(
            self, pipeline_name, pipeline_execution_display_name, pipeline_parameters,
            pipeline_execution_description, parallelism_configuration, client_request_token,
        )
        if client_request_token:
            tokens[key] = result["PipelineExecutionArn"]
        return result


# ListPipelineExecutions: newest first by default, SortOrder/SortBy, CreatedAfter/Before,
# MaxResults/NextToken; no "None" failure reason on executions that did not fail.


def list_pipeline_executions_response(self: sm_responses.SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    pipeline = sm_models.get_pipeline_from_name(backend.pipelines, self._get_param("PipelineName"))
    after = _aware(self._get_param("CreatedAfter"))
    before = _aware(self._get_param("CreatedBefore"))
    descending = (self._get_param("SortOrder") or "Descending") == "Descending"
    executions = list(pipeline.pipeline_executions.values())
    if after is not None:
        executions = [e for e in executions if _aware(e.creation_time) > after]
    if before is not None:
        executions = [e for e in executions if _aware(e.creation_time) < before]
    order = {arn: i for i, arn in enumerate(pipeline.pipeline_executions)}
    executions.sort(key=lambda e: (_aware(e.creation_time), order[e.arn]), reverse=descending)
    start = 0
    token = self._get_param("NextToken")
    if token:
        try:
            start = int(json.loads(base64.b64decode(token))["offset"])
        except (ValueError, KeyError, TypeError):
            raise ValidationError(message="Invalid NextToken") from None
    limit = self._get_param("MaxResults") or 50
    page = executions[start:start + limit]
    summaries = []
    for e in page:
        item = {
            "PipelineExecutionArn": e.arn,
            "StartTime": e.start_time,
            "PipelineExecutionStatus": e.pipeline_execution_status,
            "PipelineExecutionDescription": e.pipeline_execution_description,
            "PipelineExecutionDisplayName": e.pipeline_execution_display_name,
        }
        if e.pipeline_execution_failure_reason:
            item["PipelineExecutionFailureReason"] = e.pipeline_execution_failure_reason
        summaries.append({k: v for k, v in item.items() if v is not None})
    result: dict[str, Any] = {"PipelineExecutionSummaries": summaries}
    if start + limit < len(executions):
        result["NextToken"] = base64.b64encode(json.dumps({"offset": start + limit}).encode()).decode()
    return ActionResult(result)


_orig_describe_pipeline_execution = sm_models.SageMakerModelBackend.describe_pipeline_execution


def describe_pipeline_execution(self: sm_models.SageMakerModelBackend, pipeline_execution_arn: str) -> dict[str, Any]:
    response = dict(_orig_describe_pipeline_execution(self, pipeline_execution_arn))
    execution = sm_models.get_pipeline_execution_from_arn(self.pipelines, pipeline_execution_arn)
    if execution.pipeline_execution_failure_reason:
        response["FailureReason"] = execution.pipeline_execution_failure_reason
    else:
        response.pop("FailureReason", None)
    if not response.get("PipelineExperimentConfig"):
        response.pop("PipelineExperimentConfig", None)
    return {k: v for k, v in response.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# UpdateModelPackage: omitted fields are left alone (moto wipes CustomerMetadataProperties,
# ModelApprovalStatus and ApprovalDescription); given properties are merged; only
# CustomerMetadataPropertiesToRemove removes keys.


def update_model_package(
    self: sm_models.SageMakerModelBackend,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str],
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    if package is None:
        raise ValidationError(f"Model package {model_package_arn} not found")
    if model_approval_status is not None:
        package.set_model_approval_status(model_approval_status)
    if approval_description is not None:
        package.approval_description = approval_description
    if customer_metadata_properties:
        merged = dict(package.customer_metadata_properties or {})
        merged.update(customer_metadata_properties)
        package.customer_metadata_properties = merged
    if customer_metadata_properties_to_remove:
        if package.customer_metadata_properties:
            for key in customer_metadata_properties_to_remove:
                package.customer_metadata_properties.pop(key, None)
    if additional_inference_specifications_to_add:
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.modifications_done()
    return package.arn


# ---------------------------------------------------------------------------------------------
# Test controls: the emulator completes endpoint updates and pipeline runs at once, so tests that
# need a busy endpoint or a running pipeline set the status by hand
# (``POST /driftloop/sagemaker/status``, see server.py).


def set_status(values: dict[str, Any]) -> dict[str, Any]:
    """``{"endpoint": name, "status": "Updating"}`` or ``{"pipeline_execution": arn, "status": "Executing"}``;
    optional ``account`` (default 123456789012) and ``region`` (default us-east-1).

    ``{"endpoint": name, "hold_updates": true}`` holds the endpoint's next updates as AWS shows one
    in flight (Updating, the old config still serving, the new one in PendingDeploymentSummary);
    ``"status": "InService"`` then completes a held update, ``"Failed"``/``"RollingBack"`` abandons it.


    ``{"endpoint": name, "next_update": "fail" | "roll_back", "failure_reason": "..."}``: the next
    UpdateEndpoint of that endpoint is accepted but does not land — the endpoint stays on the config
    it served, ``InService``, with that ``FailureReason`` (none for a rollback without one), as AWS
    leaves an endpoint after a failed update or a blue/green rollback on its alarms.
    ``"next_update": null`` cancels it."""
    account = str(values.get("account") or "123456789012")
    region = str(values.get("region") or "us-east-1")
    if "next_update" in values:
        return _set_next_update(values, sm_models.sagemaker_backends[account][region])
    status = values.get("status")
    hold = values.get("hold_updates")
    if hold is not None and not isinstance(hold, bool):
        raise ValueError("'hold_updates' must be true or false")
    if hold is None and (not isinstance(status, str) or not status):
        raise ValueError("'status' must be a non-empty string")
    backend = sm_models.sagemaker_backends[account][region]
    if "endpoint" in values:
        endpoint = backend.endpoints.get(values["endpoint"])
        if endpoint is None:
            raise KeyError(f"no endpoint {values['endpoint']!r}")
        if hold is not None:
            endpoint.driftloop_hold_updates = hold
        if not status:
            return {"endpoint": values["endpoint"], "hold_updates": hold}
        pending = getattr(endpoint, "driftloop_pending_update", None)
        if pending and status == "InService":
            # The held update completes: the pending config becomes the endpoint's config.
            endpoint.driftloop_pending_update = None
            pending = dict(pending)
            pending.pop("start_time")
            name = pending.pop("endpoint_config_name")
            _complete_update(backend, endpoint, backend.endpoint_configs[name], name, **pending)
        elif pending and status in ("Failed", "RollingBack"):
            endpoint.driftloop_pending_update = None  # the update is abandoned; the old config stays
        endpoint.endpoint_status = status
        endpoint.failure_reason = values.get("failure_reason")
        return {"endpoint": values["endpoint"], "status": status}
    if "pipeline_execution" in values:
        arn = values["pipeline_execution"]
        for pipeline in backend.pipelines.values():
            execution = pipeline.pipeline_executions.get(arn)
            if execution is not None:
                execution.pipeline_execution_status = status
                return {"pipeline_execution": arn, "status": status}
        raise KeyError(f"no pipeline execution {arn!r}")
    raise ValueError("expected 'endpoint' or 'pipeline_execution'")


def _set_next_update(values: dict[str, Any], backend: sm_models.SageMakerModelBackend) -> dict[str, Any]:
    name = values.get("endpoint")
    if not isinstance(name, str) or not name:
        raise ValueError("'next_update' needs 'endpoint'")
    fate = values["next_update"]
    reason = values.get("failure_reason")
    if fate is not None and fate not in UPDATE_FATES:
        raise ValueError(f"'next_update' must be one of {UPDATE_FATES} or null, not {fate!r}")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("'failure_reason' must be a string")
    if fate == "fail" and not reason:
        raise ValueError("a failed update needs a 'failure_reason' (AWS always gives one)")
    if name not in backend.endpoints:
        raise KeyError(f"no endpoint {name!r}")
    with _FATE_LOCK:
        fates: dict[str, tuple[str, str | None]] = backend.__dict__.setdefault("_driftloop_update_fates", {})
        if fate is None:
            fates.pop(name, None)
        else:
            fates[name] = (fate, reason)
    return {"endpoint": name, "next_update": fate, "failure_reason": reason}


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    backend = sm_models.SageMakerModelBackend
    backend.update_endpoint = update_endpoint
    backend.describe_endpoint = describe_endpoint
    sm_responses.SageMakerResponse.describe_endpoint_config = describe_endpoint_config_response
    backend.start_pipeline_execution = start_pipeline_execution
    backend.describe_pipeline_execution = describe_pipeline_execution
    backend.update_model_package = update_model_package
    sm_responses.SageMakerResponse.update_endpoint = _response_update_endpoint
    sm_responses.SageMakerResponse.list_pipeline_executions = list_pipeline_executions_response
    _APPLIED = True


__all__ = ["apply", "arn_formatter"]
