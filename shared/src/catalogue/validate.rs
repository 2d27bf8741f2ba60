//! Reading and checking a catalogue document: every error names the model and the field path
//! (`models[1] (group "churn").stages.production.instanceCount: must be at least 1`), and all of
//! them are reported at once, not only the first.
//!
//! A document is read in two steps so that a structural error (an unknown field, a wrong type, a
//! value outside a closed set) still names its model: the document is first split into its
//! entries, then each entry is read on its own with the path to the failing field
//! (`serde_path_to_error`). The rules between fields, and across models (a group, endpoint, alarm,
//! schedule rule or pipeline named twice), are checked on the entries that were read; the names
//! an unreadable entry still gives take part in the rules across models.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde_json::Value;

use super::model::*;
use crate::metrics::ProblemType;

/// One thing wrong with the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `models[1] (group "churn")`, or empty for the document itself.
    pub model: String,
    /// The field's path in the entry (`stages.production.instanceCount`), or in the document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.model.is_empty(), self.path.is_empty()) {
            (true, true) => write!(f, "{}", self.message),
            (true, false) => write!(f, "{}: {}", self.path, self.message),
            (false, true) => write!(f, "{}: {}", self.model, self.message),
            (false, false) => write!(f, "{}.{}: {}", self.model, self.path, self.message),
        }
    }
}

/// Every error of a document that is not a valid catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid catalogue ({} error{}): {}", errors.len(), if errors.len() == 1 { "" } else { "s" }, errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Invalid {
    pub errors: Vec<FieldError>,
}

/// `models[1] (group "churn")`: how an error names the entry.
pub fn label(index: usize, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("models[{index}] (group {g:?})"),
        None => format!("models[{index}]"),
    }
}

/// Reads and checks a catalogue document.
pub fn parse(bytes: &[u8]) -> Result<Catalogue, Invalid> {
    let doc_error = |path: &str, message: String| Invalid {
        errors: vec![FieldError {
            model: String::new(),
            path: path.to_owned(),
            message,
        }],
    };
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| doc_error("", format!("not a JSON document: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(doc_error(
            "",
            "expected a JSON object {\"version\": 1, \"models\": [...]}".into(),
        ));
    };
    let mut errors = Vec::new();
    for key in top.keys() {
        if key != "version" && key != "models" {
            errors.push(FieldError {
                model: String::new(),
                path: key.clone(),
                message: "unknown field, expected `version` or `models`".into(),
            });
        }
    }
    let version = match top.get("version") {
        Some(v) => match v.as_u64() {
            Some(n) if n == u64::from(FORMAT_VERSION) => FORMAT_VERSION,
            _ => {
                errors.push(FieldError {
                    model: String::new(),
                    path: "version".into(),
                    message: format!(
                        "{v} is not a version this build reads (expected {FORMAT_VERSION})"
                    ),
                });
                FORMAT_VERSION
            }
        },
        None => {
            errors.push(FieldError {
                model: String::new(),
                path: "version".into(),
                message: format!("missing (write \"version\": {FORMAT_VERSION})"),
            });
            FORMAT_VERSION
        }
    };
    let entries = match top.remove("models") {
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            errors.push(FieldError {
                model: String::new(),
                path: "models".into(),
                message: format!("expected an array of models, got {}", kind(&other)),
            });
            Vec::new()
        }
        None => {
            errors.push(FieldError {
                model: String::new(),
                path: "models".into(),
                message: "missing (an array of models)".into(),
            });
            Vec::new()
        }
    };
    let mut models = Vec::new();
    let mut labels = Vec::new();
    // Every entry's names in document order, read or not, for the rules across models.
    let mut names = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let group = entry
            .get("group")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let model_label = label(i, group.as_deref());
        let raw_names = Names::of_value(&entry);
        match serde_path_to_error::deserialize::<_, Model>(entry) {
            Ok(m) => {
                names.push((model_label.clone(), Names::of(&m)));
                models.push(m);
                labels.push(model_label);
            }
            Err(e) => {
                names.push((model_label.clone(), raw_names));
                let path = e.path().to_string();
                errors.push(FieldError {
                    model: model_label,
                    path: if path == "." { String::new() } else { path },
                    message: e.into_inner().to_string(),
                });
            }
        }
    }
    let catalogue = Catalogue { version, models };
    for (m, lbl) in catalogue.models.iter().zip(&labels) {
        check_model(m, &mut |path, message| {
            errors.push(FieldError {
                model: lbl.clone(),
                path,
                message,
            })
        });
    }
    errors.extend(cross_model(&names));
    if errors.is_empty() {
        Ok(catalogue)
    } else {
        Err(Invalid { errors })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The names of an entry that must be unique across models, each with its field path.
#[derive(Default)]
struct Names {
    group: Option<String>,
    endpoints: Vec<(String, String)>,
    triggers: Vec<(String, String)>,
    pipeline: Option<String>,
}

impl Names {
    fn of(m: &Model) -> Names {
        let mut n = Names {
            group: Some(m.group.clone()),
            ..Default::default()
        };
        for (stage, s) in m.stages.iter() {
            n.endpoints.push((
                format!("stages.{}.endpointName", stage.as_str()),
                s.endpoint_name.clone(),
            ));
        }
        for (k, a) in m.alarms.iter().enumerate() {
            n.triggers
                .push((format!("alarms[{k}].name"), a.name.clone()));
        }
        if let Some(r) = &m.retraining {
            for (k, rule) in r.schedule_rules.iter().enumerate() {
                n.triggers
                    .push((format!("retraining.scheduleRules[{k}]"), rule.clone()));
            }
            n.pipeline = Some(r.pipeline.clone());
        }
        n
    }

    /// The names an entry that could not be read still gives, so that its duplicates are found.
    fn of_value(v: &Value) -> Names {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let mut n = Names {
            group: v.get("group").and_then(s),
            pipeline: v.pointer("/retraining/pipeline").and_then(s),
            ..Default::default()
        };
        for stage in ["staging", "production"] {
            if let Some(e) = v
                .pointer(&format!("/stages/{stage}/endpointName"))
                .and_then(s)
            {
                n.endpoints
                    .push((format!("stages.{stage}.endpointName"), e));
            }
        }
        let list = |ptr: &str| {
            v.pointer(ptr)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for (k, a) in list("/alarms").iter().enumerate() {
            if let Some(name) = a.get("name").and_then(s) {
                n.triggers.push((format!("alarms[{k}].name"), name));
            }
        }
        for (k, r) in list("/retraining/scheduleRules").iter().enumerate() {
            if let Some(rule) = s(r) {
                n.triggers
                    .push((format!("retraining.scheduleRules[{k}]"), rule));
            }
        }
        n
    }
}

/// A group, endpoint, alarm or schedule rule, or pipeline named by two entries: an error on the
/// later one, naming the first.
fn cross_model(entries: &[(String, Names)]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // What they name -> the first entry naming it.
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    let mut endpoints: BTreeMap<String, String> = BTreeMap::new();
    let mut triggers: BTreeMap<String, String> = BTreeMap::new();
    let mut pipelines: BTreeMap<String, String> = BTreeMap::new();
    for (lbl, names) in entries {
        let mut claim =
            |seen: &mut BTreeMap<String, String>, path: String, name: &str| match seen.get(name) {
                Some(first) if first != lbl => errors.push(FieldError {
                    model: lbl.clone(),
                    path,
                    message: format!("{name:?} is already used by {first}"),
                }),
                Some(_) => {}
                None => {
                    seen.insert(name.to_owned(), lbl.clone());
                }
            };
        if let Some(g) = &names.group {
            claim(&mut groups, "group".into(), g);
        }
        for (path, e) in &names.endpoints {
            claim(&mut endpoints, path.clone(), e);
        }
        for (path, t) in &names.triggers {
            claim(&mut triggers, path.clone(), t);
        }
        if let Some(p) = &names.pipeline {
            claim(&mut pipelines, "retraining.pipeline".into(), p);
        }
    }
    errors
}

/// The rules between fields of each model, and across models; `labels[i]` names `models[i]`.
pub fn check(catalogue: &Catalogue, labels: &[String]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut entries = Vec::new();
    for (i, m) in catalogue.models.iter().enumerate() {
        let lbl = labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| label(i, Some(&m.group)));
        check_model(m, &mut |path, message| {
            errors.push(FieldError {
                model: lbl.clone(),
                path,
                message,
            })
        });
        entries.push((lbl, Names::of(m)));
    }
    errors.extend(cross_model(&entries));
    errors
}

/// A SageMaker resource name: `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,max-1}`.
fn sagemaker_name(name: &str, max: usize) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= max
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a SageMaker name (1-{max} letters, digits and hyphens, starting and ending with a letter or digit)"
        ))
    }
}

/// `s3://bucket/prefix`.
pub fn s3_uri(uri: &str) -> Result<(), String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri:?} is not an s3:// URI"))?;
    let bucket = rest.split('/').next().unwrap_or_default();
    if bucket.len() < 3 || bucket.len() > 63 {
        return Err(format!("{uri:?} does not name a bucket"));
    }
    Ok(())
}

pub use crate::spelling::{duration_seconds, pipeline};

fn parameter_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a pipeline parameter name (1-256 letters, digits, '-' and '_')"
        ))
    }
}

fn check_model(m: &Model, err: &mut dyn FnMut(String, String)) {
    let mut e = |path: &str, message: String| err(path.to_owned(), message);
    if let Err(msg) = sagemaker_name(&m.group, 63) {
        e("group", msg);
    }
    if let Some(role) = &m.execution_role_arn
        && !(role.starts_with("arn:aws") && role.contains(":role/"))
    {
        e(
            "executionRoleArn",
            format!("{role:?} is not an IAM role ARN"),
        );
    }
    // Problem and its attributes.
    let p = &m.problem;
    let binary = p.problem_type == ProblemType::BinaryClassification;
    let forecast = p.problem_type == ProblemType::Forecast;
    if let Some(t) = p.probability_threshold
        && !(0.0..=1.0).contains(&t)
    {
        e(
            "problem.probabilityThreshold",
            "must be between 0 and 1".into(),
        );
    }
    for (field, set) in [
        ("probabilityThreshold", p.probability_threshold.is_some()),
        ("positiveLabel", p.positive_label.is_some()),
        ("negativeLabel", p.negative_label.is_some()),
    ] {
        if set && !binary {
            e(
                &format!("problem.{field}"),
                format!(
                    "only for BinaryClassification (the type is {:?})",
                    p.problem_type
                ),
            );
        }
    }
    for (field, set) in [
        ("forecastQuantiles", p.forecast_quantiles.is_some()),
        ("forecastSeasonality", p.forecast_seasonality.is_some()),
    ] {
        if set && !forecast {
            e(
                &format!("problem.{field}"),
                format!("only for Forecast (the type is {:?})", p.problem_type),
            );
        }
    }
    if let Some(q) = &p.forecast_quantiles {
        if q.is_empty() || q.len() > 20 {
            e("problem.forecastQuantiles", "1-20 quantiles".into());
        }
        for (k, v) in q.iter().enumerate() {
            if !(*v > 0.0 && *v < 1.0) {
                e(
                    &format!("problem.forecastQuantiles[{k}]"),
                    format!("{v}: a quantile is strictly between 0 and 1"),
                );
            } else if q[..k].iter().any(|o| (o - v).abs() < 1e-9) {
                e(
                    &format!("problem.forecastQuantiles[{k}]"),
                    format!("{v}: listed twice"),
                );
            }
        }
    }
    if let Some(s) = p.forecast_seasonality
        && !(1..=10_000).contains(&s)
    {
        e("problem.forecastSeasonality", "must be 1-10000".into());
    }
    if let Some(names) = &p.feature_names {
        let mut seen = HashSet::new();
        for (k, n) in names.iter().enumerate() {
            if n.trim().is_empty() {
                e(
                    &format!("problem.featureNames[{k}]"),
                    "must not be empty".into(),
                );
            } else if !seen.insert(n.as_str()) {
                e(
                    &format!("problem.featureNames[{k}]"),
                    format!("{n:?} listed twice"),
                );
            }
        }
    }
    // Capture.
    if let Some(c) = &m.capture {
        if let Err(msg) = s3_uri(&c.destination_s3_uri) {
            e("capture.destinationS3Uri", msg);
        }
        if !(1..=100).contains(&c.sampling_percentage) {
            e("capture.samplingPercentage", "must be 1-100".into());
        }
    }
    // Stages.
    for (stage, s) in m.stages.iter() {
        let at = |f: &str| format!("stages.{}.{f}", stage.as_str());
        if let Err(msg) = sagemaker_name(&s.endpoint_name, 63) {
            e(&at("endpointName"), msg);
        }
        if !s.instance_type.starts_with("ml.") {
            e(
                &at("instanceType"),
                format!(
                    "{:?} is not a SageMaker instance type (ml.*)",
                    s.instance_type
                ),
            );
        }
        if s.instance_count < 1 {
            e(&at("instanceCount"), "must be at least 1".into());
        }
        if let Some(d) = &s.deployment {
            match (d.routing, d.percent) {
                (Routing::AllAtOnce, Some(_)) => e(
                    &at("deployment.percent"),
                    "only for CANARY and LINEAR".into(),
                ),
                (Routing::Canary | Routing::Linear, None) => e(
                    &at("deployment.percent"),
                    format!("{} needs a percentage (1-100)", d.routing.as_str()),
                ),
                (_, Some(pct)) if !(1..=100).contains(&pct) => {
                    e(&at("deployment.percent"), "must be 1-100".into())
                }
                _ => {}
            }
        }
        if s.rollback_alarms.len() > 10 {
            e(
                &at("rollbackAlarms"),
                "at most 10 alarms (SageMaker's AutoRollbackConfiguration)".into(),
            );
        }
        for (k, a) in s.rollback_alarms.iter().enumerate() {
            if a.is_empty() || a.len() > 255 {
                e(
                    &at(&format!("rollbackAlarms[{k}]")),
                    "1-255 characters".into(),
                );
            }
        }
        if let Some(a) = &s.autoscaling {
            if a.max_capacity < 1 {
                e(&at("autoscaling.maxCapacity"), "must be at least 1".into());
            }
            if a.min_capacity < 1 {
                e(&at("autoscaling.minCapacity"), "must be at least 1".into());
            } else if a.min_capacity > a.max_capacity {
                e(
                    &at("autoscaling.minCapacity"),
                    format!("must not exceed maxCapacity ({})", a.max_capacity),
                );
            }
            if a.target_invocations < 1 {
                e(
                    &at("autoscaling.targetInvocations"),
                    "must be at least 1 (invocations per instance per minute)".into(),
                );
            }
        }
    }
    if let Some(prod) = &m.stages.production
        && prod.endpoint_name == m.stages.staging.endpoint_name
    {
        e(
            "stages.production.endpointName",
            "must differ from stages.staging.endpointName".into(),
        );
    }
    // Monitoring.
    if let Some(mon) = &m.monitoring {
        if mon.stages.is_empty() {
            e("monitoring.stages", "name at least one stage".into());
        }
        for (k, st) in mon.stages.iter().enumerate() {
            if m.stages.get(*st).is_none() {
                e(
                    &format!("monitoring.stages[{k}]"),
                    format!("{:?} is not a stage of this model", st.as_str()),
                );
            } else if mon.stages[..k].contains(st) {
                e(&format!("monitoring.stages[{k}]"), "listed twice".into());
            }
        }
        if m.capture.is_none() {
            e(
                "monitoring",
                "real-time monitoring reads the endpoints' data capture: set `capture`".into(),
            );
        }
        if let Err(msg) = s3_uri(&mon.ground_truth_s3_uri) {
            e("monitoring.groundTruthS3Uri", msg);
        }
        if let Some(r) = &mon.report_s3_uri
            && let Err(msg) = s3_uri(r)
        {
            e("monitoring.reportS3Uri", msg);
        }
        let w = mon.window_minutes;
        if w == 0 || !(1440 % w == 0 || w % 1440 == 0) {
            e(
                "monitoring.windowMinutes",
                format!("{w}: a window divides a day or is whole days"),
            );
        }
        if mon.schedule_name.is_empty()
            || mon.schedule_name.contains('/')
            || mon.schedule_name.len() > 255
        {
            e(
                "monitoring.scheduleName",
                "must be 1-255 characters without '/'".into(),
            );
        }
    }
    // Alarms.
    let mut names = HashSet::new();
    let mut following: BTreeMap<StageName, usize> = BTreeMap::new();
    for (k, a) in m.alarms.iter().enumerate() {
        let at = |f: &str| format!("alarms[{k}].{f}");
        if a.name.is_empty() || a.name.len() > 255 {
            e(&at("name"), "1-255 characters".into());
        } else if !names.insert(a.name.as_str()) {
            e(&at("name"), format!("{:?} listed twice", a.name));
        }
        if a.metric.trim().is_empty() {
            e(&at("metric"), "must not be empty".into());
        }
        if m.stages.get(a.stage).is_none() {
            e(
                &at("stage"),
                format!("{:?} is not a stage of this model", a.stage.as_str()),
            );
        }
        if a.threshold == ThresholdSource::ServedPackage {
            if let Some(first) = following.get(&a.stage) {
                e(
                    &at("threshold"),
                    format!(
                        "alarms[{first}] already follows the served package's constraint on {:?}; at most one per stage",
                        a.stage.as_str()
                    ),
                );
            } else {
                following.insert(a.stage, k);
            }
        }
        if a.retrain && m.retraining.is_none() {
            e(
                &at("retrain"),
                "the model has no `retraining` pipeline to start (set it, or \"retrain\": false)"
                    .into(),
            );
        }
    }
    // Retraining.
    if let Some(r) = &m.retraining {
        if let Err(msg) = pipeline(&r.pipeline) {
            e("retraining.pipeline", msg);
        }
        if r.parameters.len() + r.context_parameters.len() > 200 {
            e(
                "retraining.parameters",
                "SageMaker accepts at most 200 parameters".into(),
            );
        }
        for (name, v) in &r.parameters {
            let at = format!("retraining.parameters.{name}");
            if let Err(msg) = parameter_name(name) {
                e(&at, msg);
            }
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    e(
                        &at,
                        format!("must be a string, number or boolean, got {}", kind(other)),
                    );
                    continue;
                }
            };
            if s.chars().count() > 1024 {
                e(&at, "longer than 1024 characters".into());
            }
        }
        for (fact, name) in &r.context_parameters {
            if let Err(msg) = parameter_name(name) {
                e(
                    &format!("retraining.contextParameters.{}", fact.as_str()),
                    msg,
                );
            } else if r.parameters.contains_key(name) {
                e(
                    &format!("retraining.contextParameters.{}", fact.as_str()),
                    format!("{name:?} is also a fixed parameter"),
                );
            }
        }
        for (k, rule) in r.schedule_rules.iter().enumerate() {
            if rule.is_empty() || rule.len() > 64 {
                e(
                    &format!("retraining.scheduleRules[{k}]"),
                    "an EventBridge rule name (1-64 characters)".into(),
                );
            }
        }
        if let Some(c) = &r.cooldown
            && let Err(msg) = duration_seconds(c)
        {
            e("retraining.cooldown", msg);
        }
    }
}
