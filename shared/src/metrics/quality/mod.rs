//! Model-quality accumulators for the four problem types, with Model Monitor's standard
//! deviations.
//!
//! # Standard deviations (subsampling)
//! Model Monitor reports each metric's standard deviation over 5 random 80% subsamples, only
//! when there are at least 200 samples (else the string `"NaN"`). To keep that mergeable, a
//! record's membership in each of the 5 subsamples is a seeded hash of its join key (each
//! subsample keeps a record with probability 3277/4096 ≈ 0.8, independently): the same record
//! always lands in the same subsamples, on any worker, in any split of the input. Every
//! accumulator therefore keeps 6 replicas: index 0 = all records, 1..=5 = the subsamples. The
//! reported standard deviation is the population standard deviation (ddof = 0) of the metric
//! over the 5 subsamples.

pub mod binary;
pub mod calibration;
pub mod estimate;
pub mod forecast;
pub mod multiclass;
pub mod regression;

use super::util::{hash_bytes, json_f64};
use serde::{Deserialize, Serialize};

/// Replicas per accumulator: 0 = full data, 1..=5 = subsamples.
pub const REPS: usize = 6;
/// Number of subsamples for standard deviations.
pub const SUBSAMPLES: usize = 5;
/// Standard deviations are computed only from this many samples on.
pub const MIN_SAMPLES_FOR_STD: u64 = 200;

/// Replica mask of a record: bit 0 always set, bit i (1..=5) when the record is in subsample i.
pub fn subsample_mask(seed: u64, key: &str) -> u8 {
    let h = hash_bytes(seed, key.as_bytes());
    let mut m = 1u8;
    for i in 0..SUBSAMPLES {
        if (h >> (i * 12)) & 0xFFF < 3277 {
            m |= 1 << (i + 1);
        }
    }
    m
}

/// A scalar metric with its subsample standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub value: f64,
    /// None when fewer than 200 samples (written as "NaN").
    pub standard_deviation: Option<f64>,
}

impl Metric {
    /// Builds a metric from its 6 replica values.
    pub fn from_reps(reps: &[f64; REPS], n: u64) -> Metric {
        let std = if n >= MIN_SAMPLES_FOR_STD {
            let s = &reps[1..];
            let mean = s.iter().sum::<f64>() / s.len() as f64;
            Some((s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / s.len() as f64).sqrt())
        } else {
            None
        };
        Metric {
            value: reps[0],
            standard_deviation: std,
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "value": json_f64(self.value),
            "standard_deviation": match self.standard_deviation { Some(s) => json_f64(s), None => serde_json::Value::String("NaN".into()) },
        })
    }
}

/// Output of one model-quality computation.
#[derive(Debug, Clone, Default)]
pub struct QualityReport {
    /// Number of evaluated (matched, valid) records.
    pub item_count: u64,
    /// The `<problem>_metrics` object of `statistics.json`.
    pub metrics_json: serde_json::Map<String, serde_json::Value>,
    /// Scalar metrics by name (`f1`, `auc`, `mae`, ...), in output order.
    pub scalars: Vec<(String, Metric)>,
}

impl QualityReport {
    pub(crate) fn push(&mut self, name: &str, m: Metric) {
        self.metrics_json.insert(name.to_string(), m.to_json());
        self.scalars.push((name.to_string(), m));
    }
    pub fn get(&self, name: &str) -> Option<Metric> {
        self.scalars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| *m)
    }
}

/// F-beta from precision and recall (0 when both are 0).
pub fn f_beta(p: f64, r: f64, beta: f64) -> f64 {
    let b2 = beta * beta;
    let d = b2 * p + r;
    if d == 0.0 {
        0.0
    } else {
        (1.0 + b2) * p * r / d
    }
}

/// `a / b`, 0 when b is 0 (scikit-learn's `zero_division=0`).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Model-quality state of any problem type (serializable, mergeable).
#[allow(clippy::large_enum_variant)] // one per job
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QualityState {
    Regression(regression::RegressionState),
    Binary(binary::BinaryState),
    Multiclass(multiclass::MulticlassState),
    Forecast(forecast::ForecastState),
}

impl QualityState {
    pub fn new(
        problem: super::config::ProblemType,
        cfg: &super::config::MonitorConfig,
    ) -> QualityState {
        use super::config::ProblemType::*;
        match problem {
            Regression => QualityState::Regression(Default::default()),
            BinaryClassification => QualityState::Binary(Default::default()),
            MulticlassClassification => QualityState::Multiclass(Default::default()),
            Forecast => {
                QualityState::Forecast(forecast::ForecastState::new(&cfg.forecast_quantiles))
            }
        }
    }
    /// Merges another state of the same problem type; a different type is an error.
    pub fn merge(&mut self, other: &QualityState) -> Result<(), String> {
        match (self, other) {
            (QualityState::Regression(a), QualityState::Regression(b)) => a.merge(b),
            (QualityState::Binary(a), QualityState::Binary(b)) => a.merge(b),
            (QualityState::Multiclass(a), QualityState::Multiclass(b)) => a.merge(b)?,
            (QualityState::Forecast(a), QualityState::Forecast(b)) => a.merge(b)?,
            _ => return Err("cannot merge model-quality states of different problem types".into()),
        }
        Ok(())
    }
    pub fn report(&self, cfg: &super::config::MonitorConfig) -> QualityReport {
        match self {
            QualityState::Regression(s) => s.report(),
            QualityState::Binary(s) => s.report(cfg),
            QualityState::Multiclass(s) => s.report(),
            QualityState::Forecast(s) => s.report(),
        }
    }
    pub fn count(&self) -> u64 {
        match self {
            QualityState::Regression(s) => s.reps[0].n,
            QualityState::Binary(s) => s.counts[0].iter().sum(),
            QualityState::Multiclass(s) => s.total(0),
            QualityState::Forecast(s) => s.reps[0].records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn masks_are_deterministic_and_about_80_percent() {
        let mut counts = [0usize; REPS];
        for i in 0..10_000 {
            let m = subsample_mask(7, &format!("id-{i}"));
            assert_eq!(m, subsample_mask(7, &format!("id-{i}")));
            for (r, c) in counts.iter_mut().enumerate() {
                if m & (1 << r) != 0 {
                    *c += 1;
                }
            }
        }
        assert_eq!(counts[0], 10_000);
        for c in &counts[1..] {
            assert!((7700..8300).contains(c), "{c}");
        }
    }
    #[test]
    fn std_only_from_200() {
        let reps = [1.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(Metric::from_reps(&reps, 199).standard_deviation, None);
        let s = Metric::from_reps(&reps, 200).standard_deviation.unwrap();
        assert!((s - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(
            Metric::from_reps(&reps, 10).to_json()["standard_deviation"],
            "NaN"
        );
        assert!((f_beta(0.5, 1.0, 1.0) - 2.0 / 3.0).abs() < 1e-15);
    }
}
