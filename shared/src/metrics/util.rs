//! Small numeric and text helpers shared by the engine: compensated sums, a seeded PRNG and key
//! hash, a CSV field splitter, a fast UTC timestamp parser, JSON path lookup and label
//! canonicalisation.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Neumaier-compensated sum: keeps float sums accurate to ~1 ulp over millions of terms, so a sum
/// computed in parts and merged agrees with the single-pass sum to ~1e-15 relative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct KahanSum {
    pub sum: f64,
    pub comp: f64,
}

impl KahanSum {
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    #[inline]
    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
    pub fn merge(&mut self, other: &KahanSum) {
        self.add(other.sum);
        self.add(other.comp);
    }
}

/// SplitMix64 finaliser: a fast, well-mixing 64-bit permutation.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeded 64-bit hash of a byte string (FNV-style absorption of 8-byte words + SplitMix64
/// finalisation). Used for deterministic subsample membership; not a cryptographic hash.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = mix64(seed ^ (bytes.len() as u64));
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = mix64(h ^ w);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rem.len()].copy_from_slice(rem);
        h = mix64(h ^ u64::from_le_bytes(buf) ^ 0xFF);
    }
    h
}

/// A tiny seeded PRNG (SplitMix64 stream), used where the engine needs reproducible randomness.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Splits one CSV row into fields (RFC 4180 quoting: `"a,b"` and doubled quotes `""`). Fields
/// without quotes are borrowed. A trailing `\r` is ignored.
pub fn split_csv(line: &str) -> CsvFields<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    CsvFields { rest: Some(line) }
}

pub struct CsvFields<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for CsvFields<'a> {
    type Item = Cow<'a, str>;
    fn next(&mut self) -> Option<Cow<'a, str>> {
        let s = self.rest?;
        if let Some(body) = s.strip_prefix('"') {
            // Quoted field: doubled quotes are an escaped quote; an unterminated quote takes the rest.
            let mut out = String::new();
            let mut rem = body;
            loop {
                match rem.find('"') {
                    None => {
                        out.push_str(rem);
                        self.rest = None;
                        return Some(Cow::Owned(out));
                    }
                    Some(j) => {
                        out.push_str(&rem[..j]);
                        let after = &rem[j + 1..];
                        if let Some(st) = after.strip_prefix('"') {
                            out.push('"');
                            rem = st;
                        } else {
                            self.rest = after.find(',').map(|k| &after[k + 1..]);
                            return Some(Cow::Owned(out));
                        }
                    }
                }
            }
        } else {
            match s.find(',') {
                Some(i) => {
                    self.rest = Some(&s[i + 1..]);
                    Some(Cow::Borrowed(&s[..i]))
                }
                None => {
                    self.rest = None;
                    Some(Cow::Borrowed(s))
                }
            }
        }
    }
}

/// Returns the `idx`-th CSV field of `line` without collecting the others.
pub fn csv_field(line: &str, idx: usize) -> Option<Cow<'_, str>> {
    if !line.contains('"') {
        // Fast path: no quoting.
        let line = line.strip_suffix('\r').unwrap_or(line);
        return line.split(',').nth(idx).map(Cow::Borrowed);
    }
    split_csv(line).nth(idx)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff...](Z|±HH:MM)` into milliseconds since the Unix epoch.
/// A fast path handles SageMaker's `2022-04-18T00:21:48Z` / `...48.123Z`; anything else is tried
/// as RFC 3339 via chrono.
pub fn parse_time_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':'
    {
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + (c - b'0') as i64;
            }
            Some(v)
        };
        let (y, mo, d, h, mi, se) = (
            num(0..4)?,
            num(5..7)?,
            num(8..10)?,
            num(11..13)?,
            num(14..16)?,
            num(17..19)?,
        );
        let mut i = 19;
        let mut millis = 0i64;
        if b[i] == b'.' {
            i += 1;
            let mut digits = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                if digits < 3 {
                    millis = millis * 10 + (b[i] - b'0') as i64;
                }
                digits += 1;
                i += 1;
            }
            if digits == 0 {
                return None;
            }
            for _ in digits..3 {
                millis *= 10;
            }
        }
        if i == b.len() - 1
            && b[i] == b'Z'
            && (1..=12).contains(&mo)
            && (1..=31).contains(&d)
            && h < 24
            && mi < 60
            && se < 61
        {
            let days = days_from_civil(y, mo, d);
            return Some(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + millis);
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch milliseconds as `2023-03-30T21:08:34.729Z`.
pub fn format_time_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

/// A location inside a JSON document: `a.b[0].c`, `$.a.b`, `predictions[0].score`, or a bare key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPath(pub Vec<PathSeg>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(s: &str) -> JsonPath {
        let s = s.trim();
        let s = s
            .strip_prefix("$.")
            .or_else(|| s.strip_prefix('$'))
            .unwrap_or(s);
        let mut segs = Vec::new();
        for part in s.split('.') {
            if part.is_empty() {
                continue;
            }
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                if let Ok(i) = key.parse::<usize>() {
                    segs.push(PathSeg::Index(i));
                } else {
                    segs.push(PathSeg::Key(key.to_string()));
                }
            }
            while let Some(r) = rest.strip_prefix('[') {
                match r.find(']') {
                    Some(j) => {
                        let inner = r[..j].trim_matches(|c| c == '\'' || c == '"');
                        match inner.parse::<usize>() {
                            Ok(i) => segs.push(PathSeg::Index(i)),
                            Err(_) => segs.push(PathSeg::Key(inner.to_string())),
                        }
                        rest = &r[j + 1..];
                    }
                    None => break,
                }
            }
        }
        JsonPath(segs)
    }

    pub fn lookup<'v>(&self, mut v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        for seg in &self.0 {
            v = match (seg, v) {
                (PathSeg::Key(k), serde_json::Value::Object(m)) => m.get(k)?,
                (PathSeg::Index(i), serde_json::Value::Array(a)) => a.get(*i)?,
                (PathSeg::Key(k), serde_json::Value::Array(a)) => {
                    a.get(k.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(v)
    }
}

/// `str::parse::<f64>`, with plain decimals read by the shorter [`simple_decimal`] (same value).
#[inline]
pub fn parse_float(s: &str) -> Result<f64, std::num::ParseFloatError> {
    simple_decimal(s.as_bytes()).map_or_else(|| s.parse(), Ok)
}

/// Parses a float from a label/score text; accepts surrounding whitespace and `true`/`false`
/// (as 1/0). Returns None for anything else.
#[inline]
pub fn parse_f64(s: &str) -> Option<f64> {
    let t = s.trim();
    match parse_float(t) {
        Ok(v) => Some(v),
        Err(_) => match t {
            "true" | "True" | "TRUE" => Some(1.0),
            "false" | "False" | "FALSE" => Some(0.0),
            _ => None,
        },
    }
}

/// `-?digits(.digits)?` with at most 19 digits whose value is below 2^53, read
/// exactly as `str::parse::<f64>` reads it (Clinger's fast path: the digits as an integer below
/// 2^53 and a power of ten up to 10^22 are both exact, so one division rounds correctly).
/// None for anything else.
#[inline]
fn simple_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut m: u64 = 0;
    let mut n_digits = 0;
    let mut frac: Option<usize> = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                if n_digits == 19 {
                    return None;
                }
                m = m * 10 + u64::from(c - b'0');
                n_digits += 1;
            }
            b'.' if frac.is_none() && i > 0 && i + 1 < digits.len() => frac = Some(i),
            _ => return None,
        }
    }
    let scale = frac.map_or(0, |i| digits.len() - i - 1);
    if m >= 1 << 53 || scale >= POW10.len() {
        return None;
    }
    let v = m as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Canonical class label: trimmed, surrounding quotes removed, and integral numbers written without
/// a fraction (`1.0` and `1` are the same class). Other text is kept as is.
pub fn canonical_label(s: &str) -> Cow<'_, str> {
    let t = s.trim().trim_matches('"');
    // Fast path: plain integers without leading zeros are already canonical.
    let b = t.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty()
        && digits.len() < 15
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0')
        && t != "-0"
    {
        return Cow::Borrowed(t);
    }
    if let Ok(v) = t.parse::<f64>()
        && v.is_finite()
        && v.fract() == 0.0
        && v.abs() < 1e15
    {
        let as_int = format!("{}", v as i64);
        if as_int != t {
            return Cow::Owned(as_int);
        }
    }
    Cow::Borrowed(t)
}

/// JSON value → label text (strings as is, numbers/bools in their JSON form).
pub fn json_scalar_text(v: &serde_json::Value) -> Option<Cow<'_, str>> {
    match v {
        serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
        serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        serde_json::Value::Array(a) if a.len() == 1 => {
            json_scalar_text(&a[0]).map(|c| Cow::Owned(c.into_owned()))
        }
        _ => None,
    }
}

/// Finite-or-None float formatting for JSON: NaN/inf are written as the string "NaN"/"Infinity".
pub fn json_f64(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else if v.is_nan() {
        serde_json::Value::String("NaN".into())
    } else if v > 0.0 {
        serde_json::Value::String("Infinity".into())
    } else {
        serde_json::Value::String("-Infinity".into())
    }
}

/// Reads a float from a JSON value that may be a number or one of the strings "NaN", "Infinity".
pub fn value_f64(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.trim().parse().ok(),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_split_handles_quotes() {
        let v: Vec<_> = split_csv(r#"1,"a,b",,"x""y",3"#).collect();
        assert_eq!(v, vec!["1", "a,b", "", "x\"y", "3"]);
        assert_eq!(csv_field("0.5,1,2", 1).as_deref(), Some("1"));
        assert_eq!(csv_field(r#""q,1",7"#, 1).as_deref(), Some("7"));
        assert_eq!(split_csv("").collect::<Vec<_>>(), vec![""]);
        assert_eq!(
            split_csv("\"unterminated").collect::<Vec<_>>(),
            vec!["unterminated"]
        );
    }

    #[test]
    fn simple_decimals_read_as_std_parse() {
        let mut rng = SplitMix64(3);
        let mut fast = 0;
        for i in 0..200_000u64 {
            let r = rng.next_u64();
            let digits = 1 + (r % 21) as usize;
            let mut t: String = (0..digits)
                .map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8))
                .collect();
            if r & (1 << 10) != 0 {
                let at = (rng.next_u64() % (t.len() as u64 + 1)) as usize;
                t.insert(at, '.');
            }
            if r & (1 << 11) != 0 {
                t.insert(0, '-');
            }
            match i % 50 {
                0 => t.push(' '),
                1 => t.push('e'),
                2 => t.insert(0, '+'),
                _ => {}
            }
            let want = t.trim().parse::<f64>().ok();
            let got = simple_decimal(t.as_bytes());
            if let Some(g) = got {
                fast += 1;
                assert_eq!(Some(g.to_bits()), want.map(f64::to_bits), "{t:?}");
            }
            assert_eq!(
                parse_f64(&t).map(f64::to_bits),
                want.map(f64::to_bits),
                "{t:?}"
            );
        }
        assert!(fast > 50_000, "{fast}");
        for t in [
            "0.298940",
            "-0",
            "1",
            "0.5",
            "9007199254740991",
            "123456.789012345",
        ] {
            assert_eq!(simple_decimal(t.as_bytes()), t.parse().ok(), "{t}");
        }
        for t in [
            "",
            "-",
            ".5",
            "5.",
            "1e3",
            " 1",
            "1 ",
            "+1",
            "1.2.3",
            "9007199254740993",
            "0.00000000000000000000001",
        ] {
            assert_eq!(simple_decimal(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn time_parse() {
        assert_eq!(parse_time_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time_millis("2022-04-18T00:21:48Z"),
            Some(1_650_241_308_000)
        );
        assert_eq!(
            parse_time_millis("2022-04-18T00:21:48.5Z"),
            Some(1_650_241_308_500)
        );
        assert_eq!(
            parse_time_millis("2022-04-18T02:21:48+02:00"),
            Some(1_650_241_308_000)
        );
        assert_eq!(parse_time_millis("garbage"), None);
        assert_eq!(
            format_time_millis(1_650_241_308_500),
            "2022-04-18T00:21:48.500Z"
        );
    }

    #[test]
    fn json_path() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"predictions":[{"score":0.7}],"label":"a"}"#).unwrap();
        assert_eq!(
            JsonPath::parse("predictions[0].score").lookup(&v),
            Some(&serde_json::json!(0.7))
        );
        assert_eq!(
            JsonPath::parse("$.label").lookup(&v),
            Some(&serde_json::json!("a"))
        );
        assert_eq!(
            JsonPath::parse("predictions.0.score").lookup(&v),
            Some(&serde_json::json!(0.7))
        );
        assert_eq!(JsonPath::parse("nope").lookup(&v), None);
    }

    #[test]
    fn labels_and_sums() {
        assert_eq!(canonical_label(" 1.0 "), "1");
        assert_eq!(canonical_label("cat"), "cat");
        let mut k = KahanSum::default();
        for _ in 0..10 {
            k.add(0.1);
        }
        assert_eq!(k.value(), 1.0);
        assert_ne!(hash_bytes(1, b"abc"), hash_bytes(2, b"abc"));
    }
}
