use std::sync::Arc;

use deploy_on_approval::{Config, Deps, handle};
use driftloop::adapters::{
    application_autoscaling::ApplicationAutoScaling, cloudwatch::CloudWatch,
    eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
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
    let sagemaker = Arc::new(SageMaker::new(aws.sagemaker()));
    let cloudwatch = Arc::new(CloudWatch::new(aws.cloudwatch()));
    let deps = Deps {
        registry: sagemaker.clone(),
        hosting: sagemaker,
        alarms: cloudwatch.clone(),
        metrics: cloudwatch.clone(),
        dashboards: cloudwatch,
        scaling: Arc::new(ApplicationAutoScaling::new(aws.application_autoscaling())),
        store: Arc::new(S3::new(aws.s3())),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        // Read per invocation through the S3 adapter's conditional-read port (with its ETag).
        // Every read also checks the stack's naming convention (CATALOGUE_NAME_PREFIX, ...).
        catalogue: config.catalogue.clone().map(|uri| {
            Arc::new(
                S3Catalogue::new(Arc::new(S3::new(aws.s3())), uri)
                    .with_convention(config.convention.clone()),
            ) as Arc<dyn CatalogueSource>
        }),
        config,
    };
    let (gate, deps) = (&gate, &deps);
    // Control requests only through the control bus (driftloop::control; `CONTROL_BUS_NAME` names
    // it, unset: no gate).
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            let payload = gate.admit(event.payload).map_err(Diagnostic::from)?;
            handle(payload, deps).await.map_err(Diagnostic::from)
        },
    ))
    .await
}
