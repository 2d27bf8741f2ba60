//! An alarm on custom-metrics' label-free `estimated_accuracy` (published before labels land, in
//! Model Monitor's model namespace and dimensions) retrains like any other alarm.

use super::*;

/// The sample drift alarm turned into a `LessThanThreshold` alarm on `estimated_accuracy`.
fn estimated_accuracy_alarm() -> Value {
    let mut e = ev(ALARM);
    let arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-estimated-accuracy";
    e["resources"] = json!([arn]);
    let d = &mut e["detail"];
    d["alarmName"] = json!("churn-estimated-accuracy");
    d["state"]["reason"] = json!(
        "Threshold Crossed: 1 out of the last 1 datapoints [0.62 (01/05/24 11:00:00)] was less than the threshold (0.75) (minimum 1 datapoint for OK -> ALARM transition)."
    );
    d["state"]["reasonData"] = json!(
        r#"{"version":"1.0","queryDate":"2024-05-01T12:00:40.985+0000","startDate":"2024-05-01T11:00:00.000+0000","statistic":"Average","period":3600,"recentDatapoints":[0.62],"threshold":0.75,"evaluatedDatapoints":[{"timestamp":"2024-05-01T11:00:00.000+0000","sampleCount":1.0,"value":0.62}]}"#
    );
    d["configuration"]["description"] =
        json!("Estimated accuracy of the churn endpoint (no labels yet) below 0.75");
    d["configuration"]["metrics"][0]["metricStat"] = json!({
        "metric": {
            "namespace": "aws/sagemaker/Endpoints/model-metrics",
            "name": "estimated_accuracy",
            "dimensions": {"Endpoint": "churn-prod", "MonitoringSchedule": "churn-model-quality"}
        },
        "period": 3600,
        "stat": "Average"
    });
    e
}

#[tokio::test]
async fn an_estimated_accuracy_alarm_starts_the_mapped_pipeline() {
    let w = world(VARS, at("2024-05-01T12:01:00Z"));
    let out = handle(estimated_accuracy_alarm(), &w.deps).await.unwrap();
    let r = &out.report;
    assert_eq!(r.outcome, OutcomeKind::Started);
    assert_eq!(r.pipeline_name.as_deref(), Some("churn-build"));
    let execs = w.pipelines.executions("churn-build");
    assert_eq!(execs.len(), 1);
    let params = &execs[0].request.parameters;
    assert_eq!(params["TriggerAlarm"], "churn-estimated-accuracy");
    assert_eq!(params["DriftMetric"], "estimated_accuracy");
    assert_eq!(params["DriftValue"], "0.62");
    let e = &w.events.events()[0];
    assert_eq!(e.detail_type, "Retraining Started");
    assert_eq!(e.detail["trigger"]["alarm"]["value"], 0.62);
    // The same transition redelivered starts nothing more.
    let again = handle(estimated_accuracy_alarm(), &w.deps).await.unwrap();
    assert_ne!(again.report.outcome, OutcomeKind::Started);
    assert_eq!(w.pipelines.executions("churn-build").len(), 1);
}

#[tokio::test]
async fn an_exact_route_maps_the_estimate_alarm_to_its_own_pipeline() {
    let vars = [
        (PIPELINE_VAR, "churn-build"),
        (ROUTES_VAR, "churn-estimated-accuracy=default-build"),
    ];
    let w = world(&vars, at("2024-05-01T12:01:00Z"));
    let out = handle(estimated_accuracy_alarm(), &w.deps).await.unwrap();
    assert_eq!(out.report.pipeline_name.as_deref(), Some("default-build"));
    assert_eq!(w.pipelines.executions("default-build").len(), 1);
    assert!(w.pipelines.executions("churn-build").is_empty());
}
