//! Drift statistics beyond Model Monitor's L∞, all computed from mergeable state — the KLL
//! sketch of a numeric column and the category counts of a categorical one — so they hold per
//! window, merged across windows and across the partitions of the scale-out mode.
//!
//! | statistic | numeric | categorical | metric |
//! |---|---|---|---|
//! | PSI | shares of `psi_bins` (default 10) bins cut at the baseline's quantiles ([`binned`]) | shares per category | `feature_psi_<f>` |
//! | Jensen–Shannon distance (base 2) | same bins | same | `feature_js_<f>` |
//! | Hellinger distance | same bins | same | `feature_hellinger_<f>` |
//! | Wasserstein-1 / σ_baseline | sketch CDFs ([`wasserstein`]) | — | `feature_wasserstein_<f>` |
//! | KS D and asymptotic p-value | sketch CDFs ([`ks`]) | — | `feature_ks_<f>`, `feature_ks_pvalue_<f>` |
//! | χ² p-value | — | Model Monitor's merge rule ([`crate::metrics::dq::checks::chi_squared_p_value`]) | `feature_chi2_pvalue_<f>` |
//! | L∞ (Simple / Robust) | Model Monitor's KLL CDF distance | Model Monitor's | `feature_baseline_drift_<f>` by default |
//!
//! Categorical shares are over the union of categories; a value the baseline never saw is its
//! own bin (baseline share 0), values past the tracked-category limit form one extra bin.
//!
//! ## Error bounds against the exact values
//! Categorical statistics use exact counts: they equal the exact values (float rounding only)
//! while a column has at most `max_categories` distinct values. Numeric statistics read KLL
//! sketches. A sketch that never compacted (up to [`KllSketch`](super::kll::KllSketch)'s level-0
//! capacity, 2,050 values with k = 2048) is exact; a compacted one has a rank error
//! ε = sup_x |F̂(x) − F(x)|, which for Deequ's k = 2048, c = 0.64 we bound by
//! [`RANK_EPSILON`] = 0.005 (the tests measure it on uniform, normal, log-normal, heavy-tied and
//! sorted inputs of up to 500,000 values, one pass and merged from partitions). With ε_a for the
//! baseline and ε_b for the current window:
//! * KS D: |D̂ − D| ≤ ε_a + ε_b; the p-value lies between the p-values of D ± (ε_a + ε_b).
//! * Wasserstein / σ: ≤ (ε_a + ε_b) · (max − min) / σ_baseline.
//! * PSI, JS, Hellinger over baseline-quantile bins: the edges are the baseline sketch's
//!   quantiles (part of the definition, as Evidently takes them from the reference sample); given
//!   the edges every bin share is within 2ε of the exact share, so PSI is within
//!   [`binned::psi_bound`]`(p, q, 2ε_a, 2ε_b)` (a mean-value bound over the floored shares), and
//!   the JS and Hellinger distances — metrics on distributions, bounded by √TV — within
//!   √(B·ε_a) + √(B·ε_b) for B bins (TV of the share error ≤ B·ε).

pub mod binned;
pub mod ks;
pub mod wasserstein;

use std::collections::HashMap;

/// Documented bound of a compacted KLL sketch's rank error (k = 2048, c = 0.64).
pub const RANK_EPSILON: f64 = 0.005;

/// Default number of baseline-quantile bins (deciles, the usual PSI practice).
pub const DEFAULT_PSI_BINS: usize = 10;

/// Name of the untracked-values bin of a categorical column.
pub const UNTRACKED_BIN: &str = "\u{0}untracked";

/// A drift statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Statistic {
    Psi,
    JensenShannon,
    Hellinger,
    Wasserstein,
    Ks,
    KsPValue,
    Chi2PValue,
    LInfinity,
}

impl Statistic {
    pub const ALL: [Statistic; 8] = [
        Statistic::Psi,
        Statistic::JensenShannon,
        Statistic::Hellinger,
        Statistic::Wasserstein,
        Statistic::Ks,
        Statistic::KsPValue,
        Statistic::Chi2PValue,
        Statistic::LInfinity,
    ];

    /// The metric-name infix (`feature_<key>_<f>`, `prediction_<key>`).
    pub fn key(self) -> &'static str {
        match self {
            Statistic::Psi => "psi",
            Statistic::JensenShannon => "js",
            Statistic::Hellinger => "hellinger",
            Statistic::Wasserstein => "wasserstein",
            Statistic::Ks => "ks",
            Statistic::KsPValue => "ks_pvalue",
            Statistic::Chi2PValue => "chi2_pvalue",
            Statistic::LInfinity => "linf",
        }
    }

    /// How a violation description names it.
    pub fn label(self) -> &'static str {
        match self {
            Statistic::Psi => "PSI",
            Statistic::JensenShannon => "Jensen-Shannon distance",
            Statistic::Hellinger => "Hellinger distance",
            Statistic::Wasserstein => "normalised Wasserstein distance",
            Statistic::Ks => "Kolmogorov-Smirnov D",
            Statistic::KsPValue => "Kolmogorov-Smirnov p-value",
            Statistic::Chi2PValue => "chi-squared p-value",
            Statistic::LInfinity => "L-infinity distance",
        }
    }

    /// Accepts the key and the usual spellings (`PSI`, `JensenShannon`, `jensen_shannon`,
    /// `KolmogorovSmirnov`, `ks_p_value`, `ChiSquared`, `LInfinity`, ...).
    pub fn parse(s: &str) -> Option<Statistic> {
        Some(
            match s.to_ascii_lowercase().replace(['_', '-', ' '], "").as_str() {
                "psi" | "populationstabilityindex" => Statistic::Psi,
                "js" | "jensenshannon" | "jensenshannondistance" => Statistic::JensenShannon,
                "hellinger" | "hellingerdistance" => Statistic::Hellinger,
                "wasserstein" | "wassersteindistance" | "emd" => Statistic::Wasserstein,
                "ks" | "kolmogorovsmirnov" | "ksd" => Statistic::Ks,
                "kspvalue" | "kolmogorovsmirnovpvalue" => Statistic::KsPValue,
                "chi2pvalue" | "chisquared" | "chisquare" | "chi2" | "chisquaredpvalue" => {
                    Statistic::Chi2PValue
                }
                "linf" | "linfinity" | "linfsimple" | "linfrobust" => Statistic::LInfinity,
                _ => return None,
            },
        )
    }

    /// A p-value: drift when it falls *below* its threshold.
    pub fn is_p_value(self) -> bool {
        matches!(self, Statistic::KsPValue | Statistic::Chi2PValue)
    }

    /// Computed for numeric columns.
    pub fn numeric(self) -> bool {
        !matches!(self, Statistic::Chi2PValue)
    }

    /// Computed for categorical columns.
    pub fn categorical(self) -> bool {
        !matches!(
            self,
            Statistic::Wasserstein | Statistic::Ks | Statistic::KsPValue
        )
    }
}

/// Numeric statistics (all but L∞, which needs Model Monitor's robust correction) of a current
/// sample against a baseline, both as sorted weighted items. `base_std`: the baseline's
/// population standard deviation (from `statistics.json`; the sketch's when absent).
pub fn numeric(
    base: &[(f64, f64)],
    base_std: Option<f64>,
    cur: &[(f64, f64)],
    bins: usize,
) -> Vec<(Statistic, f64)> {
    let edges = binned::quantile_edges(base, bins.max(2));
    let p = binned::bin_shares(base, &edges);
    let q = binned::bin_shares(cur, &edges);
    let n: f64 = base.iter().map(|x| x.1).sum();
    let m: f64 = cur.iter().map(|x| x.1).sum();
    let d = super::kll::linf_simple(base, cur);
    let std = base_std
        .filter(|s| s.is_finite())
        .unwrap_or_else(|| wasserstein::weighted_std(base));
    let w = wasserstein::wasserstein1(base, cur);
    let wn = if std > 0.0 { w / std } else { f64::NAN };
    let empty = n <= 0.0 || m <= 0.0;
    let nan_if = |x: f64| if empty { f64::NAN } else { x };
    vec![
        (Statistic::Psi, nan_if(binned::psi(&p, &q))),
        (
            Statistic::JensenShannon,
            nan_if(binned::js_distance(&p, &q)),
        ),
        (Statistic::Hellinger, nan_if(binned::hellinger(&p, &q))),
        (Statistic::Wasserstein, nan_if(wn)),
        (Statistic::Ks, d),
        (Statistic::KsPValue, ks::ks_p_value(d, n, m)),
    ]
}

/// Baseline and current shares over the union of categories (baseline order first, then the
/// current's new values sorted, then the untracked bin).
pub fn category_shares(
    base: &[(String, f64)],
    cur: &HashMap<String, u64>,
    untracked: u64,
) -> (Vec<f64>, Vec<f64>) {
    let n: f64 = base.iter().map(|b| b.1).sum();
    let m: f64 = cur.values().map(|&c| c as f64).sum::<f64>() + untracked as f64;
    let (mut p, mut q) = (Vec::new(), Vec::new());
    if n <= 0.0 || m <= 0.0 {
        return (p, q);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (k, c) in base {
        match seen.get(k.as_str()) {
            Some(&i) => p[i] += c / n,
            None => {
                seen.insert(k, p.len());
                p.push(c / n);
                q.push(cur.get(k).copied().unwrap_or(0) as f64 / m);
            }
        }
    }
    let mut new: Vec<(&String, &u64)> = cur
        .iter()
        .filter(|(k, _)| !seen.contains_key(k.as_str()))
        .collect();
    new.sort();
    for (_, &c) in new {
        p.push(0.0);
        q.push(c as f64 / m);
    }
    if untracked > 0 {
        p.push(0.0);
        q.push(untracked as f64 / m);
    }
    (p, q)
}

/// Categorical PSI, JS and Hellinger (χ² and L∞ come from [`super::checks`]).
pub fn categorical(
    base: &[(String, f64)],
    cur: &HashMap<String, u64>,
    untracked: u64,
) -> Vec<(Statistic, f64)> {
    let (p, q) = category_shares(base, cur, untracked);
    if p.is_empty() {
        return vec![
            (Statistic::Psi, f64::NAN),
            (Statistic::JensenShannon, f64::NAN),
            (Statistic::Hellinger, f64::NAN),
        ];
    }
    vec![
        (Statistic::Psi, binned::psi(&p, &q)),
        (Statistic::JensenShannon, binned::js_distance(&p, &q)),
        (Statistic::Hellinger, binned::hellinger(&p, &q)),
    ]
}

#[cfg(test)]
mod tests;
