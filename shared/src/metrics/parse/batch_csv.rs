//! Batch-transform CSV output rows (`GenerateInferenceId`): the output columns, then the
//! generated id and time. One reader: no faster tier applies.

use super::record::{CaptureRecord, Payload, RecordError};
use std::borrow::Cow;

/// Batch-transform CSV with `GenerateInferenceId`: `<output columns...>,<id>,<time>`.
pub(crate) fn record(line: &str) -> Result<CaptureRecord<'_>, RecordError> {
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
