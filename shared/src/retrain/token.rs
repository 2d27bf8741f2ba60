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
    let mut input = Vec::new();
    for field in std::iter::once(kind)
        .chain(identity.iter().copied())
        .chain(std::iter::once(pipeline))
    {
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field.as_bytes());
    }
    sha256(&input)
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

/// SHA-256 (FIPS 180-4). The workspace has no hashing crate; this is the reference algorithm,
/// checked against the standard test vectors below.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
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
