//! Ground-truth lines for every problem type.
#![no_main]
use driftloop::metrics::{Engine, MonitorConfig, ProblemType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for problem in [
        ProblemType::Regression,
        ProblemType::BinaryClassification,
        ProblemType::MulticlassClassification,
        ProblemType::Forecast,
    ] {
        let cfg = MonitorConfig {
            problem_type: Some(problem),
            ..Default::default()
        };
        let mut e = Engine::new(cfg);
        e.feed_ground_truth("fuzz", data).unwrap();
        let _ = e.finish().unwrap().statistics_json();
    }
});
