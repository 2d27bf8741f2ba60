//! Production autoscaling: target tracking on `SageMakerVariantInvocationsPerInstance` for the
//! variant the endpoint serves (Application Auto Scaling resource `endpoint/<name>/variant/<variant>`,
//! dimension `sagemaker:variant:DesiredInstanceCount`).
//!
//! Kept across updates: driftloop's endpoint configs always name their variant `AllTraffic`, so the
//! scalable target survives an update that changes the model (which AWS allows on a scaled
//! variant). An update that changes the instance settings (a new settings hash in the config name)
//! is refused by SageMaker while the variant is a scalable target, so the target is deregistered
//! first ([`settings_change`]); once the endpoint serves the new config, the target and its policy
//! are registered again (RegisterScalableTarget and PutScalingPolicy are upserts).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::AwsError;

pub const METRIC: &str = "SageMakerVariantInvocationsPerInstance";
pub const DIMENSION: &str = "sagemaker:variant:DesiredInstanceCount";

/// A stage's autoscaling settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoScaling {
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// Invocations per instance per minute the policy keeps the variant at.
    pub target_invocations: u32,
    pub scale_in_cooldown_seconds: u32,
    pub scale_out_cooldown_seconds: u32,
}

/// What a stage's autoscaling looks like after a convergence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingUpdate {
    pub resource_id: String,
    pub policy_name: String,
    pub min_capacity: u32,
    pub max_capacity: u32,
    pub target_invocations: u32,
    pub error: Option<String>,
}

/// `endpoint/<endpoint>/variant/<variant>`.
pub fn resource_id(endpoint: &str, variant: &str) -> String {
    format!("endpoint/{endpoint}/variant/{variant}")
}

pub fn policy_name(endpoint: &str) -> String {
    format!("{endpoint}-invocations-per-instance")
}

/// Whether moving from config `from` to `to` changes the instance settings: both are driftloop's
/// names (`…-v<version>-<settings hash>`), so the last segment is the settings hash. A config of
/// another origin counts as a change.
pub fn settings_change(from: Option<&str>, to: &str) -> bool {
    let hash = |n: &str| n.rsplit_once('-').map(|(_, h)| h.to_owned());
    match from {
        None => false,
        Some(from) => hash(from) != hash(to),
    }
}

/// The Application Auto Scaling port (SageMaker variants only).
#[async_trait]
pub trait Scaling: Send + Sync {
    /// Registers (or updates) the variant as a scalable target.
    async fn register_target(&self, resource_id: &str, min: u32, max: u32) -> Result<(), AwsError>;
    /// Puts (or replaces) the target-tracking policy on invocations per instance.
    async fn put_target_tracking(
        &self,
        resource_id: &str,
        policy_name: &str,
        spec: &AutoScaling,
    ) -> Result<(), AwsError>;
    /// Deregisters the variant (its policies go with it); `false` when it was not registered.
    async fn deregister_target(&self, resource_id: &str) -> Result<bool, AwsError>;
}

/// Registers the variant and its policy. A failure is reported in the update, never fatal: the
/// deployment is what matters, and the next deployment registers again.
pub async fn ensure(
    scaling: &dyn Scaling,
    endpoint: &str,
    variant: &str,
    spec: &AutoScaling,
) -> ScalingUpdate {
    let mut update = ScalingUpdate {
        resource_id: resource_id(endpoint, variant),
        policy_name: policy_name(endpoint),
        min_capacity: spec.min_capacity,
        max_capacity: spec.max_capacity,
        target_invocations: spec.target_invocations,
        error: None,
    };
    let result = async {
        scaling
            .register_target(&update.resource_id, spec.min_capacity, spec.max_capacity)
            .await?;
        scaling
            .put_target_tracking(&update.resource_id, &update.policy_name, spec)
            .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(resource = update.resource_id, error = %e, "autoscaling not registered");
        update.error = Some(e.to_string());
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_settings_changes() {
        assert_eq!(
            resource_id("churn-prod", "AllTraffic"),
            "endpoint/churn-prod/variant/AllTraffic"
        );
        let a = crate::deploy::names::endpoint_config_name("churn-prod", 1, "m5|1");
        let b = crate::deploy::names::endpoint_config_name("churn-prod", 2, "m5|1");
        let c = crate::deploy::names::endpoint_config_name("churn-prod", 2, "c5|1");
        assert!(!settings_change(Some(&a), &b), "a new model only");
        assert!(settings_change(Some(&a), &c));
        assert!(!settings_change(None, &c));
        assert!(settings_change(Some("hand-made"), &c));
    }
}
