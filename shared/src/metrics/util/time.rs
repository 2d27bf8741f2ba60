//! Timestamps: SageMaker's `inferenceTime` spellings to epoch milliseconds and back.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
