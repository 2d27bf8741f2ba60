//! CloudWatch adapter: the [`MetricPublisher`] port.

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as CwDatum, StandardUnit};

use crate::error::AwsError;
use crate::publish::{
    MetricDatum, MetricPublisher, MetricReport, PublishError, prepare_metric_data,
    validate_namespace,
};

pub(super) const SERVICE: &str = "cloudwatch";

#[derive(Clone, Debug)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(client: Client) -> Self {
        CloudWatch { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn to_sdk(d: &MetricDatum) -> CwDatum {
    CwDatum::builder()
        .metric_name(&d.name)
        .set_dimensions(Some(
            d.dimensions
                .iter()
                .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                .collect(),
        ))
        .value(d.value)
        .unit(StandardUnit::from(d.unit.as_str()))
        .set_timestamp(
            d.timestamp
                .map(|t| aws_smithy_types::DateTime::from_millis(t.timestamp_millis())),
        )
        .set_storage_resolution(d.storage_resolution)
        .build()
}

#[async_trait]
impl MetricPublisher for CloudWatch {
    async fn put_metrics(
        &self,
        namespace: &str,
        datums: Vec<MetricDatum>,
    ) -> Result<MetricReport, PublishError> {
        const OP: &str = "PutMetricData";
        validate_namespace(namespace)?;
        let (batches, dropped) = prepare_metric_data(datums);
        let mut report = MetricReport {
            dropped,
            ..Default::default()
        };
        for batch in batches {
            self.client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(batch.iter().map(to_sdk).collect()))
                .send()
                .await
                .map_err(|e| {
                    let mut err = AwsError::from_sdk(SERVICE, OP, e);
                    if report.sent > 0 {
                        err.message =
                            format!("{} (after {} datums were sent)", err.message, report.sent);
                    }
                    err
                })?;
            report.sent += batch.len();
            report.calls += 1;
        }
        Ok(report)
    }
}
