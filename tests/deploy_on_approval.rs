//! deploy-on-approval against the emulator: SageMaker hosting, CloudWatch alarms (over CBOR), S3
//! and EventBridge through the real adapters.

use std::sync::Arc;

use aws_sdk_cloudwatch::types::ComparisonOperator;
use deploy_on_approval::{Config, Deps, handle};
use driftloop::adapters::{
    application_autoscaling::ApplicationAutoScaling, cloudwatch::CloudWatch,
    eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::error::Classify;
use driftloop_tests::seed::{create_group, create_package, set_approval};
use driftloop_tests::{aws, emulator, unique};
use serde_json::{Value, json};

struct Setup {
    deps: Deps,
    sm: aws_sdk_sagemaker::Client,
    cw: aws_sdk_cloudwatch::Client,
    group: String,
    staging: String,
    prod: String,
}

async fn setup(extra: &[(&str, String)]) -> Setup {
    let aws = aws().await;
    let group = unique("deploy");
    let (staging, prod) = (format!("{group}-staging"), format!("{group}-prod"));
    let mut vars: std::collections::HashMap<String, String> = [
        ("MODEL_PACKAGE_GROUP_NAME", group.clone()),
        (
            "SAGEMAKER_EXECUTION_ROLE_ARN",
            "arn:aws:iam::123456789012:role/sagemaker".into(),
        ),
        ("STAGING_ENDPOINT_NAME", staging.clone()),
        ("PRODUCTION_ENDPOINT_NAME", prod.clone()),
        ("PRODUCTION_INSTANCE_TYPE", "ml.c5.xlarge".into()),
        ("PRODUCTION_INSTANCE_COUNT", "2".into()),
        ("PRODUCTION_DEPLOYMENT", "CANARY:10".into()),
        (
            "DATA_CAPTURE_S3_URI",
            "s3://driftloop-capture/capture".into(),
        ),
        ("DATA_CAPTURE_SAMPLING_PERCENTAGE", "25".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let sm = aws.sagemaker();
    create_group(&sm, &group).await;
    let deps = Deps {
        registry: Arc::new(SageMaker::new(sm.clone())),
        hosting: Arc::new(SageMaker::new(sm.clone())),
        alarms: Arc::new(CloudWatch::new(aws.cloudwatch())),
        scaling: Arc::new(ApplicationAutoScaling::new(aws.application_autoscaling())),
        store: Arc::new(S3::new(aws.s3())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        dashboards: Arc::new(CloudWatch::new(aws.cloudwatch())),
        catalogue: None,
        config: Config::from_env(&vars).unwrap(),
    };
    Setup {
        deps,
        sm,
        cw: aws.cloudwatch(),
        group,
        staging,
        prod,
    }
}

fn approval_event(group: &str, arn: &str, status: &str) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/deploy-package-approved.json")).unwrap();
    e["detail"]["ModelPackageGroupName"] = json!(group);
    e["detail"]["ModelPackageArn"] = json!(arn);
    e["detail"]["ModelApprovalStatus"] = json!(status);
    e
}

impl Setup {
    /// The package ARN an endpoint serves, read back through DescribeEndpoint → config → model.
    async fn serving(
        &self,
        endpoint: &str,
    ) -> (
        String,
        aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput,
    ) {
        let ep = self
            .sm
            .describe_endpoint()
            .endpoint_name(endpoint)
            .send()
            .await
            .unwrap();
        let cfg = self
            .sm
            .describe_endpoint_config()
            .endpoint_config_name(ep.endpoint_config_name().unwrap())
            .send()
            .await
            .unwrap();
        let model_name = cfg.production_variants()[0]
            .model_name()
            .unwrap()
            .to_owned();
        let model = self
            .sm
            .describe_model()
            .model_name(&model_name)
            .send()
            .await
            .unwrap();
        let arn = model
            .primary_container()
            .and_then(|c| c.model_package_name())
            .unwrap_or_default()
            .to_owned();
        (arn, cfg)
    }
}

#[tokio::test]
async fn approve_update_reject_replay_promote() {
    let s = setup(&[]).await;
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;

    // approve v1 → staging created with data capture
    let out = handle(approval_event(&s.group, &v1, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "created", "{out:?}");
    let (serving, cfg) = s.serving(&s.staging).await;
    assert_eq!(serving, v1);
    let capture = cfg.data_capture_config().expect("data capture configured");
    assert_eq!(capture.enable_capture(), Some(true));
    assert_eq!(capture.initial_sampling_percentage(), Some(25));
    assert_eq!(
        capture.destination_s3_uri(),
        Some("s3://driftloop-capture/capture")
    );
    assert_eq!(out.stages[1].action, "nothing_to_deploy");

    // approve v2 → updated
    let v2 = create_package(&s.sm, &s.group, "Approved", 2, true).await;
    let out = handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(s.serving(&s.staging).await.0, v2);

    // duplicate delivery → no second update
    let out = handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "up_to_date");
    let modified =
        s.sm.describe_endpoint()
            .endpoint_name(&s.staging)
            .send()
            .await
            .unwrap()
            .last_modified_time()
            .cloned();

    // replay of v1's approval after v2 → no change
    let out = handle(approval_event(&s.group, &v1, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "up_to_date");
    let ep =
        s.sm.describe_endpoint()
            .endpoint_name(&s.staging)
            .send()
            .await
            .unwrap();
    assert_eq!(ep.last_modified_time().cloned(), modified);

    // reject v2 → back to v1
    set_approval(&s.sm, &v2, "Rejected").await;
    let out = handle(approval_event(&s.group, &v2, "Rejected"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(s.serving(&s.staging).await.0, v1);

    // promote v1 → production created with its own config
    let mut promo: Value =
        serde_json::from_str(include_str!("../events/deploy-promotion.json")).unwrap();
    promo["detail"]["ModelPackageGroupName"] = json!(s.group);
    promo["detail"]["ModelPackageArn"] = json!(v1);
    let out = handle(promo, &s.deps).await.unwrap();
    assert_eq!(out.promoted.as_deref(), Some(v1.as_str()));
    assert_eq!(out.stages[1].action, "created");
    let (serving, cfg) = s.serving(&s.prod).await;
    assert_eq!(serving, v1);
    let variant = &cfg.production_variants()[0];
    assert_eq!(variant.initial_instance_count(), Some(2));
    assert_eq!(
        variant.instance_type().map(|t| t.as_str()),
        Some("ml.c5.xlarge")
    );
    let pkg =
        s.sm.describe_model_package()
            .model_package_name(&v1)
            .send()
            .await
            .unwrap();
    let meta = pkg.customer_metadata_properties().unwrap();
    assert!(meta.contains_key("driftloop:promoted:production"));
    assert_eq!(
        meta.get("ModelName").map(String::as_str),
        Some(format!("{}-model-1", s.group).as_str()),
        "metadata kept"
    );
}

#[tokio::test]
async fn alarm_threshold_follows_the_deployed_package() {
    let aws = aws().await;
    let alarm = unique("f2-alarm");
    let s = setup(&[
        ("STAGING_ALARM_NAME", alarm.clone()),
        ("STAGING_ALARM_METRIC", "f2".into()),
    ])
    .await;
    s.cw.put_metric_alarm()
        .alarm_name(&alarm)
        .alarm_description("model quality")
        .namespace("aws/sagemaker/Endpoints/model-metrics")
        .metric_name("f2")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("Endpoint")
                .value(&s.staging)
                .build(),
        )
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(3600)
        .evaluation_periods(1)
        .threshold(0.5)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data("notBreaching")
        .alarm_actions("arn:aws:sns:us-east-1:123456789012:alerts")
        .send()
        .await
        .unwrap();
    let bucket = "driftloop-baselines";
    let s3 = aws.s3();
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let key = format!("{}/constraints.json", s.group);
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(br#"{"version":0.0,"binary_classification_constraints":{"f2":{"threshold":0.72,"comparison_operator":"LessThanThreshold"}}}"#.to_vec().into())
        .send()
        .await
        .unwrap();
    // A package whose model-quality drift-check baseline points at those constraints.
    let with_mq = driftloop_tests::seed::create_package_with_model_quality(
        &s.sm,
        &s.group,
        2,
        &format!("s3://{bucket}/{key}"),
    )
    .await;
    let out = handle(approval_event(&s.group, &with_mq, "Approved"), &s.deps)
        .await
        .unwrap();
    let update = out.stages[0].alarm.as_ref().expect("alarm followed");
    assert_eq!(update.error, None);
    assert_eq!(
        (update.threshold, update.previous_threshold),
        (Some(0.72), Some(0.5))
    );
    let described =
        s.cw.describe_alarms()
            .alarm_names(&alarm)
            .send()
            .await
            .unwrap();
    let a = &described.metric_alarms()[0];
    assert_eq!(a.threshold(), Some(0.72));
    assert_eq!(
        a.comparison_operator(),
        Some(&ComparisonOperator::LessThanThreshold)
    );
    assert_eq!(
        a.alarm_description(),
        Some("model quality"),
        "the rest of the alarm is kept"
    );
    assert_eq!(a.treat_missing_data(), Some("notBreaching"));
    assert_eq!(a.period(), Some(3600));
    assert_eq!(
        a.alarm_actions(),
        ["arn:aws:sns:us-east-1:123456789012:alerts"]
    );
    assert_eq!(a.dimensions()[0].value(), Some(s.staging.as_str()));
}

#[tokio::test]
async fn busy_endpoint_is_a_retryable_error_then_the_redelivery_deploys() {
    let s = setup(&[]).await;
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;
    handle(approval_event(&s.group, &v1, "Approved"), &s.deps)
        .await
        .unwrap();
    emulator().set_sagemaker_status(json!({"endpoint": s.staging, "status": "Updating"}));
    let v2 = create_package(&s.sm, &s.group, "Approved", 2, true).await;
    let err = handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable.EndpointBusy"
    );
    assert_eq!(
        s.serving(&s.staging).await.0,
        v1,
        "a busy endpoint is not touched"
    );
    emulator().set_sagemaker_status(json!({"endpoint": s.staging, "status": "InService"}));
    let out = handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "updated");
    assert_eq!(s.serving(&s.staging).await.0, v2);
}

#[tokio::test]
async fn bad_event_is_permanent() {
    let s = setup(&[]).await;
    let err = handle(json!({"hello": "world"}), &s.deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.BadEvent");
}

// --- issue 14: failures against the emulator ----------------------------------------------------

fn in_service(endpoint: &str) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/deploy-endpoint-in-service.json")).unwrap();
    e["detail"]["EndpointName"] = json!(endpoint);
    e["detail"]["EndpointStatus"] = json!("IN_SERVICE");
    e
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Setup {
    fn record_events(&mut self) -> Arc<driftloop::doubles::RecordingEvents> {
        let events = Arc::new(driftloop::doubles::RecordingEvents::default());
        self.deps.events = events.clone();
        events
    }

    async fn endpoint(
        &self,
        name: &str,
    ) -> aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput {
        self.sm
            .describe_endpoint()
            .endpoint_name(name)
            .send()
            .await
            .unwrap()
    }

    async fn metadata(&self, arn: &str, key: &str) -> Option<String> {
        let p = self
            .sm
            .describe_model_package()
            .model_package_name(arn)
            .send()
            .await
            .unwrap();
        p.customer_metadata_properties()
            .and_then(|m| m.get(key))
            .cloned()
    }
}

#[tokio::test]
async fn a_failed_update_ends_in_one_failure_event_and_no_further_update() {
    let mut s = setup(&[]).await;
    let events = s.record_events();
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;
    handle(approval_event(&s.group, &v1, "Approved"), &s.deps)
        .await
        .unwrap();
    let reason = "Failed to download model data for container \"container_1\"";
    emulator().set_sagemaker_status(
        json!({"endpoint": s.staging, "next_update": "fail", "failure_reason": reason}),
    );
    let v2 = create_package(&s.sm, &s.group, "Approved", 2, true).await;
    let out = handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "updated");
    let after_update = s.endpoint(&s.staging).await;
    assert_eq!(after_update.failure_reason(), Some(reason));
    // SageMaker's endpoint-state event, delivered several times, and the approval redelivered.
    for _ in 0..3 {
        handle(in_service(&s.staging), &s.deps).await.unwrap();
    }
    let out = handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(out.stages[0].action, "held", "{:?}", out.stages[0]);
    let failed = events.of_type("Deployment Failed");
    assert_eq!(failed.len(), 1, "one failure event");
    assert_eq!(failed[0].detail["reason"], reason);
    assert_eq!(failed[0].detail["packageArn"], v2.as_str());
    let now = s.endpoint(&s.staging).await;
    assert_eq!(
        now.last_modified_time(),
        after_update.last_modified_time(),
        "no further UpdateEndpoint"
    );
    assert_eq!(s.serving(&s.staging).await.0, v1);
    let rec = s
        .metadata(&v2, "driftloop:deploy:staging")
        .await
        .expect("outcome recorded on the package");
    assert!(rec.starts_with("failed|") && rec.ends_with(reason), "{rec}");
}

#[tokio::test]
async fn a_rolled_back_update_ends_in_one_rollback_event_and_no_further_update() {
    let mut s = setup(&[("PRODUCTION_ROLLBACK_ALARMS", "demo-5xx".to_owned())]).await;
    let events = s.record_events();
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;
    let mut promo: Value =
        serde_json::from_str(include_str!("../events/deploy-promotion.json")).unwrap();
    promo["detail"]["ModelPackageGroupName"] = json!(s.group);
    promo["detail"]["ModelPackageArn"] = json!(v1);
    handle(promo.clone(), &s.deps).await.unwrap();
    assert_eq!(s.serving(&s.prod).await.0, v1);
    emulator().set_sagemaker_status(json!({"endpoint": s.prod, "next_update": "roll_back",
        "failure_reason": "Deployment rolled back: alarm demo-5xx went to ALARM"}));
    let v2 = create_package(&s.sm, &s.group, "Approved", 2, true).await;
    promo["detail"]["ModelPackageArn"] = json!(v2);
    let out = handle(promo.clone(), &s.deps).await.unwrap();
    assert_eq!(out.stages[1].action, "updated");
    let ep = s.endpoint(&s.prod).await;
    let rollback = ep
        .last_deployment_config()
        .and_then(|d| d.auto_rollback_configuration())
        .expect("the rollback alarms went with the update");
    assert_eq!(rollback.alarms()[0].alarm_name(), Some("demo-5xx"));
    for _ in 0..3 {
        handle(in_service(&s.prod), &s.deps).await.unwrap();
    }
    let rolled = events.of_type("Deployment Rolled Back");
    assert_eq!(rolled.len(), 1, "one rollback event");
    assert_eq!(rolled[0].detail["stage"], "production");
    assert!(events.of_type("Deployment Failed").is_empty());
    assert_eq!(
        s.endpoint(&s.prod).await.last_modified_time(),
        ep.last_modified_time(),
        "no further UpdateEndpoint"
    );
    assert_eq!(s.serving(&s.prod).await.0, v1);
    assert!(
        s.metadata(&v2, "driftloop:deploy:production")
            .await
            .unwrap()
            .starts_with("rolledBack|")
    );
    // An explicit request retries it (this time it lands).
    let out = handle(promo, &s.deps).await.unwrap();
    assert_eq!(out.stages[1].action, "updated");
    assert_eq!(s.serving(&s.prod).await.0, v2);
}

#[tokio::test]
async fn a_stale_registry_read_after_a_rejection_does_not_keep_the_rejected_package() {
    let s = setup(&[]).await;
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;
    let v2 = create_package(&s.sm, &s.group, "Approved", 2, true).await;
    handle(approval_event(&s.group, &v2, "Approved"), &s.deps)
        .await
        .unwrap();
    assert_eq!(s.serving(&s.staging).await.0, v2);
    // The rejection's event arrives; the registry read still shows v2 approved (not updated).
    for _ in 0..2 {
        let mut rejected = approval_event(&s.group, &v2, "Rejected");
        rejected["time"] = json!(now_ms() + 1000);
        handle(rejected, &s.deps).await.unwrap();
        assert_eq!(s.serving(&s.staging).await.0, v1);
    }
}

#[tokio::test]
async fn production_converges_while_event_publishing_fails() {
    let s = setup(&[]).await;
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;
    // Every PutEvents of the staging outcome fails (the SDK's retries included).
    emulator().inject_fault("PutEvents", 20, "500", &s.staging);
    let mut promo: Value =
        serde_json::from_str(include_str!("../events/deploy-promotion.json")).unwrap();
    promo["detail"]["ModelPackageGroupName"] = json!(s.group);
    promo["detail"]["ModelPackageArn"] = json!(v1);
    let err = handle(promo, &s.deps).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        emulator().fault_remaining(&s.staging).unwrap() < 20,
        "the fault was hit"
    );
    assert_eq!(s.serving(&s.staging).await.0, v1);
    assert_eq!(
        s.serving(&s.prod).await.0,
        v1,
        "production converged although staging's event was not published"
    );
}

#[tokio::test]
async fn production_autoscaling_is_registered_for_the_served_variant() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let s = setup(&[
        ("PRODUCTION_AUTOSCALING_MIN_CAPACITY", "2".to_owned()),
        ("PRODUCTION_AUTOSCALING_MAX_CAPACITY", "5".to_owned()),
        ("PRODUCTION_AUTOSCALING_TARGET_INVOCATIONS", "80".to_owned()),
    ])
    .await;
    let aas = aws().await.application_autoscaling();
    let v1 = create_package(&s.sm, &s.group, "Approved", 1, true).await;
    let mut promo: Value =
        serde_json::from_str(include_str!("../events/deploy-promotion.json")).unwrap();
    promo["detail"]["ModelPackageGroupName"] = json!(s.group);
    promo["detail"]["ModelPackageArn"] = json!(v1);
    let out = handle(promo.clone(), &s.deps).await.unwrap();
    assert_eq!(out.stages[1].scaling.as_ref().unwrap().error, None);
    let id = format!("endpoint/{}/variant/AllTraffic", s.prod);
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(&id)
        .send()
        .await
        .unwrap();
    let t = &targets.scalable_targets()[0];
    assert_eq!(
        t.scalable_dimension(),
        &ScalableDimension::SageMakerVariantDesiredInstanceCount
    );
    assert_eq!((t.min_capacity(), t.max_capacity()), (2, 5));
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(&id)
        .send()
        .await
        .unwrap();
    let p = &policies.scaling_policies()[0];
    let tt = p.target_tracking_scaling_policy_configuration().unwrap();
    assert_eq!(tt.target_value(), 80.0);
    assert_eq!(
        tt.predefined_metric_specification()
            .unwrap()
            .predefined_metric_type()
            .as_str(),
        "SageMakerVariantInvocationsPerInstance"
    );
    // A new model keeps the registration.
    let v2 = create_package(&s.sm, &s.group, "Approved", 2, true).await;
    promo["detail"]["ModelPackageArn"] = json!(v2);
    handle(promo, &s.deps).await.unwrap();
    assert_eq!(s.serving(&s.prod).await.0, v2);
    let after = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(after.scalable_targets().len(), 1);
    assert_eq!(after.scalable_targets()[0].min_capacity(), 2);
}

/// Issue 15: a catalogue model's alarm is created whole by its deployment (PutMetricAlarm with
/// tags, through the real adapter), left alone by a reconcile when unchanged, and the models
/// dashboard is written once and then only when its body changes (GetDashboard/PutDashboard).
#[tokio::test]
async fn a_catalogue_models_alarm_and_the_models_dashboard_through_cloudwatch() {
    use driftloop::catalogue::source::InMemoryCatalogue;
    use driftloop::deploy::alarm::AlarmChange;
    let aws = aws().await;
    let dashboard = unique("models-dashboard");
    let mut s = setup(&[
        ("DASHBOARD_NAME", dashboard.clone()),
        (
            "ALARM_ARN_PREFIX",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:".into(),
        ),
    ])
    .await;
    let alarm = unique("loop.m-f2");
    let catalogue = json!({"version": 1, "models": [{
        "group": s.group, "problem": {"type": "BinaryClassification"},
        "capture": {"destinationS3Uri": "s3://driftloop-capture/capture"},
        "stages": {"staging": {"endpointName": s.staging}},
        "monitoring": {"stages": ["staging"], "groundTruthS3Uri": "s3://driftloop-capture/labels", "windowMinutes": 360},
        "alarms": [{"name": alarm, "metric": "f2", "stage": "staging", "threshold": "servedPackage", "retrain": false}]
    }]});
    s.deps.catalogue = Some(Arc::new(
        InMemoryCatalogue::new(catalogue.to_string()).at("s3://driftloop-config/catalogue.json"),
    ));
    let bucket = "driftloop-baselines";
    let s3 = aws.s3();
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let key = format!("{}/managed-constraints.json", s.group);
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(br#"{"binary_classification_constraints":{"f2":{"threshold":0.66,"comparison_operator":"LessThanThreshold"}}}"#.to_vec().into())
        .send()
        .await
        .unwrap();
    let pkg = driftloop_tests::seed::create_package_with_model_quality(
        &s.sm,
        &s.group,
        1,
        &format!("s3://{bucket}/{key}"),
    )
    .await;
    let out = handle(approval_event(&s.group, &pkg, "Approved"), &s.deps)
        .await
        .unwrap();
    let update = out.stages[0].alarm.as_ref().expect("the alarm followed");
    assert_eq!(update.error, None, "{update:?}");
    assert_eq!(update.change, Some(AlarmChange::Created));
    let described =
        s.cw.describe_alarms()
            .alarm_names(&alarm)
            .send()
            .await
            .unwrap();
    let a = &described.metric_alarms()[0];
    assert_eq!(a.threshold(), Some(0.66));
    assert_eq!(a.namespace(), Some("aws/sagemaker/Endpoints/model-metrics"));
    assert_eq!(a.period(), Some(21_600), "the model's 6-hour window");
    assert_eq!(a.treat_missing_data(), Some("ignore"));
    let dims: Vec<_> = a
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap(), d.value().unwrap()))
        .collect();
    assert!(dims.contains(&("Endpoint", s.staging.as_str())), "{dims:?}");
    assert!(
        dims.contains(&("MonitoringSchedule", "custom-metrics")),
        "{dims:?}"
    );
    let tags =
        s.cw.list_tags_for_resource()
            .resource_arn(a.alarm_arn().unwrap())
            .send()
            .await
            .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("driftloop:model") && t.value() == Some(s.group.as_str())),
        "{tags:?}"
    );
    // The daily reconcile: the alarm is as it should be; the dashboard is written once.
    let daily = json!({"version": "0", "id": "d", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-12-02T03:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}});
    let r = handle(daily.clone(), &s.deps)
        .await
        .unwrap()
        .reconcile
        .unwrap();
    assert_eq!(
        r.alarms[0].update.as_ref().unwrap().change,
        Some(AlarmChange::Unchanged),
        "{r:?}"
    );
    assert!(r.dashboard.as_ref().unwrap().written, "{r:?}");
    let body =
        s.cw.get_dashboard()
            .dashboard_name(&dashboard)
            .send()
            .await
            .unwrap();
    let body: Value = serde_json::from_str(body.dashboard_body().unwrap()).unwrap();
    assert!(
        body.to_string().contains(&format!("alarm:{alarm}")),
        "{body}"
    );
    let r = handle(daily, &s.deps).await.unwrap().reconcile.unwrap();
    assert!(
        !r.dashboard.unwrap().written,
        "unchanged body: no PutDashboard"
    );
}
