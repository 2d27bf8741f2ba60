//! Issue 15 on the emulator: one deployment, three model groups with different problem types in
//! one catalogue (an S3 object read through the real S3 adapter). Approving a package of group B
//! deploys only B's endpoints; an alarm of A starts only A's pipeline; C is touched by neither;
//! a fourth model uploaded to the catalogue is served on the next invocation, with nothing
//! restarted or rebuilt.

use std::collections::HashMap;
use std::sync::Arc;

use deploy_on_approval as deploy;
use driftloop::adapters::{
    application_autoscaling::ApplicationAutoScaling, cloudwatch::CloudWatch,
    eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::catalogue::source::{CatalogueSource, S3Catalogue};
use driftloop::storage::S3Uri;
use driftloop_tests::seed::{create_group, create_package};
use driftloop_tests::{aws, unique};
use retrain_on_alarm as retrain;
use serde_json::{Value, json};

const APPROVED: &str = include_str!("../events/deploy-package-approved.json");
const ALARM: &str = include_str!("../events/retrain-alarm-eventbridge.json");
const PIPELINE_DEFINITION: &str = r#"{"Version": "2020-12-01", "Metadata": {}, "Parameters": [{"Name": "TriggerAlarm", "Type": "String", "DefaultValue": "none"}, {"Name": "Epochs", "Type": "String", "DefaultValue": "1"}], "Steps": []}"#;

/// One catalogue entry: `group` with a staging and a production endpoint, one alarm that
/// retrains its pipeline.
fn model(group: &str, problem: &str, capture: &str) -> Value {
    json!({
        "group": group,
        "problem": {"type": problem},
        "capture": {"destinationS3Uri": capture, "samplingPercentage": 20},
        "stages": {
            "staging": {"endpointName": format!("{group}-staging"), "instanceType": "ml.m5.xlarge"},
            "production": {"endpointName": format!("{group}-prod"), "instanceCount": 2}
        },
        "monitoring": {
            "stages": ["production"],
            "groundTruthS3Uri": format!("{capture}/labels/{group}")
        },
        "alarms": [{"name": format!("{group}-drift"), "metric": "feature_baseline_drift_age", "threshold": "external"}],
        "retraining": {
            "pipeline": format!("{group}-build"),
            "parameters": {"Epochs": 3},
            "contextParameters": {"alarm": "TriggerAlarm"}
        }
    })
}

struct World {
    sm: aws_sdk_sagemaker::Client,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    capture: String,
    deploy: deploy::Deps,
    retrain: retrain::Deps,
    models: Vec<Value>,
}

impl World {
    async fn upload(&self) {
        let doc = json!({"version": 1, "models": self.models});
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .body(doc.to_string().into_bytes().into())
            .send()
            .await
            .expect("PutObject catalogue");
    }

    /// A group with one approved package, and its pipeline.
    async fn add_model(&mut self, problem: &str) -> (String, String) {
        let group = unique("cat");
        create_group(&self.sm, &group).await;
        let arn = create_package(&self.sm, &group, "Approved", 1, false).await;
        self.sm
            .create_pipeline()
            .pipeline_name(format!("{group}-build"))
            .pipeline_definition(PIPELINE_DEFINITION)
            .role_arn("arn:aws:iam::123456789012:role/driftloop-pipeline")
            .send()
            .await
            .expect("CreatePipeline");
        self.models.push(model(&group, problem, &self.capture));
        (group, arn)
    }

    async fn endpoint_exists(&self, name: &str) -> bool {
        self.sm
            .describe_endpoint()
            .endpoint_name(name)
            .send()
            .await
            .is_ok()
    }

    async fn executions(&self, group: &str) -> Vec<String> {
        self.sm
            .list_pipeline_executions()
            .pipeline_name(format!("{group}-build"))
            .send()
            .await
            .expect("ListPipelineExecutions")
            .pipeline_execution_summaries()
            .iter()
            .map(|s| s.pipeline_execution_arn().unwrap_or_default().to_owned())
            .collect()
    }

    async fn approve(&self, group: &str, arn: &str) -> deploy::Output {
        let mut e: Value = serde_json::from_str(APPROVED).unwrap();
        e["detail"]["ModelPackageGroupName"] = json!(group);
        e["detail"]["ModelPackageArn"] = json!(arn);
        deploy::handle(e, &self.deploy).await.expect("deploy")
    }

    async fn alarm(&self, name: &str) -> retrain::Output {
        let mut e: Value = serde_json::from_str(ALARM).unwrap();
        e["detail"]["alarmName"] = json!(name);
        e["resources"] = json!([format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
        )]);
        retrain::handle(e, &self.retrain).await.expect("retrain")
    }
}

async fn world() -> World {
    let aws = aws().await;
    let bucket = unique("catalogue");
    aws.s3()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let key = "driftloop/catalogue.json".to_owned();
    let uri = format!("s3://{bucket}/{key}");
    let source = || -> Option<Arc<dyn CatalogueSource>> {
        Some(Arc::new(S3Catalogue::new(
            Arc::new(S3::new(aws.s3())),
            S3Uri::parse(&uri).unwrap(),
        )))
    };
    let env: HashMap<String, String> = [
        ("CATALOGUE_S3_URI", uri.as_str()),
        (
            "SAGEMAKER_EXECUTION_ROLE_ARN",
            "arn:aws:iam::123456789012:role/sagemaker",
        ),
        ("MAX_TRIGGER_AGE", "0"),
        ("COOLDOWN", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sm = aws.sagemaker();
    let deploy = deploy::Deps {
        registry: Arc::new(SageMaker::new(sm.clone())),
        hosting: Arc::new(SageMaker::new(sm.clone())),
        alarms: Arc::new(CloudWatch::new(aws.cloudwatch())),
        scaling: Arc::new(ApplicationAutoScaling::new(aws.application_autoscaling())),
        store: Arc::new(S3::new(aws.s3())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        dashboards: Arc::new(CloudWatch::new(aws.cloudwatch())),
        catalogue: source(),
        config: deploy::Config::from_env(&env).expect("deploy config"),
    };
    let retrain = retrain::Deps {
        pipelines: Arc::new(SageMaker::new(sm.clone())),
        leases: Arc::new(S3::new(aws.s3())),
        alarms: Arc::new(CloudWatch::new(aws.cloudwatch())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        catalogue: source(),
        config: retrain::Config::from_env(&env).expect("retrain config"),
        clock: retrain::system_clock(),
    };
    World {
        sm,
        s3: aws.s3(),
        capture: format!("s3://{bucket}/capture"),
        bucket,
        key,
        deploy,
        retrain,
        models: Vec::new(),
    }
}

#[tokio::test]
async fn three_models_one_deployment_and_a_fourth_without_a_stack_change() {
    let mut w = world().await;
    let (a, _) = w.add_model("BinaryClassification").await;
    let (b, b_arn) = w.add_model("Regression").await;
    let (c, _) = w.add_model("MulticlassClassification").await;
    w.upload().await;

    // Approving B's package deploys B's staging endpoint, with B's settings, and nothing else.
    let out = w.approve(&b, &b_arn).await;
    assert_eq!(out.group, b);
    assert_eq!(out.ignored, None);
    assert!(
        out.settings
            .as_deref()
            .unwrap()
            .starts_with("catalogue s3://"),
        "{out:?}"
    );
    assert_eq!(out.stages[0].action, "created");
    assert_eq!(out.stages[1].action, "nothing_to_deploy");
    assert!(w.endpoint_exists(&format!("{b}-staging")).await);
    for other in [&a, &c] {
        assert!(!w.endpoint_exists(&format!("{other}-staging")).await);
        assert!(!w.endpoint_exists(&format!("{other}-prod")).await);
    }
    let ep =
        w.sm.describe_endpoint()
            .endpoint_name(format!("{b}-staging"))
            .send()
            .await
            .unwrap();
    let cfg =
        w.sm.describe_endpoint_config()
            .endpoint_config_name(ep.endpoint_config_name().unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(
        cfg.production_variants()[0]
            .instance_type()
            .map(|t| t.as_str().to_owned()),
        Some("ml.m5.xlarge".to_owned())
    );
    assert_eq!(
        cfg.data_capture_config()
            .and_then(|d| d.initial_sampling_percentage()),
        Some(20)
    );

    // A's alarm starts A's pipeline only, with A's parameters.
    let out = w.alarm(&format!("{a}-drift")).await;
    assert_eq!(out.model.as_ref().unwrap().group, a);
    assert_eq!(out.report.pipeline_name, Some(format!("{a}-build")));
    assert_eq!(w.executions(&a).await.len(), 1);
    assert!(w.executions(&b).await.is_empty());
    assert!(w.executions(&c).await.is_empty());

    // A group not in the catalogue is skipped, with the reason.
    let stranger = unique("cat");
    create_group(&w.sm, &stranger).await;
    let arn = create_package(&w.sm, &stranger, "Approved", 1, false).await;
    let out = w.approve(&stranger, &arn).await;
    let reason = out.ignored.expect("ignored");
    assert!(reason.contains("is not in the catalogue"), "{reason}");
    assert!(!w.endpoint_exists(&format!("{stranger}-staging")).await);

    // A fourth model: an upload, and the next invocations serve it.
    let (d, d_arn) = w.add_model("BinaryClassification").await;
    w.upload().await;
    let out = w.approve(&d, &d_arn).await;
    assert_eq!(out.ignored, None, "{out:?}");
    assert!(w.endpoint_exists(&format!("{d}-staging")).await);
    let out = w.alarm(&format!("{d}-drift")).await;
    assert_eq!(out.model.as_ref().unwrap().group, d);
    assert_eq!(w.executions(&d).await.len(), 1);
    assert_eq!(w.executions(&a).await.len(), 1, "A untouched");
    assert!(
        !w.endpoint_exists(&format!("{c}-staging")).await,
        "C untouched"
    );
}

#[tokio::test]
async fn a_broken_upload_fails_the_invocation_with_the_field_and_leaves_endpoints_alone() {
    let mut w = world().await;
    let (a, a_arn) = w.add_model("Regression").await;
    w.models[0]["stages"]["staging"]["instanceCount"] = json!(0);
    w.upload().await;
    let mut e: Value = serde_json::from_str(APPROVED).unwrap();
    e["detail"]["ModelPackageGroupName"] = json!(a);
    e["detail"]["ModelPackageArn"] = json!(a_arn);
    let err = deploy::handle(e, &w.deploy).await.unwrap_err();
    use driftloop::error::Classify;
    assert_eq!(err.error_type(), "Permanent.InvalidCatalogue");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "models[0] (group {a:?}).stages.staging.instanceCount: must be at least 1"
        )),
        "{msg}"
    );
    assert!(!w.endpoint_exists(&format!("{a}-staging")).await);
}
