//! The settings of a retraining deployment, parsed from strings (the function reads them from
//! environment variables through `config::Env::validated`, which names the variable in errors).

use std::collections::BTreeMap;
use std::fmt;

use chrono::Duration;
use serde::Serialize;
use serde_json::Value;

/// A duration written with a unit: `90s`, `30m`, `6h`, `7d`, `1w`; `0` alone is zero
/// ([`crate::spelling::duration_seconds`], which the catalogue's validator shares).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::spelling::duration_seconds(s).map(Duration::seconds)
}

/// `Duration` as the shortest exact `parse_duration` spelling (`0`, `90s`, `30m`, `6h`, `7d`).
pub fn format_duration(d: Duration) -> String {
    let s = d.num_seconds();
    match s {
        0 => "0".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A pipeline name (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}`) or a pipeline ARN
/// ([`crate::spelling::pipeline`]).
pub fn validate_pipeline(p: &str) -> Result<String, String> {
    crate::spelling::pipeline(p).map(|()| p.to_owned())
}

/// Which pipeline a trigger starts: by the trigger's name (alarm name, or schedule rule name),
/// exactly or by a `prefix*` pattern (the longest prefix wins), else the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PipelineRoutes {
    pub default: Option<String>,
    pub exact: BTreeMap<String, String>,
    /// (prefix, pipeline), longest prefix first.
    pub prefixes: Vec<(String, String)>,
}

impl PipelineRoutes {
    /// `spec`: a JSON object `{"alarm-name": "pipeline", "churn-*": "churn-build"}`, or
    /// `alarm-name=pipeline,churn-*=churn-build` (names containing `,` or `=` need the JSON form).
    pub fn parse(default: Option<String>, spec: Option<&str>) -> Result<Self, String> {
        let mut routes = PipelineRoutes {
            default,
            ..Default::default()
        };
        let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(routes);
        };
        let pairs: Vec<(String, String)> = if spec.starts_with('{') {
            let map: BTreeMap<String, Value> = serde_json::from_str(spec)
                .map_err(|e| format!("not a JSON object of strings: {e}"))?;
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(format!(
                        "the pipeline for {k:?} must be a string, got {other}"
                    )),
                })
                .collect::<Result<_, _>>()?
        } else {
            spec.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| format!("{pair:?} is not name=pipeline"))
                })
                .collect::<Result<_, _>>()?
        };
        for (name, pipeline) in pairs {
            if name.is_empty() {
                return Err("an empty alarm name".to_owned());
            }
            let pipeline = validate_pipeline(&pipeline)?;
            match name.strip_suffix('*') {
                Some(prefix) => routes.prefixes.push((prefix.to_owned(), pipeline)),
                None => {
                    routes.exact.insert(name, pipeline);
                }
            }
        }
        routes
            .prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(routes)
    }

    pub fn resolve(&self, name: &str) -> Option<&str> {
        self.exact
            .get(name)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| name.starts_with(p.as_str()))
                    .map(|(_, pl)| pl)
            })
            .or(self.default.as_ref())
            .map(String::as_str)
    }

    /// True when `pipeline` is the default or the target of a route.
    pub fn knows(&self, pipeline: &str) -> bool {
        self.default.as_deref() == Some(pipeline)
            || self.exact.values().any(|p| p == pipeline)
            || self.prefixes.iter().any(|(_, p)| p == pipeline)
    }

    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// A fact about the trigger that can be passed to the pipeline as a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContextField {
    /// `alarm`, `schedule` or `request`.
    Trigger,
    /// The alarm's (or schedule's, or requester's) name.
    Alarm,
    /// The alarm's metric name (metric-math alarms: the expression's label, else the expression).
    Metric,
    Namespace,
    /// The evaluated datapoint that breached.
    Value,
    Threshold,
    /// The state change (scheduled, requested) time, RFC 3339.
    Time,
    /// The human-readable reason.
    Reason,
}

impl ContextField {
    pub const ALL: [ContextField; 8] = [
        ContextField::Trigger,
        ContextField::Alarm,
        ContextField::Metric,
        ContextField::Namespace,
        ContextField::Value,
        ContextField::Threshold,
        ContextField::Time,
        ContextField::Reason,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ContextField::Trigger => "trigger",
            ContextField::Alarm => "alarm",
            ContextField::Metric => "metric",
            ContextField::Namespace => "namespace",
            ContextField::Value => "value",
            ContextField::Threshold => "threshold",
            ContextField::Time => "time",
            ContextField::Reason => "reason",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for ContextField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SageMaker's limits on pipeline parameters.
pub const MAX_PARAMETERS: usize = 200;
pub const MAX_PARAMETER_NAME: usize = 256;
pub const MAX_PARAMETER_VALUE: usize = 1024;

/// A parameter name SageMaker accepts: 1-256 of `[A-Za-z0-9_-]`.
pub fn validate_parameter_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= MAX_PARAMETER_NAME
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

/// A parameter value: strings as they are, numbers and booleans as JSON writes them.
pub fn parameter_value(name: &str, v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(format!(
                "the value of parameter {name:?} must be a string, number or boolean, got {other}"
            ));
        }
    };
    if s.chars().count() > MAX_PARAMETER_VALUE {
        return Err(format!(
            "the value of parameter {name:?} is longer than {MAX_PARAMETER_VALUE} characters"
        ));
    }
    Ok(s)
}

/// Parses `{"Name": "value", ...}` (values: strings, numbers, booleans).
pub fn parse_fixed_parameters(spec: &str) -> Result<BTreeMap<String, String>, String> {
    let map: BTreeMap<String, Value> = serde_json::from_str(spec)
        .map_err(|e| format!("expected a JSON object of parameter values: {e}"))?;
    let mut out = BTreeMap::new();
    for (name, v) in &map {
        validate_parameter_name(name)?;
        out.insert(name.clone(), parameter_value(name, v)?);
    }
    if out.len() > MAX_PARAMETERS {
        return Err(format!(
            "{} parameters; SageMaker accepts at most {MAX_PARAMETERS}",
            out.len()
        ));
    }
    Ok(out)
}

/// Parses which trigger facts go to which pipeline parameter: `{"alarm": "TriggerAlarm", ...}` or
/// `alarm=TriggerAlarm,value=DriftValue`. Fields: trigger, alarm, metric, namespace, value,
/// threshold, time, reason.
pub fn parse_context_parameters(spec: &str) -> Result<BTreeMap<ContextField, String>, String> {
    let spec = spec.trim();
    let pairs: Vec<(String, String)> = if spec.starts_with('{') {
        let map: BTreeMap<String, String> = serde_json::from_str(spec)
            .map_err(|e| format!("expected a JSON object of strings: {e}"))?;
        map.into_iter().collect()
    } else {
        spec.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| format!("{p:?} is not field=ParameterName"))
            })
            .collect::<Result<_, _>>()?
    };
    let mut out = BTreeMap::new();
    for (field, param) in pairs {
        let f = ContextField::parse(&field).ok_or_else(|| {
            let known: Vec<&str> = ContextField::ALL.iter().map(ContextField::as_str).collect();
            format!(
                "unknown context field {field:?} (known: {})",
                known.join(", ")
            )
        })?;
        validate_parameter_name(&param)?;
        out.insert(f, param);
    }
    Ok(out)
}

/// The pipeline parameters of a deployment: fixed values, and trigger facts mapped to names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParameterSettings {
    pub fixed: BTreeMap<String, String>,
    pub context: BTreeMap<ContextField, String>,
}

impl ParameterSettings {
    /// Why a request may not set parameter `name` to `value`, if it may not: the operator's fixed
    /// parameters (`PIPELINE_PARAMETERS`) and the trigger facts (`CONTEXT_PARAMETERS`) are the
    /// deployment's, not a requester's. Asking for the value a fixed parameter has is fine.
    pub fn refuses(&self, name: &str, value: &str) -> Option<String> {
        if let Some(fixed) = self.fixed.get(name) {
            return (fixed != value).then(|| {
                format!(
                    "pipeline parameter {name:?} is fixed by the operator (PIPELINE_PARAMETERS) to {fixed:?}; a request cannot set it to {value:?}"
                )
            });
        }
        self.context.iter().find(|(_, n)| n.as_str() == name).map(|(field, _)| {
            format!(
                "pipeline parameter {name:?} carries the trigger's {} (CONTEXT_PARAMETERS); a request cannot set it",
                field.as_str()
            )
        })
    }
}

/// The skip rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// No new execution while one started less than this long ago.
    pub cooldown: Duration,
    /// A scheduled retrain is skipped when a drift-triggered execution succeeded within this.
    pub schedule_period: Duration,
    /// A trigger older than this is skipped (zero: no limit). Executions are listed at least this
    /// far back, so a redelivery of any trigger that is acted on is recognised.
    pub max_trigger_age: Duration,
}

/// How far back executions are listed at least, to see long-running `Executing` ones.
pub const MIN_LOOKBACK_DAYS: i64 = 7;

impl Policy {
    pub const DEFAULT_COOLDOWN_HOURS: i64 = 24;
    pub const DEFAULT_SCHEDULE_PERIOD_DAYS: i64 = 7;
    /// EventBridge retries a delivery for up to 24 hours by default.
    pub const DEFAULT_MAX_TRIGGER_AGE_HOURS: i64 = 24;

    /// How far back to list executions.
    pub fn lookback(&self) -> Duration {
        self.cooldown
            .max(self.schedule_period)
            .max(self.max_trigger_age)
            .max(Duration::days(MIN_LOOKBACK_DAYS))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            cooldown: Duration::hours(Self::DEFAULT_COOLDOWN_HOURS),
            schedule_period: Duration::days(Self::DEFAULT_SCHEDULE_PERIOD_DAYS),
            max_trigger_age: Duration::hours(Self::DEFAULT_MAX_TRIGGER_AGE_HOURS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cannot_replace_fixed_or_context_parameters() {
        let p = ParameterSettings {
            fixed: parse_fixed_parameters(r#"{"TrainingInstanceType": "ml.m5.xlarge"}"#).unwrap(),
            context: parse_context_parameters("alarm=TriggerAlarm").unwrap(),
        };
        let refusal = p
            .refuses("TrainingInstanceType", "ml.p4d.24xlarge")
            .unwrap();
        assert!(refusal.contains("fixed by the operator"), "{refusal}");
        assert!(refusal.contains("ml.m5.xlarge"), "{refusal}");
        assert_eq!(p.refuses("TrainingInstanceType", "ml.m5.xlarge"), None);
        assert!(
            p.refuses("TriggerAlarm", "forged")
                .unwrap()
                .contains("trigger's alarm")
        );
        assert_eq!(p.refuses("MaxDepth", "6"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::zero());
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_duration(" 6h ").unwrap(), Duration::hours(6));
        assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_duration("2 weeks").unwrap(), Duration::days(14));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("1y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("999999d").unwrap_err().contains("year"));
        for d in ["0", "90s", "30m", "6h", "7d"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn routes_exact_then_longest_prefix_then_default() {
        let r = PipelineRoutes::parse(
            Some("default-build".into()),
            Some(r#"{"churn-drift": "churn-build", "churn-*": "churn-generic", "churn-model-*": "churn-model", "fraud-*": "fraud-build"}"#),
        )
        .unwrap();
        assert_eq!(r.resolve("churn-drift"), Some("churn-build"));
        assert_eq!(r.resolve("churn-model-quality"), Some("churn-model"));
        assert_eq!(r.resolve("churn-other"), Some("churn-generic"));
        assert_eq!(r.resolve("fraud-x"), Some("fraud-build"));
        assert_eq!(r.resolve("unmapped"), Some("default-build"));
        assert!(r.knows("fraud-build") && r.knows("default-build") && !r.knows("elsewhere"));

        let r = PipelineRoutes::parse(None, Some("a=p1, b-*=p2 ,")).unwrap();
        assert_eq!(r.resolve("a"), Some("p1"));
        assert_eq!(r.resolve("b-1"), Some("p2"));
        assert_eq!(r.resolve("c"), None);
        assert!(PipelineRoutes::parse(None, None).unwrap().is_empty());
    }

    #[test]
    fn bad_routes_say_what_is_wrong() {
        assert!(
            PipelineRoutes::parse(None, Some("a"))
                .unwrap_err()
                .contains("name=pipeline")
        );
        assert!(
            PipelineRoutes::parse(None, Some("a=bad name"))
                .unwrap_err()
                .contains("not a pipeline name")
        );
        assert!(
            PipelineRoutes::parse(None, Some(r#"{"a": 1}"#))
                .unwrap_err()
                .contains("must be a string")
        );
        assert!(
            PipelineRoutes::parse(None, Some("{oops"))
                .unwrap_err()
                .contains("JSON")
        );
        assert!(PipelineRoutes::parse(None, Some("=p")).is_err());
    }

    #[test]
    fn pipeline_names_and_arns() {
        assert!(validate_pipeline("churn-build").is_ok());
        assert!(
            validate_pipeline("arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-build")
                .is_ok()
        );
        assert!(validate_pipeline("-x").is_err());
        assert!(validate_pipeline("a_b").is_err());
        assert!(validate_pipeline(&"a".repeat(257)).is_err());
    }

    #[test]
    fn parameters() {
        let fixed = parse_fixed_parameters(
            r#"{"InstanceType": "ml.m5.xlarge", "Epochs": 10, "Tune": true}"#,
        )
        .unwrap();
        assert_eq!(fixed["Epochs"], "10");
        assert_eq!(fixed["Tune"], "true");
        assert!(
            parse_fixed_parameters(r#"{"bad name": "x"}"#)
                .unwrap_err()
                .contains("parameter name")
        );
        assert!(
            parse_fixed_parameters(r#"{"A": {"nested": 1}}"#)
                .unwrap_err()
                .contains("string, number or boolean")
        );
        assert!(
            parse_fixed_parameters(&format!(r#"{{"A": "{}"}}"#, "x".repeat(1025)))
                .unwrap_err()
                .contains("1024")
        );

        let ctx = parse_context_parameters("alarm=TriggerAlarm, value=DriftValue,TIME=TriggerTime")
            .unwrap();
        assert_eq!(ctx[&ContextField::Alarm], "TriggerAlarm");
        assert_eq!(ctx[&ContextField::Time], "TriggerTime");
        let ctx = parse_context_parameters(r#"{"metric": "DriftMetric"}"#).unwrap();
        assert_eq!(ctx[&ContextField::Metric], "DriftMetric");
        assert!(
            parse_context_parameters("colour=X")
                .unwrap_err()
                .contains("known: trigger, alarm")
        );
        assert!(parse_context_parameters("alarm=Bad Name").is_err());
    }

    #[test]
    fn lookback_covers_cooldown_period_trigger_age_and_a_week() {
        let p = Policy {
            cooldown: Duration::hours(1),
            schedule_period: Duration::days(1),
            max_trigger_age: Duration::hours(24),
        };
        assert_eq!(p.lookback(), Duration::days(7));
        let p = Policy {
            cooldown: Duration::days(10),
            ..p
        };
        assert_eq!(p.lookback(), Duration::days(10));
        let p = Policy {
            cooldown: Duration::hours(1),
            schedule_period: Duration::days(30),
            ..p
        };
        assert_eq!(p.lookback(), Duration::days(30));
        let p = Policy {
            max_trigger_age: Duration::days(45),
            ..p
        };
        assert_eq!(p.lookback(), Duration::days(45));
    }
}
