//! Per-record rules: what a ground-truth label or a capture record contributes, by problem type
//! (model quality: the prediction and the join; data quality: the payload's rows; forecasts: the
//! series), with the capture joins deferred behind a prefetch on the hot path.

use super::join::{GroundTruthStore, GtLabel, Join, UKey, uuid_key};
use super::partial::{F, RowLabel, RowPred, WireInstance, to_f};
use super::result::{EngineState, keep_sample, opt_max, opt_min};
use crate::metrics::config::{MonitorConfig, OutputColumnsPosition, ProblemType};
use crate::metrics::dq::naming::{ColumnNames, NamesSource};
use crate::metrics::dq::stats::DqValue;
use crate::metrics::parse::record::{
    Attr, CaptureRecord, Decoded, GroundTruthRecord, Payload, RecordError, csv_rows, finite_number,
    truncate,
};
use crate::metrics::quality::calibration::Calibration;
use crate::metrics::quality::forecast::ForecastInstance;
use crate::metrics::quality::{QualityState, subsample_mask};
use crate::metrics::util::{canonical_label, parse_f64, parse_time_millis, split_csv, value_f64};
use std::borrow::Cow;
use std::collections::VecDeque;

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

    /// The predicted value of a regression record.
    pub(super) fn regression_prediction(&self, d: &Decoded<'_>) -> Result<f64, RecordError> {
        let attr = self.inference_attr.as_ref().unwrap_or(&Attr::Whole);
        finite_number(&d.text(attr)?)
    }

    /// The score and predicted label of a binary-classification record.
    pub(super) fn binary_prediction(&self, d: &Decoded<'_>) -> Result<(f64, bool), RecordError> {
        let pred_label = match &self.inference_attr {
            Some(a) => {
                let t = d.text(a)?;
                let c = canonical_label(&t);
                if *c == *self.positive {
                    Some(true)
                } else if *c == *self.negative {
                    Some(false)
                } else {
                    return Err(RecordError::InvalidLabel(truncate(&c, 40)));
                }
            }
            None => None,
        };
        let score = match (&self.probability_attr, pred_label) {
            (Some(a), _) => finite_number(&d.text(a)?)?,
            (None, None) => finite_number(&d.text(&Attr::Whole)?)?,
            (None, Some(p)) => f64::from(u8::from(p)),
        };
        Ok((
            score,
            pred_label.unwrap_or(score > self.cfg.probability_threshold),
        ))
    }

    /// Ok(false): record skipped for its label (counted as invalid label).
    fn evaluate(
        &mut self,
        rec: &CaptureRecord<'_>,
        label: GtLabel,
        mask: u8,
    ) -> Result<bool, RecordError> {
        let pred = self.predict(rec)?;
        let Some(q) = self.state.quality.as_mut() else {
            return Ok(false);
        };
        let actuals;
        let label = match label {
            GtLabel::Num(y) => LabelRef::Num(y),
            GtLabel::Class(c) => LabelRef::Class(self.gt.class(c)),
            GtLabel::Series(off, len) => {
                actuals = self.gt.actuals(off, len);
                LabelRef::Series(&actuals)
            }
            GtLabel::Invalid => return Ok(false),
        };
        Ok(apply(q, &pred, label, mask))
    }

    /// A capture record's prediction as the problem type reads it.
    pub(super) fn predict(&self, rec: &CaptureRecord<'_>) -> Result<Pred, RecordError> {
        let out = rec
            .output
            .as_ref()
            .ok_or(RecordError::Missing("endpointOutput"))?;
        let d = out.decode()?;
        match &self.state.quality {
            Some(QualityState::Regression(_)) => {
                Ok(Pred::Regression(self.regression_prediction(&d)?))
            }
            Some(QualityState::Binary(_)) => {
                let (score, pred) = self.binary_prediction(&d)?;
                Ok(Pred::Binary(score, pred))
            }
            Some(QualityState::Multiclass(_)) => {
                let pred: String = match (&self.inference_attr, &self.probability_attr) {
                    (Some(a), _) => canonical_label(&d.text(a)?).into_owned(),
                    (None, Some(p)) => {
                        let v = d
                            .value(p)
                            .ok_or_else(|| RecordError::Attribute(format!("{p:?}")))?;
                        argmax_label(&v)?
                    }
                    (None, None) => canonical_label(&d.text(&Attr::Whole)?).into_owned(),
                };
                Ok(Pred::Class(pred))
            }
            Some(QualityState::Forecast(s)) => {
                let input = rec.input.as_ref().and_then(|p| p.decode().ok());
                let instances = forecast_instances(&d, input.as_ref(), &s.quantiles)?;
                if instances.is_empty() {
                    return Err(RecordError::Forecast("no predictions".into()));
                }
                Ok(Pred::Forecast(instances))
            }
            None => Err(RecordError::Missing("problem type")),
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

    fn push_data_quality(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
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
    fn column_mismatch(&mut self, (total, k, ni): (usize, usize, usize), source: &str, line: u64) {
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

/// A label as read, before it is stored.
pub(super) enum LabelValue {
    Num(f64),
    Class(String),
    Series(Vec<Vec<f64>>),
    Invalid,
}

/// A prediction as read.
pub(super) enum Pred {
    Binary(f64, bool),
    Regression(f64),
    Class(String),
    Forecast(Vec<ForecastInstance>),
}

/// A (valid) label for [`apply`].
pub(super) enum LabelRef<'a> {
    Num(f64),
    Class(&'a str),
    Series(&'a [Vec<f64>]),
}

/// Adds a matched record to the model-quality state; false when the label or the prediction
/// does not fit it (outside the class limit, or of another kind).
pub(super) fn apply(q: &mut QualityState, pred: &Pred, label: LabelRef<'_>, mask: u8) -> bool {
    match (q, pred, label) {
        (QualityState::Regression(s), Pred::Regression(p), LabelRef::Num(y)) => {
            s.push(y, *p, mask);
            true
        }
        (QualityState::Binary(s), Pred::Binary(score, pred), LabelRef::Num(y)) => {
            s.push(*score, y == 1.0, *pred, mask);
            true
        }
        (QualityState::Multiclass(s), Pred::Class(p), LabelRef::Class(a)) => s.push(a, p, mask),
        (QualityState::Forecast(s), Pred::Forecast(inst), LabelRef::Series(actuals)) => {
            s.push(inst, actuals, mask);
            true
        }
        _ => false,
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

fn argmax_label(v: &serde_json::Value) -> Result<String, RecordError> {
    let a = v
        .as_array()
        .ok_or_else(|| RecordError::Attribute("probability vector".into()))?;
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in a.iter().enumerate() {
        let p = value_f64(x).ok_or_else(|| RecordError::NotANumber(x.to_string()))?;
        if !p.is_finite() {
            return Err(RecordError::NonFinite);
        }
        if best.is_none_or(|(_, b)| p > b) {
            best = Some((i, p));
        }
    }
    best.map(|(i, _)| i.to_string())
        .ok_or_else(|| RecordError::Attribute("empty probability vector".into()))
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

fn forecast_instances(
    out: &Decoded<'_>,
    input: Option<&Decoded<'_>>,
    quantiles: &[f64],
) -> Result<Vec<ForecastInstance>, RecordError> {
    let Decoded::Json(v) = out else {
        return Err(RecordError::Forecast("forecast output must be JSON".into()));
    };
    let preds: Vec<&serde_json::Value> = match v.get("predictions").and_then(|p| p.as_array()) {
        Some(a) => a.iter().collect(),
        None => vec![v],
    };
    let histories: Vec<Option<Vec<f64>>> = match input {
        Some(Decoded::Json(iv)) => match iv.get("instances").and_then(|i| i.as_array()) {
            Some(a) => a
                .iter()
                .map(|x| x.get("target").and_then(number_array))
                .collect(),
            None => vec![iv.get("target").and_then(number_array)],
        },
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, p) in preds.iter().enumerate() {
        let qobj = p.get("quantiles").and_then(|q| q.as_object());
        let qs: Vec<Vec<f64>> = quantiles
            .iter()
            .map(|&q| {
                qobj.and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.parse::<f64>().is_ok_and(|kq| (kq - q).abs() < 1e-9))
                        .and_then(|(_, v)| number_array(v))
                })
                .unwrap_or_default()
            })
            .collect();
        let point = p
            .get("mean")
            .and_then(number_array)
            .or_else(|| {
                qobj.and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.parse::<f64>().is_ok_and(|kq| (kq - 0.5).abs() < 1e-9))
                        .and_then(|(_, v)| number_array(v))
                })
            })
            .or_else(|| qs.get(qs.len() / 2).cloned().filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                RecordError::Forecast("prediction has neither mean nor quantiles".into())
            })?;
        out.push(ForecastInstance {
            quantiles: qs,
            point,
            history: histories.get(i).cloned().flatten(),
        });
    }
    Ok(out)
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
