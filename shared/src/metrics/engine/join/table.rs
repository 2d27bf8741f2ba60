//! The UUID-keyed side of the label store: an open-addressing (linear probing) table of 24-byte
//! slots, first touched on several threads (huge-page advice first), and its insert by slot
//! region on several threads (`UuidTable::insert_regions`).

use super::{BOX, TAG_SHIFT, UKey};
use crate::metrics::util::mix64;

const TAG_EMPTY: u64 = 5;
pub(super) const EMPTY: u64 = BOX | (TAG_EMPTY << TAG_SHIFT);

/// Open-addressing (linear probing) table of UUID keys -> packed labels, 24-byte slots: one cache
/// miss per lookup on the hot join path (the keys are already random, so a light mix suffices).
pub(super) struct UuidTable {
    pub(super) slots: Vec<Slot>,
    pub(super) len: usize,
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
pub(super) type Slot = (u64, u64, u64);
/// Bytes of one slot.
pub(super) const SLOT: usize = std::mem::size_of::<Slot>();
pub(super) const EMPTY_SLOT: Slot = (0, 0, EMPTY);

/// Tables from this size are filled on several threads ([`empty_slots`]).
pub(super) const PARALLEL_FILL_BYTES: usize = 8 << 20;

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
    pub(super) fn reserve(&mut self, n: usize, threads: usize) {
        let want = (n.saturating_mul(10) / 7).next_power_of_two().max(16);
        if want > self.slots.len() {
            self.rehash(want, threads);
        }
    }
    /// Whether `n` more keys fit without a rehash (each [`Self::insert`] of a new key grows
    /// the table only when it would pass 7/10 full).
    pub(super) fn fits(&self, n: usize) -> bool {
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
    pub(super) fn get_mut(&mut self, k: UKey) -> Option<&mut u64> {
        let (i, _) = self.find(k)?;
        Some(&mut self.slots[i].2)
    }
    /// Returns true when the key was present (value replaced).
    pub(super) fn insert(&mut self, k: UKey, v: u64) -> bool {
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
    pub(super) fn find(&self, k: UKey) -> Option<(usize, u64)> {
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
    pub(super) fn get(&self, k: UKey) -> Option<u64> {
        self.find(k).map(|(_, v)| v)
    }
    /// Hints the CPU to load the slot of `k` (the insert follows a few records later).
    #[inline]
    pub(super) fn prefetch(&self, k: UKey) {
        prefetch_slot(self.slots.as_ptr().wrapping_add(self.slot_of(k)));
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &u64> {
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
pub(super) struct RegionOutcome {
    pub(super) dups: u64,
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
    pub(super) fn insert_regions(
        &mut self,
        lists: &[&[(UKey, u64)]],
        threads: usize,
    ) -> RegionOutcome {
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

#[cfg(test)]
mod tests {
    use super::super::MATCHED;
    use super::*;

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
