use std::sync::Arc;

use driftloop::adapters::{cloudwatch::CloudWatch, eventbridge::EventBridge, sagemaker::SageMaker};
use driftloop::{aws::Aws, config::ProcessEnv};
use lambda_runtime::{LambdaEvent, service_fn};
use retrain_on_alarm::{Config, Deps, handle, system_clock};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    let config = Config::from_env(&ProcessEnv)?;
    let aws = Aws::from_env().await;
    let deps = Deps {
        pipelines: Arc::new(SageMaker::new(aws.sagemaker())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        config,
        clock: system_clock(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handle(event.payload, &deps)
    }))
    .await
}
