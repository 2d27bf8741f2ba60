use std::sync::Arc;

use custom_metrics::{Config, Deps, handle, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::{aws::Aws, config::ProcessEnv};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    let config = Config::from_env(&ProcessEnv)?;
    let aws = Aws::from_env().await;
    let sagemaker = SageMaker::new(aws.sagemaker());
    let deps = Deps {
        registry: Arc::new(sagemaker.clone()),
        serving: Arc::new(sagemaker),
        store: Arc::new(S3::new(aws.s3())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        config,
        clock: system_clock(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handle(event.payload, &deps)
    }))
    .await
}
