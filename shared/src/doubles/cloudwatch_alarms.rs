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
