//! SageMaker hosting adapter: models, endpoint configs, endpoints.

use async_trait::async_trait;
use aws_sdk_sagemaker::types::{
    Alarm, AutoRollbackConfig, BlueGreenUpdatePolicy, CapacitySize, CapacitySizeType,
    CaptureContentTypeHeader, CaptureMode, CaptureOption, ContainerDefinition, DataCaptureConfig,
    DeploymentConfig, ProductionVariant, ProductionVariantInstanceType, TrafficRoutingConfig,
    TrafficRoutingConfigType,
};

use super::sagemaker::{SERVICE, SageMaker, missing};
use crate::deploy::in_progress_is_busy;
use crate::deploy::{
    BlueGreen, DeploymentSpec, EndpointConfigSpec, EndpointState, Hosting, ModelSpec,
    TrafficRouting,
};
use crate::error::AwsError;
use crate::monitoring::served::{ServingReads, VariantModel};

/// SageMaker answers a describe of a missing endpoint, config or model with a ValidationException
/// "Could not find ...".
fn not_found(e: &AwsError) -> bool {
    e.is_not_found() || e.message.contains("Could not find")
}

/// SageMaker answers a create of an existing resource with a ValidationException
/// "Cannot create already existing ...": for an idempotent `ensure_*` that is success.
fn already_exists(e: &AwsError) -> bool {
    e.message.contains("already exist")
}

fn blue_green_policy(bg: &BlueGreen) -> BlueGreenUpdatePolicy {
    let percent = |p: u8| {
        CapacitySize::builder()
            .r#type(CapacitySizeType::CapacityPercent)
            .value(i32::from(p))
            .build()
    };
    let mut routing =
        TrafficRoutingConfig::builder().wait_interval_in_seconds(bg.wait_interval_seconds as i32);
    routing = match &bg.routing {
        TrafficRouting::AllAtOnce => routing.r#type(TrafficRoutingConfigType::AllAtOnce),
        TrafficRouting::Canary { percent: p } => routing
            .r#type(TrafficRoutingConfigType::Canary)
            .canary_size(percent(*p)),
        TrafficRouting::Linear { percent: p } => routing
            .r#type(TrafficRoutingConfigType::Linear)
            .linear_step_size(percent(*p)),
    };
    BlueGreenUpdatePolicy::builder()
        .traffic_routing_configuration(routing.build())
        .termination_wait_in_seconds(bg.termination_wait_seconds as i32)
        .set_maximum_execution_timeout_in_seconds(
            bg.maximum_execution_timeout_seconds.map(|s| s as i32),
        )
        .build()
}

#[async_trait]
impl Hosting for SageMaker {
    async fn describe_endpoint(&self, name: &str) -> Result<Option<EndpointState>, AwsError> {
        const OP: &str = "DescribeEndpoint";
        match self
            .client()
            .describe_endpoint()
            .endpoint_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(EndpointState {
                name: name.to_owned(),
                status: out
                    .endpoint_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                config_name: out.endpoint_config_name().map(str::to_owned),
                pending_config_name: out
                    .pending_deployment_summary()
                    .and_then(|p| p.endpoint_config_name())
                    .map(str::to_owned),
                failure_reason: out.failure_reason().map(str::to_owned),
            })),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, OP, e);
                // SageMaker says "Could not find endpoint" with a ValidationException.
                if e.is_not_found() || e.message.contains("Could not find endpoint") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn ensure_model(&self, spec: &ModelSpec) -> Result<(), AwsError> {
        const OP: &str = "CreateModel";
        let result = self
            .client()
            .create_model()
            .model_name(&spec.name)
            .execution_role_arn(&spec.execution_role_arn)
            .primary_container(
                ContainerDefinition::builder()
                    .model_package_name(&spec.package_arn)
                    .build(),
            )
            .send()
            .await;
        match result.map_err(|e| AwsError::from_sdk(SERVICE, OP, e)) {
            Ok(_) => Ok(()),
            Err(e) if already_exists(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ensure_endpoint_config(&self, spec: &EndpointConfigSpec) -> Result<(), AwsError> {
        const OP: &str = "CreateEndpointConfig";
        let variant = ProductionVariant::builder()
            .variant_name(&spec.variant_name)
            .model_name(&spec.model_name)
            .instance_type(ProductionVariantInstanceType::from(
                spec.instance_type.as_str(),
            ))
            .initial_instance_count(spec.instance_count as i32)
            .initial_variant_weight(1.0)
            .build();
        let capture = match &spec.capture {
            None => None,
            Some(c) => Some(
                DataCaptureConfig::builder()
                    .enable_capture(true)
                    .initial_sampling_percentage(i32::from(c.sampling_percentage))
                    .destination_s3_uri(&c.destination_s3_uri)
                    .capture_options(
                        CaptureOption::builder()
                            .capture_mode(CaptureMode::Input)
                            .build(),
                    )
                    .capture_options(
                        CaptureOption::builder()
                            .capture_mode(CaptureMode::Output)
                            .build(),
                    )
                    .capture_content_type_header(
                        CaptureContentTypeHeader::builder()
                            .set_csv_content_types(
                                Some(c.csv_content_types.clone()).filter(|v| !v.is_empty()),
                            )
                            .set_json_content_types(
                                Some(c.json_content_types.clone()).filter(|v| !v.is_empty()),
                            )
                            .build(),
                    )
                    .build(),
            ),
        };
        let result = self
            .client()
            .create_endpoint_config()
            .endpoint_config_name(&spec.name)
            .production_variants(variant)
            .set_data_capture_config(capture)
            .send()
            .await;
        match result.map_err(|e| AwsError::from_sdk(SERVICE, OP, e)) {
            Ok(_) => Ok(()),
            Err(e) if already_exists(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_endpoint(&self, name: &str, config_name: &str) -> Result<(), AwsError> {
        self.client()
            .create_endpoint()
            .endpoint_name(name)
            .endpoint_config_name(config_name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "CreateEndpoint", e))?;
        Ok(())
    }

    async fn update_endpoint(
        &self,
        name: &str,
        config_name: &str,
        deployment: &DeploymentSpec,
    ) -> Result<(), AwsError> {
        const OP: &str = "UpdateEndpoint";
        let deployment_config =
            if deployment.blue_green.is_none() && deployment.rollback_alarms.is_empty() {
                None
            } else {
                let rollback = (!deployment.rollback_alarms.is_empty()).then(|| {
                    AutoRollbackConfig::builder()
                        .set_alarms(Some(
                            deployment
                                .rollback_alarms
                                .iter()
                                .map(|a| Alarm::builder().alarm_name(a).build())
                                .collect(),
                        ))
                        .build()
                });
                Some(
                    DeploymentConfig::builder()
                        .set_blue_green_update_policy(
                            deployment.blue_green.as_ref().map(blue_green_policy),
                        )
                        .set_auto_rollback_configuration(rollback)
                        .build(),
                )
            };
        self.client()
            .update_endpoint()
            .endpoint_name(name)
            .endpoint_config_name(config_name)
            .set_deployment_config(deployment_config)
            .send()
            .await
            .map_err(|e| in_progress_is_busy(AwsError::from_sdk(SERVICE, OP, e)))?;
        Ok(())
    }
}

/// The reads custom-metrics follows from an endpoint to the package it serves.
#[async_trait]
impl ServingReads for SageMaker {
    async fn current_endpoint_config(&self, endpoint: &str) -> Result<Option<String>, AwsError> {
        match Hosting::describe_endpoint(self, endpoint).await? {
            None => Ok(None),
            Some(state) => state
                .config_name
                .map(Some)
                .ok_or_else(|| missing("DescribeEndpoint", "EndpointConfigName")),
        }
    }

    async fn endpoint_config_variants(
        &self,
        config: &str,
    ) -> Result<Option<Vec<VariantModel>>, AwsError> {
        const OP: &str = "DescribeEndpointConfig";
        match self
            .client()
            .describe_endpoint_config()
            .endpoint_config_name(config)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.production_variants()
                    .iter()
                    .map(|v| VariantModel {
                        variant_name: v.variant_name().unwrap_or_default().to_owned(),
                        model_name: v.model_name().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            )),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, OP, e);
                if not_found(&e) { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn model_package_names(&self, model: &str) -> Result<Option<Vec<String>>, AwsError> {
        const OP: &str = "DescribeModel";
        match self
            .client()
            .describe_model()
            .model_name(model)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.primary_container()
                    .into_iter()
                    .chain(out.containers())
                    .filter_map(|c| c.model_package_name())
                    .map(str::to_owned)
                    .collect(),
            )),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, OP, e);
                if not_found(&e) { Ok(None) } else { Err(e) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AwsErrorKind, Classify};

    #[test]
    fn an_update_of_an_in_progress_endpoint_is_busy() {
        let e = in_progress_is_busy(AwsError::classify(
            SERVICE,
            "UpdateEndpoint",
            Some("ValidationException"),
            Some(400),
            "Cannot update in-progress endpoint \"arn:aws:sagemaker:us-east-1:123456789012:endpoint/demo\".",
        ));
        assert_eq!(e.kind, AwsErrorKind::Busy);
        assert_eq!(e.error_type(), "Retryable.Busy");
        let other = in_progress_is_busy(AwsError::classify(
            SERVICE,
            "UpdateEndpoint",
            Some("ValidationException"),
            Some(400),
            "Could not find endpoint",
        ));
        assert_eq!(other.kind, AwsErrorKind::Client);
    }
}
