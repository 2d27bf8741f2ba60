//! The ordered walk over the probes' contributions: one claim bit per label slot, the first
//! capture record of an id (by `(source name, line)`) wins its label, the winners go into the
//! model-quality state in that order — as the single pass evaluates them.
//!
//! An [`Applier`] can run while the probes still read: probes hand over the contributions of
//! each finished source ([`Engine::take_contributions`](super::super::Engine::take_contributions)),
//! and when sources arrive in name order (inputs ranked by name, taken in turn by the threads,
//! reordered by rank) the walk overlaps the reading. A source that arrives out of name order
//! makes the applier start over at the end, over every source in order — so by default it keeps
//! every source's contributions; one told that they come in name order
//! ([`Applier::in_name_order`]) drops each source's once walked (their memory goes back to the
//! probes' next sources instead of fresh pages).

use super::super::ingest::{LabelRef, Pred, apply};
use super::super::join::{GroundTruthStore, GtLabel, unpack_label};
use super::super::result::{
    Counts, EngineError, EngineState, ErrorSample, keep_sample, sort_samples,
};
use super::probe::{
    Contributions, Extra, KIND_NEGATIVE, KIND_POSITIVE, KIND_VALUE, MASK_SHIFT, SLOT_SHIFT,
    Segment, SharedLabels,
};
use crate::metrics::config::MonitorConfig;
use crate::metrics::quality::QualityState;

/// The walk's state: claims, the join's counts and samples, the model-quality state.
pub struct Applier {
    claimed: Vec<u64>,
    quality: Option<QualityState>,
    counts: Counts,
    samples: Vec<ErrorSample>,
    max_samples: usize,
    last_source: Option<String>,
    /// Whether every source so far came in name order (else the walk is redone at the end).
    pub(super) in_order: bool,
    /// The sources walked (kept for a walk over all of them in order).
    pub(super) kept: Vec<Segment>,
    /// Whether walked sources are kept (false: [`Applier::in_name_order`]).
    keep: bool,
    /// A source that came after a later-named one although the sources were to come in name
    /// order (the job fails: [`Engine::absorb_applied`](super::super::Engine::absorb_applied)).
    pub(super) late: Option<String>,
}

impl Applier {
    pub(super) fn new(cfg: &MonitorConfig) -> Applier {
        Applier {
            claimed: Vec::new(),
            quality: EngineState::new(cfg).quality,
            counts: Counts::default(),
            samples: Vec::new(),
            max_samples: cfg.max_error_samples,
            last_source: None,
            in_order: true,
            kept: Vec::new(),
            keep: true,
            late: None,
        }
    }

    /// This applier for sources that reach it in name order (the caller ranks them by name and
    /// hands them over in rank order): each source's contributions are dropped once walked,
    /// rather than kept for a walk over all of them again. A source that still comes after a
    /// later-named one is not walked and fails the job at
    /// [`Engine::absorb_applied`](super::super::Engine::absorb_applied).
    pub fn in_name_order(mut self) -> Applier {
        self.keep = false;
        self
    }

    /// Walks the sources of `c` now if they continue the name order so far (else at the end).
    pub fn push(&mut self, labels: &SharedLabels, c: Contributions) {
        for seg in c.0 {
            let late = self
                .last_source
                .as_deref()
                .is_some_and(|l| seg.source.as_str() < l);
            if late && !self.keep {
                if self.late.is_none() {
                    self.late = Some(format!(
                        "capture source {} reached the walk after {} (the sources were to come in name order)",
                        seg.source,
                        self.last_source.as_deref().unwrap_or_default()
                    ));
                }
                continue;
            }
            self.in_order &= !late;
            if self.in_order {
                self.apply(&labels.0, &seg);
                if self.last_source.as_deref() != Some(seg.source.as_str()) {
                    self.last_source = Some(seg.source.clone());
                }
            }
            if self.keep {
                self.kept.push(seg);
            }
        }
    }

    /// Walks contributions as they are handed over with their source's rank in name order
    /// (`(rank, contributions)`, ranks 0, 1, 2, …): each as soon as every lower rank has been
    /// walked; ranks never handed over are skipped at the end, where the rest is walked.
    pub fn walk_ranked(
        &mut self,
        labels: &SharedLabels,
        handed: impl IntoIterator<Item = (usize, Contributions)>,
    ) {
        let mut waiting: std::collections::BTreeMap<usize, Vec<Contributions>> =
            std::collections::BTreeMap::new();
        let mut want = 0usize;
        for (rank, c) in handed {
            if rank < want {
                // A rank handed over twice: its turn has passed.
                self.push(labels, c);
                continue;
            }
            waiting.entry(rank).or_default().push(c);
            while let Some(cs) = waiting.remove(&want) {
                for c in cs {
                    self.push(labels, c);
                }
                want += 1;
            }
        }
        for c in waiting.into_values().flatten() {
            self.push(labels, c);
        }
    }

    /// Walks one source's contributions.
    pub(super) fn apply(&mut self, store: &GroundTruthStore, seg: &Segment) {
        let words = store.slots().div_ceil(64);
        if self.claimed.len() < words {
            self.claimed.resize(words, 0);
        }
        let max = self.max_samples;
        let counts = &mut self.counts;
        for c in &seg.contribs {
            let Some(label) = unpack_label(c.label, store) else {
                counts.duplicate_capture_ids += 1;
                continue;
            };
            let slot = (c.meta >> SLOT_SHIFT) as usize;
            let Some(word) = self.claimed.get_mut(slot / 64) else {
                // A slot outside the table: not from this table's probes.
                counts.unmatched_predictions += 1;
                continue;
            };
            let bit = 1u64 << (slot % 64);
            if *word & bit != 0 {
                counts.duplicate_capture_ids += 1;
                continue;
            }
            *word |= bit;
            counts.matched += 1;
            let actuals;
            let label = match label {
                GtLabel::Invalid => {
                    counts.invalid_labels += 1;
                    continue;
                }
                GtLabel::Num(y) => LabelRef::Num(y),
                GtLabel::Class(i) => LabelRef::Class(store.class(i)),
                GtLabel::Series(off, len) => {
                    actuals = store.actuals(off, len);
                    LabelRef::Series(&actuals)
                }
            };
            let mask = ((c.meta >> MASK_SHIFT) & 0xFF) as u8;
            let local;
            let (pred, line) = match c.meta & 3 {
                KIND_NEGATIVE | KIND_POSITIVE => {
                    local = Pred::Binary(f64::from_bits(c.value), c.meta & 3 == KIND_POSITIVE);
                    (&local, None)
                }
                KIND_VALUE => {
                    local = Pred::Regression(f64::from_bits(c.value));
                    (&local, None)
                }
                _ => match seg.extras.get(c.value as usize) {
                    Some(Extra { line, pred: Ok(p) }) => (p, Some(*line)),
                    Some(Extra {
                        line,
                        pred: Err(msg),
                    }) => {
                        counts.invalid_predictions += 1;
                        keep_sample(&mut self.samples, max, &seg.source, *line, || msg.clone());
                        continue;
                    }
                    None => {
                        counts.invalid_predictions += 1;
                        continue;
                    }
                },
            };
            let ok = self
                .quality
                .as_mut()
                .is_some_and(|q| apply(q, pred, label, mask));
            if ok {
                counts.evaluated += 1;
            } else {
                counts.invalid_labels += 1;
                // Binary and regression labels are numbers, which always fit: only class and
                // forecast records (with their line) get here.
                if let Some(line) = line {
                    keep_sample(&mut self.samples, max, &seg.source, line, || {
                        "label or prediction outside the class limit".into()
                    });
                }
            }
        }
    }

    /// Adds the walk's outcome to the job's state and marks the won labels matched.
    pub(super) fn finish(
        self,
        store: &mut GroundTruthStore,
        state: &mut EngineState,
    ) -> Result<(), EngineError> {
        for (w, bits) in self.claimed.iter().enumerate() {
            let mut b = *bits;
            while b != 0 {
                store.mark_matched(w * 64 + b.trailing_zeros() as usize);
                b &= b - 1;
            }
        }
        // A job whose engine evaluated nothing itself takes the walk's state as it is (merging
        // into an empty state could still differ in the last bit of a float sum).
        let fresh = state.counts.matched == 0;
        state.counts.merge(&self.counts);
        state.error_samples.extend(self.samples);
        sort_samples(&mut state.error_samples);
        state.error_samples.truncate(self.max_samples);
        match (&mut state.quality, self.quality) {
            (q, Some(b)) if fresh => *q = Some(b),
            (Some(a), Some(b)) => a.merge(&b).map_err(EngineError::Merge)?,
            (q, b) => {
                if q.is_none() {
                    *q = b;
                }
            }
        }
        Ok(())
    }
}
