//! Tracing set-up for Lambda.
//!
//! - `AWS_LAMBDA_LOG_FORMAT=JSON` (set by Lambda's `LoggingConfig.LogFormat: JSON`) → one JSON object
//!   per line with the event's fields flattened; otherwise compact text without colours (CloudWatch
//!   shows escape codes literally) and without timestamps (CloudWatch adds its own).
//! - Level: `RUST_LOG` when set (full `EnvFilter` syntax, per-target directives), else
//!   `AWS_LAMBDA_LOG_LEVEL` (Lambda's `ApplicationLogLevel`: TRACE, DEBUG, INFO, WARN, ERROR, FATAL),
//!   else INFO.

use crate::config::{Lookup, ProcessEnv};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    /// An `EnvFilter` directive string.
    pub filter: String,
}

impl LogSettings {
    pub fn from_lookup(lookup: &dyn Lookup) -> Self {
        let json = lookup
            .get("AWS_LAMBDA_LOG_FORMAT")
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("json"));
        let filter = lookup
            .get("RUST_LOG")
            .filter(|v| !v.trim().is_empty())
            .or_else(|| {
                lookup
                    .get("AWS_LAMBDA_LOG_LEVEL")
                    .and_then(|l| lambda_level(&l).map(str::to_owned))
            })
            .unwrap_or_else(|| "info".to_owned());
        LogSettings { json, filter }
    }
}

/// Lambda's application log levels to tracing levels (FATAL has no tracing level: ERROR).
fn lambda_level(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" => Some("warn"),
        "ERROR" | "FATAL" => Some("error"),
        _ => None,
    }
}

/// Installs the global subscriber. Safe to call twice (the second call is a no-op).
pub fn init_tracing() {
    let settings = LogSettings::from_lookup(&ProcessEnv);
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false);
    let result = if settings.json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.without_time().try_init()
    };
    // An already installed subscriber (tests, a second init) is fine.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_format_and_lambda_level() {
        let s = LogSettings::from_lookup(&[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
        ]);
        assert_eq!(
            s,
            LogSettings {
                json: true,
                filter: "warn".into()
            }
        );
    }

    #[test]
    fn rust_log_wins_and_defaults_are_text_info() {
        let s = LogSettings::from_lookup(&[
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("RUST_LOG", "driftloop=trace"),
        ]);
        assert_eq!(s.filter, "driftloop=trace");
        assert!(!s.json);
        let d = LogSettings::from_lookup(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]);
        assert_eq!(
            d,
            LogSettings {
                json: false,
                filter: "info".into()
            }
        );
        let fatal = LogSettings::from_lookup(&[("AWS_LAMBDA_LOG_LEVEL", "fatal")]);
        assert_eq!(fatal.filter, "error");
    }
}
