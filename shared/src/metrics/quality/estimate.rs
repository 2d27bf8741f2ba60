//! Label-free performance estimation for binary classification (confidence-based performance
//! estimation, as NannyML's CBPE), from a mergeable score histogram.
//!
//! # State (mergeable)
//! A window is summarised by [`ScoreHistogram`]: how many of its scores (and their sum) fall
//! into each of [`SUB_BINS`] equal-width sub-bins of each bin of the reference [`Calibration`],
//! how many lie below / above the reference's score range, and how many records had no readable
//! score. Histograms of the same calibration merge by adding counts
//! (across files, windows and workers; counts exactly, score sums up to float rounding); merging
//! histograms of different calibrations is an error.
//!
//! # Estimate
//! Under the calibration, a record in sub-bin `i` is positive with probability `p_i`: the
//! calibration's isotonic fit, linearly interpolated between the mean reference scores of its
//! pooled blocks, at the mean of the window's scores in the sub-bin. The expected confusion matrix sums
//! `c_i·p_i` (positives) and `c_i·(1-p_i)` (negatives) over predicted positive / predicted
//! negative sub-bins; accuracy, precision, recall and F1 follow from it (0 for an undefined
//! ratio, as model quality). The estimated ROC AUC is the expected number of (positive, negative)
//! pairs the scores order correctly over the expected number of pairs, both over pairs of
//! distinct records: the sub-bins ranked by score, each sub-bin's expected negatives out-ranked by
//! the expected positives above it, and half of its own pairs (ties within a sub-bin).
//!
//! # Uncertainty: `estimated_<metric>_std`
//! The standard deviation of the *realised* metric around the estimate if the calibration holds,
//! by a seeded simulation ([`SIMULATIONS`] draws, deterministic): each draw perturbs every bin's
//! `p_b` by its reference sampling error (normal, variance `p(1-p)/n_ref`), draws the bin's
//! positives from `Binomial(c_b, p_b')`, and computes the metrics from the drawn counts. It
//! covers the window's own label noise and the reference's finite sample; it does not cover a
//! calibration that no longer holds (concept shift), which no score-based estimate can see.
//!
//! # Reliability: `estimation_reliable`
//! `estimation_out_of_reference_share` is the share of the window's scores where the reference
//! had no labels: below its lowest score, above its highest, or in a bin without reference
//! records. There the calibration is an extrapolation. The estimate is reliable (1) when the
//! share is at most the calibration's `max_out_of_reference_share` (default 0.05), else
//! unreliable (0).

use super::calibration::Calibration;
use super::{f_beta, ratio};
use serde::{Deserialize, Serialize};

/// Draws of the uncertainty simulation.
pub const SIMULATIONS: usize = 200;

/// The names of the estimated metrics, in output order.
pub const ESTIMATED_METRICS: [&str; 5] = [
    "estimated_accuracy",
    "estimated_precision",
    "estimated_recall",
    "estimated_f1",
    "estimated_auc",
];

/// Sub-bins per calibration bin (equal widths of score): the window's finer ranking for the AUC
/// and its mean score per sub-bin for the interpolated probability.
pub const SUB_BINS: usize = 8;

/// A window's scores, binned by a calibration (mergeable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreHistogram {
    /// Records per sub-bin (`SUB_BINS` per calibration bin, in score order).
    pub counts: Vec<u64>,
    /// Sum of the scores per sub-bin.
    pub sums: Vec<f64>,
    /// Scores below the reference's lowest / above its highest (also counted in `counts`).
    pub below_reference: u64,
    pub above_reference: u64,
    /// Records whose score could not be read (not counted in `counts`).
    pub invalid: u64,
    /// Identifies the calibration (edges), so only histograms of one calibration merge.
    pub calibration_id: u64,
}

/// The identity of a calibration's bins.
fn calibration_id(c: &Calibration) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for e in c.edges.iter().chain([
        &c.probability_threshold,
        &c.reference.min_score,
        &c.reference.max_score,
    ]) {
        for b in e.to_bits().to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl ScoreHistogram {
    pub fn new(c: &Calibration) -> ScoreHistogram {
        ScoreHistogram {
            counts: vec![0; c.bins() * SUB_BINS],
            sums: vec![0.0; c.bins() * SUB_BINS],
            below_reference: 0,
            above_reference: 0,
            invalid: 0,
            calibration_id: calibration_id(c),
        }
    }

    #[inline]
    pub fn push(&mut self, c: &Calibration, score: f64) {
        if !score.is_finite() {
            self.invalid += 1;
            return;
        }
        if score < c.reference.min_score {
            self.below_reference += 1;
        } else if score > c.reference.max_score {
            self.above_reference += 1;
        }
        let b = c.bin(score).min(c.bins() - 1);
        let (lo, hi) = c.bin_bounds(b);
        let j = if hi > lo {
            (((score - lo) / (hi - lo)) * SUB_BINS as f64)
                .floor()
                .clamp(0.0, (SUB_BINS - 1) as f64) as usize
        } else {
            0
        };
        let i = (b * SUB_BINS + j).min(self.counts.len().saturating_sub(1));
        self.counts[i] += 1;
        self.sums[i] += score;
    }

    pub fn merge(&mut self, o: &ScoreHistogram) -> Result<(), String> {
        if o.calibration_id != self.calibration_id
            || o.counts.len() != self.counts.len()
            || o.sums.len() != self.sums.len()
        {
            return Err("cannot merge score histograms of different calibrations".into());
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        for (a, b) in self.sums.iter_mut().zip(&o.sums) {
            *a += b;
        }
        self.below_reference += o.below_reference;
        self.above_reference += o.above_reference;
        self.invalid += o.invalid;
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The interpolation points: one per block of bins that pool-adjacent-violators pooled (equal
/// calibrated values), at the block's mean reference score. One point per pooled block rather than
/// per bin, so that the curve rises through a pooled stretch instead of staying flat across it
/// (flat stretches understate how well the scores rank, and so the AUC).
fn block_points(c: &Calibration) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64, f64)> = Vec::new(); // (score sum, records, p)
    for b in (0..c.bins()).filter(|b| c.counts[*b] > 0) {
        let n = c.counts[b] as f64;
        match points.last_mut() {
            Some(last) if last.2 == c.calibrated[b] => {
                last.0 += c.mean_scores[b] * n;
                last.1 += n;
            }
            _ => points.push((c.mean_scores[b] * n, n, c.calibrated[b])),
        }
    }
    points.into_iter().map(|(s, n, p)| (s / n, p)).collect()
}

/// The calibrated probability at `score`: linear between the (mean reference score, calibrated
/// probability) points of the non-empty bins, clamped at the ends.
fn interpolate(points: &[(f64, f64)], score: f64) -> f64 {
    let i = points.partition_point(|p| p.0 < score);
    if i == 0 {
        return points.first().map_or(0.0, |p| p.1);
    }
    if i == points.len() {
        return points.last().map_or(0.0, |p| p.1);
    }
    let ((x0, y0), (x1, y1)) = (points[i - 1], points[i]);
    if x1 > x0 {
        y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    } else {
        y1
    }
}

/// One estimated metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimated {
    pub value: f64,
    /// See the module's *Uncertainty*.
    pub std: f64,
}

/// The expected confusion matrix of a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpectedConfusion {
    pub true_positives: f64,
    pub false_positives: f64,
    pub true_negatives: f64,
    pub false_negatives: f64,
}

/// The estimate of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub records: u64,
    pub invalid: u64,
    pub confusion: ExpectedConfusion,
    /// `(name, estimate)` for [`ESTIMATED_METRICS`].
    pub metrics: Vec<(&'static str, Estimated)>,
    pub out_of_reference_share: f64,
    pub max_out_of_reference_share: f64,
    pub reliable: bool,
}

impl Estimate {
    pub fn get(&self, name: &str) -> Option<Estimated> {
        self.metrics.iter().find(|(n, _)| *n == name).map(|m| m.1)
    }

    /// The metrics for CloudWatch / summaries: each `estimated_<m>` and `estimated_<m>_std`,
    /// then `estimation_out_of_reference_share` and `estimation_reliable` (1 / 0).
    pub fn scalars(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (n, m) in &self.metrics {
            out.push((n.to_string(), m.value));
            out.push((format!("{n}_std"), m.std));
        }
        out.push((
            "estimation_out_of_reference_share".into(),
            self.out_of_reference_share,
        ));
        out.push((
            "estimation_reliable".into(),
            if self.reliable { 1.0 } else { 0.0 },
        ));
        out
    }

    /// The `estimation.json` document.
    pub fn to_json(&self, c: &Calibration) -> serde_json::Value {
        let num = crate::metrics::util::json_f64;
        let metrics: serde_json::Map<String, serde_json::Value> = self
            .metrics
            .iter()
            .map(|(n, m)| {
                (
                    n.to_string(),
                    serde_json::json!({"value": num(m.value), "standard_deviation": num(m.std)}),
                )
            })
            .collect();
        serde_json::json!({
            "version": 1,
            "method": "cbpe",
            "calibration": {"method": c.method, "bins": c.bins(), "probability_threshold": c.probability_threshold, "reference_records": c.reference.records},
            "records": self.records,
            "invalid_scores": self.invalid,
            "expected_confusion_matrix": self.confusion,
            "metrics": metrics,
            "reliability": {
                "reliable": self.reliable,
                "out_of_reference_share": num(self.out_of_reference_share),
                "max_out_of_reference_share": self.max_out_of_reference_share,
                "statistic": "share of the window's scores outside the reference's score range or in bins without reference labels",
            },
        })
    }
}

/// The five metrics from per-sub-bin (positives, negatives) masses. `expected`: the masses are
/// expectations (`c·p`, `c·(1-p)`), so a record is never paired with itself in the AUC: its
/// `p·(1-p)` leaves the pair count `E[P·N]` and its sub-bin's ties; otherwise they are drawn
/// counts, for which `P·N` is exact.
fn metrics_of(
    c: &Calibration,
    pos: &[f64],
    neg: &[f64],
    expected: bool,
) -> ([f64; 5], ExpectedConfusion) {
    let mut m = ExpectedConfusion::default();
    for b in 0..pos.len() {
        if c.predicted_positive(b / SUB_BINS) {
            m.true_positives += pos[b];
            m.false_positives += neg[b];
        } else {
            m.false_negatives += pos[b];
            m.true_negatives += neg[b];
        }
    }
    let total = m.true_positives + m.false_positives + m.true_negatives + m.false_negatives;
    let accuracy = ratio(m.true_positives + m.true_negatives, total);
    let precision = ratio(m.true_positives, m.true_positives + m.false_positives);
    let recall = ratio(m.true_positives, m.true_positives + m.false_negatives);
    let f1 = f_beta(precision, recall, 1.0);
    // AUC: bins from the highest score down.
    let (p_all, n_all): (f64, f64) = (pos.iter().sum(), neg.iter().sum());
    let mut above = 0.0;
    let mut area = 0.0;
    let mut self_pairs = 0.0;
    for b in (0..pos.len()).rev() {
        let n = pos[b] + neg[b];
        let own = if expected && n > 0.0 {
            pos[b] * neg[b] / n
        } else {
            0.0
        };
        area += neg[b] * above + (pos[b] * neg[b] - own) / 2.0;
        self_pairs += own;
        above += pos[b];
    }
    let pairs = p_all * n_all - self_pairs;
    let auc = if p_all > 0.0 && n_all > 0.0 && pairs > 0.0 {
        area / pairs
    } else {
        f64::NAN
    };
    ([accuracy, precision, recall, f1, auc], m)
}

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Binomial(n, p): exact for small n, else the normal approximation (rounded, clamped).
    fn binomial(&mut self, n: u64, p: f64) -> f64 {
        if n <= 64 {
            (0..n).filter(|_| self.uniform() < p).count() as f64
        } else {
            let nf = n as f64;
            (nf * p + (nf * p * (1.0 - p)).sqrt() * self.normal())
                .round()
                .clamp(0.0, nf)
        }
    }
}

/// Estimates a window's performance from its histogram (None without records). `seed` makes
/// the uncertainty simulation reproducible.
pub fn estimate(c: &Calibration, h: &ScoreHistogram, seed: u64) -> Option<Estimate> {
    let records = h.records();
    if records == 0 {
        return None;
    }
    if h.counts.len() != c.bins() * SUB_BINS {
        return None;
    }
    let points = block_points(c);
    // The calibrated probability of each sub-bin, at the mean of the window's scores in it.
    let p_sub: Vec<f64> = (0..h.counts.len())
        .map(|i| {
            if h.counts[i] == 0 {
                0.0
            } else {
                interpolate(&points, h.sums[i] / h.counts[i] as f64).clamp(0.0, 1.0)
            }
        })
        .collect();
    let pos: Vec<f64> = (0..h.counts.len())
        .map(|i| h.counts[i] as f64 * p_sub[i])
        .collect();
    let neg: Vec<f64> = (0..h.counts.len())
        .map(|i| h.counts[i] as f64 - pos[i])
        .collect();
    let (values, confusion) = metrics_of(c, &pos, &neg, true);
    // Uncertainty: see the module's docs.
    let mut rng = Rng(seed ^ 0xCB9E_0000_0000_0001);
    let mut sums = [0.0f64; 5];
    let mut squares = [0.0f64; 5];
    let mut draws = [0usize; 5];
    let n = h.counts.len();
    let (mut dpos, mut dneg) = (vec![0.0; n], vec![0.0; n]);
    let mut shift = vec![0.0; c.bins()];
    for _ in 0..SIMULATIONS {
        // One reference sampling error per calibration bin, shared by its sub-bins.
        for (b, d) in shift.iter_mut().enumerate() {
            let n_ref = c.counts[b].max(1) as f64;
            let pv = c.calibrated[b].clamp(0.5 / n_ref, 1.0 - 0.5 / n_ref);
            *d = (pv * (1.0 - pv) / n_ref).sqrt() * rng.normal();
        }
        for i in 0..n {
            if h.counts[i] == 0 {
                dpos[i] = 0.0;
                dneg[i] = 0.0;
                continue;
            }
            let p = (p_sub[i] + shift[i / SUB_BINS]).clamp(0.0, 1.0);
            let k = rng.binomial(h.counts[i], p);
            dpos[i] = k;
            dneg[i] = h.counts[i] as f64 - k;
        }
        let (v, _) = metrics_of(c, &dpos, &dneg, false);
        for i in 0..5 {
            if v[i].is_finite() {
                sums[i] += v[i];
                squares[i] += v[i] * v[i];
                draws[i] += 1;
            }
        }
    }
    let metrics = ESTIMATED_METRICS
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let d = draws[i].max(1) as f64;
            let mean = sums[i] / d;
            let std = (squares[i] / d - mean * mean).max(0.0).sqrt();
            (
                *n,
                Estimated {
                    value: values[i],
                    std: if draws[i] > 1 { std } else { f64::NAN },
                },
            )
        })
        .collect();
    let empty_ref: u64 = (0..n)
        .filter(|i| c.counts[i / SUB_BINS] == 0)
        .map(|i| h.counts[i])
        .sum();
    let outside = (h.below_reference + h.above_reference + empty_ref).min(records);
    let share = outside as f64 / records as f64;
    let max = c.reliability.max_out_of_reference_share;
    Some(Estimate {
        records,
        invalid: h.invalid,
        confusion,
        metrics,
        out_of_reference_share: share,
        max_out_of_reference_share: max,
        reliable: share <= max,
    })
}

#[cfg(test)]
mod tests {
    use super::super::calibration::fit;
    use super::*;

    /// Reference: scores i/1000 with exactly the score's share of positives (calibrated).
    fn calibration() -> Calibration {
        let mut e = Vec::new();
        for i in 1..1000u64 {
            let s = i as f64 / 1000.0;
            // 100 records per score, round(100·s) positive.
            let k = (100.0 * s).round() as u64;
            e.push((s, false, 100 - k));
            e.push((s, true, k));
        }
        e.retain(|x| x.2 > 0);
        fit(&e, 0.5, None, Some(50), 0.05).unwrap()
    }

    #[test]
    fn the_estimate_of_a_calibrated_window_is_the_expected_confusion_matrix() {
        let c = calibration();
        assert!(c.calibrated.windows(2).all(|w| w[0] <= w[1]));
        let mut h = ScoreHistogram::new(&c);
        // One score per bin centre-ish: s = 0.9 (x1000), s = 0.1 (x1000).
        for _ in 0..1000 {
            h.push(&c, 0.9);
            h.push(&c, 0.1);
        }
        let e = estimate(&c, &h, 1).unwrap();
        // Each score is one sub-bin: its probability is the interpolated calibration there.
        let m = e.confusion;
        let p_hi = m.true_positives / (m.true_positives + m.false_positives);
        let p_lo = m.false_negatives / (m.false_negatives + m.true_negatives);
        assert!(
            (p_hi - 0.9).abs() < 0.01 && (p_lo - 0.1).abs() < 0.01,
            "{p_hi} {p_lo}"
        );
        let acc = e.get("estimated_accuracy").unwrap();
        assert!((acc.value - (p_hi + 1.0 - p_lo) / 2.0).abs() < 1e-12);
        // Bernoulli std of the accuracy is about sqrt(0.09/2000) = 0.0067.
        assert!(acc.std > 0.004 && acc.std < 0.01, "{}", acc.std);
        let prec = e.get("estimated_precision").unwrap().value;
        assert!((prec - p_hi).abs() < 1e-12);
        let auc = e.get("estimated_auc").unwrap().value;
        // 1000 records at each score: pairs of distinct records only.
        let (n, d) = (1000.0, 999.0);
        let num =
            n * n * p_hi * (1.0 - p_lo) + n * d * 0.5 * (p_hi * (1.0 - p_hi) + p_lo * (1.0 - p_lo));
        let den = (n * (p_hi + p_lo)) * (n * (2.0 - p_hi - p_lo))
            - n * (p_hi * (1.0 - p_hi) + p_lo * (1.0 - p_lo));
        assert!((auc - num / den).abs() < 1e-12, "{auc} {}", num / den);
        assert!(e.reliable);
        assert_eq!(e.out_of_reference_share, 0.0);
        // Deterministic.
        assert_eq!(estimate(&c, &h, 1).unwrap(), e);
    }

    #[test]
    fn interpolation_is_linear_between_points_and_clamped_outside() {
        let pts = [(0.2, 0.1), (0.4, 0.5), (0.8, 0.9)];
        assert_eq!(interpolate(&pts, 0.0), 0.1);
        assert_eq!(interpolate(&pts, 1.0), 0.9);
        assert!((interpolate(&pts, 0.3) - 0.3).abs() < 1e-12);
        assert!((interpolate(&pts, 0.6) - 0.7).abs() < 1e-12);
        assert!((interpolate(&pts, 0.4) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn histograms_merge_like_one_pass_and_refuse_other_calibrations() {
        let c = calibration();
        let (mut a, mut b, mut all) = (
            ScoreHistogram::new(&c),
            ScoreHistogram::new(&c),
            ScoreHistogram::new(&c),
        );
        for i in 0..5000u64 {
            let s = ((i * 7919) % 1003) as f64 / 1000.0;
            if i % 3 == 0 { &mut a } else { &mut b }.push(&c, s);
            all.push(&c, s);
        }
        a.push(&c, f64::NAN);
        all.push(&c, f64::NAN);
        a.merge(&b).unwrap();
        // Counts exactly; score sums up to float rounding.
        assert_eq!(
            (&a.counts, a.below_reference, a.above_reference, a.invalid),
            (
                &all.counts,
                all.below_reference,
                all.above_reference,
                all.invalid
            )
        );
        for (x, y) in a.sums.iter().zip(&all.sums) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0));
        }
        let (ea, eb) = (estimate(&c, &a, 3).unwrap(), estimate(&c, &all, 3).unwrap());
        assert_eq!(ea.records, eb.records);
        for ((n, x), (_, y)) in ea.metrics.iter().zip(&eb.metrics) {
            assert!((x.value - y.value).abs() < 1e-12, "{n}");
            assert!((x.std - y.std).abs() < 1e-3, "{n}");
        }
        let other = fit(
            &[(0.2, false, 300), (0.7, true, 300)],
            0.4,
            None,
            None,
            0.05,
        )
        .unwrap();
        assert!(a.merge(&ScoreHistogram::new(&other)).is_err());
    }

    #[test]
    fn scores_outside_the_reference_make_the_estimate_unreliable() {
        let c = calibration();
        let mut h = ScoreHistogram::new(&c);
        for _ in 0..90 {
            h.push(&c, 0.5);
        }
        for _ in 0..10 {
            h.push(&c, 0.9995); // above the reference's highest score 0.999
        }
        let e = estimate(&c, &h, 1).unwrap();
        assert!((e.out_of_reference_share - 0.1).abs() < 1e-12);
        assert!(!e.reliable);
        let s = e.scalars();
        assert!(s.contains(&("estimation_reliable".into(), 0.0)));
        assert!(s.iter().any(|(n, _)| n == "estimated_auc_std"));
        assert!(estimate(&c, &ScoreHistogram::new(&c), 1).is_none());
    }
}
