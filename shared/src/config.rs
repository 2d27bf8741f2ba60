//! Typed configuration from environment variables, validated once at init.
//!
//! Functions read their settings through an [`Env`] over a [`Lookup`] (the process environment in
//! production, a map in tests), so configuration is tested without touching the process
//! environment. Every error names the variable. An empty value counts as unset: CloudFormation and
//! SAM write `""` for an optional parameter left blank.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// Where variables come from.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Lookup for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl<const N: usize> Lookup for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {var} is required but not set{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Missing {
        var: String,
        hint: Option<&'static str>,
    },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Invalid {
        var: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    pub fn var(&self) -> &str {
        match self {
            ConfigError::Missing { var, .. } | ConfigError::Invalid { var, .. } => var,
        }
    }
}

/// Reads typed values from a [`Lookup`].
pub struct Env<'a> {
    lookup: &'a dyn Lookup,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Lookup) -> Self {
        Env { lookup }
    }

    /// The value, or `None` when unset or blank (surrounding whitespace trimmed).
    pub fn optional(&self, var: &str) -> Option<String> {
        self.lookup
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.optional(var).ok_or_else(|| ConfigError::Missing {
            var: var.to_owned(),
            hint: None,
        })
    }

    /// Like [`Env::required`], with a hint on what the variable is for in the error.
    pub fn required_with_hint(&self, var: &str, hint: &'static str) -> Result<String, ConfigError> {
        self.optional(var).ok_or_else(|| ConfigError::Missing {
            var: var.to_owned(),
            hint: Some(hint),
        })
    }

    pub fn parse_optional<T>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(var) {
            None => Ok(None),
            Some(value) => value
                .parse::<T>()
                .map(Some)
                .map_err(|e| ConfigError::Invalid {
                    var: var.to_owned(),
                    reason: e.to_string(),
                    value,
                }),
        }
    }

    pub fn parse_or<T>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse_optional(var)?.unwrap_or(default))
    }

    /// [`Env::parse_or`], and the value (set or default) must pass `ok`; `bound` says which values
    /// do.
    pub fn parse_checked<T>(
        &self,
        var: &str,
        default: T,
        ok: impl FnOnce(&T) -> bool,
        bound: &str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + Display,
        T::Err: Display,
    {
        let value = self.parse_or(var, default)?;
        if ok(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                var: var.to_owned(),
                value: value.to_string(),
                reason: bound.to_owned(),
            })
        }
    }

    /// `true/false/1/0/yes/no/on/off`, case-insensitive.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    var: var.to_owned(),
                    value: v,
                    reason: "expected true or false".to_owned(),
                }),
            },
        }
    }

    /// Validates a value with a closure that explains what is wrong.
    pub fn validated<T>(
        &self,
        var: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.optional(var) {
            None => Ok(None),
            Some(value) => check(&value)
                .map(Some)
                .map_err(|reason| ConfigError::Invalid {
                    var: var.to_owned(),
                    value,
                    reason,
                }),
        }
    }
}

impl crate::error::Classify for ConfigError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::Permanent
    }
    fn code(&self) -> &'static str {
        "Configuration"
    }
}

/// The `errorType` a configuration error is reported with.
pub const CONFIGURATION_ERROR_TYPE: &str = "Permanent.Configuration";

/// Reports a configuration error through the Lambda runtime API's init-error path
/// (`POST /2018-06-01/runtime/init/error`, header `Lambda-Runtime-Function-Error-Type`), so the
/// invocation that started the environment fails with `errorType` `Permanent.Configuration` and a
/// message naming the variable, instead of a bare `Runtime.ExitError`. Then the caller exits
/// (Lambda expects the runtime to stop after an init error).
///
/// `lambda_runtime` 1.5 posts to `/init/error` only for its SnapStart hooks and exposes no API
/// for it, so this posts the one request itself: plain HTTP/1.1 to `AWS_LAMBDA_RUNTIME_API`
/// (the runtime API is local, unencrypted HTTP). Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it
/// only logs. Returns the error back, for `main` to return.
pub fn report_init_error(error: ConfigError) -> ConfigError {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").ok();
    match api.as_deref().map(|api| post_init_error(api, &error)) {
        Some(Ok(status)) => {
            tracing::error!(error = %error, var = error.var(), status, "configuration error reported to Lambda")
        }
        Some(Err(e)) => tracing::error!(
            error = %error, var = error.var(), report_error = %e,
            "configuration error (reporting it to the runtime API failed)"
        ),
        None => tracing::error!(error = %error, var = error.var(), "configuration error"),
    }
    error
}

/// The init-error report's body (the runtime API's error shape).
pub fn init_error_body(error: &ConfigError) -> String {
    serde_json::json!({
        "errorType": CONFIGURATION_ERROR_TYPE,
        "errorMessage": error.to_string(),
        "variable": error.var(),
    })
    .to_string()
}

/// Posts the report to the runtime API at `api` (`host:port`); the response's status code.
pub fn post_init_error(api: &str, error: &ConfigError) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    use std::time::Duration;

    let body = init_error_body(error);
    let mut stream = std::net::TcpStream::connect(api)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: {CONFIGURATION_ERROR_TYPE}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("unexpected response {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_blank_name_the_variable() {
        let vars = [("BLANK", "  ")];
        let env = Env::new(&vars);
        let err = env.required("MODEL_PACKAGE_GROUP_NAME").unwrap_err();
        assert_eq!(err.var(), "MODEL_PACKAGE_GROUP_NAME");
        assert!(
            err.to_string()
                .contains("MODEL_PACKAGE_GROUP_NAME is required")
        );
        assert!(env.required("BLANK").is_err());
        assert_eq!(env.optional("BLANK"), None);
        let hinted = env
            .required_with_hint("PIPELINE_NAME", "the SageMaker pipeline to start")
            .unwrap_err();
        assert!(
            hinted
                .to_string()
                .ends_with("(the SageMaker pipeline to start)"),
            "{hinted}"
        );
    }

    #[test]
    fn checked_values_name_the_bound() {
        let vars = [("QUIET", "700"), ("COUNT", "3"), ("BAD", "x")];
        let env = Env::new(&vars);
        let under = |v: &u32| *v <= 600;
        assert_eq!(
            env.parse_checked("COUNT", 1, under, "at most 600").unwrap(),
            3
        );
        assert_eq!(
            env.parse_checked("UNSET", 20, under, "at most 600")
                .unwrap(),
            20
        );
        let err = env
            .parse_checked("QUIET", 20, under, "at most 600")
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Invalid {
                var: "QUIET".into(),
                value: "700".into(),
                reason: "at most 600".into()
            }
        );
        // An unset variable's default is checked too; a value that does not parse says so.
        assert!(
            env.parse_checked("UNSET", 0, |v| *v >= 1, "at least 1")
                .is_err()
        );
        let err = env
            .parse_checked("BAD", 1u32, under, "at most 600")
            .unwrap_err();
        assert!(err.to_string().contains("invalid digit"), "{err}");
    }

    #[test]
    fn parse_reports_value_and_reason() {
        let vars = [("COOLDOWN_MINUTES", "ten"), ("PORT", " 42 ")];
        let env = Env::new(&vars);
        let err = env.parse_or::<u32>("COOLDOWN_MINUTES", 60).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("COOLDOWN_MINUTES=\"ten\" is invalid"), "{msg}");
        assert_eq!(env.parse_or::<u32>("PORT", 1).unwrap(), 42);
        assert_eq!(env.parse_or::<u32>("UNSET", 7).unwrap(), 7);
    }

    #[test]
    fn flags() {
        let vars = [("A", "Yes"), ("B", "off"), ("C", "maybe")];
        let env = Env::new(&vars);
        assert!(env.flag("A", false).unwrap());
        assert!(!env.flag("B", true).unwrap());
        assert!(env.flag("UNSET", true).unwrap());
        assert_eq!(env.flag("C", true).unwrap_err().var(), "C");
    }

    #[test]
    fn validated_wraps_reason() {
        let vars = [("BUCKET_URI", "http://x")];
        let env = Env::new(&vars);
        let err = env
            .validated("BUCKET_URI", |v| {
                if v.starts_with("s3://") {
                    Ok(v.to_owned())
                } else {
                    Err("expected s3://".into())
                }
            })
            .unwrap_err();
        assert!(err.to_string().contains("expected s3://"));
    }

    #[test]
    fn init_errors_are_posted_to_the_runtime_api() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if body.len() >= len || n == 0 {
                        break;
                    }
                }
            }
            conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(req).unwrap()
        });
        let error = Env::new(&[("WINDOW_MINUTES", "7")])
            .parse_checked(
                "WINDOW_MINUTES",
                60u32,
                |m| 1440 % m == 0,
                "must divide a day",
            )
            .unwrap_err();
        assert_eq!(post_init_error(&api, &error).unwrap(), 202);
        let req = server.join().unwrap();
        let (head, body) = req.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("POST /2018-06-01/runtime/init/error HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.contains("Lambda-Runtime-Function-Error-Type: Permanent.Configuration"),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["errorType"], "Permanent.Configuration");
        assert_eq!(body["variable"], "WINDOW_MINUTES");
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("WINDOW_MINUTES=\"7\" is invalid: must divide a day")
        );
        // Nobody listening: an error, not a hang or a panic.
        assert!(post_init_error("127.0.0.1:1", &error).is_err());
    }
}
