//! Binned statistics — PSI, Jensen–Shannon distance, Hellinger distance — over shared bins: for
//! a numeric feature the bins are cut at the baseline's quantiles, for a categorical one each
//! category (the union of both sides) is a bin.
//!
//! * Numeric bins: edges `e_i = Q_base(i / bins)`, i = 1..bins-1, where `Q(q)` is the smallest
//!   value whose cumulative weight reaches `q · total` (numpy's `inverted_cdf`); repeated edges
//!   (ties) are dropped. Bins are right-closed: `(-inf, e_1], (e_1, e_2], ..., (e_last, +inf)`
//!   (numpy `searchsorted(edges, x, side="left")`). A bin's share is a difference of two CDF
//!   values, so with sketches of rank error ε_a (baseline) and ε_b (current) each baseline share
//!   is within 2ε_a and each current share within 2ε_b of the exact share of the same bins.
//! * PSI = Σ (q_i − p_i) · ln(q_i / p_i) with shares floored at [`PSI_FLOOR`] (as Evidently), so
//!   an empty bin costs a finite amount.
//! * JS distance = sqrt(JS divergence), base 2 (in [0, 1]; scipy's `jensenshannon(p, q, base=2)`).
//! * Hellinger = sqrt(½ Σ (√p_i − √q_i)²) (in [0, 1]).

/// Floor of a share in PSI (a bin empty on one side).
pub const PSI_FLOOR: f64 = 1e-4;

/// Bin edges at the baseline's quantiles (sorted, distinct). `items` sorted by value.
pub fn quantile_edges(items: &[(f64, f64)], bins: usize) -> Vec<f64> {
    let total: f64 = items.iter().map(|i| i.1).sum();
    let mut edges: Vec<f64> = Vec::new();
    if total <= 0.0 || bins < 2 {
        return edges;
    }
    let (mut cum, mut j) = (0.0, 0usize);
    for i in 1..bins {
        let target = total * i as f64 / bins as f64;
        while j < items.len() && cum + items[j].1 < target {
            cum += items[j].1;
            j += 1;
        }
        let x = items[j.min(items.len() - 1)].0;
        if edges.last().is_none_or(|&l| x > l) {
            edges.push(x);
        }
    }
    edges
}

/// Shares of the right-closed bins cut at `edges` (len = edges + 1; all zero without weight).
pub fn bin_shares(items: &[(f64, f64)], edges: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; edges.len() + 1];
    let total: f64 = items.iter().map(|i| i.1).sum();
    if total <= 0.0 {
        return out;
    }
    for &(x, w) in items {
        // First edge >= x: x lies in (e_{b-1}, e_b].
        let b = edges.partition_point(|&e| e < x);
        out[b] += w;
    }
    for s in &mut out {
        *s /= total;
    }
    out
}

/// Population stability index of baseline shares `p` against current shares `q`.
pub fn psi(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            let (a, b) = (a.max(PSI_FLOOR), b.max(PSI_FLOOR));
            (b - a) * (b / a).ln()
        })
        .sum()
}

/// Jensen–Shannon distance, base 2.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let term = |a: f64, m: f64| if a > 0.0 { a * (a / m).ln() } else { 0.0 };
    let d: f64 = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| {
            let m = (a + b) / 2.0;
            0.5 * (term(a, m) + term(b, m))
        })
        .sum::<f64>()
        / std::f64::consts::LN_2;
    d.max(0.0).sqrt()
}

/// Hellinger distance.
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| (a.sqrt() - b.sqrt()).powi(2))
        .sum();
    (0.5 * s).max(0.0).sqrt()
}

/// Bound on |PSI(p̂, q̂) − PSI(p, q)| when every share is off by at most `dp` (baseline) and
/// `dq` (current): Σ_i dp·sup|∂PSI/∂p_i| + dq·sup|∂PSI/∂q_i| over the box of floored shares
/// (mean-value theorem; each partial derivative is monotone in both shares, so its extremes
/// are at the box corners). `p`, `q` are the exact shares.
pub fn psi_bound(p: &[f64], q: &[f64], dp: f64, dq: f64) -> f64 {
    let lo = |x: f64, d: f64| (x - d).max(PSI_FLOOR);
    let hi = |x: f64, d: f64| (x + d).max(PSI_FLOOR);
    let dq_part = |a: f64, b: f64| (b / a).ln() + 1.0 - a / b; // ∂/∂q at (p = a, q = b)
    let mut bound = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a0, a1, b0, b1) = (lo(a, dp), hi(a, dp), lo(b, dq), hi(b, dq));
        let corners = [(a0, b0), (a0, b1), (a1, b0), (a1, b1)];
        let sq = corners
            .iter()
            .map(|&(x, y)| dq_part(x, y).abs())
            .fold(0.0, f64::max);
        let sp = corners
            .iter()
            .map(|&(x, y)| dq_part(y, x).abs())
            .fold(0.0, f64::max);
        bound += dq * sq + dp * sp;
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_shares_and_hand_computed_values() {
        // 1..=10 in deciles: edges 1..9, one value per bin.
        let items: Vec<(f64, f64)> = (1..=10).map(|i| (i as f64, 1.0)).collect();
        let e = quantile_edges(&items, 10);
        assert_eq!(e, (1..=9).map(f64::from).collect::<Vec<_>>());
        assert_eq!(bin_shares(&items, &e), vec![0.1; 10]);
        // Heavy ties: 90% zeros -> the edges collapse to [0, 5, ...].
        let mut tied = vec![(0.0, 9.0)];
        tied.push((5.0, 1.0));
        assert_eq!(quantile_edges(&tied, 10), vec![0.0]);
        let p = [0.5, 0.5];
        let q = [0.25, 0.75];
        let want = 0.25 * 0.5f64.ln().abs() + 0.25 * 1.5f64.ln();
        assert!((psi(&p, &q) - want).abs() < 1e-15);
        assert_eq!(psi(&p, &p), 0.0);
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((hellinger(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(js_distance(&p, &p), 0.0);
        // PSI bound covers a perturbation.
        let (p2, q2) = ([0.49, 0.51], [0.26, 0.74]);
        assert!((psi(&p2, &q2) - psi(&p, &q)).abs() <= psi_bound(&p, &q, 0.01, 0.01));
    }
}
