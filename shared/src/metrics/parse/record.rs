//! The records the parsers produce and how their payloads decode: capture and ground-truth
//! records borrowing from the line, payloads (CSV / JSON / BASE64), attributes and record errors.
//! A leaf: it knows no parser.

use crate::metrics::util::{JsonPath, csv_field, json_scalar_text, parse_f64, split_csv};
use base64::Engine as _;
use std::borrow::Cow;

/// Why a line was skipped. Every variant is a counted skip, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("not a JSON object: {0}")]
    Json(String),
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("invalid BASE64 payload")]
    Base64,
    #[error("payload is not UTF-8")]
    Utf8,
    #[error("payload JSON invalid: {0}")]
    PayloadJson(String),
    #[error("attribute {0} not found in payload")]
    Attribute(String),
    #[error("value {0:?} is not a number")]
    NotANumber(String),
    #[error("value is NaN or infinite")]
    NonFinite,
    #[error("label {0:?} is not one of the classes")]
    InvalidLabel(String),
    #[error("forecast payload invalid: {0}")]
    Forecast(String),
}

/// One encoded payload (`endpointInput`, `endpointOutput` or `groundTruthData`).
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    pub data: Cow<'a, str>,
    pub encoding: Option<Cow<'a, str>>,
    pub content_type: Option<Cow<'a, str>>,
}

impl<'a> Payload<'a> {
    /// Decodes CSV / JSON / BASE64 into a CSV row set or a JSON value.
    /// Without an encoding the content type decides, then the first character.
    pub fn decode(&self) -> Result<Decoded<'_>, RecordError> {
        let enc = self.encoding.as_deref().unwrap_or("");
        if enc.eq_ignore_ascii_case("CSV") {
            return Ok(Decoded::Csv(Cow::Borrowed(&self.data)));
        }
        if enc.eq_ignore_ascii_case("JSON") {
            return parse_json_payload(&self.data).map(Decoded::Json);
        }
        let ct_json = self.content_type.as_deref().is_some_and(|c| {
            c.as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"json"))
        });
        if enc.eq_ignore_ascii_case("BASE64") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(self.data.trim().as_bytes())
                .map_err(|_| RecordError::Base64)?;
            let text = String::from_utf8(bytes).map_err(|_| RecordError::Utf8)?;
            let looks_json = text.trim_start().starts_with(['{', '[']);
            if ct_json || (self.content_type.is_none() && looks_json) {
                return parse_json_payload(&text).map(Decoded::Json);
            }
            return Ok(Decoded::Csv(Cow::Owned(text)));
        }
        let looks_json = self.data.trim_start().starts_with(['{', '[']);
        if ct_json || looks_json {
            parse_json_payload(&self.data).map(Decoded::Json)
        } else {
            Ok(Decoded::Csv(Cow::Borrowed(&self.data)))
        }
    }
}

fn parse_json_payload(s: &str) -> Result<serde_json::Value, RecordError> {
    serde_json::from_str(s).map_err(|e| RecordError::PayloadJson(e.to_string()))
}

/// A decoded payload.
#[derive(Debug, Clone)]
pub enum Decoded<'a> {
    /// One or more CSV rows (newline separated).
    Csv(Cow<'a, str>),
    Json(serde_json::Value),
}

/// Where a value lives inside a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// The whole payload (CSV: column 0).
    Whole,
    /// CSV column index; on JSON arrays, the element.
    Index(usize),
    /// JSON path.
    Path(JsonPath),
}

impl Attr {
    pub fn parse(s: Option<&str>) -> Attr {
        match s.map(str::trim) {
            None | Some("") => Attr::Whole,
            Some(t) => match t.parse::<usize>() {
                Ok(i) => Attr::Index(i),
                Err(_) => Attr::Path(JsonPath::parse(t)),
            },
        }
    }
}

impl Decoded<'_> {
    /// The text of the attribute (first CSV row for CSV payloads).
    pub fn text(&self, attr: &Attr) -> Result<Cow<'_, str>, RecordError> {
        match self {
            Decoded::Csv(s) => {
                let idx = match attr {
                    Attr::Whole => 0,
                    Attr::Index(i) => *i,
                    Attr::Path(p) => return Err(RecordError::Attribute(format!("{p:?} on CSV"))),
                };
                // The usual payload is one row: no row splitting then.
                let row = if s.bytes().any(|c| c == b'\n' || c == b'\r') {
                    s.lines().next().unwrap_or("")
                } else {
                    s
                };
                csv_field(row, idx).ok_or_else(|| RecordError::Attribute(idx.to_string()))
            }
            Decoded::Json(v) => {
                let found = match attr {
                    Attr::Whole => Some(v),
                    Attr::Index(i) => match v {
                        serde_json::Value::Array(a) => a.get(*i),
                        other => JsonPath::parse(&i.to_string()).lookup(other),
                    },
                    Attr::Path(p) => p.lookup(v),
                };
                let found = found.ok_or_else(|| RecordError::Attribute(format!("{attr:?}")))?;
                json_scalar_text(found)
                    .ok_or_else(|| RecordError::Attribute(format!("{attr:?} is not a scalar")))
            }
        }
    }

    /// The attribute as a JSON value (CSV fields become strings).
    pub fn value(&self, attr: &Attr) -> Option<serde_json::Value> {
        match self {
            Decoded::Csv(_) => self
                .text(attr)
                .ok()
                .map(|t| serde_json::Value::String(t.into_owned())),
            Decoded::Json(v) => match attr {
                Attr::Whole => Some(v.clone()),
                Attr::Index(i) => v.get(*i).cloned(),
                Attr::Path(p) => p.lookup(v).cloned(),
            },
        }
    }
}

/// A parsed capture line (real-time capture or a batch-transform output row).
#[derive(Debug, Clone)]
pub struct CaptureRecord<'a> {
    pub event_id: Option<Cow<'a, str>>,
    pub inference_id: Option<Cow<'a, str>>,
    pub inference_time: Option<Cow<'a, str>>,
    pub input: Option<Payload<'a>>,
    pub output: Option<Payload<'a>>,
}

impl<'a> CaptureRecord<'a> {
    /// The join key: `inferenceId` when present and non-empty, else `eventId`.
    pub fn join_key(&self) -> Option<&str> {
        match self.inference_id.as_deref() {
            Some(s) if !s.is_empty() => Some(s),
            _ => self.event_id.as_deref().filter(|s| !s.is_empty()),
        }
    }
}

/// A parsed ground-truth line.
#[derive(Debug, Clone)]
pub struct GroundTruthRecord<'a> {
    pub event_id: Cow<'a, str>,
    pub data: Payload<'a>,
}

/// Parses a finite float from text.
pub fn finite_number(s: &str) -> Result<f64, RecordError> {
    match parse_f64(s) {
        Some(v) if v.is_finite() => Ok(v),
        Some(_) => Err(RecordError::NonFinite),
        None => Err(RecordError::NotANumber(truncate(s, 40))),
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Iterates the CSV rows of a decoded CSV payload as vectors of fields.
pub fn csv_rows(s: &str) -> impl Iterator<Item = Vec<Cow<'_, str>>> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| split_csv(l).collect())
}
