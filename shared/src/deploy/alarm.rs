//! "The alarm follows the model": after a deployment, the monitoring alarm's threshold is set from
//! the deployed package's model-quality constraints (Model Monitor's `constraints.json`).

use async_trait::async_trait;
use serde_json::Value;

use crate::catalogue::alarms::MetricAlarmSpec;
use crate::error::AwsError;

/// A threshold read from a model-quality `constraints.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricThreshold {
    pub metric: String,
    pub threshold: f64,
    /// CloudWatch's spelling, which Model Monitor's constraints share (`LessThanThreshold`, ...).
    pub comparison_operator: String,
}

const OPERATORS: &[&str] = &[
    "GreaterThanThreshold",
    "LessThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanOrEqualToThreshold",
];

/// Finds `metric` in any `*_constraints` section (`regression_constraints`,
/// `binary_classification_constraints`, `multiclass_classification_constraints`, ...).
pub fn threshold_from_constraints(
    constraints: &Value,
    metric: &str,
) -> Result<MetricThreshold, String> {
    let obj = constraints
        .as_object()
        .ok_or("constraints.json is not a JSON object")?;
    let entry = obj
        .iter()
        .filter(|(k, _)| k.ends_with("_constraints"))
        .find_map(|(_, section)| section.get(metric))
        .ok_or_else(|| format!("no constraint for metric {metric:?} in constraints.json"))?;
    let threshold = entry
        .get("threshold")
        .and_then(|t| {
            t.as_f64()
                .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|t| t.is_finite())
        .ok_or_else(|| format!("constraint for {metric:?} has no finite numeric threshold"))?;
    let op = entry
        .get("comparison_operator")
        .and_then(Value::as_str)
        .unwrap_or("LessThanThreshold");
    if !OPERATORS.contains(&op) {
        return Err(format!(
            "constraint for {metric:?} has unknown comparison_operator {op:?}"
        ));
    }
    Ok(MetricThreshold {
        metric: metric.to_owned(),
        threshold,
        comparison_operator: op.to_owned(),
    })
}

/// The CloudWatch alarm port.
#[async_trait]
pub trait AlarmThresholds: Send + Sync {
    /// Sets threshold and comparison operator of an existing metric alarm, keeping everything else
    /// as it was. Returns the previous threshold. A missing alarm is a `NotFound` error.
    async fn set_threshold(
        &self,
        alarm_name: &str,
        threshold: f64,
        comparison_operator: &str,
    ) -> Result<Option<f64>, AwsError>;

    /// The metric alarm of that name (`DescribeAlarms`), `None` when there is none.
    async fn describe_metric_alarm(&self, name: &str) -> Result<Option<MetricAlarmSpec>, AwsError>;

    /// Creates or replaces a metric alarm (`PutMetricAlarm`, no actions: the loop's alarms act
    /// through EventBridge). `tags` apply on creation only (CloudWatch ignores them on an update).
    async fn put_metric_alarm(
        &self,
        spec: &MetricAlarmSpec,
        tags: &[(String, String)],
    ) -> Result<(), AwsError>;

    /// The metric alarms whose name starts with `prefix`.
    async fn metric_alarms(&self, prefix: &str) -> Result<Vec<MetricAlarmSpec>, AwsError>;
}

/// What [`ensure_alarm`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "change")]
pub enum AlarmChange {
    Created,
    /// The fields that differed.
    Updated {
        fields: Vec<String>,
    },
    Unchanged,
}

/// Creates the alarm if missing, replaces it when it differs from `desired`, and otherwise makes
/// no call but the describe. Returns what it did and the previous threshold.
pub async fn ensure_alarm(
    alarms: &dyn AlarmThresholds,
    desired: &MetricAlarmSpec,
    tags: &[(String, String)],
) -> Result<(AlarmChange, Option<f64>), AwsError> {
    match alarms.describe_metric_alarm(&desired.name).await? {
        None => {
            alarms.put_metric_alarm(desired, tags).await?;
            Ok((AlarmChange::Created, None))
        }
        Some(current) => {
            let fields = current.differences(desired);
            if fields.is_empty() {
                return Ok((AlarmChange::Unchanged, Some(current.threshold)));
            }
            alarms.put_metric_alarm(desired, tags).await?;
            Ok((
                AlarmChange::Updated {
                    fields: fields.into_iter().map(str::to_owned).collect(),
                },
                Some(current.threshold),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_metric_in_any_problem_section() {
        let c = json!({"version": 0.0, "binary_classification_constraints": {
            "recall": {"threshold": 0.9, "comparison_operator": "LessThanThreshold"},
            "f2": {"threshold": 0.625, "comparison_operator": "LessThanThreshold"}}});
        let t = threshold_from_constraints(&c, "f2").unwrap();
        assert_eq!(t.threshold, 0.625);
        assert_eq!(t.comparison_operator, "LessThanThreshold");
        let r = json!({"regression_constraints": {"mae": {"threshold": "3.5", "comparison_operator": "GreaterThanThreshold"}}});
        assert_eq!(
            threshold_from_constraints(&r, "mae").unwrap().threshold,
            3.5
        );
    }

    #[test]
    fn missing_or_bad_constraints_explain_themselves() {
        let c = json!({"binary_classification_constraints": {"auc": {"threshold": "NaN"}}});
        assert!(
            threshold_from_constraints(&c, "f1")
                .unwrap_err()
                .contains("no constraint for metric \"f1\"")
        );
        assert!(
            threshold_from_constraints(&c, "auc")
                .unwrap_err()
                .contains("finite")
        );
        let bad = json!({"binary_classification_constraints": {"auc": {"threshold": 0.5, "comparison_operator": "Sideways"}}});
        assert!(
            threshold_from_constraints(&bad, "auc")
                .unwrap_err()
                .contains("Sideways")
        );
        assert!(threshold_from_constraints(&json!([1]), "auc").is_err());
    }
}
