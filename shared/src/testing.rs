//! In-memory doubles of the ports, for domain and handler tests that need no network.
//! (The adapters are tested against the local emulator instead.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::error::AwsError;
use crate::registry::{
    ApprovalStatus, Baseline, Container, ModelPackage, ModelRegistry, PackagePage, PackageSummary,
};

/// A model registry in memory. It lists newest first (as the SageMaker adapter asks for), pages
/// with `page_size`, and can fail its next calls with a given error.
pub struct InMemoryRegistry {
    packages: Mutex<Vec<ModelPackage>>,
    pub page_size: usize,
    list_calls: AtomicUsize,
    failures: Mutex<Vec<AwsError>>,
}

impl Default for InMemoryRegistry {
    fn default() -> Self {
        InMemoryRegistry {
            packages: Mutex::new(Vec::new()),
            page_size: 100,
            list_calls: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
        }
    }
}

impl InMemoryRegistry {
    pub fn with_page_size(page_size: usize) -> Self {
        InMemoryRegistry {
            page_size,
            ..Default::default()
        }
    }

    pub fn add(&self, package: ModelPackage) {
        self.packages.lock().unwrap().push(package);
    }

    pub fn set_approval(&self, arn: &str, approval: ApprovalStatus) {
        for p in self
            .packages
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|p| p.summary.arn == arn)
        {
            p.summary.approval = approval.clone();
        }
    }

    /// The next call (list or describe) fails with `error`; queue several for several calls.
    pub fn fail_next(&self, error: AwsError) {
        self.failures.lock().unwrap().push(error);
    }

    pub fn list_calls(&self) -> usize {
        self.list_calls.load(Ordering::SeqCst)
    }

    fn take_failure(&self) -> Option<AwsError> {
        let mut f = self.failures.lock().unwrap();
        if f.is_empty() {
            None
        } else {
            Some(f.remove(0))
        }
    }
}

#[async_trait]
impl ModelRegistry for InMemoryRegistry {
    async fn list_packages(
        &self,
        group: &str,
        approval: Option<&ApprovalStatus>,
        next_token: Option<String>,
    ) -> Result<PackagePage, AwsError> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.take_failure() {
            return Err(e);
        }
        let mut rows: Vec<PackageSummary> = self
            .packages
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.summary.clone())
            .filter(|s| s.group == group && approval.is_none_or(|a| &s.approval == a))
            .collect();
        rows.sort_by_key(|s| std::cmp::Reverse(s.creation_time));
        let start: usize = next_token
            .map(|t| t.parse().expect("token from this registry"))
            .unwrap_or(0);
        let end = (start + self.page_size).min(rows.len());
        let next_token = (end < rows.len()).then(|| end.to_string());
        Ok(PackagePage {
            packages: rows[start.min(end)..end].to_vec(),
            next_token,
        })
    }

    async fn describe_package(&self, name_or_arn: &str) -> Result<ModelPackage, AwsError> {
        if let Some(e) = self.take_failure() {
            return Err(e);
        }
        self.packages
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.summary.arn == name_or_arn)
            .cloned()
            .ok_or_else(|| no_package(name_or_arn))
    }

    async fn put_customer_metadata(
        &self,
        arn: &str,
        key: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        if let Some(e) = self.take_failure() {
            return Err(e);
        }
        let mut packages = self.packages.lock().unwrap();
        let p = packages
            .iter_mut()
            .find(|p| p.summary.arn == arn)
            .ok_or_else(|| no_package(arn))?;
        p.customer_metadata.insert(key.to_owned(), value.to_owned());
        Ok(())
    }
}

fn no_package(arn: &str) -> AwsError {
    AwsError::classify(
        "sagemaker",
        "DescribeModelPackage",
        Some("ValidationException"),
        Some(400),
        format!("Model package {arn} does not exist"),
    )
}

/// A package of `group` at `version`, created `minute` minutes after 2024-01-01T00:00Z, Completed,
/// with one container and a data-quality baseline under `s3://baselines/{group}/{version}/`.
pub fn package(group: &str, version: i64, minute: i64, approval: ApprovalStatus) -> ModelPackage {
    let created: DateTime<Utc> =
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute);
    let base = format!("s3://baselines/{group}/{version}");
    ModelPackage {
        summary: PackageSummary {
            arn: format!(
                "arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"
            ),
            group: group.to_owned(),
            version: Some(version),
            creation_time: created,
            status: "Completed".to_owned(),
            approval,
        },
        containers: vec![Container {
            image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1".to_owned()),
            model_data_url: Some(format!("s3://models/{group}/{version}/model.tar.gz")),
            environment: Default::default(),
        }],
        customer_metadata: Default::default(),
        drift_check_data_quality: Baseline {
            statistics: Some(format!("{base}/statistics.json")),
            constraints: Some(format!("{base}/constraints.json")),
        },
        metrics_data_quality: Baseline::default(),
        drift_check_model_quality: Baseline::default(),
        metrics_model_quality: Baseline::default(),
        approval_description: None,
    }
}

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

    /// Completes a held update.
    pub fn finish(&self, endpoint: &str) {
        if let Some(e) = self.state.lock().unwrap().endpoints.get_mut(endpoint) {
            if let Some(p) = e.pending_config_name.take() {
                e.config_name = Some(p);
            }
            e.status = "InService".to_owned();
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
        s.updates += 1;
        s.last_deployment = Some(deployment.clone());
        let hold = s.hold_updates;
        let e = s.endpoints.get_mut(name).ok_or_else(|| {
            AwsError::classify(
                "sagemaker",
                "UpdateEndpoint",
                Some("ValidationException"),
                Some(400),
                format!("Could not find endpoint {name}"),
            )
        })?;
        if hold {
            e.status = "Updating".to_owned();
            e.pending_config_name = Some(config_name.to_owned());
        } else {
            e.config_name = Some(config_name.to_owned());
        }
        Ok(())
    }
}

/// Alarm thresholds in memory: alarm name → (threshold, comparison operator).
#[derive(Default)]
pub struct InMemoryAlarms {
    pub alarms: Mutex<std::collections::BTreeMap<String, (f64, String)>>,
}

#[async_trait]
impl crate::deploy::alarm::AlarmThresholds for InMemoryAlarms {
    async fn set_threshold(
        &self,
        alarm_name: &str,
        threshold: f64,
        comparison_operator: &str,
    ) -> Result<Option<f64>, AwsError> {
        let mut alarms = self.alarms.lock().unwrap();
        let entry = alarms.get_mut(alarm_name).ok_or_else(|| {
            AwsError::classify(
                "cloudwatch",
                "DescribeAlarms",
                Some("ResourceNotFound"),
                Some(404),
                format!("no alarm {alarm_name}"),
            )
        })?;
        let previous = entry.0;
        *entry = (threshold, comparison_operator.to_owned());
        Ok(Some(previous))
    }
}

/// An object store in memory, keyed by `s3://bucket/key`.
#[derive(Default)]
pub struct InMemoryStore {
    pub objects: Mutex<std::collections::BTreeMap<String, (Vec<u8>, String)>>,
}

impl InMemoryStore {
    pub fn insert(&self, uri: &str, body: impl Into<Vec<u8>>) {
        self.objects.lock().unwrap().insert(
            uri.to_owned(),
            (body.into(), "application/octet-stream".to_owned()),
        );
    }

    pub fn text(&self, uri: &str) -> Option<String> {
        self.objects
            .lock()
            .unwrap()
            .get(uri)
            .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
    }
}

#[async_trait]
impl crate::storage::ObjectStore for InMemoryStore {
    async fn get(&self, uri: &crate::storage::S3Uri) -> Result<Vec<u8>, AwsError> {
        self.objects
            .lock()
            .unwrap()
            .get(&uri.to_string())
            .map(|(b, _)| b.clone())
            .ok_or_else(|| {
                AwsError::classify(
                    "s3",
                    "GetObject",
                    Some("NoSuchKey"),
                    Some(404),
                    format!("{uri} does not exist"),
                )
            })
    }

    /// Streams a copy of the object in small reads (64 bytes per `fill_buf`), so readers are
    /// exercised across chunk boundaries.
    async fn open(
        &self,
        uri: &crate::storage::S3Uri,
    ) -> Result<crate::storage::ObjectReader, AwsError> {
        let body = self.get(uri).await?;
        Ok(Box::new(SmallReads {
            body,
            pos: 0,
            chunk: 64,
        }))
    }

    async fn put(
        &self,
        uri: &crate::storage::S3Uri,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), AwsError> {
        self.objects
            .lock()
            .unwrap()
            .insert(uri.to_string(), (body, content_type.to_owned()));
        Ok(())
    }

    async fn list(
        &self,
        prefix: &crate::storage::S3Uri,
    ) -> Result<Vec<crate::storage::ObjectInfo>, AwsError> {
        let p = prefix.to_string();
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&p))
            .map(|(k, (b, _))| crate::storage::ObjectInfo {
                uri: crate::storage::S3Uri::parse(k).expect("stored keys are URIs"),
                size: b.len() as u64,
                last_modified: None,
            })
            .collect())
    }
}

/// An in-memory body that hands out at most `chunk` bytes per read, like a network stream.
struct SmallReads {
    body: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl tokio::io::AsyncRead for SmallReads {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (self.body.len() - self.pos)
            .min(self.chunk)
            .min(buf.remaining());
        let start = self.pos;
        buf.put_slice(&self.body[start..start + n]);
        self.pos += n;
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncBufRead for SmallReads {
    fn poll_fill_buf(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<&[u8]>> {
        let this = self.get_mut();
        let end = (this.pos + this.chunk).min(this.body.len());
        std::task::Poll::Ready(Ok(&this.body[this.pos..end]))
    }

    fn consume(mut self: std::pin::Pin<&mut Self>, amt: usize) {
        self.pos = (self.pos + amt).min(self.body.len());
    }
}
