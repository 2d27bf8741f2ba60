//! Forecast metrics (quantile forecasts such as DeepAR's), which Model Monitor lacks.
//!
//! # How forecasts and actuals are captured and matched
//! * Capture output (JSON): DeepAR's `{"predictions":[{"quantiles":{"0.1":[..],"0.5":[..]},
//!   "mean":[..]}]}` (or a single prediction object). Input (optional, JSON): DeepAR's request
//!   `{"instances":[{"start":..,"target":[history..]}]}`; the history gives MASE's scale.
//! * Ground truth `data` for the same id: the actual values of the forecast horizon as a JSON
//!   array `[y1, .., yH]` (one instance), an array of arrays (one per instance), an object with a
//!   `target` array, or a CSV row of numbers. Instance i of the prediction is scored against series
//!   i of the ground truth; each scored (instance, series) pair is one "series".
//! * Points: the first min(len(forecast), len(actual)) horizon steps; non-finite actuals (DeepAR
//!   writes missing values as "NaN") are skipped point-wise.
//! * Point forecast: `mean` when present, else the 0.5 quantile, else the middle configured
//!   quantile.
//!
//! # Definitions
//! * `wQL_<t>` = 2·Σ[t·max(y−q,0) + (1−t)·max(q−y,0)] / Σ|y|; when Σ|y| < 1e-12 the numerator.
//! * `mean_wQL` = mean of the wQL over the configured quantiles.
//! * `WAPE` = Σ|y−ŷ| / Σ|y|; `RMSE` = sqrt(mean (y−ŷ)²) over all scored points;
//!   `MAPE` = mean |(y−ŷ)/y| over points with y ≠ 0.
//! * `MASE`: per series, mean|y−ŷ| / [(1/(T−m)) Σ_{t=m+1..T} |Y_t − Y_{t−m}|] over the history
//!   (m = seasonality); series without a history longer than m or with a zero scale are left out;
//!   the reported MASE is the mean over series.

use super::{Metric, QualityReport, REPS};
use crate::metrics::util::KahanSum;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastSums {
    pub records: u64,
    pub series: u64,
    pub points: u64,
    pub ql_num: Vec<KahanSum>,
    pub abs_y: KahanSum,
    pub abs_err: KahanSum,
    pub sq_err: KahanSum,
    pub ape: KahanSum,
    pub ape_n: u64,
    pub mase: KahanSum,
    pub mase_n: u64,
}

impl ForecastSums {
    fn merge(&mut self, o: &ForecastSums) {
        self.records += o.records;
        self.series += o.series;
        self.points += o.points;
        for (a, b) in self.ql_num.iter_mut().zip(o.ql_num.iter()) {
            a.merge(b);
        }
        self.abs_y.merge(&o.abs_y);
        self.abs_err.merge(&o.abs_err);
        self.sq_err.merge(&o.sq_err);
        self.ape.merge(&o.ape);
        self.ape_n += o.ape_n;
        self.mase.merge(&o.mase);
        self.mase_n += o.mase_n;
    }
}

/// One forecast instance to score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastInstance {
    /// One array per configured quantile (same order); missing quantiles are empty.
    pub quantiles: Vec<Vec<f64>>,
    pub point: Vec<f64>,
    pub history: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastState {
    pub quantiles: Vec<f64>,
    pub seasonality: usize,
    pub reps: [ForecastSums; REPS],
}

impl ForecastState {
    pub fn new(quantiles: &[f64]) -> ForecastState {
        let mut s = ForecastState {
            quantiles: quantiles.to_vec(),
            seasonality: 1,
            ..Default::default()
        };
        for r in s.reps.iter_mut() {
            r.ql_num = vec![KahanSum::default(); quantiles.len()];
        }
        s
    }

    /// Scores one record: `instances[i]` against `actuals[i]`.
    #[allow(clippy::needless_range_loop)] // index-aligned arrays
    pub fn push(&mut self, instances: &[ForecastInstance], actuals: &[Vec<f64>], mask: u8) {
        let m = self.seasonality.max(1);
        for r in 0..REPS {
            if mask & (1 << r) == 0 {
                continue;
            }
            let s = &mut self.reps[r];
            s.records += 1;
            for (inst, y) in instances.iter().zip(actuals.iter()) {
                s.series += 1;
                let h = y.len().min(inst.point.len());
                let (mut abs_e, mut npts) = (0.0, 0u64);
                for t in 0..h {
                    let (yt, ft) = (y[t], inst.point[t]);
                    if !yt.is_finite() || !ft.is_finite() {
                        continue;
                    }
                    npts += 1;
                    let e = yt - ft;
                    s.points += 1;
                    s.abs_y.add(yt.abs());
                    s.abs_err.add(e.abs());
                    s.sq_err.add(e * e);
                    abs_e += e.abs();
                    if yt != 0.0 {
                        s.ape.add((e / yt).abs());
                        s.ape_n += 1;
                    }
                    for (qi, &tau) in self.quantiles.iter().enumerate() {
                        if let Some(&q) = inst.quantiles.get(qi).and_then(|v| v.get(t))
                            && q.is_finite()
                        {
                            s.ql_num[qi].add(
                                2.0 * (tau * (yt - q).max(0.0) + (1.0 - tau) * (q - yt).max(0.0)),
                            );
                        }
                    }
                }
                if let Some(hist) = &inst.history {
                    let hist: Vec<f64> = hist.iter().copied().filter(|v| v.is_finite()).collect();
                    if hist.len() > m && npts > 0 {
                        let scale = (m..hist.len())
                            .map(|t| (hist[t] - hist[t - m]).abs())
                            .sum::<f64>()
                            / (hist.len() - m) as f64;
                        if scale > 0.0 {
                            s.mase.add(abs_e / npts as f64 / scale);
                            s.mase_n += 1;
                        }
                    }
                }
            }
        }
    }

    pub fn merge(&mut self, o: &ForecastState) -> Result<(), String> {
        if self.quantiles != o.quantiles {
            return Err("forecast states with different quantiles".into());
        }
        for (a, b) in self.reps.iter_mut().zip(o.reps.iter()) {
            a.merge(b);
        }
        Ok(())
    }

    pub fn quantile_name(q: f64) -> String {
        format!("wQL_{q}")
    }

    pub fn report(&self) -> QualityReport {
        let n0 = self.reps[0].records;
        let mut rep = QualityReport {
            item_count: n0,
            ..Default::default()
        };
        let nq = self.quantiles.len();
        let per_rep: Vec<Vec<f64>> = self
            .reps
            .iter()
            .map(|s| {
                let denom = s.abs_y.value();
                let wql: Vec<f64> = s
                    .ql_num
                    .iter()
                    .map(|n| {
                        if s.points == 0 {
                            f64::NAN
                        } else if denom < 1e-12 {
                            n.value()
                        } else {
                            n.value() / denom
                        }
                    })
                    .collect();
                let mean = if nq == 0 {
                    f64::NAN
                } else {
                    wql.iter().sum::<f64>() / nq as f64
                };
                let mut v = wql;
                let nan_if = |c: bool, x: f64| if c { f64::NAN } else { x };
                v.push(mean);
                v.push(nan_if(
                    s.points == 0 || denom == 0.0,
                    s.abs_err.value() / denom,
                ));
                v.push(nan_if(
                    s.points == 0,
                    (s.sq_err.value() / s.points as f64).sqrt(),
                ));
                v.push(nan_if(s.ape_n == 0, s.ape.value() / s.ape_n as f64));
                v.push(nan_if(s.mase_n == 0, s.mase.value() / s.mase_n as f64));
                v
            })
            .collect();
        let mut names: Vec<String> = self
            .quantiles
            .iter()
            .map(|&q| Self::quantile_name(q))
            .collect();
        names.extend(["mean_wQL", "WAPE", "RMSE", "MAPE", "MASE"].map(String::from));
        for (i, name) in names.iter().enumerate() {
            let v: [f64; REPS] = std::array::from_fn(|r| per_rep[r][i]);
            rep.push(name, Metric::from_reps(&v, n0));
        }
        rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hand_computed_forecast() {
        let mut s = ForecastState::new(&[0.1, 0.5, 0.9]);
        let inst = ForecastInstance {
            quantiles: vec![vec![1.0, 1.0], vec![2.0, 3.0], vec![4.0, 5.0]],
            point: vec![2.0, 3.0],
            history: Some(vec![1.0, 3.0, 2.0]),
        };
        s.push(&[inst], &[vec![2.0, 4.0]], 1);
        let r = s.report();
        let g = |n: &str| r.get(n).unwrap().value;
        // sum|y| = 6. q0.1: y-q = 1, 3 -> 2*(0.1*4)=0.8 -> 0.8/6
        assert!((g("wQL_0.1") - 0.8 / 6.0).abs() < 1e-15);
        // q0.5: errors 0, 1 -> 2*0.5*1 = 1 -> 1/6
        assert!((g("wQL_0.5") - 1.0 / 6.0).abs() < 1e-15);
        // q0.9: q-y = 2, 1 -> 2*0.1*3 = 0.6 -> 0.1
        assert!((g("wQL_0.9") - 0.1).abs() < 1e-15);
        assert!((g("mean_wQL") - (0.8 / 6.0 + 1.0 / 6.0 + 0.1) / 3.0).abs() < 1e-15);
        assert!((g("WAPE") - 1.0 / 6.0).abs() < 1e-15);
        assert!((g("RMSE") - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((g("MAPE") - 0.125).abs() < 1e-15);
        // scale = (|3-1| + |2-3|)/2 = 1.5; mean|e| = 0.5 -> 1/3
        assert!((g("MASE") - 1.0 / 3.0).abs() < 1e-15);
    }
}
