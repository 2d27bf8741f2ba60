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
//!   `max_error_samples` `source:line: message` samples. A line longer than [`MAX_LINE_BYTES`]
//!   (or [`Engine::with_max_line_bytes`]) is one malformed line, skipped without being buffered.
//!
//! # Memory
//! Capture is streamed; what the engine holds grows with the ground truth it has read (the table
//! grows as labels arrive, it is not sized from listed bytes). With
//! [`Engine::with_ground_truth_limit`] a label that would take the store (at its peak, while a
//! table grows) past the limit fails the feed with [`EngineError::GroundTruthTooLarge`] instead
//! of letting the process run out of memory.
//!
//! # Speed (same results as the straightforward path)
//! * Lines are read by a learned line shape, else a hand-written scanner, else serde (see
//!   [`super::parse`]); the records and errors are the same.
//! * [`Engine::feed_capture`] reads lines in place from the reader's buffer and queues up to
//!   `CAPTURE_PIPELINE` joins of binary / regression records with UUID keys behind a prefetch of
//!   their table slot; the queue is resolved in input order, always before any other join and
//!   before the call returns, so counts, metrics, states and error samples equal those of
//!   [`Engine::push_capture_line`] line by line (`shared/tests/metrics_fastpath.rs`).
//! * The UUID table asks Linux for huge pages (`madvise`), as its random probes otherwise miss the
//!   TLB nearly every time.

pub mod broadcast;
mod ingest;
mod join;
mod lines;
pub mod parallel;
pub mod partial;
mod result;
#[cfg(test)]
mod tests;

pub use broadcast::{CollectedLabels, ProbeState, SharedLabels};
pub use lines::LineAssembler;
pub use result::{
    CloudWatchMetric, Counts, EngineError, EngineState, ErrorSample, JobResult, MetricKind,
    PREDICTION_COLUMN,
};

use super::config::{MonitorConfig, ProblemType};
use super::dq::baseline::{BaselineConstraints, BaselineStatistics};
use super::dq::baseline::{BaselineFeatureStats, MonitoringConfig};
use super::dq::checks::{CheckResult, check_data_quality, check_drift, check_model_quality};
use super::dq::naming::ColumnNames;
use super::dq::stats::ColumnState;
use super::parse::record::Attr;
use super::parse::{CaptureRecord, GroundTruthRecord, LineParser, Skip};
use super::quality::QualityState;
use super::quality::calibration::Calibration;
use super::quality::estimate::{ScoreHistogram, estimate};
use super::util::format_time_millis;
use ingest::Ingest;
use lines::{for_each_line, trim_line_break};
use std::io::BufRead;

/// Lines longer than this many bytes (not counting the line break) are counted as malformed and
/// skipped, never buffered whole: 32 MiB, above the largest capture record SageMaker writes
/// (6 MB request and 6 MB response payloads, base64-encoded).
pub const MAX_LINE_BYTES: usize = 32 << 20;

/// Which input a line came from (for the malformed-line counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Capture,
    GroundTruth,
}

/// Whether capture records are read with their input payload.
fn want_input(cfg: &MonitorConfig) -> bool {
    cfg.data_quality || cfg.problem_type == Some(ProblemType::Forecast)
}

/// The metrics engine for one job (or one worker's part of a job).
pub struct Engine {
    /// Configuration, label rules, the ground-truth store and the state.
    ingest: Ingest,
    /// Capture and ground-truth lines into records (learned shapes, scanner, serde).
    parser: LineParser,
    capture_started: bool,
    baseline_statistics: Option<BaselineStatistics>,
    baseline_constraints: Option<BaselineConstraints>,
    model_quality_constraints: Option<serde_json::Value>,
    /// The prediction's baseline feature and the config its drift is checked with.
    prediction_baseline: Option<(BaselineFeatureStats, MonitoringConfig)>,
    line_buf: Vec<u8>,
    max_line: usize,
    /// Bytes the ground-truth store may reach ([`Engine::with_ground_truth_limit`]).
    gt_limit: Option<usize>,
}

impl Engine {
    /// A worker's engine for a partial job: any subset of the capture and of the ground truth,
    /// in any order (ground truth may follow capture). It does not join: its [`Engine::snapshot`]
    /// holds the join rows (see [`partial`]), and merged partial states — whatever the split —
    /// finish ([`Engine::merge_state`] into any engine, then [`Engine::finish`]) exactly as one
    /// [`Engine::new`] pass over all sources fed in name order. Its own [`Engine::finish`]
    /// resolves its rows too. Memory grows with the distinct ids of both sides (see
    /// `docs/scale-out.md`); [`Engine::with_ground_truth_limit`] does not apply.
    pub fn partial(cfg: MonitorConfig) -> Engine {
        let mut e = Engine::new(cfg);
        e.ingest.partial = true;
        e.ingest.state.join = Some(partial::JoinRows::default());
        e
    }

    /// Whether this is a partial engine ([`Engine::partial`]).
    pub fn is_partial(&self) -> bool {
        self.ingest.partial
    }

    pub fn new(cfg: MonitorConfig) -> Engine {
        Engine {
            parser: LineParser::new(cfg.capture_format, want_input(&cfg)),
            ingest: Ingest::new(cfg),
            capture_started: false,
            baseline_statistics: None,
            baseline_constraints: None,
            model_quality_constraints: None,
            prediction_baseline: None,
            line_buf: Vec::new(),
            max_line: MAX_LINE_BYTES,
            gt_limit: None,
        }
    }

    /// Estimates binary-classification performance without labels from every capture record's
    /// score, calibrated by `cal` (see [`crate::metrics::quality::estimate`]). The score is read
    /// at the configured `probability_attribute`, else the calibration's, else the whole output.
    pub fn with_calibration(mut self, cal: Calibration) -> Engine {
        let attr = self
            .ingest
            .cfg
            .probability_attribute
            .clone()
            .or_else(|| cal.probability_attribute.clone());
        self.ingest.state.estimation = Some(ScoreHistogram::new(&cal));
        self.ingest.calibration = Some((cal, Attr::parse(attr.as_deref())));
        self
    }

    /// Lets [`Engine::finish`] sort and walk the binary-classification score list on up to
    /// `threads` threads (the AUC's sort and the curves; the same result). Default: the calling
    /// thread only.
    pub fn set_finish_threads(&mut self, threads: usize) {
        if let Some(QualityState::Binary(b)) = &mut self.ingest.state.quality {
            b.sort_threads = threads;
        }
    }

    /// Lines longer than `bytes` are counted as malformed and skipped (default
    /// [`MAX_LINE_BYTES`]).
    pub fn with_max_line_bytes(mut self, bytes: usize) -> Engine {
        self.max_line = bytes.max(1);
        self
    }

    /// The ground-truth store may hold at most about `bytes` (its peak while a table grows
    /// included); a ground-truth line that would take it further fails the feed with
    /// [`EngineError::GroundTruthTooLarge`]. Unlimited by default.
    pub fn with_ground_truth_limit(mut self, bytes: u64) -> Engine {
        self.gt_limit = Some(usize::try_from(bytes).unwrap_or(usize::MAX));
        self
    }

    /// Bytes the buffered ground truth holds now (for reports and tests).
    pub fn ground_truth_bytes(&self) -> usize {
        self.ingest.gt.footprint()
    }

    /// Fails when storing one more label of a `line_len`-byte line could take the store past the
    /// limit.
    #[inline]
    fn check_ground_truth_room(&self, line_len: usize, source: &str) -> Result<(), EngineError> {
        let Some(limit) = self.gt_limit.filter(|_| !self.ingest.partial) else {
            return Ok(());
        };
        // A line's key and (forecast) series are at most as long as the line.
        let series = if self.ingest.cfg.problem_type == Some(ProblemType::Forecast) {
            line_len / 2
        } else {
            0
        };
        // The key and a class label are each at most the line.
        if self.ingest.gt.footprint_with_next(2 * line_len, series) > limit {
            return Err(EngineError::GroundTruthTooLarge {
                limit_bytes: limit as u64,
                labels: self.ground_truth_len() as u64,
                source_name: source.to_owned(),
            });
        }
        Ok(())
    }

    /// Counts a line longer than the maximum as malformed (with a sample), on its side.
    fn too_long(&mut self, side: Side, bytes: usize, source: &str, line: u64) {
        let max = self.max_line;
        let counts = &mut self.ingest.state.counts;
        match side {
            Side::Capture => counts.malformed_capture += 1,
            Side::GroundTruth => {
                counts.ground_truth_lines += 1;
                counts.malformed_ground_truth += 1;
            }
        }
        self.ingest.sample(source, line, || {
            format!(
                "line of {bytes} bytes or more is longer than the maximum of {max} bytes; skipped"
            )
        });
    }

    /// Counts an input that is not capture although it was listed as such (e.g. a malformed
    /// batch-transform manifest) as one malformed capture line of `source`, with its sample.
    pub fn count_malformed_capture(&mut self, source: &str, message: &str) {
        self.ingest.state.counts.malformed_capture += 1;
        self.ingest.sample(source, 0, || message.to_owned());
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.ingest.cfg
    }

    /// Data-quality baseline (`statistics.json` optional: needed for drift; `constraints.json`
    /// drives every check). Headerless CSV columns take the baseline's feature names by position
    /// unless `feature_names` is set ([`super::dq::naming`]). Attach it before feeding capture.
    pub fn with_data_quality_baseline(
        mut self,
        statistics: Option<BaselineStatistics>,
        constraints: Option<BaselineConstraints>,
    ) -> Engine {
        self.ingest.names = ColumnNames::resolve(
            self.ingest.cfg.feature_names.as_deref(),
            constraints.as_ref(),
            statistics.as_ref(),
        );
        self.baseline_statistics = statistics;
        self.baseline_constraints = constraints;
        self
    }

    /// The engine without learned line shapes (see [`super::parse`]): every line takes the
    /// scanner, then serde. Same results, slower; for tests that compare the two.
    #[doc(hidden)]
    pub fn without_line_shapes(mut self) -> Engine {
        self.parser = self.parser.without_shapes();
        self
    }

    /// Prediction drift: the model output's baseline — a feature of a Model-Monitor-shaped
    /// `statistics.json` (the `prediction` feature of a `prediction_statistics.json` this engine
    /// wrote for a reference window, or an output column of a data-quality baseline) — and the
    /// config (thresholds, methods, `drift_thresholds`) its drift is checked with. Turns
    /// [`MonitorConfig::prediction_drift`] on; attach it before feeding capture. Results:
    /// [`JobResult::prediction_drift`], metrics `prediction_<statistic>`, and
    /// `baseline_drift_check` violations with feature `prediction`.
    pub fn with_prediction_baseline(
        mut self,
        baseline: BaselineFeatureStats,
        config: MonitoringConfig,
    ) -> Engine {
        self.ingest.cfg.prediction_drift = true;
        if self.ingest.state.prediction.is_none() {
            self.ingest.state.prediction = Some(ColumnState::new(result::PREDICTION_COLUMN.into()));
        }
        self.prediction_baseline = Some((baseline, config));
        self
    }

    /// Model-quality `constraints.json` (parsed JSON).
    pub fn with_model_quality_constraints(mut self, constraints: serde_json::Value) -> Engine {
        self.model_quality_constraints = Some(constraints);
        self
    }

    /// Counts a line that gave no record: blank, or malformed with its sample.
    fn skip(&mut self, side: Side, skip: Skip, source: &str, line: u64) {
        let counts = &mut self.ingest.state.counts;
        match (skip, side) {
            (Skip::Blank, _) => counts.blank_lines += 1,
            (skip, Side::Capture) => {
                counts.malformed_capture += 1;
                self.ingest.sample(source, line, || skip.to_string());
            }
            (skip, Side::GroundTruth) => {
                counts.malformed_ground_truth += 1;
                self.ingest.sample(source, line, || skip.to_string());
            }
        }
    }

    /// Pre-sizes the ground-truth table for about `n` labels (e.g. ground-truth bytes / 120): at
    /// most 2^26 labels, and at most a third of the limit ([`Engine::with_ground_truth_limit`]),
    /// so growing it later still fits. Only a speed hint: the table grows as labels arrive.
    pub fn reserve_ground_truth(&mut self, n: usize) {
        self.reserve_ground_truth_on(n, 1);
    }

    /// [`Engine::reserve_ground_truth`], the new table's slots written on up to `threads`
    /// threads.
    fn reserve_ground_truth_on(&mut self, n: usize, threads: usize) {
        let mut n = n.min(1 << 26);
        if let Some(limit) = self.gt_limit {
            while n > 0 && join::GroundTruthStore::reserve_bytes(n) > limit / 3 {
                n /= 2;
            }
        }
        self.ingest.gt.reserve(n, threads);
    }

    /// Number of buffered ground-truth ids.
    pub fn ground_truth_len(&self) -> usize {
        self.ingest.state.join.as_ref().map_or(0, |j| j.label_ids())
            + self.ingest.gt.len()
            + self.ingest.gt.pending_effect().1 as usize
    }

    /// Feeds one ground-truth line (`line_no` is 1-based, for error samples).
    pub fn push_ground_truth_line(
        &mut self,
        line: &str,
        source: &str,
        line_no: u64,
    ) -> Result<(), EngineError> {
        if self.capture_started && !self.ingest.partial {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        if line.len() > self.max_line {
            self.too_long(Side::GroundTruth, line.len(), source, line_no);
            return Ok(());
        }
        self.check_ground_truth_room(line.len(), source)?;
        self.ingest.state.counts.ground_truth_lines += 1;
        let parsed = self.parser.ground_truth_text(line);
        self.ground_truth_parsed(parsed, source, line_no);
        Ok(())
    }

    /// A (counted) ground-truth line's record, or why it has none.
    #[inline]
    fn ground_truth_parsed(
        &mut self,
        parsed: Result<GroundTruthRecord<'_>, Skip>,
        source: &str,
        line_no: u64,
    ) {
        match parsed {
            Ok(rec) => self.ingest.ground_truth_record(&rec, source, line_no),
            Err(skip) => self.skip(Side::GroundTruth, skip, source, line_no),
        }
    }

    /// Feeds one capture line.
    pub fn push_capture_line(&mut self, line: &str, source: &str, line_no: u64) {
        if line.len() > self.max_line {
            self.begin_capture_line();
            self.too_long(Side::Capture, line.len(), source, line_no);
            return;
        }
        self.capture_line(line, source, line_no, false);
    }

    /// With `defer` (only inside [`Engine::feed_capture`], which resolves everything it deferred
    /// before returning), the join of a record whose outcome cannot produce an error sample is
    /// queued behind a prefetch of its table slot (see `ingest::Deferred`).
    fn capture_line(&mut self, line: &str, source: &str, line_no: u64, defer: bool) {
        self.begin_capture_line();
        let parsed = self.parser.capture_text(line);
        self.capture_parsed(parsed, source, line_no, defer);
    }

    /// A (counted) capture line's record, or why it has none.
    #[inline]
    fn capture_parsed(
        &mut self,
        parsed: Result<CaptureRecord<'_>, Skip>,
        source: &str,
        line_no: u64,
        defer: bool,
    ) {
        match parsed {
            Ok(rec) => self.ingest.capture_record(&rec, source, line_no, defer),
            Err(skip) => self.skip(Side::Capture, skip, source, line_no),
        }
    }

    /// Counts a capture line (before it is read).
    #[inline]
    fn begin_capture_line(&mut self) {
        if self.ingest.gt.has_pending() {
            self.ingest.state.counts.duplicate_ground_truth_ids += self.ingest.gt.flush();
        }
        self.capture_started = true;
        self.ingest.state.counts.capture_lines += 1;
    }

    /// Feeds one ground-truth line given as bytes (a trailing `\n` / `\r\n` is ignored; non-UTF-8
    /// lines are counted as malformed).
    pub fn push_ground_truth_bytes(
        &mut self,
        line: &[u8],
        source: &str,
        line_no: u64,
    ) -> Result<(), EngineError> {
        if self.capture_started && !self.ingest.partial {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        let line = trim_line_break(line);
        if line.len() > self.max_line {
            self.too_long(Side::GroundTruth, line.len(), source, line_no);
            return Ok(());
        }
        self.check_ground_truth_room(line.len(), source)?;
        self.ingest.state.counts.ground_truth_lines += 1;
        let parsed = self.parser.ground_truth_bytes(line);
        self.ground_truth_parsed(parsed, source, line_no);
        Ok(())
    }

    /// Feeds one capture line given as bytes (see [`Engine::push_ground_truth_bytes`]).
    pub fn push_capture_bytes(&mut self, line: &[u8], source: &str, line_no: u64) {
        self.capture_bytes(line, source, line_no, false);
    }

    fn capture_bytes(&mut self, line: &[u8], source: &str, line_no: u64, defer: bool) {
        self.begin_capture_line();
        let line = trim_line_break(line);
        if line.len() > self.max_line {
            self.too_long(Side::Capture, line.len(), source, line_no);
            return;
        }
        let parsed = self.parser.capture_bytes(line);
        self.capture_parsed(parsed, source, line_no, defer);
    }

    /// Reads the ground-truth line at the start of `ahead` (unread input starting at a line) if it
    /// fits a known shape and ends with `\n`: its length with the `\n`. As
    /// [`Engine::push_ground_truth_bytes`] on that line, without searching for its end first.
    #[inline]
    fn ground_truth_ahead(&mut self, ahead: &[u8], source: &str, line_no: u64) -> Option<usize> {
        if (self.capture_started && !self.ingest.partial)
            || self.check_ground_truth_room(ahead.len(), source).is_err()
        {
            // The line path reports the error.
            return None;
        }
        let (rec, len) = self.parser.ground_truth_ahead(ahead)?;
        self.ingest.state.counts.ground_truth_lines += 1;
        self.ingest.ground_truth_record(&rec, source, line_no);
        Some(len)
    }

    /// [`Engine::ground_truth_ahead`] for capture lines (deferring joins, as `feed_capture`).
    #[inline]
    fn capture_ahead(&mut self, ahead: &[u8], source: &str, line_no: u64) -> Option<usize> {
        let (rec, len) = self.parser.capture_ahead(ahead)?;
        self.begin_capture_line();
        self.ingest.capture_record(&rec, source, line_no, true);
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
        let max_line = self.max_line;
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
            max_line,
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
            |cx, bytes| {
                cx.n += 1;
                cx.e.too_long(Side::GroundTruth, bytes, cx.source, cx.n);
                true
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
        let max_line = self.max_line;
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
            max_line,
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
            |cx, bytes| {
                let n = cx.count(bytes);
                cx.e.begin_capture_line();
                cx.e.too_long(Side::Capture, bytes, cx.source, n);
                true
            },
        );
        let n = cx.n;
        // Nothing stays deferred outside this call (`finish` and `snapshot` read the state).
        self.ingest.resolve_deferred(source, 0);
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
        self.counts_with(&self.ingest.state.counts)
    }

    fn counts_with(&self, base: &Counts) -> Counts {
        let mut counts = base.clone();
        let (dups, new) = self.ingest.gt.pending_effect();
        counts.duplicate_ground_truth_ids += dups;
        if self.ingest.cfg.problem_type.is_some() {
            counts.unmatched_labels += self.ingest.gt.unmatched() + new;
        }
        counts
    }

    /// The mergeable state so far, with this engine's unmatched labels counted.
    pub fn snapshot(&self) -> EngineState {
        let mut s = self.ingest.state.clone();
        s.counts = self.counts();
        s
    }

    /// [`Engine::snapshot`] without a copy, consuming the engine.
    pub fn into_state(self) -> EngineState {
        let counts = self.counts();
        let mut s = self.ingest.state;
        s.counts = counts;
        s
    }

    /// [`Engine::merge_state`] taking the state: its join rows are moved, not copied.
    pub fn merge_state_owned(&mut self, mut other: EngineState) -> Result<(), EngineError> {
        let rows = other.join.take();
        self.merge_state(&other)?;
        if let Some(rows) = rows {
            match &mut self.ingest.state.join {
                Some(j) => j.merge_owned(rows),
                None => self.ingest.state.join = Some(rows),
            }
        }
        Ok(())
    }

    /// Merges a worker's state (from [`Engine::snapshot`]) into this engine.
    pub fn merge_state(&mut self, other: &EngineState) -> Result<(), EngineError> {
        self.ingest
            .state
            .merge(other, self.ingest.cfg.max_error_samples)
    }

    /// Computes the result (does not consume: more input may follow).
    pub fn finish(&self) -> Result<JobResult, EngineError> {
        // Borrow the state (no copy of the score list); only the counts need the unmatched labels.
        // Join rows (partial states) are resolved into a copy.
        let resolved;
        let state = match &self.ingest.state.join {
            Some(rows) if !rows.is_empty() => {
                let mut s = self.ingest.state.clone_without_join();
                partial::resolve(rows, &mut s, &self.ingest.cfg);
                resolved = s;
                &resolved
            }
            _ => &self.ingest.state,
        };
        let counts = self.counts_with(&state.counts);
        let mut error_samples = state.error_samples.clone();
        result::sort_samples(&mut error_samples);
        let quality = state.quality.as_ref().map(|q| q.report(&self.ingest.cfg));
        let mut violations = Vec::new();
        let mut drift = Vec::new();
        if let (Some(q), Some(c), Some(p)) = (
            &quality,
            &self.model_quality_constraints,
            self.ingest.cfg.problem_type,
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
        let mut prediction_drift = None;
        if let (Some(col), Some((base, cfg))) = (&state.prediction, &self.prediction_baseline) {
            let mut r = CheckResult::default();
            if col.types.non_null() > 0 {
                check_drift(result::PREDICTION_COLUMN, cfg, base, col, &mut r);
            }
            violations.extend(r.violations);
            prediction_drift = r.drift.pop();
        }
        Ok(JobResult {
            problem_type: self.ingest.cfg.problem_type,
            evaluation_time: format_time_millis(chrono::Utc::now().timestamp_millis()),
            counts,
            error_samples,
            quality,
            data_quality: state.data_quality.clone(),
            violations,
            drift,
            prediction: state.prediction.clone(),
            prediction_drift,
            min_inference_time_ms: state.min_inference_time_ms,
            max_inference_time_ms: state.max_inference_time_ms,
            estimation: self
                .ingest
                .calibration
                .as_ref()
                .zip(state.estimation.as_ref())
                .and_then(|((c, _), h)| estimate(c, h, self.ingest.cfg.seed)),
        })
    }
}

/// Runs the engine over arbitrary bytes with a small line maximum, a small ground-truth limit and
/// arbitrary window bounds (the fuzz target `bounded_feed` and its proptest twin in
/// `shared/tests/metrics_props.rs`). Panics only when an invariant breaks: the store stays within
/// its limit, and the only ground-truth error is [`EngineError::GroundTruthTooLarge`].
#[doc(hidden)]
pub fn exercise_bounded_feed(data: &[u8]) -> Counts {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let word = |i: usize| {
        let mut b = [0u8; 8];
        for (k, v) in b.iter_mut().enumerate() {
            *v = byte(i + k);
        }
        i64::from_le_bytes(b)
    };
    let problem = match byte(0) % 5 {
        0 => None,
        1 => Some(ProblemType::Regression),
        2 => Some(ProblemType::BinaryClassification),
        3 => Some(ProblemType::MulticlassClassification),
        _ => Some(ProblemType::Forecast),
    };
    let max_line = 1 + usize::from(u16::from_le_bytes([byte(1), byte(2)]) % 4096);
    let limit = 1024 * (1 + u64::from(u16::from_le_bytes([byte(3), byte(4)]) % 512));
    let (start, end) = (word(5), word(13));
    let rest = data.get(21..).unwrap_or(&[]);
    let (gt, capture) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let cfg = MonitorConfig {
        problem_type: problem,
        data_quality: true,
        window_start_ms: (byte(0) & 0x80 != 0).then_some(start),
        window_end_ms: (byte(0) & 0x40 != 0).then_some(end),
        ..MonitorConfig::default()
    };
    let mut e = Engine::new(cfg)
        .with_max_line_bytes(max_line)
        .with_ground_truth_limit(limit);
    e.reserve_ground_truth(usize::from(byte(2)) << 12);
    if problem.is_some() {
        match e.feed_ground_truth("gt", gt) {
            Ok(_) => {}
            Err(EngineError::GroundTruthTooLarge { limit_bytes, .. }) => {
                assert_eq!(limit_bytes, limit)
            }
            Err(other) => panic!("unexpected ground-truth error: {other}"),
        }
        assert!(
            e.ground_truth_bytes() as u64 <= limit,
            "{} > {limit}",
            e.ground_truth_bytes()
        );
    }
    e.feed_capture("capture", capture, |_| {})
        .expect("reading from memory cannot fail");
    let r = e
        .finish()
        .expect("no constraints, so finishing cannot fail");
    let _ = (
        r.statistics_json(),
        r.violations_json(),
        r.summary(),
        r.cloudwatch_metrics(),
    );
    r.counts
}
