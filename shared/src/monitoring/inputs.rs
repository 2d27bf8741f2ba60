//! The objects one window reads, listed from the object store: its capture (real-time files of
//! the window's hours plus those started shortly before; batch transform: the data files its
//! output manifests name) and its ground truth (the hour folders of `[start, end + delay)`).

use chrono::Duration;

use super::error::RunError;
use super::layout;
use super::manifest::parse_manifest;
use super::settings::{CaptureMode, Settings};
use super::window::{Window, WindowRule};
use crate::error::AwsError;
use crate::storage::{ObjectInfo, ObjectStore, S3Uri, is_access_denied, vanished_after_denial};

/// The objects a window reads (serialized: the scale-out mode's `inputs.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inputs {
    pub capture: Vec<ObjectInfo>,
    /// Batch transform: the manifests (the data files are in `capture`).
    pub manifests: Vec<ObjectInfo>,
    pub input_manifests: usize,
    pub ground_truth: Vec<ObjectInfo>,
    /// Batch transform: output manifests that could not be read as manifests, `(uri, reason)`.
    /// They are skipped (the rest of the window is evaluated) and counted as malformed capture
    /// with a sample ([`super::feed::compute`]).
    pub skipped_manifests: Vec<(String, String)>,
}

/// The objects of a listing, without folder markers (keys ending in `/`).
pub fn files(mut v: Vec<ObjectInfo>) -> Vec<ObjectInfo> {
    v.retain(|o| !o.uri.key.ends_with('/'));
    v
}

/// Every object under the prefixes, in key order, each once.
pub async fn list_prefixes(
    store: &dyn ObjectStore,
    prefixes: Vec<S3Uri>,
) -> Result<Vec<ObjectInfo>, AwsError> {
    let mut out = Vec::new();
    for p in prefixes {
        out.extend(files(store.list(&p).await?));
    }
    out.sort_by(|a, b| (&a.uri.bucket, &a.uri.key).cmp(&(&b.uri.bucket, &b.uri.key)));
    out.dedup_by(|a, b| a.uri == b.uri);
    Ok(out)
}

/// The window's ground truth (none without a ground-truth URI).
pub async fn list_ground_truth(
    store: &dyn ObjectStore,
    s: &Settings,
    rule: &WindowRule,
    w: &Window,
) -> Result<Vec<ObjectInfo>, AwsError> {
    let Some(gt) = &s.ground_truth else {
        return Ok(Vec::new());
    };
    let (from, to) = rule.ground_truth_range(w);
    list_prefixes(store, layout::hour_prefixes(&layout::folder(gt), from, to)).await
}

/// The window's capture, with its already listed `ground_truth`. `capture_lookback`: real-time
/// capture files started this long before the window are read too.
pub async fn list_inputs(
    store: &dyn ObjectStore,
    s: &Settings,
    capture_lookback: Duration,
    w: &Window,
    ground_truth: Vec<ObjectInfo>,
) -> Result<Inputs, RunError> {
    let target = s.target();
    let base = layout::capture_base(&s.capture, &target);
    let mut listed = list_prefixes(store, layout::hour_prefixes(&base, w.start, w.end)).await?;
    match s.capture_mode {
        CaptureMode::Realtime => {
            let from = w.start - capture_lookback;
            let mut earlier = Vec::new();
            for h in layout::lookback_hours(w, capture_lookback) {
                let files = list_prefixes(
                    store,
                    vec![base.join(&h.format("%Y/%m/%d/%H/").to_string())],
                )
                .await?;
                earlier.extend(files.into_iter().filter(|o| {
                    layout::capture_file_start(&base, &o.uri).is_none_or(|t| t >= from)
                }));
            }
            earlier.append(&mut listed);
            Ok(Inputs {
                capture: earlier,
                manifests: Vec::new(),
                input_manifests: 0,
                ground_truth,
                skipped_manifests: Vec::new(),
            })
        }
        CaptureMode::BatchTransform => {
            let inputs = list_prefixes(
                store,
                layout::hour_prefixes(&layout::batch_input_base(&s.capture), w.start, w.end),
            )
            .await?;
            let mut data: Vec<S3Uri> = Vec::new();
            let mut skipped_manifests = Vec::new();
            for m in &listed {
                let body = match store.get(&m.uri).await {
                    Ok(b) => b,
                    // Vanished since the listing (404, or 403 without s3:ListBucket).
                    Err(e) if e.is_not_found() => continue,
                    Err(e)
                        if is_access_denied(&e) && vanished_after_denial(store, &m.uri).await =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let text = String::from_utf8_lossy(&body);
                let listed_files = match parse_manifest(&text) {
                    Ok(files) => files,
                    Err(reason) => {
                        tracing::warn!(manifest = %m.uri, reason, "malformed batch capture manifest skipped");
                        skipped_manifests.push((m.uri.to_string(), reason));
                        continue;
                    }
                };
                for f in listed_files {
                    if !data.contains(&f) {
                        data.push(f);
                    }
                }
            }
            // The data files' sizes are not listed; the manifests stand for them in the fingerprint.
            let capture = data
                .into_iter()
                .map(|uri| ObjectInfo {
                    uri,
                    size: 0,
                    last_modified: None,
                })
                .collect();
            Ok(Inputs {
                capture,
                manifests: listed,
                input_manifests: inputs.len(),
                ground_truth,
                skipped_manifests,
            })
        }
    }
}
