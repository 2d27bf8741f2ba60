use std::sync::Arc;

use deploy_on_approval::{Config, Deps, handle};
use driftloop::adapters::{
    application_autoscaling::ApplicationAutoScaling, cloudwatch::CloudWatch,
    eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::{aws::Aws, config::ProcessEnv};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    let config = Config::from_env(&ProcessEnv)?;
    let aws = Aws::from_env().await;
    let sagemaker = Arc::new(SageMaker::new(aws.sagemaker()));
    let deps = Deps {
        registry: sagemaker.clone(),
        hosting: sagemaker,
        alarms: Arc::new(CloudWatch::new(aws.cloudwatch())),
        scaling: Arc::new(ApplicationAutoScaling::new(aws.application_autoscaling())),
        store: Arc::new(S3::new(aws.s3())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        config,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handle(event.payload, &deps)
    }))
    .await
}
