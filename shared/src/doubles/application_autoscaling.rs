//! Application Auto Scaling in memory (the port of `adapters::application_autoscaling`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::deploy::scaling::{AutoScaling, Scaling};
use crate::error::AwsError;

#[derive(Default, Debug, Clone)]
pub struct ScalingState {
    /// resource id → (min, max).
    pub targets: BTreeMap<String, (u32, u32)>,
    /// (resource id, policy name) → the policy's settings.
    pub policies: BTreeMap<(String, String), AutoScaling>,
    pub registrations: usize,
    pub deregistrations: usize,
}

#[derive(Default)]
pub struct InMemoryScaling {
    pub state: Mutex<ScalingState>,
}

impl InMemoryScaling {
    pub fn snapshot(&self) -> ScalingState {
        self.state.lock().unwrap().clone()
    }
}

#[async_trait]
impl Scaling for InMemoryScaling {
    async fn register_target(&self, resource_id: &str, min: u32, max: u32) -> Result<(), AwsError> {
        let mut s = self.state.lock().unwrap();
        s.registrations += 1;
        s.targets.insert(resource_id.to_owned(), (min, max));
        Ok(())
    }

    async fn put_target_tracking(
        &self,
        resource_id: &str,
        policy_name: &str,
        spec: &AutoScaling,
    ) -> Result<(), AwsError> {
        let mut s = self.state.lock().unwrap();
        if !s.targets.contains_key(resource_id) {
            return Err(AwsError::classify(
                "application-autoscaling",
                "PutScalingPolicy",
                Some("ObjectNotFoundException"),
                Some(400),
                format!("No scalable target registered for {resource_id}"),
            ));
        }
        s.policies.insert(
            (resource_id.to_owned(), policy_name.to_owned()),
            spec.clone(),
        );
        Ok(())
    }

    async fn deregister_target(&self, resource_id: &str) -> Result<bool, AwsError> {
        let mut s = self.state.lock().unwrap();
        s.policies.retain(|(r, _), _| r != resource_id);
        let known = s.targets.remove(resource_id).is_some();
        if known {
            s.deregistrations += 1;
        }
        Ok(known)
    }
}
