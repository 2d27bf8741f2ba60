//! Application Auto Scaling adapter: SageMaker endpoint variants as scalable targets with a
//! target-tracking policy on invocations per instance.

use async_trait::async_trait;
use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use crate::deploy::scaling::{AutoScaling, Scaling};
use crate::error::AwsError;

pub const SERVICE: &str = "application-autoscaling";

pub struct ApplicationAutoScaling {
    client: Client,
}

impl ApplicationAutoScaling {
    pub fn new(client: Client) -> Self {
        ApplicationAutoScaling { client }
    }
}

fn invalid(op: &'static str, e: impl std::fmt::Display) -> AwsError {
    AwsError::classify(SERVICE, op, None, None, e.to_string())
}

#[async_trait]
impl Scaling for ApplicationAutoScaling {
    async fn register_target(&self, resource_id: &str, min: u32, max: u32) -> Result<(), AwsError> {
        const OP: &str = "RegisterScalableTarget";
        self.client
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::SageMakerVariantDesiredInstanceCount)
            .min_capacity(min as i32)
            .max_capacity(max as i32)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        Ok(())
    }

    async fn put_target_tracking(
        &self,
        resource_id: &str,
        policy_name: &str,
        spec: &AutoScaling,
    ) -> Result<(), AwsError> {
        const OP: &str = "PutScalingPolicy";
        let metric = PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::SageMakerVariantInvocationsPerInstance)
            .build()
            .map_err(|e| invalid(OP, e))?;
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(f64::from(spec.target_invocations))
            .predefined_metric_specification(metric)
            .scale_in_cooldown(spec.scale_in_cooldown_seconds as i32)
            .scale_out_cooldown(spec.scale_out_cooldown_seconds as i32)
            .build()
            .map_err(|e| invalid(OP, e))?;
        self.client
            .put_scaling_policy()
            .policy_name(policy_name)
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::SageMakerVariantDesiredInstanceCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(config)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
        Ok(())
    }

    async fn deregister_target(&self, resource_id: &str) -> Result<bool, AwsError> {
        const OP: &str = "DeregisterScalableTarget";
        match self
            .client
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::SageMakerVariantDesiredInstanceCount)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, OP, e);
                // ObjectNotFoundException: "No scalable target registered ..."
                if e.code.as_deref() == Some("ObjectNotFoundException") || e.is_not_found() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}
