use std::sync::Arc;

use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::{aws::Aws, config::ProcessEnv};
use lambda_runtime::{LambdaEvent, service_fn};
use retrain_on_alarm::{Config, Deps, LEASE_VAR, handle_event, system_clock};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    let config = Config::from_env(&ProcessEnv)?;
    if config.lease.is_none() {
        tracing::warn!(
            "{LEASE_VAR} is not set: two different triggers deciding at once can each start an execution"
        );
    }
    let aws = Aws::from_env().await;
    let cloudwatch = CloudWatch::new(aws.cloudwatch());
    let deps = Deps {
        pipelines: Arc::new(SageMaker::new(aws.sagemaker())),
        leases: Arc::new(S3::new(aws.s3())),
        alarms: Arc::new(cloudwatch.clone()),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(cloudwatch),
        config,
        clock: system_clock(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handle_event(event.payload, &deps)
    }))
    .await
}
