//! The hand-written single-pass scanner for the common shape of capture and ground-truth lines:
//! the middle tier, between learned line shapes and serde.
//!
//! It extracts only the fields the engine reads and validates the rest of the line as JSON, without
//! building anything. It accepts a strict *subset* of what the serde path ([`super::serde`])
//! accepts and, on that subset, yields exactly the record serde yields. Everything else makes it
//! give up (`None`), and the caller falls back to serde, which then produces the same record or
//! the same error as before. It gives up on:
//! * any JSON syntax error (so error messages and counts always come from serde);
//! * a backslash escape in a field it extracts or in a key of an object whose fields it matches
//!   (`"d\u0061ta"` is the key `data`), so extracted strings are borrowed slices of the line —
//!   except a payload's `data`, whose escapes (JSON payloads: `{\"score\":0.7}`, multi-row CSV:
//!   `1\n2`) are decoded by [`unescape`] into an owned string (it gives up on `\uD800`-`\uDFFF`,
//!   leaving surrogates to serde);
//! * a field value of another JSON type than serde's usual one (numbers or `null` for an id,
//!   an array for `eventMetadata`, ...), and a field that appears twice (serde: duplicate field);
//! * nesting deeper than [`MAX_DEPTH`] in skipped values;
//! * for capture lines, a record without `captureData` (batch-transform rows), and for
//!   ground-truth lines, any missing required field (serde reports which one).
//!
//! Skipped values are validated by the rules of serde_json's `ignore_value` (number grammar,
//! literals, escapes `\" \\ \/ \b \f \n \r \t \uXXXX`, no raw control characters in strings);
//! whitespace is JSON's four characters, as in serde_json.
//!
//! Equality with the serde path is checked by property tests (`tests` below and
//! `shared/tests/metrics_fastpath.rs`) that feed canonical and randomly perturbed lines (escapes,
//! reordered and duplicated keys, whitespace, unicode, other value types, truncation, mutations)
//! through both.

use super::bytes::{number_end, string_end};
use super::record::{CaptureRecord, GroundTruthRecord, Payload};
use std::borrow::Cow;

/// Deepest nesting of skipped values the scanner follows before giving up.
pub(crate) const MAX_DEPTH: u32 = 64;

/// What a value span of a learned line holds (see [`super::shape`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HoleKind {
    /// A string read by the scanner as a field: no escapes allowed.
    Plain,
    /// A skipped string: escapes allowed.
    Str,
    /// A payload's `data` read as a field: escapes allowed and decoded.
    Esc,
    /// A skipped number.
    Num,
}

/// A value span `(start, end, kind)`: the body of a string (without quotes) or a number.
pub(crate) type Span = (usize, usize, HoleKind);

/// With `LEARN`, the scanner also records the span of every string and number value it reads
/// or skips (never keys), so [`super::shape::Shape`] can turn the line into a template.
struct Scan<'a, const LEARN: bool> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    spans: Vec<Span>,
}

/// The three strings of a payload object (`observedContentType`, `data`, `encoding`).
#[derive(Default)]
struct RawP<'a> {
    content_type: Option<&'a str>,
    /// The body as in the line (escapes not decoded) and whether it has escapes.
    data: Option<(&'a str, bool)>,
    encoding: Option<&'a str>,
}

impl<'a> RawP<'a> {
    /// As `Payload::from_raw`: no payload without `data` (`Some(None)`); None to give up (an
    /// escape [`unescape`] leaves to serde).
    fn payload(self) -> Option<Option<Payload<'a>>> {
        let Some(data) = self.data else {
            return Some(None);
        };
        Some(Some(Payload {
            data: data_cow(data)?,
            encoding: self.encoding.map(Cow::Borrowed),
            content_type: self.content_type.map(Cow::Borrowed),
        }))
    }
}

/// A `data` body as the record holds it: borrowed, or decoded when it has escapes.
#[inline]
pub(crate) fn data_cow((raw, escaped): (&str, bool)) -> Option<Cow<'_, str>> {
    if escaped {
        unescape(raw).map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(raw))
    }
}

/// The decoded text of a JSON string body already validated by `string_end` (escapes well
/// formed), as serde_json decodes it; None on a `\u` escape of a UTF-16 surrogate (lone or
/// paired: left to serde, which pairs or rejects them).
pub(crate) fn unescape(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut at = 0;
    while let Some(k) = memchr::memchr(b'\\', &b[at..]) {
        let j = at + k;
        out.push_str(raw.get(at..j)?);
        let c = match *b.get(j + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = raw.get(j + 2..j + 6)?;
                let v = u32::from_str_radix(hex, 16).ok()?;
                at = j + 6;
                out.push(char::from_u32(v)?); // None for surrogates
                continue;
            }
            _ => return None,
        };
        out.push(c);
        at = j + 2;
    }
    out.push_str(raw.get(at..)?);
    Some(out)
}

#[derive(Default)]
struct Meta<'a> {
    event_id: Option<&'a str>,
    inference_id: Option<&'a str>,
    inference_time: Option<&'a str>,
}

impl<'a, const LEARN: bool> Scan<'a, LEARN> {
    fn new(s: &'a str) -> Self {
        Scan {
            s,
            b: s.as_bytes(),
            i: 0,
            spans: Vec::new(),
        }
    }

    #[inline(always)]
    fn record(&mut self, start: usize, end: usize, kind: HoleKind) {
        if LEARN {
            self.spans.push((start, end, kind));
        }
    }

    /// A skipped string value (cursor after the opening quote).
    #[inline(always)]
    fn skip_string(&mut self) -> Option<()> {
        let (s, e, _) = self.string()?;
        self.record(s, e, HoleKind::Str);
        Some(())
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string body (cursor after the opening quote): `(start, end, had_escapes)`.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.i;
        let (end, escaped) = string_end(self.b, start)?;
        self.i = end + 1;
        Some((start, end, escaped))
    }

    /// A string value without escapes, borrowed from the line.
    #[inline(always)]
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let (s, e, escaped) = self.string()?;
        if escaped {
            return None;
        }
        self.record(s, e, HoleKind::Plain);
        // Both ends are next to an ASCII quote, hence char boundaries.
        self.s.get(s..e)
    }

    /// A payload's `data` string (escapes allowed, decoded later), giving up on a second
    /// occurrence.
    #[inline(always)]
    fn data_field(&mut self, slot: &mut Option<(&'a str, bool)>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        self.eat(b'"')?;
        let (s, e, escaped) = self.string()?;
        self.record(s, e, HoleKind::Esc);
        *slot = Some((self.s.get(s..e)?, escaped));
        Some(())
    }

    /// Stores a string field, giving up on a second occurrence (serde: duplicate field).
    #[inline(always)]
    fn str_field(&mut self, slot: &mut Option<&'a str>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(self.plain_str()?);
        Some(())
    }

    /// A number by JSON's grammar (see [`number_end`]).
    fn number(&mut self) -> Option<()> {
        self.i = number_end(self.b, self.i)?;
        Some(())
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + lit.len())? == lit {
            self.i += lit.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips the value of an unknown field: strings inline, anything else by [`Scan::skip_value`].
    #[inline(always)]
    fn skip(&mut self) -> Option<()> {
        if self.peek()? == b'"' {
            self.i += 1;
            self.skip_string()
        } else {
            self.skip_value(0)
        }
    }

    /// Validates and skips any value (cursor on its first byte).
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.skip_string()
            }
            b'{' if depth < MAX_DEPTH => self.items(b'{', b'}', |sc| {
                sc.member_key()?;
                sc.skip_value(depth + 1)
            }),
            b'[' if depth < MAX_DEPTH => self.items(b'[', b']', |sc| sc.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.number()?;
                self.record(start, self.i, HoleKind::Num);
                Some(())
            }
            _ => None,
        }
    }

    /// The members of an object whose fields are matched (cursor on `{`): `f(scan, key)` must
    /// consume the value. Keys with escapes make the scanner give up.
    #[inline(always)]
    fn object(&mut self, mut f: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.items(b'{', b'}', |sc| {
            let (s, e, escaped) = sc.member_key()?;
            if escaped {
                return None;
            }
            let b = sc.b;
            f(sc, &b[s..e])
        })
    }

    /// A member's key and the colon after it (cursor on the key's quote): the key's body span
    /// and whether it has escapes.
    #[inline(always)]
    fn member_key(&mut self) -> Option<(usize, usize, bool)> {
        self.eat(b'"')?;
        let key = self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(key)
    }

    /// The items of a `{...}` or `[...]` (cursor on `open`), each read by `item`, separated by
    /// commas, with whitespace where JSON allows it.
    #[inline(always)]
    fn items(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `endpointInput` / `endpointOutput` / `groundTruthData` (`RawPayload` / `RawGtData`).
    #[inline(always)]
    fn payload(&mut self, with_content_type: bool) -> Option<RawP<'a>> {
        let mut p = RawP::default();
        self.object(|sc, k| match k {
            b"data" => sc.data_field(&mut p.data),
            b"encoding" => sc.str_field(&mut p.encoding),
            b"observedContentType" if with_content_type => sc.str_field(&mut p.content_type),
            _ => sc.skip(),
        })?;
        Some(p)
    }

    /// `eventMetadata` (`RawMetadata`).
    #[inline(always)]
    fn meta(&mut self) -> Option<Meta<'a>> {
        let mut m = Meta::default();
        self.object(|sc, k| match k {
            b"eventId" => sc.str_field(&mut m.event_id),
            b"inferenceId" => sc.str_field(&mut m.inference_id),
            b"inferenceTime" => sc.str_field(&mut m.inference_time),
            _ => sc.skip(),
        })?;
        Some(m)
    }

    /// After the top-level object only whitespace may follow.
    fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }
}

/// A real-time capture line (`RawCapture`, or `RawCaptureNoInput` without `want_input`), or None
/// to fall back to serde.
pub(crate) fn capture(line: &str, want_input: bool) -> Option<CaptureRecord<'_>> {
    capture_scan::<false>(line, want_input).map(|(r, _)| r)
}

/// [`capture`] that also returns the spans of the line's values (for a [`super::shape::Shape`]).
pub(crate) fn capture_learn(
    line: &str,
    want_input: bool,
) -> Option<(CaptureRecord<'_>, Vec<Span>)> {
    capture_scan::<true>(line, want_input)
}

#[inline(always)]
fn capture_scan<const LEARN: bool>(
    line: &str,
    want_input: bool,
) -> Option<(CaptureRecord<'_>, Vec<Span>)> {
    let mut sc = Scan::<LEARN>::new(line);
    sc.ws();
    let mut capture_data: Option<(Option<RawP<'_>>, Option<RawP<'_>>)> = None;
    let mut meta: Option<Meta<'_>> = None;
    let (mut batch_id, mut batch_time) = (None, None);
    sc.object(|sc, k| match k {
        b"captureData" => {
            if capture_data.is_some() {
                return None;
            }
            let (mut input, mut output) = (None, None);
            sc.object(|sc, k| match k {
                b"endpointInput" if want_input => {
                    if input.is_some() {
                        return None;
                    }
                    input = Some(sc.payload(true)?);
                    Some(())
                }
                b"endpointOutput" => {
                    if output.is_some() {
                        return None;
                    }
                    output = Some(sc.payload(true)?);
                    Some(())
                }
                _ => sc.skip(),
            })?;
            capture_data = Some((input, output));
            Some(())
        }
        b"eventMetadata" => {
            if meta.is_some() {
                return None;
            }
            meta = Some(sc.meta()?);
            Some(())
        }
        b"SageMakerInferenceId" => sc.str_field(&mut batch_id),
        b"SageMakerInferenceTime" => sc.str_field(&mut batch_time),
        _ => sc.skip(),
    })?;
    sc.end()?;
    // Without captureData the line may be a batch-transform row: serde decides.
    let (input, output) = capture_data?;
    let meta = meta.unwrap_or_default();
    let record = CaptureRecord {
        event_id: meta.event_id.map(Cow::Borrowed),
        inference_id: meta.inference_id.map(Cow::Borrowed),
        inference_time: meta.inference_time.map(Cow::Borrowed),
        input: match input {
            Some(p) => p.payload()?,
            None => None,
        },
        output: match output {
            Some(p) => p.payload()?,
            None => None,
        },
    };
    Some((record, sc.spans))
}

/// A ground-truth line with all required fields, or None to fall back to serde.
pub(crate) fn ground_truth(line: &str) -> Option<GroundTruthRecord<'_>> {
    ground_truth_scan::<false>(line).map(|(r, _)| r)
}

/// [`ground_truth`] that also returns the spans of the line's values.
pub(crate) fn ground_truth_learn(line: &str) -> Option<(GroundTruthRecord<'_>, Vec<Span>)> {
    ground_truth_scan::<true>(line)
}

#[inline(always)]
fn ground_truth_scan<const LEARN: bool>(line: &str) -> Option<(GroundTruthRecord<'_>, Vec<Span>)> {
    let mut sc = Scan::<LEARN>::new(line);
    sc.ws();
    let mut data: Option<RawP<'_>> = None;
    let mut meta: Option<Meta<'_>> = None;
    sc.object(|sc, k| match k {
        b"groundTruthData" => {
            if data.is_some() {
                return None;
            }
            data = Some(sc.payload(false)?);
            Some(())
        }
        b"eventMetadata" => {
            if meta.is_some() {
                return None;
            }
            meta = Some(sc.meta()?);
            Some(())
        }
        _ => sc.skip(),
    })?;
    sc.end()?;
    let event_id = meta?.event_id.filter(|s| !s.is_empty())?;
    let d = data?;
    let record = GroundTruthRecord {
        event_id: Cow::Borrowed(event_id),
        data: Payload {
            data: data_cow(d.data?)?,
            encoding: d.encoding.map(Cow::Borrowed),
            content_type: None,
        },
    };
    Some((record, sc.spans))
}

#[cfg(test)]
mod tests {
    //! The scanner against the serde path: on every line, `parse_*` (scanner, else serde) must
    //! equal serde alone (same record, or the same error), and wherever the scanner answers its
    //! record must be serde's.
    use super::*;
    use crate::metrics::config::CaptureFormat;
    use crate::metrics::parse::record::RecordError;
    use crate::metrics::parse::testutil::{
        CapView, cap_view, capture_value, ground_truth_value, gt_view, knobs, render,
    };
    use crate::metrics::parse::{parse_capture_line_with, parse_ground_truth_line, serde};
    use crate::metrics::util::SplitMix64;
    use proptest::prelude::*;

    /// Checks one capture line in every mode; returns whether the scanner answered at least once.
    fn check_capture(line: &str) -> Result<bool, TestCaseError> {
        let mut fast_hit = false;
        for format in [CaptureFormat::Realtime, CaptureFormat::BatchJson] {
            for want_input in [false, true] {
                let slow: Result<CapView, RecordError> =
                    serde::capture(line, format, want_input).map(|r| cap_view(&r));
                let full: Result<CapView, RecordError> =
                    parse_capture_line_with(line, format, want_input).map(|r| cap_view(&r));
                prop_assert_eq!(&full, &slow, "line {:?}", line);
                if let Some(fast) = capture(line, want_input) {
                    fast_hit = true;
                    prop_assert_eq!(Ok(cap_view(&fast)), slow.clone(), "line {:?}", line);
                    // Borrowed from the line: no allocation on the fast path.
                    for c in [&fast.event_id, &fast.inference_id, &fast.inference_time] {
                        prop_assert!(matches!(c, None | Some(Cow::Borrowed(_))));
                    }
                }
            }
        }
        Ok(fast_hit)
    }

    fn check_ground_truth(line: &str) -> Result<bool, TestCaseError> {
        let slow = serde::ground_truth(line).map(|r| gt_view(&r));
        let full = parse_ground_truth_line(line).map(|r| gt_view(&r));
        prop_assert_eq!(&full, &slow, "line {:?}", line);
        match ground_truth(line) {
            Some(fast) => {
                prop_assert_eq!(Ok(gt_view(&fast)), slow, "line {:?}", line);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn capture_fast_path_equals_serde(seed in any::<u64>(), keep in 128u64..257,
                                          other in prop_oneof![Just(0u64), 0u64..64], knobs in knobs()) {
            let mut rng = SplitMix64(seed);
            let v = capture_value(&mut rng, keep, other);
            let line = render(&v, seed ^ 0x5555, knobs);
            check_capture(&line)?;
        }

        #[test]
        fn ground_truth_fast_path_equals_serde(seed in any::<u64>(), keep in 128u64..257,
                                               other in prop_oneof![Just(0u64), 0u64..64], knobs in knobs()) {
            let mut rng = SplitMix64(seed);
            let v = ground_truth_value(&mut rng, keep, other);
            let line = render(&v, seed ^ 0xAAAA, knobs);
            check_ground_truth(&line)?;
        }

        #[test]
        fn arbitrary_text_fast_path_equals_serde(line in ".{0,200}") {
            check_capture(&line)?;
            check_ground_truth(&line)?;
        }
    }

    /// The generator's lines and SageMaker's documented example take the scanner; perturbed
    /// spellings of the same record fall back to serde and give the same record.
    #[test]
    fn canonical_lines_take_the_fast_path_and_perturbed_ones_agree() {
        let cap = r#"{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"64,61071.69,3","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0.082561","encoding":"CSV"}},"eventMetadata":{"eventId":"47526757-130f-4f52-981c-e1ff0e4ae394","inferenceId":"de4431fa-3c80-4b06-b7e9-671c45376d5d","inferenceTime":"2024-01-01T00:00:00Z"},"eventVersion":"0"}"#;
        let gt = r#"{"groundTruthData":{"data":"0","encoding":"CSV"},"eventMetadata":{"eventId":"de4431fa-3c80-4b06-b7e9-671c45376d5d"},"eventVersion":"0"}"#;
        assert!(check_capture(cap).unwrap());
        assert!(check_ground_truth(gt).unwrap());
        let want = cap_view(&capture(cap, true).unwrap());
        for (from, to) in [
            ("\"data\":\"0.082561\"", "\"d\\u0061ta\":\"0.082561\""),
            ("0.082561", "0.0825\\u00361"),
            ("text/csv;", "text\\/csv;"),
            (",\"eventVersion\"", " ,\n\t\"eventVersion\""),
        ] {
            let line = cap.replace(from, to);
            // An escape in a payload's data is decoded (since the JSON-payload fast path);
            // anywhere else the scanner gives up.
            if from == "0.082561" {
                assert_eq!(cap_view(&capture(&line, true).unwrap()), want, "{line}");
            } else {
                assert!(
                    capture(&line, true).is_none() || !line.contains('\\'),
                    "{line}"
                );
            }
            assert!(check_capture(&line).is_ok());
            assert_eq!(
                cap_view(&parse_capture_line_with(&line, CaptureFormat::Realtime, true).unwrap()),
                want,
                "{line}"
            );
        }
        // Reordered keys and whitespace stay on the fast path.
        let reordered = r#" { "eventVersion" : "0" , "eventMetadata":{"inferenceTime":"2024-01-01T00:00:00Z","inferenceId":"de4431fa-3c80-4b06-b7e9-671c45376d5d","eventId":"47526757-130f-4f52-981c-e1ff0e4ae394"},"captureData":{"endpointOutput":{"encoding":"CSV","data":"0.082561","mode":"OUTPUT","observedContentType":"text/csv; charset=utf-8"},"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"64,61071.69,3","encoding":"CSV"}}}  "#;
        assert_eq!(cap_view(&capture(reordered, true).unwrap()), want);
        // Duplicate known fields, other value types and batch rows go to serde.
        for line in [
            cap.replace("\"eventVersion\":\"0\"", "\"eventMetadata\":{}"),
            cap.replace("\"0.082561\"", "0.082561"),
            cap.replace(
                "\"inferenceTime\":\"2024-01-01T00:00:00Z\"",
                "\"inferenceTime\":null",
            ),
            r#"{"prediction":0.4,"SageMakerInferenceId":"x1","SageMakerInferenceTime":"t"}"#.into(),
        ] {
            assert!(capture(&line, true).is_none(), "{line}");
            assert!(check_capture(&line).is_ok(), "{line}");
        }
        // With want_input = false, endpointInput is not a field: a duplicate is no error.
        let dup_input = cap.replace(
            "\"endpointOutput\"",
            "\"endpointInput\":{\"data\":\"x\"},\"endpointOutput\"",
        );
        assert!(capture(&dup_input, false).is_some());
        assert!(capture(&dup_input, true).is_none());
        assert!(check_capture(&dup_input).unwrap());
        // Nesting deeper than MAX_DEPTH in a skipped value falls back.
        let deep = format!(
            "{{\"x\":{}{},{}}}",
            "[".repeat(MAX_DEPTH as usize + 1),
            "]".repeat(MAX_DEPTH as usize + 1),
            &gt[1..gt.len() - 1]
        );
        assert!(ground_truth(&deep).is_none());
        assert!(!check_ground_truth(&deep).unwrap());
        assert!(parse_ground_truth_line(&deep).is_ok());
    }

    /// The generated cases exercise both sides: records the scanner answers, records it leaves
    /// to serde, and lines serde rejects.
    #[test]
    fn generator_covers_fast_path_fallback_and_errors() {
        let (mut fast, mut fallback_ok, mut errors, mut gt_fast, mut gt_other) = (0, 0, 0, 0, 0);
        let mut rng = SplitMix64(99);
        for i in 0..4000u64 {
            let knobs: [u64; 6] = std::array::from_fn(|_| match rng.next_u64() % 5 {
                0..=2 => 0,
                3 => 20,
                _ => rng.next_u64() % 256,
            });
            let (keep, other) = (128 + rng.next_u64() % 129, rng.next_u64() % 2 * 30);
            let v = capture_value(&mut rng, keep, other);
            let line = render(&v, i, knobs);
            let hit = check_capture(&line).unwrap();
            match (hit, serde::capture(&line, CaptureFormat::Realtime, true)) {
                (true, _) => fast += 1,
                (false, Ok(_)) => fallback_ok += 1,
                (false, Err(_)) => errors += 1,
            }
            let v = ground_truth_value(&mut rng, keep, other);
            let line = render(&v, i, knobs);
            if check_ground_truth(&line).unwrap() {
                gt_fast += 1;
            } else {
                gt_other += 1;
            }
        }
        assert!(
            fast > 400 && fallback_ok > 400 && errors > 400,
            "{fast} {fallback_ok} {errors}"
        );
        assert!(gt_fast > 400 && gt_other > 400, "{gt_fast} {gt_other}");
    }
}
