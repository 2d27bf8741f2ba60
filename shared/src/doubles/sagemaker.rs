//! The model registry in memory (the port of `adapters::sagemaker`), and a package builder.

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

    /// Every package as it is now.
    pub fn packages_snapshot(&self) -> Vec<ModelPackage> {
        self.packages.lock().unwrap().clone()
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
            p.last_modified = Some(Utc::now());
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
        p.last_modified = Some(Utc::now());
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
        last_modified: Some(created),
    }
}
