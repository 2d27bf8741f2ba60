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
