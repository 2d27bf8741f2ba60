//! SageMaker hosting in memory (the port of `adapters::sagemaker_hosting`).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;
use crate::monitoring::served::{ServingReads, VariantModel};

/// SageMaker hosting in memory. Updates complete at once unless `hold_updates` is set, in which
/// case an updated endpoint stays `Updating` with the new config pending until [`InMemoryHosting::finish`].
#[derive(Default)]
pub struct InMemoryHosting {
    pub state: Mutex<HostingState>,
}

#[derive(Default, Debug, Clone)]
pub struct HostingState {
    pub models: std::collections::BTreeMap<String, crate::deploy::ModelSpec>,
    pub configs: std::collections::BTreeMap<String, crate::deploy::EndpointConfigSpec>,
    pub endpoints: std::collections::BTreeMap<String, crate::deploy::EndpointState>,
    pub creates: usize,
    pub updates: usize,
    pub last_deployment: Option<crate::deploy::DeploymentSpec>,
    pub hold_updates: bool,
    /// Models deployed from an image and artifact: no `ModelPackageName` (see [`InMemoryHosting::add_unregistered_model`]).
    pub unregistered_models: std::collections::BTreeSet<String>,
    /// Failures the next [`ServingReads`] calls return, in order.
    pub read_failures: Vec<AwsError>,
    /// How many [`ServingReads`] calls were made.
    pub reads: usize,
    /// What becomes of the next update (once it completes): see [`InMemoryHosting::fail_next_update`].
    pub next_update: Option<UpdateFate>,
    /// The next `UpdateEndpoint` call is refused with this error.
    pub refuse_next_update: Option<AwsError>,
}

/// How an update ends when it does not land: the endpoint returns to `InService` on the config it
/// served before, with SageMaker's `FailureReason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateFate {
    Fail { reason: String },
    RollBack { reason: Option<String> },
}

impl InMemoryHosting {
    pub fn snapshot(&self) -> HostingState {
        self.state.lock().unwrap().clone()
    }

    pub fn hold_updates(&self, hold: bool) {
        self.state.lock().unwrap().hold_updates = hold;
    }

    pub fn set_status(&self, endpoint: &str, status: &str) {
        if let Some(e) = self.state.lock().unwrap().endpoints.get_mut(endpoint) {
            e.status = status.to_owned();
        }
    }

    /// The next update of any endpoint does not land: it fails with `reason`.
    pub fn fail_next_update(&self, reason: &str) {
        self.state.lock().unwrap().next_update = Some(UpdateFate::Fail {
            reason: reason.to_owned(),
        });
    }

    /// The next update rolls back (a blue/green deployment whose alarm went off).
    pub fn roll_back_next_update(&self, reason: Option<&str>) {
        self.state.lock().unwrap().next_update = Some(UpdateFate::RollBack {
            reason: reason.map(str::to_owned),
        });
    }

    /// The next `UpdateEndpoint` call is refused as SageMaker refuses an update of an endpoint
    /// another change is in progress on.
    pub fn refuse_next_update_in_progress(&self, endpoint: &str) {
        self.state.lock().unwrap().refuse_next_update = Some(AwsError::classify(
            "sagemaker",
            "UpdateEndpoint",
            Some("ValidationException"),
            Some(400),
            format!(
                "Cannot update in-progress endpoint \"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{endpoint}\"."
            ),
        ));
    }

    /// Completes a held update.
    pub fn finish(&self, endpoint: &str) {
        let mut s = self.state.lock().unwrap();
        let fate = s.next_update.take();
        if let Some(e) = s.endpoints.get_mut(endpoint) {
            settle(e, fate);
        }
    }

    /// An `InService` endpoint serving `package_arn` through model `model` and config
    /// `{endpoint}-{model}` (variant `AllTraffic`), as deploy-on-approval would create it.
    pub fn serve(&self, endpoint: &str, model: &str, package_arn: &str) {
        let config = format!("{endpoint}-{model}");
        let mut s = self.state.lock().unwrap();
        s.models.insert(
            model.to_owned(),
            crate::deploy::ModelSpec {
                name: model.to_owned(),
                package_arn: package_arn.to_owned(),
                execution_role_arn: "arn:aws:iam::123456789012:role/sagemaker".to_owned(),
            },
        );
        s.configs.insert(
            config.clone(),
            crate::deploy::EndpointConfigSpec {
                name: config.clone(),
                model_name: model.to_owned(),
                variant_name: "AllTraffic".to_owned(),
                instance_type: "ml.m5.large".to_owned(),
                instance_count: 1,
                capture: None,
            },
        );
        s.endpoints.insert(
            endpoint.to_owned(),
            crate::deploy::EndpointState {
                name: endpoint.to_owned(),
                status: "InService".to_owned(),
                config_name: Some(config),
                pending_config_name: None,
                failure_reason: None,
            },
        );
    }

    /// A model whose container names no `ModelPackageName` (an image and an artifact).
    pub fn add_unregistered_model(&self, model: &str) {
        self.state
            .lock()
            .unwrap()
            .unregistered_models
            .insert(model.to_owned());
    }

    /// The next [`ServingReads`] call fails with `error`.
    pub fn fail_next_read(&self, error: AwsError) {
        self.state.lock().unwrap().read_failures.push(error);
    }

    fn read(&self) -> Result<std::sync::MutexGuard<'_, HostingState>, AwsError> {
        let mut s = self.state.lock().unwrap();
        s.reads += 1;
        if s.read_failures.is_empty() {
            Ok(s)
        } else {
            Err(s.read_failures.remove(0))
        }
    }

    /// The package ARN an endpoint serves, through its config and model.
    pub fn serving(&self, endpoint: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        let config = s.endpoints.get(endpoint)?.config_name.clone()?;
        let model = &s.configs.get(&config)?.model_name;
        Some(s.models.get(model)?.package_arn.clone())
    }
}

#[async_trait]
impl crate::deploy::Hosting for InMemoryHosting {
    async fn describe_endpoint(
        &self,
        name: &str,
    ) -> Result<Option<crate::deploy::EndpointState>, AwsError> {
        Ok(self.state.lock().unwrap().endpoints.get(name).cloned())
    }

    async fn ensure_model(&self, spec: &crate::deploy::ModelSpec) -> Result<(), AwsError> {
        self.state
            .lock()
            .unwrap()
            .models
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn ensure_endpoint_config(
        &self,
        spec: &crate::deploy::EndpointConfigSpec,
    ) -> Result<(), AwsError> {
        self.state
            .lock()
            .unwrap()
            .configs
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn create_endpoint(&self, name: &str, config_name: &str) -> Result<(), AwsError> {
        let mut s = self.state.lock().unwrap();
        s.creates += 1;
        s.endpoints.insert(
            name.to_owned(),
            crate::deploy::EndpointState {
                name: name.to_owned(),
                status: "InService".to_owned(),
                config_name: Some(config_name.to_owned()),
                pending_config_name: None,
                failure_reason: None,
            },
        );
        Ok(())
    }

    async fn update_endpoint(
        &self,
        name: &str,
        config_name: &str,
        deployment: &crate::deploy::DeploymentSpec,
    ) -> Result<(), AwsError> {
        let mut s = self.state.lock().unwrap();
        if let Some(e) = s.refuse_next_update.take() {
            return Err(crate::deploy::in_progress_is_busy(e));
        }
        s.updates += 1;
        s.last_deployment = Some(deployment.clone());
        let hold = s.hold_updates;
        let fate = if hold { None } else { s.next_update.take() };
        let e = s.endpoints.get_mut(name).ok_or_else(|| {
            AwsError::classify(
                "sagemaker",
                "UpdateEndpoint",
                Some("ValidationException"),
                Some(400),
                format!("Could not find endpoint {name}"),
            )
        })?;
        e.status = "Updating".to_owned();
        e.pending_config_name = Some(config_name.to_owned());
        if !hold {
            settle(e, fate);
        }
        Ok(())
    }
}

#[async_trait]
impl ServingReads for InMemoryHosting {
    async fn current_endpoint_config(&self, endpoint: &str) -> Result<Option<String>, AwsError> {
        let s = self.read()?;
        Ok(s.endpoints
            .get(endpoint)
            .and_then(|e| e.config_name.clone()))
    }

    async fn endpoint_config_variants(
        &self,
        config: &str,
    ) -> Result<Option<Vec<VariantModel>>, AwsError> {
        let s = self.read()?;
        Ok(s.configs.get(config).map(|c| {
            vec![VariantModel {
                variant_name: c.variant_name.clone(),
                model_name: c.model_name.clone(),
            }]
        }))
    }

    async fn model_package_names(&self, model: &str) -> Result<Option<Vec<String>>, AwsError> {
        let s = self.read()?;
        if s.unregistered_models.contains(model) {
            return Ok(Some(Vec::new()));
        }
        Ok(s.models.get(model).map(|m| vec![m.package_arn.clone()]))
    }
}

/// An update in flight ends: on the pending config, or (per `fate`) back on the previous one.
fn settle(e: &mut crate::deploy::EndpointState, fate: Option<UpdateFate>) {
    let pending = e.pending_config_name.take();
    match fate {
        None => {
            if let Some(p) = pending {
                e.config_name = Some(p);
            }
            e.failure_reason = None;
        }
        Some(UpdateFate::Fail { reason }) => e.failure_reason = Some(reason),
        Some(UpdateFate::RollBack { reason }) => e.failure_reason = reason,
    }
    e.status = "InService".to_owned();
}
