//! The fast parse tiers (learned line shapes, the scanner with decoded payload data) against
//! serde on arbitrary lines: same record or same error (`driftloop::metrics::parse::exercise_parse_tiers`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    driftloop::metrics::parse::exercise_parse_tiers(data);
});
