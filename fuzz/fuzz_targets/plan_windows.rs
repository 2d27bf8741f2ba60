//! Trigger parsing and window planning from arbitrary JSON (direct invocations, schedules, S3
//! events) with an arbitrary window rule and `now`, and everything a run derives from the windows
//! (`driftloop::monitoring::window::exercise_planning`). Needs the `aws` feature:
//! `cargo fuzz run plan_windows --features aws`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    driftloop::monitoring::window::exercise_planning(data);
});
