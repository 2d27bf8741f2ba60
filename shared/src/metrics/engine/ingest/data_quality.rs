//! Data quality of a capture record: its input (and output) rows, as CSV fields or JSON values,
//! named positionally or by key, into the data-quality state.

use super::Ingest;
use crate::metrics::config::OutputColumnsPosition;
use crate::metrics::dq::naming::{ColumnNames, NamesSource};
use crate::metrics::dq::stats::DqValue;
use crate::metrics::parse::record::{CaptureRecord, Decoded, csv_rows};
use std::borrow::Cow;

impl Ingest {
    pub(super) fn push_data_quality(
        &mut self,
        rec: &CaptureRecord<'_>,
        source: &str,
        line_no: u64,
    ) {
        let out = if self.cfg.dq_include_output {
            rec.output.as_ref().map(|p| p.decode())
        } else {
            None
        };
        let inp = rec.input.as_ref().map(|p| p.decode());
        let out = match out.transpose() {
            Ok(o) => o,
            Err(e) => {
                self.sample(source, line_no, || format!("data quality output: {e}"));
                None
            }
        };
        let inp = match inp.transpose() {
            Ok(o) => o,
            Err(e) => {
                self.sample(source, line_no, || format!("data quality input: {e}"));
                None
            }
        };
        let start = self.cfg.output_columns_position == OutputColumnsPosition::Start;
        // The usual case without the row vectors below: output and input each absent or one row
        // of unquoted CSV (which `csv_rows` reads as `split(',')`; blank text is no row).
        fn one_row<'d>(d: &'d Option<Decoded<'_>>) -> Option<Option<&'d str>> {
            match d {
                None => Some(None),
                Some(Decoded::Csv(s)) if !s.bytes().any(|c| matches!(c, b'"' | b'\n' | b'\r')) => {
                    Some((!s.trim().is_empty()).then_some(&**s))
                }
                Some(_) => None,
            }
        }
        if let (Some(mut o), Some(i)) = (one_row(&out), one_row(&inp)) {
            if o.is_none() && i.is_none() {
                return;
            }
            let mut mismatch = None;
            if let Some(n) = &self.names {
                let count = |r: Option<&str>| {
                    r.map_or(0, |r| memchr::memchr_iter(b',', r.as_bytes()).count() + 1)
                };
                let (k, ni) = (count(o), count(i));
                if !n.include_output(ni, k) {
                    o = None;
                }
                let total = ni + if o.is_some() { k } else { 0 };
                if total != n.expected() {
                    mismatch = Some((total, k, ni));
                }
            }
            let (a, b) = if start { (o, i) } else { (i, o) };
            let fields = a.into_iter().chain(b).flat_map(|r| r.split(','));
            let dq = self.state.data_quality.as_mut().expect("dq state");
            dq.push_csv_fields(fields, self.names.as_ref().map(ColumnNames::as_slice));
            self.state.counts.data_quality_records += 1;
            if let Some(m) = mismatch {
                self.column_mismatch(m, source, line_no);
            }
            return;
        }
        let out_rows = decoded_rows(out.as_ref());
        let in_rows = decoded_rows(inp.as_ref());
        let n = out_rows.len().max(in_rows.len());
        for r in 0..n {
            let mut o = out_rows.get(r).or(out_rows.first());
            let i = in_rows.get(r);
            let mut mismatch = None;
            if let Some(names) = &self.names {
                let (k, ni) = (
                    o.map_or(Some(0), Row::positional_len),
                    i.map_or(Some(0), Row::positional_len),
                );
                if let (Some(k), Some(ni)) = (k, ni) {
                    if !names.include_output(ni, k) {
                        o = None;
                    }
                    let total = ni + if o.is_some() { k } else { 0 };
                    if total != names.expected() {
                        mismatch = Some((total, k, ni));
                    }
                }
            }
            let (a, b) = if start { (o, i) } else { (i, o) };
            let names = self.names.as_ref().map(ColumnNames::as_slice);
            let dq = self.state.data_quality.as_mut().expect("dq state");
            let all_positional = a.is_none_or(|x| matches!(x, Row::Csv(_)))
                && b.is_none_or(|x| matches!(x, Row::Csv(_)));
            if all_positional {
                let mut fields: Vec<Cow<'_, str>> = Vec::new();
                for row in [a, b].into_iter().flatten() {
                    if let Row::Csv(f) = row {
                        fields.extend(f.iter().cloned());
                    }
                }
                dq.push_csv_row(&fields, names);
            } else {
                let mut pairs: Vec<(String, DqOwned)> = Vec::new();
                let mut pos = 0usize;
                let name_of = |pos: usize| {
                    names
                        .and_then(|n| n.get(pos).cloned())
                        .unwrap_or_else(|| format!("_c{pos}"))
                };
                for row in [a, b].into_iter().flatten() {
                    match row {
                        Row::Csv(f) => {
                            for v in f {
                                pairs.push((name_of(pos), DqOwned::Text(v.to_string())));
                                pos += 1;
                            }
                        }
                        Row::Json(serde_json::Value::Object(m)) => {
                            for (k, v) in m {
                                pairs.push((k.clone(), DqOwned::Json(v.clone())));
                            }
                        }
                        Row::Json(serde_json::Value::Array(a)) => {
                            for v in a {
                                pairs.push((name_of(pos), DqOwned::Json(v.clone())));
                                pos += 1;
                            }
                        }
                        Row::Json(v) => {
                            pairs.push((name_of(pos), DqOwned::Json(v.clone())));
                            pos += 1;
                        }
                    }
                }
                dq.push_named(pairs.iter().map(|(k, v)| {
                    (
                        k.as_str(),
                        match v {
                            DqOwned::Text(s) => DqValue::Text(s),
                            DqOwned::Json(j) => DqValue::Json(j),
                        },
                    )
                }));
            }
            self.state.counts.data_quality_records += 1;
            if let Some(m) = mismatch {
                self.column_mismatch(m, source, line_no);
            }
        }
    }

    /// Counts and samples a record whose positional column count disagrees with the names
    /// (`(columns, output columns, input columns)`).
    pub(super) fn column_mismatch(
        &mut self,
        (total, k, ni): (usize, usize, usize),
        source: &str,
        line: u64,
    ) {
        self.state.counts.data_quality_column_mismatch += 1;
        let expected = self.names.as_ref().map_or(0, ColumnNames::expected);
        let from = match self.names.as_ref().map(|n| n.source) {
            Some(NamesSource::Explicit) => "feature names",
            _ => "baseline features",
        };
        self.sample(source, line, || {
            format!(
                "data quality: record has {total} columns ({k} output + {ni} input), the {expected} {from} need {expected}"
            )
        });
    }
}

enum DqOwned {
    Text(String),
    Json(serde_json::Value),
}

enum Row<'a> {
    Csv(Vec<Cow<'a, str>>),
    Json(serde_json::Value),
}

impl Row<'_> {
    /// Number of positional values (None: a JSON object, matched by key).
    fn positional_len(&self) -> Option<usize> {
        match self {
            Row::Csv(f) => Some(f.len()),
            Row::Json(serde_json::Value::Object(_)) => None,
            Row::Json(serde_json::Value::Array(a)) => Some(a.len()),
            Row::Json(_) => Some(1),
        }
    }
}

fn decoded_rows<'a>(d: Option<&'a Decoded<'a>>) -> Vec<Row<'a>> {
    match d {
        None => Vec::new(),
        Some(Decoded::Csv(s)) => csv_rows(s).map(Row::Csv).collect(),
        Some(Decoded::Json(v)) => {
            let inst = v.get("instances").and_then(|i| i.as_array());
            match (v, inst) {
                (_, Some(a)) => a
                    .iter()
                    .map(|x| Row::Json(x.get("features").cloned().unwrap_or_else(|| x.clone())))
                    .collect(),
                (serde_json::Value::Array(a), None)
                    if a.iter().all(|x| x.is_object() || x.is_array()) && !a.is_empty() =>
                {
                    a.iter().map(|x| Row::Json(x.clone())).collect()
                }
                (other, None) => vec![Row::Json(other.clone())],
            }
        }
    }
}
