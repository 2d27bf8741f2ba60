//! Capture joined on several threads against one shared label table: the probes
//! ([`Engine::probing`]), their contributions, and the ordered walk that applies them
//! ([`Engine::absorb_probes`]).
//!
//! A probe looks each capture record's key up in the shared table (read-only; binary and
//! regression records with UUID keys behind a prefetch of their slot, as the single pass does).
//! No label: one unmatched prediction, counted at once. A label: one [`Contribution`] in the
//! source's list — the slot, the packed label as the table held it, the score or predicted value
//! and the subsample mask in 24 bytes; a class, forecast or unreadable prediction (its error
//! message) goes to a side list with its line, for the error sample. The prediction is read only
//! when the label is usable, as the single pass reads it only then.

use super::super::ingest::{CAPTURE_PIPELINE, Ingest, Pred};
use super::super::join::{GroundTruthStore, GtLabel, UKey, unpack_label, uuid_key};
use super::super::result::EngineState;
use super::super::{Engine, EngineError};
use super::apply::Applier;
use crate::metrics::parse::record::CaptureRecord;
use crate::metrics::quality::{QualityState, subsample_mask};
use std::collections::VecDeque;
use std::sync::Arc;

/// A job's label table, shared read-only by probes ([`Engine::share_labels`]).
pub struct SharedLabels(pub(in crate::metrics::engine) GroundTruthStore);

impl SharedLabels {
    /// Labels held.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

/// The kinds of [`Contribution`] (low two bits of `meta`).
pub(super) const KIND_NEGATIVE: u64 = 0;
pub(super) const KIND_POSITIVE: u64 = 1;
/// A regression value, or no prediction (the label is invalid or already matched).
pub(super) const KIND_VALUE: u64 = 2;
/// `value` indexes the segment's `extras`.
pub(super) const KIND_EXTRA: u64 = 3;
pub(super) const MASK_SHIFT: u32 = 2;
pub(super) const SLOT_SHIFT: u32 = 10;

/// A matched capture record: `meta` = slot << 10 | subsample mask << 2 | kind; `label` the
/// packed label the table held; `value` the score's or predicted value's bits (binary /
/// regression) or an index into the segment's extras.
#[derive(Debug, Clone, Copy)]
pub(super) struct Contribution {
    pub(super) meta: u64,
    pub(super) label: u64,
    pub(super) value: u64,
}

/// A prediction that does not fit a [`Contribution`]: a class, a forecast, or the error message
/// of an unreadable one; with its line (for the error sample).
pub(super) struct Extra {
    pub(super) line: u64,
    pub(super) pred: Result<Pred, String>,
}

/// One source's contributions, in line order.
pub(super) struct Segment {
    pub(super) source: String,
    pub(super) contribs: Vec<Contribution>,
    pub(super) extras: Vec<Extra>,
}

/// Contributions taken from a probe ([`Engine::take_contributions`]), for [`Applier::push`].
#[derive(Default)]
pub struct Contributions(pub(super) Vec<Segment>);

/// A record waiting for its prefetched slot.
struct Pending {
    key: UKey,
    kind_mask: u64,
    value: u64,
}

/// A probe's table and what it found so far (in the engine's ingest).
pub(in crate::metrics::engine) struct Probe {
    labels: Arc<SharedLabels>,
    segments: Vec<Segment>,
    pending: VecDeque<Pending>,
}

impl Probe {
    /// The segment of `source` (a new one when the source changes).
    fn segment(&mut self, source: &str) -> &mut Segment {
        if self.segments.last().is_none_or(|s| s.source != source) {
            self.segments.push(Segment {
                source: source.to_owned(),
                contribs: Vec::new(),
                extras: Vec::new(),
            });
        }
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }
}

/// A probe's state and contributions ([`Engine::into_probe`]), for [`Engine::absorb_probes`].
pub struct ProbeState {
    state: EngineState,
    segments: Vec<Segment>,
}

impl ProbeState {
    /// Matched capture records held.
    pub fn contributions(&self) -> usize {
        self.segments.iter().map(|s| s.contribs.len()).sum()
    }
}

impl Ingest {
    /// Probe mode: a capture record in the window with model quality on.
    pub(in crate::metrics::engine) fn probe_capture(
        &mut self,
        rec: &CaptureRecord<'_>,
        source: &str,
        line_no: u64,
        defer: bool,
    ) {
        let Some(key) = rec.join_key() else {
            self.state.counts.malformed_capture += 1;
            self.sample(source, line_no, || {
                "capture record without inferenceId/eventId".into()
            });
            return;
        };
        if defer && self.try_defer_probe(rec, key, source) {
            return;
        }
        // Contributions stay in line order: resolve the queue first.
        self.resolve_probes(source, 0);
        let Some(probe) = self.probe.as_ref() else {
            return;
        };
        let store = &probe.labels.0;
        let Some((slot, label)) = store.find(key) else {
            self.state.counts.unmatched_predictions += 1;
            return;
        };
        let usable =
            matches!(unpack_label(label, store), Some(l) if !matches!(l, GtLabel::Invalid));
        let mask = u64::from(subsample_mask(self.cfg.seed, key)) << MASK_SHIFT;
        let (kind, value, extra) = if usable {
            match self.predict(rec) {
                Ok(Pred::Binary(score, p)) => (u64::from(p), score.to_bits(), None),
                Ok(Pred::Regression(v)) => (KIND_VALUE, v.to_bits(), None),
                Ok(other) => (KIND_EXTRA, 0, Some(Ok(other))),
                Err(e) => (KIND_EXTRA, 0, Some(Err(format!("prediction: {e}")))),
            }
        } else {
            (KIND_VALUE, 0, None)
        };
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        let seg = probe.segment(source);
        let value = match extra {
            Some(pred) => {
                seg.extras.push(Extra {
                    line: line_no,
                    pred,
                });
                (seg.extras.len() - 1) as u64
            }
            None => value,
        };
        seg.contribs.push(Contribution {
            meta: ((slot as u64) << SLOT_SHIFT) | mask | kind,
            label,
            value,
        });
    }

    /// Queues the lookup of a binary / regression record with a canonical UUID key and a
    /// readable prediction behind a prefetch of its slot; false when it needs the general path.
    fn try_defer_probe(&mut self, rec: &CaptureRecord<'_>, key: &str, source: &str) -> bool {
        let binary = match self.state.quality {
            Some(QualityState::Binary(_)) => true,
            Some(QualityState::Regression(_)) => false,
            _ => return false,
        };
        let Some(k) = uuid_key(key) else {
            return false;
        };
        let Some(Ok(d)) = rec.output.as_ref().map(|o| o.decode()) else {
            return false;
        };
        let prediction = if binary {
            self.binary_prediction(&d)
                .map(|(s, p)| (u64::from(p), s.to_bits()))
        } else {
            self.regression_prediction(&d)
                .map(|v| (KIND_VALUE, v.to_bits()))
        };
        let Ok((kind, value)) = prediction else {
            return false;
        };
        let mask = u64::from(subsample_mask(self.cfg.seed, key)) << MASK_SHIFT;
        let Some(probe) = self.probe.as_mut() else {
            return false;
        };
        probe.labels.0.prefetch(k);
        probe.pending.push_back(Pending {
            key: k,
            kind_mask: kind | mask,
            value,
        });
        if probe.pending.len() > CAPTURE_PIPELINE {
            self.resolve_probes(source, CAPTURE_PIPELINE);
        }
        true
    }

    /// Looks queued records up, oldest first, until at most `keep` remain.
    pub(in crate::metrics::engine) fn resolve_probes(&mut self, source: &str, keep: usize) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        while probe.pending.len() > keep {
            let Some(p) = probe.pending.pop_front() else {
                return;
            };
            let Some((slot, label)) = probe.labels.0.find_uuid(p.key) else {
                self.state.counts.unmatched_predictions += 1;
                continue;
            };
            probe.segment(source).contribs.push(Contribution {
                meta: ((slot as u64) << SLOT_SHIFT) | p.kind_mask,
                label,
                value: p.value,
            });
        }
    }
}

impl Engine {
    /// Ends this engine's ground truth and moves its label table behind an `Arc` for probes
    /// ([`Engine::probing`]); give it back with [`Engine::absorb_probes`]. Ground truth fed
    /// afterwards is rejected.
    pub fn share_labels(&mut self) -> Result<Arc<SharedLabels>, EngineError> {
        if self.ingest.partial {
            return Err(EngineError::Merge(
                "a partial engine keeps join rows, not a label table".into(),
            ));
        }
        self.ingest.state.counts.duplicate_ground_truth_ids += self.ingest.gt.flush();
        self.capture_started = true;
        Ok(Arc::new(SharedLabels(std::mem::take(&mut self.ingest.gt))))
    }

    /// This engine as a probe: it joins capture against `labels` (from [`Engine::share_labels`]
    /// of the job's engine, configured the same way) and keeps contributions for
    /// [`Engine::absorb_probes`]. Feed it whole capture sources, no ground truth.
    pub fn probing(mut self, labels: Arc<SharedLabels>) -> Engine {
        self.ingest.probe = Some(Probe {
            labels,
            segments: Vec::new(),
            pending: VecDeque::with_capacity(CAPTURE_PIPELINE + 1),
        });
        self.capture_started = true;
        self
    }

    /// Whether this engine is a probe ([`Engine::probing`]).
    pub fn is_probe(&self) -> bool {
        self.ingest.probe.is_some()
    }

    /// The contributions found since the last call (pending lookups resolved), for an
    /// [`Applier`] that applies them while the probes go on.
    pub fn take_contributions(&mut self) -> Contributions {
        self.ingest.resolve_probes("", 0);
        Contributions(
            self.ingest
                .probe
                .as_mut()
                .map(|p| std::mem::take(&mut p.segments))
                .unwrap_or_default(),
        )
    }

    /// A probe's state and its contributions not yet taken (its share of the table is let go).
    pub fn into_probe(mut self) -> ProbeState {
        let rest = self.take_contributions();
        self.ingest.probe = None;
        ProbeState {
            state: self.into_state(),
            segments: rest.0,
        }
    }

    /// An applier of this engine's job ([`Applier`]).
    pub fn applier(&self) -> Applier {
        Applier::new(&self.ingest.cfg)
    }

    /// Takes the label table back from the probes (each must have been turned into its
    /// [`ProbeState`]), merges their states and applies their contributions in `(source name,
    /// line)` order: the result is the single pass's over the same sources in name order.
    pub fn absorb_probes(
        &mut self,
        labels: Arc<SharedLabels>,
        probes: Vec<ProbeState>,
    ) -> Result<(), EngineError> {
        let applier = self.applier();
        self.absorb_applied(labels, probes, applier)
    }

    /// [`Engine::absorb_probes`] with an applier that already applied contributions taken
    /// while the probes ran ([`Engine::take_contributions`], [`Applier::push`]); the probes'
    /// remaining contributions are applied after them, in name order. Sources that reached the
    /// applier out of name order are all applied again, in order (an applier told they would
    /// come in name order, [`Applier::in_name_order`], fails the job instead).
    pub fn absorb_applied(
        &mut self,
        labels: Arc<SharedLabels>,
        mut probes: Vec<ProbeState>,
        mut applier: Applier,
    ) -> Result<(), EngineError> {
        let mut rest: Vec<Segment> = probes
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.segments))
            .collect();
        rest.sort_by(|a, b| a.source.cmp(&b.source));
        applier.push(&labels, Contributions(rest));
        let store = Arc::try_unwrap(labels).map_err(|_| {
            EngineError::Merge(
                "the label table is still shared: turn every probe into its state first".into(),
            )
        })?;
        self.ingest.gt = store.0;
        if let Some(late) = applier.late.take() {
            return Err(EngineError::Merge(late));
        }
        for p in &probes {
            self.merge_state(&p.state)?;
        }
        if !applier.in_order {
            let mut all = std::mem::take(&mut applier.kept);
            all.sort_by(|a, b| a.source.cmp(&b.source));
            applier = self.applier();
            for seg in &all {
                applier.apply(&self.ingest.gt, seg);
            }
        }
        applier.finish(&mut self.ingest.gt, &mut self.ingest.state)?;
        self.capture_started = true;
        Ok(())
    }
}
