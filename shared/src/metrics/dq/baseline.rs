//! Reading Model Monitor baseline files: data-quality `statistics.json` and `constraints.json`,
//! including legacy spellings.
//!
//! Legacy / alternative spellings accepted:
//! * `distribution_constraints.enable_comparisons` (bool or "Enabled"/"Disabled") for
//!   `perform_comparison`;
//! * `min_domain_mass` (in `monitoring_config`, a feature's overrides, or inside
//!   `string_constraints`) for `domain_content_threshold`;
//! * `monitoringConfigOverrides` / `monitoring_config_overrides` (also nested in
//!   `string_constraints`) for per-feature overrides of any `monitoring_config` threshold;
//! * `comparison_method` `linf_simple` / `linf_robust` for Simple / Robust; `ChiSquared` /
//!   `ChiSquare` for the categorical χ² method.
//! * numbers written as strings (`"0.1"`) and `"NaN"`.
//!
//! Defaults when a key is absent: evaluate_constraints / emit_metrics / perform_comparison
//! Enabled, datatype_check_threshold 1.0 and domain_content_threshold 1.0 (what baseline jobs
//! write; the docs' 0.1 default would accept 90% type mismatches), comparison_threshold 0.1,
//! Robust, categorical threshold = comparison threshold, LInfinity.
//!
//! driftloop's extension (keys Model Monitor's readers ignore), in `distribution_constraints` or a
//! feature's overrides — see [`super::drift`]:
//! * `numerical_drift_method`: the statistic `feature_baseline_drift_<f>` reports for a numeric
//!   feature — `LInfinity` (default: Model Monitor's, so its files give its violations), `PSI`,
//!   `JensenShannon`, `Hellinger`, `Wasserstein`, `KolmogorovSmirnov`;
//! * `categorical_drift_method` also takes `PSI`, `JensenShannon`, `Hellinger`;
//! * `psi_bins` (default 10): baseline-quantile bins of the numeric PSI / JS / Hellinger;
//! * `drift_thresholds`: `{"psi": 0.2, "ks_pvalue": 0.05, ...}` — a `baseline_drift_check`
//!   violation for each statistic over (p-values: under) its threshold; none by default;
//! * `drift_statistics`: `["psi", "ks", ...]` — the statistics published (default: all).

use super::drift::{DEFAULT_PSI_BINS, Statistic};
use super::kll::KllSketch;
use super::types::DataType;
use crate::metrics::util::value_f64;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct BaselineFeatureStats {
    pub name: String,
    pub inferred_type: DataType,
    pub num_present: f64,
    pub num_missing: f64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Population standard deviation (`std_dev`).
    pub std_dev: Option<f64>,
    pub kll: Option<KllSketch>,
    /// KLL buckets (lower, upper, count), used when there is no sketch.
    pub kll_buckets: Vec<(f64, f64, f64)>,
    pub categories: Vec<(String, f64)>,
}

impl BaselineFeatureStats {
    /// Weighted items of the numeric distribution: the sketch, else bucket midpoints.
    pub fn weighted_items(&self) -> Vec<(f64, f64)> {
        match &self.kll {
            Some(k) if k.count() > 0 => k.weighted_items(),
            _ => {
                let mut v: Vec<(f64, f64)> = self
                    .kll_buckets
                    .iter()
                    .filter(|b| b.2 > 0.0)
                    .map(|b| ((b.0 + b.1) / 2.0, b.2))
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BaselineStatistics {
    pub item_count: Option<f64>,
    pub features: Vec<BaselineFeatureStats>,
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(value_f64)
}

fn enabled(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => {
            Some(!s.eq_ignore_ascii_case("disabled") && !s.eq_ignore_ascii_case("false"))
        }
        _ => None,
    }
}

impl BaselineStatistics {
    pub fn parse(text: &str) -> Result<BaselineStatistics, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("statistics.json: {e}"))?;
        Self::from_value(&v)
    }
    pub fn from_value(v: &Value) -> Result<BaselineStatistics, String> {
        let feats = v
            .get("features")
            .and_then(Value::as_array)
            .ok_or("statistics.json: no features array")?;
        let mut out = BaselineStatistics {
            item_count: num(v.pointer("/dataset/item_count")),
            features: Vec::new(),
        };
        for f in feats {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or("statistics.json: feature without name")?
                .to_string();
            let inferred_type = f
                .get("inferred_type")
                .and_then(Value::as_str)
                .and_then(DataType::parse)
                .unwrap_or(DataType::Unknown);
            let ns = f.get("numerical_statistics");
            let ss = f.get("string_statistics");
            let common = ns.or(ss).and_then(|s| s.get("common"));
            let mut fs = BaselineFeatureStats {
                name,
                inferred_type,
                num_present: num(common.and_then(|c| c.get("num_present"))).unwrap_or(0.0),
                num_missing: num(common.and_then(|c| c.get("num_missing"))).unwrap_or(0.0),
                mean: num(ns.and_then(|n| n.get("mean"))),
                min: num(ns.and_then(|n| n.get("min"))),
                max: num(ns.and_then(|n| n.get("max"))),
                std_dev: num(ns.and_then(|n| n.get("std_dev"))),
                kll: None,
                kll_buckets: Vec::new(),
                categories: Vec::new(),
            };
            if let Some(kll) = ns.and_then(|n| n.pointer("/distribution/kll")) {
                if let Some(b) = kll.get("buckets").and_then(Value::as_array) {
                    fs.kll_buckets = b
                        .iter()
                        .filter_map(|b| {
                            Some((
                                num(b.get("lower_bound"))?,
                                num(b.get("upper_bound"))?,
                                num(b.get("count"))?,
                            ))
                        })
                        .collect();
                }
                if let Some(sk) = kll.get("sketch") {
                    let k = num(sk.pointer("/parameters/k")).unwrap_or(2048.0) as usize;
                    let c = num(sk.pointer("/parameters/c")).unwrap_or(0.64);
                    let levels: Vec<Vec<f64>> = sk
                        .get("data")
                        .and_then(Value::as_array)
                        .map(|ls| {
                            ls.iter()
                                .map(|l| {
                                    l.as_array()
                                        .map(|a| a.iter().filter_map(value_f64).collect())
                                        .unwrap_or_default()
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    fs.kll = Some(KllSketch::from_levels(k, c, levels));
                }
            }
            if let Some(b) = ss
                .and_then(|s| s.pointer("/distribution/categorical/buckets"))
                .and_then(Value::as_array)
            {
                fs.categories = b
                    .iter()
                    .filter_map(|b| {
                        let v = match b.get("value")? {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        Some((v, num(b.get("count"))?))
                    })
                    .collect();
            }
            out.features.push(fs);
        }
        Ok(out)
    }
    pub fn feature(&self, name: &str) -> Option<&BaselineFeatureStats> {
        self.features.iter().find(|f| f.name == name)
    }

    /// The feature that holds the model output, for prediction drift: the feature `name`; with
    /// no name, the feature `prediction` (a `prediction_statistics.json` the engine wrote), else
    /// the file's only feature.
    pub fn prediction_feature(&self, name: Option<&str>) -> Result<&BaselineFeatureStats, String> {
        let wanted = name.unwrap_or(crate::metrics::engine::PREDICTION_COLUMN);
        match self.feature(wanted) {
            Some(f) => Ok(f),
            None if name.is_none() && self.features.len() == 1 => Ok(&self.features[0]),
            None => Err(format!(
                "no feature {wanted:?} (it has {:?})",
                self.features
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparisonMethod {
    Simple,
    Robust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoricalMethod {
    LInfinity,
    ChiSquared,
    /// driftloop's extension (see [`super::drift`]).
    Psi,
    JensenShannon,
    Hellinger,
}

/// The statistic `feature_baseline_drift_<f>` reports for a numeric feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericalMethod {
    /// Model Monitor's KLL CDF L∞ (Simple / Robust per `comparison_method`).
    LInfinity,
    Psi,
    JensenShannon,
    Hellinger,
    Wasserstein,
    KolmogorovSmirnov,
}

impl NumericalMethod {
    pub fn statistic(self) -> Statistic {
        match self {
            NumericalMethod::LInfinity => Statistic::LInfinity,
            NumericalMethod::Psi => Statistic::Psi,
            NumericalMethod::JensenShannon => Statistic::JensenShannon,
            NumericalMethod::Hellinger => Statistic::Hellinger,
            NumericalMethod::Wasserstein => Statistic::Wasserstein,
            NumericalMethod::KolmogorovSmirnov => Statistic::Ks,
        }
    }
}

impl CategoricalMethod {
    pub fn statistic(self) -> Statistic {
        match self {
            CategoricalMethod::LInfinity => Statistic::LInfinity,
            CategoricalMethod::ChiSquared => Statistic::Chi2PValue,
            CategoricalMethod::Psi => Statistic::Psi,
            CategoricalMethod::JensenShannon => Statistic::JensenShannon,
            CategoricalMethod::Hellinger => Statistic::Hellinger,
        }
    }
}

/// `monitoring_config` (and per-feature overrides, all fields resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringConfig {
    pub evaluate_constraints: bool,
    pub emit_metrics: bool,
    pub datatype_check_threshold: f64,
    pub domain_content_threshold: f64,
    pub perform_comparison: bool,
    pub comparison_threshold: f64,
    pub comparison_method: ComparisonMethod,
    pub categorical_comparison_threshold: f64,
    pub categorical_drift_method: CategoricalMethod,
    /// driftloop's extension (module docs).
    pub numerical_drift_method: NumericalMethod,
    pub psi_bins: usize,
    pub drift_thresholds: Vec<(Statistic, f64)>,
    /// None: every statistic.
    pub drift_statistics: Option<Vec<Statistic>>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            evaluate_constraints: true,
            emit_metrics: true,
            datatype_check_threshold: 1.0,
            domain_content_threshold: 1.0,
            perform_comparison: true,
            comparison_threshold: 0.1,
            comparison_method: ComparisonMethod::Robust,
            categorical_comparison_threshold: 0.1,
            categorical_drift_method: CategoricalMethod::LInfinity,
            numerical_drift_method: NumericalMethod::LInfinity,
            psi_bins: DEFAULT_PSI_BINS,
            drift_thresholds: Vec::new(),
            drift_statistics: None,
        }
    }
}

impl MonitoringConfig {
    /// Applies the keys present in `v` (a `monitoring_config` or an overrides object).
    fn apply(&mut self, v: &Value) {
        if let Some(b) = enabled(v.get("evaluate_constraints")) {
            self.evaluate_constraints = b;
        }
        if let Some(b) = enabled(v.get("emit_metrics")) {
            self.emit_metrics = b;
        }
        if let Some(x) = num(v.get("datatype_check_threshold")) {
            self.datatype_check_threshold = x;
        }
        if let Some(x) =
            num(v.get("domain_content_threshold")).or_else(|| num(v.get("min_domain_mass")))
        {
            self.domain_content_threshold = x;
        }
        let dc = v.get("distribution_constraints").unwrap_or(v);
        if let Some(b) =
            enabled(dc.get("perform_comparison")).or_else(|| enabled(dc.get("enable_comparisons")))
        {
            self.perform_comparison = b;
        }
        let mut cat_thr_set = false;
        if let Some(x) = num(dc.get("categorical_comparison_threshold")) {
            self.categorical_comparison_threshold = x;
            cat_thr_set = true;
        }
        if let Some(x) = num(dc.get("comparison_threshold")) {
            self.comparison_threshold = x;
            if !cat_thr_set {
                self.categorical_comparison_threshold = x;
            }
        }
        if let Some(m) = dc.get("comparison_method").and_then(Value::as_str) {
            self.comparison_method = match m.to_ascii_lowercase().as_str() {
                "simple" | "linf_simple" => ComparisonMethod::Simple,
                _ => ComparisonMethod::Robust,
            };
        }
        if let Some(m) = dc.get("categorical_drift_method").and_then(Value::as_str) {
            self.categorical_drift_method =
                match m.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
                    "chisquared" | "chisquare" | "chisq" => CategoricalMethod::ChiSquared,
                    _ => match Statistic::parse(m) {
                        Some(Statistic::Psi) => CategoricalMethod::Psi,
                        Some(Statistic::JensenShannon) => CategoricalMethod::JensenShannon,
                        Some(Statistic::Hellinger) => CategoricalMethod::Hellinger,
                        _ => CategoricalMethod::LInfinity,
                    },
                };
        }
        if let Some(m) = dc.get("numerical_drift_method").and_then(Value::as_str) {
            self.numerical_drift_method = match Statistic::parse(m) {
                Some(Statistic::Psi) => NumericalMethod::Psi,
                Some(Statistic::JensenShannon) => NumericalMethod::JensenShannon,
                Some(Statistic::Hellinger) => NumericalMethod::Hellinger,
                Some(Statistic::Wasserstein) => NumericalMethod::Wasserstein,
                Some(Statistic::Ks) => NumericalMethod::KolmogorovSmirnov,
                _ => NumericalMethod::LInfinity,
            };
        }
        if let Some(b) = num(dc.get("psi_bins")) {
            self.psi_bins = (b as usize).clamp(2, 1000);
        }
        if let Some(t) = dc.get("drift_thresholds").and_then(Value::as_object) {
            for (k, v) in t {
                if let (Some(s), Some(x)) = (Statistic::parse(k), value_f64(v)) {
                    self.drift_thresholds.retain(|(o, _)| *o != s);
                    self.drift_thresholds.push((s, x));
                }
            }
        }
        if let Some(a) = dc.get("drift_statistics").and_then(Value::as_array) {
            self.drift_statistics = Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(Statistic::parse)
                    .collect(),
            );
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConstraint {
    pub name: String,
    pub inferred_type: Option<DataType>,
    pub completeness: Option<f64>,
    pub is_non_negative: Option<bool>,
    pub domains: Option<Vec<String>>,
    /// The feature's effective monitoring config (global config + overrides).
    pub config: MonitoringConfig,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BaselineConstraints {
    pub features: Vec<FeatureConstraint>,
    pub monitoring_config: MonitoringConfig,
}

impl BaselineConstraints {
    /// The monitoring config feature `name` is checked with: its own (the global config with the
    /// feature's overrides) when the constraints list it, else the global config.
    pub fn config_of(&self, name: &str) -> MonitoringConfig {
        self.features
            .iter()
            .find(|f| f.name == name)
            .map_or_else(|| self.monitoring_config.clone(), |f| f.config.clone())
    }

    pub fn parse(text: &str) -> Result<BaselineConstraints, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("constraints.json: {e}"))?;
        Self::from_value(&v)
    }
    pub fn from_value(v: &Value) -> Result<BaselineConstraints, String> {
        let mut mc = MonitoringConfig::default();
        if let Some(m) = v.get("monitoring_config") {
            mc.apply(m);
        }
        let feats = v
            .get("features")
            .and_then(Value::as_array)
            .ok_or("constraints.json: no features array")?;
        let mut out = BaselineConstraints {
            features: Vec::new(),
            monitoring_config: mc.clone(),
        };
        for f in feats {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or("constraints.json: feature without name")?
                .to_string();
            let mut cfg = mc.clone();
            let sc = f.get("string_constraints");
            for o in [
                f.get("monitoringConfigOverrides"),
                f.get("monitoring_config_overrides"),
                sc.and_then(|s| s.get("monitoringConfigOverrides")),
                sc.and_then(|s| s.get("monitoring_config_overrides")),
            ]
            .into_iter()
            .flatten()
            {
                cfg.apply(o);
            }
            if let Some(x) = sc.and_then(|s| num(s.get("min_domain_mass"))) {
                cfg.domain_content_threshold = x;
            }
            out.features.push(FeatureConstraint {
                name,
                inferred_type: f
                    .get("inferred_type")
                    .and_then(Value::as_str)
                    .and_then(DataType::parse),
                completeness: num(f.get("completeness")),
                is_non_negative: f
                    .pointer("/num_constraints/is_non_negative")
                    .and_then(Value::as_bool),
                domains: sc
                    .and_then(|s| s.get("domains"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|d| match d {
                                Value::String(s) => s.clone(),
                                o => o.to_string(),
                            })
                            .collect()
                    }),
                config: cfg,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driftloop_extension_keys_global_and_per_feature() {
        let c = BaselineConstraints::parse(
            r#"{"features":[{"name":"a"},{"name":"b","monitoringConfigOverrides":{"numerical_drift_method":"Wasserstein",
              "drift_thresholds":{"psi":0.3},"categorical_drift_method":"jensen_shannon"}}],
              "monitoring_config":{"distribution_constraints":{"numerical_drift_method":"KolmogorovSmirnov","psi_bins":"20",
              "drift_thresholds":{"PSI":0.2,"ks_p_value":0.01,"bogus":1},"drift_statistics":["psi","JensenShannon","nope"]}}}"#,
        )
        .unwrap();
        let (a, b) = (&c.features[0].config, &c.features[1].config);
        assert_eq!(a.numerical_drift_method, NumericalMethod::KolmogorovSmirnov);
        assert_eq!(a.psi_bins, 20);
        assert_eq!(
            a.drift_thresholds,
            vec![(Statistic::Psi, 0.2), (Statistic::KsPValue, 0.01)]
        );
        assert_eq!(
            a.drift_statistics,
            Some(vec![Statistic::Psi, Statistic::JensenShannon])
        );
        assert_eq!(b.numerical_drift_method, NumericalMethod::Wasserstein);
        assert_eq!(b.categorical_drift_method, CategoricalMethod::JensenShannon);
        // An override replaces that statistic's threshold and keeps the others.
        assert_eq!(
            b.drift_thresholds,
            vec![(Statistic::KsPValue, 0.01), (Statistic::Psi, 0.3)]
        );
    }

    #[test]
    fn legacy_spellings() {
        let c = BaselineConstraints::parse(
            r#"{"version":0.0,"features":[{"name":"a","inferred_type":"String","completeness":0.9,
              "string_constraints":{"domains":["x","y"],"monitoring_config_overrides":{"min_domain_mass":0.5}}},
              {"name":"b","inferred_type":"Integral","monitoringConfigOverrides":{"comparison_threshold":"0.3"}}],
              "monitoring_config":{"evaluate_constraints":"Enabled","distribution_constraints":{"enable_comparisons":false,
              "comparison_threshold":0.2,"comparison_method":"linf_simple","categorical_drift_method":"ChiSquared"}}}"#,
        )
        .unwrap();
        assert!(!c.monitoring_config.perform_comparison);
        assert_eq!(
            c.monitoring_config.comparison_method,
            ComparisonMethod::Simple
        );
        assert_eq!(c.monitoring_config.categorical_comparison_threshold, 0.2);
        assert_eq!(
            c.monitoring_config.categorical_drift_method,
            CategoricalMethod::ChiSquared
        );
        assert_eq!(c.features[0].config.domain_content_threshold, 0.5);
        assert_eq!(
            c.features[0].domains.as_deref(),
            Some(&["x".to_string(), "y".to_string()][..])
        );
        assert_eq!(c.features[1].config.comparison_threshold, 0.3);
        assert_eq!(c.features[1].inferred_type, Some(DataType::Integral));
        assert!(BaselineConstraints::parse("{}").is_err());
        // Model Monitor's file: driftloop's defaults.
        assert_eq!(
            c.features[0].config.numerical_drift_method,
            NumericalMethod::LInfinity
        );
        assert_eq!(c.features[0].config.psi_bins, DEFAULT_PSI_BINS);
        assert!(c.features[0].config.drift_thresholds.is_empty());
        assert_eq!(c.features[0].config.drift_statistics, None);
        assert!(BaselineStatistics::parse("[").is_err());
    }
}
