//! The six data-quality checks of Model Monitor, evaluated from current statistics against a
//! baseline, into `constraint_violations.json`.
//!
//! | check | violation when |
//! |---|---|
//! | data_type_check | share of non-null values matching the baseline type < `datatype_check_threshold` (Integral values match Fractional; only String values match String, as Model Monitor reports) |
//! | completeness_check | current non-null share < baseline `completeness` (only when the column is present) |
//! | baseline_drift_check | numeric baseline (over the current numeric values): KLL CDF L∞ (Simple or Robust) > `comparison_threshold`; String/Boolean: categorical L∞ (same robust correction) > `categorical_comparison_threshold`, or χ² p-value < it |
//! | missing_column_check | a baseline column has no value in the current data (one violation per column) |
//! | extra_column_check | a current column is not in the baseline constraints (one violation per column) |
//! | categorical_values_check | share of non-null values inside `domains` < `domain_content_threshold` (1.0 = every value must be known) |
//!
//! χ² (the spec leaves the comparison open): a 2×k contingency test of the baseline counts
//! (rescaled to the current size) against the current counts, after merging the smallest expected
//! categories into one until at most 20% of expected counts are < 5 (2×2: all ≥ 10); the value
//! compared is the p-value and a violation is `p < threshold` (the description says so instead of
//! "exceeds"). Fewer than 2 categories: NaN, no violation.
//!
//! Descriptions keep the substrings AWS tooling parses: `distance: X exceeds threshold: Y`.
//!
//! Beyond L∞ and χ², every statistic of [`super::drift`] is computed per compared feature
//! ([`DriftResult::statistics`]); the configured method's value (`numerical_drift_method` /
//! `categorical_drift_method`) is the `baseline_drift_check` distance against
//! `comparison_threshold`, and each statistic with a `drift_thresholds` entry adds a
//! `baseline_drift_check` violation over (p-values: under) it, its description naming the
//! statistic (`PSI drift distance: 0.31 exceeds threshold: 0.2`).

use super::baseline::{
    BaselineConstraints, BaselineFeatureStats, BaselineStatistics, ComparisonMethod,
    FeatureConstraint, MonitoringConfig,
};
use super::drift::{self, Statistic};
use super::kll::{linf_simple, robust};
use super::stats::{ColumnState, DataQualityState};
use super::types::DataType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One entry of `constraint_violations.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub feature_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metric_name: Option<String>,
    pub constraint_check_type: String,
    /// Absent in some bring-your-own-container violations files (read as empty).
    #[serde(default)]
    pub description: String,
}

/// `{"violations":[...]}`.
pub fn violations_json(v: &[Violation]) -> serde_json::Value {
    serde_json::json!({ "violations": v })
}

/// Drift distance of one feature (for `feature_baseline_drift_<name>` metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftResult {
    pub feature: String,
    pub distance: f64,
    pub threshold: f64,
    /// True for χ² (the value is a p-value: violation when below the threshold).
    pub is_p_value: bool,
    /// Which statistic `distance` is.
    pub statistic: Statistic,
    /// Every drift statistic computed for the feature (published as `feature_<key>_<f>`).
    pub statistics: Vec<(Statistic, f64)>,
}

/// Result of checking current statistics against a baseline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckResult {
    pub violations: Vec<Violation>,
    pub drift: Vec<DriftResult>,
}

fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// A share as Model Monitor prints a percentage it rounds: two decimals at most, Java's shortest
/// form (`0.0`, `99.64`, `100.0`).
fn pct_rounded(x: f64) -> String {
    format!("{:?}", (x * 10_000.0).round() / 100.0)
}

fn categorical_linf(base: &[(String, f64)], cur: &ColumnState) -> (f64, f64, f64) {
    let n: f64 = base.iter().map(|b| b.1).sum();
    let m: f64 = cur.categories.values().map(|&c| c as f64).sum::<f64>() + cur.untracked as f64;
    if n <= 0.0 || m <= 0.0 {
        return (f64::NAN, n, m);
    }
    let mut d: f64 = 0.0;
    let bmap: HashMap<&str, f64> = base.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    for (k, c) in &base
        .iter()
        .map(|(k, c)| (k.as_str(), *c))
        .collect::<Vec<_>>()
    {
        let cc = cur.categories.get(*k).copied().unwrap_or(0) as f64;
        d = d.max((c / n - cc / m).abs());
    }
    for (k, &c) in &cur.categories {
        if !bmap.contains_key(k.as_str()) {
            d = d.max(c as f64 / m);
        }
    }
    (d, n, m)
}

/// χ² p-value of baseline vs current categorical counts (see module docs).
pub fn chi_squared_p_value(base: &[(String, f64)], cur: &HashMap<String, u64>) -> f64 {
    let n: f64 = base.iter().map(|b| b.1).sum();
    let m: f64 = cur.values().map(|&c| c as f64).sum();
    if n <= 0.0 || m <= 0.0 {
        return f64::NAN;
    }
    let mut cats: HashMap<&str, (f64, f64)> = HashMap::new();
    for (k, c) in base {
        cats.entry(k.as_str()).or_default().0 += c * m / n;
    }
    for (k, &c) in cur {
        cats.entry(k.as_str()).or_default().1 += c as f64;
    }
    // Rows: rescaled baseline (total m), current (total m).
    let mut cols: Vec<(f64, f64)> = cats.into_values().collect();
    cols.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
    let total = 2.0 * m;
    let ok = |cols: &[(f64, f64)]| -> bool {
        let exp: Vec<f64> = cols
            .iter()
            .flat_map(|c| [(c.0 + c.1) * m / total, (c.0 + c.1) * m / total])
            .collect();
        if cols.len() == 2 {
            exp.iter().all(|&e| e >= 10.0)
        } else {
            exp.iter().filter(|&&e| e < 5.0).count() as f64 <= 0.2 * exp.len() as f64
        }
    };
    while cols.len() >= 2 && !ok(&cols) {
        // Merge the two smallest categories.
        let a = cols.remove(0);
        cols[0].0 += a.0;
        cols[0].1 += a.1;
        cols.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
    }
    if cols.len() < 2 {
        return f64::NAN;
    }
    let mut stat = 0.0;
    for c in &cols {
        let e = (c.0 + c.1) * m / total;
        if e > 0.0 {
            stat += (c.0 - e).powi(2) / e + (c.1 - e).powi(2) / e;
        }
    }
    chi2_sf(stat, (cols.len() - 1) as f64)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma Q(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        let (mut sum, mut del, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - ln_gamma(a)).exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (-x + a * x.ln() - ln_gamma(a)).exp() * h
    }
}

/// Survival function of the χ² distribution.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

fn violation(feature: &str, check: &str, description: String) -> Violation {
    Violation {
        feature_name: Some(feature.to_string()),
        metric_name: None,
        constraint_check_type: check.to_string(),
        description,
    }
}

/// Evaluates the six checks.
pub fn check_data_quality(
    current: &DataQualityState,
    stats: Option<&BaselineStatistics>,
    constraints: &BaselineConstraints,
) -> CheckResult {
    let mut out = CheckResult::default();
    if !constraints.monitoring_config.evaluate_constraints {
        return out;
    }
    let n_rows = current.item_count as f64;
    let present: Vec<&ColumnState> = current
        .columns
        .iter()
        .filter(|c| c.types.non_null() > 0 || c.types.unknown > 0)
        .collect();
    let baseline_names: Vec<&str> = constraints
        .features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let n_cur = present.len();
    let n_base = baseline_names.len();
    for f in &constraints.features {
        if current.column(&f.name).is_none() {
            out.violations.push(violation(
                &f.name,
                "missing_column_check",
                format!("There are missing columns in current dataset. Number of columns in current dataset: {n_cur}, Number of columns in baseline constraints: {n_base}"),
            ));
        }
    }
    for c in &present {
        if !baseline_names.contains(&c.name.as_str()) {
            out.violations.push(violation(
                &c.name,
                "extra_column_check",
                format!("There are extra columns in current dataset. Number of columns in current dataset: {n_cur}, Number of columns in baseline constraints: {n_base}"),
            ));
        }
    }
    for f in &constraints.features {
        let Some(col) = current.column(&f.name) else {
            continue;
        };
        check_feature(
            f,
            col,
            n_rows,
            stats.and_then(|s| s.feature(&f.name)),
            &mut out,
        );
    }
    out
}

fn check_feature(
    f: &FeatureConstraint,
    col: &ColumnState,
    n_rows: f64,
    base: Option<&super::baseline::BaselineFeatureStats>,
    out: &mut CheckResult,
) {
    let cfg = &f.config;
    let non_null = col.types.non_null() as f64;
    // data_type_check
    if let Some(t) = f.inferred_type
        && t != DataType::Unknown
        && non_null > 0.0
    {
        let share = col.types.matching(t) as f64 / non_null;
        if share < cfg.datatype_check_threshold {
            out.violations.push(violation(
                &f.name,
                "data_type_check",
                format!(
                    "Data type match requirement is not met. Expected data type: {}, Expected match: {:.1}%. Observed: Only {}% of data is {}.",
                    t.as_str(),
                    cfg.datatype_check_threshold * 100.0,
                    pct_rounded(share),
                    t.as_str()
                ),
            ));
        }
    }
    // completeness_check
    if let Some(req) = f.completeness
        && n_rows > 0.0
    {
        let comp = non_null / n_rows;
        if comp < req {
            out.violations.push(violation(
                &f.name,
                "completeness_check",
                // Model Monitor's wording (`Expected: 100.0%. Observed: Only 97.84946236559139%.`).
                format!(
                    "Data completeness requirement is not met. Expected: {:?}%. Observed: Only {:?}%.",
                    req * 100.0,
                    comp * 100.0
                ),
            ));
        }
    }
    // categorical_values_check
    if let Some(domains) = &f.domains
        && non_null > 0.0
    {
        let inside: u64 = domains
            .iter()
            .map(|d| col.categories.get(d).copied().unwrap_or(0))
            .sum();
        let share = inside as f64 / non_null;
        if share < cfg.domain_content_threshold {
            out.violations.push(violation(
                &f.name,
                "categorical_values_check",
                format!("Categorical values requirement is not met. Expected in-domain share: {}%. Observed: {}% of values are in the baseline domain. Value: {} does not meet the constraint requirement! ", pct(cfg.domain_content_threshold), pct(share), share),
            ));
        }
    }
    // baseline_drift_check
    let Some(base) = base else { return };
    if !cfg.perform_comparison || non_null == 0.0 {
        return;
    }
    check_drift(&f.name, cfg, base, col, out);
}

/// The drift statistics of one column against its baseline feature, with their violations.
pub fn check_drift(
    name: &str,
    cfg: &MonitoringConfig,
    base: &BaselineFeatureStats,
    col: &ColumnState,
    out: &mut CheckResult,
) {
    if let Some(d) = drift_of(name, cfg, base, col) {
        push_drift(d, cfg, out);
    }
}

/// The drift statistics of one current column against its baseline feature (None: nothing to
/// compare — a numeric baseline without numeric values, a categorical one without buckets).
pub fn drift_of(
    name: &str,
    cfg: &MonitoringConfig,
    base: &BaselineFeatureStats,
    col: &ColumnState,
) -> Option<DriftResult> {
    let robust_or_simple = |d: f64, n: f64, m: f64| match cfg.comparison_method {
        ComparisonMethod::Simple => d,
        ComparisonMethod::Robust => robust(d, n, m),
    };
    let (mut stats, method, threshold) = if base.inferred_type.is_numeric() && col.num.n > 0 {
        let a = base.weighted_items();
        let b = col.kll.weighted_items();
        let d = linf_simple(&a, &b);
        let n: f64 = a.iter().map(|x| x.1).sum();
        let m: f64 = b.iter().map(|x| x.1).sum();
        let mut stats = drift::numeric(&a, base.std_dev, &b, cfg.psi_bins);
        stats.push((Statistic::LInfinity, robust_or_simple(d, n, m)));
        (
            stats,
            cfg.numerical_drift_method.statistic(),
            cfg.comparison_threshold,
        )
    } else if !base.categories.is_empty() && !base.inferred_type.is_numeric() {
        let mut stats = drift::categorical(&base.categories, &col.categories, col.untracked);
        let (d, n, m) = categorical_linf(&base.categories, col);
        stats.push((Statistic::LInfinity, robust_or_simple(d, n, m)));
        stats.push((
            Statistic::Chi2PValue,
            chi_squared_p_value(&base.categories, &col.categories),
        ));
        (
            stats,
            cfg.categorical_drift_method.statistic(),
            cfg.categorical_comparison_threshold,
        )
    } else {
        return None;
    };
    let value = stats
        .iter()
        .find(|s| s.0 == method)
        .map_or(f64::NAN, |s| s.1);
    if let Some(keep) = &cfg.drift_statistics {
        stats.retain(|s| keep.contains(&s.0) || s.0 == method);
    }
    // L∞ is `feature_baseline_drift_<f>` already when it is the method; not published twice.
    stats.retain(|s| s.0 != Statistic::LInfinity);
    Some(DriftResult {
        feature: name.to_string(),
        distance: value,
        threshold,
        is_p_value: method.is_p_value(),
        statistic: method,
        statistics: stats,
    })
}

fn push_drift(d: DriftResult, cfg: &MonitoringConfig, out: &mut CheckResult) {
    let name = d.feature.clone();
    let mut checks: Vec<(Statistic, f64, f64, bool)> =
        vec![(d.statistic, d.distance, d.threshold, true)];
    for &(s, thr) in &cfg.drift_thresholds {
        if s == d.statistic {
            continue;
        }
        if let Some(&(_, v)) = d.statistics.iter().find(|x| x.0 == s) {
            checks.push((s, v, thr, false));
        }
    }
    out.drift.push(d);
    for (s, v, thr, configured) in checks {
        if let Some(v) = drift_violation(&name, s, v, thr, configured) {
            out.violations.push(v);
        }
    }
}

/// A `baseline_drift_check` violation of statistic `s` (value `d`, threshold `thr`), if any.
/// `configured`: the method's own check (Model Monitor's descriptions for L∞ and χ²).
pub fn drift_violation(
    name: &str,
    s: Statistic,
    d: f64,
    thr: f64,
    configured: bool,
) -> Option<Violation> {
    if d.is_nan() {
        return None;
    }
    let description = match (s.is_p_value(), configured && s == Statistic::LInfinity) {
        (true, _) if d < thr => {
            format!(
                "Baseline drift distance: {}: {d} is below threshold: {thr}",
                s.label()
            )
        }
        (false, true) if d > thr => {
            format!("Baseline drift distance: {d} exceeds threshold: {thr}")
        }
        (false, false) if d > thr => {
            format!("{} drift distance: {d} exceeds threshold: {thr}", s.label())
        }
        _ => return None,
    };
    Some(violation(name, "baseline_drift_check", description))
}

/// Model-quality constraints (`<problem>_constraints`: metric -> threshold + operator) evaluated
/// against computed metric values. Operators: GreaterThanThreshold (violation when value >
/// threshold), LessThanThreshold (value < threshold), and the `...OrEqualToThreshold` forms.
/// A metric that was not computed or is NaN produces no violation.
pub fn check_model_quality(
    constraints: &serde_json::Value,
    problem_key: &str,
    values: &[(String, f64)],
) -> Result<Vec<Violation>, String> {
    let obj = constraints
        .get(problem_key)
        .and_then(|v| v.as_object())
        .ok_or_else(|| format!("constraints.json has no {problem_key} object"))?;
    let mut out = Vec::new();
    for (metric, c) in obj {
        let thr = c
            .get("threshold")
            .and_then(crate::metrics::util::value_f64)
            .ok_or_else(|| format!("{metric}: no threshold"))?;
        let op = c
            .get("comparison_operator")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{metric}: no comparison_operator"))?;
        let Some(&(_, v)) = values.iter().find(|(n, _)| n == metric) else {
            continue;
        };
        if v.is_nan() {
            continue;
        }
        let violated = match op {
            "GreaterThanThreshold" => v > thr,
            "LessThanThreshold" => v < thr,
            "GreaterThanOrEqualToThreshold" => v >= thr,
            "LessThanOrEqualToThreshold" => v <= thr,
            other => return Err(format!("{metric}: unknown comparison_operator {other}")),
        };
        if violated {
            out.push(Violation {
                feature_name: None,
                metric_name: Some(metric.clone()),
                constraint_check_type: op.to_string(),
                // Model Monitor's wording: the threshold in single quotes.
                description: format!("Metric {metric} with {v} was {op} '{thr}'"),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2_sf_known_values() {
        // chi2.sf(3.841458820694124, 1) = 0.05; chi2.sf(5.991464547107979, 2) = 0.05
        assert!((chi2_sf(3.841458820694124, 1.0) - 0.05).abs() < 1e-9);
        assert!((chi2_sf(5.991464547107979, 2.0) - 0.05).abs() < 1e-9);
        assert!((chi2_sf(1.0, 3.0) - 0.8012519569012008).abs() < 1e-9);
        assert!((chi2_sf(30.0, 10.0) - 0.0008566412265551929).abs() < 1e-9);
    }

    #[test]
    fn model_quality_constraints() {
        let c: serde_json::Value = serde_json::from_str(
            r#"{"version":0.0,"binary_classification_constraints":{"f2":{"threshold":0.625,"comparison_operator":"LessThanThreshold"},
               "accuracy":{"threshold":0.5,"comparison_operator":"LessThanThreshold"},
               "false_positive_rate":{"threshold":0.1,"comparison_operator":"GreaterThanThreshold"}}}"#,
        )
        .unwrap();
        let v = check_model_quality(
            &c,
            "binary_classification_constraints",
            &[
                ("f2".into(), 0.58),
                ("accuracy".into(), 0.9),
                ("false_positive_rate".into(), 0.2),
            ],
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0].description,
            "Metric f2 with 0.58 was LessThanThreshold '0.625'"
        );
        assert_eq!(v[1].metric_name.as_deref(), Some("false_positive_rate"));
        assert!(check_model_quality(&c, "regression_constraints", &[]).is_err());
    }
}
