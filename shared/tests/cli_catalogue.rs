//! `driftloop-metrics catalogue validate FILE` over the binary: the report of a valid catalogue,
//! every error of an invalid one with a non-zero exit.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

const EXAMPLE: &str = include_str!("../../infra/catalogue.example.json");

fn write(name: &str, body: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "driftloop-catalogue-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&p, body).unwrap();
    p
}

fn validate(path: &PathBuf) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftloop-metrics"))
        .args(["catalogue", "validate"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_valid_catalogue_prints_what_each_model_gets() {
    let (code, stdout, stderr) = validate(&write("valid", EXAMPLE));
    assert_eq!(code, 0, "{stderr}");
    let blocks: Vec<&str> = stdout.split("\nmodel ").collect();
    assert_eq!(blocks.len(), 4, "{stdout}");
    assert!(blocks[0].starts_with("catalogue version 1: 3 models"));
    let churn = blocks[1];
    assert!(churn.starts_with("churn (BinaryClassification)"), "{churn}");
    assert!(
        churn.contains("staging    churn-staging  ml.m5.large x1, plain update, no autoscaling"),
        "{churn}"
    );
    assert!(churn.contains("churn-prod-f1: f1 on production, threshold from the served package's constraint, retrains with churn-build"), "{churn}");
    assert!(
        churn.contains("60-minute windows (offset 120 min"),
        "{churn}"
    );
    assert!(
        churn.contains("retraining: pipeline churn-build, cooldown 24h"),
        "{churn}"
    );
    let house = blocks[2];
    assert!(house.starts_with("house-prices (Regression)"), "{house}");
    assert!(
        house.contains("monitored: staging house-prices-staging"),
        "{house}"
    );
    assert!(
        house.contains("monitored: production house-prices-prod"),
        "{house}"
    );
    assert!(house.contains("1440-minute windows"), "{house}");
    let topics = blocks[3];
    assert!(
        topics.starts_with("support-topics (MulticlassClassification)"),
        "{topics}"
    );
    assert!(
        topics.contains("blue/green LINEAR 25% (wait 600s"),
        "{topics}"
    );
    assert!(
        topics.contains("threshold set outside the loop"),
        "{topics}"
    );
    assert!(
        topics.contains("cooldown the function's COOLDOWN"),
        "{topics}"
    );
}

#[test]
fn an_invalid_catalogue_exits_1_with_every_error() {
    let mut doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    // models[0] cannot be read (an unknown field); its names still count across models.
    doc["models"][0]["monitoring"]["windowMinute"] = json!(60);
    doc["models"][1]["stages"]["production"]["instanceCount"] = json!(0);
    doc["models"][2]["stages"]["production"]["endpointName"] = json!("churn-prod");
    let (code, stdout, stderr) = validate(&write("invalid", &doc.to_string()));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("invalid catalogue, 3 errors:"), "{stderr}");
    for e in [
        r#"models[0] (group "churn").monitoring.windowMinute: unknown field `windowMinute`"#,
        r#"models[1] (group "house-prices").stages.production.instanceCount: must be at least 1"#,
        r#"models[2] (group "support-topics").stages.production.endpointName: "churn-prod" is already used by models[0] (group "churn")"#,
    ] {
        assert!(stderr.contains(e), "missing {e:?} in\n{stderr}");
    }
}

#[test]
fn an_unreadable_file_exits_2() {
    let missing = std::env::temp_dir().join("driftloop-catalogue-does-not-exist.json");
    let (code, _, stderr) = validate(&missing);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("driftloop-catalogue-does-not-exist.json"),
        "{stderr}"
    );
    let (code, _, stderr) = validate(&write("notjson", "{"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not a JSON document"), "{stderr}");
}

fn validate_with(path: &PathBuf, flags: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftloop-metrics"))
        .args(["catalogue", "validate"])
        .arg(path)
        .args(flags)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn names_outside_the_stacks_convention_are_errors_naming_model_and_field() {
    let flags = [
        "--name-prefix",
        "loop-",
        "--alarm-prefix",
        "loop.m-",
        "--data-s3-uri",
        "s3://my-driftloop-data/loop-",
    ];
    let (code, stdout, stderr) = validate_with(&write("convention", EXAMPLE), &flags);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for e in [
        r#"models[0] (group "churn").group: "churn" does not start with "loop-""#,
        r#"models[1] (group "house-prices").stages.production.endpointName: "house-prices-prod" does not start with "loop-""#,
        r#"models[1] (group "house-prices").retraining.pipeline: "house-prices-build" does not start with "loop-""#,
        r#"models[2] (group "support-topics").alarms[0].name: "support-topics-prod-accuracy" does not start with "loop.m-""#,
        r#"models[0] (group "churn").capture.destinationS3Uri: "s3://my-driftloop-data/capture" is not under "s3://my-driftloop-data/loop-""#,
    ] {
        assert!(stderr.contains(e), "missing {e:?} in\n{stderr}");
    }
    // The same models, renamed into the convention: valid.
    let mut doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    for m in doc["models"].as_array_mut().unwrap() {
        let g = m["group"].as_str().unwrap().to_owned();
        m["group"] = json!(format!("loop-{g}"));
        for stage in ["staging", "production"] {
            let e = m["stages"][stage]["endpointName"]
                .as_str()
                .unwrap()
                .to_owned();
            m["stages"][stage]["endpointName"] = json!(format!("loop-{e}"));
        }
        let p = m["retraining"]["pipeline"].as_str().unwrap().to_owned();
        m["retraining"]["pipeline"] = json!(format!("loop-{p}"));
        for a in m["alarms"].as_array_mut().unwrap() {
            let n = a["name"].as_str().unwrap().to_owned();
            a["name"] = json!(format!("loop.m-{n}"));
        }
        m["capture"]["destinationS3Uri"] =
            json!(format!("s3://my-driftloop-data/loop-{g}/capture"));
        m["monitoring"]["groundTruthS3Uri"] =
            json!(format!("s3://my-driftloop-data/loop-{g}/labels"));
    }
    let (code, stdout, stderr) = validate_with(&write("conforming", &doc.to_string()), &flags);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("model loop-churn"), "{stdout}");
    // A prefix IAM could not match against lower-case SageMaker ARNs is refused.
    let (code, _, stderr) = validate_with(&write("upper", EXAMPLE), &["--name-prefix", "Loop-"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("lower-case"), "{stderr}");
}
