//! Multiclass classification: confusion matrix, accuracy, support-weighted recall / precision /
//! F0.5 / F1 / F2 (scikit-learn `average="weighted"`, `zero_division=0`; the class set is the
//! union of actual and predicted labels) and best-constant variants.
//!
//! Best constant classifier (spec leaves it open): always predicts the majority class of the
//! actual labels (ties: the smallest label in byte order). Then accuracy = weighted recall =
//! p_max, weighted precision = p_max², weighted F_b = p_max · F_b(p_max, 1).
//!
//! Labels are canonicalised (`1.0` == `1`). At most [`MAX_CLASSES`] distinct labels are kept; a
//! record with a further new label is skipped and counted as an invalid label.

use super::{Metric, QualityReport, REPS, f_beta, ratio};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const MAX_CLASSES: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MulticlassState {
    /// Class labels in first-seen order.
    pub classes: Vec<String>,
    /// Dense k×k matrix, row = actual, column = predicted, per replica.
    pub cells: Vec<[u64; REPS]>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl MulticlassState {
    fn k(&self) -> usize {
        self.classes.len()
    }
    fn rebuild_index(&mut self) {
        if self.index.len() != self.classes.len() {
            self.index = self
                .classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i as u32))
                .collect();
        }
    }
    fn class_id(&mut self, label: &str) -> Option<usize> {
        self.rebuild_index();
        if let Some(&i) = self.index.get(label) {
            return Some(i as usize);
        }
        if self.classes.len() >= MAX_CLASSES {
            return None;
        }
        let k = self.k();
        let mut cells = vec![[0u64; REPS]; (k + 1) * (k + 1)];
        for a in 0..k {
            for p in 0..k {
                cells[a * (k + 1) + p] = self.cells[a * k + p];
            }
        }
        self.cells = cells;
        self.classes.push(label.to_string());
        self.index.insert(label.to_string(), k as u32);
        Some(k)
    }
    /// Adds one record; false when the class limit is reached (record skipped).
    pub fn push(&mut self, actual: &str, predicted: &str, mask: u8) -> bool {
        let (Some(a), Some(p)) = (self.class_id(actual), self.class_id(predicted)) else {
            return false;
        };
        let k = self.k();
        let cell = &mut self.cells[a * k + p];
        for (r, c) in cell.iter_mut().enumerate() {
            if mask & (1 << r) != 0 {
                *c += 1;
            }
        }
        true
    }
    pub fn total(&self, r: usize) -> u64 {
        self.cells.iter().map(|c| c[r]).sum()
    }
    #[allow(clippy::needless_range_loop)] // index-aligned arrays
    pub fn merge(&mut self, o: &MulticlassState) -> Result<(), String> {
        let ko = o.k();
        if o.cells.len() != ko * ko || self.cells.len() != self.k() * self.k() {
            return Err("multiclass state: matrix size does not match the classes".into());
        }
        let ids: Vec<Option<usize>> = o.classes.iter().map(|c| self.class_id(c)).collect();
        let k = self.k();
        for a in 0..ko {
            for p in 0..ko {
                let src = o.cells[a * ko + p];
                if src.iter().all(|&x| x == 0) {
                    continue;
                }
                let (Some(ia), Some(ip)) = (ids[a], ids[p]) else {
                    return Err(format!("more than {MAX_CLASSES} classes"));
                };
                for r in 0..REPS {
                    self.cells[ia * k + ip][r] += src[r];
                }
            }
        }
        Ok(())
    }
    #[allow(clippy::needless_range_loop)] // index-aligned arrays
    pub fn report(&self) -> QualityReport {
        if self.cells.len() != self.k() * self.k() {
            return MulticlassState::default().report();
        }
        let k = self.k();
        let n0 = self.total(0);
        let mut rep = QualityReport {
            item_count: n0,
            ..Default::default()
        };
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| self.classes[a].cmp(&self.classes[b]));
        let mut cm = serde_json::Map::new();
        for &a in &order {
            let mut row = serde_json::Map::new();
            for &p in &order {
                row.insert(self.classes[p].clone(), self.cells[a * k + p][0].into());
            }
            cm.insert(self.classes[a].clone(), row.into());
        }
        rep.metrics_json
            .insert("confusion_matrix".into(), cm.into());
        let names = [
            "accuracy",
            "accuracy_best_constant_classifier",
            "weighted_recall",
            "weighted_recall_best_constant_classifier",
            "weighted_precision",
            "weighted_precision_best_constant_classifier",
            "weighted_f0_5",
            "weighted_f0_5_best_constant_classifier",
            "weighted_f1",
            "weighted_f1_best_constant_classifier",
            "weighted_f2",
            "weighted_f2_best_constant_classifier",
        ];
        let mut vals = vec![[0.0f64; REPS]; names.len()];
        for r in 0..REPS {
            let n = self.total(r) as f64;
            let support: Vec<f64> = (0..k)
                .map(|a| (0..k).map(|p| self.cells[a * k + p][r]).sum::<u64>() as f64)
                .collect();
            let predicted: Vec<f64> = (0..k)
                .map(|p| (0..k).map(|a| self.cells[a * k + p][r]).sum::<u64>() as f64)
                .collect();
            let mut correct = 0.0;
            let (mut wr, mut wp, mut wf05, mut wf1, mut wf2) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for c in 0..k {
                let tp = self.cells[c * k + c][r] as f64;
                correct += tp;
                let rec = ratio(tp, support[c]);
                let prec = ratio(tp, predicted[c]);
                wr += support[c] * rec;
                wp += support[c] * prec;
                wf05 += support[c] * f_beta(prec, rec, 0.5);
                wf1 += support[c] * f_beta(prec, rec, 1.0);
                wf2 += support[c] * f_beta(prec, rec, 2.0);
            }
            // Majority class: largest support, ties -> smallest label.
            let pmax = order
                .iter()
                .map(|&c| support[c])
                .fold(0.0f64, |m, s| if s > m { s } else { m });
            let pmax = ratio(pmax, n);
            let v = [
                ratio(correct, n),
                pmax,
                ratio(wr, n),
                pmax,
                ratio(wp, n),
                pmax * pmax,
                ratio(wf05, n),
                pmax * f_beta(pmax, 1.0, 0.5),
                ratio(wf1, n),
                pmax * f_beta(pmax, 1.0, 1.0),
                ratio(wf2, n),
                pmax * f_beta(pmax, 1.0, 2.0),
            ];
            for (i, x) in v.iter().enumerate() {
                vals[i][r] = *x;
            }
        }
        for (i, name) in names.iter().enumerate() {
            rep.push(name, Metric::from_reps(&vals[i], n0));
        }
        rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hand_computed_weighted() {
        // actual: a a a b b c ; predicted: a a b b c c
        let mut s = MulticlassState::default();
        for (a, p) in [
            ("a", "a"),
            ("a", "a"),
            ("a", "b"),
            ("b", "b"),
            ("b", "c"),
            ("c", "c"),
        ] {
            assert!(s.push(a, p, 1));
        }
        let r = s.report();
        let g = |n: &str| r.get(n).unwrap().value;
        assert!((g("accuracy") - 4.0 / 6.0).abs() < 1e-15);
        // recall: a 2/3, b 1/2, c 1; support 3,2,1 -> (2 + 1 + 1)/6
        assert!((g("weighted_recall") - 4.0 / 6.0).abs() < 1e-15);
        // precision: a 1, b 1/2, c 1/2 -> (3 + 1 + 0.5)/6
        assert!((g("weighted_precision") - 4.5 / 6.0).abs() < 1e-15);
        // f1: a 0.8, b 0.5, c 2/3 -> (2.4 + 1 + 2/3)/6
        assert!((g("weighted_f1") - (2.4 + 1.0 + 2.0 / 3.0) / 6.0).abs() < 1e-15);
        assert!((g("accuracy_best_constant_classifier") - 0.5).abs() < 1e-15);
        assert!((g("weighted_precision_best_constant_classifier") - 0.25).abs() < 1e-15);
        assert_eq!(r.metrics_json["confusion_matrix"]["a"]["b"], 1);
        assert_eq!(r.metrics_json["confusion_matrix"]["c"]["a"], 0);
    }
    #[test]
    fn merge_remaps_classes() {
        let mut a = MulticlassState::default();
        a.push("x", "y", 1);
        let mut b = MulticlassState::default();
        b.push("y", "y", 1);
        b.push("x", "y", 1);
        let mut ab = MulticlassState::default();
        ab.push("x", "y", 1);
        ab.push("y", "y", 1);
        ab.push("x", "y", 1);
        a.merge(&b).unwrap();
        assert_eq!(a.report().metrics_json, ab.report().metrics_json);
    }
}
