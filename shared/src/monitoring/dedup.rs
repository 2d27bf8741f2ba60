//! The burst rule: how a burst of ground-truth uploads makes one recomputation, not one per file.
//!
//! Every upload under the ground-truth prefix produces an `Object Created` event and an
//! invocation; a labelling job that writes 500 files would otherwise recompute the same window 500
//! times, overwrite its report 500 times and announce it 500 times. Each S3-triggered invocation,
//! for each window it affects:
//!
//! 1. **Debounce** (optional): waits `DEDUP_QUIET_SECONDS`, so uploads closer together than that
//!    count as one burst.
//! 2. **Newest upload wins**: lists the window's ground-truth objects and proceeds only when the
//!    object that triggered it is the newest of them (greatest `LastModified`, then greatest key;
//!    S3 listings are strongly consistent, so every invocation of the burst sees the same order).
//!    An older upload's invocation stops as `superseded`: the newest upload's own invocation runs
//!    after it and reads every file of the burst. An object that no longer exists stops as `vanished`.
//! 3. **Inputs unchanged → nothing to do**: a fingerprint of the window's inputs (every capture and
//!    ground-truth object's key, size and `LastModified`, the baselines and the settings) is stored
//!    in the window's `summary.json` once the run has published its metrics and its event. When it
//!    equals the stored one the window is `up_to_date` (a redelivered event, a retry after
//!    success, a burst member that ran after the newest one); a run that failed half-way stored no
//!    fingerprint, so its retry runs.
//!
//! What such a run puts to CloudWatch — a provisional figure, the final one, or nothing — is the
//! rule of [`super::publication`]: rule 3 skips identical inputs before computing, the
//! publication record makes sure no datum set is ever put twice.
//!
//! The report keys are deterministic per window, so even two runs that race (an exact duplicate
//! delivery processed concurrently) overwrite the same three objects; their events carry the same
//! `runId` (window + fingerprint) for consumers to drop the duplicate.

use crate::storage::{ObjectInfo, S3Uri};

/// FNV-1a, 64 bit: stable across Rust versions and processes (unlike `DefaultHasher`).
pub fn fnv1a64(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fingerprint of ordered parts (each part delimited, so `["ab","c"] != ["a","bc"]`).
pub fn fingerprint<I, S>(parts: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325_u64, 0x8422_2325_cbf2_9ce4_u64);
    for p in parts {
        let p = p.as_ref().as_bytes();
        a = fnv1a64(p, a);
        a = fnv1a64(&[0xff], a);
        b = fnv1a64(p, b.rotate_left(5));
        b = fnv1a64(&(p.len() as u64).to_le_bytes(), b);
    }
    format!("{a:016x}{b:016x}")
}

/// The fingerprint parts of listed objects: `uri size last-modified`, sorted.
pub fn object_parts(objects: &[ObjectInfo]) -> Vec<String> {
    let mut v: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {} {}",
                o.uri,
                o.size,
                o.last_modified.map(|t| t.timestamp_millis()).unwrap_or(0)
            )
        })
        .collect();
    v.sort();
    v
}

/// The newest object: greatest `LastModified` (unknown sorts first), then greatest key.
pub fn newest(objects: &[ObjectInfo]) -> Option<&ObjectInfo> {
    objects.iter().max_by(|a, b| {
        (a.last_modified, &a.uri.bucket, &a.uri.key).cmp(&(
            b.last_modified,
            &b.uri.bucket,
            &b.uri.key,
        ))
    })
}

/// What an S3-triggered invocation does with one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// A newer upload's invocation will compute the window.
    Superseded {
        newer: S3Uri,
    },
    /// The triggering object is gone.
    Vanished,
    /// The stored report was computed from exactly these inputs.
    UpToDate,
    /// The window has not ended yet: predictions are still being captured
    /// ([`super::trigger::plan_windows`]).
    Open,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Run => "run",
            Decision::Superseded { .. } => "superseded",
            Decision::Vanished => "vanished",
            Decision::UpToDate => "up_to_date",
            Decision::Open => "open",
        }
    }
}

/// `%XX` and `+` decoded, as S3 event notifications encode keys (EventBridge's events carry the
/// key as is; both spellings are accepted). `None` when there is nothing to decode or it is not
/// valid percent-encoded UTF-8.
pub fn url_decoded(key: &str) -> Option<String> {
    if !key.contains(['%', '+']) {
        return None;
    }
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Rule 2: the newest-upload check, on the window's ground-truth listing.
pub fn newest_wins(trigger: &S3Uri, ground_truth: &[ObjectInfo]) -> Decision {
    let decoded = url_decoded(&trigger.key).map(|key| S3Uri {
        bucket: trigger.bucket.clone(),
        key,
    });
    let Some(found) = ground_truth
        .iter()
        .find(|o| &o.uri == trigger || Some(&o.uri) == decoded.as_ref())
    else {
        return Decision::Vanished;
    };
    match newest(ground_truth) {
        Some(n) if n.uri != found.uri => Decision::Superseded {
            newer: n.uri.clone(),
        },
        _ => Decision::Run,
    }
}

/// Rule 3: the stored fingerprint check.
pub fn inputs_changed(previous: Option<&str>, current: &str) -> Decision {
    if previous == Some(current) {
        Decision::UpToDate
    } else {
        Decision::Run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn obj(key: &str, secs: Option<i64>) -> ObjectInfo {
        ObjectInfo {
            uri: S3Uri {
                bucket: "b".into(),
                key: key.into(),
            },
            size: 10,
            last_modified: secs.map(|s| Utc.timestamp_opt(1_714_550_400 + s, 0).unwrap()),
        }
    }

    #[test]
    fn only_the_newest_upload_of_a_burst_runs() {
        let burst: Vec<ObjectInfo> = (0..5)
            .map(|i| obj(&format!("gt/2024/05/01/10/part-{i}.jsonl"), Some(i / 2)))
            .collect();
        let decisions: Vec<Decision> = burst.iter().map(|o| newest_wins(&o.uri, &burst)).collect();
        assert_eq!(decisions.iter().filter(|d| **d == Decision::Run).count(), 1);
        assert_eq!(
            decisions[4],
            Decision::Run,
            "part-4 is the newest (latest second, then greatest key)"
        );
        assert_eq!(
            decisions[0],
            Decision::Superseded {
                newer: burst[4].uri.clone()
            }
        );
        // Same second: the greatest key breaks the tie, identically for every invocation.
        let tied = vec![obj("gt/a", Some(1)), obj("gt/b", Some(1))];
        assert_eq!(newest_wins(&tied[1].uri, &tied), Decision::Run);
        assert!(matches!(
            newest_wins(&tied[0].uri, &tied),
            Decision::Superseded { .. }
        ));
        assert_eq!(
            newest_wins(
                &S3Uri {
                    bucket: "b".into(),
                    key: "gone".into()
                },
                &tied
            ),
            Decision::Vanished
        );
    }

    #[test]
    fn url_encoded_trigger_keys_are_recognised() {
        let listing = vec![obj("gt/2024/05/01/10/red flower:1.jsonl", Some(1))];
        let encoded = S3Uri {
            bucket: "b".into(),
            key: "gt/2024/05/01/10/red+flower%3A1.jsonl".into(),
        };
        assert_eq!(newest_wins(&encoded, &listing), Decision::Run);
        assert_eq!(newest_wins(&listing[0].uri, &listing), Decision::Run);
        assert_eq!(url_decoded("a%2"), None);
        assert_eq!(url_decoded("plain"), None);
    }

    #[test]
    fn fingerprints_change_with_any_input() {
        let a = vec![obj("x", Some(1)), obj("y", Some(2))];
        let f1 = fingerprint(object_parts(&a));
        let mut b = a.clone();
        b.reverse();
        assert_eq!(
            f1,
            fingerprint(object_parts(&b)),
            "order of listing does not matter"
        );
        b[0].size = 11;
        assert_ne!(f1, fingerprint(object_parts(&b)));
        assert_ne!(fingerprint(["ab", "c"]), fingerprint(["a", "bc"]));
        assert_eq!(f1.len(), 32);
        assert_eq!(inputs_changed(Some(&f1), &f1), Decision::UpToDate);
        assert_eq!(inputs_changed(None, &f1), Decision::Run);
        assert_eq!(inputs_changed(Some("other"), &f1), Decision::Run);
    }
}
