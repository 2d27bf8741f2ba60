//! The reference path: capture and ground-truth JSON lines read by serde (borrowing where the
//! JSON has no escapes). Every line the faster tiers give up on ends here, and its records and
//! errors are the ones the faster tiers must reproduce.

use super::record::{CaptureRecord, GroundTruthRecord, Payload, RecordError};
use crate::metrics::config::CaptureFormat;
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// A string borrowed from the input when it has no JSON escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BStr<'a>(pub Cow<'a, str>);

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

/// A payload object's fields as a [`Payload`] (none without `data`).
fn payload(p: RawPayload<'_>) -> Option<Payload<'_>> {
    Some(Payload {
        data: p.data?.0,
        encoding: p.encoding.map(|b| b.0),
        content_type: p.content_type.map(|b| b.0),
    })
}

/// The serde path for JSON capture lines: everything the scanner gives up on, with serde's
/// errors. The scanner's results equal this function's wherever it does not give up.
pub(crate) fn capture(
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
        input: cd.input.and_then(payload),
        output: cd.output.and_then(payload),
    })
}

/// The serde path for ground-truth lines (see [`capture`]).
pub(crate) fn ground_truth(line: &str) -> Result<GroundTruthRecord<'_>, RecordError> {
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
