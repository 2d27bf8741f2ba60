use std::sync::Arc;

use custom_metrics::{Config, Deps, handle_any, system_clock};
use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
    stepfunctions::StepFunctions,
};
use driftloop::catalogue::source::{CatalogueSource, S3Catalogue};
use driftloop::config::report_init_error;
use driftloop::control::Gate;
use driftloop::{aws::Aws, config::ProcessEnv};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    // A bad environment fails the invocation with Permanent.Configuration naming the variable
    // (the runtime API's init-error path), not with a bare exit.
    let (config, gate) = Config::from_env(&ProcessEnv)
        .and_then(|config| Ok((config, Gate::from_env(&ProcessEnv)?)))
        .map_err(report_init_error)?;
    let aws = Aws::from_env().await;
    let sagemaker = SageMaker::new(aws.sagemaker());
    let deps = Deps {
        registry: Arc::new(sagemaker.clone()),
        serving: Arc::new(sagemaker),
        store: Arc::new(S3::new(aws.s3())),
        metrics: Arc::new(CloudWatch::new(aws.cloudwatch())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        executions: config
            .scale_out
            .state_machine_arn
            .is_some()
            .then(|| Arc::new(StepFunctions::new(aws.stepfunctions())) as _),
        // Read per invocation through the S3 adapter's conditional-read port (with its ETag).
        catalogue: config.catalogue.clone().map(|uri| {
            Arc::new(S3Catalogue::new(Arc::new(S3::new(aws.s3())), uri)) as Arc<dyn CatalogueSource>
        }),
        config,
        clock: system_clock(),
    };
    let (gate, deps) = (&gate, &deps);
    // Control requests only through the control bus (driftloop::control; `CONTROL_BUS_NAME` names
    // it, unset: no gate).
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            let payload = gate.admit(event.payload).map_err(Diagnostic::from)?;
            handle_any(payload, deps).await.map_err(Diagnostic::from)
        },
    ))
    .await
}
