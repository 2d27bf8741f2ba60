//! Regression: mae, mse, rmse, r2 (= 1 - SS_res / SS_tot; scikit-learn's convention when
//! SS_tot = 0: 1.0 if SS_res = 0 else 0.0).

use super::{Metric, QualityReport, REPS};
use crate::metrics::util::KahanSum;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RegSums {
    pub n: u64,
    pub abs_err: KahanSum,
    pub sq_err: KahanSum,
    pub y: KahanSum,
    pub y2: KahanSum,
}

impl RegSums {
    fn merge(&mut self, o: &RegSums) {
        self.n += o.n;
        self.abs_err.merge(&o.abs_err);
        self.sq_err.merge(&o.sq_err);
        self.y.merge(&o.y);
        self.y2.merge(&o.y2);
    }
    fn metrics(&self) -> [f64; 4] {
        let n = self.n as f64;
        if self.n == 0 {
            return [f64::NAN; 4];
        }
        let mae = self.abs_err.value() / n;
        let mse = self.sq_err.value() / n;
        let sy = self.y.value();
        // Σy² - (Σy)²/n cancels: for constant labels a merged state can leave a residue of a few
        // ulps of Σy² instead of 0, which would turn r2 into -1e16. Within that rounding error the
        // labels are constant (SS_tot = 0).
        let y2 = self.y2.value();
        let ss_tot = (y2 - sy * sy / n).max(0.0);
        let ss_tot = if ss_tot <= 64.0 * f64::EPSILON * y2.abs() {
            0.0
        } else {
            ss_tot
        };
        let ss_res = self.sq_err.value();
        let r2 = if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else if ss_res == 0.0 {
            1.0
        } else {
            0.0
        };
        [mae, mse, mse.sqrt(), r2]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegressionState {
    pub reps: [RegSums; REPS],
}

impl RegressionState {
    #[inline]
    pub fn push(&mut self, y_true: f64, y_pred: f64, mask: u8) {
        let e = y_pred - y_true;
        for (r, s) in self.reps.iter_mut().enumerate() {
            if mask & (1 << r) != 0 {
                s.n += 1;
                s.abs_err.add(e.abs());
                s.sq_err.add(e * e);
                s.y.add(y_true);
                s.y2.add(y_true * y_true);
            }
        }
    }
    pub fn merge(&mut self, o: &RegressionState) {
        for (a, b) in self.reps.iter_mut().zip(o.reps.iter()) {
            a.merge(b);
        }
    }
    pub fn report(&self) -> QualityReport {
        let all: Vec<[f64; 4]> = self.reps.iter().map(|s| s.metrics()).collect();
        let n = self.reps[0].n;
        let mut rep = QualityReport {
            item_count: n,
            ..Default::default()
        };
        for (i, name) in ["mae", "mse", "rmse", "r2"].iter().enumerate() {
            let v: [f64; REPS] = std::array::from_fn(|r| all[r][i]);
            rep.push(name, Metric::from_reps(&v, n));
        }
        rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hand_computed() {
        let mut s = RegressionState::default();
        // y = [1, 2, 3], yhat = [2, 2, 5]: errors 1, 0, 2.
        for (y, p) in [(1.0, 2.0), (2.0, 2.0), (3.0, 5.0)] {
            s.push(y, p, 1);
        }
        let r = s.report();
        assert!((r.get("mae").unwrap().value - 1.0).abs() < 1e-15);
        assert!((r.get("mse").unwrap().value - 5.0 / 3.0).abs() < 1e-15);
        assert!((r.get("rmse").unwrap().value - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        // SS_tot = 2, SS_res = 5 -> r2 = -1.5
        assert!((r.get("r2").unwrap().value + 1.5).abs() < 1e-12);
        assert_eq!(r.item_count, 3);
    }

    #[test]
    fn constant_labels_have_zero_total_sum_of_squares_despite_rounding() {
        // A merged state of one constant label can carry Σy² one ulp above (Σy)²/n (the
        // split/merge property test found r2 = -7.6e15 against the single pass's 0). Within
        // rounding error SS_tot is 0: r2 is scikit-learn's 0.0 (predictions off), never huge.
        for k in 1..200 {
            let y = k as f64 / 7.0;
            let mut s = RegSums::default();
            s.n = 1;
            s.abs_err.add(0.5);
            s.sq_err.add(0.25);
            s.y.add(y);
            s.y2.add(f64::from_bits((y * y).to_bits() + 1));
            assert_eq!(s.metrics()[3], 0.0, "y = {y}");
        }
        // A real spread is kept: y = 1, 2 (SS_tot = 0.5), predictions off by 0.5 (SS_res = 0.5).
        let mut s = RegSums::default();
        for y in [1.0, 2.0] {
            s.n += 1;
            s.abs_err.add(0.5);
            s.sq_err.add(0.25);
            s.y.add(y);
            s.y2.add(y * y);
        }
        assert!((s.metrics()[3] - 0.0).abs() < 1e-12);
    }
}
