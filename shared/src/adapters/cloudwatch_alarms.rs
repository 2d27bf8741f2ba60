//! The CloudWatch adapter's alarm side: the [`AlarmThresholds`] port, which re-puts an alarm with a
//! new threshold and everything else as it was, and the [`AlarmStates`] port (`DescribeAlarms`
//! by name prefix and state), which the retraining recheck reads.

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, StateValue};

use super::cloudwatch::{CloudWatch, SERVICE};
use super::to_chrono;
use crate::deploy::alarm::AlarmThresholds;
use crate::error::AwsError;
use crate::retrain::AlarmState;
use crate::retrain::recheck::{AlarmStates, AlarmStatus};

#[async_trait]
impl AlarmStates for CloudWatch {
    async fn alarms_in_alarm(&self, prefix: &str) -> Result<Vec<AlarmStatus>, AwsError> {
        const OP: &str = "DescribeAlarms";
        let missing = || {
            AwsError::classify(
                SERVICE,
                OP,
                None,
                None,
                "an alarm without StateTransitionedTimestamp or StateUpdatedTimestamp",
            )
        };
        let mut out = Vec::new();
        let mut pages = self
            .client()
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .state_value(StateValue::Alarm)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(SERVICE, OP, e))?;
            for a in page.metric_alarms() {
                let since = a
                    .state_transitioned_timestamp()
                    .or(a.state_updated_timestamp())
                    .and_then(to_chrono)
                    .ok_or_else(missing)?;
                out.push(AlarmStatus {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    arn: a.alarm_arn().map(str::to_owned),
                    state: AlarmState::parse(a.state_value().map(|s| s.as_str()).unwrap_or("")),
                    since,
                    reason: a.state_reason().unwrap_or_default().to_owned(),
                    metric: a.metric_name().map(str::to_owned),
                    namespace: a.namespace().map(str::to_owned),
                    dimensions: a
                        .dimensions()
                        .iter()
                        .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                        .collect(),
                    threshold: a.threshold(),
                    composite: false,
                });
            }
            for a in page.composite_alarms() {
                let since = a
                    .state_transitioned_timestamp()
                    .or(a.state_updated_timestamp())
                    .and_then(to_chrono)
                    .ok_or_else(missing)?;
                out.push(AlarmStatus {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    arn: a.alarm_arn().map(str::to_owned),
                    state: AlarmState::parse(a.state_value().map(|s| s.as_str()).unwrap_or("")),
                    since,
                    reason: a.state_reason().unwrap_or_default().to_owned(),
                    metric: None,
                    namespace: None,
                    dimensions: Default::default(),
                    threshold: None,
                    composite: true,
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl AlarmThresholds for CloudWatch {
    async fn set_threshold(
        &self,
        alarm_name: &str,
        threshold: f64,
        comparison_operator: &str,
    ) -> Result<Option<f64>, AwsError> {
        let out = self
            .client()
            .describe_alarms()
            .alarm_names(alarm_name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeAlarms", e))?;
        let Some(a) = out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(alarm_name))
        else {
            return Err(AwsError::classify(
                SERVICE,
                "DescribeAlarms",
                Some("ResourceNotFound"),
                None,
                format!("no metric alarm named {alarm_name}"),
            ));
        };
        let list = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
        self.client()
            .put_metric_alarm()
            .alarm_name(alarm_name)
            .set_alarm_description(a.alarm_description().map(str::to_owned))
            .set_actions_enabled(a.actions_enabled())
            .set_ok_actions(list(a.ok_actions()))
            .set_alarm_actions(list(a.alarm_actions()))
            .set_insufficient_data_actions(list(a.insufficient_data_actions()))
            .set_metric_name(a.metric_name().map(str::to_owned))
            .set_namespace(a.namespace().map(str::to_owned))
            .set_statistic(a.statistic().cloned())
            .set_extended_statistic(a.extended_statistic().map(str::to_owned))
            .set_dimensions((!a.dimensions().is_empty()).then(|| a.dimensions().to_vec()))
            .set_period(a.period())
            .set_unit(a.unit().cloned())
            .set_evaluation_periods(a.evaluation_periods())
            .set_datapoints_to_alarm(a.datapoints_to_alarm())
            .set_treat_missing_data(a.treat_missing_data().map(str::to_owned))
            .set_evaluate_low_sample_count_percentile(
                a.evaluate_low_sample_count_percentile().map(str::to_owned),
            )
            .set_metrics((!a.metrics().is_empty()).then(|| a.metrics().to_vec()))
            .set_threshold_metric_id(a.threshold_metric_id().map(str::to_owned))
            .threshold(threshold)
            .comparison_operator(ComparisonOperator::from(comparison_operator))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "PutMetricAlarm", e))?;
        Ok(a.threshold())
    }
}
