//! Recorded metric data (the port of `adapters::cloudwatch`); applies `prepare_metric_data` as the adapter does.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::publish::{
    MetricDatum, MetricPublisher, MetricReport, PublishError, prepare_metric_data,
    validate_namespace,
};

/// Records put metric datums per namespace, each call's batch sizes, and what was dropped.
#[derive(Default)]
pub struct RecordingMetrics {
    datums: Mutex<Vec<(String, MetricDatum)>>,
    calls: Mutex<Vec<usize>>,
    failures: Mutex<Vec<PublishError>>,
}

impl RecordingMetrics {
    /// (namespace, datum) pairs, in order.
    pub fn datums(&self) -> Vec<(String, MetricDatum)> {
        self.datums.lock().unwrap().clone()
    }

    /// The datums of one metric name.
    pub fn named(&self, name: &str) -> Vec<MetricDatum> {
        self.datums()
            .into_iter()
            .filter(|(_, d)| d.name == name)
            .map(|(_, d)| d)
            .collect()
    }

    /// The size of each `PutMetricData` call made.
    pub fn call_sizes(&self) -> Vec<usize> {
        self.calls.lock().unwrap().clone()
    }

    pub fn fail_next(&self, error: PublishError) {
        self.failures.lock().unwrap().push(error);
    }
}

#[async_trait]
impl MetricPublisher for RecordingMetrics {
    async fn put_metrics(
        &self,
        namespace: &str,
        datums: Vec<MetricDatum>,
    ) -> Result<MetricReport, PublishError> {
        validate_namespace(namespace)?;
        {
            let mut f = self.failures.lock().unwrap();
            if !f.is_empty() {
                return Err(f.remove(0));
            }
        }
        let (batches, dropped) = prepare_metric_data(datums);
        let mut report = MetricReport {
            dropped,
            ..Default::default()
        };
        for batch in batches {
            report.sent += batch.len();
            report.calls += 1;
            self.calls.lock().unwrap().push(batch.len());
            self.datums
                .lock()
                .unwrap()
                .extend(batch.into_iter().map(|d| (namespace.to_owned(), d)));
        }
        Ok(report)
    }
}
