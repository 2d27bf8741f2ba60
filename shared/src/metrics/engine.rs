//! The streaming engine: buffers ground truth, streams capture, joins, accumulates, reports.
//!
//! # The join
//! * **Buffered side: ground truth.** Labels are stored compactly by id (canonical lowercase UUIDs
//!   as 16-byte integers, other ids as strings; the label as a float, a class index or a series
//!   slice). Capture — usually the larger side — is streamed and never held. So feed all ground
//!   truth first, then capture; ground truth fed after capture is rejected with
//!   [`EngineError::GroundTruthAfterCapture`].
//! * Key: capture `inferenceId` when present and non-empty, else `eventId`; ground truth
//!   `eventMetadata.eventId`. Inner join: unmatched records on either side are counted and dropped.
//! * **Duplicates.** Ground truth: the *last* record of an id wins (a re-label corrects an earlier
//!   one; feed files in time order); each extra record counts in `duplicate_ground_truth_ids`.
//!   Capture: the *first* record of an id is evaluated, later ones count in
//!   `duplicate_capture_ids` and are skipped.
//! * **Window.** With `window_start_ms` / `window_end_ms`, capture records whose `inferenceTime` is
//!   outside `[start, end)` or unparseable are counted in `outside_window` and skipped (before the
//!   join, so their labels count as unmatched).
//! * A capture payload with several CSV rows is one invocation with one label: model quality uses
//!   its first row; data quality uses every row.
//! * Bad lines never panic: they count as `malformed_*` / `invalid_*` with up to
//!   `max_error_samples` `source:line: message` samples.
//!
//! # Speed (same results as the straightforward path)
//! * Lines are parsed by a hand-written scanner when they have the usual shape, else by serde
//!   (see `record` / the private `scan` module); the records and errors are the same.
//! * [`Engine::feed_capture`] reads lines in place from the reader's buffer and queues up to
//!   `CAPTURE_PIPELINE` joins of binary / regression records with UUID keys behind a prefetch of
//!   their table slot; the queue is resolved in input order, always before any other join and
//!   before the call returns, so counts, metrics, states and error samples equal those of
//!   [`Engine::push_capture_line`] line by line (`shared/tests/metrics_fastpath.rs`).
//! * The UUID table asks Linux for huge pages (`madvise`), as its random probes otherwise miss the
//!   TLB nearly every time.

use super::config::{MonitorConfig, ProblemType};
use super::dq::baseline::{BaselineConstraints, BaselineStatistics};
use super::dq::checks::{
    DriftResult, Violation, check_data_quality, check_model_quality, violations_json,
};
use super::dq::stats::{DataQualityState, DqValue};
use super::quality::forecast::ForecastInstance;
use super::quality::{QualityReport, QualityState, subsample_mask};
use super::record::{Attr, CaptureRecord, Decoded, GroundTruthRecord, RecordError, finite_number};
use super::shape::ShapeCache;
use super::util::{canonical_label, format_time_millis, hash_bytes, parse_time_millis, value_f64};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;

/// Engine-level errors (bad input lines are counted, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("ground truth fed after capture: feed all ground truth first")]
    GroundTruthAfterCapture,
    #[error("reading {source_name}: {error}")]
    Io {
        source_name: String,
        error: std::io::Error,
    },
    #[error("cannot merge: {0}")]
    Merge(String),
    #[error("invalid constraints: {0}")]
    Constraints(String),
}

/// Record counts of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub capture_lines: u64,
    pub ground_truth_lines: u64,
    pub blank_lines: u64,
    pub malformed_capture: u64,
    pub malformed_ground_truth: u64,
    pub outside_window: u64,
    /// Capture records joined with a label (first capture of each id).
    pub matched: u64,
    pub unmatched_predictions: u64,
    pub unmatched_labels: u64,
    pub duplicate_capture_ids: u64,
    pub duplicate_ground_truth_ids: u64,
    /// Matched records whose prediction could not be read (missing attribute, NaN score, ...).
    pub invalid_predictions: u64,
    /// Matched records whose label could not be used (not a number, not one of the classes, ...).
    pub invalid_labels: u64,
    /// Records that reached the model-quality metrics.
    pub evaluated: u64,
    /// Capture records that reached data-quality statistics.
    pub data_quality_records: u64,
}

impl Counts {
    fn merge(&mut self, o: &Counts) {
        self.capture_lines += o.capture_lines;
        self.ground_truth_lines += o.ground_truth_lines;
        self.blank_lines += o.blank_lines;
        self.malformed_capture += o.malformed_capture;
        self.malformed_ground_truth += o.malformed_ground_truth;
        self.outside_window += o.outside_window;
        self.matched += o.matched;
        self.unmatched_predictions += o.unmatched_predictions;
        self.unmatched_labels += o.unmatched_labels;
        self.duplicate_capture_ids += o.duplicate_capture_ids;
        self.duplicate_ground_truth_ids += o.duplicate_ground_truth_ids;
        self.invalid_predictions += o.invalid_predictions;
        self.invalid_labels += o.invalid_labels;
        self.evaluated += o.evaluated;
        self.data_quality_records += o.data_quality_records;
    }
}

/// A `source:line` sample of a skipped line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub source: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for ErrorSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

/// Everything mergeable about a (partial) job. Serialize it from workers, merge, then
/// [`Engine::merge_state`] + [`Engine::finish`] (or [`EngineState::into_result`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineState {
    pub counts: Counts,
    pub error_samples: Vec<ErrorSample>,
    pub quality: Option<QualityState>,
    pub data_quality: Option<DataQualityState>,
    pub min_inference_time_ms: Option<i64>,
    pub max_inference_time_ms: Option<i64>,
}

impl EngineState {
    fn new(cfg: &MonitorConfig) -> EngineState {
        EngineState {
            counts: Counts::default(),
            error_samples: Vec::new(),
            quality: cfg.problem_type.map(|p| {
                let mut q = QualityState::new(p, cfg);
                if let QualityState::Forecast(f) = &mut q {
                    f.seasonality = cfg.seasonality;
                }
                q
            }),
            data_quality: cfg
                .data_quality
                .then(|| DataQualityState::new(cfg.max_categories)),
            min_inference_time_ms: None,
            max_inference_time_ms: None,
        }
    }

    /// Merges another partial state (the order of merges does not matter for counts and exact
    /// metrics; float sums agree to ~1e-15 relative).
    pub fn merge(&mut self, o: &EngineState, max_error_samples: usize) -> Result<(), EngineError> {
        self.counts.merge(&o.counts);
        for e in &o.error_samples {
            if self.error_samples.len() < max_error_samples {
                self.error_samples.push(e.clone());
            }
        }
        match (&mut self.quality, &o.quality) {
            (Some(a), Some(b)) => a.merge(b).map_err(EngineError::Merge)?,
            (None, Some(b)) => self.quality = Some(b.clone()),
            _ => {}
        }
        match (&mut self.data_quality, &o.data_quality) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.data_quality = Some(b.clone()),
            _ => {}
        }
        self.min_inference_time_ms = opt_min(self.min_inference_time_ms, o.min_inference_time_ms);
        self.max_inference_time_ms = opt_max(self.max_inference_time_ms, o.max_inference_time_ms);
        Ok(())
    }
}

fn opt_min(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
fn opt_max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[derive(Debug, Clone, Copy)]
enum GtLabel {
    Num(f64),
    Class(u32),
    /// Offset and length in the series arena: `[n_series, len_1, v.., len_2, v..]`.
    Series(u32, u32),
    Invalid,
}

/// A label packed in 8 bytes: finite floats as themselves, everything else NaN-boxed (labels
/// stored as floats are always finite). After a match the slot holds `MATCHED`.
const BOX: u64 = 0x7FF8_0000_0000_0000;
const TAG_SHIFT: u32 = 48;
const PAYLOAD: u64 = (1 << TAG_SHIFT) - 1;
const TAG_CLASS: u64 = 1;
const TAG_SERIES: u64 = 2;
const TAG_INVALID: u64 = 3;
const TAG_MATCHED: u64 = 4;
const MATCHED: u64 = BOX | (TAG_MATCHED << TAG_SHIFT);

fn pack(label: GtLabel) -> u64 {
    match label {
        GtLabel::Num(v) if v.is_finite() => v.to_bits(),
        GtLabel::Num(_) | GtLabel::Invalid => BOX | (TAG_INVALID << TAG_SHIFT),
        GtLabel::Class(c) => BOX | (TAG_CLASS << TAG_SHIFT) | c as u64,
        GtLabel::Series(off, _) => BOX | (TAG_SERIES << TAG_SHIFT) | (off as u64 & PAYLOAD),
    }
}

/// None: already matched.
fn unpack(v: u64, series: &[f64]) -> Option<GtLabel> {
    if v & BOX != BOX || (v & !(BOX | (7 << TAG_SHIFT) | PAYLOAD)) != 0 {
        return Some(GtLabel::Num(f64::from_bits(v)));
    }
    let payload = v & PAYLOAD;
    match (v >> TAG_SHIFT) & 7 {
        TAG_CLASS => Some(GtLabel::Class(payload as u32)),
        TAG_SERIES => {
            let off = payload as usize;
            let len = series.get(off).copied().unwrap_or(0.0) as u32;
            Some(GtLabel::Series(off as u32 + 1, len))
        }
        TAG_MATCHED => None,
        _ => Some(GtLabel::Invalid),
    }
}

/// Ground-truth labels kept in flight between the slot prefetch and the insert.
const GT_PIPELINE: usize = 8;

/// Capture joins kept in flight between the slot prefetch and the lookup.
const CAPTURE_PIPELINE: usize = 4;

/// A capture record whose join waits for its prefetched slot: everything its evaluation needs.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    key: UKey,
    score: f64,
    pred: bool,
    mask: u8,
    line_no: u64,
}

/// A canonical UUID as two words (align 8: 24-byte map slots with the packed label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UKey(u64, u64);
impl std::hash::Hash for UKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 ^ self.1.rotate_left(29));
    }
}

/// Hasher for keys that are already random (UUIDs) or hashed by us.
#[derive(Default)]
struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(self.0, bytes);
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = super::util::mix64(self.0 ^ (v as u64) ^ ((v >> 64) as u64).rotate_left(32));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = super::util::mix64(self.0 ^ v);
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = super::util::mix64(self.0 ^ v as u64);
    }
}
type KeyBuild = BuildHasherDefault<KeyHasher>;

/// Canonical lowercase UUID -> u128 (other spellings stay strings, so the mapping is injective).
fn uuid_key(s: &str) -> Option<UKey> {
    uuid_u128(s).map(|v| UKey((v >> 64) as u64, v as u64))
}

#[cfg(test)]
const fn hex_table() -> [u8; 256] {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
}
#[cfg(test)]
static HEX: [u8; 256] = hex_table();
/// Byte positions of the 32 hex digits of a canonical UUID.
#[cfg(test)]
const UUID_DIGITS: [usize; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29,
    30, 31, 32, 33, 34, 35,
];

/// Eight lowercase hex digits (first digit in the lowest byte) -> their value, or None.
#[inline(always)]
fn hex8(w: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES << 7;
    if w & HIGH != 0 {
        return None;
    }
    // Bytes are < 0x80 here, so adding at most 0x50 never carries into the next byte.
    let ge = |lo: u8| w.wrapping_add(ONES * (0x80 - lo) as u64) & HIGH;
    let digit = ge(b'0') & !ge(b'9' + 1);
    let letter = ge(b'a') & !ge(b'f' + 1);
    if digit | letter != HIGH {
        return None;
    }
    // Nibble values: low four bits, plus 9 for a-f.
    let v = (w & (ONES * 0x0F)) + (letter >> 7) * 9;
    // First digit most significant: reverse the bytes, then pack the nibbles.
    let v = v.swap_bytes();
    let v = ((v >> 4) | v) & 0x00FF_00FF_00FF_00FF;
    let v = ((v >> 8) | v) & 0x0000_FFFF_0000_FFFF;
    Some(((v >> 16) | v) & 0xFFFF_FFFF)
}

fn uuid_u128(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let word = |a: usize, c: usize| -> u64 {
        // Two four-byte groups (`a..a+4`, `c..c+4`) as one little-endian word.
        u64::from(u32::from_le_bytes([b[a], b[a + 1], b[a + 2], b[a + 3]]))
            | u64::from(u32::from_le_bytes([b[c], b[c + 1], b[c + 2], b[c + 3]])) << 32
    };
    let hi = (hex8(word(0, 4))? << 32) | hex8(word(9, 14))?;
    let lo = (hex8(word(19, 24))? << 32) | hex8(word(28, 32))?;
    Some(((hi as u128) << 64) | lo as u128)
}

/// The digit-by-digit definition [`uuid_u128`] is tested against.
#[cfg(test)]
fn uuid_u128_scalar(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let (mut hi, mut lo, mut bad) = (0u64, 0u64, 0u8);
    for &i in &UUID_DIGITS[..16] {
        let d = HEX[b[i] as usize];
        bad |= d;
        hi = (hi << 4) | (d & 0xF) as u64;
    }
    for &i in &UUID_DIGITS[16..] {
        let d = HEX[b[i] as usize];
        bad |= d;
        lo = (lo << 4) | (d & 0xF) as u64;
    }
    if bad & 0x80 != 0 {
        return None;
    }
    Some(((hi as u128) << 64) | lo as u128)
}

const TAG_EMPTY: u64 = 5;
const EMPTY: u64 = BOX | (TAG_EMPTY << TAG_SHIFT);

/// Open-addressing (linear probing) table of UUID keys -> packed labels, 24-byte slots: one cache
/// miss per lookup on the hot join path (the keys are already random, so a light mix suffices).
struct UuidTable {
    slots: Vec<(u64, u64, u64)>,
    len: usize,
}

impl Default for UuidTable {
    fn default() -> Self {
        UuidTable {
            slots: vec![(0, 0, EMPTY); 16],
            len: 0,
        }
    }
}

/// `cap` empty slots. A large table is advised to the kernel as huge-page backed before it is first
/// touched: lookups hit random slots, and with 4 KiB pages nearly every one also misses the TLB
/// (the page walk stalls even a prefetch).
fn empty_slots(cap: usize) -> Vec<(u64, u64, u64)> {
    let mut v: Vec<(u64, u64, u64)> = Vec::with_capacity(cap);
    let bytes = cap * std::mem::size_of::<(u64, u64, u64)>();
    if bytes >= HUGE_PAGE {
        advise_huge_pages(v.as_mut_ptr() as usize, bytes);
    }
    v.resize(cap, (0, 0, EMPTY));
    v
}

const HUGE_PAGE: usize = 2 << 20;

/// `madvise(MADV_HUGEPAGE)` on the 2 MiB-aligned part of `[addr, addr + len)`; errors ignored (it is
/// only advice). Returns the kernel's answer (0 or -1), or None where not supported.
#[cfg(target_os = "linux")]
fn advise_huge_pages(addr: usize, len: usize) -> Option<i32> {
    let start = addr.checked_add(HUGE_PAGE - 1)? & !(HUGE_PAGE - 1);
    let end = addr.checked_add(len)? & !(HUGE_PAGE - 1);
    if end <= start {
        return None;
    }
    // SAFETY: madvise(2) with MADV_HUGEPAGE reads no memory and changes neither the contents nor
    // the validity of any mapping: it only lets the kernel back the range with huge pages. The
    // range lies inside one live allocation of ours (2 MiB-aligned within it); on error the kernel
    // changes nothing and returns -1.
    Some(unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) })
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_addr: usize, _len: usize) -> Option<i32> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod huge_page_tests {
    #[test]
    fn advice_on_a_large_allocation_is_accepted_or_harmlessly_refused() {
        let mut v = vec![0u8; 8 << 20];
        let r = super::advise_huge_pages(v.as_mut_ptr() as usize, v.len());
        // 0 where transparent huge pages are available; -1 (EINVAL) where the kernel lacks them.
        assert!(matches!(r, Some(0) | Some(-1)), "{r:?}");
        assert!(v.iter().all(|b| *b == 0), "the contents are untouched");
        assert_eq!(
            super::advise_huge_pages(v.as_mut_ptr() as usize, 4096),
            None,
            "no whole huge page inside"
        );
    }
}

impl UuidTable {
    #[inline]
    fn slot_of(&self, k: UKey) -> usize {
        (super::util::mix64(k.0 ^ k.1.rotate_left(29)) as usize) & (self.slots.len() - 1)
    }
    fn reserve(&mut self, n: usize) {
        let want = (n.saturating_mul(10) / 7).next_power_of_two().max(16);
        if want > self.slots.len() {
            self.rehash(want);
        }
    }
    fn rehash(&mut self, cap: usize) {
        let old = std::mem::replace(&mut self.slots, empty_slots(cap));
        self.len = 0;
        for (hi, lo, v) in old {
            if v != EMPTY {
                self.insert(UKey(hi, lo), v);
            }
        }
    }
    #[inline]
    fn get_mut(&mut self, k: UKey) -> Option<&mut u64> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot_of(k);
        loop {
            let s = self.slots[i];
            if s.2 == EMPTY {
                return None;
            }
            if s.0 == k.0 && s.1 == k.1 {
                return Some(&mut self.slots[i].2);
            }
            i = (i + 1) & mask;
        }
    }
    /// Returns true when the key was present (value replaced).
    fn insert(&mut self, k: UKey, v: u64) -> bool {
        if (self.len + 1) * 10 > self.slots.len() * 7 {
            self.rehash(self.slots.len() * 2);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot_of(k);
        loop {
            let s = &mut self.slots[i];
            if s.2 == EMPTY {
                *s = (k.0, k.1, v);
                self.len += 1;
                return false;
            }
            if s.0 == k.0 && s.1 == k.1 {
                s.2 = v;
                return true;
            }
            i = (i + 1) & mask;
        }
    }
    fn get(&self, k: UKey) -> Option<u64> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot_of(k);
        loop {
            let s = self.slots[i];
            if s.2 == EMPTY {
                return None;
            }
            if s.0 == k.0 && s.1 == k.1 {
                return Some(s.2);
            }
            i = (i + 1) & mask;
        }
    }
    /// Hints the CPU to load the slot of `k` (the insert follows a few records later).
    #[inline]
    fn prefetch(&self, k: UKey) {
        let p = self.slots.as_ptr().wrapping_add(self.slot_of(k));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it never faults and has no architectural effect.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
    fn values(&self) -> impl Iterator<Item = &u64> {
        self.slots.iter().map(|s| &s.2).filter(|&&v| v != EMPTY)
    }
}

#[derive(Default)]
struct GroundTruthStore {
    uuid: UuidTable,
    other: HashMap<Box<str>, u64, KeyBuild>,
    classes: Vec<Box<str>>,
    class_index: HashMap<Box<str>, u32, KeyBuild>,
    /// Forecast actuals: at each label's offset `[len, n_series, len_1, v.., len_2, v..]`.
    series: Vec<f64>,
}

impl GroundTruthStore {
    fn get_mut(&mut self, key: &str) -> Option<&mut u64> {
        match uuid_key(key) {
            Some(u) => self.uuid.get_mut(u),
            None => self.other.get_mut(key),
        }
    }
    fn intern(&mut self, label: &str) -> u32 {
        if let Some(&i) = self.class_index.get(label) {
            return i;
        }
        let i = self.classes.len() as u32;
        self.classes.push(label.into());
        self.class_index.insert(label.into(), i);
        i
    }
    fn unmatched(&self) -> u64 {
        (self.uuid.values().filter(|&&e| e != MATCHED).count()
            + self.other.values().filter(|&&e| e != MATCHED).count()) as u64
    }
    fn len(&self) -> usize {
        self.uuid.len + self.other.len()
    }
}

/// [`parse_time_millis`] with the last text and its result remembered.
#[derive(Debug, Default)]
struct TimeCache {
    text: String,
    millis: Option<i64>,
}

impl TimeCache {
    #[inline]
    fn parse(&mut self, s: &str) -> Option<i64> {
        if self.text != s {
            self.millis = parse_time_millis(s);
            self.text.clear();
            self.text.push_str(s);
        }
        self.millis
    }
}

/// The metrics engine for one job (or one worker's part of a job).
pub struct Engine {
    cfg: MonitorConfig,
    inference_attr: Option<Attr>,
    probability_attr: Option<Attr>,
    gt_attr: Attr,
    positive: String,
    negative: String,
    gt: GroundTruthStore,
    /// UUID-keyed labels waiting for their (prefetched) table slot, in input order.
    gt_pending: std::collections::VecDeque<(UKey, u64)>,
    /// Capture joins waiting for their (prefetched) table slot; empty outside `feed_capture`.
    cap_pending: std::collections::VecDeque<Deferred>,
    state: EngineState,
    capture_started: bool,
    baseline_statistics: Option<BaselineStatistics>,
    baseline_constraints: Option<BaselineConstraints>,
    model_quality_constraints: Option<serde_json::Value>,
    line_buf: Vec<u8>,
    /// The last inference time read (consecutive records often share one).
    last_time: TimeCache,
    /// Layouts of recent capture / ground-truth lines (see [`super::shape`]).
    cap_shapes: ShapeCache,
    gt_shapes: ShapeCache,
}

impl Engine {
    pub fn new(cfg: MonitorConfig) -> Engine {
        let state = EngineState::new(&cfg);
        Engine {
            inference_attr: cfg
                .inference_attribute
                .as_deref()
                .map(|s| Attr::parse(Some(s))),
            probability_attr: cfg
                .probability_attribute
                .as_deref()
                .map(|s| Attr::parse(Some(s))),
            gt_attr: Attr::parse(cfg.ground_truth_attribute.as_deref()),
            positive: canonical_label(&cfg.positive_label).into_owned(),
            negative: canonical_label(&cfg.negative_label).into_owned(),
            gt: GroundTruthStore::default(),
            gt_pending: std::collections::VecDeque::with_capacity(GT_PIPELINE + 1),
            cap_pending: std::collections::VecDeque::with_capacity(CAPTURE_PIPELINE + 1),
            state,
            capture_started: false,
            baseline_statistics: None,
            baseline_constraints: None,
            model_quality_constraints: None,
            line_buf: Vec::new(),
            last_time: TimeCache::default(),
            cap_shapes: ShapeCache::default(),
            gt_shapes: ShapeCache::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// Data-quality baseline (`statistics.json` optional: needed for drift; `constraints.json`
    /// drives every check).
    pub fn with_data_quality_baseline(
        mut self,
        statistics: Option<BaselineStatistics>,
        constraints: Option<BaselineConstraints>,
    ) -> Engine {
        self.baseline_statistics = statistics;
        self.baseline_constraints = constraints;
        self
    }

    /// The engine without line shapes (see [`super::shape`]): every line takes the scanner, then
    /// serde. Same results, slower; for tests that compare the two.
    #[doc(hidden)]
    pub fn without_line_shapes(mut self) -> Engine {
        self.cap_shapes = ShapeCache::off();
        self.gt_shapes = ShapeCache::off();
        self
    }

    /// Model-quality `constraints.json` (parsed JSON).
    pub fn with_model_quality_constraints(mut self, constraints: serde_json::Value) -> Engine {
        self.model_quality_constraints = Some(constraints);
        self
    }

    fn sample(&mut self, source: &str, line: u64, msg: impl FnOnce() -> String) {
        if self.state.error_samples.len() < self.cfg.max_error_samples {
            self.state.error_samples.push(ErrorSample {
                source: source.to_string(),
                line,
                message: msg(),
            });
        }
    }

    /// Pre-sizes the ground-truth table for about `n` labels (e.g. ground-truth bytes / 120).
    pub fn reserve_ground_truth(&mut self, n: usize) {
        self.gt.uuid.reserve(n.min(1 << 26));
    }

    /// Number of buffered ground-truth ids.
    pub fn ground_truth_len(&self) -> usize {
        self.gt.len() + self.pending_effect().1 as usize
    }

    /// Feeds one ground-truth line (`line_no` is 1-based, for error samples).
    pub fn push_ground_truth_line(
        &mut self,
        line: &str,
        source: &str,
        line_no: u64,
    ) -> Result<(), EngineError> {
        if self.capture_started {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        self.state.counts.ground_truth_lines += 1;
        if !self.ground_truth_fitted(line.as_bytes(), source, line_no) {
            self.ground_truth_text(line, source, line_no);
        }
        Ok(())
    }

    /// Reads a (counted) ground-truth line if it fits a known shape.
    #[inline]
    fn ground_truth_fitted(&mut self, line: &[u8], source: &str, line_no: u64) -> bool {
        match self.gt_shapes.fit_ground_truth(line) {
            Some(rec) => {
                self.ground_truth_record(&rec, source, line_no);
                true
            }
            None => false,
        }
    }

    /// A ground-truth line (counted) that fitted no known shape.
    fn ground_truth_text(&mut self, line: &str, source: &str, line_no: u64) {
        if line.trim().is_empty() {
            self.state.counts.blank_lines += 1;
            return;
        }
        match self.gt_shapes.parse_ground_truth(line) {
            Ok(rec) => self.ground_truth_record(&rec, source, line_no),
            Err(e) => {
                self.state.counts.malformed_ground_truth += 1;
                self.sample(source, line_no, || e.to_string());
            }
        }
    }

    /// A parsed ground-truth record (counted).
    fn ground_truth_record(&mut self, rec: &GroundTruthRecord<'_>, source: &str, line_no: u64) {
        let label = match self.decode_label(&rec.data) {
            Ok(l) => l,
            Err(e) => {
                self.sample(source, line_no, || format!("label: {e}"));
                GtLabel::Invalid
            }
        };
        match uuid_key(&rec.event_id) {
            Some(k) => {
                // Insert a few records later, after the slot's cache line has arrived.
                self.gt.uuid.prefetch(k);
                self.gt_pending.push_back((k, pack(label)));
                if self.gt_pending.len() > GT_PIPELINE {
                    self.insert_pending_one();
                }
            }
            None => {
                if self
                    .gt
                    .other
                    .insert(rec.event_id.as_ref().into(), pack(label))
                    .is_some()
                {
                    self.state.counts.duplicate_ground_truth_ids += 1;
                }
            }
        }
    }

    fn insert_pending_one(&mut self) {
        if let Some((k, v)) = self.gt_pending.pop_front()
            && self.gt.uuid.insert(k, v)
        {
            self.state.counts.duplicate_ground_truth_ids += 1;
        }
    }

    fn flush_pending(&mut self) {
        while !self.gt_pending.is_empty() {
            self.insert_pending_one();
        }
    }

    /// Effect of the not yet inserted labels: (duplicates, new ids).
    fn pending_effect(&self) -> (u64, u64) {
        let (mut dups, mut new) = (0u64, 0u64);
        for (i, (k, _)) in self.gt_pending.iter().enumerate() {
            if self.gt.uuid.get(*k).is_some() || self.gt_pending.iter().take(i).any(|(p, _)| p == k)
            {
                dups += 1;
            } else {
                new += 1;
            }
        }
        (dups, new)
    }

    fn decode_label(&mut self, p: &super::record::Payload<'_>) -> Result<GtLabel, RecordError> {
        let Some(problem) = self.cfg.problem_type else {
            return Ok(GtLabel::Invalid);
        };
        let d = p.decode()?;
        match problem {
            ProblemType::Regression => Ok(GtLabel::Num(finite_number(&d.text(&self.gt_attr)?)?)),
            ProblemType::BinaryClassification => {
                let t = d.text(&self.gt_attr)?;
                let c = canonical_label(&t);
                if *c == *self.positive {
                    Ok(GtLabel::Num(1.0))
                } else if *c == *self.negative {
                    Ok(GtLabel::Num(0.0))
                } else {
                    Err(RecordError::InvalidLabel(super::record::truncate(&c, 40)))
                }
            }
            ProblemType::MulticlassClassification => {
                let t = d.text(&self.gt_attr)?;
                let c = canonical_label(&t).into_owned();
                if c.is_empty() {
                    return Err(RecordError::InvalidLabel(c));
                }
                Ok(GtLabel::Class(self.gt.intern(&c)))
            }
            ProblemType::Forecast => {
                let series = forecast_actuals(&d, &self.gt_attr)?;
                let off = self.gt.series.len();
                if off as u64 > PAYLOAD || off > u32::MAX as usize - (1 << 20) {
                    return Err(RecordError::Forecast(
                        "too many forecast actuals buffered".into(),
                    ));
                }
                self.gt.series.push(0.0);
                self.gt.series.push(series.len() as f64);
                for s in &series {
                    self.gt.series.push(s.len() as f64);
                    self.gt.series.extend_from_slice(s);
                }
                self.gt.series[off] = (self.gt.series.len() - off - 1) as f64;
                Ok(GtLabel::Series(off as u32, 0))
            }
        }
    }

    /// Feeds one capture line.
    pub fn push_capture_line(&mut self, line: &str, source: &str, line_no: u64) {
        self.capture_line(line, source, line_no, false);
    }

    /// With `defer` (only inside [`Engine::feed_capture`], which resolves everything it deferred
    /// before returning), the join of a record whose outcome cannot produce an error sample is
    /// queued behind a prefetch of its table slot (see [`Deferred`]).
    fn capture_line(&mut self, line: &str, source: &str, line_no: u64, defer: bool) {
        self.begin_capture_line();
        if !self.capture_fitted(line.as_bytes(), source, line_no, defer) {
            self.capture_text(line, source, line_no, defer);
        }
    }

    /// Reads a (counted) capture line if it fits a known shape.
    #[inline]
    fn capture_fitted(&mut self, line: &[u8], source: &str, line_no: u64, defer: bool) -> bool {
        // (Batch-CSV capture learns no shapes, so it never fits.)
        let want_input = self.want_input();
        match self.cap_shapes.fit_capture(line, want_input) {
            Some(rec) => {
                self.capture_record(&rec, source, line_no, defer);
                true
            }
            None => false,
        }
    }

    /// Counts a capture line (before it is read).
    #[inline]
    fn begin_capture_line(&mut self) {
        if !self.gt_pending.is_empty() {
            self.flush_pending();
        }
        self.capture_started = true;
        self.state.counts.capture_lines += 1;
    }

    /// Whether capture records are read with their input payload.
    #[inline]
    fn want_input(&self) -> bool {
        self.cfg.data_quality || self.cfg.problem_type == Some(ProblemType::Forecast)
    }

    /// A capture line (counted) that fitted no known shape.
    fn capture_text(&mut self, line: &str, source: &str, line_no: u64, defer: bool) {
        if line.trim_ascii().is_empty() {
            self.state.counts.blank_lines += 1;
            return;
        }
        let want_input = self.want_input();
        match self
            .cap_shapes
            .parse_capture(line, self.cfg.capture_format, want_input)
        {
            Ok(rec) => self.capture_record(&rec, source, line_no, defer),
            Err(e) => {
                self.state.counts.malformed_capture += 1;
                self.sample(source, line_no, || e.to_string());
            }
        }
    }

    /// A parsed capture record (counted).
    fn capture_record(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64, defer: bool) {
        let t = rec
            .inference_time
            .as_deref()
            .and_then(|s| self.last_time.parse(s));
        if self.cfg.window_start_ms.is_some() || self.cfg.window_end_ms.is_some() {
            let inside = t.is_some_and(|t| {
                self.cfg.window_start_ms.is_none_or(|s| t >= s)
                    && self.cfg.window_end_ms.is_none_or(|e| t < e)
            });
            if !inside {
                self.state.counts.outside_window += 1;
                return;
            }
        }
        if let Some(t) = t {
            self.state.min_inference_time_ms = opt_min(self.state.min_inference_time_ms, Some(t));
            self.state.max_inference_time_ms = opt_max(self.state.max_inference_time_ms, Some(t));
        }
        if self.state.data_quality.is_some() {
            self.push_data_quality(rec, source, line_no);
        }
        if self.state.quality.is_some() && !(defer && self.try_defer(rec, source, line_no)) {
            // Joins stay in input order: resolve the queue first.
            self.resolve_deferred(source, 0);
            self.push_model_quality(rec, source, line_no);
        }
    }

    /// Queues the join of a binary / regression record with a canonical UUID key and a readable
    /// prediction; false when the record needs the general path.
    fn try_defer(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) -> bool {
        let binary = match self.state.quality {
            Some(QualityState::Binary(_)) => true,
            Some(QualityState::Regression(_)) => false,
            _ => return false,
        };
        let Some(key) = rec.join_key() else {
            return false;
        };
        let Some(k) = uuid_key(key) else {
            return false;
        };
        let Some(Ok(d)) = rec.output.as_ref().map(|o| o.decode()) else {
            return false;
        };
        let prediction = if binary {
            self.binary_prediction(&d)
        } else {
            self.regression_prediction(&d).map(|p| (p, false))
        };
        let Ok((score, pred)) = prediction else {
            return false;
        };
        self.gt.uuid.prefetch(k);
        self.cap_pending.push_back(Deferred {
            key: k,
            score,
            pred,
            mask: subsample_mask(self.cfg.seed, key),
            line_no,
        });
        if self.cap_pending.len() > CAPTURE_PIPELINE {
            self.resolve_deferred(source, CAPTURE_PIPELINE);
        }
        true
    }

    /// Resolves queued joins, oldest first, until at most `keep` remain. Same outcome as
    /// [`Engine::push_model_quality`] on the record: the prediction was already read without error,
    /// so only the label decides.
    fn resolve_deferred(&mut self, source: &str, keep: usize) {
        while self.cap_pending.len() > keep {
            let Some(d) = self.cap_pending.pop_front() else {
                return;
            };
            let Some(entry) = self.gt.uuid.get_mut(d.key) else {
                self.state.counts.unmatched_predictions += 1;
                continue;
            };
            let packed = std::mem::replace(entry, MATCHED);
            let Some(label) = unpack(packed, &self.gt.series) else {
                self.state.counts.duplicate_capture_ids += 1;
                continue;
            };
            self.state.counts.matched += 1;
            match (label, &mut self.state.quality) {
                (GtLabel::Invalid, _) => self.state.counts.invalid_labels += 1,
                (GtLabel::Num(y), Some(QualityState::Binary(s))) => {
                    s.push(d.score, y == 1.0, d.pred, d.mask);
                    self.state.counts.evaluated += 1;
                }
                (GtLabel::Num(y), Some(QualityState::Regression(s))) => {
                    s.push(y, d.score, d.mask);
                    self.state.counts.evaluated += 1;
                }
                // Binary and regression labels are numbers or invalid; kept for completeness.
                _ => {
                    self.state.counts.invalid_labels += 1;
                    self.sample(source, d.line_no, || {
                        "label or prediction outside the class limit".into()
                    });
                }
            }
        }
    }

    fn push_model_quality(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
        let Some(key) = rec.join_key() else {
            self.state.counts.malformed_capture += 1;
            self.sample(source, line_no, || {
                "capture record without inferenceId/eventId".into()
            });
            return;
        };
        let Some(entry) = self.gt.get_mut(key) else {
            self.state.counts.unmatched_predictions += 1;
            return;
        };
        let packed = std::mem::replace(entry, MATCHED);
        let Some(label) = unpack(packed, &self.gt.series) else {
            self.state.counts.duplicate_capture_ids += 1;
            return;
        };
        self.state.counts.matched += 1;
        if matches!(label, GtLabel::Invalid) {
            self.state.counts.invalid_labels += 1;
            return;
        }
        let mask = subsample_mask(self.cfg.seed, key);
        let res = self.evaluate(rec, label, mask);
        match res {
            Ok(true) => self.state.counts.evaluated += 1,
            Ok(false) => {
                self.state.counts.invalid_labels += 1;
                self.sample(source, line_no, || {
                    "label or prediction outside the class limit".into()
                });
            }
            Err(e) => {
                self.state.counts.invalid_predictions += 1;
                self.sample(source, line_no, || format!("prediction: {e}"));
            }
        }
    }

    /// The predicted value of a regression record.
    fn regression_prediction(&self, d: &Decoded<'_>) -> Result<f64, RecordError> {
        let attr = self.inference_attr.as_ref().unwrap_or(&Attr::Whole);
        finite_number(&d.text(attr)?)
    }

    /// The score and predicted label of a binary-classification record.
    fn binary_prediction(&self, d: &Decoded<'_>) -> Result<(f64, bool), RecordError> {
        let pred_label = match &self.inference_attr {
            Some(a) => {
                let t = d.text(a)?;
                let c = canonical_label(&t);
                if *c == *self.positive {
                    Some(true)
                } else if *c == *self.negative {
                    Some(false)
                } else {
                    return Err(RecordError::InvalidLabel(super::record::truncate(&c, 40)));
                }
            }
            None => None,
        };
        let score = match (&self.probability_attr, pred_label) {
            (Some(a), _) => finite_number(&d.text(a)?)?,
            (None, None) => finite_number(&d.text(&Attr::Whole)?)?,
            (None, Some(p)) => f64::from(u8::from(p)),
        };
        Ok((
            score,
            pred_label.unwrap_or(score > self.cfg.probability_threshold),
        ))
    }

    /// Ok(false): record skipped for its label (counted as invalid label).
    fn evaluate(
        &mut self,
        rec: &CaptureRecord<'_>,
        label: GtLabel,
        mask: u8,
    ) -> Result<bool, RecordError> {
        let out = rec
            .output
            .as_ref()
            .ok_or(RecordError::Missing("endpointOutput"))?;
        let d = out.decode()?;
        if let GtLabel::Num(y) = label {
            match &self.state.quality {
                Some(QualityState::Regression(_)) => {
                    let p = self.regression_prediction(&d)?;
                    if let Some(QualityState::Regression(s)) = &mut self.state.quality {
                        s.push(y, p, mask);
                    }
                    return Ok(true);
                }
                Some(QualityState::Binary(_)) => {
                    let (score, pred) = self.binary_prediction(&d)?;
                    if let Some(QualityState::Binary(s)) = &mut self.state.quality {
                        s.push(score, y == 1.0, pred, mask);
                    }
                    return Ok(true);
                }
                _ => {}
            }
        }
        let q = self.state.quality.as_mut().expect("quality state");
        match (q, label) {
            (QualityState::Multiclass(s), GtLabel::Class(c)) => {
                let pred: String = match (&self.inference_attr, &self.probability_attr) {
                    (Some(a), _) => canonical_label(&d.text(a)?).into_owned(),
                    (None, Some(p)) => {
                        let v = d
                            .value(p)
                            .ok_or_else(|| RecordError::Attribute(format!("{p:?}")))?;
                        argmax_label(&v)?
                    }
                    (None, None) => canonical_label(&d.text(&Attr::Whole)?).into_owned(),
                };
                let actual = &self.gt.classes[c as usize];
                return Ok(s.push(actual, &pred, mask));
            }
            (QualityState::Forecast(s), GtLabel::Series(off, len)) => {
                let arena = &self.gt.series[off as usize..(off + len) as usize];
                let mut actuals = Vec::new();
                let n = arena.first().copied().unwrap_or(0.0) as usize;
                let mut i = 1;
                for _ in 0..n {
                    let l = arena.get(i).copied().unwrap_or(0.0) as usize;
                    actuals.push(arena.get(i + 1..i + 1 + l).unwrap_or(&[]).to_vec());
                    i += 1 + l;
                }
                let input = rec.input.as_ref().and_then(|p| p.decode().ok());
                let instances = forecast_instances(&d, input.as_ref(), &s.quantiles)?;
                if instances.is_empty() {
                    return Err(RecordError::Forecast("no predictions".into()));
                }
                s.push(&instances, &actuals, mask);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn push_data_quality(&mut self, rec: &CaptureRecord<'_>, source: &str, line_no: u64) {
        let out = if self.cfg.dq_include_output {
            rec.output.as_ref().map(|p| p.decode())
        } else {
            None
        };
        let inp = rec.input.as_ref().map(|p| p.decode());
        let out = match out.transpose() {
            Ok(o) => o,
            Err(e) => {
                self.sample(source, line_no, || format!("data quality output: {e}"));
                None
            }
        };
        let inp = match inp.transpose() {
            Ok(o) => o,
            Err(e) => {
                self.sample(source, line_no, || format!("data quality input: {e}"));
                None
            }
        };
        let dq = self.state.data_quality.as_mut().expect("dq state");
        let names = self.cfg.feature_names.as_deref();
        // The usual case without the row vectors below: output and input each absent or one row
        // of unquoted CSV (which `csv_rows` reads as `split(',')`; blank text is no row).
        fn one_row<'d>(d: &'d Option<Decoded<'_>>) -> Option<Option<&'d str>> {
            match d {
                None => Some(None),
                Some(Decoded::Csv(s)) if !s.bytes().any(|c| matches!(c, b'"' | b'\n' | b'\r')) => {
                    Some((!s.trim().is_empty()).then_some(&**s))
                }
                Some(_) => None,
            }
        }
        if let (Some(o), Some(i)) = (one_row(&out), one_row(&inp)) {
            if o.is_some() || i.is_some() {
                let fields = o.into_iter().chain(i).flat_map(|r| r.split(','));
                dq.push_csv_fields(fields, names);
                self.state.counts.data_quality_records += 1;
            }
            return;
        }
        let out_rows = decoded_rows(out.as_ref());
        let in_rows = decoded_rows(inp.as_ref());
        let n = out_rows.len().max(in_rows.len());
        for r in 0..n {
            let o = out_rows.get(r).or(out_rows.first());
            let i = in_rows.get(r);
            let all_positional = o.is_none_or(|x| matches!(x, Row::Csv(_)))
                && i.is_none_or(|x| matches!(x, Row::Csv(_)));
            if all_positional {
                let mut fields: Vec<Cow<'_, str>> = Vec::new();
                if let Some(Row::Csv(f)) = o {
                    fields.extend(f.iter().cloned());
                }
                if let Some(Row::Csv(f)) = i {
                    fields.extend(f.iter().cloned());
                }
                dq.push_csv_row(&fields, names);
            } else {
                let mut pairs: Vec<(String, DqOwned)> = Vec::new();
                let mut pos = 0usize;
                for row in [o, i].into_iter().flatten() {
                    match row {
                        Row::Csv(f) => {
                            for v in f {
                                let name = names
                                    .and_then(|n| n.get(pos).cloned())
                                    .unwrap_or_else(|| format!("_c{pos}"));
                                pairs.push((name, DqOwned::Text(v.to_string())));
                                pos += 1;
                            }
                        }
                        Row::Json(serde_json::Value::Object(m)) => {
                            for (k, v) in m {
                                pairs.push((k.clone(), DqOwned::Json(v.clone())));
                            }
                        }
                        Row::Json(serde_json::Value::Array(a)) => {
                            for v in a {
                                let name = names
                                    .and_then(|n| n.get(pos).cloned())
                                    .unwrap_or_else(|| format!("_c{pos}"));
                                pairs.push((name, DqOwned::Json(v.clone())));
                                pos += 1;
                            }
                        }
                        Row::Json(v) => {
                            let name = names
                                .and_then(|n| n.get(pos).cloned())
                                .unwrap_or_else(|| format!("_c{pos}"));
                            pairs.push((name, DqOwned::Json(v.clone())));
                            pos += 1;
                        }
                    }
                }
                dq.push_named(pairs.iter().map(|(k, v)| {
                    (
                        k.as_str(),
                        match v {
                            DqOwned::Text(s) => DqValue::Text(s),
                            DqOwned::Json(j) => DqValue::Json(j),
                        },
                    )
                }));
            }
            self.state.counts.data_quality_records += 1;
        }
    }

    /// Feeds one ground-truth line given as bytes (a trailing `\n` / `\r\n` is ignored; non-UTF-8
    /// lines are counted as malformed).
    pub fn push_ground_truth_bytes(
        &mut self,
        line: &[u8],
        source: &str,
        line_no: u64,
    ) -> Result<(), EngineError> {
        if self.capture_started {
            return Err(EngineError::GroundTruthAfterCapture);
        }
        self.state.counts.ground_truth_lines += 1;
        let line = trim_line_break(line);
        if self.ground_truth_fitted(line, source, line_no) {
            return Ok(());
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.ground_truth_text(s, source, line_no),
            Err(_) => {
                self.state.counts.malformed_ground_truth += 1;
                self.sample(source, line_no, || "line is not UTF-8".into());
            }
        }
        Ok(())
    }

    /// Feeds one capture line given as bytes (see [`Engine::push_ground_truth_bytes`]).
    pub fn push_capture_bytes(&mut self, line: &[u8], source: &str, line_no: u64) {
        self.capture_bytes(line, source, line_no, false);
    }

    fn capture_bytes(&mut self, line: &[u8], source: &str, line_no: u64, defer: bool) {
        self.begin_capture_line();
        let line = trim_line_break(line);
        if self.capture_fitted(line, source, line_no, defer) {
            return;
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.capture_text(s, source, line_no, defer),
            Err(_) => {
                self.state.counts.malformed_capture += 1;
                self.sample(source, line_no, || "line is not UTF-8".into());
            }
        }
    }

    /// Reads the ground-truth line at the start of `ahead` (unread input starting at a line) if it
    /// fits a known shape and ends with `\n`: its length with the `\n`. As
    /// [`Engine::push_ground_truth_bytes`] on that line, without searching for its end first.
    #[inline]
    fn ground_truth_ahead(&mut self, ahead: &[u8], source: &str, line_no: u64) -> Option<usize> {
        if self.capture_started {
            return None;
        }
        let (rec, len) = self.gt_shapes.fit_ground_truth_ahead(ahead)?;
        self.state.counts.ground_truth_lines += 1;
        self.ground_truth_record(&rec, source, line_no);
        Some(len)
    }

    /// [`Engine::ground_truth_ahead`] for capture lines (deferring joins, as `feed_capture`).
    #[inline]
    fn capture_ahead(&mut self, ahead: &[u8], source: &str, line_no: u64) -> Option<usize> {
        let want_input = self.want_input();
        let (rec, len) = self.cap_shapes.fit_capture_ahead(ahead, want_input)?;
        self.begin_capture_line();
        self.capture_record(&rec, source, line_no, true);
        Some(len)
    }

    /// Reads ground-truth lines from a reader (line numbers from 1).
    pub fn feed_ground_truth<R: BufRead>(
        &mut self,
        source: &str,
        mut reader: R,
    ) -> Result<u64, EngineError> {
        struct Cx<'a> {
            e: &'a mut Engine,
            source: &'a str,
            n: u64,
            res: Result<(), EngineError>,
        }
        let mut buf = std::mem::take(&mut self.line_buf);
        let mut cx = Cx {
            e: self,
            source,
            n: 0,
            res: Ok(()),
        };
        let read = for_each_line(
            &mut reader,
            &mut buf,
            &mut cx,
            |cx, line| {
                cx.n += 1;
                cx.res = cx.e.push_ground_truth_bytes(line, cx.source, cx.n);
                cx.res.is_ok()
            },
            |cx, ahead| {
                let len = cx.e.ground_truth_ahead(ahead, cx.source, cx.n + 1)?;
                cx.n += 1;
                Some(len)
            },
        );
        let (n, res) = (cx.n, cx.res);
        self.line_buf = buf;
        res?;
        read.map_err(|error| EngineError::Io {
            source_name: source.to_string(),
            error,
        })?;
        Ok(n)
    }

    /// Reads capture lines from a reader; `progress` is called with the bytes read so far every
    /// ~4 MiB.
    pub fn feed_capture<R: BufRead>(
        &mut self,
        source: &str,
        mut reader: R,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        struct Cx<'a, P> {
            e: &'a mut Engine,
            source: &'a str,
            n: u64,
            bytes: u64,
            next_report: u64,
            progress: P,
        }
        impl<P: FnMut(u64)> Cx<'_, P> {
            /// Counts a line of `len` bytes; its line number.
            fn count(&mut self, len: usize) -> u64 {
                self.n += 1;
                self.bytes += len as u64;
                if self.bytes >= self.next_report {
                    (self.progress)(self.bytes);
                    self.next_report = self.bytes + (4 << 20);
                }
                self.n
            }
        }
        let mut buf = std::mem::take(&mut self.line_buf);
        let mut cx = Cx {
            e: self,
            source,
            n: 0,
            bytes: 0,
            next_report: 4 << 20,
            progress: &mut progress,
        };
        let read = for_each_line(
            &mut reader,
            &mut buf,
            &mut cx,
            |cx, line| {
                let n = cx.count(line.len());
                cx.e.capture_bytes(line, cx.source, n, true);
                true
            },
            |cx, ahead| {
                let len = cx.e.capture_ahead(ahead, cx.source, cx.n + 1)?;
                cx.count(len);
                Some(len)
            },
        );
        let n = cx.n;
        // Nothing stays deferred outside this call (`finish` and `snapshot` read the state).
        self.resolve_deferred(source, 0);
        self.line_buf = buf;
        read.map_err(|error| EngineError::Io {
            source_name: source.to_string(),
            error,
        })?;
        Ok(n)
    }

    /// The mergeable state so far, with this engine's unmatched labels counted.
    pub fn snapshot(&self) -> EngineState {
        let mut s = self.state.clone();
        let (dups, new) = self.pending_effect();
        s.counts.duplicate_ground_truth_ids += dups;
        if self.cfg.problem_type.is_some() {
            s.counts.unmatched_labels += self.gt.unmatched() + new;
        }
        s
    }

    /// Merges a worker's state (from [`Engine::snapshot`]) into this engine.
    pub fn merge_state(&mut self, other: &EngineState) -> Result<(), EngineError> {
        self.state.merge(other, self.cfg.max_error_samples)
    }

    /// Computes the result (does not consume: more input may follow).
    pub fn finish(&self) -> Result<JobResult, EngineError> {
        // Borrow the state (no copy of the score list); only the counts need the unmatched labels.
        let state = &self.state;
        let mut counts = state.counts.clone();
        let (dups, new) = self.pending_effect();
        counts.duplicate_ground_truth_ids += dups;
        if self.cfg.problem_type.is_some() {
            counts.unmatched_labels += self.gt.unmatched() + new;
        }
        let quality = state.quality.as_ref().map(|q| q.report(&self.cfg));
        let mut violations = Vec::new();
        let mut drift = Vec::new();
        if let (Some(q), Some(c), Some(p)) = (
            &quality,
            &self.model_quality_constraints,
            self.cfg.problem_type,
        ) {
            let vals: Vec<(String, f64)> = q
                .scalars
                .iter()
                .map(|(n, m)| (n.clone(), m.value))
                .collect();
            violations.extend(
                check_model_quality(c, p.constraints_key(), &vals)
                    .map_err(EngineError::Constraints)?,
            );
        }
        if let (Some(dq), Some(c)) = (&state.data_quality, &self.baseline_constraints) {
            let r = check_data_quality(dq, self.baseline_statistics.as_ref(), c);
            violations.extend(r.violations);
            drift = r.drift;
        }
        Ok(JobResult {
            problem_type: self.cfg.problem_type,
            evaluation_time: format_time_millis(chrono::Utc::now().timestamp_millis()),
            counts,
            error_samples: state.error_samples.clone(),
            quality,
            data_quality: state.data_quality.clone(),
            violations,
            drift,
            min_inference_time_ms: state.min_inference_time_ms,
            max_inference_time_ms: state.max_inference_time_ms,
        })
    }
}

/// `line` without trailing `\n` / `\r` bytes (as `str::trim_end_matches(['\n', '\r'])`).
#[inline]
fn trim_line_break(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// Calls `line(cx, l)` with every line `l` of `reader` including its `\n` (the last may lack it),
/// like repeated `read_until(b'\n')` but without copying lines that lie whole in the reader's
/// buffer; `partial` holds lines that straddle refills. Stops early when `line` returns false. On
/// a read error the partial line is dropped, as with `read_until`.
///
/// Before searching for the end of a line that starts in the buffer, `ahead(cx, rest)` may read
/// it from the unread rest of the buffer: `Some(n)` if it took the first `n` bytes (the line and
/// its `\n`), None to have the line found and passed to `line` as usual.
fn for_each_line<R: BufRead, C>(
    reader: &mut R,
    partial: &mut Vec<u8>,
    cx: &mut C,
    mut line: impl FnMut(&mut C, &[u8]) -> bool,
    mut ahead: impl FnMut(&mut C, &[u8]) -> Option<usize>,
) -> std::io::Result<()> {
    partial.clear();
    loop {
        let avail = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            if !partial.is_empty() {
                line(cx, partial);
                partial.clear();
            }
            return Ok(());
        }
        let len = avail.len();
        let mut start = 0;
        loop {
            if partial.is_empty()
                && let Some(n) = ahead(cx, &avail[start..])
            {
                start += n;
                continue;
            }
            let Some(off) = find_newline(&avail[start..]) else {
                break;
            };
            let end = start + off + 1;
            let go = if partial.is_empty() {
                line(cx, &avail[start..end])
            } else {
                partial.extend_from_slice(&avail[start..end]);
                let go = line(cx, partial);
                partial.clear();
                go
            };
            start = end;
            if !go {
                reader.consume(start);
                return Ok(());
            }
        }
        partial.extend_from_slice(&avail[start..]);
        reader.consume(len);
    }
}

/// Position of the first `\n` (two 8-byte words per step).
#[inline]
fn find_newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const NL: u64 = ONES * b'\n' as u64;
    let has = |w: u64| {
        let x = w ^ NL;
        x.wrapping_sub(ONES) & !x & (ONES << 7)
    };
    let mut i = 0;
    while let Some(c) = b.get(i..i + 16) {
        let (lo, hi) = c.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or([0; 8]));
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or([0; 8]));
        let (ml, mh) = (has(lo), has(hi));
        if ml | mh != 0 {
            return Some(if ml != 0 {
                i + (ml.trailing_zeros() / 8) as usize
            } else {
                i + 8 + (mh.trailing_zeros() / 8) as usize
            });
        }
        i += 16;
    }
    b[i..].iter().position(|&c| c == b'\n').map(|p| i + p)
}

/// Reassembles lines from arbitrary byte chunks (e.g. an S3 body streamed by an async client),
/// so the engine can be fed without a blocking reader:
///
/// ```
/// # use driftloop::metrics::{Engine, MonitorConfig, engine::LineAssembler};
/// let mut engine = Engine::new(MonitorConfig { data_quality: true, ..Default::default() });
/// let mut lines = LineAssembler::default();
/// let chunks: [&[u8]; 2] = [br#"{"captureData":{"endpointInput":{"data":"1,2"#, b"\",\"encoding\":\"CSV\"}}}\n"];
/// for chunk in chunks {
///     lines.push(chunk, |line, n| engine.push_capture_bytes(line, "s3://bucket/key", n));
/// }
/// lines.finish(|line, n| engine.push_capture_bytes(line, "s3://bucket/key", n));
/// assert_eq!(engine.finish().unwrap().counts.data_quality_records, 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct LineAssembler {
    partial: Vec<u8>,
    line_no: u64,
}

impl LineAssembler {
    /// Calls `f(line, line_no)` for every complete line in `chunk` (line without its `\n`).
    pub fn push(&mut self, mut chunk: &[u8], mut f: impl FnMut(&[u8], u64)) {
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            self.line_no += 1;
            if self.partial.is_empty() {
                f(&chunk[..i], self.line_no);
            } else {
                self.partial.extend_from_slice(&chunk[..i]);
                f(&self.partial, self.line_no);
                self.partial.clear();
            }
            chunk = &chunk[i + 1..];
        }
        self.partial.extend_from_slice(chunk);
    }
    /// Flushes a last line without a trailing newline.
    pub fn finish(&mut self, mut f: impl FnMut(&[u8], u64)) {
        if !self.partial.is_empty() {
            self.line_no += 1;
            f(&self.partial, self.line_no);
            self.partial.clear();
        }
    }
}

enum DqOwned {
    Text(String),
    Json(serde_json::Value),
}

enum Row<'a> {
    Csv(Vec<Cow<'a, str>>),
    Json(serde_json::Value),
}

fn decoded_rows<'a>(d: Option<&'a Decoded<'a>>) -> Vec<Row<'a>> {
    match d {
        None => Vec::new(),
        Some(Decoded::Csv(s)) => super::record::csv_rows(s).map(Row::Csv).collect(),
        Some(Decoded::Json(v)) => {
            let inst = v.get("instances").and_then(|i| i.as_array());
            match (v, inst) {
                (_, Some(a)) => a
                    .iter()
                    .map(|x| Row::Json(x.get("features").cloned().unwrap_or_else(|| x.clone())))
                    .collect(),
                (serde_json::Value::Array(a), None)
                    if a.iter().all(|x| x.is_object() || x.is_array()) && !a.is_empty() =>
                {
                    a.iter().map(|x| Row::Json(x.clone())).collect()
                }
                (other, None) => vec![Row::Json(other.clone())],
            }
        }
    }
}

fn argmax_label(v: &serde_json::Value) -> Result<String, RecordError> {
    let a = v
        .as_array()
        .ok_or_else(|| RecordError::Attribute("probability vector".into()))?;
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in a.iter().enumerate() {
        let p = value_f64(x).ok_or_else(|| RecordError::NotANumber(x.to_string()))?;
        if !p.is_finite() {
            return Err(RecordError::NonFinite);
        }
        if best.is_none_or(|(_, b)| p > b) {
            best = Some((i, p));
        }
    }
    best.map(|(i, _)| i.to_string())
        .ok_or_else(|| RecordError::Attribute("empty probability vector".into()))
}

fn number_array(v: &serde_json::Value) -> Option<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(|x| value_f64(x).unwrap_or(f64::NAN)).collect())
}

/// Ground-truth actuals of a forecast (see `quality::forecast` docs).
fn forecast_actuals(d: &Decoded<'_>, attr: &Attr) -> Result<Vec<Vec<f64>>, RecordError> {
    match d {
        Decoded::Csv(s) => {
            let row = s.lines().next().unwrap_or("");
            Ok(vec![
                super::util::split_csv(row)
                    .map(|f| super::util::parse_f64(&f).unwrap_or(f64::NAN))
                    .collect(),
            ])
        }
        Decoded::Json(v) => {
            let v = match attr {
                Attr::Whole => Some(v),
                Attr::Index(i) => v.get(*i),
                Attr::Path(p) => p.lookup(v),
            }
            .ok_or_else(|| RecordError::Attribute(format!("{attr:?}")))?;
            let v = v.get("target").unwrap_or(v);
            let a = v
                .as_array()
                .ok_or_else(|| RecordError::Forecast("actuals are not an array".into()))?;
            if a.iter().all(|x| x.is_array()) && !a.is_empty() {
                Ok(a.iter()
                    .map(|x| number_array(x).unwrap_or_default())
                    .collect())
            } else {
                Ok(vec![number_array(v).unwrap_or_default()])
            }
        }
    }
}

fn forecast_instances(
    out: &Decoded<'_>,
    input: Option<&Decoded<'_>>,
    quantiles: &[f64],
) -> Result<Vec<ForecastInstance>, RecordError> {
    let Decoded::Json(v) = out else {
        return Err(RecordError::Forecast("forecast output must be JSON".into()));
    };
    let preds: Vec<&serde_json::Value> = match v.get("predictions").and_then(|p| p.as_array()) {
        Some(a) => a.iter().collect(),
        None => vec![v],
    };
    let histories: Vec<Option<Vec<f64>>> = match input {
        Some(Decoded::Json(iv)) => match iv.get("instances").and_then(|i| i.as_array()) {
            Some(a) => a
                .iter()
                .map(|x| x.get("target").and_then(number_array))
                .collect(),
            None => vec![iv.get("target").and_then(number_array)],
        },
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, p) in preds.iter().enumerate() {
        let qobj = p.get("quantiles").and_then(|q| q.as_object());
        let qs: Vec<Vec<f64>> = quantiles
            .iter()
            .map(|&q| {
                qobj.and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.parse::<f64>().is_ok_and(|kq| (kq - q).abs() < 1e-9))
                        .and_then(|(_, v)| number_array(v))
                })
                .unwrap_or_default()
            })
            .collect();
        let point = p
            .get("mean")
            .and_then(number_array)
            .or_else(|| {
                qobj.and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.parse::<f64>().is_ok_and(|kq| (kq - 0.5).abs() < 1e-9))
                        .and_then(|(_, v)| number_array(v))
                })
            })
            .or_else(|| qs.get(qs.len() / 2).cloned().filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                RecordError::Forecast("prediction has neither mean nor quantiles".into())
            })?;
        out.push(ForecastInstance {
            quantiles: qs,
            point,
            history: histories.get(i).cloned().flatten(),
        });
    }
    Ok(out)
}

/// The outcome of a job.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub problem_type: Option<ProblemType>,
    pub evaluation_time: String,
    pub counts: Counts,
    pub error_samples: Vec<ErrorSample>,
    pub quality: Option<QualityReport>,
    pub data_quality: Option<DataQualityState>,
    pub violations: Vec<Violation>,
    pub drift: Vec<DriftResult>,
    pub min_inference_time_ms: Option<i64>,
    pub max_inference_time_ms: Option<i64>,
}

impl JobResult {
    /// Model-quality `statistics.json` (None without a problem type).
    pub fn model_quality_statistics_json(&self) -> Option<serde_json::Value> {
        let (p, q) = (self.problem_type?, self.quality.as_ref()?);
        let mut m = serde_json::Map::new();
        m.insert("version".into(), serde_json::json!(0.0));
        m.insert("dataset".into(), serde_json::json!({ "item_count": q.item_count, "evaluation_time": self.evaluation_time }));
        m.insert(
            p.statistics_key().into(),
            serde_json::Value::Object(q.metrics_json.clone()),
        );
        Some(serde_json::Value::Object(m))
    }

    /// Data-quality `statistics.json` (None when data quality was not computed).
    pub fn data_quality_statistics_json(&self) -> Option<serde_json::Value> {
        self.data_quality
            .as_ref()
            .map(DataQualityState::statistics_json)
    }

    /// The job's `statistics.json`: model quality when a problem type is set, else data quality.
    pub fn statistics_json(&self) -> serde_json::Value {
        self.model_quality_statistics_json()
            .or_else(|| self.data_quality_statistics_json())
            .unwrap_or_else(
                || serde_json::json!({ "version": 0.0, "dataset": { "item_count": 0 } }),
            )
    }

    /// `constraint_violations.json`.
    pub fn violations_json(&self) -> serde_json::Value {
        violations_json(&self.violations)
    }

    /// Model Monitor's job message.
    pub fn job_message(&self) -> String {
        if self.violations.is_empty() {
            "Completed: Job completed successfully with no violations.".into()
        } else {
            format!(
                "CompletedWithViolations: Job completed successfully with {} violations.",
                self.violations.len()
            )
        }
    }

    /// Flat `(metric name, value)` pairs for CloudWatch: model-quality metric names as in
    /// `statistics.json`; data quality `feature_data_<f>` (mean), `feature_non_null_<f>`
    /// (completeness share), `feature_baseline_drift_<f>` (distance). NaN / ±inf are left out
    /// (CloudWatch rejects them).
    pub fn cloudwatch_metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(q) = &self.quality {
            for (n, m) in &q.scalars {
                out.push((n.clone(), m.value));
            }
        }
        if let Some(dq) = &self.data_quality {
            let rows = dq.item_count as f64;
            for c in &dq.columns {
                if c.inferred_type().is_numeric() && c.num.n > 0 {
                    out.push((format!("feature_data_{}", c.name), c.num.mean));
                }
                if rows > 0.0 {
                    out.push((
                        format!("feature_non_null_{}", c.name),
                        c.types.non_null() as f64 / rows,
                    ));
                }
            }
        }
        for d in &self.drift {
            out.push((format!("feature_baseline_drift_{}", d.feature), d.distance));
        }
        out.retain(|(_, v)| v.is_finite());
        out
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let c = &self.counts;
        let mut s = String::new();
        let _ = writeln!(s, "driftloop metrics — {}", self.job_message());
        let _ = writeln!(
            s,
            "input: {} capture lines, {} ground-truth lines, {} blank",
            c.capture_lines, c.ground_truth_lines, c.blank_lines
        );
        if let (Some(a), Some(b)) = (self.min_inference_time_ms, self.max_inference_time_ms) {
            let _ = writeln!(
                s,
                "inference time: {} .. {}",
                format_time_millis(a),
                format_time_millis(b)
            );
        }
        let _ = writeln!(
            s,
            "skipped: {} malformed capture, {} malformed ground truth, {} outside window",
            c.malformed_capture, c.malformed_ground_truth, c.outside_window
        );
        if let Some(p) = self.problem_type {
            let _ = writeln!(
                s,
                "join ({p:?}): {} matched, {} unmatched predictions, {} unmatched labels, {} duplicate capture ids (first wins), {} duplicate label ids (last wins)",
                c.matched,
                c.unmatched_predictions,
                c.unmatched_labels,
                c.duplicate_capture_ids,
                c.duplicate_ground_truth_ids
            );
            let _ = writeln!(
                s,
                "evaluated: {} ({} invalid predictions, {} invalid labels)",
                c.evaluated, c.invalid_predictions, c.invalid_labels
            );
        }
        if let Some(q) = &self.quality {
            for (n, m) in &q.scalars {
                match m.standard_deviation {
                    Some(sd) => {
                        let _ = writeln!(s, "  {n:<45} {:>12.6}  ± {sd:.6}", m.value);
                    }
                    None => {
                        let _ = writeln!(s, "  {n:<45} {:>12.6}", m.value);
                    }
                }
            }
        }
        if let Some(dq) = &self.data_quality {
            let _ = writeln!(
                s,
                "data quality: {} rows, {} columns",
                dq.item_count,
                dq.columns.len()
            );
        }
        for d in &self.drift {
            let _ = writeln!(
                s,
                "  drift {:<30} {:.6} (threshold {})",
                d.feature, d.distance, d.threshold
            );
        }
        for v in &self.violations {
            let _ = writeln!(
                s,
                "VIOLATION {} {}: {}",
                v.constraint_check_type,
                v.feature_name
                    .as_deref()
                    .or(v.metric_name.as_deref())
                    .unwrap_or(""),
                v.description
            );
        }
        for e in &self.error_samples {
            let _ = writeln!(s, "sample skip: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data quality over CSV payloads (the one-row fast path and the row-vector path) equals
    /// Model Monitor's column order pushed row by row: output columns, then the input's.
    #[test]
    fn csv_input_rows_for_data_quality() {
        let inputs = [
            "1,2.5,a",
            "3, 4,b",
            "",
            "  ",
            "5,,c",
            "7,8.25,\"x,y\"",
            "9,1e3,d\n10,11,e",
            "12,13,f\r",
            "true,-0.5,g",
            "14,15,h,extra",
            "16",
        ];
        let cfg = MonitorConfig {
            data_quality: true,
            ..Default::default()
        };
        let mut e = Engine::new(cfg.clone());
        let mut want = DataQualityState::new(cfg.max_categories);
        let mut rows = 0;
        for (n, text) in inputs.iter().cycle().take(60).enumerate() {
            let data = serde_json::to_string(text).unwrap();
            let line = format!(
                r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":{data},"encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"0.5","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"e{n}","inferenceTime":"2024-01-01T00:00:00Z"}},"eventVersion":"0"}}"#
            );
            e.push_capture_bytes(line.as_bytes(), "cap", n as u64 + 1);
            // Output columns first; every input row repeats the (single) output row.
            let out: Vec<Cow<'_, str>> = vec![Cow::Borrowed("0.5")];
            let ins: Vec<Vec<Cow<'_, str>>> = super::super::record::csv_rows(text).collect();
            for r in 0..ins.len().max(1) {
                let mut fields = out.clone();
                if let Some(i) = ins.get(r) {
                    fields.extend(i.iter().cloned());
                }
                want.push_csv_row(&fields, None);
                rows += 1;
            }
        }
        let got = e.snapshot();
        assert_eq!(got.counts.data_quality_records, rows);
        assert_eq!(got.data_quality.as_ref(), Some(&want));
        assert!(rows > 50, "{rows}");
    }

    #[test]
    fn time_cache_answers_as_the_parser() {
        let mut c = TimeCache::default();
        for t in [
            "",
            "",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "not a time",
            "2024-01-01T00:00:00.5Z",
            "",
            "2024-01-01T00:00:00Z",
        ] {
            assert_eq!(c.parse(t), parse_time_millis(t), "{t:?}");
        }
    }

    fn cap(id: &str, out: &str, t: &str) -> String {
        format!(
            r#"{{"captureData":{{"endpointInput":{{"observedContentType":"text/csv","mode":"INPUT","data":"1,2","encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv","mode":"OUTPUT","data":"{out}","encoding":"CSV"}}}},"eventMetadata":{{"eventId":"{id}","inferenceTime":"{t}"}},"eventVersion":"0"}}"#
        )
    }
    fn gt(id: &str, label: &str) -> String {
        format!(
            r#"{{"groundTruthData":{{"data":"{label}","encoding":"CSV"}},"eventMetadata":{{"eventId":"{id}"}},"eventVersion":"0"}}"#
        )
    }

    #[test]
    fn join_counts_duplicates_and_window() {
        let cfg = MonitorConfig {
            problem_type: Some(ProblemType::BinaryClassification),
            window_start_ms: parse_time_millis("2024-01-01T00:00:00Z"),
            window_end_ms: parse_time_millis("2024-01-01T01:00:00Z"),
            ..Default::default()
        };
        let mut e = Engine::new(cfg);
        let g = [
            gt("a", "1"),
            gt("b", "0"),
            gt("b", "1"),
            gt("c", "0"),
            gt("d", "7"),
            "not json".into(),
            gt("z", "1"),
        ]
        .join("\n");
        e.feed_ground_truth("gt.jsonl", g.as_bytes()).unwrap();
        let c = [
            cap("a", "0.9", "2024-01-01T00:10:00Z"),
            cap("a", "0.1", "2024-01-01T00:10:00Z"),
            cap("b", "0.8", "2024-01-01T00:20:00Z"),
            cap("c", "0.7", "2024-01-01T00:30:00Z"),
            cap("d", "0.7", "2024-01-01T00:30:00Z"),
            cap("x", "0.7", "2024-01-01T00:30:00Z"),
            cap("c", "0.7", "2024-01-01T02:30:00Z"),
            cap("y", "NaN", "2024-01-01T00:30:00Z"),
            "{\"truncated".into(),
            String::new(),
        ]
        .join("\n");
        e.feed_capture("cap.jsonl", c.as_bytes(), |_| {}).unwrap();
        assert!(matches!(
            e.push_ground_truth_line(&gt("q", "1"), "late", 1),
            Err(EngineError::GroundTruthAfterCapture)
        ));
        let r = e.finish().unwrap();
        let k = &r.counts;
        assert_eq!(k.duplicate_ground_truth_ids, 1);
        assert_eq!(k.malformed_ground_truth, 1);
        assert_eq!(k.matched, 4, "{k:?}");
        assert_eq!(k.duplicate_capture_ids, 1);
        assert_eq!(k.unmatched_predictions, 2);
        assert_eq!(k.unmatched_labels, 1); // z
        assert_eq!(k.outside_window, 1);
        assert_eq!(k.malformed_capture, 1);
        assert_eq!(k.invalid_labels, 1); // d = 7
        assert_eq!(k.evaluated, 3);
        assert!(
            r.error_samples
                .iter()
                .any(|s| s.source == "cap.jsonl" && s.line == 9),
            "{:?}",
            r.error_samples
        );
        // Evaluated: a (1, 0.9), b (last wins: 1, 0.8), c (0, 0.7) -> tp 2, fp 1.
        let q = r.quality.as_ref().unwrap();
        assert_eq!(q.get("precision").unwrap().value, 2.0 / 3.0);
        assert_eq!(q.get("recall").unwrap().value, 1.0);
        assert_eq!(q.get("auc").unwrap().value, 1.0);
        let st = r.statistics_json();
        assert_eq!(st["dataset"]["item_count"], 3);
        assert!(st["binary_classification_metrics"]["auc"]["standard_deviation"] == "NaN");
        assert!(r.summary().contains("4 matched"));
    }

    #[test]
    fn uuid_keys_are_exact() {
        assert_eq!(
            uuid_u128("f04a8538-0000-4000-8000-00000000000a"),
            Some(0xf04a_8538_0000_4000_8000_0000_0000_000a)
        );
        assert_eq!(uuid_u128("F04A8538-0000-4000-8000-00000000000A"), None);
        assert_eq!(uuid_u128("short"), None);
        let series = vec![3.0, 1.0, 1.0, 5.0];
        for l in [
            GtLabel::Num(0.0),
            GtLabel::Num(-2.5e300),
            GtLabel::Class(7),
            GtLabel::Invalid,
        ] {
            assert_eq!(
                format!("{:?}", unpack(pack(l), &series)),
                format!("{:?}", Some(l))
            );
        }
        assert!(matches!(
            unpack(pack(GtLabel::Series(0, 0)), &series),
            Some(GtLabel::Series(1, 3))
        ));
        assert!(unpack(MATCHED, &series).is_none());
        assert!(matches!(
            unpack(pack(GtLabel::Num(f64::NAN)), &series),
            Some(GtLabel::Invalid)
        ));
    }

    #[test]
    fn batch_transform_outputs_join_on_generated_ids() {
        use crate::metrics::CaptureFormat;
        for (format, lines) in [
            (
                CaptureFormat::BatchCsv,
                vec![
                    "3.5,a1,2024-01-01T00:00:00Z",
                    "1.0,a2,2024-01-01T00:00:01Z",
                    "2.0,zz,2024-01-01T00:00:02Z",
                ],
            ),
            (
                CaptureFormat::Realtime,
                vec![
                    r#"{"prediction":3.5,"SageMakerInferenceId":"a1","SageMakerInferenceTime":"2024-01-01T00:00:00Z"}"#,
                    r#"{"prediction":1.0,"SageMakerInferenceId":"a2","SageMakerInferenceTime":"2024-01-01T00:00:01Z"}"#,
                    r#"{"prediction":2.0,"SageMakerInferenceId":"zz","SageMakerInferenceTime":"2024-01-01T00:00:02Z"}"#,
                ],
            ),
        ] {
            let json = format != CaptureFormat::BatchCsv;
            let cfg = MonitorConfig {
                problem_type: Some(ProblemType::Regression),
                capture_format: format,
                inference_attribute: Some(if json { "prediction" } else { "0" }.into()),
                ..Default::default()
            };
            let mut e = Engine::new(cfg);
            e.push_ground_truth_line(&gt("a1", "3"), "g", 1).unwrap();
            e.push_ground_truth_line(&gt("a2", "2"), "g", 2).unwrap();
            for (i, l) in lines.iter().enumerate() {
                e.push_capture_line(l, "c", i as u64 + 1);
            }
            let r = e.finish().unwrap();
            assert_eq!(r.counts.matched, 2, "{format:?}");
            assert_eq!(r.counts.unmatched_predictions, 1);
            // errors 0.5 and 1.0
            assert_eq!(r.quality.as_ref().unwrap().get("mae").unwrap().value, 0.75);
        }
    }

    #[test]
    fn uuid_labels_pipeline_keeps_last_wins_and_counts() {
        let id = |i: u32| format!("00000000-0000-4000-8000-{i:012x}");
        let cfg = MonitorConfig {
            problem_type: Some(ProblemType::BinaryClassification),
            ..Default::default()
        };
        let mut e = Engine::new(cfg);
        // 30 labels, id 3 relabelled 0 -> 1 (last wins), id 5 duplicated right away.
        for i in 0..30 {
            e.push_ground_truth_line(&gt(&id(i), "0"), "g", i as u64)
                .unwrap();
        }
        e.push_ground_truth_line(&gt(&id(3), "1"), "g", 31).unwrap();
        e.push_ground_truth_line(&gt(&id(5), "0"), "g", 32).unwrap();
        // Before any capture (labels still in flight): counts already include them.
        let r = e.finish().unwrap();
        assert_eq!(r.counts.duplicate_ground_truth_ids, 2);
        assert_eq!(r.counts.unmatched_labels, 30);
        assert_eq!(e.ground_truth_len(), 30);
        assert_eq!(e.snapshot().counts.duplicate_ground_truth_ids, 2);
        e.push_capture_line(&cap(&id(3), "0.9", "2024-01-01T00:00:00Z"), "c", 1);
        e.push_capture_line(&cap(&id(4), "0.9", "2024-01-01T00:00:00Z"), "c", 2);
        let r = e.finish().unwrap();
        assert_eq!(r.counts.duplicate_ground_truth_ids, 2);
        assert_eq!(r.counts.matched, 2);
        assert_eq!(r.counts.unmatched_labels, 28);
        let q = r.quality.as_ref().unwrap();
        // id 3 is positive (relabelled), id 4 negative: both predicted positive.
        assert_eq!(q.get("precision").unwrap().value, 0.5);
        assert_eq!(q.get("recall").unwrap().value, 1.0);
    }

    #[test]
    fn uuid_parse_matches_digit_by_digit_definition() {
        let mut rng = crate::metrics::util::SplitMix64(11);
        let alphabet = b"0123456789abcdefABCDEFgG-/:`@ \x7f\xc3\xa9";
        for _ in 0..200_000 {
            let v = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
            let mut s = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                v >> 96,
                (v >> 80) & 0xFFFF,
                (v >> 64) & 0xFFFF,
                (v >> 48) & 0xFFFF,
                v & 0xFFFF_FFFF_FFFF
            )
            .into_bytes();
            assert_eq!(uuid_u128(std::str::from_utf8(&s).unwrap()), Some(v));
            // Change up to two bytes to anything, including neighbours of the hex ranges.
            for _ in 0..rng.next_u64() % 3 {
                let i = (rng.next_u64() % 36) as usize;
                s[i] = if rng.next_u64().is_multiple_of(2) {
                    alphabet[(rng.next_u64() % alphabet.len() as u64) as usize]
                } else {
                    rng.next_u64() as u8
                };
            }
            let t = String::from_utf8_lossy(&s);
            assert_eq!(uuid_u128(&t), uuid_u128_scalar(&t), "{t}");
        }
        for b in 0..=255u8 {
            let mut s = *b"00000000-0000-4000-8000-000000000000";
            for i in [0, 7, 9, 20, 35] {
                let mut t = s;
                t[i] = b;
                if let Ok(t) = std::str::from_utf8(&t) {
                    assert_eq!(uuid_u128(t), uuid_u128_scalar(t), "{t}");
                }
            }
            s[0] = b'f';
            assert_eq!(
                uuid_u128(std::str::from_utf8(&s).unwrap()),
                uuid_u128_scalar(std::str::from_utf8(&s).unwrap())
            );
        }
    }

    #[test]
    fn uuid_table_grows_and_replaces() {
        let mut t = UuidTable::default();
        let key = |i: u64| UKey(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 3, i);
        for i in 0..10_000u64 {
            assert!(!t.insert(key(i), i));
        }
        assert_eq!(t.len, 10_000);
        assert!(t.insert(key(42), 7));
        assert_eq!(t.len, 10_000);
        for i in 0..10_000u64 {
            assert_eq!(
                t.get_mut(key(i)).copied(),
                Some(if i == 42 { 7 } else { i })
            );
        }
        assert!(t.get_mut(key(10_001)).is_none());
        assert_eq!(t.values().count(), 10_000);
        *t.get_mut(key(1)).unwrap() = MATCHED;
        assert_eq!(t.values().filter(|&&v| v == MATCHED).count(), 1);
    }

    #[test]
    fn data_quality_only_with_json_input() {
        let cfg = MonitorConfig {
            data_quality: true,
            ..Default::default()
        };
        let mut e = Engine::new(cfg);
        let line = r#"{"captureData":{"endpointInput":{"observedContentType":"application/json","data":"{\"age\":30,\"city\":\"x\"}","encoding":"JSON"},"endpointOutput":{"observedContentType":"text/csv","data":"0.5","encoding":"CSV"}},"eventMetadata":{"eventId":"e"}}"#;
        e.push_capture_line(line, "s", 1);
        e.push_capture_line(line, "s", 2);
        let r = e.finish().unwrap();
        let st = r.statistics_json();
        assert_eq!(st["dataset"]["item_count"], 2);
        let names: Vec<&str> = st["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["_c0", "age", "city"]);
        assert_eq!(st["features"][1]["inferred_type"], "Integral");
        assert!(
            r.cloudwatch_metrics()
                .iter()
                .any(|(n, v)| n == "feature_data_age" && *v == 30.0)
        );
    }
}
