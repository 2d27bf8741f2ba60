//! The per-pipeline lease that makes check-then-start atomic.
//!
//! [`super::evaluate`] lists the pipeline's executions, decides, and starts. Two *different*
//! triggers (two alarms, an alarm and the schedule) that run at once both see no execution and
//! both start one: their `ClientRequestToken`s differ, so SageMaker's idempotency cannot help.
//! The lease serialises them per pipeline: one S3 object per pipeline
//! (`<LEASE_S3_URI>/<pipeline>.json`), only ever written conditionally:
//!
//! - absent → created with `If-None-Match: *`;
//! - released, or held past its `expires` (a holder that crashed or timed out) → taken over with
//!   `If-Match: <its ETag>`;
//! - held → wait (poll) up to [`LeaseSettings::wait`], then fail `Retryable.LeaseHeld` so the
//!   invocation is retried.
//!
//! S3 applies a conditional write atomically: of two writers with the same precondition, one gets
//! `412 PreconditionFailed` (or `409 ConditionalRequestConflict`) and tries again from a fresh
//! read. The lease is never deleted: releasing it is a conditional write too, which keeps the
//! execution the holder started ([`LeaseState::last_started`]). The next holder merges that into
//! the listed executions, so a `ListPipelineExecutions` that lags a start cannot make it start a
//! second execution.
//!
//! The lease lasts [`LeaseSettings::ttl`] (the function's timeout): a crashed holder blocks the
//! pipeline at most that long.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{AwsError, Classify, ErrorClass};
use crate::pipelines::{ExecutionStatus, ExecutionSummary};
use crate::storage::S3Uri;

/// An object as read: its body and `ETag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub body: Vec<u8>,
    pub etag: String,
}

/// Conditional writes of one object (S3 `PutObject` with `If-None-Match` / `If-Match`).
#[async_trait]
pub trait ConditionalStore: Send + Sync {
    /// The object, or `None` when there is none.
    async fn read(&self, uri: &S3Uri) -> Result<Option<Versioned>, AwsError>;

    /// Writes `body` only if the object is absent (`expected: None`) or still has ETag
    /// `expected`. `Ok(Some(etag))`: written; `Ok(None)`: the precondition failed (someone else
    /// wrote first).
    async fn write_if(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
    ) -> Result<Option<String>, AwsError>;
}

/// The lease object's body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseState {
    /// Who holds it (the trigger's client request token), `None` once released.
    #[serde(default)]
    pub holder: Option<String>,
    #[serde(default)]
    pub acquired: Option<DateTime<Utc>>,
    /// Past this, the lease counts as released.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
    /// The last execution a holder started.
    #[serde(default)]
    pub last_started: Option<ExecutionSummary>,
}

impl LeaseState {
    pub fn is_held(&self, now: DateTime<Utc>) -> bool {
        self.holder.is_some() && self.expires.is_some_and(|e| e > now)
    }
}

/// How long a lease lasts and how long to wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// The function's timeout: a holder is done (or dead) by then.
    pub ttl: Duration,
    /// How long to wait for a held lease before failing `Retryable.LeaseHeld`.
    pub wait: std::time::Duration,
    /// The pause between reads of a held lease.
    pub poll: std::time::Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::seconds(60),
            wait: std::time::Duration::from_secs(20),
            poll: std::time::Duration::from_millis(100),
        }
    }
}

/// Where the leases live and how they behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The prefix the per-pipeline objects go under.
    pub prefix: S3Uri,
    pub settings: LeaseSettings,
}

impl LeaseConfig {
    /// The lease object of `pipeline` (a name or an ARN: the name after `:pipeline/`).
    pub fn object(&self, pipeline: &str) -> S3Uri {
        let name = pipeline
            .split_once(":pipeline/")
            .map_or(pipeline, |(_, n)| n);
        let mut key = self.prefix.key.clone();
        if !key.is_empty() && !key.ends_with('/') {
            key.push('/');
        }
        S3Uri {
            bucket: self.prefix.bucket.clone(),
            key: format!("{key}{name}.json"),
        }
    }
}

/// A lease this invocation holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub object: S3Uri,
    pub etag: String,
    pub state: LeaseState,
}

/// Why no lease was had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "the lease {object} on pipeline {pipeline} is held by {holder} until {expires}; another trigger is deciding for this pipeline (retry)"
    )]
    Held {
        pipeline: String,
        object: String,
        holder: String,
        expires: String,
    },
    #[error("the lease {object} is not a lease object: {message}")]
    Corrupt { object: String, message: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for LeaseError {
    fn class(&self) -> ErrorClass {
        match self {
            LeaseError::Held { .. } => ErrorClass::Retryable,
            LeaseError::Corrupt { .. } => ErrorClass::Permanent,
            LeaseError::Aws(e) => e.class(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            LeaseError::Held { .. } => "LeaseHeld",
            LeaseError::Corrupt { .. } => "LeaseCorrupt",
            LeaseError::Aws(e) => e.code(),
        }
    }
}

/// Takes the lease of `pipeline` for `holder`, waiting up to `settings.wait` for a held one.
/// `Ok(None)`: the lease is held by `holder` itself, i.e. a concurrent delivery of the same
/// trigger; its `ClientRequestToken` already makes that race start one execution, so it goes on
/// without the lease instead of queueing behind its twin.
pub async fn acquire(
    store: &dyn ConditionalStore,
    config: &LeaseConfig,
    pipeline: &str,
    holder: &str,
    clock: &Clock,
) -> Result<Option<Held>, LeaseError> {
    let object = config.object(pipeline);
    let settings = config.settings;
    let started = std::time::Instant::now();
    let mut polls = 0u32;
    loop {
        let now = clock();
        let current = store.read(&object).await?;
        let previous = match &current {
            None => LeaseState::default(),
            Some(v) => {
                serde_json::from_slice::<LeaseState>(&v.body).map_err(|e| LeaseError::Corrupt {
                    object: object.to_string(),
                    message: e.to_string(),
                })?
            }
        };
        if previous.is_held(now) {
            if previous.holder.as_deref() == Some(holder) {
                return Ok(None);
            }
            if started.elapsed() >= settings.wait {
                return Err(LeaseError::Held {
                    pipeline: pipeline.to_owned(),
                    object: object.to_string(),
                    holder: previous.holder.clone().unwrap_or_default(),
                    expires: previous.expires.map(|e| e.to_rfc3339()).unwrap_or_default(),
                });
            }
            // Back off (up to 8 polls' worth) so many waiters do not hammer the store.
            tokio::time::sleep(settings.poll * 2u32.pow(polls.min(3))).await;
            polls += 1;
            continue;
        }
        let state = LeaseState {
            holder: Some(holder.to_owned()),
            acquired: Some(now),
            expires: Some(now + settings.ttl),
            last_started: previous.last_started.clone(),
        };
        let body = serde_json::to_vec(&state).expect("a lease serialises");
        let expected = current.as_ref().map(|v| v.etag.as_str());
        if let Some(etag) = store.write_if(&object, body, expected).await? {
            return Ok(Some(Held {
                object,
                etag,
                state,
            }));
        }
        // Lost the race for this version: read again.
    }
}

/// Releases the lease, recording the execution this holder started. A lease lost meanwhile (held
/// past its expiry and taken over) is left to its new holder; that is logged, not returned: the
/// decision has been made.
pub async fn release(
    store: &dyn ConditionalStore,
    held: Held,
    started: Option<ExecutionSummary>,
) -> Result<(), AwsError> {
    let state = LeaseState {
        holder: None,
        acquired: held.state.acquired,
        expires: None,
        last_started: started.or(held.state.last_started),
    };
    let body = serde_json::to_vec(&state).expect("a lease serialises");
    if store
        .write_if(&held.object, body, Some(&held.etag))
        .await?
        .is_none()
    {
        tracing::warn!(lease = %held.object, "the lease was taken over before it was released (the holder outlived its expiry)");
    }
    Ok(())
}

/// The listed executions with the lease's last start added when the listing does not show it yet
/// (a lagging read) and it started within `recent` (it is then taken to be still `Executing`).
pub fn with_last_started(
    mut executions: Vec<ExecutionSummary>,
    state: &LeaseState,
    now: DateTime<Utc>,
    recent: Duration,
) -> Vec<ExecutionSummary> {
    if let Some(last) = &state.last_started
        && last.start_time > now - recent
        && !executions.iter().any(|e| e.arn == last.arn)
    {
        let mut last = last.clone();
        last.status = ExecutionStatus::Executing;
        executions.insert(0, last);
    }
    executions
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use chrono::TimeZone;

    use super::*;
    use crate::clock::fixed_clock;
    use crate::doubles::InMemoryConditionalStore;

    fn config(wait_ms: u64) -> LeaseConfig {
        LeaseConfig {
            prefix: S3Uri::parse("s3://state/leases").unwrap(),
            settings: LeaseSettings {
                ttl: Duration::seconds(90),
                wait: std::time::Duration::from_millis(wait_ms),
                poll: std::time::Duration::from_millis(5),
            },
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
    }

    fn execution(arn: &str, at: DateTime<Utc>) -> ExecutionSummary {
        ExecutionSummary {
            arn: arn.to_owned(),
            status: ExecutionStatus::Succeeded,
            start_time: at,
            display_name: Some("drift-x".into()),
            description: None,
        }
    }

    #[test]
    fn objects_per_pipeline_name_or_arn() {
        let c = config(0);
        assert_eq!(
            c.object("churn-build").to_string(),
            "s3://state/leases/churn-build.json"
        );
        assert_eq!(
            c.object("arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-build")
                .to_string(),
            "s3://state/leases/churn-build.json"
        );
    }

    #[tokio::test]
    async fn a_held_lease_makes_others_wait_then_fail_retryable_and_its_twin_pass() {
        let store = InMemoryConditionalStore::default();
        let c = config(30);
        let clock = fixed_clock(t0());
        let held = acquire(&store, &c, "p", "token-a", &clock)
            .await
            .unwrap()
            .expect("absent: created");
        let err = acquire(&store, &c, "p", "token-b", &clock)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "Retryable.LeaseHeld", "{err}");
        assert!(err.to_string().contains("token-a"), "{err}");
        // The same trigger, delivered twice at once, does not queue behind itself.
        assert_eq!(
            acquire(&store, &c, "p", "token-a", &clock).await.unwrap(),
            None
        );
        // Other pipelines are not blocked.
        assert!(
            acquire(&store, &c, "q", "token-b", &clock)
                .await
                .unwrap()
                .is_some()
        );

        let started = execution("arn:e1", t0());
        release(&store, held, Some(started.clone())).await.unwrap();
        let next = acquire(&store, &c, "p", "token-b", &clock)
            .await
            .unwrap()
            .expect("released: taken over");
        assert_eq!(
            next.state.last_started,
            Some(started),
            "the start is remembered"
        );
    }

    #[tokio::test]
    async fn a_crashed_holder_blocks_only_until_its_lease_expires() {
        let store = InMemoryConditionalStore::default();
        let c = config(10);
        let _dead = acquire(&store, &c, "p", "token-a", &fixed_clock(t0()))
            .await
            .unwrap()
            .unwrap();
        let before = fixed_clock(t0() + Duration::seconds(89));
        assert!(acquire(&store, &c, "p", "token-b", &before).await.is_err());
        let after = fixed_clock(t0() + Duration::seconds(91));
        let taken = acquire(&store, &c, "p", "token-b", &after)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.state.holder.as_deref(), Some("token-b"));
        // The dead holder's late release does not free the new holder's lease.
        release(&store, _dead, None).await.unwrap();
        assert!(acquire(&store, &c, "p", "token-c", &after).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_concurrent_contenders_one_holds_at_a_time() {
        let store = Arc::new(InMemoryConditionalStore::default());
        let c = Arc::new(config(5_000));
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (store, c, inside, most) =
                    (store.clone(), c.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let clock: Clock = Arc::new(Utc::now);
                    let held = acquire(store.as_ref(), &c, "p", &format!("t{i}"), &clock)
                        .await
                        .unwrap()
                        .unwrap();
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    release(store.as_ref(), held, None).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(
            store.refused.load(Ordering::SeqCst) > 0,
            "the contenders did race"
        );
    }

    #[test]
    fn a_lagging_listing_gets_the_recent_start_as_executing() {
        let state = LeaseState {
            last_started: Some(execution("arn:e1", t0())),
            ..Default::default()
        };
        let now = t0() + Duration::seconds(3);
        let merged = with_last_started(vec![], &state, now, Duration::minutes(5));
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].status, ExecutionStatus::Executing);
        // Listed already: the listing is the truth.
        let listed = vec![execution("arn:e1", t0())];
        let merged = with_last_started(listed.clone(), &state, now, Duration::minutes(5));
        assert_eq!(merged, listed);
        // Old: the listing would show it by now.
        let later = t0() + Duration::minutes(10);
        assert!(with_last_started(vec![], &state, later, Duration::minutes(5)).is_empty());
    }

    #[tokio::test]
    async fn a_corrupt_lease_is_a_permanent_error_naming_the_object() {
        let store = InMemoryConditionalStore::default();
        let c = config(0);
        store.put(&c.object("p"), b"not json".to_vec());
        let err = acquire(&store, &c, "p", "t", &fixed_clock(t0()))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "Permanent.LeaseCorrupt");
        assert!(
            err.to_string().contains("s3://state/leases/p.json"),
            "{err}"
        );
    }
}
