//! Byte-level helpers of the parsers: newline search (the `memchr` crate), JSON string and number
//! ends, and short-slice equality. The SWAR routines (SIMD within a register: eight bytes per
//! `u64` step) keep their scalar definition beside them, and tests compare the two.

/// Position of the first `\n` in `b` (`memchr`: vectorised where the CPU allows).
#[inline]
pub(crate) fn find_newline(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// SWAR: high bit set in the bytes of `w` that are `"`, `\` or a control character (< 0x20), by
/// the has-zero-byte trick (`(x - 0x01..) & !x & 0x80..`) on `w ^ c` for each quote and on `w`
/// against 0x20. Bytes above the first flagged one may be flagged spuriously (borrows), the lowest
/// flag is exact. [`is_special`] is the scalar definition.
#[inline(always)]
fn special_mask(w: u64) -> u64 {
    let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let q = q.wrapping_sub(ONES) & !q;
    let bs = w ^ (ONES * b'\\' as u64);
    let bs = bs.wrapping_sub(ONES) & !bs;
    (ctrl | q | bs) & HIGH
}

#[inline(always)]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// Index of the first `"`, `\` or control byte at or after `i`: [`special_mask`] eight bytes at a
/// time, then [`is_special`] on the tail. (`memchr3` finds three bytes but not the control range.)
#[inline(always)]
fn find_special(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let m = special_mask(w);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if is_special(c) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The closing quote of a string body starting at `i` (after the opening quote) and whether the
/// body has escapes; None on a raw control character, an invalid escape or a missing quote.
#[inline(always)]
pub(crate) fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        let j = find_special(b, i)?;
        match b[j] {
            b'"' => return Some((j, escaped)),
            b'\\' => {
                escaped = true;
                i = escape_end(b, j + 1)?;
            }
            _ => return None,
        }
    }
}

/// The end of one escape starting after its backslash, validated like serde_json's
/// `ignore_escape`.
#[cold]
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => {
            let hex = b.get(i + 1..i + 5)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 5)
        }
        _ => None,
    }
}

fn digits_end(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// The end of a number starting at `i` by JSON's grammar (serde_json's `ignore_integer` /
/// `_decimal` / `_exponent`); the longest match, as serde reads it.
pub(crate) fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if let Some(b'0'..=b'9') = b.get(i) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits_end(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let e = digits_end(b, i + 1);
        if e == i + 1 {
            return None;
        }
        i = e;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let e = digits_end(b, i);
        if e == i {
            return None;
        }
        i = e;
    }
    Some(i)
}

/// `a == b` for slices of equal length, inlined word by word (literals are short: a call to
/// `memcmp` per literal costs more than the comparison).
#[inline(always)]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
    if n < 8 {
        let half =
            |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or([0; 4]));
        return if n >= 4 {
            // Two (overlapping) 4-byte halves.
            half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
        } else {
            a.iter().zip(b).all(|(x, y)| x == y)
        };
    }
    if n <= 16 {
        // Two (overlapping) words.
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    let wide = |s: &[u8], i: usize| u128::from_le_bytes(s[i..i + 16].try_into().unwrap_or([0; 16]));
    let mut i = 0;
    while i + 16 <= n {
        if wide(a, i) != wide(b, i) {
            return false;
        }
        i += 16;
    }
    // The last (overlapping) 16 bytes cover the tail.
    wide(a, n - 16) == wide(b, n - 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::util::SplitMix64;

    #[test]
    fn special_byte_search_matches_naive() {
        let mut rng = SplitMix64(7);
        for _ in 0..20_000 {
            let n = (rng.next_u64() % 40) as usize;
            let b: Vec<u8> = (0..n)
                .map(|_| match rng.next_u64() % 6 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (rng.next_u64() % 0x20) as u8,
                    _ => (rng.next_u64() % 256) as u8,
                })
                .collect();
            let start = (rng.next_u64() % (n as u64 + 1)) as usize;
            let naive = (start..n).find(|&i| is_special(b[i]));
            assert_eq!(find_special(&b, start), naive, "{b:?} from {start}");
        }
    }

    #[test]
    fn newline_search_matches_naive() {
        let mut rng = SplitMix64(17);
        for _ in 0..20_000 {
            let n = (rng.next_u64() % 70) as usize;
            let b: Vec<u8> = (0..n)
                .map(|_| match rng.next_u64() % 8 {
                    0 => b'\n',
                    1 => b'\r',
                    _ => (rng.next_u64() % 256) as u8,
                })
                .collect();
            assert_eq!(
                find_newline(&b),
                b.iter().position(|&c| c == b'\n'),
                "{b:?}"
            );
        }
    }

    #[test]
    fn word_equality_matches_slice_equality() {
        let mut rng = SplitMix64(23);
        for _ in 0..20_000 {
            let n = (rng.next_u64() % 40) as usize;
            let a: Vec<u8> = (0..n).map(|_| (rng.next_u64() % 4) as u8).collect();
            let mut b = a.clone();
            if n > 0 && rng.next_u64().is_multiple_of(2) {
                let i = (rng.next_u64() % n as u64) as usize;
                b[i] ^= 1 + (rng.next_u64() % 3) as u8;
            }
            assert_eq!(same(&a, &b), a == b, "{a:?} {b:?}");
        }
        assert!(!same(b"ab", b"abc"));
    }
}
