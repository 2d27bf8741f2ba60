//! The one loop-managed dashboard of every model (`<stack name>-driftloop-models`), written by
//! deploy-on-approval's reconcile when its body changes.
//!
//! One dashboard, not one per model: it is where models are compared (which one drifts, which was
//! retrained or deployed when), one `GetDashboard`/`PutDashboard` pair keeps it, IAM names one
//! dashboard, and a model leaving the catalogue leaves no dashboard behind — it only drops out of
//! the body. Per model, in catalogue order:
//! - one graph per loop-managed alarm (`servedPackage`): the alarm's metric with its threshold line
//!   (an alarm annotation, so the line follows the threshold without a rewrite);
//! - one graph of its marks: `RetrainingStarted` of its pipeline (retrain-on-alarm, dimension
//!   `Pipeline`) and `ModelDeployed` of each stage (deploy-on-approval, dimensions
//!   `ModelPackageGroup`, `Stage`), both in the loop metrics namespace.
//!
//! CloudWatch allows 500 widgets per dashboard; models beyond that (or beyond [`MAX_BODY_BYTES`])
//! are left off, and a text widget says how many and which.
//!
//! Pure (no SDK).

use serde_json::{Value, json};

use super::alarms::{period_seconds, templates};
use super::model::Catalogue;

/// CloudWatch's widgets per dashboard.
pub const MAX_WIDGETS: usize = 500;
/// The body budget kept: well below what one `PutDashboard` request carries.
pub const MAX_BODY_BYTES: usize = 900 * 1024;
pub const DEPLOYED_METRIC: &str = "ModelDeployed";
pub const GROUP_DIMENSION: &str = "ModelPackageGroup";
pub const STAGE_DIMENSION: &str = "Stage";
/// retrain-on-alarm's count (`retrain::report::STARTED_METRIC`, dimension `Pipeline`).
pub const RETRAINING_STARTED_METRIC: &str = "RetrainingStarted";
pub const PIPELINE_DIMENSION: &str = "Pipeline";

/// Where the dashboard's metrics and alarms live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSettings {
    /// `<stack name>-driftloop-models`.
    pub name: String,
    pub region: String,
    /// `arn:<partition>:cloudwatch:<region>:<account>:alarm:`.
    pub alarm_arn_prefix: String,
    /// The loop metrics namespace (`LoopMetricsNamespace`).
    pub loop_namespace: String,
}

/// A dashboard body and what was left off.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub body: Value,
    pub widgets: usize,
    pub models_shown: usize,
    /// Groups left off by the limits.
    pub left_off: Vec<String>,
}

fn pipeline_name(p: &str) -> &str {
    p.rsplit_once(":pipeline/").map_or(p, |(_, name)| name)
}

/// The widgets of one model.
fn model_widgets(m: &super::Model, s: &DashboardSettings) -> Vec<Value> {
    let period = period_seconds(m);
    let alarms = templates(m);
    let mut widgets = Vec::new();
    let alarm_width = if alarms.len() > 1 { 8 } else { 16 };
    for a in &alarms {
        widgets.push(json!({
            "type": "metric", "width": alarm_width, "height": 6,
            "properties": {
                "title": format!("{} - {} on {} ({}) vs its threshold", m.group, a.metric, a.stage, a.endpoint),
                "region": s.region, "view": "timeSeries", "stacked": false, "period": period,
                "annotations": {"alarms": [format!("{}{}", s.alarm_arn_prefix, a.name)]}
            }
        }));
    }
    let mut marks = Vec::new();
    if let Some(r) = &m.retraining {
        marks.push(json!([s.loop_namespace, RETRAINING_STARTED_METRIC, PIPELINE_DIMENSION, pipeline_name(&r.pipeline),
            {"stat": "Sum", "label": "retraining started"}]));
    }
    for (stage, _) in m.stages.iter() {
        marks.push(json!([s.loop_namespace, DEPLOYED_METRIC, GROUP_DIMENSION, m.group, STAGE_DIMENSION, stage.as_str(),
            {"stat": "Sum", "label": format!("deployed to {}", stage.as_str())}]));
    }
    let used: u64 = alarms.iter().map(|_| alarm_width).sum();
    let width = if used == 0 || used >= 24 {
        24
    } else {
        24 - used
    };
    widgets.push(json!({
        "type": "metric", "width": width, "height": 6,
        "properties": {
            "title": format!("{} - retraining started and deployments", m.group),
            "region": s.region, "view": "timeSeries", "stacked": false, "period": period,
            "metrics": marks,
            "yAxis": {"left": {"min": 0, "label": "count"}}
        }
    }));
    widgets
}

fn header(catalogue: &str, s: &DashboardSettings) -> Value {
    json!({"type": "text", "width": 24, "height": 2, "properties": {"markdown": format!(
        "## driftloop - every model of the catalogue\nWritten by deploy-on-approval from `{catalogue}` (on each catalogue upload and daily); edits here are overwritten - change the catalogue. Loop marks in namespace `{}`.",
        s.loop_namespace)}})
}

fn overflow(left_off: &[String], total: usize) -> Value {
    let mut names = left_off
        .iter()
        .take(40)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if left_off.len() > 40 {
        names.push_str(", ...");
    }
    json!({"type": "text", "width": 24, "height": 2, "properties": {"markdown": format!(
        "**{} of {total} models are not shown**: a CloudWatch dashboard holds at most {MAX_WIDGETS} widgets (and this one stays under {} KB). Not shown: {names}",
        left_off.len(), MAX_BODY_BYTES / 1024)}})
}

/// The dashboard of every model of `catalogue` (read from `location`).
pub fn body(catalogue: &Catalogue, location: &str, s: &DashboardSettings) -> Body {
    let mut widgets = vec![header(location, s)];
    let mut size = widgets[0].to_string().len() + 64;
    let mut left_off = Vec::new();
    let mut shown = 0;
    // Room for the overflow notice, should one be needed.
    let reserve_widgets = 1;
    let reserve_bytes = 8 * 1024;
    for m in &catalogue.models {
        let w = model_widgets(m, s);
        let bytes: usize = w.iter().map(|v| v.to_string().len() + 1).sum();
        let fits = left_off.is_empty()
            && widgets.len() + w.len() + reserve_widgets <= MAX_WIDGETS
            && size + bytes + reserve_bytes <= MAX_BODY_BYTES;
        if fits {
            size += bytes;
            widgets.extend(w);
            shown += 1;
        } else {
            left_off.push(m.group.clone());
        }
    }
    if !left_off.is_empty() {
        widgets.push(overflow(&left_off, catalogue.models.len()));
    }
    Body {
        widgets: widgets.len(),
        body: json!({"widgets": widgets}),
        models_shown: shown,
        left_off,
    }
}
