//! What the loop will manage for each model of a catalogue, as an operator reads it before the
//! change takes effect (`driftloop-metrics catalogue validate FILE`).

use std::fmt::Write;

use super::model::*;

fn stage_line(stage: StageName, s: &StageSpec) -> String {
    let mut line = format!(
        "{:<10} {}  {} x{}",
        stage.as_str(),
        s.endpoint_name,
        s.instance_type,
        s.instance_count
    );
    match &s.deployment {
        None => line.push_str(", plain update"),
        Some(d) => {
            let _ = write!(line, ", blue/green {}", d.routing.as_str());
            if let Some(p) = d.percent {
                let _ = write!(line, " {p}%");
            }
            let _ = write!(
                line,
                " (wait {}s, termination wait {}s",
                d.wait_seconds, d.termination_wait_seconds
            );
            if let Some(t) = d.timeout_seconds {
                let _ = write!(line, ", timeout {t}s");
            }
            line.push(')');
        }
    }
    if !s.rollback_alarms.is_empty() {
        let _ = write!(line, ", rolls back on {}", s.rollback_alarms.join(", "));
    }
    match &s.autoscaling {
        None => line.push_str(", no autoscaling"),
        Some(a) => {
            let _ = write!(
                line,
                ", autoscaling {}-{} instances at {} invocations/instance/min (cooldowns in {}s, out {}s)",
                a.min_capacity,
                a.max_capacity,
                a.target_invocations,
                a.scale_in_cooldown_seconds,
                a.scale_out_cooldown_seconds
            );
        }
    }
    line
}

/// The report, one block per model.
pub fn render(c: &Catalogue) -> String {
    let mut out = String::new();
    let n = c.models.len();
    let _ = writeln!(
        out,
        "catalogue version {}: {n} model{}",
        c.version,
        if n == 1 { "" } else { "s" }
    );
    for m in &c.models {
        let _ = writeln!(out);
        let _ = writeln!(out, "model {} ({:?})", m.group, m.problem.problem_type);
        if let Some(role) = &m.execution_role_arn {
            let _ = writeln!(out, "  role: {role}");
        }
        let _ = writeln!(out, "  endpoints:");
        for (stage, s) in m.stages.iter() {
            let _ = writeln!(out, "    {}", stage_line(stage, s));
        }
        match &m.capture {
            None => {
                let _ = writeln!(out, "  capture: off");
            }
            Some(cap) => {
                let _ = writeln!(
                    out,
                    "  capture: {} ({}% sampled; csv {}; json {})",
                    cap.destination_s3_uri,
                    cap.sampling_percentage,
                    cap.csv_content_types.join(","),
                    cap.json_content_types.join(",")
                );
            }
        }
        match &m.monitoring {
            None => {
                let _ = writeln!(out, "  monitoring: none");
            }
            Some(mon) => {
                let delay = mon
                    .ground_truth_delay_minutes
                    .unwrap_or(mon.window_offset_minutes);
                let _ = writeln!(
                    out,
                    "  monitoring: schedule {}, {}-minute windows (offset {} min, labels read up to {} min late) from {}; data quality {}; baselines {}",
                    mon.schedule_name,
                    mon.window_minutes,
                    mon.window_offset_minutes,
                    delay,
                    mon.ground_truth_s3_uri,
                    mon.data_quality.as_str(),
                    m.baselines.policy.as_str()
                );
                for st in &mon.stages {
                    if let Some(s) = m.stages.get(*st) {
                        let _ = writeln!(
                            out,
                            "    monitored: {} {} (variant AllTraffic)",
                            st.as_str(),
                            s.endpoint_name
                        );
                    }
                }
            }
        }
        if m.alarms.is_empty() {
            let _ = writeln!(out, "  alarms: none");
        } else {
            let _ = writeln!(out, "  alarms:");
            for a in &m.alarms {
                let threshold = match a.threshold {
                    ThresholdSource::ServedPackage => {
                        "threshold from the served package's constraint"
                    }
                    ThresholdSource::External => "threshold set outside the loop",
                };
                let retrain = if a.retrain {
                    match &m.retraining {
                        Some(r) => format!("retrains with {}", r.pipeline),
                        None => "retrains (no pipeline)".to_owned(),
                    }
                } else {
                    "does not retrain".to_owned()
                };
                let _ = writeln!(
                    out,
                    "    {}: {} on {}, {threshold}, {retrain}",
                    a.name,
                    a.metric,
                    a.stage.as_str()
                );
            }
        }
        match &m.retraining {
            None => {
                let _ = writeln!(out, "  retraining: none");
            }
            Some(r) => {
                let _ = writeln!(
                    out,
                    "  retraining: pipeline {}, cooldown {}",
                    r.pipeline,
                    r.cooldown.as_deref().unwrap_or("the function's COOLDOWN")
                );
                if !r.parameters.is_empty() {
                    let p: Vec<String> = r
                        .parameters
                        .iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => format!("{k}={s}"),
                            other => format!("{k}={other}"),
                        })
                        .collect();
                    let _ = writeln!(out, "    parameters: {}", p.join(", "));
                }
                if !r.context_parameters.is_empty() {
                    let p: Vec<String> = r
                        .context_parameters
                        .iter()
                        .map(|(k, v)| format!("{} -> {v}", k.as_str()))
                        .collect();
                    let _ = writeln!(out, "    trigger facts: {}", p.join(", "));
                }
                if !r.schedule_rules.is_empty() {
                    let _ = writeln!(out, "    schedule rules: {}", r.schedule_rules.join(", "));
                }
            }
        }
    }
    out
}
