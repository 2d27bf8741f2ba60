//! Alarm thresholds, whole alarms and dashboards in memory (the ports of
//! `adapters::cloudwatch_alarms`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::catalogue::alarms::MetricAlarmSpec;
use crate::error::AwsError;

/// A whole alarm and the tags it was created with.
pub type StoredAlarm = (MetricAlarmSpec, Vec<(String, String)>);

/// Alarm thresholds in memory: alarm name → (threshold, comparison operator); and whole alarms
/// as `PutMetricAlarm` left them (`metric`), with the tags they were created with, and the
/// number of puts.
#[derive(Default)]
pub struct InMemoryAlarms {
    pub alarms: Mutex<BTreeMap<String, (f64, String)>>,
    pub metric: Mutex<BTreeMap<String, StoredAlarm>>,
    pub puts: AtomicUsize,
    /// The next `PutMetricAlarm` fails with this error.
    pub fail_put: Mutex<Option<AwsError>>,
}

impl InMemoryAlarms {
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// The whole alarm of that name, if one was put.
    pub fn metric_alarm(&self, name: &str) -> Option<MetricAlarmSpec> {
        self.metric
            .lock()
            .unwrap()
            .get(name)
            .map(|(s, _)| s.clone())
    }

    /// The tags the alarm was created with.
    pub fn tags(&self, name: &str) -> Vec<(String, String)> {
        self.metric
            .lock()
            .unwrap()
            .get(name)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl crate::deploy::alarm::AlarmThresholds for InMemoryAlarms {
    async fn describe_metric_alarm(&self, name: &str) -> Result<Option<MetricAlarmSpec>, AwsError> {
        Ok(self.metric_alarm(name))
    }

    async fn put_metric_alarm(
        &self,
        spec: &MetricAlarmSpec,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        if let Some(e) = self.fail_put.lock().unwrap().take() {
            return Err(e);
        }
        if !spec.threshold.is_finite() || spec.period_seconds < 10 {
            return Err(AwsError::classify(
                "cloudwatch",
                "PutMetricAlarm",
                Some("ValidationError"),
                Some(400),
                format!(
                    "threshold {} / period {} refused",
                    spec.threshold, spec.period_seconds
                ),
            ));
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
        let mut metric = self.metric.lock().unwrap();
        // CloudWatch applies tags on creation only.
        let tags = match metric.get(&spec.name) {
            Some((_, existing)) => existing.clone(),
            None => tags.to_vec(),
        };
        metric.insert(spec.name.clone(), (spec.clone(), tags));
        Ok(())
    }

    async fn metric_alarms(&self, prefix: &str) -> Result<Vec<MetricAlarmSpec>, AwsError> {
        Ok(self
            .metric
            .lock()
            .unwrap()
            .values()
            .filter(|(s, _)| s.name.starts_with(prefix))
            .map(|(s, _)| s.clone())
            .collect())
    }

    async fn set_threshold(
        &self,
        alarm_name: &str,
        threshold: f64,
        comparison_operator: &str,
    ) -> Result<Option<f64>, AwsError> {
        if let Some((spec, _)) = self.metric.lock().unwrap().get_mut(alarm_name) {
            let previous = spec.threshold;
            spec.threshold = threshold;
            spec.comparison_operator = comparison_operator.to_owned();
            return Ok(Some(previous));
        }
        let mut alarms = self.alarms.lock().unwrap();
        let entry = alarms.get_mut(alarm_name).ok_or_else(|| {
            AwsError::classify(
                "cloudwatch",
                "DescribeAlarms",
                Some("ResourceNotFound"),
                Some(404),
                format!("no alarm {alarm_name}"),
            )
        })?;
        let previous = entry.0;
        *entry = (threshold, comparison_operator.to_owned());
        Ok(Some(previous))
    }
}

/// Alarm states in memory (the `AlarmStates` side of `adapters::cloudwatch_alarms`): set them as
/// `SetAlarmState` would.
#[derive(Default)]
pub struct InMemoryAlarmStates {
    pub alarms: Mutex<std::collections::BTreeMap<String, crate::retrain::recheck::AlarmStatus>>,
    pub calls: std::sync::atomic::AtomicUsize,
}

impl InMemoryAlarmStates {
    /// Puts `name` in `state` since `since` (a change of state moves `since`; the same state
    /// keeps it, as `StateTransitionedTimestamp` does).
    pub fn set(
        &self,
        name: &str,
        state: crate::retrain::AlarmState,
        since: chrono::DateTime<chrono::Utc>,
    ) {
        let mut alarms = self.alarms.lock().unwrap();
        let entry =
            alarms
                .entry(name.to_owned())
                .or_insert_with(|| crate::retrain::recheck::AlarmStatus {
                    name: name.to_owned(),
                    arn: Some(format!(
                        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
                    )),
                    state: state.clone(),
                    since,
                    reason: format!("Threshold Crossed: {name}"),
                    metric: Some("auc".to_owned()),
                    namespace: Some("driftloop/ModelQuality".to_owned()),
                    dimensions: Default::default(),
                    threshold: Some(0.8),
                    composite: false,
                });
        if entry.state != state {
            entry.state = state;
            entry.since = since;
        }
    }
}

#[async_trait]
impl crate::retrain::recheck::AlarmStates for InMemoryAlarmStates {
    async fn alarms_in_alarm(
        &self,
        prefix: &str,
    ) -> Result<Vec<crate::retrain::recheck::AlarmStatus>, AwsError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self
            .alarms
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.name.starts_with(prefix) && a.state == crate::retrain::AlarmState::Alarm)
            .cloned()
            .collect())
    }
}

/// Dashboards in memory: name → body, and the number of puts.
#[derive(Default)]
pub struct InMemoryDashboards {
    pub dashboards: Mutex<BTreeMap<String, String>>,
    pub puts: AtomicUsize,
}

impl InMemoryDashboards {
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    pub fn body(&self, name: &str) -> Option<serde_json::Value> {
        self.dashboards
            .lock()
            .unwrap()
            .get(name)
            .and_then(|b| serde_json::from_str(b).ok())
    }
}

#[async_trait]
impl crate::catalogue::reconcile::Dashboards for InMemoryDashboards {
    async fn get_dashboard(&self, name: &str) -> Result<Option<String>, AwsError> {
        Ok(self.dashboards.lock().unwrap().get(name).cloned())
    }

    async fn put_dashboard(&self, name: &str, body: &str) -> Result<Vec<String>, AwsError> {
        // As PutDashboard: a body that is not a JSON object with `widgets` is refused.
        let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
            AwsError::classify(
                "cloudwatch",
                "PutDashboard",
                Some("InvalidParameterInput"),
                Some(400),
                format!("the dashboard body is not JSON: {e}"),
            )
        })?;
        let widgets = v.get("widgets").and_then(|w| w.as_array()).ok_or_else(|| {
            AwsError::classify(
                "cloudwatch",
                "PutDashboard",
                Some("InvalidParameterInput"),
                Some(400),
                "the dashboard body has no widgets array",
            )
        })?;
        if widgets.len() > crate::catalogue::dashboard::MAX_WIDGETS {
            return Err(AwsError::classify(
                "cloudwatch",
                "PutDashboard",
                Some("InvalidParameterInput"),
                Some(400),
                format!("{} widgets; a dashboard holds at most 500", widgets.len()),
            ));
        }
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.dashboards
            .lock()
            .unwrap()
            .insert(name.to_owned(), body.to_owned());
        Ok(Vec::new())
    }
}
