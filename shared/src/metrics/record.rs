//! Parsing of data-capture, batch-transform and ground-truth records (one JSON object or CSV row
//! per line), borrowing from the line wherever the JSON has no escapes.

use super::config::CaptureFormat;
use super::util::{JsonPath, csv_field, split_csv};
use base64::Engine as _;
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

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

/// A string borrowed from the input when it has no JSON escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<BStr<'de>, E> {
                Ok(BStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<BStr<'de>, E> {
                Ok(BStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<BStr<'de>, E> {
                Ok(BStr(Cow::Owned(v)))
            }
            // Ids and labels written as numbers are accepted as their text.
            fn visit_u64<E>(self, v: u64) -> Result<BStr<'de>, E> {
                Ok(BStr(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<BStr<'de>, E> {
                Ok(BStr(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<BStr<'de>, E> {
                Ok(BStr(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(rename = "observedContentType", borrow, default)]
    content_type: Option<BStr<'a>>,
    #[serde(borrow, default)]
    data: Option<BStr<'a>>,
    #[serde(borrow, default)]
    encoding: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct RawCaptureData<'a> {
    #[serde(rename = "endpointInput", borrow, default)]
    input: Option<RawPayload<'a>>,
    #[serde(rename = "endpointOutput", borrow, default)]
    output: Option<RawPayload<'a>>,
}

/// Capture data when the input payload is not needed (model quality only): skipped unparsed.
#[derive(Deserialize)]
struct RawCaptureDataNoInput<'a> {
    #[serde(rename = "endpointOutput", borrow, default)]
    output: Option<RawPayload<'a>>,
}

#[derive(Deserialize)]
struct RawMetadata<'a> {
    #[serde(rename = "eventId", borrow, default)]
    event_id: Option<BStr<'a>>,
    #[serde(rename = "inferenceId", borrow, default)]
    inference_id: Option<BStr<'a>>,
    #[serde(rename = "inferenceTime", borrow, default)]
    inference_time: Option<BStr<'a>>,
}

/// A capture line; `D` is what is read of `captureData` ([`RawCaptureData`], or
/// [`RawCaptureDataNoInput`] to skip the input).
#[derive(Deserialize)]
struct RawCapture<'a, D> {
    #[serde(rename = "captureData", default = "Option::default")]
    capture_data: Option<D>,
    #[serde(rename = "eventMetadata", borrow, default)]
    event_metadata: Option<RawMetadata<'a>>,
    #[serde(rename = "SageMakerInferenceId", borrow, default)]
    batch_id: Option<BStr<'a>>,
    #[serde(rename = "SageMakerInferenceTime", borrow, default)]
    batch_time: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct RawGtData<'a> {
    #[serde(borrow, default)]
    data: Option<BStr<'a>>,
    #[serde(borrow, default)]
    encoding: Option<BStr<'a>>,
}

#[derive(Deserialize)]
struct RawGroundTruth<'a> {
    #[serde(rename = "groundTruthData", borrow, default)]
    data: Option<RawGtData<'a>>,
    #[serde(rename = "eventMetadata", borrow, default)]
    event_metadata: Option<RawMetadata<'a>>,
}

/// One encoded payload (`endpointInput`, `endpointOutput` or `groundTruthData`).
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    pub data: Cow<'a, str>,
    pub encoding: Option<Cow<'a, str>>,
    pub content_type: Option<Cow<'a, str>>,
}

impl<'a> Payload<'a> {
    fn from_raw(p: RawPayload<'a>) -> Option<Payload<'a>> {
        Some(Payload {
            data: p.data?.0,
            encoding: p.encoding.map(|b| b.0),
            content_type: p.content_type.map(|b| b.0),
        })
    }

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
                super::util::json_scalar_text(found)
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

/// Parses one capture line in the given layout.
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
    match format {
        CaptureFormat::BatchCsv => parse_batch_csv(line),
        CaptureFormat::Realtime | CaptureFormat::BatchJson => {
            match super::scan::capture(line, want_input) {
                Some(r) => Ok(r),
                None => parse_capture_json_serde(line, format, want_input),
            }
        }
    }
}

/// The serde path for JSON capture lines: everything the scanner gives up on, with serde's
/// errors. The scanner's results equal this function's wherever it does not give up.
pub(crate) fn parse_capture_json_serde(
    line: &str,
    format: CaptureFormat,
    want_input: bool,
) -> Result<CaptureRecord<'_>, RecordError> {
    let raw: RawCapture<'_, RawCaptureData<'_>> = if want_input {
        serde_json::from_str(line).map_err(|e| RecordError::Json(e.to_string()))?
    } else {
        let r: RawCapture<'_, RawCaptureDataNoInput<'_>> =
            serde_json::from_str(line).map_err(|e| RecordError::Json(e.to_string()))?;
        RawCapture {
            capture_data: r.capture_data.map(|c| RawCaptureData {
                input: None,
                output: c.output,
            }),
            event_metadata: r.event_metadata,
            batch_id: r.batch_id,
            batch_time: r.batch_time,
        }
    };
    if raw.capture_data.is_none() && (raw.batch_id.is_some() || format == CaptureFormat::BatchJson)
    {
        // A batch-transform JSON row: the row itself is the output.
        return Ok(CaptureRecord {
            event_id: None,
            inference_id: raw.batch_id.map(|b| b.0),
            inference_time: raw.batch_time.map(|b| b.0),
            input: None,
            output: Some(Payload {
                data: Cow::Borrowed(line),
                encoding: Some(Cow::Borrowed("JSON")),
                content_type: None,
            }),
        });
    }
    let cd = raw
        .capture_data
        .ok_or(RecordError::Missing("captureData"))?;
    let meta = raw.event_metadata;
    let (event_id, inference_id, inference_time) = match meta {
        Some(m) => (
            m.event_id.map(|b| b.0),
            m.inference_id.map(|b| b.0),
            m.inference_time.map(|b| b.0),
        ),
        None => (None, None, None),
    };
    Ok(CaptureRecord {
        event_id,
        inference_id,
        inference_time,
        input: cd.input.and_then(Payload::from_raw),
        output: cd.output.and_then(Payload::from_raw),
    })
}

/// Batch-transform CSV with `GenerateInferenceId`: `<output columns...>,<id>,<time>`.
fn parse_batch_csv(line: &str) -> Result<CaptureRecord<'_>, RecordError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (rest, time) = line
        .rsplit_once(',')
        .ok_or(RecordError::Missing("SageMakerInferenceTime column"))?;
    let (output, id) = rest
        .rsplit_once(',')
        .ok_or(RecordError::Missing("SageMakerInferenceId column"))?;
    if id.is_empty() {
        return Err(RecordError::Missing("SageMakerInferenceId column"));
    }
    Ok(CaptureRecord {
        event_id: None,
        inference_id: Some(Cow::Borrowed(id.trim_matches('"'))),
        inference_time: Some(Cow::Borrowed(time.trim_matches('"'))),
        input: None,
        output: Some(Payload {
            data: Cow::Borrowed(output),
            encoding: Some(Cow::Borrowed("CSV")),
            content_type: None,
        }),
    })
}

/// A parsed ground-truth line.
#[derive(Debug, Clone)]
pub struct GroundTruthRecord<'a> {
    pub event_id: Cow<'a, str>,
    pub data: Payload<'a>,
}

pub fn parse_ground_truth_line(line: &str) -> Result<GroundTruthRecord<'_>, RecordError> {
    match super::scan::ground_truth(line) {
        Some(r) => Ok(r),
        None => parse_ground_truth_serde(line),
    }
}

/// The serde path for ground-truth lines (see [`parse_capture_json_serde`]).
pub(crate) fn parse_ground_truth_serde(line: &str) -> Result<GroundTruthRecord<'_>, RecordError> {
    let raw: RawGroundTruth<'_> =
        serde_json::from_str(line).map_err(|e| RecordError::Json(e.to_string()))?;
    let meta = raw
        .event_metadata
        .ok_or(RecordError::Missing("eventMetadata"))?;
    let event_id = meta
        .event_id
        .map(|b| b.0)
        .filter(|s| !s.is_empty())
        .ok_or(RecordError::Missing("eventMetadata.eventId"))?;
    let d = raw.data.ok_or(RecordError::Missing("groundTruthData"))?;
    let data = d
        .data
        .ok_or(RecordError::Missing("groundTruthData.data"))?
        .0;
    Ok(GroundTruthRecord {
        event_id,
        data: Payload {
            data,
            encoding: d.encoding.map(|b| b.0),
            content_type: None,
        },
    })
}

/// Parses a finite float from text.
pub fn finite_number(s: &str) -> Result<f64, RecordError> {
    match super::util::parse_f64(s) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: &str = r#"{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"132,10,182.9","encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0.0363977","encoding":"CSV"}},"eventMetadata":{"eventId":"f04a8538","inferenceId":"c7f0","inferenceTime":"2022-04-18T00:21:48Z"},"eventVersion":"0"}"#;

    #[test]
    fn parses_realtime_capture_borrowing() {
        let r = parse_capture_line(CAP, CaptureFormat::Realtime).unwrap();
        assert_eq!(r.join_key(), Some("c7f0"));
        assert!(matches!(r.event_id, Some(Cow::Borrowed("f04a8538"))));
        let out = r.output.as_ref().unwrap();
        assert!(matches!(out.data, Cow::Borrowed(_)));
        let d = out.decode().unwrap();
        assert_eq!(
            finite_number(&d.text(&Attr::Whole).unwrap()).unwrap(),
            0.0363977
        );
        let inp_p = r.input.unwrap();
        let inp = inp_p.decode().unwrap();
        assert_eq!(inp.text(&Attr::Index(2)).unwrap(), "182.9");
    }

    #[test]
    fn base64_json_payload() {
        let data =
            base64::engine::general_purpose::STANDARD.encode(br#"{"score":0.25,"label":"1"}"#);
        let line = format!(
            r#"{{"captureData":{{"endpointOutput":{{"observedContentType":"application/json","data":"{data}","encoding":"BASE64"}}}},"eventMetadata":{{"eventId":"e1"}}}}"#
        );
        let r = parse_capture_line(&line, CaptureFormat::Realtime).unwrap();
        assert_eq!(r.join_key(), Some("e1"));
        let out_p = r.output.unwrap();
        let d = out_p.decode().unwrap();
        assert_eq!(d.text(&Attr::parse(Some("score"))).unwrap(), "0.25");
        assert_eq!(d.text(&Attr::parse(Some("label"))).unwrap(), "1");
    }

    #[test]
    fn batch_forms() {
        let r = parse_capture_line("0.9,1,abc-id,2024-01-01T00:00:00Z", CaptureFormat::BatchCsv)
            .unwrap();
        assert_eq!(r.join_key(), Some("abc-id"));
        assert_eq!(
            r.output
                .unwrap()
                .decode()
                .unwrap()
                .text(&Attr::Index(1))
                .unwrap(),
            "1"
        );
        let r = parse_capture_line(r#"{"score":0.4,"SageMakerInferenceId":"x1","SageMakerInferenceTime":"2024-01-01T00:00:00Z"}"#, CaptureFormat::Realtime).unwrap();
        assert_eq!(r.join_key(), Some("x1"));
        assert_eq!(
            r.output
                .unwrap()
                .decode()
                .unwrap()
                .text(&Attr::parse(Some("score")))
                .unwrap(),
            "0.4"
        );
    }

    #[test]
    fn ground_truth_and_errors() {
        let g = parse_ground_truth_line(r#"{"groundTruthData":{"data":"1","encoding":"CSV"},"eventMetadata":{"eventId":"id-1"},"eventVersion":"0"}"#).unwrap();
        assert_eq!(g.event_id, "id-1");
        assert_eq!(g.data.decode().unwrap().text(&Attr::Whole).unwrap(), "1");
        assert!(parse_ground_truth_line(r#"{"groundTruthData":{"data":"1"}}"#).is_err());
        assert!(parse_ground_truth_line("{\"groundTruthData\":").is_err());
        assert!(parse_capture_line("[1,2]", CaptureFormat::Realtime).is_err());
        assert!(parse_capture_line("", CaptureFormat::Realtime).is_err());
        assert_eq!(finite_number("NaN"), Err(RecordError::NonFinite));
        assert!(finite_number("abc").is_err());
        let bad = r#"{"captureData":{"endpointOutput":{"data":"!!!","encoding":"BASE64"}}}"#;
        assert_eq!(
            parse_capture_line(bad, CaptureFormat::Realtime)
                .unwrap()
                .output
                .unwrap()
                .decode()
                .unwrap_err(),
            RecordError::Base64
        );
    }
}
