//! The CloudWatch adapter's alarm and dashboard side: the [`AlarmThresholds`] port, which re-puts
//! an alarm with a new threshold and everything else as it was, or puts a loop-managed alarm
//! whole (`PutMetricAlarm` with tags) after describing it; the [`AlarmStates`] port
//! (`DescribeAlarms` by name prefix and state), which the retraining recheck reads; and the
//! [`Dashboards`] port (`GetDashboard`, `PutDashboard`) of the loop-managed dashboard.

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, MetricAlarm, StateValue, Statistic, Tag,
};

use super::cloudwatch::{CloudWatch, SERVICE};
use super::to_chrono;
use crate::catalogue::alarms::MetricAlarmSpec;
use crate::catalogue::reconcile::Dashboards;
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

fn spec_of(a: &MetricAlarm) -> MetricAlarmSpec {
    let mut dimensions: Vec<(String, String)> = a
        .dimensions()
        .iter()
        .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
        .collect();
    dimensions.sort();
    MetricAlarmSpec {
        name: a.alarm_name().unwrap_or_default().to_owned(),
        description: a.alarm_description().unwrap_or_default().to_owned(),
        namespace: a.namespace().unwrap_or_default().to_owned(),
        metric: a.metric_name().unwrap_or_default().to_owned(),
        dimensions,
        statistic: a
            .statistic()
            .map(|s| s.as_str().to_owned())
            .or_else(|| a.extended_statistic().map(str::to_owned))
            .unwrap_or_default(),
        period_seconds: a.period().and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        evaluation_periods: a
            .evaluation_periods()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        datapoints_to_alarm: a
            .datapoints_to_alarm()
            .or(a.evaluation_periods())
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        threshold: a.threshold().unwrap_or(f64::NAN),
        comparison_operator: a
            .comparison_operator()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_owned(),
    }
}

#[async_trait]
impl AlarmThresholds for CloudWatch {
    async fn describe_metric_alarm(&self, name: &str) -> Result<Option<MetricAlarmSpec>, AwsError> {
        let out = self
            .client()
            .describe_alarms()
            .alarm_names(name)
            .alarm_types(AlarmType::MetricAlarm)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "DescribeAlarms", e))?;
        Ok(out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .map(spec_of))
    }

    async fn put_metric_alarm(
        &self,
        spec: &MetricAlarmSpec,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        self.client()
            .put_metric_alarm()
            .alarm_name(&spec.name)
            .alarm_description(&spec.description)
            .actions_enabled(true)
            .namespace(&spec.namespace)
            .metric_name(&spec.metric)
            .set_dimensions(Some(
                spec.dimensions
                    .iter()
                    .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                    .collect(),
            ))
            .statistic(Statistic::from(spec.statistic.as_str()))
            .period(to_i32(spec.period_seconds))
            .evaluation_periods(to_i32(spec.evaluation_periods))
            .datapoints_to_alarm(to_i32(spec.datapoints_to_alarm))
            .threshold(spec.threshold)
            .comparison_operator(ComparisonOperator::from(spec.comparison_operator.as_str()))
            .treat_missing_data(&spec.treat_missing_data)
            .set_tags((!tags.is_empty()).then(|| {
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect::<Vec<_>>()
            }))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "PutMetricAlarm", e))?;
        Ok(())
    }

    async fn metric_alarms(&self, prefix: &str) -> Result<Vec<MetricAlarmSpec>, AwsError> {
        let mut out = Vec::new();
        let mut pages = self
            .client()
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .alarm_types(AlarmType::MetricAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(SERVICE, "DescribeAlarms", e))?;
            out.extend(page.metric_alarms().iter().map(spec_of));
        }
        Ok(out)
    }

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

#[async_trait]
impl Dashboards for CloudWatch {
    async fn get_dashboard(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self
            .client()
            .get_dashboard()
            .dashboard_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.dashboard_body().map(str::to_owned)),
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, "GetDashboard", e);
                // CloudWatch answers a missing dashboard with ResourceNotFound (404).
                if e.is_not_found() || e.code.as_deref() == Some("ResourceNotFound") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn put_dashboard(&self, name: &str, body: &str) -> Result<Vec<String>, AwsError> {
        let out = self
            .client()
            .put_dashboard()
            .dashboard_name(name)
            .dashboard_body(body)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(SERVICE, "PutDashboard", e))?;
        Ok(out
            .dashboard_validation_messages()
            .iter()
            .map(|m| {
                format!(
                    "{}: {}",
                    m.data_path().unwrap_or("body"),
                    m.message().unwrap_or_default()
                )
            })
            .collect())
    }
}
