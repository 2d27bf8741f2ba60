//! SageMaker hosting in memory (the port of `adapters::sagemaker_hosting`).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;

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
