//! Every core, two ways; both finish exactly as one single-threaded pass over the inputs in
//! name order would, whichever thread read which input:
//! * [`feed_broadcast`] — the threads of one job (`run --threads`, custom-metrics'
//!   `ENGINE_THREADS`): the broadcast join ([`super::broadcast`]), labels read on every thread
//!   into one table shared by `Arc`, capture joined against it on every thread, about 3% more
//!   instructions than the single pass.
//! * [`feed_parallel`] — one partial engine ([`Engine::partial`]) per thread, the partial
//!   states (per-id join rows, [`super::partial`]) merged: the exchangeable form the scale-out
//!   mode and `run --state-out` write; ~2x the instructions of the single pass.
//!
//! Threads take the next input from a shared counter (a thread that finishes a small object
//! takes another), so they stay busy while inputs differ in size.

use super::{Engine, EngineError, EngineState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Wall time of the two phases of [`feed_broadcast`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// Reading the ground truth and storing it in the one table.
    pub labels: Duration,
    /// Reading and joining the capture, and the walk over the contributions.
    pub capture: Duration,
}

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
    let results = on_threads(threads, inputs, &make, &feed, Engine::into_state)?;
    let max_samples = make().config().max_error_samples;
    let mut merged: Option<EngineState> = None;
    for s in results {
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

/// Runs `work` on `threads` threads (at most one per item): each makes its worker with `make`,
/// takes the next item from a shared counter and feeds it (`feed`) until none is left or a
/// thread failed, then turns its worker into its result (`done`). The first error is returned.
fn on_threads<T, W, R, E>(
    threads: usize,
    items: &[T],
    make: impl Fn() -> W + Sync,
    feed: impl Fn(&mut W, &T) -> Result<(), E> + Sync,
    done: impl Fn(W) -> R + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = || -> Result<R, E> {
        let mut w = make();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            if let Err(e) = feed(&mut w, item) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(done(w))
    };
    if threads == 1 {
        return work().map(|r| vec![r]);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Feeds `ground_truth`, then `capture`, into `engine` (an [`Engine::new`], configured) on
/// `threads` threads with the broadcast join ([`super::broadcast`]): collectors read the
/// ground-truth inputs into one label table, probes join the capture inputs against it, and
/// `engine` applies their contributions in `(source name, line)` order. `make` builds a worker
/// configured as `engine` is (baselines name data-quality columns; line limits); `feed` reads
/// one input into a worker (or into `engine`); `name` is the source name `feed` gives an input
/// (the probes take the capture inputs ranked by it, so their contributions reach the walk in
/// name order and are dropped once walked); an engine error (label limit, or a capture source
/// `feed` named otherwise than `name`) becomes an `E` by `engine_error`. Afterwards `engine`
/// finishes exactly as if it had read every input itself in name order (data-quality
/// sketches: as merged states). List the inputs in name order: one thread is the single pass,
/// which reads them as listed. Returns the phases' wall times.
#[allow(clippy::too_many_arguments)] // one job's inputs, its workers and its edges
pub fn feed_broadcast<T, E>(
    engine: &mut Engine,
    threads: usize,
    make: impl Fn() -> Engine + Sync,
    ground_truth: &[T],
    capture: &[T],
    name: impl Fn(&T) -> String,
    feed: impl Fn(&mut Engine, &Input<&T>) -> Result<(), E> + Sync,
    engine_error: impl Fn(EngineError) -> E,
) -> Result<Phases, E>
where
    T: Sync,
    E: Send,
{
    let start = Instant::now();
    if threads <= 1 {
        for t in ground_truth {
            feed(engine, &Input::GroundTruth(t))?;
        }
        let labels = start.elapsed();
        for t in capture {
            feed(engine, &Input::Capture(t))?;
        }
        return Ok(Phases {
            labels,
            capture: start.elapsed() - labels,
        });
    }
    if ground_truth.len() <= 1 {
        for t in ground_truth {
            feed(engine, &Input::GroundTruth(t))?;
        }
    } else {
        let collected = on_threads(
            threads,
            ground_truth,
            || make().collecting(),
            |w, t| feed(w, &Input::GroundTruth(t)),
            Engine::into_labels,
        )?;
        engine
            .absorb_labels(collected, threads)
            .map_err(&engine_error)?;
    }
    let labelled = start.elapsed();
    let labels = engine.share_labels().map_err(&engine_error)?;
    let mut ranked: Vec<&T> = capture.iter().collect();
    ranked.sort_by_cached_key(|t| name(t));
    let mut applier = engine.applier().in_name_order();
    let probes = probe_capture(threads, &make, &ranked, &feed, &labels, &mut applier);
    // The probes are gone (their table shares with them): take the table back either way.
    match probes {
        Ok(p) => {
            engine
                .absorb_applied(labels, p, applier)
                .map_err(&engine_error)?;
            engine.set_finish_threads(threads);
            Ok(Phases {
                labels: labelled,
                capture: start.elapsed() - labelled,
            })
        }
        Err(e) => {
            let _ = engine.absorb_probes(labels, Vec::new());
            Err(e)
        }
    }
}

/// The capture phase of [`feed_broadcast`]: `threads` probes take the next input in turn and
/// hand each finished input's contributions to this thread, which walks them in input order
/// (`applier`) while the probes read on.
fn probe_capture<T, E>(
    threads: usize,
    make: &(impl Fn() -> Engine + Sync),
    capture: &[&T],
    feed: &(impl Fn(&mut Engine, &Input<&T>) -> Result<(), E> + Sync),
    labels: &std::sync::Arc<super::SharedLabels>,
    applier: &mut super::broadcast::Applier,
) -> Result<Vec<super::ProbeState>, E>
where
    T: Sync,
    E: Send,
{
    let threads = threads.clamp(1, capture.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, super::broadcast::Contributions)>();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                let (next, failed) = (&next, &failed);
                s.spawn(move || -> Result<super::ProbeState, E> {
                    let mut w = make().probing(labels.clone());
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&item) = capture.get(i) else { break };
                        if let Err(e) = feed(&mut w, &Input::Capture(item)) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        // The receiver lives until every probe is done.
                        let _ = tx.send((i, w.take_contributions()));
                    }
                    Ok(w.into_probe())
                })
            })
            .collect();
        drop(tx);
        // Walk the inputs in rank order as they come (inputs after a failed one at the end).
        applier.walk_ranked(labels, rx);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
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
