//! Capture and ground-truth lines into records. `LineParser` is the one place that chooses the
//! tier for each line — a learned line shape, else the hand-written scanner, else serde — and the
//! three tiers yield identical records and errors (property tests in each tier's module and
//! `shared/tests/metrics_fastpath.rs`).
//!
//! * [`record`]: the record types and payload decoding (a leaf).
//! * `shape`: learned line layouts, read straight from their value holes.
//! * `scan`: the single-pass scanner for the usual spellings; gives up on anything else.
//! * `serde`: the reference path, and every error message.
//! * `batch_csv`: batch-transform CSV rows (no tiers).
//! * `bytes`: byte-level helpers (newline search, JSON string and number ends).

mod batch_csv;
mod bytes;
pub mod record;
mod scan;
mod serde;
mod shape;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub(crate) use bytes::find_newline;
pub use record::{
    Attr, CaptureRecord, Decoded, GroundTruthRecord, Payload, RecordError, csv_rows, finite_number,
};

use crate::metrics::config::CaptureFormat;
use shape::ShapeCache;

/// Why a line gave no record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Skip {
    /// Only whitespace.
    Blank,
    /// Not UTF-8 (bytes input only).
    NotUtf8,
    /// Not a record: serde's error, or a missing field.
    Invalid(RecordError),
}

/// The error sample's message of a skipped line.
impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Blank => f.write_str("blank line"),
            Skip::NotUtf8 => f.write_str("line is not UTF-8"),
            Skip::Invalid(e) => e.fmt(f),
        }
    }
}

/// Reads the lines of one job: capture lines in the configured layout (with or without their
/// input payload) and ground-truth lines, each stream with its own learned shapes.
///
/// Every line tries, in order: the shapes learned from earlier lines (`shape`); the scanner
/// (`scan`), which also teaches the cache the line's shape when it is due; serde (`serde`), for
/// everything the scanner gives up on. Batch-transform CSV has one reader (`batch_csv`) and learns
/// no shapes.
#[derive(Debug, Clone)]
pub(crate) struct LineParser {
    format: CaptureFormat,
    want_input: bool,
    capture: ShapeCache,
    ground_truth: ShapeCache,
}

impl LineParser {
    /// A parser for capture in `format`; `want_input` reads the `endpointInput` payload too.
    pub(crate) fn new(format: CaptureFormat, want_input: bool) -> LineParser {
        LineParser {
            format,
            want_input,
            capture: ShapeCache::default(),
            ground_truth: ShapeCache::default(),
        }
    }

    /// The parser without line shapes: every line takes the scanner, then serde (same results).
    pub(crate) fn without_shapes(mut self) -> LineParser {
        self.capture = ShapeCache::off();
        self.ground_truth = ShapeCache::off();
        self
    }

    /// A capture line given as bytes, without its line break.
    #[inline]
    pub(crate) fn capture_bytes<'a>(&mut self, line: &'a [u8]) -> Result<CaptureRecord<'a>, Skip> {
        if let Some(rec) = self.capture.fit_capture(line, self.want_input) {
            return Ok(rec);
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.capture_unfitted(s),
            Err(_) => Err(Skip::NotUtf8),
        }
    }

    /// A capture line given as text.
    #[inline]
    pub(crate) fn capture_text<'a>(&mut self, line: &'a str) -> Result<CaptureRecord<'a>, Skip> {
        if let Some(rec) = self.capture.fit_capture(line.as_bytes(), self.want_input) {
            return Ok(rec);
        }
        self.capture_unfitted(line)
    }

    /// The capture line at the start of `ahead` (unread input starting at a line) if it fits a
    /// learned shape and ends with `\n`, with its length including the `\n`; None to have the
    /// line's end found and the line read by [`LineParser::capture_bytes`].
    #[inline]
    pub(crate) fn capture_ahead<'a>(
        &mut self,
        ahead: &'a [u8],
    ) -> Option<(CaptureRecord<'a>, usize)> {
        // (Batch-CSV capture learns no shapes, so it never fits.)
        self.capture.fit_capture_ahead(ahead, self.want_input)
    }

    /// A capture line that fitted no shape: scanner (learning its shape when due), else serde.
    fn capture_unfitted<'a>(&mut self, line: &'a str) -> Result<CaptureRecord<'a>, Skip> {
        if line.trim_ascii().is_empty() {
            return Err(Skip::Blank);
        }
        let (format, want_input) = (self.format, self.want_input);
        let rec = if format != CaptureFormat::BatchCsv && self.capture.learns(line.len()) {
            match scan::capture_learn(line, want_input) {
                Some((rec, spans)) => {
                    self.capture.learn_capture(line, &spans, &rec, want_input);
                    Ok(rec)
                }
                None => serde::capture(line, format, want_input),
            }
        } else {
            LineParser::capture_without_shapes(line, format, want_input)
        };
        rec.map_err(Skip::Invalid)
    }

    /// A capture line through the scanner, else serde (batch CSV: its reader).
    fn capture_without_shapes(
        line: &str,
        format: CaptureFormat,
        want_input: bool,
    ) -> Result<CaptureRecord<'_>, RecordError> {
        match format {
            CaptureFormat::BatchCsv => batch_csv::record(line),
            CaptureFormat::Realtime | CaptureFormat::BatchJson => {
                match scan::capture(line, want_input) {
                    Some(r) => Ok(r),
                    None => serde::capture(line, format, want_input),
                }
            }
        }
    }

    /// A ground-truth line given as bytes, without its line break.
    #[inline]
    pub(crate) fn ground_truth_bytes<'a>(
        &mut self,
        line: &'a [u8],
    ) -> Result<GroundTruthRecord<'a>, Skip> {
        if let Some(rec) = self.ground_truth.fit_ground_truth(line) {
            return Ok(rec);
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.ground_truth_unfitted(s),
            Err(_) => Err(Skip::NotUtf8),
        }
    }

    /// A ground-truth line given as text.
    #[inline]
    pub(crate) fn ground_truth_text<'a>(
        &mut self,
        line: &'a str,
    ) -> Result<GroundTruthRecord<'a>, Skip> {
        if let Some(rec) = self.ground_truth.fit_ground_truth(line.as_bytes()) {
            return Ok(rec);
        }
        self.ground_truth_unfitted(line)
    }

    /// [`LineParser::capture_ahead`] for ground-truth lines.
    #[inline]
    pub(crate) fn ground_truth_ahead<'a>(
        &mut self,
        ahead: &'a [u8],
    ) -> Option<(GroundTruthRecord<'a>, usize)> {
        self.ground_truth.fit_ground_truth_ahead(ahead)
    }

    /// A ground-truth line that fitted no shape. (Blank is `str::trim`'s whitespace here, ASCII
    /// whitespace for capture lines: kept as it always was.)
    fn ground_truth_unfitted<'a>(&mut self, line: &'a str) -> Result<GroundTruthRecord<'a>, Skip> {
        if line.trim().is_empty() {
            return Err(Skip::Blank);
        }
        let rec = if self.ground_truth.learns(line.len()) {
            match scan::ground_truth_learn(line) {
                Some((rec, spans)) => {
                    self.ground_truth.learn_ground_truth(line, &spans, &rec);
                    Ok(rec)
                }
                None => serde::ground_truth(line),
            }
        } else {
            LineParser::ground_truth_without_shapes(line)
        };
        rec.map_err(Skip::Invalid)
    }

    /// A ground-truth line through the scanner, else serde.
    fn ground_truth_without_shapes(line: &str) -> Result<GroundTruthRecord<'_>, RecordError> {
        match scan::ground_truth(line) {
            Some(r) => Ok(r),
            None => serde::ground_truth(line),
        }
    }
}

/// Parses one capture line in the given layout (no learned shapes: the scanner, else serde).
pub fn parse_capture_line(
    line: &str,
    format: CaptureFormat,
) -> Result<CaptureRecord<'_>, RecordError> {
    parse_capture_line_with(line, format, true)
}

/// Like [`parse_capture_line`]; with `want_input = false` the `endpointInput` payload is skipped
/// without being materialised (faster when only model quality is computed).
pub fn parse_capture_line_with(
    line: &str,
    format: CaptureFormat,
    want_input: bool,
) -> Result<CaptureRecord<'_>, RecordError> {
    LineParser::capture_without_shapes(line, format, want_input)
}

/// Parses one ground-truth line (no learned shapes: the scanner, else serde).
pub fn parse_ground_truth_line(line: &str) -> Result<GroundTruthRecord<'_>, RecordError> {
    LineParser::ground_truth_without_shapes(line)
}

/// Reads every line of `data` (each twice, so the second read may fit the shape the first
/// taught) through learning [`LineParser`]s, as capture and as ground truth, and panics when a
/// record or error differs from serde's on the same line: the differential check of the fast tiers
/// (fuzz target `parse_tiers`; the property tests of `scan`, `shape` and `tests` check the same on
/// generated lines).
#[doc(hidden)]
pub fn exercise_parse_tiers(data: &[u8]) {
    type P = Option<(String, Option<String>, Option<String>)>;
    fn p(p: &Option<Payload<'_>>) -> P {
        let s = |c: &Option<std::borrow::Cow<'_, str>>| c.as_deref().map(str::to_string);
        p.as_ref()
            .map(|p| (p.data.to_string(), s(&p.encoding), s(&p.content_type)))
    }
    let cap = |r: &CaptureRecord<'_>| {
        let s = |c: &Option<std::borrow::Cow<'_, str>>| c.as_deref().map(str::to_string);
        (
            s(&r.event_id),
            s(&r.inference_id),
            s(&r.inference_time),
            p(&r.input),
            p(&r.output),
        )
    };
    let gt = |r: &GroundTruthRecord<'_>| (r.event_id.to_string(), p(&Some(r.data.clone())));
    for want_input in [false, true] {
        let mut c = LineParser::new(CaptureFormat::Realtime, want_input);
        let mut g = LineParser::new(CaptureFormat::Realtime, want_input);
        for line in data.split(|b| *b == b'\n') {
            let Ok(s) = std::str::from_utf8(line) else {
                assert_eq!(c.capture_bytes(line).err(), Some(Skip::NotUtf8));
                continue;
            };
            for _ in 0..2 {
                let slow = if s.trim_ascii().is_empty() {
                    Err(Skip::Blank)
                } else {
                    serde::capture(s, CaptureFormat::Realtime, want_input).map_err(Skip::Invalid)
                };
                let fast = c.capture_bytes(line);
                assert_eq!(
                    fast.map(|r| cap(&r)),
                    slow.map(|r| cap(&r)),
                    "capture {s:?}"
                );
                let slow = if s.trim().is_empty() {
                    Err(Skip::Blank)
                } else {
                    serde::ground_truth(s).map_err(Skip::Invalid)
                };
                let fast = g.ground_truth_bytes(line);
                assert_eq!(
                    fast.map(|r| gt(&r)),
                    slow.map(|r| gt(&r)),
                    "ground truth {s:?}"
                );
            }
        }
    }
}
