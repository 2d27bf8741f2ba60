//! The control gate: the loop's requests (`Model Promotion Requested`, `Retrain Requested`,
//! `Model Monitoring Requested`, see [`DetailType::is_request`]) are accepted only when they come
//! through a rule on the stack's control bus.
//!
//! EventBridge events delivered to Lambda do not say which bus they were put on, and anyone who
//! may `events:PutEvents` on a bus can set `source` to `driftloop`. So the stack routes requests
//! only from its control bus (whose resource policy admits them only from the principals the
//! operator names), and every such rule's target delivers, through an input transformer,
//! `{"controlRule": "<aws.events.rule-arn>", "event": <aws.events.event.json>}` ([`envelope`]).
//! `aws.events.rule-arn` is filled in by EventBridge; a rule on bus `B` has the ARN
//! `arn:<partition>:events:<region>:<account>:rule/B/<name>`. The gate, configured with the
//! control bus' name (`CONTROL_BUS_NAME`), unwraps such a delivery when its rule is on that bus
//! and refuses, `Permanent.UntrustedRequest`, a request that arrives any other way (a raw event
//! from another bus's rule, a wrapper naming another bus). Events that are not requests (SageMaker,
//! CloudWatch, S3, schedules) pass unchanged.
//!
//! Without `CONTROL_BUS_NAME` (local runs, tests, a deployment without the stack) there is no
//! control bus and requests are accepted as they come, as before.
//!
//! What the gate records of a verified request ([`Requester`]): the envelope's `account` and `id`
//! (set by EventBridge, not by the sender) and the control rule's ARN. Under the bus policy only a
//! named principal can have put it; CloudTrail's PutEvents data events for the control bus name
//! the principal of each event id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ConfigError, Env, Lookup};
use crate::contract::{DetailType, SOURCE};
use crate::error::{Classify, ErrorClass};

/// The environment variable naming the control bus.
pub const CONTROL_BUS_NAME: &str = "CONTROL_BUS_NAME";
/// The wrapper's field holding the delivering rule's ARN.
pub const RULE_FIELD: &str = "controlRule";
/// The wrapper's field holding the original event.
pub const EVENT_FIELD: &str = "event";
/// The field of a request's `detail` the gate sets to the verified [`Requester`] (whatever the
/// sender put there is dropped; a sender's own `requestedBy` claim stays as it is).
pub const REQUESTER_FIELD: &str = "verifiedRequester";

/// The `InputTemplate` of a control rule's target (see the module docs).
pub fn envelope() -> String {
    format!(
        r#"{{"{RULE_FIELD}": "<aws.events.rule-arn>", "{EVENT_FIELD}": <aws.events.event.json>}}"#
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error(
        "{detail_type:?} is a control request and is accepted only through the control bus {bus:?}: {reason}"
    )]
    Untrusted {
        detail_type: String,
        bus: String,
        reason: String,
    },
}

impl Classify for GateError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
    fn code(&self) -> &'static str {
        "UntrustedRequest"
    }
}

impl From<GateError> for lambda_runtime::Diagnostic {
    fn from(e: GateError) -> Self {
        crate::error::diagnostic(&e)
    }
}

/// Who asked, as far as EventBridge vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    /// The envelope's `account`: the account whose principal put the event.
    pub account: String,
    /// The envelope's `id` (correlates with CloudTrail's PutEvents data event).
    pub event_id: String,
    /// The rule on the control bus that delivered it.
    pub control_rule: String,
}

/// The gate of one function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gate {
    /// The control bus; `None`: no control bus, requests accepted as they come.
    pub bus: Option<String>,
}

/// True for the loop's own requests.
pub fn is_request(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some(SOURCE)
        && event
            .get("detail-type")
            .and_then(Value::as_str)
            .and_then(DetailType::parse)
            .is_some_and(DetailType::is_request)
}

/// The bus name of a rule ARN (`...:rule/<bus>/<name>`); `default` for `...:rule/<name>`.
pub fn rule_bus(rule_arn: &str) -> Option<&str> {
    let parts: Vec<&str> = rule_arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "events" {
        return None;
    }
    let path = parts[5].strip_prefix("rule/")?;
    match path.split_once('/') {
        Some((bus, name)) if !bus.is_empty() && !name.is_empty() && !name.contains('/') => {
            Some(bus)
        }
        None if !path.is_empty() => Some("default"),
        _ => None,
    }
}

impl Gate {
    pub fn from_env(lookup: &dyn Lookup) -> Result<Gate, ConfigError> {
        let env = Env::new(lookup);
        let bus = env.validated(CONTROL_BUS_NAME, |v| {
            if v.len() <= 256
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                Ok(v.to_owned())
            } else {
                Err("expected an event bus name (1-256 of A-Z a-z 0-9 . _ -)".into())
            }
        })?;
        Ok(Gate { bus })
    }

    /// The event the function handles: a control delivery unwrapped (its request's `detail`
    /// carrying the verified [`Requester`] under [`REQUESTER_FIELD`]), any other event as it
    /// is; a request that did not come through the control bus is refused.
    pub fn admit(&self, event: Value) -> Result<Value, GateError> {
        let Some(bus) = &self.bus else {
            let mut event = event;
            // No control bus: nothing is verified, so nothing may claim to be.
            if let Some(detail) = event.get_mut("detail").and_then(Value::as_object_mut) {
                detail.remove(REQUESTER_FIELD);
            }
            return Ok(event);
        };
        let wrapped = event.get(RULE_FIELD).is_some() && event.get(EVENT_FIELD).is_some();
        if !wrapped {
            if is_request(&event) {
                return Err(untrusted(
                    &event,
                    bus,
                    "it was not delivered by a rule of the control bus",
                ));
            }
            return Ok(event);
        }
        let Value::Object(mut outer) = event else {
            unreachable!("an object has fields")
        };
        let rule = outer
            .remove(RULE_FIELD)
            .and_then(|r| r.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut inner = outer.remove(EVENT_FIELD).unwrap_or(Value::Null);
        if rule_bus(&rule) != Some(bus.as_str()) {
            return Err(untrusted(
                &inner,
                bus,
                &format!("it was delivered by rule {rule:?}, not a rule of the control bus"),
            ));
        }
        if !is_request(&inner) {
            return Err(untrusted(
                &inner,
                bus,
                "the control bus delivers only driftloop requests",
            ));
        }
        let text = |k: &str| {
            inner
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let requester = Requester {
            account: text("account"),
            event_id: text("id"),
            control_rule: rule,
        };
        if let Some(detail) = inner.get_mut("detail").and_then(Value::as_object_mut) {
            detail.insert(
                REQUESTER_FIELD.to_owned(),
                serde_json::to_value(&requester).unwrap_or(Value::Null),
            );
        }
        Ok(inner)
    }
}

/// The [`Requester`] the gate verified for this (admitted) request, if any.
pub fn verified_requester(event: &Value) -> Option<Requester> {
    let v = event.get("detail")?.get(REQUESTER_FIELD)?;
    serde_json::from_value(v.clone()).ok()
}

impl Requester {
    /// A short record of the requester (at most 256 characters, SageMaker's limit on a metadata
    /// value): `account=<account>;event=<id>;rule=<rule name>`.
    pub fn record(&self) -> String {
        let rule = self.control_rule.rsplit('/').next().unwrap_or_default();
        let mut s = format!(
            "account={};event={};rule={rule}",
            self.account, self.event_id
        );
        if let Some((i, _)) = s.char_indices().nth(256) {
            s.truncate(i);
        }
        s
    }
}

fn untrusted(event: &Value, bus: &str, reason: &str) -> GateError {
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("(no detail-type)")
        .to_owned();
    tracing::warn!(detail_type, bus, reason, "refused control request");
    GateError::Untrusted {
        detail_type,
        bus: bus.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULE: &str =
        "arn:aws:events:us-east-1:123456789012:rule/loop-control/loop-RetrainRequestRule-1";

    fn request() -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": "Retrain Requested", "source": "driftloop",
            "account": "123456789012", "time": "2024-05-01T12:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {"reason": "x", "requestedBy": "ops@example.com",
                       "verifiedRequester": {"account": "1", "eventId": "forged", "controlRule": "x"}}
        })
    }

    fn gate() -> Gate {
        Gate {
            bus: Some("loop-control".into()),
        }
    }

    #[test]
    fn rule_arns_name_their_bus() {
        assert_eq!(rule_bus(RULE), Some("loop-control"));
        assert_eq!(
            rule_bus("arn:aws:events:us-east-1:123456789012:rule/plain"),
            Some("default")
        );
        assert_eq!(rule_bus("arn:aws:sqs:us-east-1:1:rule/x/y"), None);
        assert_eq!(rule_bus("arn:aws:events:us-east-1:1:rule/"), None);
        assert_eq!(rule_bus("arn:aws:events:us-east-1:1:rule/a/b/c"), None);
        assert_eq!(rule_bus("not an arn"), None);
    }

    #[test]
    fn a_delivery_from_the_control_bus_is_unwrapped_with_the_verified_requester() {
        let got = gate()
            .admit(json!({"controlRule": RULE, "event": request()}))
            .unwrap();
        assert_eq!(got["detail-type"], "Retrain Requested");
        assert_eq!(got["detail"]["reason"], "x");
        let want = Requester {
            account: "123456789012".into(),
            event_id: "e-1".into(),
            control_rule: RULE.into(),
        };
        assert_eq!(verified_requester(&got), Some(want.clone()));
        // The sender's claim is kept as its own field; the verified record replaces a forged one.
        assert_eq!(got["detail"]["requestedBy"], "ops@example.com");
        assert_eq!(
            want.record(),
            "account=123456789012;event=e-1;rule=loop-RetrainRequestRule-1"
        );
    }

    #[test]
    fn requests_any_other_way_are_refused() {
        // A raw request (a rule on another bus, a direct invocation).
        let err = gate().admit(request()).unwrap_err();
        assert_eq!(err.error_type(), "Permanent.UntrustedRequest");
        assert!(err.to_string().contains("not delivered by a rule"), "{err}");
        // A wrapper naming another bus, or a default-bus rule.
        for rule in [
            "arn:aws:events:us-east-1:123456789012:rule/other/r",
            "arn:aws:events:us-east-1:123456789012:rule/loop-control",
            "",
        ] {
            let err = gate()
                .admit(json!({"controlRule": rule, "event": request()}))
                .unwrap_err();
            assert!(
                err.to_string().contains("not a rule of the control bus"),
                "{err}"
            );
        }
        // The control bus delivers requests only.
        let mut other = request();
        other["detail-type"] = json!("Model Deployed");
        assert!(
            gate()
                .admit(json!({"controlRule": RULE, "event": other}))
                .is_err()
        );
    }

    #[test]
    fn other_events_pass_and_no_bus_means_no_gate() {
        let alarm = json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {}});
        assert_eq!(gate().admit(alarm.clone()).unwrap(), alarm);
        let direct = json!({"modelPackageGroupName": "g"});
        assert_eq!(gate().admit(direct.clone()).unwrap(), direct);
        // Without a control bus a request is taken as it comes, minus any claim to be verified.
        let admitted = Gate::default().admit(request()).unwrap();
        assert_eq!(admitted["detail"]["reason"], "x");
        assert_eq!(verified_requester(&admitted), None);
        assert_eq!(verified_requester(&request()).unwrap().event_id, "forged");
    }

    #[test]
    fn the_bus_comes_from_the_environment() {
        assert_eq!(Gate::from_env(&[("X", "")]).unwrap(), Gate::default());
        assert_eq!(
            Gate::from_env(&[(CONTROL_BUS_NAME, "loop-control")]).unwrap(),
            gate()
        );
        let err = Gate::from_env(&[(CONTROL_BUS_NAME, "a/b")]).unwrap_err();
        assert_eq!(err.var(), CONTROL_BUS_NAME);
    }

    #[test]
    fn the_envelope_is_json_once_filled_in() {
        let filled = envelope()
            .replace("<aws.events.rule-arn>", RULE)
            .replace("<aws.events.event.json>", &request().to_string());
        let v: Value = serde_json::from_str(&filled).unwrap();
        assert_eq!(gate().admit(v).unwrap()["detail"]["reason"], "x");
    }
}
