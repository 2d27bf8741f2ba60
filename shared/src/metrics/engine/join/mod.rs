//! The buffered side of the join: ground-truth labels stored by id until capture asks for them.
//! Canonical lowercase UUIDs become 16-byte keys in an open-addressing table (huge-page backed,
//! probed behind a prefetch); other ids go to a hash map; each label is packed in 8 bytes.
//! Collected labels may be stored on several threads, each owning a region of the table's slots
//! (`UuidTable::insert_regions`): the same answer for every lookup as one thread's inserts.

use crate::metrics::util::{hash_bytes, mix64};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

mod table;

use table::{SLOT, UuidTable};

/// A ground-truth label as the model-quality rules use it.
#[derive(Debug, Clone, Copy)]
pub(super) enum GtLabel {
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

/// A label packed for the store (see [`GroundTruthStore::insert_packed`]).
pub(super) fn pack_label(label: GtLabel) -> u64 {
    pack(label)
}

/// A packed label as stored (None: already matched).
pub(super) fn unpack_label(v: u64, store: &GroundTruthStore) -> Option<GtLabel> {
    unpack(v, &store.series)
}

/// The class index of a packed class label (label collectors use it as an index of their own).
pub(super) fn packed_class(v: u64) -> Option<u32> {
    match unpack(v, &[]) {
        Some(GtLabel::Class(c)) => Some(c),
        _ => None,
    }
}

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

/// A canonical UUID as two words (align 8: 24-byte map slots with the packed label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UKey(pub(super) u64, pub(super) u64);
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
        self.0 = mix64(self.0 ^ (v as u64) ^ ((v >> 64) as u64).rotate_left(32));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix64(self.0 ^ v);
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = mix64(self.0 ^ v as u64);
    }
}
type KeyBuild = BuildHasherDefault<KeyHasher>;

/// Canonical lowercase UUID -> u128 (other spellings stay strings, so the mapping is injective).
pub(super) fn uuid_key(s: &str) -> Option<UKey> {
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

/// Eight lowercase hex digits (first digit in the lowest byte) -> their value, or None. SWAR
/// (SIMD within a register): all eight bytes are range-checked at once by adding per-byte offsets
/// that carry into each byte's high bit, then the nibbles are packed by shifts and masks. The
/// scalar definition is `uuid_u128_scalar` below (tests compare the two on every byte value).
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

/// The 128 bits of a canonical lowercase UUID (`8-4-4-4-12` hex digits), via [`hex8`].
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

/// What the store holds for a capture record's key (see [`GroundTruthStore::take`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Join {
    /// No label with this id.
    Unmatched,
    /// The label was already taken by an earlier capture record of the id (first capture wins).
    Duplicate,
    /// The label, now marked as matched.
    Label(GtLabel),
}

/// The ground-truth labels of a job by id. UUID-keyed labels are inserted a few records after
/// they arrive ([`GT_PIPELINE`]), once the prefetched slot is in cache; every read flushes them
/// first or counts them ([`GroundTruthStore::pending_effect`]).
#[derive(Default)]
pub(super) struct GroundTruthStore {
    uuid: UuidTable,
    /// Other ids -> their index in `other_labels` (a stable slot: see [`GroundTruthStore::find`]).
    other: HashMap<Box<str>, u32, KeyBuild>,
    other_labels: Vec<u64>,
    classes: Vec<Box<str>>,
    class_index: HashMap<Box<str>, u32, KeyBuild>,
    /// Forecast actuals: at each label's offset `[len, n_series, len_1, v.., len_2, v..]`.
    series: Vec<f64>,
    /// UUID-keyed labels waiting for their (prefetched) table slot, in input order.
    pending: VecDeque<(UKey, u64)>,
    /// Bytes of the keys in `other` and of the class names (for [`GroundTruthStore::footprint`]).
    key_bytes: usize,
}

/// Bytes of one `other` map entry besides its key: the boxed key's pointer and length, the packed
/// label and hashbrown's control byte.
/// (Rounded up: hashbrown keeps an eighth of its buckets free.)
const OTHER_ENTRY: usize = 32;
/// Fewer UUID labels than this are inserted on the calling thread (starting threads costs more).
pub(super) const PARALLEL_LABELS: usize = 1 << 16;

impl GroundTruthStore {
    /// Pre-sizes the UUID table for about `n` labels (its slots filled on up to `threads`
    /// threads).
    pub(super) fn reserve(&mut self, n: usize, threads: usize) {
        self.uuid.reserve(n, threads);
    }

    /// Whether `n` more UUID-keyed labels fit the table without a rehash (even if every one
    /// were a new id).
    pub(super) fn uuid_room(&self, n: usize) -> bool {
        self.pending.is_empty() && self.uuid.fits(n)
    }

    /// Bytes of the UUID table [`Self::reserve`] would allocate for `n` labels.
    pub(super) fn reserve_bytes(n: usize) -> usize {
        (n.saturating_mul(10) / 7).next_power_of_two().max(16) * SLOT
    }

    /// Stores the label of `key` (the last label of an id wins); returns the number of duplicate
    /// ids found now (a UUID-keyed label is compared when it leaves the pipeline).
    #[inline]
    pub(super) fn insert(&mut self, key: &str, label: GtLabel) -> u64 {
        match uuid_key(key) {
            Some(k) => {
                // Insert a few records later, after the slot's cache line has arrived.
                self.uuid.prefetch(k);
                self.pending.push_back((k, pack(label)));
                if self.pending.len() > GT_PIPELINE {
                    self.insert_pending_one()
                } else {
                    0
                }
            }
            None => self.insert_other(key, pack(label)),
        }
    }

    /// Bytes the store holds now (tables at their capacity, keys, class names, series arena).
    pub(super) fn footprint(&self) -> usize {
        self.uuid.slots.len() * SLOT
            + self.other.capacity() * OTHER_ENTRY
            + self.other_labels.capacity() * 8
            + self.key_bytes
            + (self.classes.capacity() + self.class_index.capacity()) * OTHER_ENTRY
            + self.series.capacity() * 8
            // The pipeline holds at most GT_PIPELINE + 1 labels (its deque rounds up to 16).
            + 16 * SLOT
    }

    /// [`Self::footprint`] at its peak while the next label is stored: a table that must grow
    /// holds its old and its new (doubled) slots at once during the rehash; `series` more
    /// values may be appended to the arena (forecast).
    pub(super) fn footprint_with_next(&self, key_len: usize, series: usize) -> usize {
        let mut peak = self.footprint() + key_len;
        let uuids = self.uuid.len + self.pending.len() + 1;
        if uuids * 10 > self.uuid.slots.len() * 7 {
            peak += 2 * self.uuid.slots.len() * SLOT;
        }
        if self.other.len() >= self.other.capacity() {
            peak += 2 * self.other.capacity().max(4) * (OTHER_ENTRY + 8);
        }
        if self.classes.len() >= self.classes.capacity() {
            peak += 4 * self.classes.capacity().max(4) * OTHER_ENTRY;
        }
        if self.series.len() + series > self.series.capacity() {
            peak += 2 * (self.series.len() + series) * 8;
        }
        peak
    }

    fn insert_pending_one(&mut self) -> u64 {
        match self.pending.pop_front() {
            Some((k, v)) => u64::from(self.uuid.insert(k, v)),
            None => 0,
        }
    }

    /// Inserts every label still in the pipeline; returns the duplicates found.
    #[inline]
    pub(super) fn flush(&mut self) -> u64 {
        let mut dups = 0;
        while !self.pending.is_empty() {
            dups += self.insert_pending_one();
        }
        dups
    }

    /// Whether labels wait in the pipeline.
    #[inline]
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Effect of the not yet inserted labels: (duplicates, new ids).
    pub(super) fn pending_effect(&self) -> (u64, u64) {
        let (mut dups, mut new) = (0u64, 0u64);
        for (i, (k, _)) in self.pending.iter().enumerate() {
            if self.uuid.get(*k).is_some() || self.pending.iter().take(i).any(|(p, _)| p == k) {
                dups += 1;
            } else {
                new += 1;
            }
        }
        (dups, new)
    }

    /// Takes the label of `key` for a capture record, marking it matched (call [`Self::flush`]
    /// before the first capture record).
    #[inline]
    pub(super) fn take(&mut self, key: &str) -> Join {
        let entry = match uuid_key(key) {
            Some(u) => self.uuid.get_mut(u),
            None => self
                .other
                .get(key)
                .map(|&i| &mut self.other_labels[i as usize]),
        };
        match entry {
            Some(e) => take_entry(e, &self.series),
            None => Join::Unmatched,
        }
    }

    /// [`Self::take`] for a canonical UUID key.
    #[inline]
    pub(super) fn take_uuid(&mut self, k: UKey) -> Join {
        match self.uuid.get_mut(k) {
            Some(e) => take_entry(e, &self.series),
            None => Join::Unmatched,
        }
    }

    /// Hints the CPU to load the table slot of `k` (a [`Self::take_uuid`] follows soon).
    #[inline]
    pub(super) fn prefetch(&self, k: UKey) {
        self.uuid.prefetch(k);
    }

    /// The index of a (canonical) class label, added on first sight.
    pub(super) fn intern(&mut self, label: &str) -> u32 {
        if let Some(&i) = self.class_index.get(label) {
            return i;
        }
        let i = self.classes.len() as u32;
        self.key_bytes += 2 * label.len();
        self.classes.push(label.into());
        self.class_index.insert(label.into(), i);
        i
    }

    /// The class label of an index from [`Self::intern`].
    pub(super) fn class(&self, c: u32) -> &str {
        &self.classes[c as usize]
    }

    /// Buffers the actuals of a forecast label; None when the arena is full.
    pub(super) fn push_series(&mut self, series: &[Vec<f64>]) -> Option<GtLabel> {
        let off = self.series.len();
        if off as u64 > PAYLOAD || off > u32::MAX as usize - (1 << 20) {
            return None;
        }
        self.series.push(0.0);
        self.series.push(series.len() as f64);
        for s in series {
            self.series.push(s.len() as f64);
            self.series.extend_from_slice(s);
        }
        self.series[off] = (self.series.len() - off - 1) as f64;
        Some(GtLabel::Series(off as u32, 0))
    }

    /// The actuals of a taken forecast label (`GtLabel::Series(off, len)` from [`Self::take`]).
    pub(super) fn actuals(&self, off: u32, len: u32) -> Vec<Vec<f64>> {
        let arena = &self.series[off as usize..(off + len) as usize];
        let mut actuals = Vec::new();
        let n = arena.first().copied().unwrap_or(0.0) as usize;
        let mut i = 1;
        for _ in 0..n {
            let l = arena.get(i).copied().unwrap_or(0.0) as usize;
            actuals.push(arena.get(i + 1..i + 1 + l).unwrap_or(&[]).to_vec());
            i += 1 + l;
        }
        actuals
    }

    /// Stored labels no capture record has taken.
    pub(super) fn unmatched(&self) -> u64 {
        (self.uuid.values().filter(|&&e| e != MATCHED).count()
            + self.other_labels.iter().filter(|&&e| e != MATCHED).count()) as u64
    }

    /// Stores a packed label under a non-UUID key (the last wins); 1 when it replaced one.
    fn insert_other(&mut self, key: &str, packed: u64) -> u64 {
        match self.other.get(key) {
            Some(&i) => {
                self.other_labels[i as usize] = packed;
                1
            }
            None => {
                let i = self.other_labels.len() as u32;
                self.other_labels.push(packed);
                self.other.insert(key.into(), i);
                self.key_bytes += key.len();
                0
            }
        }
    }

    /// Stores a packed label (see [`pack_label`]) under `key` at once, without the pipeline;
    /// 1 when it replaced one (a duplicate id).
    pub(super) fn insert_packed(&mut self, key: &str, packed: u64) -> u64 {
        match uuid_key(key) {
            Some(k) => self.insert_uuid_packed(k, packed),
            None => self.insert_other(key, packed),
        }
    }

    /// [`Self::insert_uuid_packed`] for many labels in order, each slot prefetched a few labels
    /// ahead; returns the duplicates.
    pub(super) fn insert_uuid_batch(&mut self, labels: &[(UKey, u64)]) -> u64 {
        const AHEAD: usize = 8;
        let mut dups = self.flush();
        for (i, &(k, v)) in labels.iter().enumerate() {
            if let Some(&(next, _)) = labels.get(i + AHEAD) {
                self.uuid.prefetch(next);
            }
            dups += u64::from(self.uuid.insert(k, v));
        }
        dups
    }

    /// [`Self::insert_uuid_batch`] of each list, one after another: on up to `threads` threads
    /// when there are at least [`PARALLEL_LABELS`] and they fit without a rehash (see
    /// `UuidTable::insert_regions`); returns the duplicates.
    pub(super) fn insert_uuid_lists(&mut self, lists: &[&[(UKey, u64)]], threads: usize) -> u64 {
        let total: usize = lists.iter().map(|l| l.len()).sum();
        let mut dups = self.flush();
        if threads > 1 && total >= PARALLEL_LABELS && self.uuid.fits(total) {
            return dups + self.uuid.insert_regions(lists, threads).dups;
        }
        for l in lists {
            dups += self.insert_uuid_batch(l);
        }
        dups
    }

    /// [`Self::insert_packed`] for a canonical UUID key.
    #[inline]
    pub(super) fn insert_uuid_packed(&mut self, k: UKey, packed: u64) -> u64 {
        u64::from(self.uuid.insert(k, packed))
    }

    /// Number of stable slots ([`Self::find`]): the UUID table's, then one per other id.
    pub(super) fn slots(&self) -> usize {
        self.uuid.slots.len() + self.other_labels.len()
    }

    /// The stable slot of `key`'s label and the packed label in it (None: no label). Reads only:
    /// threads share a store behind an `Arc` while capture is joined against it. Slots are
    /// stable until the next insert.
    #[inline]
    pub(super) fn find(&self, key: &str) -> Option<(usize, u64)> {
        match uuid_key(key) {
            Some(k) => self.find_uuid(k),
            None => {
                let i = *self.other.get(key)? as usize;
                Some((self.uuid.slots.len() + i, self.other_labels[i]))
            }
        }
    }

    /// [`Self::find`] for a canonical UUID key.
    #[inline]
    pub(super) fn find_uuid(&self, k: UKey) -> Option<(usize, u64)> {
        self.uuid.find(k)
    }

    /// Marks the label in `slot` ([`Self::find`]) as matched.
    pub(super) fn mark_matched(&mut self, slot: usize) {
        let n = self.uuid.slots.len();
        if slot < n {
            self.uuid.slots[slot].2 = MATCHED;
        } else if let Some(v) = self.other_labels.get_mut(slot - n) {
            *v = MATCHED;
        }
    }

    /// Stored ids (without the pipeline).
    pub(super) fn len(&self) -> usize {
        self.uuid.len + self.other.len()
    }
}

#[inline]
fn take_entry(entry: &mut u64, series: &[f64]) -> Join {
    let packed = std::mem::replace(entry, MATCHED);
    match unpack(packed, series) {
        Some(label) => Join::Label(label),
        None => Join::Duplicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn footprint_follows_what_is_stored_and_foresees_growth() {
        let mut s = GroundTruthStore::default();
        let empty = s.footprint();
        assert!(empty < 4096, "{empty}");
        let mut peak_seen = 0;
        for i in 0..5000u64 {
            let key = format!("{i:08x}-0000-4000-8000-{i:012x}");
            let before = s.footprint_with_next(0, 0);
            s.insert(&key, GtLabel::Num(i as f64));
            s.flush();
            // What was foreseen covers what the store holds after the insert.
            assert!(s.footprint() <= before, "{i}: {} > {before}", s.footprint());
            peak_seen = peak_seen.max(before);
        }
        // 5000 labels in a table of 8192 slots (24 bytes each); never more than 3x at a rehash.
        assert!(s.footprint() >= 5000 * SLOT && s.footprint() < 8192 * SLOT * 2);
        assert!(peak_seen <= 3 * 8192 * SLOT + 4096, "{peak_seen}");
        for i in 0..1000 {
            s.insert(&format!("id-{i}"), GtLabel::Num(1.0));
        }
        assert!(s.footprint() >= 8192 * SLOT + 1000 * (OTHER_ENTRY + 5));
    }
}
