//! The reference calibration of a binary classifier's scores, for label-free performance
//! estimation ([`super::estimate`]).
//!
//! # Method: binned isotonic regression (pool-adjacent-violators)
//! The reference window's (score, label) pairs are cut into score bins at the reference's score
//! quantiles (about equal counts per bin, at least [`MIN_PER_BIN`] labels each, at most
//! [`MAX_BINS`] bins), with the classification threshold always an edge, so that every bin is
//! wholly predicted positive or wholly predicted negative. Each bin's share of positives is then
//! made non-decreasing in the score by pool-adjacent-violators (weighted by the bin counts): the
//! calibrated probability of a score is its bin's pooled share.
//!
//! Why isotonic rather than Platt scaling: Platt fits a logistic curve of the score, which is
//! right only when the model's miscalibration has that shape; tree ensembles, clipped or
//! already-calibrated scores are not sigmoid-shaped. Isotonic regression assumes only that a
//! higher score never means a lower chance of the positive class (which any useful ranking
//! model satisfies), and needs nothing but counts per bin — which is also what makes the
//! window side mergeable: a window is summarised by how many of its scores fall into each bin.
//! Its cost — it needs more labels than Platt's two parameters — is small for a reference window
//! of thousands of labels, and the reference's finite sample is part of the reported uncertainty.
//! (NannyML's CBPE also calibrates with isotonic regression.)
//!
//! # Bins
//! Bin `i` holds scores `s` with `edges[i-1] < s <= edges[i]` (bin 0: `s <= edges[0]`; the last
//! bin: `s > edges[last]`). A record is predicted positive when `score > probability_threshold`,
//! as in model quality.

use serde::{Deserialize, Serialize};

/// The `kind` of a calibration document.
pub const CALIBRATION_KIND: &str = "driftloop.calibration";
/// The calibration document version this build writes and reads.
pub const CALIBRATION_VERSION: u32 = 1;
/// At most this many score bins.
pub const MAX_BINS: usize = 100;
/// Bins get at least about this many reference labels (fewer bins for a small reference).
pub const MIN_PER_BIN: u64 = 200;
/// Default of [`Reliability::max_out_of_reference_share`].
pub const DEFAULT_MAX_OUT_OF_REFERENCE: f64 = 0.05;

/// When an estimate is flagged unreliable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    /// Unreliable when more than this share of a window's scores lies where the reference had no
    /// labels (below its lowest score, above its highest, or in a bin without reference records).
    pub max_out_of_reference_share: f64,
}

/// What the reference window measured (for context; not used by the estimate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSummary {
    pub records: u64,
    pub positives: u64,
    pub min_score: f64,
    pub max_score: f64,
    /// Realised accuracy and ROC AUC on the reference window.
    pub accuracy: Option<f64>,
    pub auc: Option<f64>,
}

/// A reference calibration (the `calibration.json` document `driftloop-metrics calibrate`
/// writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Always [`CALIBRATION_KIND`].
    pub kind: String,
    /// [`CALIBRATION_VERSION`].
    pub version: u32,
    /// `binned-isotonic`.
    pub method: String,
    /// Predicted positive when `score > probability_threshold` (an edge of the bins).
    pub probability_threshold: f64,
    /// Where the score was read (the estimate reads it there unless told otherwise).
    pub probability_attribute: Option<String>,
    /// Bin edges, strictly increasing (`edges.len() + 1` bins).
    pub edges: Vec<f64>,
    /// Reference records per bin.
    pub counts: Vec<u64>,
    /// Reference positives per bin.
    pub positives: Vec<u64>,
    /// Calibrated probability of the positive class per bin (non-decreasing).
    pub calibrated: Vec<f64>,
    /// Mean reference score per bin (0 for an empty bin): the estimate interpolates the
    /// calibrated probability linearly between these points (as scikit-learn's
    /// `IsotonicRegression` does between its thresholds), clamped at the ends.
    pub mean_scores: Vec<f64>,
    pub reliability: Reliability,
    pub reference: ReferenceSummary,
}

impl Calibration {
    /// The bin of a score.
    #[inline]
    pub fn bin(&self, score: f64) -> usize {
        self.edges.partition_point(|e| *e < score)
    }

    /// The score range of a bin: its edges, the reference's lowest / highest score for the open
    /// first / last bin (`lo >= hi` when the bin holds no range, e.g. a threshold below every
    /// reference score).
    pub fn bin_bounds(&self, bin: usize) -> (f64, f64) {
        let lo = if bin == 0 {
            self.reference.min_score
        } else {
            self.edges[bin - 1]
        };
        let hi = if bin >= self.edges.len() {
            self.reference.max_score
        } else {
            self.edges[bin]
        };
        (lo, hi)
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.edges.len() + 1
    }

    /// Whether the bin's records are predicted positive (`score > threshold`).
    pub fn predicted_positive(&self, bin: usize) -> bool {
        bin >= self.edges.len() || self.edges[bin] > self.probability_threshold
    }

    /// Parses and checks a calibration document: its kind and version, and that the bins are
    /// consistent (else an error naming what was expected).
    pub fn parse(text: &str) -> Result<Calibration, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("calibration: not JSON: {e}"))?;
        if v["kind"] != CALIBRATION_KIND {
            return Err(format!(
                "calibration: expected \"kind\": \"{CALIBRATION_KIND}\" (a file written by driftloop-metrics calibrate), found {}",
                v["kind"]
            ));
        }
        if v["version"].as_u64() != Some(u64::from(CALIBRATION_VERSION)) {
            return Err(format!(
                "calibration: version {} is not supported (this build reads version {CALIBRATION_VERSION})",
                v["version"]
            ));
        }
        let c: Calibration = serde_json::from_value(v).map_err(|e| format!("calibration: {e}"))?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        let n = self.bins();
        if self.counts.len() != n
            || self.positives.len() != n
            || self.calibrated.len() != n
            || self.mean_scores.len() != n
        {
            return Err(format!(
                "calibration: {} edges need {n} counts, positives, calibrated values and mean scores",
                self.edges.len()
            ));
        }
        if !self.edges.iter().all(|e| e.is_finite()) || !self.edges.windows(2).all(|w| w[0] < w[1])
        {
            return Err("calibration: edges must be finite and strictly increasing".into());
        }
        if !self.calibrated.iter().all(|p| (0.0..=1.0).contains(p))
            || !self.calibrated.windows(2).all(|w| w[0] <= w[1])
        {
            return Err(
                "calibration: calibrated values must be in [0, 1] and non-decreasing".into(),
            );
        }
        if !self.mean_scores.iter().all(|m| m.is_finite()) {
            return Err("calibration: mean scores must be finite".into());
        }
        if self.positives.iter().zip(&self.counts).any(|(k, n)| k > n) {
            return Err("calibration: a bin has more positives than records".into());
        }
        if !(self.reliability.max_out_of_reference_share >= 0.0) {
            return Err("calibration: max_out_of_reference_share must be >= 0".into());
        }
        Ok(())
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Weighted pool-adjacent-violators: the non-decreasing sequence closest (weighted least squares)
/// to `ratio[i] = k[i] / n[i]`. Entries with `n[i] == 0` take the value of their neighbours.
pub fn pav(k: &[u64], n: &[u64]) -> Vec<f64> {
    // Blocks of (positives, records, bins).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (ki, ni) in k.iter().zip(n) {
        if *ni == 0 {
            continue;
        }
        let mut b = (*ki as f64, *ni as f64, 1usize);
        while let Some(last) = blocks.last() {
            if last.0 / last.1 >= b.0 / b.1 {
                b = (b.0 + last.0, b.1 + last.1, b.2 + last.2);
                blocks.pop();
            } else {
                break;
            }
        }
        blocks.push(b);
    }
    let mut fitted = Vec::with_capacity(k.len());
    for (sk, sn, len) in &blocks {
        fitted.extend(std::iter::repeat_n(sk / sn, *len));
    }
    // Spread over all bins: empty bins take the previous non-empty value (the first ones the
    // first value).
    let mut out = Vec::with_capacity(n.len());
    let mut it = fitted.into_iter();
    let mut last: Option<f64> = None;
    for ni in n {
        if *ni > 0 {
            last = it.next();
        }
        out.push(last.unwrap_or(f64::NAN));
    }
    let first = out.iter().copied().find(|p| !p.is_nan()).unwrap_or(0.0);
    for p in &mut out {
        if p.is_nan() {
            *p = first;
        }
    }
    out
}

/// Fits a calibration from the reference's `(score, positive, count)` entries sorted by score
/// ascending. `bins`: target number of bins (None: `records / MIN_PER_BIN`, at most
/// [`MAX_BINS`]). Errors when the reference has no records or only one class.
pub fn fit(
    entries: &[(f64, bool, u64)],
    probability_threshold: f64,
    probability_attribute: Option<String>,
    bins: Option<usize>,
    max_out_of_reference_share: f64,
) -> Result<Calibration, String> {
    let total: u64 = entries.iter().map(|e| e.2).sum();
    let positives: u64 = entries.iter().filter(|e| e.1).map(|e| e.2).sum();
    if total == 0 {
        return Err("calibration needs labelled reference records; none were evaluated".into());
    }
    if positives == 0 || positives == total {
        return Err(format!(
            "calibration needs both classes in the reference; all {total} labels are {}",
            if positives == 0 {
                "negative"
            } else {
                "positive"
            }
        ));
    }
    if !probability_threshold.is_finite() {
        return Err("the probability threshold must be finite".into());
    }
    let target = bins
        .unwrap_or((total / MIN_PER_BIN) as usize)
        .clamp(2, MAX_BINS) as u64;
    // Quantile edges: cut after the distinct score where the running count passes k·total/target.
    let mut edges = vec![probability_threshold];
    let (mut run, mut k) = (0u64, 1u64);
    let max_score = entries.last().map(|e| e.0).unwrap_or(0.0);
    for (i, e) in entries.iter().enumerate() {
        run += e.2;
        let next_differs = entries.get(i + 1).is_some_and(|n| n.0 != e.0);
        if next_differs && run * target >= k * total {
            edges.push(e.0);
            while run * target >= k * total {
                k += 1;
            }
        }
    }
    edges.retain(|e| e.is_finite() && *e < max_score || *e == probability_threshold);
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    let mut cal = Calibration {
        kind: CALIBRATION_KIND.into(),
        version: CALIBRATION_VERSION,
        method: "binned-isotonic".into(),
        probability_threshold,
        probability_attribute,
        counts: vec![0; edges.len() + 1],
        positives: vec![0; edges.len() + 1],
        calibrated: Vec::new(),
        mean_scores: vec![0.0; edges.len() + 1],
        edges,
        reliability: Reliability {
            max_out_of_reference_share,
        },
        reference: ReferenceSummary {
            records: total,
            positives,
            min_score: entries.first().map(|e| e.0).unwrap_or(0.0),
            max_score,
            accuracy: None,
            auc: None,
        },
    };
    for (s, pos, c) in entries {
        let b = cal.bin(*s);
        cal.counts[b] += c;
        cal.mean_scores[b] += s * *c as f64;
        if *pos {
            cal.positives[b] += c;
        }
    }
    // The threshold edge can leave a sliver of a bin beside it: merge bins with under a quarter
    // of the intended count into a neighbour (never across the threshold).
    let min_count = (total / target / 4).max(1);
    let mut b = 0;
    while b < cal.counts.len() {
        let small = cal.counts[b] > 0 && cal.counts[b] < min_count;
        let edge = if !small {
            None
        } else if b > 0 && cal.edges[b - 1] != probability_threshold {
            Some(b - 1)
        } else if b < cal.edges.len() && cal.edges[b] != probability_threshold {
            Some(b)
        } else {
            None
        };
        match edge {
            Some(i) => {
                cal.edges.remove(i);
                let (n, k) = (cal.counts.remove(i + 1), cal.positives.remove(i + 1));
                cal.counts[i] += n;
                cal.positives[i] += k;
                let sum = cal.mean_scores.remove(i + 1);
                cal.mean_scores[i] += sum;
                b = i;
            }
            None => b += 1,
        }
    }
    cal.calibrated = pav(&cal.positives, &cal.counts);
    for (m, n) in cal.mean_scores.iter_mut().zip(&cal.counts) {
        *m = if *n > 0 { *m / *n as f64 } else { 0.0 };
    }
    cal.check()?;
    Ok(cal)
}

/// Fits a calibration from a binary model-quality state (the reference window's joined scores
/// and labels), with its realised accuracy and AUC recorded in `reference`.
pub fn fit_binary(
    state: &super::binary::BinaryState,
    report: &super::QualityReport,
    probability_threshold: f64,
    probability_attribute: Option<String>,
    bins: Option<usize>,
    max_out_of_reference_share: f64,
) -> Result<Calibration, String> {
    let mut s = state.clone();
    s.compact();
    let mut entries: Vec<(f64, bool, u64)> = s
        .scores
        .iter()
        .map(|e| (e.score, e.positive, e.count))
        .collect();
    entries.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut c = fit(
        &entries,
        probability_threshold,
        probability_attribute,
        bins,
        max_out_of_reference_share,
    )?;
    c.reference.accuracy = report.get("accuracy").map(|m| m.value);
    c.reference.auc = report.get("auc").map(|m| m.value).filter(|v| v.is_finite());
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pav_pools_violators_and_fills_empty_bins() {
        // 0.2, 0.6, 0.4 (violation) -> 0.2, 0.5, 0.5; the empty bin takes its neighbour's value.
        let p = pav(&[2, 6, 0, 4], &[10, 10, 0, 10]);
        assert_eq!(p.len(), 4);
        assert!((p[0] - 0.2).abs() < 1e-12);
        for x in &p[1..] {
            assert!((x - 0.5).abs() < 1e-12, "{p:?}");
        }
        // Weighted: 9/10 then 1/90 pool to 10/100.
        let p = pav(&[9, 1], &[10, 90]);
        assert!((p[0] - 0.1).abs() < 1e-12 && (p[1] - 0.1).abs() < 1e-12);
        // Leading empty bin takes the first value.
        let p = pav(&[0, 3], &[0, 4]);
        assert_eq!(p, vec![0.75, 0.75]);
    }

    fn entries(n: u64) -> Vec<(f64, bool, u64)> {
        // Scores i/n, positive when i is odd above the middle: rising share of positives.
        let mut v = Vec::new();
        for i in 0..n {
            let s = i as f64 / n as f64;
            let pos = (i * 7919) % n < i;
            v.push((s, pos, 1));
        }
        v
    }

    #[test]
    fn fit_makes_threshold_an_edge_monotone_bins_and_round_trips() {
        let e = entries(10_000);
        let c = fit(&e, 0.5, Some("score".into()), None, 0.05).unwrap();
        assert!(c.edges.contains(&0.5));
        assert_eq!(c.bins(), c.counts.len());
        assert!(c.bins() <= MAX_BINS + 2 && c.bins() >= 40, "{}", c.bins());
        assert_eq!(c.counts.iter().sum::<u64>(), 10_000);
        assert!(c.calibrated.windows(2).all(|w| w[0] <= w[1]));
        assert!(!c.predicted_positive(c.bin(0.5)));
        assert!(c.predicted_positive(c.bin(0.5000001)));
        assert_eq!(c.bin(-1.0), 0);
        assert_eq!(c.bin(5.0), c.bins() - 1);
        assert!(
            c.counts.iter().all(|n| *n >= 10_000 / 50 / 4),
            "{:?}",
            c.counts
        );
        let back = Calibration::parse(&c.to_json().to_string()).unwrap();
        assert_eq!((&back.edges, &back.counts), (&c.edges, &c.counts));
        for (a, b) in back.calibrated.iter().zip(&c.calibrated) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn bad_documents_and_references_are_named_errors() {
        assert!(
            fit(&[], 0.5, None, None, 0.05)
                .unwrap_err()
                .contains("none")
        );
        assert!(
            fit(&[(0.3, true, 5)], 0.5, None, None, 0.05)
                .unwrap_err()
                .contains("both classes")
        );
        let c = fit(&entries(2000), 0.5, None, Some(4), 0.05).unwrap();
        let mut v = c.to_json();
        v["version"] = serde_json::json!(99);
        assert!(
            Calibration::parse(&v.to_string())
                .unwrap_err()
                .contains("version 99")
        );
        let mut v = c.to_json();
        v["kind"] = serde_json::json!("statistics");
        assert!(
            Calibration::parse(&v.to_string())
                .unwrap_err()
                .contains("kind")
        );
        let mut v = c.to_json();
        v["calibrated"] = serde_json::json!([0.9, 0.1]);
        assert!(Calibration::parse(&v.to_string()).is_err());
        assert!(Calibration::parse("{").unwrap_err().contains("not JSON"));
    }
}
