//! Two-sample Kolmogorov–Smirnov: D = sup |F_a − F_b| (the same L∞ as Model Monitor's "Simple"
//! distance, [`crate::metrics::dq::kll::linf_simple`]) and its asymptotic p-value
//! `Q_KS(sqrt(n·m / (n + m)) · D)` with Kolmogorov's limiting distribution
//! `Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}` (scipy `kstwobign.sf`; the same as
//! `ks_2samp(method="asymp")` up to its finite-n correction, which vanishes with n·m/(n+m)).
//!
//! Error: |D̂ − D| ≤ ε_a + ε_b; the p-value is monotone in D, so it lies between the p-values of
//! D ± (ε_a + ε_b).

/// Kolmogorov's limiting survival function Q_KS(λ).
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda.is_nan() {
        return f64::NAN;
    }
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 0.27 {
        // 1 − Q_KS(λ) = sqrt(2π)/λ Σ e^{−(2k−1)²π²/(8λ²)} (converges fast for small λ).
        let s: f64 = (1..=5)
            .map(|k| {
                let j = (2 * k - 1) as f64;
                (-(j * j) * std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda)).exp()
            })
            .sum();
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * s).clamp(0.0, 1.0);
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let t = (-2.0 * kf * kf * lambda * lambda).exp();
        s += if k % 2 == 1 { t } else { -t };
        if t < 1e-17 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

/// The asymptotic two-sided p-value of D for sample sizes n, m.
pub fn ks_p_value(d: f64, n: f64, m: f64) -> f64 {
    if !(n > 0.0 && m > 0.0) || d.is_nan() {
        return f64::NAN;
    }
    kolmogorov_sf((n * m / (n + m)).sqrt() * d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_kstwobign() {
        // scipy.stats.kstwobign.sf([0.2, 0.26, 0.28, 0.5, 1.0, 1.36, 2.0]) (scipy 1.17.1)
        let want = [
            0.999_999_999_999_495,
            0.999_999_885_649_318_5,
            0.999_998_688_149_990_2,
            0.963_945_243_664_875_1,
            0.269_999_671_677_354_56,
            0.049_485_876_755_377_876,
            0.000_670_925_255_779_695_3,
        ];
        for (l, w) in [0.2, 0.26, 0.28, 0.5, 1.0, 1.36, 2.0].into_iter().zip(want) {
            assert!(
                (kolmogorov_sf(l) - w).abs() < 1e-9,
                "{l}: {} vs {w}",
                kolmogorov_sf(l)
            );
        }
        assert_eq!(kolmogorov_sf(0.0), 1.0);
        assert!(ks_p_value(0.1, 0.0, 5.0).is_nan());
    }
}
