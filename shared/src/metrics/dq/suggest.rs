//! Baseline suggestion without a Spark job: statistics + constraints from a training dataset.
//!
//! Constraints written per feature: `inferred_type`, `completeness` (the observed non-null share),
//! `num_constraints.is_non_negative` (numeric columns: min ≥ 0), and for String/Boolean columns
//! with at most [`MAX_DOMAIN_SIZE`] tracked distinct values and no untracked ones,
//! `string_constraints.domains` (sorted). `monitoring_config` is what Model Monitor baseline jobs
//! write: thresholds 1.0, comparison Robust at 0.1, categorical LInfinity at 0.1.

use super::stats::DataQualityState;
use super::types::DataType;

pub const MAX_DOMAIN_SIZE: usize = 100;

pub fn suggest_constraints(stats: &DataQualityState) -> serde_json::Value {
    let n = stats.item_count as f64;
    let features: Vec<serde_json::Value> = stats
        .columns
        .iter()
        .map(|c| {
            let t = c.inferred_type();
            let completeness = if n > 0.0 { c.types.non_null() as f64 / n } else { 0.0 };
            let mut f = serde_json::json!({ "name": c.name, "inferred_type": t.as_str(), "completeness": completeness });
            if t.is_numeric() {
                f["num_constraints"] = serde_json::json!({ "is_non_negative": c.num.min.is_some_and(|m| m >= 0.0) });
            } else if matches!(t, DataType::String | DataType::Boolean) && c.untracked == 0 && c.categories.len() <= MAX_DOMAIN_SIZE {
                let mut d: Vec<&String> = c.categories.keys().collect();
                d.sort();
                f["string_constraints"] = serde_json::json!({ "domains": d });
            }
            f
        })
        .collect();
    serde_json::json!({
        "version": 0.0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": 0.1,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": 0.1,
                "categorical_drift_method": "LInfinity",
            },
        },
    })
}

/// Model-quality constraints suggested from computed metrics: every scalar metric's current value
/// as threshold; `GreaterThanThreshold` for error metrics (lower is better: mae, mse, rmse,
/// false_positive_rate, false_negative_rate, wQL*, WAPE, RMSE, MAPE, MASE), `LessThanThreshold`
/// for the others. `_best_constant_classifier` metrics are not constrained.
pub fn suggest_model_quality_constraints(
    constraints_key: &str,
    values: &[(String, f64)],
) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (name, v) in values {
        if !v.is_finite() || name.ends_with("_best_constant_classifier") {
            continue;
        }
        let lower_is_better = matches!(
            name.as_str(),
            "mae"
                | "mse"
                | "rmse"
                | "false_positive_rate"
                | "false_negative_rate"
                | "mean_wQL"
                | "WAPE"
                | "RMSE"
                | "MAPE"
                | "MASE"
        ) || name.starts_with("wQL_");
        let op = if lower_is_better {
            "GreaterThanThreshold"
        } else {
            "LessThanThreshold"
        };
        m.insert(
            name.clone(),
            serde_json::json!({ "threshold": v, "comparison_operator": op }),
        );
    }
    serde_json::json!({ "version": 0.0, constraints_key: m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::dq::baseline::{BaselineConstraints, BaselineStatistics};
    use crate::metrics::dq::checks::check_data_quality;
    use crate::metrics::dq::stats::DqValue;

    #[test]
    fn suggested_baseline_round_trips_and_catches_drift() {
        let mut train = DataQualityState::default();
        for i in 0..1000 {
            let x = format!("{}", i % 100);
            let c = if i % 2 == 0 { "a" } else { "b" };
            train.push_named([("x", DqValue::Text(&x)), ("c", DqValue::Text(c))]);
        }
        let cons = suggest_constraints(&train);
        assert_eq!(cons["features"][0]["inferred_type"], "Integral");
        assert_eq!(
            cons["features"][0]["num_constraints"]["is_non_negative"],
            true
        );
        assert_eq!(
            cons["features"][1]["string_constraints"]["domains"],
            serde_json::json!(["a", "b"])
        );
        let stats = BaselineStatistics::from_value(&train.statistics_json()).unwrap();
        let cons = BaselineConstraints::from_value(&cons).unwrap();
        // Same data: no violations.
        let r = check_data_quality(&train, Some(&stats), &cons);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.drift.len(), 2);
        assert_eq!(r.drift[0].distance, 0.0);
        // Shifted data with a new category and a missing value.
        let mut cur = DataQualityState::default();
        for i in 0..1000 {
            let x = format!("{}", 50 + i % 100);
            let c = if i % 2 == 0 { "a" } else { "z" };
            if i == 0 {
                cur.push_named([("c", DqValue::Text(c))]);
            } else {
                cur.push_named([("x", DqValue::Text(&x)), ("c", DqValue::Text(c))]);
            }
        }
        let r = check_data_quality(&cur, Some(&stats), &cons);
        let kinds: Vec<(&str, &str)> = r
            .violations
            .iter()
            .map(|v| {
                (
                    v.feature_name.as_deref().unwrap(),
                    v.constraint_check_type.as_str(),
                )
            })
            .collect();
        assert!(kinds.contains(&("x", "completeness_check")), "{kinds:?}");
        assert!(kinds.contains(&("x", "baseline_drift_check")), "{kinds:?}");
        assert!(
            kinds.contains(&("c", "categorical_values_check")),
            "{kinds:?}"
        );
        assert!(kinds.contains(&("c", "baseline_drift_check")), "{kinds:?}");
        let drift = r
            .violations
            .iter()
            .find(|v| v.constraint_check_type == "baseline_drift_check")
            .unwrap();
        assert!(
            drift.description.contains(" exceeds threshold: 0.1"),
            "{}",
            drift.description
        );
        // x CDF distance: half the mass shifted by 50 -> simple L∞ = 0.5; robust subtracts 1.8*sqrt(2/1000)-ish.
        let dx = r.drift.iter().find(|d| d.feature == "x").unwrap().distance;
        assert!(
            (dx - (0.5 - 1.8 * (1999.0f64 / (1000.0 * 999.0)).sqrt())).abs() < 0.01,
            "{dx}"
        );
    }
}
