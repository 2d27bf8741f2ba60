//! custom-metrics against the emulator: each endpoint is checked against the baselines of the
//! package it serves (DescribeEndpoint → DescribeEndpointConfig → DescribeModel's
//! `ModelPackageName` → DescribeModelPackage), read through the real SageMaker adapter, with the
//! real clock; the latest approved package only as the reported fallback.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sagemaker::types::{
    ContainerDefinition, ProductionVariant, ProductionVariantInstanceType,
};
use chrono::{Duration, Utc};
use custom_metrics::{Config, Deps, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::deploy::{DeploymentSpec, EndpointConfigSpec, Hosting, ModelSpec};
use driftloop::monitoring::served::{Unserved, served_package};
use driftloop::monitoring::window::{Window, WindowRule};
use driftloop_tests::seed::{create_group, create_package_with_model_quality};
use driftloop_tests::{aws, emulator, unique};
use serde_json::{Value, json};

struct Setup {
    sm: aws_sdk_sagemaker::Client,
    s3: aws_sdk_s3::Client,
    aws: driftloop::aws::Aws,
    bucket: String,
    group: String,
    /// v1: accuracy must be ≥ 0.9 (the seeded 0.75 violates); v2, the latest approved: ≥ 0.5.
    v1: String,
    v2: String,
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: String) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .expect("PutObject");
}

async fn setup() -> Setup {
    let aws = aws().await;
    let group = unique("served");
    let bucket = group.to_ascii_lowercase();
    let s3 = aws.s3();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let sm = aws.sagemaker();
    create_group(&sm, &group).await;
    let mut arns = Vec::new();
    for (n, threshold) in [(1, 0.9), (2, 0.5)] {
        let key = format!("baselines/{n}/mq-constraints.json");
        put(
            &s3,
            &bucket,
            &key,
            json!({"version": 0.0, "binary_classification_constraints": {"accuracy": {
                "threshold": threshold, "comparison_operator": "LessThanThreshold"}}})
            .to_string(),
        )
        .await;
        arns.push(
            create_package_with_model_quality(&sm, &group, n, &format!("s3://{bucket}/{key}"))
                .await,
        );
        // Creation times must differ for "latest".
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    Setup {
        sm,
        s3,
        aws,
        bucket,
        group,
        v1: arns[0].clone(),
        v2: arns[1].clone(),
    }
}

impl Setup {
    /// An endpoint serving `package` as deploy-on-approval creates it (model with the package as
    /// its container's ModelPackageName, config, endpoint), through the hosting adapter.
    async fn deploy(&self, endpoint: &str, package: &str, model: &str) {
        let hosting = SageMaker::new(self.sm.clone());
        hosting
            .ensure_model(&ModelSpec {
                name: model.to_owned(),
                package_arn: package.to_owned(),
                execution_role_arn: "arn:aws:iam::123456789012:role/sagemaker".into(),
            })
            .await
            .expect("CreateModel");
        let config = format!("{endpoint}-{model}");
        hosting
            .ensure_endpoint_config(&EndpointConfigSpec {
                name: config.clone(),
                model_name: model.to_owned(),
                variant_name: "AllTraffic".into(),
                instance_type: "ml.m5.large".into(),
                instance_count: 1,
                capture: None,
            })
            .await
            .expect("CreateEndpointConfig");
        hosting
            .create_endpoint(endpoint, &config)
            .await
            .expect("CreateEndpoint");
    }

    /// An endpoint whose model is an image and an artifact (no ModelPackageName).
    async fn deploy_unregistered(&self, endpoint: &str, model: &str) {
        self.sm
            .create_model()
            .model_name(model)
            .execution_role_arn("arn:aws:iam::123456789012:role/sagemaker")
            .primary_container(
                ContainerDefinition::builder()
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1")
                    .model_data_url("s3://models/custom/model.tar.gz")
                    .build(),
            )
            .send()
            .await
            .expect("CreateModel");
        let config = format!("{endpoint}-{model}");
        self.sm
            .create_endpoint_config()
            .endpoint_config_name(&config)
            .production_variants(
                ProductionVariant::builder()
                    .variant_name("AllTraffic")
                    .model_name(model)
                    .instance_type(ProductionVariantInstanceType::MlM5Large)
                    .initial_instance_count(1)
                    .build(),
            )
            .send()
            .await
            .expect("CreateEndpointConfig");
        self.sm
            .create_endpoint()
            .endpoint_name(endpoint)
            .endpoint_config_name(&config)
            .send()
            .await
            .expect("CreateEndpoint");
    }

    /// `n` predictions of `endpoint` in `w` and their labels (accuracy 0.75), under the
    /// endpoint's own ground-truth prefix.
    async fn seed(&self, endpoint: &str, w: &Window, n: usize) {
        let hour = w.start.format("%Y/%m/%d/%H").to_string();
        let (mut capture, mut labels) = (String::new(), String::new());
        for i in 0..n {
            let id = format!("{endpoint}-{i}");
            let t = (w.start + Duration::seconds(i as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let score = if i % 2 == 0 { 0.8 } else { 0.3 };
            capture.push_str(&format!(
                r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"{i},1","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{t}"}},"eventVersion":"0"}}"#
            ));
            capture.push('\n');
            let label = u8::from((i % 2 == 0) != (i % 4 == 1));
            labels.push_str(&format!(r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#));
            labels.push('\n');
        }
        put(
            &self.s3,
            &self.bucket,
            &format!("capture/{endpoint}/AllTraffic/{hour}/00-01-000-a.jsonl"),
            capture,
        )
        .await;
        put(
            &self.s3,
            &self.bucket,
            &format!("ground-truth/{endpoint}/{hour}/labels.jsonl"),
            labels,
        )
        .await;
    }

    /// custom-metrics as the stack deploys it for one endpoint.
    fn deps(&self, endpoint: &str) -> Deps {
        let vars: std::collections::HashMap<String, String> = [
            ("CAPTURE_S3_URI", format!("s3://{}/capture", self.bucket)),
            (
                "GROUND_TRUTH_S3_URI",
                format!("s3://{}/ground-truth/{endpoint}", self.bucket),
            ),
            ("REPORT_S3_URI", format!("s3://{}/reports", self.bucket)),
            ("ENDPOINT_NAME", endpoint.to_owned()),
            ("PROBLEM_TYPE", "BinaryClassification".into()),
            ("MODEL_PACKAGE_GROUP_NAME", self.group.clone()),
            ("MONITORING_SCHEDULE_NAME", "quality".into()),
            ("DEDUP_QUIET_SECONDS", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Deps {
            registry: Arc::new(SageMaker::new(self.sm.clone())),
            serving: Arc::new(SageMaker::new(self.sm.clone())),
            store: Arc::new(S3::new(self.s3.clone())),
            metrics: Arc::new(CloudWatch::new(self.aws.cloudwatch())),
            events: Arc::new(EventBridge::new(self.aws.eventbridge())),
            config: Config::from_env(&vars).unwrap(),
            clock: system_clock(),
            executions: None,
            catalogue: None,
        }
    }
}

fn schedule_event(time: chrono::DateTime<Utc>) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/custom-metrics-schedule.json")).unwrap();
    e["time"] = json!(time.to_rfc3339());
    e
}

#[tokio::test]
async fn production_and_staging_are_each_checked_against_the_package_they_serve() {
    let s = setup().await;
    let (prod, staging) = (format!("{}-prod", s.group), format!("{}-staging", s.group));
    // Production still serves v1 (promoted earlier); staging serves v2, the latest approved.
    s.deploy(&prod, &s.v1, &format!("{}-1", s.group)).await;
    s.deploy(&staging, &s.v2, &format!("{}-2", s.group)).await;
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    s.seed(&prod, &w, 80).await;
    s.seed(&staging, &w, 80).await;

    let out = handle(schedule_event(now), &s.deps(&prod)).await.unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], s.v1.as_str(), "{b}");
    assert_eq!(b["source"], "endpoint");
    assert_eq!(b["served"]["modelPackage"], s.v1.as_str());
    assert_eq!(
        b["served"]["endpointConfigName"],
        format!("{prod}-{}-1", s.group)
    );
    let o = &out.windows[0];
    assert_eq!(
        (o.status.as_str(), o.violation_count),
        ("CompletedWithViolations", 1),
        "v1's accuracy ≥ 0.9 is violated: {o:?}"
    );

    let out = handle(schedule_event(now), &s.deps(&staging))
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], s.v2.as_str(), "{b}");
    assert_eq!(b["source"], "endpoint");
    assert_eq!(
        (
            out.windows[0].status.as_str(),
            out.windows[0].violation_count
        ),
        ("Completed", 0)
    );
    // Each endpoint's report, under its own folder, names its package.
    let report = |endpoint: &str| {
        format!(
            "reports/{endpoint}/AllTraffic/quality/{}/{}/summary.json",
            w.start.format("%Y/%m/%d/%H"),
            w.id()
        )
    };
    for (endpoint, arn) in [(&prod, &s.v1), (&staging, &s.v2)] {
        let body =
            s.s3.get_object()
                .bucket(&s.bucket)
                .key(report(endpoint))
                .send()
                .await
                .expect("summary.json")
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
        let summary: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(summary["baseline"]["modelPackageArn"], arn.as_str());
        assert_eq!(summary["target"]["endpointName"], endpoint.as_str());
    }
}

#[tokio::test]
async fn without_a_served_package_the_latest_approved_is_used_and_reported() {
    let s = setup().await;
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    // No such endpoint.
    let missing = format!("{}-missing", s.group);
    s.seed(&missing, &w, 40).await;
    let out = handle(schedule_event(now), &s.deps(&missing))
        .await
        .unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], s.v2.as_str(), "{b}");
    assert_eq!(b["source"], "latestApproved");
    assert_eq!(
        b["fallbackReason"],
        format!("endpoint {missing:?} does not exist")
    );
    // A model deployed outside the registry.
    let custom = format!("{}-custom", s.group);
    s.deploy_unregistered(&custom, &format!("{}-custom-model", s.group))
        .await;
    s.seed(&custom, &w, 40).await;
    let out = handle(schedule_event(now), &s.deps(&custom)).await.unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], s.v2.as_str(), "{b}");
    assert_eq!(b["source"], "latestApproved");
    assert!(
        b["fallbackReason"]
            .as_str()
            .unwrap()
            .contains("names no ModelPackageName"),
        "{b}"
    );
}

#[tokio::test]
async fn the_adapter_follows_the_chain_and_tells_what_is_missing() {
    let s = setup().await;
    let sm = SageMaker::new(s.sm.clone());
    let ep = format!("{}-ep", s.group);
    s.deploy(&ep, &s.v1, &format!("{}-m1", s.group)).await;
    let served = served_package(&sm, &ep, "AllTraffic")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.model_package, s.v1);
    assert_eq!(served.model_name, format!("{}-m1", s.group));
    assert_eq!(
        served_package(&sm, &ep, "Blue").await.unwrap(),
        Err(Unserved::VariantNotFound {
            config: served.endpoint_config_name.clone(),
            variant: "Blue".into(),
            variants: vec!["AllTraffic".into()],
        })
    );
    assert_eq!(
        served_package(&sm, "no-such-endpoint-x", "AllTraffic")
            .await
            .unwrap(),
        Err(Unserved::EndpointNotFound {
            endpoint: "no-such-endpoint-x".into()
        })
    );
    // The model deleted under the running endpoint (SageMaker allows it).
    s.sm.delete_model()
        .model_name(format!("{}-m1", s.group))
        .send()
        .await
        .expect("DeleteModel");
    assert_eq!(
        served_package(&sm, &ep, "AllTraffic").await.unwrap(),
        Err(Unserved::ModelNotFound {
            config: served.endpoint_config_name.clone(),
            model: format!("{}-m1", s.group),
        })
    );
}

#[tokio::test]
async fn during_an_update_the_config_still_serving_is_followed() {
    let s = setup().await;
    let prod = format!("{}-prod", s.group);
    s.deploy(&prod, &s.v1, &format!("{}-1", s.group)).await;
    // The config of v2, as a promotion would create it.
    let hosting = SageMaker::new(s.sm.clone());
    let model2 = format!("{}-2", s.group);
    hosting
        .ensure_model(&ModelSpec {
            name: model2.clone(),
            package_arn: s.v2.clone(),
            execution_role_arn: "arn:aws:iam::123456789012:role/sagemaker".into(),
        })
        .await
        .unwrap();
    let config2 = format!("{prod}-{model2}");
    hosting
        .ensure_endpoint_config(&EndpointConfigSpec {
            name: config2.clone(),
            model_name: model2,
            variant_name: "AllTraffic".into(),
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            capture: None,
        })
        .await
        .unwrap();
    // The update is in flight (Updating, v2's config pending): traffic is still v1's.
    emulator().set_sagemaker_status(json!({"endpoint": prod, "hold_updates": true}));
    let none = DeploymentSpec {
        blue_green: None,
        rollback_alarms: vec![],
    };
    hosting
        .update_endpoint(&prod, &config2, &none)
        .await
        .unwrap();
    let state = hosting.describe_endpoint(&prod).await.unwrap().unwrap();
    assert_eq!(
        (state.status.as_str(), state.pending_config_name.as_deref()),
        ("Updating", Some(config2.as_str()))
    );
    let now = Utc::now();
    let w = WindowRule::default().last_complete(now);
    s.seed(&prod, &w, 40).await;
    let out = handle(schedule_event(now), &s.deps(&prod)).await.unwrap();
    assert_eq!(
        out.baseline.as_ref().unwrap()["modelPackageArn"],
        s.v1.as_str()
    );
    // Once the update completes, v2's baselines are used.
    emulator().set_sagemaker_status(json!({"endpoint": prod, "status": "InService"}));
    let out = handle(schedule_event(now), &s.deps(&prod)).await.unwrap();
    let b = out.baseline.as_ref().unwrap();
    assert_eq!(b["modelPackageArn"], s.v2.as_str(), "{b}");
    assert_eq!(b["served"]["endpointConfigName"], config2.as_str());
}
