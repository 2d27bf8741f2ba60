//! Data-quality accumulators: per column type counts, completeness, numeric moments, KLL sketch
//! and categorical counts; Model-Monitor-shaped `statistics.json`.
//!
//! * Empty CSV fields and JSON nulls are missing values (`num_missing`).
//! * `std_dev` is the population standard deviation (Welford / Chan merge).
//! * Categorical counts: at most `max_categories` distinct values per column are tracked; later new
//!   values are counted in `untracked` (so memory stays bounded on numeric / id-like columns).
//!   `distinct_count` is the number of tracked values (plus 0 for untracked ones: a lower bound).
//! * Numeric statistics are written for Integral / Fractional columns, string statistics for
//!   String / Boolean columns.

use super::kll::KllSketch;
use super::types::{DataType, TypeCounts, infer_value};
use crate::metrics::util::{KahanSum, json_f64};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A value handed to the data-quality accumulator.
#[derive(Debug, Clone, Copy)]
pub enum DqValue<'a> {
    Null,
    Text(&'a str),
    Json(&'a serde_json::Value),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NumStats {
    pub n: u64,
    pub sum: KahanSum,
    pub mean: f64,
    pub m2: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl NumStats {
    #[inline]
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum.add(x);
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
    }
    pub fn merge(&mut self, o: &NumStats) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = o.clone();
            return;
        }
        let n = (self.n + o.n) as f64;
        let d = o.mean - self.mean;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n;
        self.mean += d * o.n as f64 / n;
        self.n += o.n;
        self.sum.merge(&o.sum);
        self.min = Some(self.min.unwrap().min(o.min.unwrap()));
        self.max = Some(self.max.unwrap().max(o.max.unwrap()));
    }
    pub fn std_dev(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            (self.m2 / self.n as f64).max(0.0).sqrt()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnState {
    pub name: String,
    pub types: TypeCounts,
    pub num: NumStats,
    pub kll: KllSketch,
    pub categories: HashMap<String, u64>,
    pub untracked: u64,
}

impl ColumnState {
    pub fn new(name: String) -> ColumnState {
        ColumnState {
            name,
            types: TypeCounts::default(),
            num: NumStats::default(),
            kll: KllSketch::default(),
            categories: HashMap::new(),
            untracked: 0,
        }
    }
    fn add_category(&mut self, s: &str, max: usize) {
        if let Some(c) = self.categories.get_mut(s) {
            *c += 1;
        } else if self.categories.len() < max {
            self.categories.insert(s.to_string(), 1);
        } else {
            self.untracked += 1;
        }
    }
    pub fn add(&mut self, v: DqValue<'_>, max_categories: usize) {
        match v {
            DqValue::Null | DqValue::Json(serde_json::Value::Null) => {
                self.types.add(DataType::Unknown)
            }
            DqValue::Text("") => self.types.add(DataType::Unknown),
            DqValue::Text(s) => self.add_text(s, max_categories),
            DqValue::Json(serde_json::Value::String(s)) => {
                if s.is_empty() {
                    self.types.add(DataType::Unknown)
                } else {
                    self.add_text(s, max_categories)
                }
            }
            DqValue::Json(serde_json::Value::Bool(b)) => {
                self.types.add(DataType::Boolean);
                self.add_category(if *b { "true" } else { "false" }, max_categories);
            }
            DqValue::Json(serde_json::Value::Number(n)) => {
                let t = if n.is_f64() {
                    DataType::Fractional
                } else {
                    DataType::Integral
                };
                self.types.add(t);
                if let Some(x) = n.as_f64() {
                    self.num.add(x);
                    self.kll.update(x);
                }
                self.add_category(&n.to_string(), max_categories);
            }
            DqValue::Json(other) => self.add_text(&other.to_string(), max_categories),
        }
    }
    fn add_text(&mut self, s: &str, max_categories: usize) {
        let t = infer_value(s);
        self.types.add(t);
        if t.is_numeric() {
            let parsed = if s.contains(' ') {
                s.replacen(' ', "", 1).parse::<f64>()
            } else {
                crate::metrics::util::parse_float(s)
            };
            if let Ok(x) = parsed
                && x.is_finite()
            {
                self.num.add(x);
                self.kll.update(x);
            }
        }
        self.add_category(s, max_categories);
    }
    pub fn merge(&mut self, o: &ColumnState, max_categories: usize) {
        self.types.merge(&o.types);
        self.num.merge(&o.num);
        self.kll.merge(&o.kll);
        for (k, v) in &o.categories {
            if let Some(c) = self.categories.get_mut(k) {
                *c += v;
            } else if self.categories.len() < max_categories {
                self.categories.insert(k.clone(), *v);
            } else {
                self.untracked += v;
            }
        }
        self.untracked += o.untracked;
    }
    pub fn inferred_type(&self) -> DataType {
        self.types.column_type()
    }
    /// Categorical (value, count) pairs sorted by count descending, then value.
    pub fn sorted_categories(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self
            .categories
            .iter()
            .map(|(k, c)| (k.as_str(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
    pub fn to_json(&self) -> serde_json::Value {
        let t = self.inferred_type();
        let common = serde_json::json!({ "num_present": self.types.non_null(), "num_missing": self.types.unknown });
        let mut f = serde_json::json!({ "name": self.name, "inferred_type": t.as_str() });
        if t.is_numeric() && self.num.n > 0 {
            let (min, max) = (
                self.num.min.unwrap_or(f64::NAN),
                self.num.max.unwrap_or(f64::NAN),
            );
            let buckets: Vec<_> = self
                .kll
                .buckets(min, max, 10)
                .into_iter()
                .map(|(lb, ub, c)| serde_json::json!({ "lower_bound": json_f64(lb), "upper_bound": json_f64(ub), "count": c }))
                .collect();
            f["numerical_statistics"] = serde_json::json!({
                "common": common,
                "mean": json_f64(self.num.mean),
                "sum": json_f64(self.num.sum.value()),
                "std_dev": json_f64(self.num.std_dev()),
                "min": json_f64(min),
                "max": json_f64(max),
                "distribution": { "kll": {
                    "buckets": buckets,
                    "sketch": { "parameters": { "c": self.kll.c, "k": self.kll.k as f64 }, "data": self.kll.levels },
                } },
            });
        } else {
            let buckets: Vec<_> = self
                .sorted_categories()
                .into_iter()
                .map(|(v, c)| serde_json::json!({ "value": v, "count": c }))
                .collect();
            f["string_statistics"] = serde_json::json!({
                "common": common,
                "distinct_count": self.categories.len() as f64,
                "distribution": { "categorical": { "buckets": buckets } },
            });
        }
        f
    }
}

/// `name == format!("_c{i}")` without formatting.
fn is_default_name(name: &str, i: usize) -> bool {
    name.strip_prefix("_c")
        .is_some_and(|d| (d == "0" || !d.starts_with('0')) && d.parse::<usize>().ok() == Some(i))
}

/// At most this many columns are tracked.
pub const MAX_COLUMNS: usize = 2000;

/// Data-quality state of a dataset (mergeable by column name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataQualityState {
    pub item_count: u64,
    pub columns: Vec<ColumnState>,
    pub max_categories: usize,
    /// Values of columns beyond [`MAX_COLUMNS`] (not in the statistics).
    #[serde(default)]
    pub dropped_values: u64,
    #[serde(skip, default = "overflow_column")]
    overflow: ColumnState,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

fn overflow_column() -> ColumnState {
    ColumnState::new(String::new())
}

impl Default for DataQualityState {
    fn default() -> Self {
        DataQualityState::new(10_000)
    }
}

impl DataQualityState {
    pub fn new(max_categories: usize) -> DataQualityState {
        DataQualityState {
            item_count: 0,
            columns: Vec::new(),
            max_categories,
            dropped_values: 0,
            overflow: overflow_column(),
            index: HashMap::new(),
        }
    }
    fn rebuild_index(&mut self) {
        if self.index.len() != self.columns.len() {
            self.index = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect();
        }
    }
    /// The column with this name, created on first use (columns keep first-seen order). Beyond
    /// [`MAX_COLUMNS`] columns, values of new columns go to a discarded overflow column (counted in
    /// `dropped_values`), so odd inputs (a new JSON key per record) stay bounded.
    pub fn column_mut(&mut self, name: &str) -> &mut ColumnState {
        if self.columns.len() >= MAX_COLUMNS && !self.index.contains_key(name) {
            self.rebuild_index();
            if !self.index.contains_key(name) {
                self.dropped_values += 1;
                return &mut self.overflow;
            }
        }
        self.rebuild_index();
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.columns.push(ColumnState::new(name.to_string()));
                self.index.insert(name.to_string(), self.columns.len() - 1);
                self.columns.len() - 1
            }
        };
        &mut self.columns[i]
    }
    /// Positional column `i`, named `names[i]` (else `_c{i}`): the column at index `i` when it
    /// has that name (the fast path for CSV rows), else the column of that name.
    pub fn positional_mut(&mut self, i: usize, names: Option<&[String]>) -> &mut ColumnState {
        let named = names.and_then(|n| n.get(i));
        if i < self.columns.len() {
            let fits = match named {
                Some(n) => self.columns[i].name == *n,
                None => is_default_name(&self.columns[i].name, i),
            };
            if fits {
                return &mut self.columns[i];
            }
        }
        match named {
            Some(n) => {
                let n = n.clone();
                self.column_mut(&n)
            }
            None => self.column_mut(&format!("_c{i}")),
        }
    }
    /// Adds one row given as (column name, value) pairs. Columns absent from this row are counted
    /// as missing at the end (see [`DataQualityState::finish_row`]).
    pub fn push_named<'a>(&mut self, values: impl IntoIterator<Item = (&'a str, DqValue<'a>)>) {
        let max = self.max_categories;
        for (name, v) in values {
            self.column_mut(name).add(v, max);
        }
        self.finish_row();
    }
    /// Adds one CSV row: column i gets `names[i]` or `_c{i}`.
    pub fn push_csv_row(&mut self, fields: &[std::borrow::Cow<'_, str>], names: Option<&[String]>) {
        self.push_csv_fields(fields.iter().map(|f| f.as_ref()), names);
    }
    /// [`DataQualityState::push_csv_row`] over any sequence of fields.
    pub fn push_csv_fields<'f>(
        &mut self,
        fields: impl Iterator<Item = &'f str>,
        names: Option<&[String]>,
    ) {
        let max = self.max_categories;
        for (i, f) in fields.enumerate() {
            self.positional_mut(i, names).add(DqValue::Text(f), max);
        }
        self.finish_row();
    }
    /// Ends a row: columns that did not get a value in it get a missing value.
    pub fn finish_row(&mut self) {
        self.item_count += 1;
        let n = self.item_count;
        for c in self.columns.iter_mut() {
            let seen = c.types.non_null() + c.types.unknown;
            if seen < n {
                c.types.unknown += n - seen;
            }
        }
    }
    pub fn merge(&mut self, o: &DataQualityState) {
        let max = self.max_categories;
        let before = self.item_count;
        for c in &o.columns {
            let existed = {
                self.rebuild_index();
                self.index.contains_key(&c.name)
            };
            let col = self.column_mut(&c.name);
            if !existed {
                // Rows of `self` had no value for this column.
                col.types.unknown += before;
            }
            col.merge(c, max);
        }
        self.item_count += o.item_count;
        self.dropped_values += o.dropped_values;
        let n = self.item_count;
        for c in self.columns.iter_mut() {
            let seen = c.types.non_null() + c.types.unknown;
            if seen < n {
                c.types.unknown += n - seen;
            }
        }
    }
    pub fn column(&self, name: &str) -> Option<&ColumnState> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// Model Monitor's data-quality `statistics.json`.
    pub fn statistics_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": 0.0,
            "dataset": { "item_count": self.item_count },
            "features": self.columns.iter().map(ColumnState::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn column_statistics_hand_computed() {
        let mut s = DataQualityState::default();
        for row in ["1,a,true", "2,b,", "3,a,false", "4.5,,true"] {
            let f: Vec<Cow<str>> = crate::metrics::util::split_csv(row).collect();
            s.push_csv_row(&f, None);
        }
        let j = s.statistics_json();
        assert_eq!(j["dataset"]["item_count"], 4);
        let c0 = &j["features"][0];
        assert_eq!(c0["inferred_type"], "Fractional");
        let ns = &c0["numerical_statistics"];
        assert_eq!(ns["sum"], 10.5);
        assert_eq!(ns["mean"], 2.625);
        let var = ((1.0f64 - 2.625).powi(2)
            + (2.0f64 - 2.625).powi(2)
            + (3.0f64 - 2.625).powi(2)
            + (4.5f64 - 2.625).powi(2))
            / 4.0;
        assert!((ns["std_dev"].as_f64().unwrap() - var.sqrt()).abs() < 1e-12);
        assert_eq!(
            ns["distribution"]["kll"]["buckets"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert_eq!(ns["distribution"]["kll"]["buckets"][0]["lower_bound"], 1.0);
        let c1 = &j["features"][1];
        assert_eq!(c1["inferred_type"], "String");
        assert_eq!(c1["string_statistics"]["common"]["num_missing"], 1);
        assert_eq!(
            c1["string_statistics"]["distribution"]["categorical"]["buckets"][0]["value"],
            "a"
        );
        assert_eq!(
            c1["string_statistics"]["distribution"]["categorical"]["buckets"][0]["count"],
            2
        );
        assert_eq!(j["features"][2]["inferred_type"], "Boolean");
    }

    #[test]
    fn columns_are_capped() {
        let mut s = DataQualityState::default();
        for i in 0..(MAX_COLUMNS + 50) {
            let k = format!("k{i}");
            s.push_named([(k.as_str(), DqValue::Text("1"))]);
        }
        assert_eq!(s.columns.len(), MAX_COLUMNS);
        assert_eq!(s.dropped_values, 50);
        assert_eq!(
            s.column("k0").unwrap().types.unknown,
            (MAX_COLUMNS + 49) as u64
        );
    }

    #[test]
    fn merge_of_disjoint_columns_counts_missing() {
        let mut a = DataQualityState::default();
        a.push_named([("x", DqValue::Text("1"))]);
        let mut b = DataQualityState::default();
        b.push_named([("y", DqValue::Text("2"))]);
        a.merge(&b);
        assert_eq!(a.item_count, 2);
        assert_eq!(a.column("x").unwrap().types.unknown, 1);
        assert_eq!(a.column("y").unwrap().types.unknown, 1);
    }
}
