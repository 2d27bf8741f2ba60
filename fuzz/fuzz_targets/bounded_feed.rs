//! Ground truth then capture with a small line maximum, a small ground-truth memory limit and
//! arbitrary window bounds (`Engine::with_max_line_bytes`, `with_ground_truth_limit`): no panic,
//! the store within its limit, `GroundTruthTooLarge` the only ground-truth error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    driftloop::metrics::engine::exercise_bounded_feed(data);
});
