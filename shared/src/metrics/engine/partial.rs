//! Partial states that add up: the join rows of a partial job ([`Engine::partial`]).
//!
//! A partial engine does not join. It keeps, per id, the one capture record and the one label
//! that can win the join (the *first* capture record of an id and the *last* label, both by
//! `(source name, line)` order, with how many records of the id it saw), and counts everything
//! that does not depend on the join (lines, malformed, window, data quality, prediction drift,
//! estimation) as the single pass does. Merging two partial states merges the rows by id with the
//! same rules; finishing resolves them: per id, the winning capture is evaluated against the
//! winning label, in `(source, line)` order of the captures — the order in which a single pass
//! over the sources in name order evaluates them, so float sums are bit for bit the same.
//!
//! Whatever the split of capture and ground truth (by object, by hour, by id hash; both sides
//! split independently, even the two sides of one id in different partitions), the merged result
//! equals the single pass over all sources fed in name order (`shared/tests/metrics_partial.rs`).
//!
//! [`Engine::partial`]: super::Engine::partial

use super::ingest::{LabelRef, Pred, apply};
use super::join::uuid_key;
use super::result::{EngineState, keep_sample};
use crate::metrics::config::MonitorConfig;
use crate::metrics::quality::forecast::ForecastInstance;
use crate::metrics::quality::subsample_mask;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// A join key: canonical lowercase UUIDs as 128 bits, other ids as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum JKey {
    Uuid(u128),
    Text(Box<str>),
}

impl JKey {
    pub(super) fn new(s: &str) -> JKey {
        match uuid_key(s) {
            Some(k) => JKey::Uuid(((k.0 as u128) << 64) | k.1 as u128),
            None => JKey::Text(s.into()),
        }
    }
    /// The id as it was read (canonical UUIDs have exactly one spelling).
    pub(super) fn text(&self) -> String {
        match self {
            JKey::Uuid(v) => format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (v >> 96) as u32,
                (v >> 80) as u16,
                (v >> 64) as u16,
                (v >> 48) as u16,
                (v & 0xFFFF_FFFF_FFFF) as u64
            ),
            JKey::Text(s) => s.to_string(),
        }
    }
}

/// A label as the model-quality rules use it, owned (it travels between workers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RowLabel {
    Num(F),
    Class(String),
    Series(Vec<Vec<F>>),
    Invalid,
}

/// A capture record's prediction, read as the problem type needs it, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RowPred {
    Binary {
        score: F,
        positive: bool,
    },
    Regression(F),
    Class(String),
    Forecast(Vec<WireInstance>),
    /// The error sample's message (`prediction: ...`).
    Invalid(String),
}

/// A float that travels through JSON bit for bit: written as Rust's shortest round-trip
/// decimal in a string (`"0.35"`, `"NaN"`, `"inf"`) and read back with Rust's exact parser
/// (serde_json's default float parser may be an ulp off, which would change sums and AUC ties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F(pub f64);

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<F, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(f64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::N(v) => Ok(F(v)),
            Either::S(s) => s.parse().map(F).map_err(D::Error::custom),
        }
    }
}

pub(super) fn to_f(v: &[f64]) -> Vec<F> {
    v.iter().map(|x| F(*x)).collect()
}
pub(super) fn from_f(v: &[F]) -> Vec<f64> {
    v.iter().map(|x| x.0).collect()
}

/// A forecast instance in JSON-safe floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireInstance {
    pub quantiles: Vec<Vec<F>>,
    pub point: Vec<F>,
    pub history: Option<Vec<F>>,
}

impl WireInstance {
    pub(super) fn new(i: &ForecastInstance) -> WireInstance {
        WireInstance {
            quantiles: i.quantiles.iter().map(|q| to_f(q)).collect(),
            point: to_f(&i.point),
            history: i.history.as_deref().map(to_f),
        }
    }
    pub(super) fn instance(&self) -> ForecastInstance {
        ForecastInstance {
            quantiles: self.quantiles.iter().map(|q| from_f(q)).collect(),
            point: from_f(&self.point),
            history: self.history.as_deref().map(from_f),
        }
    }
}

/// Where a record is: an index into [`JoinRows::sources`] and its 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) src: u32,
    pub(super) line: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row<T> {
    pub(super) pos: Pos,
    /// Records of the id seen (the winning one included).
    pub(super) count: u64,
    pub(super) value: T,
}

#[derive(Default)]
pub(super) struct IdHasher(u64);
impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        crate::metrics::util::mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = crate::metrics::util::hash_bytes(self.0, bytes);
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = crate::metrics::util::mix64(self.0 ^ v);
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = crate::metrics::util::mix64(self.0 ^ v as u64);
    }
}
type Map<T> = HashMap<JKey, Row<T>, BuildHasherDefault<IdHasher>>;

/// The join rows of a partial job: per id, the capture record and the label that can win.
#[derive(Debug, Clone, Default)]
pub struct JoinRows {
    pub(super) sources: Vec<String>,
    source_ix: HashMap<String, u32>,
    pub(super) labels: Map<RowLabel>,
    pub(super) captures: Map<RowPred>,
}

impl PartialEq for JoinRows {
    fn eq(&self, o: &JoinRows) -> bool {
        self.wire() == o.wire()
    }
}

impl JoinRows {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.captures.is_empty()
    }
    /// Distinct label ids held.
    pub fn label_ids(&self) -> usize {
        self.labels.len()
    }
    /// Distinct capture ids held.
    pub fn capture_ids(&self) -> usize {
        self.captures.len()
    }

    /// The index of a source name (added on first sight; the last one is checked first).
    pub(super) fn source(&mut self, name: &str) -> u32 {
        if let Some(last) = self.sources.last()
            && last == name
        {
            return self.sources.len() as u32 - 1;
        }
        if let Some(&i) = self.source_ix.get(name) {
            return i;
        }
        let i = self.sources.len() as u32;
        self.sources.push(name.to_owned());
        self.source_ix.insert(name.to_owned(), i);
        i
    }

    /// `(source name, line)` order.
    pub(super) fn cmp(&self, a: Pos, b: Pos) -> Ordering {
        if a.src == b.src {
            a.line.cmp(&b.line)
        } else {
            self.sources[a.src as usize]
                .cmp(&self.sources[b.src as usize])
                .then(a.line.cmp(&b.line))
        }
    }

    /// A label record: the last by `(source, line)` wins.
    pub(super) fn label(&mut self, key: &str, source: &str, line: u64, label: RowLabel) {
        let pos = Pos {
            src: self.source(source),
            line,
        };
        self.put_label(JKey::new(key), pos, 1, label);
    }

    fn put_label(&mut self, key: JKey, pos: Pos, count: u64, label: RowLabel) {
        match self.labels.get_mut(&key) {
            Some(r) => {
                r.count += count;
                let later = if r.pos.src == pos.src {
                    pos.line > r.pos.line
                } else {
                    self.sources[pos.src as usize] > self.sources[r.pos.src as usize]
                        || (self.sources[pos.src as usize] == self.sources[r.pos.src as usize]
                            && pos.line > r.pos.line)
                };
                if later {
                    r.pos = pos;
                    r.value = label;
                }
            }
            None => {
                self.labels.insert(
                    key,
                    Row {
                        pos,
                        count,
                        value: label,
                    },
                );
            }
        }
    }

    /// A capture record in the window with a join key: the first by `(source, line)` wins.
    pub(super) fn capture(&mut self, key: &str, source: &str, line: u64, pred: RowPred) {
        let pos = Pos {
            src: self.source(source),
            line,
        };
        self.put_capture(JKey::new(key), pos, 1, pred);
    }

    fn put_capture(&mut self, key: JKey, pos: Pos, count: u64, pred: RowPred) {
        match self.captures.get_mut(&key) {
            Some(r) => {
                r.count += count;
                let earlier = if r.pos.src == pos.src {
                    pos.line < r.pos.line
                } else {
                    (&self.sources[pos.src as usize], pos.line)
                        < (&self.sources[r.pos.src as usize], r.pos.line)
                };
                if earlier {
                    r.pos = pos;
                    r.value = pred;
                }
            }
            None => {
                self.captures.insert(
                    key,
                    Row {
                        pos,
                        count,
                        value: pred,
                    },
                );
            }
        }
    }

    /// Merges another partial's rows (same rules as feeding their records here).
    pub fn merge(&mut self, o: &JoinRows) {
        let remap: Vec<u32> = o.sources.iter().map(|s| self.source(s)).collect();
        let at = |p: Pos| Pos {
            src: remap[p.src as usize],
            line: p.line,
        };
        for (k, r) in &o.labels {
            self.put_label(k.clone(), at(r.pos), r.count, r.value.clone());
        }
        for (k, r) in &o.captures {
            self.put_capture(k.clone(), at(r.pos), r.count, r.value.clone());
        }
    }

    /// [`JoinRows::merge`] taking the other's rows (no copies; the smaller side is moved).
    pub fn merge_owned(&mut self, mut o: JoinRows) {
        if o.labels.len() + o.captures.len() > self.labels.len() + self.captures.len() {
            std::mem::swap(self, &mut o);
        }
        let remap: Vec<u32> = o.sources.iter().map(|s| self.source(s)).collect();
        let at = |p: Pos| Pos {
            src: remap[p.src as usize],
            line: p.line,
        };
        for (k, r) in o.labels {
            self.put_label(k, at(r.pos), r.count, r.value);
        }
        for (k, r) in o.captures {
            self.put_capture(k, at(r.pos), r.count, r.value);
        }
    }

    /// The serialized form: rows sorted by id (deterministic files).
    fn wire(&self) -> WireRows {
        fn rows<T: Clone>(m: &Map<T>, sources: &[String]) -> Vec<WireRow<T>> {
            let mut v: Vec<WireRow<T>> = m
                .iter()
                .map(|(k, r)| WireRow {
                    id: k.text(),
                    source: sources[r.pos.src as usize].clone(),
                    line: r.pos.line,
                    count: r.count,
                    value: r.value.clone(),
                })
                .collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        }
        WireRows {
            labels: rows(&self.labels, &self.sources),
            captures: rows(&self.captures, &self.sources),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireRow<T> {
    id: String,
    source: String,
    line: u64,
    count: u64,
    value: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireRows {
    labels: Vec<WireRow<RowLabel>>,
    captures: Vec<WireRow<RowPred>>,
}

impl Serialize for JoinRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for JoinRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JoinRows, D::Error> {
        let w = WireRows::deserialize(d)?;
        let mut j = JoinRows::default();
        for r in w.labels {
            let pos = Pos {
                src: j.source(&r.source),
                line: r.line,
            };
            j.put_label(JKey::new(&r.id), pos, r.count.max(1), r.value);
        }
        for r in w.captures {
            let pos = Pos {
                src: j.source(&r.source),
                line: r.line,
            };
            j.put_capture(JKey::new(&r.id), pos, r.count.max(1), r.value);
        }
        Ok(j)
    }
}

/// Resolves the join rows into `state` (which holds everything else of the merged partials):
/// counts, model quality and the samples of the evaluation, as the single pass would have.
pub(super) fn resolve(rows: &JoinRows, state: &mut EngineState, cfg: &MonitorConfig) {
    let c = &mut state.counts;
    for r in rows.labels.values() {
        c.duplicate_ground_truth_ids += r.count - 1;
    }
    if cfg.problem_type.is_some() {
        c.unmatched_labels += rows
            .labels
            .keys()
            .filter(|k| !rows.captures.contains_key(*k))
            .count() as u64;
    }
    let mut matched = Vec::new();
    for (k, cr) in &rows.captures {
        match rows.labels.get(k) {
            None => c.unmatched_predictions += cr.count,
            Some(lr) => matched.push((k, cr, lr)),
        }
    }
    // The single pass evaluates in input order (float sums depend on it).
    matched.sort_by(|a, b| rows.cmp(a.1.pos, b.1.pos));
    let max = cfg.max_error_samples;
    for (k, cr, lr) in matched {
        let c = &mut state.counts;
        c.matched += 1;
        c.duplicate_capture_ids += cr.count - 1;
        let source = &rows.sources[cr.pos.src as usize];
        let actuals;
        let label = match &lr.value {
            RowLabel::Invalid => {
                c.invalid_labels += 1;
                continue;
            }
            RowLabel::Num(y) => LabelRef::Num(y.0),
            RowLabel::Class(s) => LabelRef::Class(s),
            RowLabel::Series(v) => {
                actuals = v.iter().map(|x| from_f(x)).collect::<Vec<_>>();
                LabelRef::Series(&actuals)
            }
        };
        let pred = match &cr.value {
            RowPred::Invalid(msg) => {
                c.invalid_predictions += 1;
                keep_sample(&mut state.error_samples, max, source, cr.pos.line, || {
                    msg.clone()
                });
                continue;
            }
            RowPred::Binary { score, positive } => Pred::Binary(score.0, *positive),
            RowPred::Regression(v) => Pred::Regression(v.0),
            RowPred::Class(s) => Pred::Class(s.clone()),
            RowPred::Forecast(w) => Pred::Forecast(w.iter().map(WireInstance::instance).collect()),
        };
        let mask = subsample_mask(cfg.seed, &k.text());
        let ok = state
            .quality
            .as_mut()
            .is_some_and(|q| apply(q, &pred, label, mask));
        if ok {
            state.counts.evaluated += 1;
        } else {
            state.counts.invalid_labels += 1;
            keep_sample(&mut state.error_samples, max, source, cr.pos.line, || {
                "label or prediction outside the class limit".into()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_spelling() {
        for s in [
            "f04a8538-0000-4000-8000-00000000000a",
            "F04A8538-0000-4000-8000-00000000000A",
            "id-7",
            "",
        ] {
            assert_eq!(JKey::new(s).text(), s);
        }
        assert!(matches!(
            JKey::new("f04a8538-0000-4000-8000-00000000000a"),
            JKey::Uuid(_)
        ));
    }

    #[test]
    fn first_capture_and_last_label_win_in_any_merge_order() {
        let mut a = JoinRows::default();
        a.capture("x", "b.jsonl", 1, RowPred::Regression(F(1.0)));
        a.label("x", "l2", 5, RowLabel::Num(F(2.0)));
        let mut b = JoinRows::default();
        b.capture("x", "a.jsonl", 9, RowPred::Regression(F(3.0)));
        b.label("x", "l1", 7, RowLabel::Num(F(4.0)));
        b.label("x", "l2", 6, RowLabel::Invalid);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        let k = JKey::new("x");
        assert_eq!(ab.captures[&k].value, RowPred::Regression(F(3.0)));
        assert_eq!(ab.captures[&k].count, 2);
        assert_eq!(ab.labels[&k].value, RowLabel::Invalid);
        assert_eq!(ab.labels[&k].count, 3);
        let back: JoinRows = serde_json::from_str(&serde_json::to_string(&ab).unwrap()).unwrap();
        assert_eq!(back, ab);
    }

    #[test]
    fn non_finite_floats_survive_json() {
        let v = vec![
            F(f64::NAN),
            F(f64::INFINITY),
            F(-1.5),
            F(0.1 + 0.2),
            F(5e-324),
        ];
        let s = serde_json::to_string(&v).unwrap();
        let back: Vec<F> = serde_json::from_str(&s).unwrap();
        assert!(back[0].0.is_nan());
        assert_eq!(back[1].0, f64::INFINITY);
        for (a, b) in v[2..].iter().zip(&back[2..]) {
            assert_eq!(a.0.to_bits(), b.0.to_bits());
        }
        // Plain JSON numbers are read too.
        let n: Vec<F> = serde_json::from_str("[1.5, 2]").unwrap();
        assert_eq!(n, vec![F(1.5), F(2.0)]);
    }
}
