//! The buffered side of the join: ground-truth labels stored by id until capture asks for them.
//! Canonical lowercase UUIDs become 16-byte keys in an open-addressing table (huge-page backed,
//! probed behind a prefetch); other ids go to a hash map; each label is packed in 8 bytes.
//! Collected labels may be stored on several threads, each owning a region of the table's slots
//! (`UuidTable::insert_regions`): the same answer for every lookup as one thread's inserts.

use crate::metrics::util::{hash_bytes, mix64};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

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

const TAG_EMPTY: u64 = 5;
const EMPTY: u64 = BOX | (TAG_EMPTY << TAG_SHIFT);

/// Open-addressing (linear probing) table of UUID keys -> packed labels, 24-byte slots: one cache
/// miss per lookup on the hot join path (the keys are already random, so a light mix suffices).
struct UuidTable {
    slots: Vec<Slot>,
    len: usize,
}

impl Default for UuidTable {
    fn default() -> Self {
        UuidTable {
            slots: vec![EMPTY_SLOT; 16],
            len: 0,
        }
    }
}

/// One table slot: the key's two words and the packed label (`EMPTY`: a free slot).
type Slot = (u64, u64, u64);
const EMPTY_SLOT: Slot = (0, 0, EMPTY);

/// Tables from this size are filled on several threads ([`empty_slots`]).
const PARALLEL_FILL_BYTES: usize = 8 << 20;

/// `cap` empty slots, written on up to `threads` threads (each its own contiguous chunk) from
/// [`PARALLEL_FILL_BYTES`]. A large table is advised to the kernel as huge-page backed before it
/// is first touched: lookups hit random slots, and with 4 KiB pages nearly every one also misses
/// the TLB (the page walk stalls even a prefetch). The first touch is what costs (page faults,
/// and the kernel zeroing each page): on several threads they run side by side.
///
/// Measured on the 2-vCPU Firecracker VM (2026-12-02; 48 MiB, the table of 1M labels; the other
/// vCPU mostly busy with another job, so per-thread CPU is the figure that carries over): with
/// the advice the first touch takes 3.6–4 ms (2 threads: ~2 ms of CPU each), but about one run
/// in four 35–150 ms. That slow mode is the host, not us: the balloon's free page reporting
/// hands free 2 MiB blocks back to the host every ~2 s, and zeroing such a page faults it in on
/// the host side (`clear_page_erms`; a C loop of fresh mappings shows it every ~2 s, with one
/// thread as with two). Without the advice it is a steady 19–20 ms on one thread (two: ~10 ms
/// of CPU each) — but the capture probes then pay the TLB misses: `driftloop-metrics-bench
/// engine` on 1M CSV records, 2 threads, medians of 6 interleaved runs: probe 0.394 s without
/// vs 0.362 s with the advice, wall 0.605 vs 0.555 s. The advice wins even counting its slow
/// runs (+~100 ms one time in four), so it stays.
fn empty_slots(cap: usize, threads: usize) -> Vec<Slot> {
    let mut v: Vec<Slot> = Vec::with_capacity(cap);
    let bytes = cap * SLOT;
    if bytes >= HUGE_PAGE {
        advise_huge_pages(v.as_mut_ptr() as usize, bytes);
    }
    if threads <= 1 || bytes < PARALLEL_FILL_BYTES {
        v.resize(cap, EMPTY_SLOT);
        return v;
    }
    let chunk = cap.div_ceil(threads);
    std::thread::scope(|s| {
        let mut chunks = v.spare_capacity_mut()[..cap].chunks_mut(chunk);
        let mine = chunks.next();
        for part in chunks {
            s.spawn(move || part.iter_mut().for_each(|x| _ = x.write(EMPTY_SLOT)));
        }
        if let Some(part) = mine {
            part.iter_mut().for_each(|x| _ = x.write(EMPTY_SLOT));
        }
    });
    // SAFETY: the chunks cover the first `cap` elements of the spare capacity (which is at least
    // `cap` long: `with_capacity(cap)`), each element was written once above, and the scope has
    // joined every thread that wrote (a panicking one would have unwound past this line), so the
    // first `cap` elements are initialised.
    unsafe { v.set_len(cap) };
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
        home_slot(k, self.slots.len() - 1)
    }
    /// Room for `n` keys without a rehash (the new slots filled on up to `threads` threads).
    fn reserve(&mut self, n: usize, threads: usize) {
        let want = (n.saturating_mul(10) / 7).next_power_of_two().max(16);
        if want > self.slots.len() {
            self.rehash(want, threads);
        }
    }
    /// Whether `n` more keys fit without a rehash (each [`Self::insert`] of a new key grows
    /// the table only when it would pass 7/10 full).
    fn fits(&self, n: usize) -> bool {
        self.len.saturating_add(n).saturating_mul(10) <= self.slots.len().saturating_mul(7)
    }
    fn rehash(&mut self, cap: usize, threads: usize) {
        let old = std::mem::replace(&mut self.slots, empty_slots(cap, threads));
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
            self.rehash(self.slots.len() * 2, 1);
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
    /// The slot index and value of `k`.
    #[inline]
    fn find(&self, k: UKey) -> Option<(usize, u64)> {
        let mask = self.slots.len() - 1;
        let mut i = self.slot_of(k);
        loop {
            let s = self.slots[i];
            if s.2 == EMPTY {
                return None;
            }
            if s.0 == k.0 && s.1 == k.1 {
                return Some((i, s.2));
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
        prefetch_slot(self.slots.as_ptr().wrapping_add(self.slot_of(k)));
    }
    fn values(&self) -> impl Iterator<Item = &u64> {
        self.slots.iter().map(|s| &s.2).filter(|&&v| v != EMPTY)
    }
}

/// The home slot of `k` in a table of `mask + 1` slots (where its probe starts).
#[inline]
fn home_slot(k: UKey, mask: usize) -> usize {
    (mix64(k.0 ^ k.1.rotate_left(29)) as usize) & mask
}

/// What [`UuidTable::insert_regions`] did: replaced labels (duplicate ids) and labels that left
/// their home region (inserted afterwards on the calling thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RegionOutcome {
    dups: u64,
    spilled: usize,
}

/// Labels a region thread keeps in flight between the slot prefetch and the insert. (Measured:
/// 1M labels on 2 threads, 51 ms without the prefetch, 29 ms with it, on a busy machine.)
const REGION_PIPELINE: usize = 8;

/// One region's part of [`UuidTable::insert_regions`]: the labels of `lists` whose home slot
/// lies in `region` (the table's slots `lo..lo + region.len()`; `mask`: the table's), in order,
/// each probed inside the region only. Returns (new keys, replaced labels, spilled labels).
fn fill_region(
    region: &mut [Slot],
    lo: usize,
    mask: usize,
    lists: &[&[(UKey, u64)]],
) -> (usize, u64, Vec<(UKey, u64)>) {
    let (mut new, mut dups, mut spills) = (0usize, 0u64, Vec::new());
    let mut place = |region: &mut [Slot], k: UKey, v: u64, mut i: usize| {
        loop {
            let Some(s) = region.get_mut(i) else {
                // The region's end (or the table's, where a probe would wrap): from here the
                // probe belongs to the calling thread.
                spills.push((k, v));
                return;
            };
            if s.2 == EMPTY {
                *s = (k.0, k.1, v);
                new += 1;
                return;
            }
            if s.0 == k.0 && s.1 == k.1 {
                s.2 = v;
                dups += 1;
                return;
            }
            i += 1;
        }
    };
    let hi = lo + region.len();
    let mut ring = [(UKey(0, 0), 0u64, 0usize); REGION_PIPELINE];
    let mut n = 0usize;
    for &(k, v) in lists.iter().flat_map(|l| l.iter()) {
        let h = home_slot(k, mask);
        if h < lo || h >= hi {
            continue;
        }
        let i = h - lo;
        prefetch_slot(region.as_ptr().wrapping_add(i));
        let at = n % REGION_PIPELINE;
        if n >= REGION_PIPELINE {
            let (k0, v0, i0) = ring[at];
            place(region, k0, v0, i0);
        }
        ring[at] = (k, v, i);
        n += 1;
    }
    for j in n.saturating_sub(REGION_PIPELINE)..n {
        let (k, v, i) = ring[j % REGION_PIPELINE];
        place(region, k, v, i);
    }
    (new, dups, spills)
}

/// Hints the CPU to load a slot (an insert or lookup follows soon).
#[inline(always)]
fn prefetch_slot(p: *const Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and has no architectural effect.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl UuidTable {
    /// Inserts the labels of `lists`, in order, as [`Self::insert`] one after another would for
    /// every lookup: on `threads` threads, each owning one contiguous region of the slots, when
    /// they all fit without a rehash (else serially). Returns the replaced labels and how many
    /// left their home region.
    ///
    /// Why every [`Self::find`] answers as after the serial insert: a key's home slot
    /// ([`home_slot`], which the table size fixes) lies in one region, so all of a key's labels
    /// go to the same thread, which takes them in list order. That thread probes from the home
    /// slot towards its region's end, as the serial probe does; slots are never emptied, so a
    /// label either finds its key (replaced: one duplicate, the later label wins), takes the
    /// first empty slot (a new key), or reaches the region's end with every slot from home on
    /// holding other keys — then it is *spilled*. A spilled key is in none of those slots, and
    /// they stay taken by other keys, so each later label of that key spills too, in order.
    /// The spills are then inserted on this thread with [`Self::insert`], region by region, each
    /// region's in order (a key spills from one region only, so the regions' relative order
    /// does not matter); their probes cross into the next regions (or wrap) as the serial ones
    /// would. So each key ends in one slot reachable from its home through taken slots (what
    /// `find` needs), holding its last label; each label after a key's first counts one
    /// duplicate (keys already in the table before included: a spilled label finds them
    /// outside its region); `len` grows by the new keys. Only the slot *positions* can differ
    /// from the serial order's, and nothing reads them but as a key's identity.
    ///
    /// Measured (952 597 labels of the 1M-record benchmark into 2^21 slots, 2 threads): each
    /// region thread 13.5–14.3 ms of CPU (it hashes every label, inserts half), the serial
    /// insert 25.5 ms; no label spilled (the table is under half full, so region ends are
    /// rarely inside a run of taken slots).
    fn insert_regions(&mut self, lists: &[&[(UKey, u64)]], threads: usize) -> RegionOutcome {
        let total: usize = lists.iter().map(|l| l.len()).sum();
        if threads <= 1 || !self.fits(total) {
            let mut dups = 0;
            for &(k, v) in lists.iter().flat_map(|l| l.iter()) {
                dups += u64::from(self.insert(k, v));
            }
            return RegionOutcome { dups, spilled: 0 };
        }
        let cap = self.slots.len();
        let mask = cap - 1;
        let threads = threads.min(cap);
        let mut regions = Vec::with_capacity(threads);
        let mut rest = &mut self.slots[..];
        for r in 0..threads {
            let (lo, hi) = (r * cap / threads, (r + 1) * cap / threads);
            let (region, tail) = rest.split_at_mut(hi - lo);
            regions.push((lo, region));
            rest = tail;
        }
        let results: Vec<_> = std::thread::scope(|s| {
            let mut regions = regions.into_iter();
            let mine = regions.next();
            let handles: Vec<_> = regions
                .map(|(lo, region)| s.spawn(move || fill_region(region, lo, mask, lists)))
                .collect();
            let mut results = Vec::with_capacity(threads);
            if let Some((lo, region)) = mine {
                results.push(fill_region(region, lo, mask, lists));
            }
            for h in handles {
                results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            results
        });
        let mut out = RegionOutcome::default();
        for (new, dups, _) in &results {
            self.len += new;
            out.dups += dups;
        }
        for (_, _, spills) in results {
            out.spilled += spills.len();
            for (k, v) in spills {
                out.dups += u64::from(self.insert(k, v));
            }
        }
        out
    }
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
/// Bytes of one UUID table slot.
const SLOT: usize = std::mem::size_of::<Slot>();
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

    /// The region insert answers every lookup as the serial insert does: random UUID keys
    /// repeated within and across lists (and already in the table), tables full enough that
    /// probes leave their region (counted: the test fails if none did).
    #[test]
    fn region_insert_equals_the_serial_insert() {
        let mut rng = crate::metrics::util::SplitMix64(19);
        let mut spilled = 0;
        for case in 0..300u64 {
            let cap_log = 6 + (case % 6) as u32; // 64 .. 2048 slots
            let cap = 1usize << cap_log;
            // Up to 8 regions: small ones fill up, so that probes leave them.
            let threads = 2 + (case % 7) as usize;
            // Half as many ids as slots, a tenth of them in the table before (the engine's own
            // labels), every id in some list and up to a tenth more labels repeating ids: the
            // table takes them all without a rehash (even if none repeated), as it must for the
            // region insert.
            let ids = cap / 2;
            let pool: Vec<UKey> = (0..ids)
                .map(|_| UKey(rng.next_u64(), rng.next_u64()))
                .collect();
            let pick = |rng: &mut crate::metrics::util::SplitMix64| {
                pool[(rng.next_u64() % pool.len() as u64) as usize]
            };
            let before: Vec<(UKey, u64)> =
                (0..cap / 10).map(|i| (pick(&mut rng), i as u64)).collect();
            let mut lists: Vec<Vec<(UKey, u64)>> = vec![Vec::new(); 1 + (case % 4) as usize];
            for &k in &pool {
                let l = (rng.next_u64() % lists.len() as u64) as usize;
                lists[l].push((k, rng.next_u64() >> 12));
            }
            for _ in 0..rng.next_u64() % (cap as u64 / 10) {
                let l = (rng.next_u64() % lists.len() as u64) as usize;
                let at = (rng.next_u64() % (lists[l].len() as u64 + 1)) as usize;
                lists[l].insert(at, (pick(&mut rng), rng.next_u64() >> 12));
            }
            let lists: Vec<&[(UKey, u64)]> = lists.iter().map(|l| &l[..]).collect();
            let fresh = || {
                let mut t = UuidTable::default();
                t.reserve(cap * 6 / 10, 1);
                assert_eq!(t.slots.len(), cap);
                for &(k, v) in &before {
                    t.insert(k, v);
                }
                t
            };
            let mut serial = fresh();
            let mut serial_dups = 0;
            for &(k, v) in lists.iter().flat_map(|l| l.iter()) {
                serial_dups += u64::from(serial.insert(k, v));
            }
            let mut region = fresh();
            let total: usize = lists.iter().map(|l| l.len()).sum();
            assert!(region.fits(total), "case {case}: the regions' precondition");
            let out = region.insert_regions(&lists, threads);
            assert_eq!(region.slots.len(), cap, "no rehash");
            assert_eq!(out.dups, serial_dups, "case {case}");
            assert_eq!(region.len, serial.len, "case {case}");
            assert_eq!(region.values().count(), serial.len, "case {case}");
            for &k in &pool {
                assert_eq!(
                    region.find(k).map(|f| f.1),
                    serial.find(k).map(|f| f.1),
                    "case {case}: {k:?}"
                );
            }
            assert!(region.find(UKey(rng.next_u64(), 1)).is_none());
            spilled += out.spilled;
        }
        assert!(spilled > 150, "probes left their region {spilled} times");
    }

    /// Keys made to meet at a region's end and at the table's (where the serial probe wraps):
    /// a spilled key's repeated labels spill too, and land where lookups find them.
    #[test]
    fn spilled_keys_repeat_and_wrap() {
        let mut rng = crate::metrics::util::SplitMix64(23);
        let mask = 63;
        let mut at = |home: usize| loop {
            let k = UKey(rng.next_u64(), rng.next_u64());
            if home_slot(k, mask) == home {
                return k;
            }
        };
        let (a, b, c, d, e, f) = (at(31), at(31), at(63), at(63), at(32), at(0));
        let labels = [
            (a, 1),
            (b, 2),
            (e, 3),
            (c, 4),
            (d, 5),
            (b, 6),
            (f, 7),
            (d, 8),
        ];
        let lists: [&[(UKey, u64)]; 2] = [&labels[..3], &labels[3..]];
        let mut serial = UuidTable::default();
        serial.reserve(40, 1);
        let mut region = UuidTable::default();
        region.reserve(40, 1);
        assert_eq!(region.slots.len(), 64);
        let mut dups = 0;
        for &(k, v) in &labels {
            dups += u64::from(serial.insert(k, v));
        }
        let out = region.insert_regions(&lists, 2);
        // b twice from region 0's end, d twice from the table's end.
        assert_eq!(
            out,
            RegionOutcome {
                dups: 2,
                spilled: 4
            }
        );
        assert_eq!((dups, region.len, serial.len), (2, 6, 6));
        for (k, v) in [(a, 1), (b, 6), (c, 4), (d, 8), (e, 3), (f, 7)] {
            assert_eq!(region.find(k).map(|f| f.1), Some(v), "{k:?}");
            assert_eq!(serial.find(k).map(|f| f.1), Some(v), "{k:?}");
        }
        // d wrapped past f (which sits at its home, slot 0) to slot 1.
        assert_eq!(region.find(d).map(|f| f.0), Some(1));
    }

    #[test]
    fn a_large_table_is_filled_on_threads() {
        let mut t = UuidTable::default();
        t.reserve(400_000, 3);
        assert!(t.slots.len() * SLOT >= PARALLEL_FILL_BYTES);
        assert!(t.slots.iter().all(|s| *s == EMPTY_SLOT));
        assert_eq!(t.len, 0);
        // Labels that do not fit without a rehash go in serially (the table grows as usual).
        let keys: Vec<(UKey, u64)> = (0..1_000_000u64).map(|i| (UKey(i, i * 3), i)).collect();
        let out = t.insert_regions(&[&keys[..]], 2);
        assert_eq!((out, t.len), (RegionOutcome::default(), 1_000_000));
        assert_eq!(t.find(UKey(7, 21)).map(|f| f.1), Some(7));
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
}
