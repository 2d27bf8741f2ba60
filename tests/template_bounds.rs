//! Template parameter bounds equal what the functions accept (issue 14): for every parameter of
//! infra/loop.json (the wiring extracted from infra/template.yaml) that a function's environment
//! variable takes and that has `MinValue`, `MaxValue` or `AllowedValues`, each bound and each
//! allowed value passes that function's `Config::from_env` (no value CloudFormation allows may be
//! refused at init). Runs offline: no emulator.

use std::collections::HashMap;

use driftloop::config::{ConfigError, Lookup};
use serde_json::Value;

const LOOP: &str = include_str!("../infra/loop.json");
/// `AWS::NoValue`: the variable is absent.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

type FromEnv = fn(&dyn Lookup) -> Result<(), ConfigError>;

fn from_env(binary: &str) -> FromEnv {
    match binary {
        "custom-metrics" => |l| custom_metrics::Config::from_env(l).map(drop),
        "deploy-on-approval" => |l| deploy_on_approval::Config::from_env(l).map(drop),
        "retrain-on-alarm" => |l| retrain_on_alarm::Config::from_env(l).map(drop),
        "get-approved-model" => |l| get_approved_model::Config::from_env(l).map(drop),
        other => panic!("unknown function binary {other}"),
    }
}

fn default_of(spec: &Value, param: &str) -> String {
    let p = &spec["parameters"][param];
    match &p["Default"] {
        Value::String(s) => s.clone(),
        Value::Null if param.ends_with("RoleArn") => {
            format!("arn:aws:iam::123456789012:role/{param}")
        }
        Value::Null => format!("<{param}>"),
        other => other.to_string(),
    }
}

/// A variable's value under the parameters (defaults unless given; `Fn::If` evaluates the
/// template's condition); resources get plausible names.
fn value(spec: &Value, v: &Value, params: &HashMap<String, String>) -> String {
    let resolve = |name: &str| -> String {
        if let Some(v) = params.get(name) {
            return v.clone();
        }
        if spec["parameters"].get(name).is_some() {
            return default_of(spec, name);
        }
        match name {
            "DataBucket" => "driftloop-databucket-generated".into(),
            "ControlBus" => "driftloop-control".into(),
            "AWS::Region" => "us-east-1".into(),
            "AWS::AccountId" => "123456789012".into(),
            "AWS::Partition" => "aws".into(),
            "AWS::StackName" => "driftloop".into(),
            "AWS::NoValue" => NO_VALUE.into(),
            other => format!("driftloop-{other}"),
        }
    };
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) if o.contains_key("Ref") => resolve(o["Ref"].as_str().unwrap()),
        Value::Object(o) if o.contains_key("Fn::Sub") => {
            let mut text = o["Fn::Sub"].as_str().expect("plain Fn::Sub").to_owned();
            while let Some(start) = text.find("${") {
                let end = start + text[start..].find('}').unwrap();
                let name = text[start + 2..end].to_owned();
                text.replace_range(start..=end, &resolve(&name));
            }
            text
        }
        Value::Object(o) if o.contains_key("Fn::If") => {
            let f = &o["Fn::If"];
            let branch = if condition(spec, f[0].as_str().expect("condition name"), params) {
                &f[1]
            } else {
                &f[2]
            };
            value(spec, branch, params)
        }
        Value::Object(o) if o.contains_key("Fn::Select") => {
            let f = &o["Fn::Select"];
            let i = f[0].as_u64().expect("Fn::Select index") as usize;
            list(spec, &f[1], params).swap_remove(i)
        }
        Value::Object(o) if o.contains_key("Fn::Join") => {
            let f = &o["Fn::Join"];
            list(spec, &f[1], params).join(f[0].as_str().expect("Fn::Join separator"))
        }
        other => panic!("unmodelled environment value {other}"),
    }
}

/// A list value: `Fn::Split`, a `CommaDelimitedList` parameter, a literal list.
fn list(spec: &Value, v: &Value, params: &HashMap<String, String>) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(|i| value(spec, i, params)).collect(),
        Value::Object(o) if o.contains_key("Fn::Split") => {
            let f = &o["Fn::Split"];
            let sep = f[0].as_str().expect("Fn::Split separator");
            value(spec, &f[1], params)
                .split(sep)
                .map(str::to_owned)
                .collect()
        }
        other => value(spec, other, params)
            .split(',')
            .map(str::to_owned)
            .collect(),
    }
}

/// A template condition under the parameters (CloudFormation's `Fn::Equals` compares the
/// values' text, so `0` equals `"0"`).
fn condition(spec: &Value, name: &str, params: &HashMap<String, String>) -> bool {
    fn eval(spec: &Value, c: &Value, params: &HashMap<String, String>) -> bool {
        let o = c.as_object().expect("condition");
        if let Some(a) = o.get("Fn::Not") {
            !eval(spec, &a[0], params)
        } else if let Some(a) = o.get("Fn::And") {
            a.as_array().unwrap().iter().all(|c| eval(spec, c, params))
        } else if let Some(a) = o.get("Fn::Or") {
            a.as_array().unwrap().iter().any(|c| eval(spec, c, params))
        } else if let Some(a) = o.get("Fn::Equals") {
            value(spec, &a[0], params) == value(spec, &a[1], params)
        } else if let Some(name) = o.get("Condition") {
            condition(spec, name.as_str().unwrap(), params)
        } else {
            panic!("unmodelled condition {c}")
        }
    }
    eval(spec, &spec["conditions"][name], params)
}

fn environment(
    spec: &Value,
    function: &Value,
    params: &HashMap<String, String>,
) -> HashMap<String, String> {
    function["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), value(spec, v, params)))
        .filter(|(_, v)| v != NO_VALUE)
        .collect()
}

/// The values CloudFormation lets through for a bounded parameter.
fn allowed(p: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out: Vec<String> = p["AllowedValues"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    for bound in ["MinValue", "MaxValue"] {
        if let Some(v) = p.get(bound) {
            out.push(text(v));
        }
    }
    // No MaxValue: a large value is allowed too.
    if p.get("MinValue").is_some() && p.get("MaxValue").is_none() {
        out.push("100000".into());
    }
    out
}

#[test]
fn every_value_the_template_allows_is_accepted_by_the_function() {
    let spec: Value = serde_json::from_str(LOOP).unwrap();
    let mut checked = Vec::new();
    let mut refused = Vec::new();
    for function in spec["functions"].as_object().unwrap().values() {
        let binary = function["binary"].as_str().unwrap();
        let check = from_env(binary);
        let none = HashMap::new();
        check(&environment(&spec, function, &none))
            .unwrap_or_else(|e| panic!("{binary} refuses the template's defaults: {e}"));
        for (var, v) in function["environment"].as_object().unwrap() {
            let Some(param) = v.get("Ref").and_then(Value::as_str) else {
                continue;
            };
            let Some(p) = spec["parameters"].get(param) else {
                continue;
            };
            for candidate in allowed(p) {
                let params = HashMap::from([(param.to_owned(), candidate.clone())]);
                let env = environment(&spec, function, &params);
                checked.push(format!("{binary} {var}={candidate}"));
                if let Err(e) = check(&env) {
                    refused.push(format!("{param}={candidate} ({binary} {var}): {e}"));
                }
            }
        }
    }
    assert!(
        refused.is_empty(),
        "the template allows values the functions refuse at init:\n{}",
        refused.join("\n")
    );
    // The bounded parameters the functions take: the check covered them all.
    for needle in [
        "custom-metrics WINDOW_MINUTES=1440",
        "custom-metrics WINDOW_MINUTES=7",
        "custom-metrics WINDOW_OFFSET_MINUTES=0",
        "custom-metrics PROBLEM_TYPE=MulticlassClassification",
        "deploy-on-approval DATA_CAPTURE_SAMPLING_PERCENTAGE=100",
        "deploy-on-approval PRODUCTION_INSTANCE_COUNT=1",
    ] {
        if needle.contains("WINDOW_MINUTES=7") {
            assert!(
                !checked.iter().any(|c| c == needle),
                "7 does not divide a day: the template must not allow it"
            );
        } else {
            assert!(
                checked.iter().any(|c| c == needle),
                "not checked: {needle} (checked: {checked:?})"
            );
        }
    }
}

/// The check can fail: a bound the function refuses is caught.
#[test]
fn a_bound_beyond_what_the_function_accepts_is_caught() {
    let spec: Value = serde_json::from_str(LOOP).unwrap();
    let function = &spec["functions"]["CustomMetricsFunction"];
    let params = HashMap::from([("WindowMinutes".to_owned(), "7".to_owned())]);
    let err = from_env("custom-metrics")(&environment(&spec, function, &params)).unwrap_err();
    assert_eq!(err.var(), "WINDOW_MINUTES");
}

/// Each function's `events:PutEvents` is conditioned on source `driftloop` and on exactly the
/// detail types it publishes ([`DetailType::publisher`]): a type missing from the condition would
/// be refused by EventBridge at run time (AccessDenied on PutEvents), an extra one would let the
/// function forge another's outcome.
#[test]
fn put_events_conditions_equal_what_each_function_publishes() {
    use driftloop::contract::DetailType;
    let spec: Value = serde_json::from_str(LOOP).expect("infra/loop.json");
    let mut checked = std::collections::BTreeSet::new();
    for (_, f) in spec["functions"].as_object().expect("functions") {
        let binary = f["binary"].as_str().expect("binary");
        let mut published: Vec<&str> = DetailType::ALL
            .into_iter()
            .filter(|d| d.publisher() == Some(binary))
            .map(|d| d.as_str())
            .collect();
        published.sort_unstable();
        let puts: Vec<&Value> = f["statements"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| s["Action"] == "events:PutEvents")
            .collect();
        if published.is_empty() {
            assert!(
                puts.is_empty(),
                "{binary} publishes nothing but may PutEvents"
            );
            continue;
        }
        assert_eq!(puts.len(), 1, "{binary}: one PutEvents statement");
        let cond = &puts[0]["Condition"]["StringEquals"];
        assert_eq!(cond["events:source"], "driftloop", "{binary}");
        let mut allowed: Vec<&str> = cond["events:detail-type"]
            .as_array()
            .unwrap_or_else(|| panic!("{binary}: detail-type condition is a list"))
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect();
        allowed.sort_unstable();
        assert_eq!(allowed, published, "{binary}: PutEvents detail types");
        checked.insert(binary);
    }
    assert_eq!(
        checked.len(),
        3,
        "custom-metrics, retrain-on-alarm, deploy-on-approval publish: {checked:?}"
    );
}

/// Issue 17: the rules that feed the notifications topic name the loop's outcomes only (a request
/// there would mean a person is told of something nobody published), exactly the ones meant for
/// people, on the bus the functions publish them to, from source `driftloop`.
#[test]
fn notification_rules_name_outcomes_the_functions_publish() {
    use driftloop::contract::{DetailType, SOURCE};
    let spec: Value = serde_json::from_str(LOOP).expect("infra/loop.json");
    let mut notified = Vec::new();
    for (lid, r) in spec["resources"].as_object().expect("resources") {
        if r["Type"] != "AWS::Events::Rule" {
            continue;
        }
        let p = &r["Properties"];
        let to_topic = p["Targets"]
            .as_array()
            .expect("targets")
            .iter()
            .any(|t| t["Arn"] == serde_json::json!({"Ref": "NotificationTopic"}));
        if !to_topic {
            continue;
        }
        assert_eq!(
            p["EventPattern"]["source"],
            serde_json::json!([SOURCE]),
            "{lid}"
        );
        assert_eq!(
            p["EventBusName"],
            serde_json::json!({"Ref": "EventBusName"}),
            "{lid}: the outcomes are published on EventBusName"
        );
        for dt in p["EventPattern"]["detail-type"]
            .as_array()
            .expect("detail-type")
        {
            let d = DetailType::parse(dt.as_str().expect("string"))
                .unwrap_or_else(|| panic!("{lid}: {dt} is not a DetailType"));
            assert!(!d.is_request(), "{lid}: {d} is a request");
            assert!(d.publisher().is_some(), "{lid}: nobody publishes {d}");
            notified.push(d);
        }
    }
    notified.sort_by_key(|d| d.as_str());
    let mut expected = vec![
        DetailType::MonitoringViolations,
        DetailType::RetrainingStarted,
        DetailType::RetrainingSkipped,
        DetailType::ModelDeployed,
        DetailType::DeploymentFailed,
        DetailType::DeploymentRolledBack,
    ];
    expected.sort_by_key(|d| d.as_str());
    assert_eq!(notified, expected, "each notified outcome once");
}
