//! The curve walk: one pass over the score list from the highest score down, one group of equal
//! scores at a time, giving every replica's exact AUC and replica 0's ROC and precision-recall
//! points at every distinct threshold.
//!
//! The list is read as sorted runs ([`super::sort::sort_chunks`] and the compacted prefix),
//! never merged into a copy. On several threads the runs are cut at score boundaries into
//! ranges walked on their own ([`walk`]); each range's outcome is in its own counts, and
//! [`Walk::then`] puts a lower range after a higher one:
//! * counts add up;
//! * twice the area of a replica in count units, `Σ Δfp · (tp + tp₀)` over the groups, gains for
//!   the lower range `2 · tp_above · fp_below` besides its own (its `tp` and `tp₀` are both
//!   `tp_above` higher), in integers (`u128`), so the sum is exact in any order: the same
//!   value as one pass's, and as the former `f64` sum's wherever that one was exact (below
//!   2^53, i.e. up to ~67M positives times ~67M negatives);
//! * the lower range's points are its own plus the higher range's final counts.
//!
//! Points are kept as counts; only the ones a report keeps ([`thin`]) become ratios.

use super::sort::score_key;
use super::{REPS, ScoreEntry};

/// Replica 0's cumulative (true positives, false positives) after a group of equal scores.
pub(super) type Point = (u64, u64);

/// The outcome of walking some of the score list, from its highest score down.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Walk {
    /// Per replica: positives and negatives walked (true and false positives at the lowest
    /// threshold).
    pub tp: [u64; REPS],
    pub fp: [u64; REPS],
    /// Per replica: twice the area under the ROC curve, in count units (see the module doc).
    pub area2: [u128; REPS],
    /// Replica 0's point after each group that changed it, from the highest score down, in
    /// ranges: `(points, tp, fp)` with the counts to add to every point of the range.
    ranges: Vec<(Vec<Point>, u64, u64)>,
}

impl Walk {
    fn empty() -> Walk {
        Walk {
            tp: [0; REPS],
            fp: [0; REPS],
            area2: [0; REPS],
            ranges: Vec::new(),
        }
    }

    /// This walk followed by `below`, a walk of lower scores only.
    pub(super) fn then(mut self, below: Walk) -> Walk {
        let (tp0, fp0) = (self.tp[0], self.fp[0]);
        for r in 0..REPS {
            self.area2[r] += below.area2[r] + 2 * u128::from(self.tp[r]) * u128::from(below.fp[r]);
        }
        for r in 0..REPS {
            self.tp[r] += below.tp[r];
            self.fp[r] += below.fp[r];
        }
        self.ranges.extend(
            below
                .ranges
                .into_iter()
                .map(|(p, t, f)| (p, t + tp0, f + fp0)),
        );
        self
    }

    /// Number of points.
    pub(super) fn len(&self) -> usize {
        self.ranges.iter().map(|r| r.0.len()).sum()
    }

    /// Point `i` (< [`Self::len`]).
    pub(super) fn point(&self, mut i: usize) -> Point {
        for (p, t, f) in &self.ranges {
            if let Some(&(pt, pf)) = p.get(i) {
                return (pt + t, pf + f);
            }
            i -= p.len();
        }
        unreachable!("point {i} past the end of the walk")
    }
}

/// Walks `runs` (each sorted ascending by score) together, from the highest score down.
fn walk_serial(mut runs: Vec<&[ScoreEntry]>) -> Walk {
    let total: usize = runs.iter().map(|r| r.len()).sum();
    let mut w = Walk::empty();
    let mut points = Vec::with_capacity(total);
    runs.retain(|r| !r.is_empty());
    // The highest score left, then its group in every run.
    while let Some(top) = runs
        .iter()
        .filter_map(|r| r.last().map(|e| score_key(e.score)))
        .max()
    {
        let (tp0, fp0) = (w.tp, w.fp);
        for run in runs.iter_mut() {
            while let Some((e, rest)) = run.split_last() {
                if score_key(e.score) != top {
                    break;
                }
                let acc = if e.positive { &mut w.tp } else { &mut w.fp };
                for (r, a) in acc.iter_mut().enumerate() {
                    *a += u64::from((e.mask >> r) & 1) * e.count;
                }
                *run = rest;
            }
        }
        for r in 0..REPS {
            w.area2[r] += u128::from(w.fp[r] - fp0[r]) * (u128::from(w.tp[r]) + u128::from(tp0[r]));
        }
        if w.tp[0] != tp0[0] || w.fp[0] != fp0[0] {
            points.push((w.tp[0], w.fp[0]));
        }
        runs.retain(|r| !r.is_empty());
    }
    w.ranges.push((points, 0, 0));
    w
}

/// Walks `runs` (each sorted ascending by score) on up to `threads` threads: the runs are cut
/// at the scores of evenly spaced entries of the longest run into score ranges, each walked
/// on its own thread, the outcomes put in order ([`Walk::then`]). The same outcome as one
/// thread's for any cut.
pub(super) fn walk(runs: &[&[ScoreEntry]], threads: usize) -> Walk {
    let longest = runs.iter().copied().max_by_key(|r| r.len()).unwrap_or(&[]);
    // Cut keys, ascending and distinct: a range is [cut_{j-1}, cut_j) in score key.
    let mut cuts: Vec<u64> = (1..threads.max(1))
        .map(|j| j * longest.len() / threads)
        .filter_map(|i| longest.get(i).map(|e| score_key(e.score)))
        .collect();
    cuts.dedup();
    if cuts.is_empty() {
        return walk_serial(runs.to_vec());
    }
    // ranges[j]: per run, its entries with key in range j (ascending ranges).
    let mut ranges: Vec<Vec<&[ScoreEntry]>> = vec![Vec::new(); cuts.len() + 1];
    for run in runs {
        let mut rest = *run;
        for (j, &cut) in cuts.iter().enumerate() {
            let at = rest.partition_point(|e| score_key(e.score) < cut);
            let (below, above) = rest.split_at(at);
            ranges[j].push(below);
            rest = above;
        }
        ranges[cuts.len()].push(rest);
    }
    // The highest range first.
    ranges.reverse();
    let walks: Vec<Walk> = std::thread::scope(|s| {
        let mut parts = ranges.into_iter();
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts.map(|p| s.spawn(move || walk_serial(p))).collect();
        let mut out = vec![walk_serial(first)];
        out.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        out
    });
    walks
        .into_iter()
        .reduce(Walk::then)
        .unwrap_or_else(Walk::empty)
}

/// At most `max` of `len` points (`point(i)` gives the i-th), evenly spaced by index, always
/// keeping the first and last.
pub(super) fn thin<T>(len: usize, max: usize, point: impl Fn(usize) -> T) -> Vec<T> {
    let max = max.max(2);
    if len <= max {
        return (0..len).map(point).collect();
    }
    let last = len - 1;
    (0..max).map(|i| point(i * last / (max - 1))).collect()
}

/// A count as a float: through `i64` (one instruction) while it fits, which is always in
/// practice; the same value as `x as f64`.
#[inline]
pub(super) fn count_f64(x: u64) -> f64 {
    if x <= i64::MAX as u64 {
        x as i64 as f64
    } else {
        x as f64
    }
}

#[cfg(test)]
mod tests {
    use super::super::sort::entry_order;
    use super::super::testdata::entries;
    use super::*;

    fn points(w: &Walk) -> Vec<Point> {
        (0..w.len()).map(|i| w.point(i)).collect()
    }

    /// The definition: twice the AUC times P·N is the Mann-Whitney sum over (positive,
    /// negative) pairs of 2 when the positive scores higher and 1 on a tie; the points are
    /// replica 0's counts above or at each distinct score, where they change.
    fn by_definition(v: &[ScoreEntry]) -> ([u128; REPS], Vec<Point>) {
        let w = |e: &ScoreEntry, r: usize| u128::from((e.mask >> r) & 1) * u128::from(e.count);
        let mut area2 = [0u128; REPS];
        for p in v.iter().filter(|e| e.positive) {
            for q in v.iter().filter(|e| !e.positive) {
                let k = match p.score.total_cmp(&q.score) {
                    std::cmp::Ordering::Greater => 2,
                    std::cmp::Ordering::Equal => 1,
                    std::cmp::Ordering::Less => 0,
                };
                for (r, a) in area2.iter_mut().enumerate() {
                    *a += k * w(p, r) * w(q, r);
                }
            }
        }
        let mut keys: Vec<u64> = v.iter().map(|e| score_key(e.score)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut pts: Vec<Point> = Vec::new();
        let mut last = (0, 0);
        for &k in keys.iter().rev() {
            let at_or_above = |pos: bool| -> u64 {
                v.iter()
                    .filter(|e| e.positive == pos && score_key(e.score) >= k)
                    .map(|e| u64::from(e.mask & 1) * e.count)
                    .sum()
            };
            let p = (at_or_above(true), at_or_above(false));
            if p != last {
                pts.push(p);
                last = p;
            }
        }
        (area2, pts)
    }

    #[test]
    fn walk_equals_the_definition() {
        for (seed, n) in [(1, 0), (2, 1), (3, 7), (4, 300), (5, 800)] {
            let mut v = entries(seed, n);
            for (i, e) in v.iter_mut().enumerate() {
                e.count = 1 + (i as u64 % 3);
            }
            let (area2, pts) = by_definition(&v);
            v.sort_by(entry_order);
            let w = walk(&[&v], 1);
            assert_eq!(w.area2, area2, "seed {seed} n {n}");
            assert_eq!(points(&w), pts, "seed {seed} n {n}");
        }
    }

    #[test]
    fn any_cut_on_any_threads_equals_one_walk() {
        for (seed, n) in [(6, 0), (7, 3), (8, 2000), (9, 40_001)] {
            let mut all = entries(seed, n);
            all.sort_by(entry_order);
            let one = walk(&[&all], 1);
            // The same entries as 1-4 sorted runs, walked on 1-5 threads.
            for parts in 1..=4usize {
                let mut runs: Vec<Vec<ScoreEntry>> = vec![Vec::new(); parts];
                for (i, e) in entries(seed, n).into_iter().enumerate() {
                    runs[(i * 7 + i / 3) % parts].push(e);
                }
                for r in runs.iter_mut() {
                    r.sort_by(entry_order);
                }
                let slices: Vec<&[ScoreEntry]> = runs.iter().map(|r| &r[..]).collect();
                for threads in 1..=5 {
                    let many = walk(&slices, threads);
                    assert_eq!(
                        (many.tp, many.fp, many.area2),
                        (one.tp, one.fp, one.area2),
                        "seed {seed} n {n} runs {parts} threads {threads}"
                    );
                    assert_eq!(points(&many), points(&one), "seed {seed} threads {threads}");
                }
            }
        }
    }

    #[test]
    fn equal_scores_are_never_cut() {
        // One score only: whatever the threads, one group, one point.
        let v: Vec<ScoreEntry> = (0..5000)
            .map(|i| ScoreEntry {
                score: 0.5,
                mask: 63,
                positive: i % 3 == 0,
                count: 1,
            })
            .collect();
        let w = walk(&[&v], 4);
        assert_eq!(points(&w), vec![(1667, 3333)]);
        assert_eq!(w.area2[0], 1667 * 3333);
    }

    #[test]
    fn thinning_keeps_the_ends() {
        assert_eq!(thin(2, 1000, |i| i), vec![0, 1]);
        assert_eq!(thin(10, 2, |i| i), vec![0, 9]);
        assert_eq!(thin(101, 5, |i| i), vec![0, 25, 50, 75, 100]);
        assert!(thin(0, 5, |i| i).is_empty());
    }
}
