//! Deterministic SageMaker resource names: the same package and stage settings always give the same
//! model and endpoint-config names, so a replayed event reuses what the first delivery created.

/// SageMaker model, endpoint and endpoint-config names: `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
pub const MAX_NAME: usize = 63;

/// 64-bit FNV-1a: stable across Rust versions and platforms (std's hasher is not).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Keeps letters, digits and single hyphens; no leading or trailing hyphen.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches('-').to_owned()
}

/// `{base}{suffix}` within [`MAX_NAME`]: when too long, `base` is cut and a hash of the full base
/// keeps distinct bases distinct.
pub fn bounded(base: &str, suffix: &str) -> String {
    let base = sanitize(base);
    let full = format!("{base}{suffix}");
    if full.len() <= MAX_NAME {
        return full;
    }
    let tag = format!("-{:08x}", fnv1a(base.as_bytes()) as u32);
    let keep = MAX_NAME.saturating_sub(suffix.len() + tag.len());
    let cut = base[..keep.min(base.len())].trim_end_matches('-');
    format!("{cut}{tag}{suffix}")
}

/// The model of a package version: `{group}-v{version}`.
pub fn model_name(group: &str, version: i64) -> String {
    bounded(group, &format!("-v{version}"))
}

/// The endpoint config of an endpoint serving a package version with given settings:
/// `{endpoint}-v{version}-{hash of settings}`. A change of instance type, count or capture settings
/// gives a new name (endpoint configs are immutable).
pub fn endpoint_config_name(endpoint: &str, version: i64, settings_fingerprint: &str) -> String {
    let h = fnv1a(settings_fingerprint.as_bytes()) as u32;
    bounded(endpoint, &format!("-v{version}-{h:08x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        name.len() <= MAX_NAME
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && !name.ends_with('-')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.contains("--")
    }

    #[test]
    fn short_names_are_readable() {
        assert_eq!(model_name("churn", 3), "churn-v3");
        let a = endpoint_config_name("churn-staging", 3, "ml.m5.large|1");
        assert!(a.starts_with("churn-staging-v3-"), "{a}");
        assert_eq!(a, endpoint_config_name("churn-staging", 3, "ml.m5.large|1"));
        assert_ne!(
            a,
            endpoint_config_name("churn-staging", 3, "ml.m5.xlarge|1")
        );
    }

    #[test]
    fn long_names_stay_valid_and_distinct() {
        let g1 = "a".repeat(63);
        let g2 = format!("{}b", "a".repeat(62));
        let (n1, n2) = (model_name(&g1, 1234), model_name(&g2, 1234));
        assert!(valid(&n1) && valid(&n2), "{n1} {n2}");
        assert_ne!(n1, n2);
        assert!(n1.ends_with("-v1234"));
        let c = endpoint_config_name(&"e-".repeat(40), 7, "x");
        assert!(valid(&c), "{c}");
    }

    #[test]
    fn odd_characters_are_replaced() {
        assert_eq!(model_name("my_group.name", 1), "my-group-name-v1");
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }
}
