"""The short version of the README's demo, end to end: two models from one stack (the model
catalogue); for the first, drift → alarm → retrain → approve → deploy → recovery, then an unlabelled
window whose estimated_accuracy alarm retrains before any label lands; the second stays healthy,
monitored every hour, never retrained or redeployed; every event through the template's EventBridge
rules to the real function binaries."""

import json
import os
import subprocess

from lambda_watch import REPO


def test_short_story_closes_the_loop(tmp_path):
    env = dict(os.environ)
    # The demo starts its own private emulator; don't hand it the test run's.
    for k in ("AWS_ENDPOINT_URL", "DRIFTLOOP_STATE"):
        env.pop(k, None)
    p = subprocess.run(["bash", str(REPO / "scripts/demo"), "--short", "--out", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    assert "the loop closed" in p.stdout

    timeline = json.loads((tmp_path / "timeline.json").read_text())
    messages = [e["message"] for e in timeline]
    # exactly one pipeline execution per alarm although each alarm event was delivered twice
    assert any("1 execution(s) of" in m and "after 2 deliveries" in m for m in messages), messages
    assert any("2 execution(s) of" in m and "after 2 deliveries of the estimated_accuracy alarm, 1 started by it" in m
               for m in messages), messages
    assert sum("→ retrain-on-alarm: Started" in m for m in messages) == 2, messages
    assert sum("→ retrain-on-alarm: Skipped (AlreadyStarted)" in m for m in messages) == 2, messages
    # the label uploads reached custom-metrics through the template's ground-truth rule
    assert any("Object Created → custom-metrics" in m for m in messages), messages
    # the accuracy alarm fired, then recovered once v2 served (and stayed OK while labels were late)
    alarm = [m for e, m in zip(timeline, messages) if e["kind"] == "alarm" and "(accuracy =" in m]
    assert any("→ ALARM" in m for m in alarm) and alarm[-1].split("(")[0].strip().endswith("OK"), alarm
    # the estimate's alarm: OK through the labelled story (it cannot see the concept drift), ALARM
    # in the hour without labels; the calibrations came from driftloop-metrics calibrate
    estimate = [m for e, m in zip(timeline, messages) if e["kind"] == "alarm" and "(estimated_accuracy =" in m]
    assert [m.split("(")[0].strip() for m in estimate] == ["INSUFFICIENT_DATA → OK", "OK → ALARM"], estimate
    assert sum("reference calibration" in m and "driftloop-metrics calibrate" in m for m in messages) == 2, messages
    assert any("their labels have not landed" in m for m in messages), messages
    assert any("staging: updated v2" in m for m in messages)
    # latencies were measured, cold ones marked
    assert any(e["cold"] for e in timeline if e["latency_ms"] is not None)

    # the second model: deployed once, every scheduled run monitored both endpoints, its label
    # uploads routed to it by their prefix, its pipeline never started
    assert sum("driftloop-demo-prices staging: created v1" in m for m in messages) == 1, messages
    assert not any("driftloop-demo-prices staging: updated" in m for m in messages), messages
    scheduled = [m for m in messages if m.startswith("Scheduled Event → custom-metrics:")]
    assert len(scheduled) == 7 and all("churn " in m and "; prices " in m and "prices" in m.split(";")[1] for m in scheduled), scheduled
    assert all("rmse" in m.split(";")[1] and "Completed" in m.split(";")[1] for m in scheduled), scheduled
    assert sum("Object Created → custom-metrics: prices " in m for m in messages) == 7, messages
    assert any("driftloop-demo-prices-build: 0 executions" in m and "7 of 7 windows monitored" in m for m in messages), messages
    assert not any("→ ALARM" in m and "driftloop-demo-prices" in m for e, m in zip(timeline, messages) if e["kind"] == "alarm"), messages
    catalogue = json.loads((tmp_path / "catalogue.json").read_text())
    assert [m["group"] for m in catalogue["models"]] == ["driftloop-demo", "driftloop-demo-prices"]

    svg = (tmp_path / "dashboard.svg").read_text()
    assert svg.startswith("<svg") and "<path d=\"M" in svg and "threshold 0.7" in svg and "retrain started" in svg
    assert "estimated_accuracy" in svg and "estimate alarm → retrain started" in svg
    # one panel per model
    assert "driftloop-demo-staging · group driftloop-demo (BinaryClassification)" in svg
    assert "driftloop-demo-prices-staging · group driftloop-demo-prices (Regression)" in svg
    assert "threshold 1.0" in svg and "7 of 7 windows monitored" in svg
