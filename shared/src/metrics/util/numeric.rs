//! Floats: compensated sums, float parsing of scores and labels, and floats to and from JSON
//! (`"NaN"` / `"Infinity"` spelled as strings).

use serde::{Deserialize, Serialize};

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

/// `str::parse::<f64>`, with plain decimals read by the shorter `simple_decimal` (same value).
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
    use crate::metrics::util::SplitMix64;

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
}
