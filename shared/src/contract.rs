//! The loop's own events: the source `driftloop` and every detail type the functions publish or
//! accept from the loop (and its operators), so a rule, a subscriber or a test has one place to
//! look.
//!
//! | detail type | published by | accepted by | detail |
//! |---|---|---|---|
//! | `Model Monitoring Requested` | operators, backfills | custom-metrics | an explicit window |
//! | `Model Monitoring Completed` | custom-metrics | (subscribers) | the window report |
//! | `Model Monitoring Violations` | custom-metrics | (subscribers) | the window report |
//! | `Retrain Requested` | operators | retrain-on-alarm | [`crate::retrain::RetrainRequest`] |
//! | `Retraining Started` | retrain-on-alarm | (subscribers) | [`crate::retrain::report::Report`] |
//! | `Retraining Skipped` | retrain-on-alarm | (subscribers) | [`crate::retrain::report::Report`] |
//! | `Model Promotion Requested` | operators | deploy-on-approval | the package and stage |
//! | `Model Deployed` | deploy-on-approval | (subscribers) | the stage outcome |
//! | `Model Deployment Skipped` | deploy-on-approval | (subscribers) | the stage outcome |
//! | `Deployment Failed` | deploy-on-approval | (subscribers) | [`crate::deploy::record::DeploymentFailure`] |
//! | `Deployment Rolled Back` | deploy-on-approval | (subscribers) | [`crate::deploy::record::DeploymentFailure`] |
//!
//! A published detail is a `Serialize` struct that implements [`Detail`] (which says its detail
//! type); [`event`] makes the [`OutgoingEvent`]. The structs live with their use case, so this
//! module depends on nothing but the publishing port.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::publish::OutgoingEvent;

/// The `source` of every event the loop publishes.
pub const SOURCE: &str = "driftloop";

/// Every `detail-type` of the loop's own events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DetailType {
    #[serde(rename = "Model Monitoring Requested")]
    MonitoringRequested,
    #[serde(rename = "Model Monitoring Completed")]
    MonitoringCompleted,
    #[serde(rename = "Model Monitoring Violations")]
    MonitoringViolations,
    #[serde(rename = "Retrain Requested")]
    RetrainRequested,
    #[serde(rename = "Retraining Started")]
    RetrainingStarted,
    #[serde(rename = "Retraining Skipped")]
    RetrainingSkipped,
    #[serde(rename = "Model Promotion Requested")]
    PromotionRequested,
    #[serde(rename = "Model Deployed")]
    ModelDeployed,
    #[serde(rename = "Model Deployment Skipped")]
    DeploymentSkipped,
    #[serde(rename = "Deployment Failed")]
    DeploymentFailed,
    #[serde(rename = "Deployment Rolled Back")]
    DeploymentRolledBack,
}

impl DetailType {
    pub const ALL: [DetailType; 11] = [
        DetailType::MonitoringRequested,
        DetailType::MonitoringCompleted,
        DetailType::MonitoringViolations,
        DetailType::RetrainRequested,
        DetailType::RetrainingStarted,
        DetailType::RetrainingSkipped,
        DetailType::PromotionRequested,
        DetailType::ModelDeployed,
        DetailType::DeploymentSkipped,
        DetailType::DeploymentFailed,
        DetailType::DeploymentRolledBack,
    ];

    /// The `detail-type` string (usable in `const` items and match patterns through a `const`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DetailType::MonitoringRequested => "Model Monitoring Requested",
            DetailType::MonitoringCompleted => "Model Monitoring Completed",
            DetailType::MonitoringViolations => "Model Monitoring Violations",
            DetailType::RetrainRequested => "Retrain Requested",
            DetailType::RetrainingStarted => "Retraining Started",
            DetailType::RetrainingSkipped => "Retraining Skipped",
            DetailType::PromotionRequested => "Model Promotion Requested",
            DetailType::ModelDeployed => "Model Deployed",
            DetailType::DeploymentSkipped => "Model Deployment Skipped",
            DetailType::DeploymentFailed => "Deployment Failed",
            DetailType::DeploymentRolledBack => "Deployment Rolled Back",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The function (its binary's name) that publishes this detail type; `None` for the requests,
    /// which operators put on the control bus. The template conditions each function's
    /// `events:PutEvents` on exactly the types this names for it (tests/template_bounds.rs).
    pub const fn publisher(self) -> Option<&'static str> {
        match self {
            DetailType::MonitoringRequested
            | DetailType::RetrainRequested
            | DetailType::PromotionRequested => None,
            DetailType::MonitoringCompleted | DetailType::MonitoringViolations => {
                Some("custom-metrics")
            }
            DetailType::RetrainingStarted | DetailType::RetrainingSkipped => {
                Some("retrain-on-alarm")
            }
            DetailType::ModelDeployed
            | DetailType::DeploymentSkipped
            | DetailType::DeploymentFailed
            | DetailType::DeploymentRolledBack => Some("deploy-on-approval"),
        }
    }

    /// True for the requests a function accepts (the others are outcomes the loop publishes).
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            DetailType::MonitoringRequested
                | DetailType::RetrainRequested
                | DetailType::PromotionRequested
        )
    }
}

impl fmt::Display for DetailType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `detail` of an event the loop publishes.
pub trait Detail: Serialize {
    fn detail_type(&self) -> DetailType;
}

/// The loop's event for `detail`: source [`SOURCE`], its detail type, the detail as JSON (should
/// serialising ever fail, `{"error": "..."}`, so the outcome is still announced).
pub fn event(detail: &impl Detail) -> OutgoingEvent {
    let json = serde_json::to_value(detail)
        .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
    event_with_json(detail.detail_type(), json)
}

/// The loop's event for a detail already in JSON.
pub fn event_with_json(detail_type: DetailType, detail: Value) -> OutgoingEvent {
    OutgoingEvent::new(SOURCE, detail_type.as_str(), detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detail_types_serialise_display_and_parse_as_todays_strings() {
        let strings = [
            "Model Monitoring Requested",
            "Model Monitoring Completed",
            "Model Monitoring Violations",
            "Retrain Requested",
            "Retraining Started",
            "Retraining Skipped",
            "Model Promotion Requested",
            "Model Deployed",
            "Model Deployment Skipped",
            "Deployment Failed",
            "Deployment Rolled Back",
        ];
        assert_eq!(DetailType::ALL.map(DetailType::as_str), strings);
        for d in DetailType::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), json!(d.as_str()));
            assert_eq!(
                serde_json::from_value::<DetailType>(json!(d.as_str())).unwrap(),
                d
            );
            assert_eq!(d.to_string(), d.as_str());
            assert_eq!(DetailType::parse(d.as_str()), Some(d));
        }
        assert_eq!(DetailType::parse("Retraining started"), None);
    }

    #[test]
    fn events_carry_the_source_and_the_details_type() {
        #[derive(Serialize)]
        struct Probe {
            n: u32,
        }
        impl Detail for Probe {
            fn detail_type(&self) -> DetailType {
                DetailType::ModelDeployed
            }
        }
        let e = event(&Probe { n: 1 });
        assert_eq!(
            (e.source.as_str(), e.detail_type.as_str(), &e.detail),
            ("driftloop", "Model Deployed", &json!({"n": 1}))
        );
        assert!(e.resources.is_empty() && e.time.is_none() && e.event_bus_name.is_none());
        let raw = event_with_json(DetailType::MonitoringCompleted, json!({"a": 1}));
        assert_eq!(raw.detail_type, "Model Monitoring Completed");
        assert_eq!(raw.source, SOURCE);
    }

    /// The stack routes the loop's requests to the functions; it must name request types only.
    /// (Rules on the loop's outcomes feed the notifications topic, not a function:
    /// tests/template_bounds.rs checks those against [`DetailType::publisher`].)
    #[test]
    fn the_stacks_driftloop_rules_route_known_request_types() {
        let stack: Value = serde_json::from_str(include_str!("../../infra/loop.json")).unwrap();
        let functions = stack["functions"].as_object().unwrap();
        let mut routed = Vec::new();
        for resource in stack["resources"].as_object().unwrap().values() {
            let pattern = &resource["Properties"]["EventPattern"];
            if pattern["source"] != json!([SOURCE]) {
                continue;
            }
            let targets = resource["Properties"]["Targets"].as_array().unwrap();
            let to_function = |t: &Value| {
                t["Arn"]["Fn::GetAtt"][0]
                    .as_str()
                    .is_some_and(|id| functions.contains_key(id))
            };
            if !targets.iter().any(to_function) {
                continue;
            }
            for dt in pattern["detail-type"].as_array().unwrap() {
                let d = DetailType::parse(dt.as_str().unwrap())
                    .unwrap_or_else(|| panic!("{dt} is not a DetailType"));
                assert!(d.is_request(), "{d} is routed but is not a request");
                routed.push(d);
            }
        }
        routed.sort_by_key(|d| d.as_str());
        assert_eq!(
            routed,
            [
                DetailType::MonitoringRequested,
                DetailType::PromotionRequested,
                DetailType::RetrainRequested
            ]
        );
    }
}
