//! What the custom-metrics tests against the emulator share: objects, an endpoint serving a
//! package, capture lines, and the datums CloudWatch holds for an endpoint's window.

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_s3::primitives::ByteStream;
use driftloop::aws::Aws;
use driftloop::deploy::{EndpointConfigSpec, Hosting, ModelSpec};
use driftloop::monitoring::window::Window;

/// Model Monitor's namespaces of an endpoint's metrics.
pub const MODEL_NS: &str = "aws/sagemaker/Endpoints/model-metrics";
pub const DATA_NS: &str = "aws/sagemaker/Endpoints/data-metrics";

pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: String) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .expect("PutObject");
}

/// `endpoint` (variant `AllTraffic`) serving `package` as deploy-on-approval creates it: model
/// `model` with the package as its container's `ModelPackageName`, config `{endpoint}-c`, endpoint.
pub async fn serve(sm: &aws_sdk_sagemaker::Client, endpoint: &str, model: &str, package: &str) {
    let hosting = driftloop::adapters::sagemaker::SageMaker::new(sm.clone());
    hosting
        .ensure_model(&ModelSpec {
            name: model.to_owned(),
            package_arn: package.to_owned(),
            execution_role_arn: "arn:aws:iam::123456789012:role/sagemaker".into(),
        })
        .await
        .expect("CreateModel");
    let config = format!("{endpoint}-c");
    hosting
        .ensure_endpoint_config(&EndpointConfigSpec {
            name: config.clone(),
            model_name: model.to_owned(),
            variant_name: "AllTraffic".into(),
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            capture: None,
        })
        .await
        .expect("CreateEndpointConfig");
    hosting
        .create_endpoint(endpoint, &config)
        .await
        .expect("CreateEndpoint");
}

/// A real-time capture line whose output is `score` (CSV), without input.
pub fn capture_line(id: &str, time: &str, score: f64) -> String {
    format!(
        r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{score}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{time}"}},"eventVersion":"0"}}"#
    )
}

/// The averages CloudWatch holds for `name` of `endpoint` (schedule `schedule`) over `w`.
pub async fn datums(
    aws: &Aws,
    namespace: &str,
    name: &str,
    endpoint: &str,
    schedule: &str,
    w: &Window,
) -> Vec<f64> {
    let at =
        |t: chrono::DateTime<chrono::Utc>| aws_smithy_types::DateTime::from_secs(t.timestamp());
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    let out = aws
        .cloudwatch()
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .dimensions(dim("Endpoint", endpoint))
        .dimensions(dim("MonitoringSchedule", schedule))
        .start_time(at(w.start))
        .end_time(at(w.end))
        .period(3600)
        .statistics(Statistic::Average)
        .send()
        .await
        .expect("GetMetricStatistics");
    out.datapoints()
        .iter()
        .filter_map(|d| d.average())
        .collect()
}
