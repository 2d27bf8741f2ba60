//! Arbitrary ground truth and capture, cut into sources, through the broadcast join on 2–4
//! threads and through the single pass: the same counts, error samples and model-quality
//! statistics (`driftloop::metrics::engine::broadcast::exercise_broadcast`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    driftloop::metrics::engine::broadcast::exercise_broadcast(data);
});
