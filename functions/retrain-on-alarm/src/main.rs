use std::sync::Arc;

use driftloop::adapters::{
    cloudwatch::CloudWatch, eventbridge::EventBridge, s3::S3, sagemaker::SageMaker,
};
use driftloop::catalogue::source::{CatalogueSource, S3Catalogue, convention_from_env};
use driftloop::config::report_init_error;
use driftloop::control::Gate;
use driftloop::{aws::Aws, config::ProcessEnv};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use retrain_on_alarm::{Config, Deps, LEASE_VAR, handle_event, system_clock};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    driftloop::telemetry::init_tracing();
    // A bad environment fails the invocation with Permanent.Configuration naming the variable
    // (the runtime API's init-error path), not with a bare exit.
    let (config, gate) = Config::from_env(&ProcessEnv)
        .and_then(|config| Ok((config, Gate::from_env(&ProcessEnv)?)))
        .map_err(report_init_error)?;
    if config.lease.is_none() {
        tracing::warn!(
            "{LEASE_VAR} is not set: two different triggers deciding at once can each start an execution"
        );
    }
    // The stack's naming convention (`CATALOGUE_NAME_PREFIX`, `CATALOGUE_ALARM_PREFIX`): a
    // catalogue naming a pipeline or alarm outside it is invalid, naming the model and field.
    let convention = convention_from_env(&driftloop::config::Env::new(&ProcessEnv))
        .map_err(report_init_error)?;
    let aws = Aws::from_env().await;
    let cloudwatch = CloudWatch::new(aws.cloudwatch());
    let deps = Deps {
        pipelines: Arc::new(SageMaker::new(aws.sagemaker())),
        leases: Arc::new(S3::new(aws.s3())),
        alarms: Arc::new(cloudwatch.clone()),
        events: Arc::new(EventBridge::new(aws.eventbridge())),
        metrics: Arc::new(cloudwatch),
        // Read per invocation through the S3 adapter's conditional-read port (with its ETag).
        catalogue: config.catalogue.clone().map(|uri| {
            Arc::new(
                S3Catalogue::new(Arc::new(S3::new(aws.s3())), uri)
                    .with_convention(convention.clone()),
            ) as Arc<dyn CatalogueSource>
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
            handle_event(payload, deps).await.map_err(Diagnostic::from)
        },
    ))
    .await
}
