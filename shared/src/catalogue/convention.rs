//! The naming convention that keeps least privilege with many models: the stack's IAM grants
//! name prefixes, and every name a catalogue entry gives must fall under them.
//!
//! - **SageMaker names** — the group, both stages' endpoints (so also the models `<group>-v<n>`
//!   and endpoint configs `<endpoint>-...` deploy-on-approval derives from them), the retraining
//!   pipeline, and a model's own `executionRoleArn` (the role's name) — start with the
//!   `name_prefix` (stack parameter `CatalogueNamePrefix`, default `<stack name>-`; functions:
//!   `CATALOGUE_NAME_PREFIX`). SageMaker names allow letters, digits and hyphens only, so the
//!   prefix is lower case (SageMaker ARNs are, and IAM compares ARNs as written).
//! - **Alarm names** start with the `alarm_prefix`, the stack's existing alarm convention
//!   `<stack name>.<AlarmNamePrefix>` (`CATALOGUE_ALARM_PREFIX`): the stack name and a dot, which
//!   no stack name contains, so no other stack's alarm matches, and `RetrainOnAlarmRule` and the
//!   retraining recheck already take exactly these alarms.
//! - **S3 data paths** (`capture.destinationS3Uri`, `monitoring.groundTruthS3Uri`,
//!   `monitoring.reportS3Uri`) lie under `data_s3_uri`, `s3://<data bucket>/<name prefix>`
//!   (`CATALOGUE_DATA_S3_URI`) — e.g. `s3://<data bucket>/<group>/capture`.
//!
//! Why names rather than resource tags: SageMaker evaluates `aws:ResourceTag` on the resource the
//! request names, but a model package does not carry its group's tags, `ListModelPackages` and
//! `Create*` have nothing to read tags from (they would need `aws:RequestTag` plus `AddTags` on
//! every call), and an S3 object or a CloudWatch metric has no such tag at all; a name is checked
//! here, before anything is deployed, with the same rule the IAM policy applies.
//!
//! Pure (no SDK): the CLI checks a catalogue against a convention with
//! `driftloop-metrics catalogue validate --name-prefix ... --alarm-prefix ... --data-s3-uri ...`.

use super::model::Catalogue;
use super::validate::FieldError;

/// The prefixes the stack's IAM grants; `None` for a part not enforced (a local check without it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Convention {
    pub name_prefix: Option<String>,
    pub alarm_prefix: Option<String>,
    pub data_s3_uri: Option<String>,
}

impl Convention {
    pub fn is_empty(&self) -> bool {
        self.name_prefix.is_none() && self.alarm_prefix.is_none() && self.data_s3_uri.is_none()
    }

    /// The name prefix itself must be one IAM can match against a SageMaker ARN.
    pub fn check_name_prefix(prefix: &str) -> Result<(), String> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 40
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && prefix.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{prefix:?} is not a catalogue name prefix: 1-40 lower-case letters, digits and hyphens, starting with a letter or digit (SageMaker ARNs are lower case and IAM compares them as written; a stack name with capitals needs CatalogueNamePrefix set)"
            ))
        }
    }
}

fn label(index: usize, group: &str) -> String {
    format!("models[{index}] (group {group:?})")
}

/// The pipeline's name in a name-or-ARN field.
fn pipeline_name(p: &str) -> &str {
    p.rsplit_once(":pipeline/").map_or(p, |(_, name)| name)
}

/// Every name of the catalogue outside the convention, each naming the model and the field.
pub fn check(catalogue: &Catalogue, convention: &Convention) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, m) in catalogue.models.iter().enumerate() {
        let mut err = |path: String, message: String| {
            errors.push(FieldError {
                model: label(i, &m.group),
                path,
                message,
            })
        };
        if let Some(p) = &convention.name_prefix {
            let mut name = |path: String, value: &str, what: &str| {
                if !value.to_ascii_lowercase().starts_with(p.as_str()) {
                    err(
                        path,
                        format!(
                            "{value:?} does not start with {p:?}: the stack grants {what} only under its catalogue name prefix (CatalogueNamePrefix)"
                        ),
                    );
                }
            };
            name("group".into(), &m.group, "model package groups");
            for (stage, s) in m.stages.iter() {
                name(
                    format!("stages.{}.endpointName", stage.as_str()),
                    &s.endpoint_name,
                    "endpoints",
                );
            }
            if let Some(r) = &m.retraining {
                name(
                    "retraining.pipeline".into(),
                    pipeline_name(&r.pipeline),
                    "pipelines",
                );
            }
            if let Some(role) = &m.execution_role_arn {
                let role_name = role.rsplit('/').next().unwrap_or_default();
                name(
                    "executionRoleArn".into(),
                    role_name,
                    "iam:PassRole on roles",
                );
            }
        }
        if let Some(a) = &convention.alarm_prefix {
            for (k, alarm) in m.alarms.iter().enumerate() {
                if !alarm.name.starts_with(a.as_str()) {
                    err(
                        format!("alarms[{k}].name"),
                        format!(
                            "{:?} does not start with {a:?}: the stack manages, and retrains on, alarms named <stack name>.<AlarmNamePrefix>... only",
                            alarm.name
                        ),
                    );
                }
            }
        }
        if let Some(d) = &convention.data_s3_uri {
            let mut uris: Vec<(&str, &str)> = Vec::new();
            if let Some(c) = &m.capture {
                uris.push(("capture.destinationS3Uri", &c.destination_s3_uri));
            }
            if let Some(mon) = &m.monitoring {
                uris.push(("monitoring.groundTruthS3Uri", &mon.ground_truth_s3_uri));
                if let Some(r) = &mon.report_s3_uri {
                    uris.push(("monitoring.reportS3Uri", r));
                }
            }
            for (path, uri) in uris {
                if !uri.starts_with(d.as_str()) {
                    err(
                        path.into(),
                        format!(
                            "{uri:?} is not under {d:?}: the stack grants the data bucket under its catalogue name prefix only (e.g. {d}{}/capture)",
                            m.group
                                .strip_prefix(convention.name_prefix.as_deref().unwrap_or(""))
                                .unwrap_or(&m.group)
                        ),
                    );
                }
            }
        }
    }
    errors
}
