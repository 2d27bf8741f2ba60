//! Every core: inputs read and parsed on several threads, one partial engine
//! ([`Engine::partial`]) per thread, the partial states merged. As partial states add up
//! exactly (see [`super::partial`]), the merged state finishes as one single-threaded pass
//! would, whichever thread read which input.
//!
//! Threads take the next input from a shared counter (a thread that finishes a small object
//! takes another), so they stay busy while inputs differ in size. Memory: each thread holds the
//! join rows of the ids it has seen (see `docs/scale-out.md`), plus one read buffer.

use super::{Engine, EngineState};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One input of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<T> {
    GroundTruth(T),
    Capture(T),
}

/// The cores this process may use (`std::thread::available_parallelism`, which honours cgroup
/// CPU quotas and affinity), at least 1.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads from a variable's value (e.g. `ENGINE_THREADS`): a whole number >= 1, `0` or `all`
/// for every available core, unset or blank for 1 (the single-pass engine: see
/// `docs/scale-out.md` for why that is the default); None for anything else.
pub fn threads_setting(value: Option<&str>) -> Option<usize> {
    match value.map(str::trim) {
        None | Some("") => Some(1),
        Some("0") | Some("all") => Some(available_threads()),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1),
    }
}

/// Feeds `inputs` to `threads` partial engines made by `make` (each thread takes the next input
/// until none is left; `feed` reads one input into an engine) and returns their merged state.
/// The first error stops the other threads at their next input and is returned.
pub fn feed_parallel<T, E>(
    threads: usize,
    make: impl Fn() -> Engine + Sync,
    inputs: &[Input<T>],
    feed: impl Fn(&mut Engine, &Input<T>) -> Result<(), E> + Sync,
) -> Result<EngineState, E>
where
    T: Sync,
    E: Send,
{
    let threads = threads.clamp(1, inputs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = || -> Result<EngineState, E> {
        let mut engine = make();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(input) = inputs.get(i) else { break };
            if let Err(e) = feed(&mut engine, input) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(engine.into_state())
    };
    let results: Vec<Result<EngineState, E>> = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(&work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let max_samples = make().config().max_error_samples;
    let mut merged: Option<EngineState> = None;
    for r in results {
        let s = r?;
        match &mut merged {
            None => merged = Some(s),
            // Partial states of one configuration always merge.
            Some(m) => {
                let mut s = s;
                let rows = s.join.take();
                m.merge(&s, max_samples)
                    .unwrap_or_else(|e| unreachable!("partial states of one job: {e}"));
                if let Some(rows) = rows {
                    match &mut m.join {
                        Some(j) => j.merge_owned(rows),
                        None => m.join = Some(rows),
                    }
                }
            }
        }
    }
    Ok(merged.unwrap_or_else(|| make().snapshot()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_settings() {
        assert_eq!(threads_setting(Some("3")), Some(3));
        assert_eq!(threads_setting(None), Some(1));
        assert_eq!(threads_setting(Some(" ")), Some(1));
        assert_eq!(threads_setting(Some("0")), Some(available_threads()));
        assert_eq!(threads_setting(Some("all")), Some(available_threads()));
        assert_eq!(threads_setting(Some("-1")), None);
        assert_eq!(threads_setting(Some("many")), None);
    }
}
