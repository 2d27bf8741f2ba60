//! Wasserstein-1 (earth mover's) distance between two weighted samples, normalised by the
//! baseline's standard deviation: `W1 = ∫ |F_a(x) − F_b(x)| dx` (scipy's `wasserstein_distance`),
//! reported as `W1 / σ_base` (Evidently's normalisation: 0.1 means "a tenth of a standard
//! deviation"). σ_base = 0 gives NaN (not published).
//!
//! Error: with sketches of rank error ε_a, ε_b, |F̂ − F| ≤ ε on the whole line, so
//! |Ŵ1 − W1| ≤ (ε_a + ε_b) · (max − min) over both samples, i.e. `(ε_a + ε_b) · range / σ_base`
//! for the normalised value.

/// W1 of two weighted samples sorted by value (NaN when one has no weight).
pub fn wasserstein1(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let ta: f64 = a.iter().map(|x| x.1).sum();
    let tb: f64 = b.iter().map(|x| x.1).sum();
    if ta <= 0.0 || tb <= 0.0 {
        return f64::NAN;
    }
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0.0, 0.0);
    let mut prev: Option<f64> = None;
    let mut w = 0.0;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        if let Some(px) = prev {
            w += (ca / ta - cb / tb).abs() * (x - px);
        }
        while i < a.len() && a[i].0 <= x {
            ca += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 <= x {
            cb += b[j].1;
            j += 1;
        }
        prev = Some(x);
    }
    w
}

/// Weighted population standard deviation of sorted items.
pub fn weighted_std(items: &[(f64, f64)]) -> f64 {
    let t: f64 = items.iter().map(|x| x.1).sum();
    if t <= 0.0 {
        return f64::NAN;
    }
    let mean = items.iter().map(|x| x.0 * x.1).sum::<f64>() / t;
    (items
        .iter()
        .map(|x| (x.0 - mean).powi(2) * x.1)
        .sum::<f64>()
        / t)
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // Shift by 2: W1 = 2.
        let a = [(0.0, 1.0), (1.0, 1.0)];
        let b = [(2.0, 1.0), (3.0, 1.0)];
        assert!((wasserstein1(&a, &b) - 2.0).abs() < 1e-15);
        assert_eq!(wasserstein1(&a, &a), 0.0);
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5.0; ([0,1],[0,0,1]) = 1/6
        assert!(
            (wasserstein1(&[(0.0, 1.0), (1.0, 1.0)], &[(0.0, 2.0), (1.0, 1.0)]) - 1.0 / 6.0).abs()
                < 1e-15
        );
        assert!((weighted_std(&a) - 0.5).abs() < 1e-15);
        assert!(wasserstein1(&a, &[]).is_nan());
    }
}
