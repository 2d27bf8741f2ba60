//! Alarm thresholds in memory (the port of `adapters::cloudwatch_alarms`).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;

/// Alarm thresholds in memory: alarm name → (threshold, comparison operator).
#[derive(Default)]
pub struct InMemoryAlarms {
    pub alarms: Mutex<std::collections::BTreeMap<String, (f64, String)>>,
}

#[async_trait]
impl crate::deploy::alarm::AlarmThresholds for InMemoryAlarms {
    async fn set_threshold(
        &self,
        alarm_name: &str,
        threshold: f64,
        comparison_operator: &str,
    ) -> Result<Option<f64>, AwsError> {
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
