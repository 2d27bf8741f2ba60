"""scripts/stamp-events: copies of the `events/` samples moved to the present keep everything the
samples mean (offsets between their times, formats, windows on the hour, upload-hour folders), and
retrain-on-alarm under its default configuration (MAX_TRIGGER_AGE 24h) refuses the shipped 2024
samples as Stale but takes the stamped copies — through the real binary under `cargo lambda watch`,
as `cargo lambda invoke <fn> --data-file out/events/<sample>.json` does."""

from __future__ import annotations

import datetime as dt
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import uuid

import boto3
import pytest

from lambda_watch import REPO, Watch, emulator_env

EVENTS = REPO / "events"
SCRIPT = REPO / "scripts" / "stamp-events"
NOW = dt.datetime(2026, 12, 2, 9, 17, 3, tzinfo=dt.timezone.utc)


def load_stamper():
    loader = importlib.machinery.SourceFileLoader("stamp_events", str(SCRIPT))
    spec = importlib.util.spec_from_loader("stamp_events", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


stamper = load_stamper()


@pytest.fixture(scope="module")
def stamped(tmp_path_factory):
    out = tmp_path_factory.mktemp("stamped")
    p = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--now", NOW.isoformat()],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


@pytest.mark.parametrize("sample", sorted(p.name for p in EVENTS.glob("*.json")))
def test_a_stamped_sample_is_the_sample_moved_by_whole_hours(stamped, sample):
    original = (EVENTS / sample).read_text()
    copy = (stamped / sample).read_text()
    json.loads(copy)
    before, after = stamper.times_in(original), stamper.times_in(copy)
    assert len(before) == len(after)
    if not before:
        assert copy == original
        return
    newest = max(after)
    assert NOW - dt.timedelta(hours=1) < newest <= NOW, (sample, newest)
    delta = after[0] - before[0]
    assert delta % dt.timedelta(hours=1) == dt.timedelta(0) and delta > dt.timedelta(0)
    # Every time moved by the same delta (so every offset between two of them is kept) ...
    assert [a - b for a, b in zip(after, before)] == [delta] * len(before)
    # ... and nothing else changed: moving back gives the sample byte for byte.
    assert stamper.shift_text(copy, -delta) == original


def test_upload_hour_folders_move_with_the_times(stamped):
    copy = json.loads((stamped / "custom-metrics-ground-truth-created.json").read_text())
    t = dt.datetime.fromisoformat(copy["time"].replace("Z", "+00:00"))
    assert copy["detail"]["object"]["key"] == f"ground-truth/churn/{t:%Y/%m/%d/%H}/labels-0001.jsonl"


def test_formats_are_kept():
    text = '{"time": 1714557641000, "a": "2024-05-01T10:00:40.985+0000", "b": "2024-05-01T12:00:41Z"}'
    out = stamper.shift_text(text, dt.timedelta(hours=3))
    assert out == '{"time": 1714568441000, "a": "2024-05-01T13:00:40.985+0000", "b": "2024-05-01T15:00:41Z"}'
    with pytest.raises(ValueError):
        stamper.shift_text(text, dt.timedelta(minutes=30))


# ------------------------------------------------------------------ through the function's binary
@pytest.fixture(scope="module")
def env():
    return emulator_env()


def skip_reason(out: dict) -> str:
    return json.dumps(out.get("skip"))


def test_stamped_samples_pass_retrain_freshness_with_the_default_config(env, tmp_path):
    out_dir = tmp_path / "events"
    p = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out_dir)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    sm = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    pipeline = f"driftloop-stamped-{uuid.uuid4().hex[:8]}"
    sm.create_pipeline(PipelineName=pipeline, RoleArn="arn:aws:iam::123456789012:role/sm",
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}))
    # The default configuration: only the pipeline is named (MAX_TRIGGER_AGE, COOLDOWN: defaults).
    with Watch("retrain-on-alarm", env, {"PIPELINE_NAME": pipeline}) as w:
        def invoke(path):
            rc, out, err = w.invoke("retrain-on-alarm", data_file=path)
            assert rc == 0, f"{path.name}: {out}\n{err}"
            return json.loads(out)

        shipped = invoke(EVENTS / "retrain-alarm-eventbridge.json")
        assert shipped["outcome"] == "Skipped" and "Stale" in skip_reason(shipped), shipped
        started = invoke(out_dir / "retrain-alarm-eventbridge.json")
        assert started["outcome"] == "Started", started
        for sample in ("retrain-alarm-eventbridge-math.json", "retrain-alarm-action.json", "retrain-schedule.json",
                       "retrain-alarm-eventbridge-ok.json"):
            out = invoke(out_dir / sample)
            # Skipped for a run in flight, the cooldown or not-ALARM: never for its age.
            assert "Stale" not in skip_reason(out), (sample, out)
    assert len(sm.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]) == 1
