//! The engine's API: feed ground truth, then capture; take a mergeable snapshot, merge workers'
//! snapshots, finish with the job result. Lines are read here (blank and malformed lines counted
//! in one place); the rooms below hold the join, the per-record rules and the result types.
//!
//! # The join
//! * **Buffered side: ground truth.** Labels are stored compactly by id (canonical lowercase UUIDs
//!   as 16-byte integers, other ids as strings; the label as a float, a class index or a series
//!   slice). Capture — usually the larger side — is streamed and never held. So feed all ground
//!   truth first, then capture; ground truth fed after capture is rejected with
//!   [`EngineError::GroundTruthAfterCapture`].
//! * Key: capture `inferenceId` when present and non-empty, else `eventId`; ground truth
//!   `eventMetadata.eventId`. Inner join: unmatched records on either side are counted and dropped.
//! * **Duplicates.** Ground truth: the *last* record of an id wins (a re-label corrects an earlier
//!   one; feed files in time order); each extra record counts in `duplicate_ground_truth_ids`.
//!   Capture: the *first* record of an id is evaluated, later ones count in
//!   `duplicate_capture_ids` and are skipped.
//! * **Window.** With `window_start_ms` / `window_end_ms`, capture records whose `inferenceTime` is
//!   outside `[start, end)` or unparseable are counted in `outside_window` and skipped (before the
//!   join, so their labels count as unmatched).
//! * A capture payload with several CSV rows is one invocation with one label: model quality uses
//!   its first row; data quality uses every row.
//! * Bad lines never panic: they count as `malformed_*` / `invalid_*` with up to
//!   `max_error_samples` `source:line: message` samples.
//!
//! # Speed (same results as the straightforward path)
//! * Lines are parsed by a hand-written scanner when they have the usual shape, else by serde
//!   (see `record` / the private `scan` module); the records and errors are the same.
//! * [`Engine::feed_capture`] reads lines in place from the reader's buffer and queues up to
//!   `CAPTURE_PIPELINE` joins of binary / regression records with UUID keys behind a prefetch of
//!   their table slot; the queue is resolved in input order, always before any other join and
//!   before the call returns, so counts, metrics, states and error samples equal those of
//!   [`Engine::push_capture_line`] line by line (`shared/tests/metrics_fastpath.rs`).
//! * The UUID table asks Linux for huge pages (`madvise`), as its random probes otherwise miss the
//!   TLB nearly every time.

mod ingest;
mod join;
mod lines;
mod result;
#[cfg(test)]
mod tests;

pub use lines::LineAssembler;
pub use result::{Counts, EngineState, ErrorSample, JobResult};

use super::config::{MonitorConfig, ProblemType};
use super::dq::baseline::{BaselineConstraints, BaselineStatistics};
use super::dq::checks::{check_data_quality, check_model_quality};
use super::record::Attr;
use super::shape::ShapeCache;
use super::util::{canonical_label, format_time_millis};
use ingest::{Deferred, TimeCache};
use join::GroundTruthStore;
use lines::{for_each_line, trim_line_break};
use std::collections::VecDeque;
use std::io::BufRead;

/// Engine-level errors (bad input lines are counted, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("ground truth fed after capture: feed all ground truth first")]
    GroundTruthAfterCapture,
    #[error("reading {source_name}: {error}")]
    Io {
        source_name: String,
        error: std::io::Error,
    },
    #[error("cannot merge: {0}")]
    Merge(String),
    #[error("invalid constraints: {0}")]
    Constraints(String),
}

/// Which input a line came from (for the malformed-line counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Capture,
    GroundTruth,
}

/// The metrics engine for one job (or one worker's part of a job).
pub struct Engine {
    cfg: MonitorConfig,
    inference_attr: Option<Attr>,
    probability_attr: Option<Attr>,
    gt_attr: Attr,
    positive: String,
    negative: String,
    gt: GroundTruthStore,
    /// Capture joins waiting for their (prefetched) table slot; empty outside `feed_capture`.
    cap_pending: VecDeque<Deferred>,
    state: EngineState,
    capture_started: bool,
    baseline_statistics: Option<BaselineStatistics>,
    baseline_constraints: Option<BaselineConstraints>,
    model_quality_constraints: Option<serde_json::Value>,
    line_buf: Vec<u8>,
    /// The last inference time read (consecutive records often share one).
    last_time: TimeCache,
    /// Layouts of recent capture / ground-truth lines (see [`super::shape`]).
    cap_shapes: ShapeCache,
    gt_shapes: ShapeCache,
}

impl Engine {
    pub fn new(cfg: MonitorConfig) -> Engine {
        let state = EngineState::new(&cfg);
        Engine {
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
            cap_pending: VecDeque::with_capacity(ingest::CAPTURE_PIPELINE + 1),
            state,
            capture_started: false,
            baseline_statistics: None,
            baseline_constraints: None,
            model_quality_constraints: None,
            line_buf: Vec::new(),
            last_time: TimeCache::default(),
            cap_shapes: ShapeCache::default(),
            gt_shapes: ShapeCache::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// Data-quality baseline (`statistics.json` optional: needed for drift; `constraints.json`
    /// drives every check).
    pub fn with_data_quality_baseline(
        mut self,
        statistics: Option<BaselineStatistics>,
        constraints: Option<BaselineConstraints>,
    ) -> Engine {
        self.baseline_statistics = statistics;
        self.baseline_constraints = constraints;
        self
    }

    /// The engine without line shapes (see [`super::shape`]): every line takes the scanner, then
    /// serde. Same results, slower; for tests that compare the two.
    #[doc(hidden)]
    pub fn without_line_shapes(mut self) -> Engine {
        self.cap_shapes = ShapeCache::off();
        self.gt_shapes = ShapeCache::off();
        self
    }

    /// Model-quality `constraints.json` (parsed JSON).
    pub fn with_model_quality_constraints(mut self, constraints: serde_json::Value) -> Engine {
        self.model_quality_constraints = Some(constraints);
        self
    }

    fn sample(&mut self, source: &str, line: u64, msg: impl FnOnce() -> String) {
        if self.state.error_samples.len() < self.cfg.max_error_samples {
            self.state.error_samples.push(ErrorSample {
                source: source.to_string(),
                line,
                message: msg(),
            });
        }
    }

    /// Counts a malformed capture or ground-truth line (or capture record) with its sample.
    fn malformed(&mut self, side: Side, source: &str, line: u64, msg: impl FnOnce() -> String) {
        match side {
            Side::Capture => self.state.counts.malformed_capture += 1,
            Side::GroundTruth => self.state.counts.malformed_ground_truth += 1,
        }
        self.sample(source, line, msg);
    }

    /// Pre-sizes the ground-truth table for about `n` labels (e.g. ground-truth bytes / 120).
    pub fn reserve_ground_truth(&mut self, n: usize) {
        self.gt.reserve(n.min(1 << 26));
    }

    /// Number of buffered ground-truth ids.
    pub fn ground_truth_len(&self) -> usize {
        self.gt.len() + self.gt.pending_effect().1 as usize
    }

    /// Feeds one ground-truth line (`line_no` is 1-based, for error samples).
    pub fn push_ground_truth_line(
        &mut self,
        line: &str,
        source: &str,
        line_no: u64,
    ) -> Result<(), EngineError> {
        if self.capture_started {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        self.state.counts.ground_truth_lines += 1;
        if !self.ground_truth_fitted(line.as_bytes(), source, line_no) {
            self.ground_truth_text(line, source, line_no);
        }
        Ok(())
    }

    /// Reads a (counted) ground-truth line if it fits a known shape.
    #[inline]
    fn ground_truth_fitted(&mut self, line: &[u8], source: &str, line_no: u64) -> bool {
        match self.gt_shapes.fit_ground_truth(line) {
            Some(rec) => {
                self.ground_truth_record(&rec, source, line_no);
                true
            }
            None => false,
        }
    }

    /// A ground-truth line (counted) that fitted no known shape.
    fn ground_truth_text(&mut self, line: &str, source: &str, line_no: u64) {
        if line.trim().is_empty() {
            self.state.counts.blank_lines += 1;
            return;
        }
        match self.gt_shapes.parse_ground_truth(line) {
            Ok(rec) => self.ground_truth_record(&rec, source, line_no),
            Err(e) => self.malformed(Side::GroundTruth, source, line_no, || e.to_string()),
        }
    }

    /// Feeds one capture line.
    pub fn push_capture_line(&mut self, line: &str, source: &str, line_no: u64) {
        self.capture_line(line, source, line_no, false);
    }

    /// With `defer` (only inside [`Engine::feed_capture`], which resolves everything it deferred
    /// before returning), the join of a record whose outcome cannot produce an error sample is
    /// queued behind a prefetch of its table slot (see `ingest::Deferred`).
    fn capture_line(&mut self, line: &str, source: &str, line_no: u64, defer: bool) {
        self.begin_capture_line();
        if !self.capture_fitted(line.as_bytes(), source, line_no, defer) {
            self.capture_text(line, source, line_no, defer);
        }
    }

    /// Reads a (counted) capture line if it fits a known shape.
    #[inline]
    fn capture_fitted(&mut self, line: &[u8], source: &str, line_no: u64, defer: bool) -> bool {
        // (Batch-CSV capture learns no shapes, so it never fits.)
        let want_input = self.want_input();
        match self.cap_shapes.fit_capture(line, want_input) {
            Some(rec) => {
                self.capture_record(&rec, source, line_no, defer);
                true
            }
            None => false,
        }
    }

    /// Counts a capture line (before it is read).
    #[inline]
    fn begin_capture_line(&mut self) {
        if self.gt.has_pending() {
            self.state.counts.duplicate_ground_truth_ids += self.gt.flush();
        }
        self.capture_started = true;
        self.state.counts.capture_lines += 1;
    }

    /// Whether capture records are read with their input payload.
    #[inline]
    fn want_input(&self) -> bool {
        self.cfg.data_quality || self.cfg.problem_type == Some(ProblemType::Forecast)
    }

    /// A capture line (counted) that fitted no known shape.
    fn capture_text(&mut self, line: &str, source: &str, line_no: u64, defer: bool) {
        if line.trim_ascii().is_empty() {
            self.state.counts.blank_lines += 1;
            return;
        }
        let want_input = self.want_input();
        match self
            .cap_shapes
            .parse_capture(line, self.cfg.capture_format, want_input)
        {
            Ok(rec) => self.capture_record(&rec, source, line_no, defer),
            Err(e) => self.malformed(Side::Capture, source, line_no, || e.to_string()),
        }
    }

    /// Feeds one ground-truth line given as bytes (a trailing `\n` / `\r\n` is ignored; non-UTF-8
    /// lines are counted as malformed).
    pub fn push_ground_truth_bytes(
        &mut self,
        line: &[u8],
        source: &str,
        line_no: u64,
    ) -> Result<(), EngineError> {
        if self.capture_started {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        self.state.counts.ground_truth_lines += 1;
        let line = trim_line_break(line);
        if self.ground_truth_fitted(line, source, line_no) {
            return Ok(());
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.ground_truth_text(s, source, line_no),
            Err(_) => self.malformed(Side::GroundTruth, source, line_no, || {
                "line is not UTF-8".into()
            }),
        }
        Ok(())
    }

    /// Feeds one capture line given as bytes (see [`Engine::push_ground_truth_bytes`]).
    pub fn push_capture_bytes(&mut self, line: &[u8], source: &str, line_no: u64) {
        self.capture_bytes(line, source, line_no, false);
    }

    fn capture_bytes(&mut self, line: &[u8], source: &str, line_no: u64, defer: bool) {
        self.begin_capture_line();
        let line = trim_line_break(line);
        if self.capture_fitted(line, source, line_no, defer) {
            return;
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.capture_text(s, source, line_no, defer),
            Err(_) => self.malformed(Side::Capture, source, line_no, || {
                "line is not UTF-8".into()
            }),
        }
    }

    /// Reads the ground-truth line at the start of `ahead` (unread input starting at a line) if it
    /// fits a known shape and ends with `\n`: its length with the `\n`. As
    /// [`Engine::push_ground_truth_bytes`] on that line, without searching for its end first.
    #[inline]
    fn ground_truth_ahead(&mut self, ahead: &[u8], source: &str, line_no: u64) -> Option<usize> {
        if self.capture_started {
            return None;
        }
        let (rec, len) = self.gt_shapes.fit_ground_truth_ahead(ahead)?;
        self.state.counts.ground_truth_lines += 1;
        self.ground_truth_record(&rec, source, line_no);
        Some(len)
    }

    /// [`Engine::ground_truth_ahead`] for capture lines (deferring joins, as `feed_capture`).
    #[inline]
    fn capture_ahead(&mut self, ahead: &[u8], source: &str, line_no: u64) -> Option<usize> {
        let want_input = self.want_input();
        let (rec, len) = self.cap_shapes.fit_capture_ahead(ahead, want_input)?;
        self.begin_capture_line();
        self.capture_record(&rec, source, line_no, true);
        Some(len)
    }

    /// Reads ground-truth lines from a reader (line numbers from 1).
    pub fn feed_ground_truth<R: BufRead>(
        &mut self,
        source: &str,
        mut reader: R,
    ) -> Result<u64, EngineError> {
        struct Cx<'a> {
            e: &'a mut Engine,
            source: &'a str,
            n: u64,
            res: Result<(), EngineError>,
        }
        let mut buf = std::mem::take(&mut self.line_buf);
        let mut cx = Cx {
            e: self,
            source,
            n: 0,
            res: Ok(()),
        };
        let read = for_each_line(
            &mut reader,
            &mut buf,
            &mut cx,
            |cx, line| {
                cx.n += 1;
                cx.res = cx.e.push_ground_truth_bytes(line, cx.source, cx.n);
                cx.res.is_ok()
            },
            |cx, ahead| {
                let len = cx.e.ground_truth_ahead(ahead, cx.source, cx.n + 1)?;
                cx.n += 1;
                Some(len)
            },
        );
        let (n, res) = (cx.n, cx.res);
        self.line_buf = buf;
        res?;
        read.map_err(|error| EngineError::Io {
            source_name: source.to_string(),
            error,
        })?;
        Ok(n)
    }

    /// Reads capture lines from a reader; `progress` is called with the bytes read so far every
    /// ~4 MiB.
    pub fn feed_capture<R: BufRead>(
        &mut self,
        source: &str,
        mut reader: R,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        struct Cx<'a, P> {
            e: &'a mut Engine,
            source: &'a str,
            n: u64,
            bytes: u64,
            next_report: u64,
            progress: P,
        }
        impl<P: FnMut(u64)> Cx<'_, P> {
            /// Counts a line of `len` bytes; its line number.
            fn count(&mut self, len: usize) -> u64 {
                self.n += 1;
                self.bytes += len as u64;
                if self.bytes >= self.next_report {
                    (self.progress)(self.bytes);
                    self.next_report = self.bytes + (4 << 20);
                }
                self.n
            }
        }
        let mut buf = std::mem::take(&mut self.line_buf);
        let mut cx = Cx {
            e: self,
            source,
            n: 0,
            bytes: 0,
            next_report: 4 << 20,
            progress: &mut progress,
        };
        let read = for_each_line(
            &mut reader,
            &mut buf,
            &mut cx,
            |cx, line| {
                let n = cx.count(line.len());
                cx.e.capture_bytes(line, cx.source, n, true);
                true
            },
            |cx, ahead| {
                let len = cx.e.capture_ahead(ahead, cx.source, cx.n + 1)?;
                cx.count(len);
                Some(len)
            },
        );
        let n = cx.n;
        // Nothing stays deferred outside this call (`finish` and `snapshot` read the state).
        self.resolve_deferred(source, 0);
        self.line_buf = buf;
        read.map_err(|error| EngineError::Io {
            source_name: source.to_string(),
            error,
        })?;
        Ok(n)
    }

    /// The counts so far with this engine's unmatched labels and the labels still in the
    /// ground-truth pipeline included.
    fn counts(&self) -> Counts {
        let mut counts = self.state.counts.clone();
        let (dups, new) = self.gt.pending_effect();
        counts.duplicate_ground_truth_ids += dups;
        if self.cfg.problem_type.is_some() {
            counts.unmatched_labels += self.gt.unmatched() + new;
        }
        counts
    }

    /// The mergeable state so far, with this engine's unmatched labels counted.
    pub fn snapshot(&self) -> EngineState {
        let mut s = self.state.clone();
        s.counts = self.counts();
        s
    }

    /// Merges a worker's state (from [`Engine::snapshot`]) into this engine.
    pub fn merge_state(&mut self, other: &EngineState) -> Result<(), EngineError> {
        self.state.merge(other, self.cfg.max_error_samples)
    }

    /// Computes the result (does not consume: more input may follow).
    pub fn finish(&self) -> Result<JobResult, EngineError> {
        // Borrow the state (no copy of the score list); only the counts need the unmatched labels.
        let state = &self.state;
        let counts = self.counts();
        let quality = state.quality.as_ref().map(|q| q.report(&self.cfg));
        let mut violations = Vec::new();
        let mut drift = Vec::new();
        if let (Some(q), Some(c), Some(p)) = (
            &quality,
            &self.model_quality_constraints,
            self.cfg.problem_type,
        ) {
            let vals: Vec<(String, f64)> = q
                .scalars
                .iter()
                .map(|(n, m)| (n.clone(), m.value))
                .collect();
            violations.extend(
                check_model_quality(c, p.constraints_key(), &vals)
                    .map_err(EngineError::Constraints)?,
            );
        }
        if let (Some(dq), Some(c)) = (&state.data_quality, &self.baseline_constraints) {
            let r = check_data_quality(dq, self.baseline_statistics.as_ref(), c);
            violations.extend(r.violations);
            drift = r.drift;
        }
        Ok(JobResult {
            problem_type: self.cfg.problem_type,
            evaluation_time: format_time_millis(chrono::Utc::now().timestamp_millis()),
            counts,
            error_samples: state.error_samples.clone(),
            quality,
            data_quality: state.data_quality.clone(),
            violations,
            drift,
            min_inference_time_ms: state.min_inference_time_ms,
            max_inference_time_ms: state.max_inference_time_ms,
        })
    }
}
