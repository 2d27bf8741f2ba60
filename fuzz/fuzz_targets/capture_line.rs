//! Capture lines (real-time, batch CSV, batch JSON) through every problem type and data quality.
#![no_main]
use driftloop::metrics::{CaptureFormat, Engine, MonitorConfig, ProblemType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let gt = r#"{"groundTruthData":{"data":"1","encoding":"CSV"},"eventMetadata":{"eventId":"id-1"},"eventVersion":"0"}"#;
    for format in [
        CaptureFormat::Realtime,
        CaptureFormat::BatchCsv,
        CaptureFormat::BatchJson,
    ] {
        for problem in [
            None,
            Some(ProblemType::Regression),
            Some(ProblemType::BinaryClassification),
            Some(ProblemType::MulticlassClassification),
            Some(ProblemType::Forecast),
        ] {
            let cfg = MonitorConfig {
                problem_type: problem,
                capture_format: format,
                data_quality: true,
                ..Default::default()
            };
            let mut e = Engine::new(cfg);
            e.push_ground_truth_line(gt, "gt", 1).unwrap();
            e.feed_capture("fuzz", data, |_| {}).unwrap();
            let r = e.finish().unwrap();
            let _ = (
                r.statistics_json(),
                r.violations_json(),
                r.summary(),
                r.cloudwatch_metrics(),
            );
        }
    }
});
