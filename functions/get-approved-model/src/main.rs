use std::sync::Arc;

use driftloop::{adapters::sagemaker::SageMaker, aws::Aws, config::ProcessEnv};
use get_approved_model::{Config, Deps, handle};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    let config = Config::from_env(&ProcessEnv)?;
    let deps = Deps {
        registry: Arc::new(SageMaker::new(Aws::from_env().await.sagemaker())),
        config,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handle(event.payload, &deps)
    }))
    .await
}
