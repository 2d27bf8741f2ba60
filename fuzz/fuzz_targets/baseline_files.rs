//! Baseline statistics / constraints parsing and the checks on arbitrary JSON.
#![no_main]
use driftloop::metrics::dq::checks::check_data_quality;
use driftloop::metrics::dq::stats::{DataQualityState, DqValue};
use driftloop::metrics::{BaselineConstraints, BaselineStatistics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let stats = BaselineStatistics::parse(text).ok();
    if let Ok(c) = BaselineConstraints::parse(text) {
        let mut cur = DataQualityState::default();
        cur.push_named([
            ("_c0", DqValue::Text("1.5")),
            ("message", DqValue::Text("hello")),
        ]);
        let _ = check_data_quality(&cur, stats.as_ref(), &c);
    }
});
