//! Per-record rules: what a ground-truth label or a capture record contributes, by problem type
//! (model quality: the prediction and the join; data quality: the payload's rows; forecasts: the
//! series), with the capture joins deferred behind a prefetch on the hot path.
//!
//! Here: labels, the join and its deferral, and where a record goes by mode (single pass,
//! partial, collector, probe); [`predict`]: a record's prediction and its evaluation;
//! [`data_quality`]: a record's rows into the data-quality state.

use super::join::{GroundTruthStore, GtLabel, Join, UKey, uuid_key};
use super::partial::{F, RowLabel, RowPred, WireInstance, to_f};
use super::result::{EngineState, keep_sample, opt_max, opt_min};
use crate::metrics::config::{MonitorConfig, ProblemType};
use crate::metrics::dq::naming::ColumnNames;
use crate::metrics::dq::stats::DqValue;
use crate::metrics::parse::record::{
    Attr, CaptureRecord, Decoded, GroundTruthRecord, Payload, RecordError, finite_number, truncate,
};
use crate::metrics::quality::calibration::Calibration;
use crate::metrics::quality::{QualityState, subsample_mask};
use crate::metrics::util::{canonical_label, parse_f64, parse_time_millis, split_csv, value_f64};
use std::borrow::Cow;
use std::collections::VecDeque;

mod data_quality;
mod predict;

pub(super) use predict::{LabelRef, Pred, apply};

/// Capture joins kept in flight between the slot prefetch and the lookup.
pub(super) const CAPTURE_PIPELINE: usize = 4;

/// A capture record whose join waits for its prefetched slot: everything its evaluation needs.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    key: UKey,
    score: f64,
    pred: bool,
    mask: u8,
    line_no: u64,
}

/// [`parse_time_millis`] with the last text and its result remembered.
#[derive(Debug, Default)]
struct TimeCache {
    text: String,
    millis: Option<i64>,
}

impl TimeCache {
    #[inline]
    fn parse(&mut self, s: &str) -> Option<i64> {
        if self.text != s {
            self.millis = parse_time_millis(s);
            self.text.clear();
            self.text.push_str(s);
        }
        self.millis
    }
}

/// One job's configuration, label rules, ground-truth store and mergeable state: everything a
/// record changes.
pub(super) struct Ingest {
    pub(super) cfg: MonitorConfig,
    inference_attr: Option<Attr>,
    probability_attr: Option<Attr>,
    gt_attr: Attr,
    positive: String,
    negative: String,
    pub(super) gt: GroundTruthStore,
    /// Capture joins waiting for their (prefetched) table slot; empty outside `feed_capture`.
    cap_pending: VecDeque<Deferred>,
    pub(super) state: EngineState,
    /// The last inference time read (consecutive records often share one).
    last_time: TimeCache,
    /// Names of positional data-quality columns (`feature_names`, else the baseline's).
    pub(super) names: Option<ColumnNames>,
    /// The reference calibration and where its score is read (label-free estimation).
    pub(super) calibration: Option<(Calibration, Attr)>,
    /// Partial mode ([`super::Engine::partial`]): join rows instead of the join.
    pub(super) partial: bool,
    /// Label-collector mode ([`super::Engine::label_collector`]): labels kept per source for
    /// one shared table instead of stored here.
    pub(super) collect: Option<Vec<super::broadcast::LabelSegment>>,
    /// Probe mode ([`super::Engine::probing`]): capture joined against a shared table.
    pub(super) probe: Option<super::broadcast::Probe>,
}

impl Ingest {
    pub(super) fn new(cfg: MonitorConfig) -> Ingest {
        Ingest {
            inference_attr: cfg
                .inference_attribute
                .as_deref()
                .map(|s| Attr::parse(Some(s))),
            probability_attr: cfg
                .probability_attribute
                .as_deref()
                .map(|s| Attr::parse(Some(s))),
            gt_attr: Attr::parse(cfg.ground_truth_attribute.as_deref()),
            positive: canonical_label(&cfg.positive_label).into_owned(),
            negative: canonical_label(&cfg.negative_label).into_owned(),
            gt: GroundTruthStore::default(),
            cap_pending: VecDeque::with_capacity(CAPTURE_PIPELINE + 1),
            state: EngineState::new(&cfg),
            last_time: TimeCache::default(),
            names: ColumnNames::resolve(cfg.feature_names.as_deref(), None, None),
            calibration: None,
            partial: false,
            collect: None,
            probe: None,
            cfg,
        }
    }

    /// Keeps a `source:line: message` sample if it is among the smallest (see `keep_sample`).
    pub(super) fn sample(&mut self, source: &str, line: u64, msg: impl FnOnce() -> String) {
        keep_sample(
            &mut self.state.error_samples,
            self.cfg.max_error_samples,
            source,
            line,
            msg,
        );
    }

    /// A parsed ground-truth record (counted).
    pub(super) fn ground_truth_record(
        &mut self,
        rec: &GroundTruthRecord<'_>,
        source: &str,
        line_no: u64,
    ) {
        if self.collect.is_some() {
            self.collect_label(rec, source, line_no);
            return;
        }
        if self.partial {
            let label = match self.label_value(&rec.data) {
                Ok(l) => l,
                Err(e) => {
                    self.sample(source, line_no, || format!("label: {e}"));
                    LabelValue::Invalid
                }
            };
            let row = match label {
                LabelValue::Num(v) => RowLabel::Num(F(v)),
                LabelValue::Class(c) => RowLabel::Class(c),
                LabelValue::Series(s) => RowLabel::Series(s.iter().map(|x| to_f(x)).collect()),
                LabelValue::Invalid => RowLabel::Invalid,
            };
            let rows = self.state.join.get_or_insert_with(Default::default);
            rows.label(&rec.event_id, source, line_no, row);
            return;
        }
        let label = match self.decode_label(&rec.data) {
            Ok(l) => l,
            Err(e) => {
                self.sample(source, line_no, || format!("label: {e}"));
                GtLabel::Invalid
            }
        };
        self.state.counts.duplicate_ground_truth_ids += self.gt.insert(&rec.event_id, label);
    }

    fn decode_label(&mut self, p: &Payload<'_>) -> Result<GtLabel, RecordError> {
        let v = self.label_value(p)?;
        self.store_label_value(v)
    }

    /// A read label as the store holds it (class names interned, actuals in the arena).
    pub(super) fn store_label_value(&mut self, v: LabelValue) -> Result<GtLabel, RecordError> {
        match v {
            LabelValue::Num(v) => Ok(GtLabel::Num(v)),
            LabelValue::Class(c) => Ok(GtLabel::Class(self.gt.intern(&c))),
            LabelValue::Series(series) => self
                .gt
                .push_series(&series)
                .ok_or_else(|| RecordError::Forecast("too many forecast actuals buffered".into())),
            LabelValue::Invalid => Ok(GtLabel::Invalid),
        }
    }

    /// A label as the problem type reads it.
    pub(super) fn label_value(&self, p: &Payload<'_>) -> Result<LabelValue, RecordError> {
        let Some(problem) = self.cfg.problem_type else {
            return Ok(LabelValue::Invalid);
        };
        let d = p.decode()?;
        match problem {
            ProblemType::Regression => Ok(LabelValue::Num(finite_number(&d.text(&self.gt_attr)?)?)),
            ProblemType::BinaryClassification => {
                let t = d.text(&self.gt_attr)?;
                let c = canonical_label(&t);
                if *c == *self.positive {
                    Ok(LabelValue::Num(1.0))
                } else if *c == *self.negative {
                    Ok(LabelValue::Num(0.0))
                } else {
                    Err(RecordError::InvalidLabel(truncate(&c, 40)))
                }
            }
            ProblemType::MulticlassClassification => {
                let t = d.text(&self.gt_attr)?;
                let c = canonical_label(&t).into_owned();
                if c.is_empty() {
                    return Err(RecordError::InvalidLabel(c));
                }
                Ok(LabelValue::Class(c))
            }
            ProblemType::Forecast => Ok(LabelValue::Series(forecast_actuals(&d, &self.gt_attr)?)),
        }
    }

    /// A parsed capture record (counted).
    pub(super) fn capture_record(
        &mut self,
        rec: &CaptureRecord<'_>,
        source: &str,
        line_no: u64,
        defer: bool,
    ) {
        let t = rec
            .inference_time
            .as_deref()
            .and_then(|s| self.last_time.parse(s));
        if self.cfg.window_start_ms.is_some() || self.cfg.window_end_ms.is_some() {
            let inside = t.is_some_and(|t| {
                self.cfg.window_start_ms.is_none_or(|s| t >= s)
                    && self.cfg.window_end_ms.is_none_or(|e| t < e)
            });
            if !inside {
                self.state.counts.outside_window += 1;
                return;
            }
        }
        if let Some(t) = t {
            self.state.min_inference_time_ms = opt_min(self.state.min_inference_time_ms, Some(t));
            self.state.max_inference_time_ms = opt_max(self.state.max_inference_time_ms, Some(t));
        }
        if self.state.data_quality.is_some() {
            self.push_data_quality(rec, source, line_no);
        }
        if self.calibration.is_some() {
            self.push_estimation(rec, source, line_no);
        }
        if self.state.prediction.is_some() {
            self.push_prediction(rec, source, line_no);
        }
        if self.partial && self.state.quality.is_some() {
            self.push_partial_capture(rec, source, line_no);
        } else if self.probe.is_some() && self.state.quality.is_some() {
            self.probe_capture(rec, source, line_no, defer);
        } else if self.state.quality.is_some() && !(defer && self.try_defer(rec, source, line_no)) {
            // Joins stay in input order: resolve the queue first.
            self.resolve_deferred(source, 0);
            self.push_model_quality(rec, source, line_no);
        }
    }

    /// Bins a capture record's score for the label-free estimate (every record in the window, with
    /// or without a label); an unreadable score is counted (`invalid` of the histogram) and sampled.
    fn push_estimation(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
        let Some((cal, attr)) = &self.calibration else {
            return;
        };
        let score = rec
            .output
            .as_ref()
            .ok_or(RecordError::Missing("endpointOutput"))
            .and_then(|o| o.decode())
            .and_then(|d| finite_number(&d.text(attr)?));
        let Some(h) = self.state.estimation.as_mut() else {
            return;
        };
        match score {
            Ok(s) => h.push(cal, s),
            Err(e) => {
                h.push(cal, f64::NAN);
                self.sample(source, line_no, || format!("estimation score: {e}"));
            }
        }
    }
    /// The model's output value — `probability_attribute`, else `inference_attribute`, else the
    /// whole output — into the prediction column (unreadable outputs counted and sampled).
    fn push_prediction(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
        let attr = self
            .probability_attr
            .as_ref()
            .or(self.inference_attr.as_ref())
            .unwrap_or(&Attr::Whole);
        let text = match rec.output.as_ref().map(|p| p.decode()) {
            Some(Ok(d)) => d.text(attr).map(Cow::into_owned),
            Some(Err(e)) => Err(e),
            None => Err(RecordError::Missing("endpointOutput")),
        };
        match text {
            Ok(t) => {
                let max = self.cfg.max_categories;
                if let Some(c) = self.state.prediction.as_mut() {
                    c.add(DqValue::Text(t.trim()), max);
                }
            }
            Err(e) => {
                self.state.counts.prediction_drift_unreadable += 1;
                self.sample(source, line_no, || format!("prediction drift: {e}"));
            }
        }
    }

    /// Queues the join of a binary / regression record with a canonical UUID key and a readable
    /// prediction; false when the record needs the general path.
    fn try_defer(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) -> bool {
        let binary = match self.state.quality {
            Some(QualityState::Binary(_)) => true,
            Some(QualityState::Regression(_)) => false,
            _ => return false,
        };
        let Some(key) = rec.join_key() else {
            return false;
        };
        let Some(k) = uuid_key(key) else {
            return false;
        };
        let Some(Ok(d)) = rec.output.as_ref().map(|o| o.decode()) else {
            return false;
        };
        let prediction = if binary {
            self.binary_prediction(&d)
        } else {
            self.regression_prediction(&d).map(|p| (p, false))
        };
        let Ok((score, pred)) = prediction else {
            return false;
        };
        self.gt.prefetch(k);
        self.cap_pending.push_back(Deferred {
            key: k,
            score,
            pred,
            mask: subsample_mask(self.cfg.seed, key),
            line_no,
        });
        if self.cap_pending.len() > CAPTURE_PIPELINE {
            self.resolve_deferred(source, CAPTURE_PIPELINE);
        }
        true
    }

    /// Resolves queued joins, oldest first, until at most `keep` remain. Same outcome as
    /// [`Engine::push_model_quality`] on the record: the prediction was already read without error,
    /// so only the label decides.
    pub(super) fn resolve_deferred(&mut self, source: &str, keep: usize) {
        if self.probe.is_some() {
            self.resolve_probes(source, keep);
            return;
        }
        while self.cap_pending.len() > keep {
            let Some(d) = self.cap_pending.pop_front() else {
                return;
            };
            let label = match self.gt.take_uuid(d.key) {
                Join::Unmatched => {
                    self.state.counts.unmatched_predictions += 1;
                    continue;
                }
                Join::Duplicate => {
                    self.state.counts.duplicate_capture_ids += 1;
                    continue;
                }
                Join::Label(label) => label,
            };
            self.state.counts.matched += 1;
            match (label, &mut self.state.quality) {
                (GtLabel::Invalid, _) => self.state.counts.invalid_labels += 1,
                (GtLabel::Num(y), Some(QualityState::Binary(s))) => {
                    s.push(d.score, y == 1.0, d.pred, d.mask);
                    self.state.counts.evaluated += 1;
                }
                (GtLabel::Num(y), Some(QualityState::Regression(s))) => {
                    s.push(y, d.score, d.mask);
                    self.state.counts.evaluated += 1;
                }
                // Binary and regression labels are numbers or invalid; kept for completeness.
                _ => {
                    self.state.counts.invalid_labels += 1;
                    self.sample(source, d.line_no, || {
                        "label or prediction outside the class limit".into()
                    });
                }
            }
        }
    }

    fn push_model_quality(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
        let Some(key) = rec.join_key() else {
            self.state.counts.malformed_capture += 1;
            self.sample(source, line_no, || {
                "capture record without inferenceId/eventId".into()
            });
            return;
        };
        let label = match self.gt.take(key) {
            Join::Unmatched => {
                self.state.counts.unmatched_predictions += 1;
                return;
            }
            Join::Duplicate => {
                self.state.counts.duplicate_capture_ids += 1;
                return;
            }
            Join::Label(label) => label,
        };
        self.state.counts.matched += 1;
        if matches!(label, GtLabel::Invalid) {
            self.state.counts.invalid_labels += 1;
            return;
        }
        let mask = subsample_mask(self.cfg.seed, key);
        let res = self.evaluate(rec, label, mask);
        match res {
            Ok(true) => self.state.counts.evaluated += 1,
            Ok(false) => {
                self.state.counts.invalid_labels += 1;
                self.sample(source, line_no, || {
                    "label or prediction outside the class limit".into()
                });
            }
            Err(e) => {
                self.state.counts.invalid_predictions += 1;
                self.sample(source, line_no, || format!("prediction: {e}"));
            }
        }
    }

    /// Partial mode: the record's join row (its prediction read now, evaluated when the rows are
    /// resolved, see [`super::partial`]).
    fn push_partial_capture(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
        let Some(key) = rec.join_key() else {
            self.state.counts.malformed_capture += 1;
            self.sample(source, line_no, || {
                "capture record without inferenceId/eventId".into()
            });
            return;
        };
        let pred = match self.predict(rec) {
            Ok(Pred::Binary(score, positive)) => RowPred::Binary {
                score: F(score),
                positive,
            },
            Ok(Pred::Regression(v)) => RowPred::Regression(F(v)),
            Ok(Pred::Class(c)) => RowPred::Class(c),
            Ok(Pred::Forecast(f)) => RowPred::Forecast(f.iter().map(WireInstance::new).collect()),
            Err(e) => RowPred::Invalid(format!("prediction: {e}")),
        };
        let rows = self.state.join.get_or_insert_with(Default::default);
        rows.capture(key, source, line_no, pred);
    }
}

/// A label as read, before it is stored.
pub(super) enum LabelValue {
    Num(f64),
    Class(String),
    Series(Vec<Vec<f64>>),
    Invalid,
}

fn number_array(v: &serde_json::Value) -> Option<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(|x| value_f64(x).unwrap_or(f64::NAN)).collect())
}

/// Ground-truth actuals of a forecast (see `quality::forecast` docs).
fn forecast_actuals(d: &Decoded<'_>, attr: &Attr) -> Result<Vec<Vec<f64>>, RecordError> {
    match d {
        Decoded::Csv(s) => {
            let row = s.lines().next().unwrap_or("");
            Ok(vec![
                split_csv(row)
                    .map(|f| parse_f64(&f).unwrap_or(f64::NAN))
                    .collect(),
            ])
        }
        Decoded::Json(v) => {
            let v = match attr {
                Attr::Whole => Some(v),
                Attr::Index(i) => v.get(*i),
                Attr::Path(p) => p.lookup(v),
            }
            .ok_or_else(|| RecordError::Attribute(format!("{attr:?}")))?;
            let v = v.get("target").unwrap_or(v);
            let a = v
                .as_array()
                .ok_or_else(|| RecordError::Forecast("actuals are not an array".into()))?;
            if a.iter().all(|x| x.is_array()) && !a.is_empty() {
                Ok(a.iter()
                    .map(|x| number_array(x).unwrap_or_default())
                    .collect())
            } else {
                Ok(vec![number_array(v).unwrap_or_default()])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_cache_answers_as_the_parser() {
        let mut c = TimeCache::default();
        for t in [
            "",
            "",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "not a time",
            "2024-01-01T00:00:00.5Z",
            "",
            "2024-01-01T00:00:00Z",
        ] {
            assert_eq!(c.parse(t), parse_time_millis(t), "{t:?}");
        }
    }
}
