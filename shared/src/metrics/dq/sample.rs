//! Rows consistent with a baseline: the values a data-quality `statistics.json` describes, laid
//! out as CSV fields, for demos and tests ("traffic that matches the baseline").
//!
//! Per feature, in the baseline's order: a numeric feature's values are its KLL sketch's items,
//! each repeated by its weight (with fewer values than the sketch's `k`, a sketch holds every
//! value), else its bucket midpoints repeated by their counts; a String/Boolean feature's values
//! are its categorical buckets repeated by their counts. Integral values are written as integers,
//! Fractional ones always with a fraction or exponent (so they infer as Fractional again). Row `r`
//! takes each feature's value `r`; a feature with fewer values than rows gets empty fields (missing)
//! in the last rows, so its completeness is kept too. Rows: the largest value count (the
//! statistics' `item_count` when the baseline holds every value).

use super::baseline::{BaselineFeatureStats, BaselineStatistics};
use super::types::DataType;

/// At most this many rows are produced (a sketch of a large dataset has weights in the millions).
pub const MAX_ROWS: usize = 100_000;

/// The text of value `x` of a feature of type `t`.
pub fn format_value(x: f64, t: DataType) -> String {
    if t == DataType::Integral && x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        // Debug keeps `.0` on whole numbers: `2.0`, `1e-7`.
        format!("{x:?}")
    }
}

/// One feature's values as text (see the module docs).
pub fn feature_values(f: &BaselineFeatureStats) -> Vec<String> {
    let mut out = Vec::new();
    let mut repeat = |v: String, w: f64| {
        let n = w.round().max(0.0) as usize;
        for _ in 0..n.min(MAX_ROWS.saturating_sub(out.len())) {
            out.push(v.clone());
        }
    };
    if f.inferred_type.is_numeric() {
        for (x, w) in f.weighted_items() {
            repeat(format_value(x, f.inferred_type), w);
        }
    } else {
        for (v, c) in &f.categories {
            repeat(v.clone(), *c);
        }
    }
    out
}

/// Rows of CSV fields, one field per baseline feature in its order (see the module docs).
pub fn rows_from_statistics(stats: &BaselineStatistics) -> Vec<Vec<String>> {
    let columns: Vec<Vec<String>> = stats.features.iter().map(feature_values).collect();
    let n = columns.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|r| {
            columns
                .iter()
                .map(|c| c.get(r).cloned().unwrap_or_default())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::dq::stats::DataQualityState;

    #[test]
    fn rows_reproduce_the_statistics() {
        let mut s = DataQualityState::default();
        let names: Vec<String> = ["n", "x", "c"].map(String::from).to_vec();
        for r in ["1,0.5,a", "2,2.0,b", "3,,a", "4,1e-3,a"] {
            let f: Vec<std::borrow::Cow<str>> = crate::metrics::util::split_csv(r).collect();
            s.push_csv_row(&f, Some(&names));
        }
        let base = BaselineStatistics::from_value(&s.statistics_json()).unwrap();
        let rows = rows_from_statistics(&base);
        assert_eq!(rows.len(), 4);
        let mut again = DataQualityState::default();
        for r in &rows {
            again.push_csv_fields(r.iter().map(String::as_str), Some(&names));
        }
        let (a, b) = (s.statistics_json(), again.statistics_json());
        for i in 0..3 {
            let (fa, fb) = (&a["features"][i], &b["features"][i]);
            assert_eq!(fa["inferred_type"], fb["inferred_type"], "{i}");
            for k in ["numerical_statistics", "string_statistics"] {
                assert_eq!(fa[k]["common"], fb[k]["common"], "{i} {k}");
                assert_eq!(fa[k].get("sum"), fb[k].get("sum"), "{i} {k}");
            }
        }
        assert_eq!(format_value(2.0, DataType::Fractional), "2.0");
        assert_eq!(format_value(2.0, DataType::Integral), "2");
    }
}
