//! KLL quantile sketch in Deequ's layout (`QuantileNonSample`): compactor levels, level 0 first,
//! an item at level h weighs 2^h.
//!
//! * Capacity of level h among H levels: `2 * (ceil(k * c^(H-1-h) / 2) + 1)` — the spec's
//!   `2*(ceil(k*c^h/2)+1)` with h counted from the top level, so the top level is the largest
//!   (k = 2048, c = 0.64 by default).
//! * When the total size reaches the sum of capacities, the lowest full level is compacted: it is
//!   sorted, and every other item (offset alternating 0, 1, 0, ... per level) moves up one level.
//!   With an odd size the largest item stays. Total weight is preserved exactly.
//! * Merge: levels are concatenated, then compacted as above. Sketches below capacity are exact.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KllSketch {
    pub k: usize,
    pub c: f64,
    pub levels: Vec<Vec<f64>>,
    /// Compactions done per level (drives the alternating offset).
    pub compactions: Vec<u64>,
    /// Level 0's capacity for (levels, k, c bits): a cache for `update`.
    #[serde(skip)]
    level0: ((usize, usize, u64), usize),
}

/// Equal content (the capacity cache aside).
impl PartialEq for KllSketch {
    fn eq(&self, o: &KllSketch) -> bool {
        self.k == o.k
            && self.c == o.c
            && self.levels == o.levels
            && self.compactions == o.compactions
    }
}

impl Default for KllSketch {
    fn default() -> Self {
        KllSketch::new(2048, 0.64)
    }
}

impl KllSketch {
    pub fn new(k: usize, c: f64) -> KllSketch {
        KllSketch {
            k: k.max(2),
            c,
            levels: vec![Vec::new()],
            compactions: vec![0],
            level0: ((0, 0, 0), 0),
        }
    }

    /// Rebuilds a sketch from `sketch.data` of a statistics file.
    pub fn from_levels(k: usize, c: f64, levels: Vec<Vec<f64>>) -> KllSketch {
        let n = levels.len().max(1);
        let c = if c.is_finite() && c > 0.0 && c <= 1.0 {
            c
        } else {
            0.64
        };
        let mut s = KllSketch {
            k: k.clamp(2, 1 << 24),
            c,
            levels,
            compactions: vec![0; n],
            level0: ((0, 0, 0), 0),
        };
        if s.levels.is_empty() {
            s.levels.push(Vec::new());
        }
        s
    }

    pub fn capacity(&self, h: usize) -> usize {
        let depth = self.levels.len() - 1 - h;
        2 * ((self.k as f64 * self.c.powi(depth as i32) / 2.0).ceil() as usize + 1)
    }

    fn total_capacity(&self) -> usize {
        (0..self.levels.len()).map(|h| self.capacity(h)).sum()
    }

    fn size(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Total weight (= number of items inserted).
    pub fn count(&self) -> u64 {
        self.levels
            .iter()
            .enumerate()
            .map(|(h, l)| (l.len() as u64) << h)
            .sum()
    }

    #[inline]
    pub fn update(&mut self, x: f64) {
        if self.levels.is_empty() {
            self.normalize();
        }
        self.levels[0].push(x);
        // Cheap check first: the total capacity is at least level 0's capacity.
        let key = (self.levels.len(), self.k, self.c.to_bits());
        if self.level0.0 != key {
            self.level0 = (key, self.capacity(0));
        }
        if self.levels[0].len() >= self.level0.1 && self.size() >= self.total_capacity() {
            self.compress();
        }
    }

    fn compress(&mut self) {
        self.compactions.resize(self.levels.len(), 0);
        let mut total = self.total_capacity();
        while self.size() >= total {
            // Some level is at capacity (pigeonhole); compact the lowest one.
            let Some(h) =
                (0..self.levels.len()).find(|&h| self.levels[h].len() >= self.capacity(h))
            else {
                break;
            };
            if h + 1 == self.levels.len() {
                self.levels.push(Vec::new());
                self.compactions.push(0);
            }
            // The level's buffer is reused (it refills at once).
            let mut buf = std::mem::take(&mut self.levels[h]);
            buf.sort_unstable_by(f64::total_cmp);
            let keep = if buf.len() % 2 == 1 { buf.pop() } else { None };
            let offset = (self.compactions[h] % 2) as usize;
            self.compactions[h] += 1;
            self.levels[h + 1].extend(buf.iter().skip(offset).step_by(2));
            buf.clear();
            buf.extend(keep);
            self.levels[h] = buf;
            total = self.total_capacity();
        }
    }

    /// Repairs a deserialized sketch with inconsistent fields (never panics afterwards).
    pub fn normalize(&mut self) {
        self.k = self.k.clamp(2, 1 << 24);
        if !(self.c.is_finite() && self.c > 0.0 && self.c <= 1.0) {
            self.c = 0.64;
        }
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels.truncate(64);
        self.compactions.resize(self.levels.len(), 0);
    }

    pub fn merge(&mut self, o: &KllSketch) {
        self.normalize();
        while self.levels.len() < o.levels.len() {
            self.levels.push(Vec::new());
            self.compactions.push(0);
        }
        for (h, l) in o.levels.iter().enumerate() {
            self.levels[h].extend_from_slice(l);
        }
        self.compress();
    }

    /// (value, weight) pairs sorted by value.
    pub fn weighted_items(&self) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, l)| l.iter().map(move |&x| (x, (1u64 << h) as f64)))
            .collect();
        v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// Approximate quantile q in [0, 1].
    pub fn quantile(&self, q: f64) -> f64 {
        let items = self.weighted_items();
        let total: f64 = items.iter().map(|i| i.1).sum();
        let mut cum = 0.0;
        for (x, w) in &items {
            cum += w;
            if cum >= q * total {
                return *x;
            }
        }
        items.last().map(|i| i.0).unwrap_or(f64::NAN)
    }

    /// Model Monitor's 10 equal-width buckets over [min, max]: (lower, upper, weight); each bucket
    /// counts `[lb, ub)`, the last one includes max. Counts are sketch weights.
    pub fn buckets(&self, min: f64, max: f64, n: usize) -> Vec<(f64, f64, f64)> {
        let items = self.weighted_items();
        let width = max - min;
        let mut out: Vec<(f64, f64, f64)> = (0..n)
            .map(|i| {
                (
                    min + width * i as f64 / n as f64,
                    min + width * (i + 1) as f64 / n as f64,
                    0.0,
                )
            })
            .collect();
        if n == 0 || items.is_empty() {
            return out;
        }
        for (x, w) in items {
            let mut b = if width > 0.0 {
                ((x - min) / width * n as f64).floor() as i64
            } else {
                0
            };
            b = b.clamp(0, n as i64 - 1);
            let mut b = b as usize;
            // Guard against rounding: make x fall in [lb, ub).
            while b > 0 && x < out[b].0 {
                b -= 1;
            }
            while b + 1 < n && x >= out[b + 1].0 {
                b += 1;
            }
            out[b].2 += w;
        }
        out
    }
}

/// Deequ's L∞ distance between the CDFs of two weighted samples (each sorted by value).
pub fn linf_simple(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let ta: f64 = a.iter().map(|x| x.1).sum();
    let tb: f64 = b.iter().map(|x| x.1).sum();
    if ta <= 0.0 || tb <= 0.0 {
        return f64::NAN;
    }
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0.0, 0.0);
    let mut d: f64 = 0.0;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        while i < a.len() && a[i].0 <= x {
            ca += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 <= x {
            cb += b[j].1;
            j += 1;
        }
        d = d.max((ca / ta - cb / tb).abs());
    }
    d
}

/// Robust correction: `max(0, d - 1.8 * sqrt((n+m)/(n*m)))`.
pub fn robust(d: f64, n: f64, m: f64) -> f64 {
    if n <= 0.0 || m <= 0.0 {
        return f64::NAN;
    }
    (d - 1.8 * ((n + m) / (n * m)).sqrt()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity_and_bounded_above() {
        let mut s = KllSketch::default();
        for i in 0..1000 {
            s.update(i as f64);
        }
        assert_eq!(s.levels.len(), 1);
        assert_eq!(s.quantile(0.5), 499.0);
        let mut s = KllSketch::new(64, 0.64);
        let n = 100_000;
        for i in 0..n {
            s.update(((i * 7919) % n) as f64);
        }
        assert_eq!(s.count(), n as u64);
        assert!(s.levels.iter().map(Vec::len).sum::<usize>() < 1000);
        let med = s.quantile(0.5);
        assert!((med - 50_000.0).abs() < 5_000.0, "{med}");
        let b = s.buckets(0.0, (n - 1) as f64, 10);
        assert_eq!(b.iter().map(|x| x.2).sum::<f64>(), n as f64);
        for x in &b {
            assert!((x.2 - 10_000.0).abs() < 2_000.0, "{x:?}");
        }
    }

    #[test]
    fn buckets_and_distance_hand_computed() {
        let mut s = KllSketch::default();
        for x in [1.0, 1.0, 2.0, 3.0] {
            s.update(x);
        }
        let b = s.buckets(1.0, 3.0, 10);
        assert_eq!(b[0], (1.0, 1.2, 2.0));
        assert_eq!(b[5].2, 1.0); // 2.0 in [2.0, 2.2)
        assert_eq!(b[9].2, 1.0); // max included in last
        let a = [(1.0, 1.0), (2.0, 1.0)];
        let c = [(2.0, 1.0), (3.0, 1.0)];
        assert!((linf_simple(&a, &c) - 0.5).abs() < 1e-15);
        assert_eq!(linf_simple(&a, &a), 0.0);
        assert!((robust(0.5, 100.0, 100.0) - (0.5 - 1.8 * 0.02f64.sqrt())).abs() < 1e-15);
    }

    #[test]
    fn inconsistent_deserialized_sketch_does_not_panic() {
        let mut s: KllSketch =
            serde_json::from_str(r#"{"k":0,"c":-3.0,"levels":[],"compactions":[5,6,7]}"#).unwrap();
        for i in 0..10_000 {
            s.update(i as f64);
        }
        assert_eq!(s.count(), 10_000);
        let mut t = KllSketch::from_levels(usize::MAX, f64::NAN, vec![vec![1.0]; 3]);
        t.merge(&s);
        assert_eq!(t.count(), 10_000 + 1 + 2 + 4);
    }

    #[test]
    fn merge_equals_single_when_small() {
        let mut a = KllSketch::default();
        let mut b = KllSketch::default();
        let mut all = KllSketch::default();
        for i in 0..500 {
            let x = (i * 37 % 101) as f64;
            if i % 3 == 0 {
                a.update(x)
            } else {
                b.update(x)
            }
            all.update(x);
        }
        a.merge(&b);
        assert_eq!(a.weighted_items(), all.weighted_items());
    }
}
