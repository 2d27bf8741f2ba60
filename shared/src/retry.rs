//! Retrying one call with exponential backoff: a bounded number of attempts, a capped delay, and
//! only the failures the caller says are worth another try.
//!
//! The SDK already retries throttling and 5xx inside each call; this is for the calls whose
//! failure would otherwise fail a whole run (e.g. publishing the results of an evaluation).

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Calls in all, the first one included (0 behaves like 1).
    pub attempts: u32,
    /// The delay after the first failure; doubled after each further one.
    pub base: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Backoff {
    pub const fn new(attempts: u32, base: Duration, max_delay: Duration) -> Self {
        Backoff {
            attempts,
            base,
            max_delay,
        }
    }

    /// The delay after failed attempt `attempt` (0-based): `base * 2^attempt`, at most
    /// `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_delay)
    }
}

/// Calls `op` until it succeeds, fails with an error `retryable` refuses, or `backoff.attempts`
/// calls were made; returns the last result. Before each retry, `on_retry(attempt, &error,
/// delay)` is called (the place to log it; `attempt` is 0-based) and the task sleeps `delay`
/// (`tokio::time::sleep`).
pub async fn retry<T, E, Fut>(
    backoff: &Backoff,
    op: impl FnMut() -> Fut,
    retryable: impl Fn(&E) -> bool,
    on_retry: impl FnMut(u32, &E, Duration),
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    retry_with_sleep(backoff, op, retryable, on_retry, tokio::time::sleep).await
}

/// [`retry`] over any sleep (the tests record the delays instead of waiting them).
async fn retry_with_sleep<T, E, Fut, SleepFut>(
    backoff: &Backoff,
    mut op: impl FnMut() -> Fut,
    retryable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(u32, &E, Duration),
    mut sleep: impl FnMut(Duration) -> SleepFut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    SleepFut: Future<Output = ()>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt + 1 < backoff.attempts && retryable(&e) => {
                let delay = backoff.delay(attempt);
                on_retry(attempt, &e, delay);
                sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    const MS: Duration = Duration::from_millis(1);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Failure {
        Transient,
        Fatal,
    }

    /// Runs `retry_with_sleep` over a script of results; returns the result, the number of calls,
    /// the delays slept and the attempts `on_retry` saw.
    fn run(
        backoff: Backoff,
        script: &[Result<u32, Failure>],
    ) -> (Result<u32, Failure>, usize, Vec<Duration>, Vec<u32>) {
        let calls = RefCell::new(0usize);
        let slept = RefCell::new(Vec::new());
        let mut seen = Vec::new();
        let result = block_on(retry_with_sleep(
            &backoff,
            || {
                let i = *calls.borrow();
                *calls.borrow_mut() += 1;
                let r = script[i.min(script.len() - 1)];
                async move { r }
            },
            |e| *e == Failure::Transient,
            |attempt, _, _| seen.push(attempt),
            |d| {
                slept.borrow_mut().push(d);
                async {}
            },
        ));
        (result, calls.into_inner(), slept.into_inner(), seen)
    }

    /// A minimal executor: the futures here never wait on anything.
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff::new(5, 200 * MS, 12_800 * MS);
        let delays: Vec<u128> = (0..9).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1600, 3200, 6400, 12_800, 12_800, 12_800]
        );
        // No overflow for absurd attempt numbers.
        assert_eq!(b.delay(31), 12_800 * MS);
        assert_eq!(b.delay(u32::MAX), 12_800 * MS);
        assert_eq!(
            Backoff::new(3, Duration::ZERO, MS).delay(10),
            Duration::ZERO
        );
    }

    #[test]
    fn retries_retryable_failures_until_success() {
        let b = Backoff::new(5, 200 * MS, 12_800 * MS);
        let (r, calls, slept, seen) = run(
            b,
            &[Err(Failure::Transient), Err(Failure::Transient), Ok(7)],
        );
        assert_eq!(r, Ok(7));
        assert_eq!(calls, 3);
        assert_eq!(slept, [200 * MS, 400 * MS]);
        assert_eq!(seen, [0, 1]);
    }

    #[test]
    fn stops_after_the_last_attempt_with_its_error() {
        let b = Backoff::new(5, 200 * MS, 12_800 * MS);
        let (r, calls, slept, seen) = run(b, &[Err(Failure::Transient)]);
        assert_eq!(r, Err(Failure::Transient));
        assert_eq!(calls, 5);
        assert_eq!(slept, [200 * MS, 400 * MS, 800 * MS, 1600 * MS]);
        assert_eq!(seen, [0, 1, 2, 3]);
    }

    #[test]
    fn a_failure_the_predicate_refuses_is_returned_at_once() {
        let b = Backoff::new(5, 200 * MS, 12_800 * MS);
        let (r, calls, slept, _) = run(b, &[Err(Failure::Transient), Err(Failure::Fatal), Ok(1)]);
        assert_eq!(r, Err(Failure::Fatal));
        assert_eq!(calls, 2);
        assert_eq!(slept, [200 * MS]);
    }

    #[test]
    fn one_attempt_or_zero_means_no_retry() {
        for attempts in [0, 1] {
            let (r, calls, slept, _) =
                run(Backoff::new(attempts, MS, MS), &[Err(Failure::Transient)]);
            assert_eq!((r, calls, slept.len()), (Err(Failure::Transient), 1, 0));
        }
        let (r, calls, _, _) = run(Backoff::new(0, MS, MS), &[Ok(3)]);
        assert_eq!((r, calls), (Ok(3), 1));
    }

    /// The public entry point, with tokio's sleep, over a port-like async method that borrows
    /// its receiver and arguments (how handlers call it).
    #[tokio::test]
    async fn retry_sleeps_with_tokio_and_accepts_borrowing_calls() {
        struct Port {
            failures_left: std::sync::Mutex<u32>,
        }
        impl Port {
            async fn put(&self, namespace: &str, n: usize) -> Result<String, Failure> {
                let mut left = self.failures_left.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err(Failure::Transient);
                }
                Ok(format!("{namespace}:{n}"))
            }
        }
        let port = Port {
            failures_left: std::sync::Mutex::new(2),
        };
        let namespace = String::from("ns");
        let mut retries = 0;
        let started = tokio::time::Instant::now();
        let r = retry(
            &Backoff::new(3, 2 * MS, 4 * MS),
            || port.put(&namespace, 1),
            |e| *e == Failure::Transient,
            |_, _, _| retries += 1,
        )
        .await;
        assert_eq!(r.as_deref(), Ok("ns:1"));
        assert_eq!(retries, 2);
        assert!(started.elapsed() >= 6 * MS, "{:?}", started.elapsed());
    }
}
