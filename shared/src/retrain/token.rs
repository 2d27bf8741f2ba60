//! The client request token and display name of an execution, derived from the trigger alone.
//!
//! Both are pure functions of the trigger's identity (alarm name + state timestamp, schedule +
//! scheduled time, request id) and the pipeline, so every redelivery of one event — through
//! EventBridge or the alarm action, sequential or concurrent — yields the same token, and
//! `StartPipelineExecution` returns the one execution the first delivery started.
//!
//! SageMaker limits: `ClientRequestToken` 32-128 characters; `PipelineExecutionDisplayName` 1-82
//! characters matching `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}`.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub const TOKEN_MIN_LEN: usize = 32;
pub const TOKEN_MAX_LEN: usize = 128;
pub const DISPLAY_NAME_MAX_LEN: usize = 82;

/// `driftloop-<kind>-<64 hex of SHA-256(kind, identity fields, pipeline)>`: 80-86 characters of
/// `[a-z0-9-]`.
pub fn client_request_token(kind: &str, identity: &[&str], pipeline: &str) -> String {
    format!(
        "driftloop-{kind}-{}",
        hex(&identity_hash(kind, identity, pipeline))
    )
}

/// SHA-256 over the length-prefixed fields: no two different field lists hash the same input.
pub fn identity_hash(kind: &str, identity: &[&str], pipeline: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for field in std::iter::once(kind)
        .chain(identity.iter().copied())
        .chain(std::iter::once(pipeline))
    {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().into()
}

/// `<prefix>-<slug of name>-<YYYYMMDDTHHMMSSZ>-<8 hex of the token hash>`, at most 82 characters
/// of letters, digits and hyphens, starting and ending with a letter or digit.
pub fn display_name(prefix: &str, name: &str, time: DateTime<Utc>, token: &str) -> String {
    let stamp = time.format("%Y%m%dT%H%M%SZ").to_string();
    let tail = &token[token.len() - 8..];
    let prefix = slug(prefix, 16);
    let prefix = if prefix.is_empty() {
        "run".to_owned()
    } else {
        prefix
    };
    let fixed = prefix.len() + 1 + stamp.len() + 1 + tail.len();
    let room = DISPLAY_NAME_MAX_LEN.saturating_sub(fixed + 1);
    let name = slug(name, room);
    if name.is_empty() {
        format!("{prefix}-{stamp}-{tail}")
    } else {
        format!("{prefix}-{name}-{stamp}-{tail}")
    }
}

/// Letters and digits kept, every other run of characters one hyphen, no hyphen at either end,
/// at most `max` characters.
pub fn slug(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut pending_hyphen = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_hyphen && !out.is_empty() {
                out.push('-');
            }
            pending_hyphen = false;
            out.push(c);
        } else {
            pending_hyphen = true;
        }
        if out.len() >= max {
            break;
        }
    }
    out.truncate(max);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// True when `s` is a valid `PipelineExecutionDisplayName`.
pub fn is_valid_display_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= DISPLAY_NAME_MAX_LEN
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data` (the `sha2` crate).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sha256_standard_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(&sha256(&vec![b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn token_is_stable_bounded_and_field_separated() {
        let t = client_request_token("alarm", &["churn-drift", "1714564800000"], "churn-build");
        assert_eq!(
            t,
            client_request_token("alarm", &["churn-drift", "1714564800000"], "churn-build")
        );
        assert!(
            (TOKEN_MIN_LEN..=TOKEN_MAX_LEN).contains(&t.len()),
            "{}",
            t.len()
        );
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert!(t.starts_with("driftloop-alarm-"));
        // The value itself is part of the contract: a redelivery after an upgrade must build the
        // same token. (Computed independently with Python's hashlib over the same framing.)
        assert_eq!(
            t,
            "driftloop-alarm-4cead7be29603e23700d4c4b9feb9f356bce3ab8d7bf0af508cb29eae379782b"
        );
        // Moving a character from one field to the next changes the token.
        assert_ne!(
            t,
            client_request_token("alarm", &["churn-drift1", "714564800000"], "churn-build")
        );
        assert_ne!(
            t,
            client_request_token("alarm", &["churn-drift", "1714564800001"], "churn-build")
        );
        assert_ne!(
            t,
            client_request_token("alarm", &["churn-drift", "1714564800000"], "other")
        );
        assert_ne!(
            t,
            client_request_token("schedule", &["churn-drift", "1714564800000"], "churn-build")
        );
        // Even an enormous alarm name gives a token within the limits.
        let long = client_request_token("request", &[&"x".repeat(5000)], "p");
        assert!(long.len() <= TOKEN_MAX_LEN);
    }

    #[test]
    fn display_names_fit_sagemakers_pattern() {
        let time = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let token = client_request_token("alarm", &["a"], "p");
        let d = display_name("drift", "Churn / feature_drift (prod)", time, &token);
        assert!(
            d.starts_with("drift-Churn-feature-drift-prod-20240501T120000Z-"),
            "{d}"
        );
        assert!(is_valid_display_name(&d), "{d}");
        for name in ["", "---", "é€", &"a-".repeat(200), &"Z".repeat(300), "-x-"] {
            let d = display_name("scheduled", name, time, &token);
            assert!(is_valid_display_name(&d), "{name:?} -> {d:?} ({})", d.len());
        }
        assert_eq!(
            display_name("ondemand", "", time, &token).len(),
            "ondemand-20240501T120000Z-".len() + 8
        );
        assert!(!is_valid_display_name("-a"));
        assert!(!is_valid_display_name("a_b"));
        assert!(!is_valid_display_name(&"a".repeat(83)));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("a__b--c", 10), "a-b-c");
        assert_eq!(slug("__ab__", 10), "ab");
        assert_eq!(slug("abc-def", 4), "abc");
        assert_eq!(slug("abcdef", 3), "abc");
    }
}
