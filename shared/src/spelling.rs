//! Spellings the environment configuration and the model catalogue share (SDK-free, so the
//! catalogue's validator in the CLI and retrain-on-alarm's `Config` accept exactly the same text).

/// A duration written with a unit, in seconds: `90s`, `30m`, `6h`, `7d`, `1w` (long forms such as
/// `30 minutes` too); `0` alone is zero; at most a year.
pub fn duration_seconds(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().map_err(|_| {
        format!("expected a number with a unit, like \"30m\", \"6h\" or \"7d\" (got {s:?})")
    })?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        "" => {
            return Err(format!(
                "{s:?} has no unit: write e.g. \"{s}m\" or \"{s}h\""
            ));
        }
        other => return Err(format!("unknown unit {other:?}: use s, m, h, d or w")),
    };
    n.checked_mul(secs)
        .filter(|v| *v <= 366 * 86_400)
        .ok_or_else(|| format!("{s:?} is longer than a year"))
}

/// A SageMaker pipeline name (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}`) or a pipeline ARN.
pub fn pipeline(p: &str) -> Result<(), String> {
    let name = match p.split_once(":pipeline/") {
        Some((prefix, name)) if prefix.starts_with("arn:aws") => name,
        _ => p,
    };
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 256
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{p:?} is not a pipeline name (1-256 letters, digits and hyphens) or pipeline ARN"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_short_and_long_forms_agree() {
        for (text, secs) in [
            ("0", 0),
            ("90s", 90),
            ("30m", 1800),
            ("30 minutes", 1800),
            ("6h", 21_600),
            ("7d", 604_800),
            ("1w", 604_800),
        ] {
            assert_eq!(duration_seconds(text), Ok(secs), "{text}");
        }
        for bad in ["", "6", "h", "6y", "400d", "-1h"] {
            assert!(duration_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pipeline_names_and_arns() {
        assert!(pipeline("churn-build").is_ok());
        assert!(pipeline("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-build").is_ok());
        for bad in ["", "-x", "x-", "a_b", &"a".repeat(257)] {
            assert!(pipeline(bad).is_err(), "{bad}");
        }
    }
}
