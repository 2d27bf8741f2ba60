//! The scale-out mode end to end on the in-memory doubles: a window handed to the (recorded)
//! state machine, its slices computed by workers in any order, the reduce publishing exactly
//! what a single run over the same objects publishes.

use super::*;
use driftloop::doubles::RecordingExecutions;
use driftloop::storage::ObjectStore;

const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:scaleout";
const WINDOW: &str =
    r#"{"window": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"}}"#;

/// 60 capture objects of 9 records each in hour 09 and their labels in 12 objects (ids spread
/// so a label object holds labels of many capture objects), and a few unlabelled predictions
/// and labels without a prediction.
fn seed(store: &InMemoryStore) {
    let mut labels = vec![String::new(); 12];
    for f in 0..60 {
        let mut body = String::new();
        for r in 0..9 {
            let i = f * 9 + r;
            let id = format!("id-{i:05}");
            let score = (i % 10) as f64 / 10.0 + 0.05;
            let time = format!("2024-05-01T09:{:02}:{:02}Z", f, r);
            body.push_str(&cap(&id, &time, score, 20 + (i % 40) as u32));
            body.push('\n');
            if i % 17 != 0 {
                let right = u8::from(score > 0.5);
                labels[i % 12].push_str(&gt(&id, if i % 5 == 0 { 1 - right } else { right }));
                labels[i % 12].push('\n');
            }
        }
        store.insert(
            &format!("{CAPTURE}/churn/AllTraffic/2024/05/01/09/{f:02}-00-000-x.jsonl"),
            body,
        );
    }
    labels[3].push_str(&gt("no-such-prediction", 1));
    labels[3].push('\n');
    for (k, l) in labels.into_iter().enumerate() {
        store.insert(&format!("{GT}/2024/05/01/09/labels-{k:04}.jsonl"), l);
    }
}

fn scaled_world(extra: &[(&'static str, &str)]) -> (World, Arc<RecordingExecutions>) {
    let mut env = vec![("SCALE_OUT_STATE_MACHINE_ARN", ARN)];
    env.extend_from_slice(extra);
    let mut w = world_with(config(&env), "2024-05-01T12:00:00Z");
    let ex = Arc::new(RecordingExecutions::default());
    w.deps.executions = Some(ex.clone());
    (w, ex)
}

/// Runs the recorded execution as the state machine does: lists `slices/`, one worker per item
/// (in reverse order, to show the order does not matter), then the reduce.
async fn run_execution(w: &World, input: &str, execution: &str) -> Value {
    let input: Value = serde_json::from_str(input).unwrap();
    let prefix = S3Uri {
        bucket: input["slices"]["bucket"].as_str().unwrap().into(),
        key: input["slices"]["prefix"].as_str().unwrap().into(),
    };
    let mut items = w.store.list(&prefix).await.unwrap();
    assert_eq!(
        items.len() as u64,
        input["slices"]["count"].as_u64().unwrap()
    );
    items.reverse();
    for o in items {
        let out = handle_any(
            json!({"scaleOut": {"mode": "worker", "plan": input["plan"], "execution": execution,
                   "item": {"Key": o.uri.key, "Size": o.size, "ETag": "\"x\""}}}),
            &w.deps,
        )
        .await
        .unwrap();
        let partial = out["partials"][0].as_str().unwrap();
        assert!(
            partial.contains(&format!("/partials/{execution}/")),
            "{partial}"
        );
        assert!(serde_json::to_vec(&out).unwrap().len() < 1024, "{out}");
    }
    handle_any(
        json!({"scaleOut": {"mode": "reduce", "plan": input["plan"], "execution": execution}}),
        &w.deps,
    )
    .await
    .unwrap()
}

fn without_times(mut v: Value) -> Value {
    for k in ["evaluatedAt", "eventId"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v["cloudwatch"]["final"]["publishedAt"] = Value::Null;
    v
}

#[tokio::test]
async fn a_scaled_out_window_publishes_what_a_single_run_publishes() {
    let dir = report_dir("20240501T0900Z-20240501T1000Z", "2024/05/01/09");
    let single = world(&[]);
    seed(&single.store);
    let one = handle(serde_json::from_str(WINDOW).unwrap(), &single.deps)
        .await
        .unwrap();
    assert_eq!(one.windows[0].status, "Completed");

    // 300 bytes per slice: both capture and label objects are split over the workers.
    let (w, ex) = scaled_world(&[
        ("SCALE_OUT_BYTES", "1"),
        ("SCALE_OUT_SLICE_BYTES", "1048576"),
    ]);
    seed(&w.store);
    let mut request: Value = serde_json::from_str(WINDOW).unwrap();
    request["scaleOut"] = json!(true);
    // Forced: SCALE_OUT_SLICE_BYTES's minimum (1 MiB) would hold the whole window in one slice,
    // so cut it finer through the plan directly.
    let mut w = w;
    w.deps.config.scale_out.slice_bytes = 3000;
    let out = handle(request, &w.deps).await.unwrap();
    let o = &out.windows[0];
    assert_eq!(o.status, "ScaledOut", "{o:?}");
    assert_eq!(
        o.run_id, one.windows[0].run_id,
        "the same inputs, the same run"
    );
    assert!(w.events.events().is_empty() && w.metrics.datums().is_empty());
    assert!(
        w.store.text(&format!("{dir}/summary.json")).is_none(),
        "nothing published yet"
    );
    let [started] = ex.started().try_into().unwrap();
    assert_eq!(
        o.execution_arn.as_deref().unwrap(),
        driftloop::monitoring::scaleout::execution_arn(ARN, &started.name)
    );
    let input: Value = serde_json::from_str(&started.input).unwrap();
    let slices = input["slices"]["count"].as_u64().unwrap();
    assert!(slices >= 10, "{slices} slices");
    let plan = json_at(&w.store, input["plan"].as_str().unwrap());
    assert_eq!(plan["slices"], slices);

    let reduced = run_execution(&w, &started.input, "exec-1").await;
    assert_eq!(reduced["status"], "Completed", "{reduced}");
    assert_eq!(reduced["runId"], json!(one.windows[0].run_id));

    for f in ["statistics.json", "constraint_violations.json"] {
        let (mut a, mut b) = (
            json_at(&single.store, &format!("{dir}/{f}")),
            json_at(&w.store, &format!("{dir}/{f}")),
        );
        for v in [&mut a, &mut b] {
            if let Some(m) = v.as_object_mut() {
                m.remove("evaluation_time");
            }
            if let Some(m) = v["dataset"].as_object_mut() {
                m.remove("evaluation_time");
            }
        }
        assert_eq!(a, b, "{f}");
    }
    let (a, b) = (
        without_times(json_at(&single.store, &format!("{dir}/summary.json"))),
        without_times(json_at(&w.store, &format!("{dir}/summary.json"))),
    );
    assert_eq!(a["counts"], b["counts"]);
    assert!(
        a["counts"]["records_unmatched_predictions"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(a["counts"]["records_unmatched_labels"], 1);
    assert_eq!(a, b, "summary.json");
    let values = |x: &World| {
        x.metrics
            .datums()
            .into_iter()
            .map(|(ns, d)| (ns, d.name, d.value.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&single), values(&w), "CloudWatch datums");
    let detail = |x: &World| {
        x.events
            .events()
            .into_iter()
            .map(|e| e.detail)
            .collect::<Vec<_>>()
    };
    assert_eq!(detail(&single), detail(&w), "the event");

    // A re-run (a second execution, or the same one again) publishes nothing twice.
    let again = run_execution(&w, &started.input, "exec-2").await;
    assert_eq!(again["metricsPublished"], 0, "{again}");
    assert_eq!(values(&single), values(&w));
    // The same window scheduled again: the same execution name, already started.
    let mut request: Value = serde_json::from_str(WINDOW).unwrap();
    request["scaleOut"] = json!(true);
    let out = handle(request, &w.deps).await.unwrap();
    assert_eq!(out.windows[0].status, "ScaledOut");
    assert_eq!(ex.started().len(), 1);
}

#[tokio::test]
async fn the_threshold_decides_and_a_missing_partial_fails_the_reduce() {
    // Below the threshold: computed here.
    let (w, ex) = scaled_world(&[("SCALE_OUT_BYTES", "100000000")]);
    seed(&w.store);
    let out = handle(serde_json::from_str(WINDOW).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows[0].status, "Completed");
    assert!(ex.started().is_empty());

    // Above it: scaled out; the reduce refuses to publish while a slice has no partial.
    let (mut w, ex) = scaled_world(&[("SCALE_OUT_BYTES", "1000")]);
    w.deps.config.scale_out.slice_bytes = 20_000;
    seed(&w.store);
    let out = handle(serde_json::from_str(WINDOW).unwrap(), &w.deps)
        .await
        .unwrap();
    assert_eq!(out.windows[0].status, "ScaledOut");
    let input: Value = serde_json::from_str(&ex.started()[0].input).unwrap();
    let err = handle_any(
        json!({"scaleOut": {"mode": "reduce", "plan": input["plan"], "execution": "e"}}),
        &w.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "Permanent.ScaleOut");
    assert!(err.to_string().contains("has no partial state"), "{err}");
    assert!(w.events.events().is_empty());

    // Bad steps are permanent errors, never panics.
    for bad in [
        json!({"scaleOut": {"mode": "worker", "plan": "s3://x"}}),
        json!({"scaleOut": {"mode": "dance"}}),
        json!({"scaleOut": {"mode": "worker", "plan": input["plan"], "execution": "e", "item": {"Key": "elsewhere/x.json"}}}),
    ] {
        let e = handle_any(bad.clone(), &w.deps).await.unwrap_err();
        assert!(e.error_type().starts_with("Permanent."), "{bad}: {e}");
    }
    // "scaleOut": true without the state machine is refused.
    let plain = world(&[]);
    let mut request: Value = serde_json::from_str(WINDOW).unwrap();
    request["scaleOut"] = json!(true);
    let e = handle(request, &plain.deps).await.unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ScaleOut");
}
