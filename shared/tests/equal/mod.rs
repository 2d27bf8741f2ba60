//! Shared by the property tests that prove a split or threaded run equal to the single pass
//! (`metrics_partial.rs`, `metrics_broadcast.rs`): one definition of "the same result".

use driftloop::metrics::JobResult;
use proptest::prelude::*;

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn without_time(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(d) = v.get_mut("dataset").and_then(|d| d.as_object_mut()) {
        d.remove("evaluation_time");
    }
    v
}

pub fn same(s: &JobResult, m: &JobResult) -> Result<(), TestCaseError> {
    prop_assert_eq!(&s.counts, &m.counts);
    prop_assert_eq!(&s.error_samples, &m.error_samples);
    prop_assert_eq!(
        s.model_quality_statistics_json().map(without_time),
        m.model_quality_statistics_json().map(without_time)
    );
    prop_assert_eq!(s.min_inference_time_ms, m.min_inference_time_ms);
    prop_assert_eq!(s.max_inference_time_ms, m.max_inference_time_ms);
    let (a, b) = (
        s.data_quality.as_ref().unwrap(),
        m.data_quality.as_ref().unwrap(),
    );
    prop_assert_eq!(a.item_count, b.item_count);
    prop_assert_eq!(a.columns.len(), b.columns.len());
    for (ca, cb) in a.columns.iter().zip(b.columns.iter()) {
        prop_assert_eq!(&ca.name, &cb.name);
        prop_assert_eq!(ca.types, cb.types);
        prop_assert_eq!(&ca.categories, &cb.categories);
        prop_assert_eq!(ca.num.n, cb.num.n);
        prop_assert_eq!(ca.num.min, cb.num.min);
        prop_assert_eq!(ca.num.max, cb.num.max);
        prop_assert!(close(ca.num.sum.value(), cb.num.sum.value()));
        let (ka, kb) = (ca.kll.weighted_items(), cb.kll.weighted_items());
        if ka.len() + kb.len() < 400 {
            // Below capacity the sketch is exact: the same items.
            prop_assert_eq!(ka, kb);
        } else {
            // Above, within the sketch's rank error: the CDFs agree to 5% at every item (KLL
            // with k = 200 keeps each sketch within ~1.7% of the true ranks).
            let total = |k: &[(f64, f64)]| k.iter().map(|x| x.1).sum::<f64>();
            let (ta, tb) = (total(&ka), total(&kb));
            prop_assert_eq!(ta, tb);
            let cdf = |k: &[(f64, f64)], t: f64, x: f64| {
                k.iter().filter(|i| i.0 <= x).map(|i| i.1).sum::<f64>() / t
            };
            for (x, _) in ka.iter().chain(kb.iter()) {
                let d = (cdf(&ka, ta, *x) - cdf(&kb, tb, *x)).abs();
                prop_assert!(d <= 0.05, "{} at {}", d, x);
            }
        }
    }
    Ok(())
}
