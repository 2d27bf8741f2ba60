//! A Model Registry whose reads lag its writes (the port of `adapters::sagemaker`, over an
//! [`InMemoryRegistry`]): after [`LaggingRegistry::freeze`], lists and describes answer the state
//! of that moment — as an eventually consistent read right after an event may — while changes go
//! to the live registry, until [`LaggingRegistry::catch_up`].

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::InMemoryRegistry;
use crate::error::AwsError;
use crate::registry::{ApprovalStatus, ModelPackage, ModelRegistry, PackagePage, list_all};

pub struct LaggingRegistry {
    pub live: Arc<InMemoryRegistry>,
    frozen: Mutex<Option<Arc<InMemoryRegistry>>>,
}

impl LaggingRegistry {
    pub fn new(live: Arc<InMemoryRegistry>) -> Self {
        LaggingRegistry {
            live,
            frozen: Mutex::new(None),
        }
    }

    /// From now on reads answer the live registry's current state (the pre-event state).
    pub async fn freeze(&self, group: &str) {
        let snapshot = InMemoryRegistry::default();
        for summary in list_all(self.live.as_ref(), group, None).await.unwrap() {
            snapshot.add(self.live.describe_package(&summary.arn).await.unwrap());
        }
        *self.frozen.lock().unwrap() = Some(Arc::new(snapshot));
    }

    /// Reads see the live registry again.
    pub fn catch_up(&self) {
        *self.frozen.lock().unwrap() = None;
    }

    fn reader(&self) -> Arc<InMemoryRegistry> {
        self.frozen
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| self.live.clone())
    }
}

#[async_trait]
impl ModelRegistry for LaggingRegistry {
    async fn list_packages(
        &self,
        group: &str,
        approval: Option<&ApprovalStatus>,
        next_token: Option<String>,
    ) -> Result<PackagePage, AwsError> {
        self.reader()
            .list_packages(group, approval, next_token)
            .await
    }

    async fn describe_package(&self, name_or_arn: &str) -> Result<ModelPackage, AwsError> {
        self.reader().describe_package(name_or_arn).await
    }

    async fn put_customer_metadata(
        &self,
        arn: &str,
        key: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.live.put_customer_metadata(arn, key, value).await
    }
}
