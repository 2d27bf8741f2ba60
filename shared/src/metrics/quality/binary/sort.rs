//! The score list's order ([`entry_order`]) and its sorts: a least-significant-digit radix sort
//! ([`radix_sort`]) and the same on several threads, chunk by chunk ([`sort_chunks`]), whose
//! sorted chunks the curve walk ([`super::curves`]) reads together.

use super::ScoreEntry;

/// The compaction order: by score (total order), then replica mask, then label.
pub(super) fn entry_order(a: &ScoreEntry, b: &ScoreEntry) -> std::cmp::Ordering {
    a.score
        .total_cmp(&b.score)
        .then(a.mask.cmp(&b.mask))
        .then(a.positive.cmp(&b.positive))
}

/// An unsigned key whose order is `f64::total_cmp`'s.
#[inline]
pub(super) fn score_key(x: f64) -> u64 {
    let b = x.to_bits();
    // Negative numbers: all bits flipped; others: the sign bit set.
    b ^ ((((b as i64) >> 63) as u64) | (1 << 63))
}

/// Sorts `v` in [`entry_order`] by a least-significant-digit radix sort: the mask and label
/// as one digit, then the 64 bits of [`score_key`] in six 11-bit digits, skipping digits that
/// never vary. Linear time (seven passes at most), one scratch copy.
pub(super) fn radix_sort(v: &mut [ScoreEntry]) {
    const BITS: usize = 11;
    const BUCKETS: usize = 1 << BITS;
    const DIGITS: usize = 7;
    let n = v.len();
    if n < 512 {
        v.sort_unstable_by(entry_order);
        return;
    }
    /// Mask, then label: the two lowest keys of the order in one digit (< 512).
    #[inline]
    fn low(e: &ScoreEntry) -> usize {
        (usize::from(e.mask) << 1) | usize::from(e.positive)
    }
    #[inline]
    fn digit(e: &ScoreEntry, d: usize) -> usize {
        if d == 0 {
            low(e)
        } else {
            (score_key(e.score) >> (BITS * (d - 1))) as usize & (BUCKETS - 1)
        }
    }
    let mut hist = vec![[0usize; BUCKETS]; DIGITS];
    for e in v.iter() {
        hist[0][low(e)] += 1;
        let k = score_key(e.score);
        for (d, h) in hist[1..].iter_mut().enumerate() {
            h[(k >> (BITS * d)) as usize & (BUCKETS - 1)] += 1;
        }
    }
    let mut buf = v.to_vec();
    let mut in_buf = false;
    {
        let (mut src, mut dst): (&mut [ScoreEntry], &mut [ScoreEntry]) = (v, &mut buf);
        let mut pos = vec![0usize; BUCKETS];
        for (d, h) in hist.iter().enumerate() {
            if h.contains(&n) {
                continue;
            }
            let mut sum = 0;
            for (p, c) in pos.iter_mut().zip(h.iter()) {
                *p = sum;
                sum += c;
            }
            for e in src.iter() {
                let b = digit(e, d);
                dst[pos[b]] = *e;
                pos[b] += 1;
            }
            std::mem::swap(&mut src, &mut dst);
            in_buf = !in_buf;
        }
    }
    if in_buf {
        v.copy_from_slice(&buf);
    }
}

/// Sorts `v` in [`entry_order`] as `threads` chunks of about equal length, each by
/// [`radix_sort`] on its own thread (the calling thread sorts the first); returns the sorted
/// chunks, to be read together ([`super::curves::walk`]) rather than merged into a copy.
pub(super) fn sort_chunks(v: &mut [ScoreEntry], threads: usize) -> Vec<&[ScoreEntry]> {
    let len = v.len().div_ceil(threads.max(1)).max(1);
    let mut chunks: Vec<&mut [ScoreEntry]> = v.chunks_mut(len).collect();
    std::thread::scope(|s| {
        let mut rest = chunks.iter_mut();
        let first = rest.next();
        for c in rest {
            s.spawn(move || radix_sort(c));
        }
        if let Some(c) = first {
            radix_sort(c);
        }
    });
    chunks.into_iter().map(|c| &*c).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{entries, view};
    use super::*;

    #[test]
    fn radix_sort_equals_comparison_sort() {
        for (seed, n) in [(1, 0), (2, 5), (3, 511), (4, 512), (5, 3000), (6, 70_000)] {
            let mut want = entries(seed, n);
            let mut got = want.clone();
            want.sort_by(entry_order);
            radix_sort(&mut got);
            assert_eq!(view(&got), view(&want), "seed {seed} n {n}");
        }
        // Constant digits are skipped: scores all equal, only labels vary.
        let mut same: Vec<ScoreEntry> = entries(7, 2000)
            .into_iter()
            .map(|e| ScoreEntry { score: 0.5, ..e })
            .collect();
        let mut want = same.clone();
        want.sort_by(entry_order);
        radix_sort(&mut same);
        assert_eq!(view(&same), view(&want));
    }

    #[test]
    fn chunks_are_sorted_and_keep_every_entry() {
        for (seed, n, threads) in [(8, 40_000, 2), (9, 70_001, 3), (10, 5, 4), (11, 0, 2)] {
            let mut v = entries(seed, n);
            let mut want = v.clone();
            want.sort_by(entry_order);
            let chunks = sort_chunks(&mut v, threads);
            assert!(chunks.len() <= threads.max(1), "{} chunks", chunks.len());
            for c in &chunks {
                assert!(c.is_sorted_by(|a, b| entry_order(a, b).is_le()));
            }
            let mut all: Vec<ScoreEntry> = chunks.concat();
            all.sort_by(entry_order);
            assert_eq!(view(&all), view(&want), "seed {seed} n {n}");
        }
    }
}
