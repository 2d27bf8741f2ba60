use std::sync::Arc;

use driftloop::config::report_init_error;
use driftloop::{adapters::sagemaker::SageMaker, aws::Aws, config::ProcessEnv};
use get_approved_model::{Config, Deps, handle};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    // A bad environment fails the invocation with Permanent.Configuration naming the variable
    // (the runtime API's init-error path), not with a bare exit.
    let config = Config::from_env(&ProcessEnv).map_err(report_init_error)?;
    let deps = Deps {
        registry: Arc::new(SageMaker::new(Aws::from_env().await.sagemaker())),
        config,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handle(event.payload, &deps)
    }))
    .await
}
