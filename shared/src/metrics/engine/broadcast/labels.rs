//! Labels read on several threads, stored into one table: the collectors
//! ([`Engine::label_collector`]) and their absorption ([`Engine::absorb_labels`]).
//!
//! A collector parses and checks each label as the single pass does (same error samples) and
//! keeps it packed per source in line order; numbers and invalid labels are packed at once (a
//! UUID-keyed one is 24 bytes), class names and forecast actuals wait in a side list until the
//! table interns them. The job's engine inserts the sources in name order, so the last label of
//! an id wins and each replaced one counts in `duplicate_ground_truth_ids`, as in one pass.

use super::super::ingest::{Ingest, LabelValue};
use super::super::join::{GtLabel, PARALLEL_LABELS, UKey, pack_label, packed_class, uuid_key};
use super::super::result::EngineState;
use super::super::{Engine, EngineError};
use crate::metrics::config::MonitorConfig;
use crate::metrics::parse::record::GroundTruthRecord;

/// Bytes of a canonical UUID's text (a UUID key's length for the limit check).
const UUID_KEY_LEN: usize = 36;

/// One source's labels as a collector read them, in line order.
pub(in crate::metrics::engine) struct LabelSegment {
    source: String,
    /// UUID-keyed labels: key and packed label. A packed class label `c` here stands for
    /// `extras[c]` (collectors pack only numbers and invalid labels themselves).
    uuid: Vec<(UKey, u64)>,
    /// Labels of other keys (packed as in `uuid`).
    text: Vec<(Box<str>, u64)>,
    /// Class and series labels with their line (the table interns them).
    extras: Vec<(u64, Option<LabelValue>)>,
}

/// A collector's labels and counts ([`Engine::into_labels`]), for [`Engine::absorb_labels`].
pub struct CollectedLabels {
    segments: Vec<LabelSegment>,
    state: EngineState,
}

impl CollectedLabels {
    /// Labels held.
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| s.uuid.len() + s.text.len())
            .sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ingest {
    /// Collector mode: keeps a parsed label in its source's segment.
    pub(in crate::metrics::engine) fn collect_label(
        &mut self,
        rec: &GroundTruthRecord<'_>,
        source: &str,
        line_no: u64,
    ) {
        let label = match self.label_value(&rec.data) {
            Ok(l) => l,
            Err(e) => {
                self.sample(source, line_no, || format!("label: {e}"));
                LabelValue::Invalid
            }
        };
        let Some(segs) = self.collect.as_mut() else {
            return;
        };
        if segs.last().is_none_or(|s| s.source != source) {
            segs.push(LabelSegment {
                source: source.to_owned(),
                uuid: Vec::new(),
                text: Vec::new(),
                extras: Vec::new(),
            });
        }
        let last = segs.len() - 1;
        let seg = &mut segs[last];
        let packed = match label {
            LabelValue::Num(v) => pack_label(GtLabel::Num(v)),
            LabelValue::Invalid => pack_label(GtLabel::Invalid),
            other => {
                let i = seg.extras.len() as u32;
                seg.extras.push((line_no, Some(other)));
                pack_label(GtLabel::Class(i))
            }
        };
        match uuid_key(&rec.event_id) {
            Some(k) => seg.uuid.push((k, packed)),
            None => seg.text.push((rec.event_id.as_ref().into(), packed)),
        }
    }
}

impl Engine {
    /// This engine as a label collector: it reads ground truth only and keeps its labels (and
    /// its counts and error samples) for one table, [`Engine::absorb_labels`] of the job's
    /// engine. Feed it whole sources (each source to one collector); see [`super`].
    pub fn collecting(mut self) -> Engine {
        self.ingest.collect = Some(Vec::new());
        self
    }

    /// A label collector ([`Engine::collecting`]) of `cfg`.
    pub fn label_collector(cfg: MonitorConfig) -> Engine {
        Engine::new(cfg).collecting()
    }

    /// A collector's labels, counts and samples.
    pub fn into_labels(mut self) -> CollectedLabels {
        let segments = self.ingest.collect.take().unwrap_or_default();
        CollectedLabels {
            segments,
            state: self.into_state(),
        }
    }

    /// Stores collectors' labels in this engine's table, sources in name order, and adds their
    /// counts and samples: as if this engine had read those sources itself, in name order
    /// (with its ground-truth limit, which fails as [`Engine::feed_ground_truth`] would). Uses
    /// up to `threads` threads: the table's first touch, and its UUID-keyed labels where nothing
    /// can differ from the serial insert (see `absorb_on_threads`; else one label at a time).
    pub fn absorb_labels(
        &mut self,
        collected: Vec<CollectedLabels>,
        threads: usize,
    ) -> Result<(), EngineError> {
        if self.ingest.partial {
            return Err(EngineError::Merge(
                "a partial engine keeps join rows, not a label table".into(),
            ));
        }
        if self.capture_started {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        let mut segments = Vec::new();
        for c in collected {
            self.merge_state(&c.state)?;
            segments.extend(c.segments);
        }
        segments.sort_by(|a, b| a.source.cmp(&b.source));
        let uuids: usize = segments.iter().map(|s| s.uuid.len()).sum();
        self.ingest.state.counts.duplicate_ground_truth_ids += self.ingest.gt.flush();
        self.reserve_ground_truth_on(self.ingest.gt.len() + uuids, threads);
        if self.absorb_on_threads(&segments, uuids, threads) {
            let lists: Vec<&[(UKey, u64)]> = segments.iter().map(|s| &s.uuid[..]).collect();
            let mut dups = self.ingest.gt.insert_uuid_lists(&lists, threads);
            // Other keys live in their own map: whether before or after the UUID table, each
            // source's labels reach it in the same order.
            for seg in segments {
                for (k, packed) in seg.text {
                    dups += self.ingest.gt.insert_packed(&k, packed);
                }
            }
            self.ingest.state.counts.duplicate_ground_truth_ids += dups;
            return Ok(());
        }
        for seg in segments {
            self.store_segment(seg)?;
        }
        Ok(())
    }

    /// Whether the UUID-keyed labels of `segments` (`uuids` of them) may be inserted on
    /// `threads` threads before the other keys: the same table for every lookup only if
    /// nothing depends on the order of the labels across the two kinds of keys nor on when the
    /// table grows. So: no class or forecast labels (the table interns those in order), enough
    /// labels to be worth the threads, room for all of them without a rehash (even if no id
    /// repeats), and either no ground-truth limit or — with UUID keys only — a limit that the
    /// store's peak while storing any one of them stays within. (With a table that does not
    /// grow, that peak is the same before every UUID-keyed label: it is what
    /// [`Engine::store_segment`]'s check sees for each, so none would fail.) Else
    /// [`Engine::store_segment`] label by label, which fails where the single pass would.
    fn absorb_on_threads(&self, segments: &[LabelSegment], uuids: usize, threads: usize) -> bool {
        if threads <= 1
            || uuids < PARALLEL_LABELS
            || !self.ingest.gt.uuid_room(uuids)
            || segments.iter().any(|s| !s.extras.is_empty())
        {
            return false;
        }
        match self.gt_limit {
            None => true,
            Some(limit) => {
                segments.iter().all(|s| s.text.is_empty())
                    && self.ingest.gt.footprint_with_next(2 * UUID_KEY_LEN, 0) <= limit
            }
        }
    }

    fn store_segment(&mut self, seg: LabelSegment) -> Result<(), EngineError> {
        let LabelSegment {
            source,
            uuid,
            text,
            mut extras,
        } = seg;
        let limit = self.gt_limit;
        let mut dups = 0;
        if limit.is_none() && extras.is_empty() {
            dups += self.ingest.gt.insert_uuid_batch(&uuid);
        } else {
            for (k, packed) in uuid {
                let packed = self.resolve_extra(packed, &mut extras, &source, UUID_KEY_LEN)?;
                dups += self.ingest.gt.insert_uuid_packed(k, packed);
            }
        }
        for (k, packed) in text {
            let packed = self.resolve_extra(packed, &mut extras, &source, k.len())?;
            dups += self.ingest.gt.insert_packed(&k, packed);
        }
        self.ingest.state.counts.duplicate_ground_truth_ids += dups;
        Ok(())
    }

    /// The label to store for a collected `packed` one (class names interned, actuals put in
    /// the arena), after checking the limit for a key of `key_len` bytes.
    fn resolve_extra(
        &mut self,
        packed: u64,
        extras: &mut [(u64, Option<LabelValue>)],
        source: &str,
        key_len: usize,
    ) -> Result<u64, EngineError> {
        let extra = packed_class(packed).and_then(|i| extras.get_mut(i as usize));
        let (extra_len, series) = match extra.as_ref().and_then(|e| e.1.as_ref()) {
            Some(LabelValue::Class(c)) => (c.len(), 0),
            Some(LabelValue::Series(s)) => (0, s.iter().map(|v| v.len() + 1).sum::<usize>() + 2),
            _ => (0, 0),
        };
        if let Some(limit) = self.gt_limit
            && self
                .ingest
                .gt
                .footprint_with_next(2 * (key_len + extra_len), series)
                > limit
        {
            return Err(EngineError::GroundTruthTooLarge {
                limit_bytes: limit as u64,
                labels: self.ground_truth_len() as u64,
                source_name: source.to_owned(),
            });
        }
        let Some((line, value)) = extra else {
            return Ok(packed);
        };
        let Some(value) = value.take() else {
            return Ok(pack_label(GtLabel::Invalid));
        };
        let line = *line;
        Ok(match self.ingest.store_label_value(value) {
            Ok(l) => pack_label(l),
            Err(e) => {
                self.ingest.sample(source, line, || format!("label: {e}"));
                pack_label(GtLabel::Invalid)
            }
        })
    }
}
