//! Every core with one label table: the broadcast join.
//!
//! 1. **Labels** ([`labels`]): ground-truth sources are read on several threads by label
//!    collectors ([`Engine::label_collector`]), which parse and check each label and keep it per
//!    source, packed (24 bytes for a UUID-keyed number); the job's engine then stores them in
//!    source-name order into its one table ([`Engine::absorb_labels`]): the same table, the same
//!    duplicate counts (the last label of an id wins) and the same limit
//!    ([`Engine::with_ground_truth_limit`]) as the single pass.
//! 2. **Sharing**: [`Engine::share_labels`] moves that table behind an `Arc`, read-only.
//! 3. **Capture** ([`probe`]): capture sources are read on several threads by probes
//!    ([`Engine::probing`]), each joining against the shared table. A probe counts and
//!    accumulates everything that does not depend on which record of an id wins (lines, window,
//!    unmatched predictions, data quality, prediction drift, estimation: mergeable states) and,
//!    per matched record, keeps one 24-byte contribution (the label's slot, the packed label, the
//!    score or predicted value, the subsample mask) in its source's list.
//! 4. **Apply** ([`apply`], [`Engine::absorb_probes`]): the contributions are walked in
//!    `(source name, line)` order — the order of the single pass — with one claim bit per slot:
//!    the first capture record of an id wins, later ones count as duplicates; the winners go
//!    into the model-quality state in that order, so sums, confusion matrices and AUC are bit for
//!    bit the single pass's (`shared/tests/metrics_broadcast.rs`). The walk runs on the job's
//!    thread while the probes read (each finished source is handed over), and the job's engine
//!    then takes the table back and merges the probes' states.
//!
//! The walk costs about a hundred instructions per matched record (the claim bits of 1M labels
//! are 256 KiB, in cache), overlapped with the reading; the insert of the labels and the
//! finish (the AUC's sort) stay on one core. Each source must be fed whole to one collector or
//! probe (sources are the unit of work: objects, files).
//!
//! The partial states of the scale-out mode ([`super::partial`]) are a different, exchangeable
//! form (per-id rows that merge in any order); this module is for threads of one process.

mod apply;
mod labels;
mod probe;

pub use apply::Applier;
pub use labels::CollectedLabels;
pub(super) use labels::LabelSegment;
pub(super) use probe::Probe;
pub use probe::{Contributions, ProbeState, SharedLabels};

use super::parallel::{Input, feed_broadcast};
use super::{Engine, EngineError};
use crate::metrics::config::{MonitorConfig, ProblemType};

/// Runs arbitrary bytes through the broadcast join on 2–4 threads and through the single pass,
/// and panics when they differ (the fuzz target `broadcast_join` and its proptest twin in
/// `shared/tests/metrics_broadcast.rs`). Byte 0 picks the problem type and the threads; the
/// rest is ground truth, a 0 byte, then capture; each side is cut into sources at 0x01 bytes
/// (named so that name order is not input order). Returns the single pass's counts.
#[doc(hidden)]
pub fn exercise_broadcast(data: &[u8]) -> super::Counts {
    let head = data.first().copied().unwrap_or(0);
    let problem = match head % 5 {
        0 => None,
        1 => Some(ProblemType::Regression),
        2 => Some(ProblemType::BinaryClassification),
        3 => Some(ProblemType::MulticlassClassification),
        _ => Some(ProblemType::Forecast),
    };
    let threads = 2 + usize::from((head >> 3) % 3);
    let rest = data.get(1..).unwrap_or(&[]);
    let (gt, capture) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let sources = |side: &str, bytes: &[u8]| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = bytes
            .split(|b| *b == 1)
            .enumerate()
            .map(|(i, s)| {
                (
                    format!("{side}/{:02}", (i * 7) % 10 + i / 10 * 10),
                    s.to_vec(),
                )
            })
            .collect();
        // Name order, as the single pass reads them.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let (gts, caps) = (sources("gt", gt), sources("cap", capture));
    let cfg = MonitorConfig {
        problem_type: problem,
        data_quality: true,
        inference_attribute: (head & 0x80 != 0).then(|| "predictions[0].mean".into()),
        max_error_samples: 5,
        ..MonitorConfig::default()
    };
    let feed = |e: &mut Engine, input: &Input<&(String, Vec<u8>)>| -> Result<(), EngineError> {
        match input {
            Input::GroundTruth((name, bytes)) => e.feed_ground_truth(name, &bytes[..]).map(drop),
            Input::Capture((name, bytes)) => e.feed_capture(name, &bytes[..], |_| {}).map(drop),
        }
    };
    let gts = if problem.is_some() { gts } else { Vec::new() };
    let mut single = Engine::new(cfg.clone());
    for s in &gts {
        feed(&mut single, &Input::GroundTruth(s)).expect("reading from memory cannot fail");
    }
    for s in &caps {
        feed(&mut single, &Input::Capture(s)).expect("reading from memory cannot fail");
    }
    let one = single
        .finish()
        .expect("no constraints, so finishing cannot fail");
    // The threads get the sources in reverse order: they rank them by name.
    let (rgts, rcaps): (Vec<_>, Vec<_>) = (
        gts.iter().rev().cloned().collect(),
        caps.iter().rev().cloned().collect(),
    );
    let mut e = Engine::new(cfg.clone());
    feed_broadcast(
        &mut e,
        threads,
        || Engine::new(cfg.clone()),
        &rgts,
        &rcaps,
        |s| s.0.clone(),
        feed,
        |e| e,
    )
    .expect("reading from memory cannot fail");
    let many = e
        .finish()
        .expect("no constraints, so finishing cannot fail");
    assert_eq!(one.counts, many.counts);
    assert_eq!(one.error_samples, many.error_samples);
    let strip = |v: Option<serde_json::Value>| {
        v.map(|mut v| {
            if let Some(d) = v.get_mut("dataset").and_then(|d| d.as_object_mut()) {
                d.remove("evaluation_time");
            }
            v
        })
    };
    assert_eq!(
        strip(one.model_quality_statistics_json()),
        strip(many.model_quality_statistics_json())
    );
    one.counts
}
