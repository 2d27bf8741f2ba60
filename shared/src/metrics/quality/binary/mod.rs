//! Binary classification: confusion matrix, rates, F-scores, exact ROC AUC, bounded ROC and
//! precision-recall curves, best-constant-classifier variants.
//!
//! * Predicted label: from `inference_attribute` when configured, else positive when
//!   `probability > threshold` (strictly greater; the spec leaves `>` vs `>=` open).
//! * Undefined ratios (e.g. precision with no predicted positive) are 0, like scikit-learn's
//!   `zero_division=0`. AUC with only one class present is NaN (scikit-learn raises).
//! * Exact AUC: the state keeps `(score, replica mask, label) -> count` entries (compacted by
//!   sorting and run-length merging whenever the list doubles), so states merge by concatenation
//!   and the AUC is the trapezoid over distinct thresholds, identical to scikit-learn's
//!   `roc_auc_score`. Memory is O(distinct scores), at most O(records).
//! * Curves: all distinct-threshold points, then evenly thinned to `max_curve_points` (first and
//!   last point kept). ROC starts at (0,0); the PR curve is listed by increasing threshold-rank
//!   (recall non-decreasing), starting at the highest threshold.
//! * Best constant classifier: always predicts the positive class => precision = prevalence,
//!   recall = 1, accuracy = prevalence, F-scores from those.

mod curves;
mod sort;

use super::{Metric, QualityReport, REPS, f_beta, ratio};
use crate::metrics::config::MonitorConfig;
use curves::count_f64;
use serde::{Deserialize, Serialize};
use sort::{entry_order, radix_sort};

/// One run-length entry of the score list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreEntry {
    pub score: f64,
    pub mask: u8,
    pub positive: bool,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BinaryState {
    /// Per replica: [tp, fp, tn, fn].
    pub counts: [[u64; 4]; REPS],
    pub scores: Vec<ScoreEntry>,
    #[serde(skip)]
    compacted_len: usize,
    /// Length of the prefix of `scores` that is compacted (sorted, run-length merged); only the
    /// rest needs sorting at the next compaction.
    #[serde(skip)]
    sorted_len: usize,
    /// Threads the report may sort and walk the score list on (0 or 1: the calling thread only). Set by
    /// the engine's threaded join ([`crate::metrics::engine::parallel::feed_broadcast`]).
    #[serde(skip)]
    pub sort_threads: usize,
}

/// Score lists shorter than this are sorted and walked on the calling thread only.
const PARALLEL_MIN: usize = 1 << 15;

const TP: usize = 0;
const FP: usize = 1;
const TN: usize = 2;
const FN: usize = 3;

impl BinaryState {
    #[inline]
    pub fn push(&mut self, score: f64, actual_pos: bool, pred_pos: bool, mask: u8) {
        let cell = match (actual_pos, pred_pos) {
            (true, true) => TP,
            (false, true) => FP,
            (false, false) => TN,
            (true, false) => FN,
        };
        for (r, c) in self.counts.iter_mut().enumerate() {
            if mask & (1 << r) != 0 {
                c[cell] += 1;
            }
        }
        self.scores.push(ScoreEntry {
            score,
            mask,
            positive: actual_pos,
            count: 1,
        });
        if self.scores.len() >= 2 * self.compacted_len.max(1 << 16) {
            self.compact();
        }
    }

    /// Sorts the score list and merges equal entries. Idempotent. Sorts only the entries added
    /// since the last compaction, then merges them with the compacted prefix.
    pub fn compact(&mut self) {
        let before = self.scores.len();
        let head = self.sorted_prefix();
        if head == before {
            return;
        }
        radix_sort(&mut self.scores[head..]);
        let (a, b) = self.scores.split_at(head);
        let mut out: Vec<ScoreEntry> = Vec::with_capacity(before);
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let e = if j == b.len() || (i < a.len() && entry_order(&a[i], &b[j]).is_le()) {
                i += 1;
                a[i - 1]
            } else {
                j += 1;
                b[j - 1]
            };
            match out.last_mut() {
                Some(l) if entry_order(l, &e).is_eq() => l.count += e.count,
                _ => out.push(e),
            }
        }
        // When run-length merging barely helps (continuous scores), compact less often.
        let useless = out.len() * 4 > before * 3;
        self.scores = out;
        self.sorted_len = self.scores.len();
        self.compacted_len = if useless {
            self.scores.len() * 2
        } else {
            self.scores.len()
        };
    }

    pub fn merge(&mut self, o: &BinaryState) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            for i in 0..4 {
                a[i] += b[i];
            }
        }
        self.scores.extend_from_slice(&o.scores);
        self.compact();
    }

    /// Length of the compacted prefix of `scores`. It is trusted only while it is still strictly
    /// increasing (`scores` is public).
    fn sorted_prefix(&self) -> usize {
        let head = self.sorted_len.min(self.scores.len());
        if self.scores[..head].is_sorted_by(|a, b| entry_order(a, b).is_lt()) {
            head
        } else {
            0
        }
    }

    #[allow(clippy::needless_range_loop)] // replica-indexed arrays
    pub fn report(&self, cfg: &MonitorConfig) -> QualityReport {
        // Compacted order is score order: only a copy of the newest entries needs sorting, on
        // the threads the engine allows (one chunk each); the walk reads the sorted runs together.
        let head = self.sorted_prefix();
        let mut tail = self.scores[head..].to_vec();
        let threads = if self.scores.len() >= PARALLEL_MIN {
            self.sort_threads.max(1)
        } else {
            1
        };
        let mut runs = vec![&self.scores[..head]];
        runs.extend(sort::sort_chunks(&mut tail, threads));
        let walk = curves::walk(&runs, threads);
        let n0: u64 = self.counts[0].iter().sum();
        let mut rep = QualityReport {
            item_count: n0,
            ..Default::default()
        };
        let (pos, neg) = (cfg.positive_label.as_str(), cfg.negative_label.as_str());
        let c = &self.counts[0];
        rep.metrics_json.insert(
            "confusion_matrix".into(),
            serde_json::json!({ pos: { pos: c[TP], neg: c[FN] }, neg: { pos: c[FP], neg: c[TN] } }),
        );
        // Per replica scalar values.
        let names = [
            "recall",
            "precision",
            "accuracy",
            "recall_best_constant_classifier",
            "precision_best_constant_classifier",
            "accuracy_best_constant_classifier",
            "true_positive_rate",
            "true_negative_rate",
            "false_positive_rate",
            "false_negative_rate",
            "f0_5",
            "f0_5_best_constant_classifier",
            "f1",
            "f1_best_constant_classifier",
            "f2",
            "f2_best_constant_classifier",
        ];
        let mut vals = vec![[0.0f64; REPS]; names.len()];
        for r in 0..REPS {
            let [tp, fp, tn, fnn] = self.counts[r].map(|x| x as f64);
            let n = tp + fp + tn + fnn;
            let recall = ratio(tp, tp + fnn);
            let precision = ratio(tp, tp + fp);
            let accuracy = ratio(tp + tn, n);
            let prevalence = ratio(tp + fnn, n);
            let v = [
                recall,
                precision,
                accuracy,
                if n > 0.0 { 1.0 } else { 0.0 },
                prevalence,
                prevalence,
                recall,
                ratio(tn, tn + fp),
                ratio(fp, fp + tn),
                ratio(fnn, fnn + tp),
                f_beta(precision, recall, 0.5),
                f_beta(prevalence, 1.0, 0.5),
                f_beta(precision, recall, 1.0),
                f_beta(prevalence, 1.0, 1.0),
                f_beta(precision, recall, 2.0),
                f_beta(prevalence, 1.0, 2.0),
            ];
            for (i, x) in v.iter().enumerate() {
                vals[i][r] = *x;
            }
        }
        let p: [u64; REPS] = std::array::from_fn(|r| self.counts[r][TP] + self.counts[r][FN]);
        let n: [u64; REPS] = std::array::from_fn(|r| self.counts[r][FP] + self.counts[r][TN]);
        let auc: [f64; REPS] = std::array::from_fn(|r| {
            if p[r] == 0 || n[r] == 0 {
                f64::NAN
            } else {
                walk.area2[r] as f64 / (2.0 * p[r] as f64 * n[r] as f64)
            }
        });
        for (i, name) in names.iter().enumerate() {
            rep.push(name, Metric::from_reps(&vals[i], n0));
        }
        rep.push("auc", Metric::from_reps(&auc, n0));
        // Replica 0's curves at the kept points: ROC from (0, 0), then (fpr, tpr) per point;
        // PR (precision, recall) per point.
        let (pos0, neg0) = (count_f64(p[0]), count_f64(n[0]));
        let roc = curves::thin(walk.len() + 1, cfg.max_curve_points, |i| match i {
            0 => (0.0, 0.0),
            _ => {
                let (t, f) = walk.point(i - 1);
                (ratio(count_f64(f), neg0), ratio(count_f64(t), pos0))
            }
        });
        let pr = curves::thin(walk.len(), cfg.max_curve_points, |i| {
            let (t, f) = walk.point(i);
            let tf = count_f64(t);
            (ratio(tf, count_f64(t + f)), ratio(tf, pos0))
        });
        rep.metrics_json.insert(
            "receiver_operating_characteristic_curve".into(),
            serde_json::json!({
                "false_positive_rates": roc.iter().map(|p| p.0).collect::<Vec<_>>(),
                "true_positive_rates": roc.iter().map(|p| p.1).collect::<Vec<_>>(),
            }),
        );
        rep.metrics_json.insert(
            "precision_recall_curve".into(),
            serde_json::json!({
                "precisions": pr.iter().map(|p| p.0).collect::<Vec<_>>(),
                "recalls": pr.iter().map(|p| p.1).collect::<Vec<_>>(),
            }),
        );
        rep
    }
}

#[cfg(test)]
mod testdata {
    use super::ScoreEntry;

    pub(super) fn view(v: &[ScoreEntry]) -> Vec<(u64, u8, bool, u64)> {
        v.iter()
            .map(|e| (e.score.to_bits(), e.mask, e.positive, e.count))
            .collect()
    }

    /// Random entries with the awkward values of the total order among ordinary scores.
    pub(super) fn entries(seed: u64, n: usize) -> Vec<ScoreEntry> {
        let mut rng = crate::metrics::util::SplitMix64(seed);
        let special = [
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 4.0,
            -1e300,
            1.0,
        ];
        (0..n)
            .map(|_| {
                let r = rng.next_u64();
                let score = match r % 4 {
                    0 => special[(r >> 8) as usize % special.len()],
                    1 => ((r >> 8) % 1000) as f64 / 1000.0,
                    2 => f64::from_bits(rng.next_u64()),
                    _ => rng.next_f64() * 2.0 - 1.0,
                };
                ScoreEntry {
                    score,
                    mask: if r & (1 << 40) != 0 {
                        (r >> 41) as u8
                    } else {
                        63
                    },
                    positive: r & (1 << 50) != 0,
                    count: 1,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(data: &[(f64, bool)], thr: f64) -> BinaryState {
        let mut s = BinaryState::default();
        for &(score, y) in data {
            s.push(score, y, score > thr, 1);
        }
        s
    }

    #[test]
    fn auc_with_ties_hand_computed() {
        // Perfectly separated -> 1.0.
        let s = state(
            &[(0.1, false), (0.4, true), (0.35, false), (0.8, true)],
            0.5,
        );
        let r = s.report(&MonitorConfig::default());
        assert!((r.get("auc").unwrap().value - 1.0).abs() < 1e-15);
        // sklearn's classic example: y=[0,0,1,1], s=[0.1,0.4,0.35,0.8] -> 0.75
        let s = state(
            &[(0.1, false), (0.4, false), (0.35, true), (0.8, true)],
            0.5,
        );
        assert!(
            (s.report(&MonitorConfig::default())
                .get("auc")
                .unwrap()
                .value
                - 0.75)
                .abs()
                < 1e-15
        );
        // Ties: all scores equal -> 0.5.
        let s = state(&[(0.5, false), (0.5, true), (0.5, true)], 0.4);
        assert!(
            (s.report(&MonitorConfig::default())
                .get("auc")
                .unwrap()
                .value
                - 0.5)
                .abs()
                < 1e-15
        );
        // One class only -> NaN
        let s = state(&[(0.5, true)], 0.4);
        assert!(
            s.report(&MonitorConfig::default())
                .get("auc")
                .unwrap()
                .value
                .is_nan()
        );
    }

    #[test]
    fn confusion_and_rates() {
        // y:    1 1 1 0 0
        // pred: 1 0 1 1 0  -> tp 2, fn 1, fp 1, tn 1
        let s = state(
            &[
                (0.9, true),
                (0.2, true),
                (0.7, true),
                (0.6, false),
                (0.1, false),
            ],
            0.5,
        );
        let r = s.report(&MonitorConfig::default());
        let g = |n: &str| r.get(n).unwrap().value;
        assert!((g("precision") - 2.0 / 3.0).abs() < 1e-15);
        assert!((g("recall") - 2.0 / 3.0).abs() < 1e-15);
        assert!((g("accuracy") - 0.6).abs() < 1e-15);
        assert!((g("true_negative_rate") - 0.5).abs() < 1e-15);
        assert!((g("false_positive_rate") - 0.5).abs() < 1e-15);
        assert!((g("false_negative_rate") - 1.0 / 3.0).abs() < 1e-15);
        assert!((g("f1") - 2.0 / 3.0).abs() < 1e-15);
        assert!((g("precision_best_constant_classifier") - 0.6).abs() < 1e-15);
        assert!((g("recall_best_constant_classifier") - 1.0).abs() < 1e-15);
        assert!((g("f1_best_constant_classifier") - 0.75).abs() < 1e-15);
        assert!((g("f2") - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(r.metrics_json["confusion_matrix"]["1"]["1"], 2);
        assert_eq!(r.metrics_json["confusion_matrix"]["1"]["0"], 1);
        assert_eq!(r.metrics_json["confusion_matrix"]["0"]["1"], 1);
        let roc = &r.metrics_json["receiver_operating_characteristic_curve"];
        assert_eq!(roc["false_positive_rates"][0], 0.0);
        assert_eq!(
            roc["true_positive_rates"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            1.0
        );
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn replica_aucs_equal_auc_of_the_subsample() {
        let mut rng = crate::metrics::util::SplitMix64(9);
        let mut full = BinaryState::default();
        let mut rows = Vec::new();
        for _ in 0..3000 {
            let score = (rng.next_u64() % 50) as f64 / 50.0;
            let y = rng.next_f64() < 0.4;
            let mask = (rng.next_u64() as u8) | 1;
            full.push(score, y, score > 0.5, mask);
            rows.push((score, y, mask));
        }
        let mut sorted = full.scores.clone();
        sorted.sort_unstable_by(|a, b| a.score.total_cmp(&b.score));
        let w = curves::walk(&[&sorted], 1);
        let aucs: [f64; REPS] = std::array::from_fn(|r| {
            let (p, n) = (w.tp[r] as f64, w.fp[r] as f64);
            w.area2[r] as f64 / (2.0 * p * n)
        });
        for r in 0..REPS {
            let mut sub = BinaryState::default();
            for &(s, y, m) in &rows {
                if m & (1 << r) != 0 {
                    sub.push(s, y, s > 0.5, 1);
                }
            }
            let want = sub
                .report(&MonitorConfig::default())
                .get("auc")
                .unwrap()
                .value;
            assert!(
                (aucs[r] - want).abs() < 1e-15,
                "replica {r}: {} vs {want}",
                aucs[r]
            );
        }
    }

    #[test]
    fn curves_are_bounded() {
        let data: Vec<(f64, bool)> = (0..5000).map(|i| (i as f64 / 5000.0, i % 3 == 0)).collect();
        let s = state(&data, 0.5);
        let cfg = MonitorConfig {
            max_curve_points: 100,
            ..Default::default()
        };
        let r = s.report(&cfg);
        let fpr = r.metrics_json["receiver_operating_characteristic_curve"]["false_positive_rates"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(fpr.len(), 100);
        assert_eq!(fpr[0], 0.0);
        assert_eq!(fpr[99], 1.0);
    }

    /// The report sorted and walked on several threads is the one-thread report, bit for bit,
    /// with a compacted prefix and a long unsorted tail.
    #[test]
    fn threads_give_the_one_thread_report() {
        let mut rng = crate::metrics::util::SplitMix64(21);
        let mut s = BinaryState::default();
        for i in 0..(5 * PARALLEL_MIN) {
            let score = match i % 3 {
                0 => (rng.next_u64() % 1000) as f64 / 1000.0,
                _ => rng.next_f64(),
            };
            let y = rng.next_f64() < score;
            s.push(score, y, score > 0.5, rng.next_u64() as u8);
        }
        assert!(s.sorted_prefix() > 0 && s.sorted_prefix() < s.scores.len());
        let cfg = MonitorConfig::default();
        let view = |r: QualityReport| format!("{:?} {:?}", r.metrics_json, r.scalars);
        let one = view(s.report(&cfg));
        assert!(one.contains("auc"), "{one}");
        for threads in [2, 3, 6] {
            s.sort_threads = threads;
            let many = view(s.report(&cfg));
            assert_eq!(many, one, "{threads} threads");
        }
    }
}
