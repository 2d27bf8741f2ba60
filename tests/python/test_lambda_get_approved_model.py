"""get-approved-model as a user runs it: the binary under `cargo lambda watch`, invoked with the
`events/` sample through `cargo lambda invoke`, against the seeded emulator."""

import json
import subprocess
import sys

import pytest

from lambda_watch import REPO, Watch, emulator_env


@pytest.fixture(scope="module")
def env():
    return emulator_env()


def seed(env, group, approved, pending):
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts/seed_registry.py"), group, "--approved", str(approved), "--pending", str(pending)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def test_sample_event_returns_the_newest_approved_package(env):
    sample = REPO / "events/get-approved-model.json"
    group = json.loads(sample.read_text())["model_package_group_name"]
    seeded = seed(env, group, approved=3, pending=1)
    with Watch("get-approved-model", env) as w:
        rc, out, err = w.invoke("get-approved-model", data_file=sample)
        assert rc == 0, err
        result = json.loads(out)
        assert result["modelArn"] == seeded["latest_approved"]
        assert result["statusCode"] == 200
        assert result["s3uriStatistics"].endswith("/3/statistics.json")

        # The group from the environment when the event names none.
        rc, out, err = w.invoke("get-approved-model", data={})
        assert rc != 0
        assert "Permanent.MissingGroup" in out + err


def test_errors_carry_their_class(env):
    with Watch("get-approved-model", env, {"MODEL_PACKAGE_GROUP_NAME": "no-such-group-anywhere"}) as w:
        rc, out, err = w.invoke("get-approved-model", data={})
        assert rc != 0
        assert "Permanent.NoApprovedPackage" in out + err
        assert "no-such-group-anywhere" in out + err
        rc, out, err = w.invoke("get-approved-model", data={"model_package_group_name": 42})
        assert "Permanent.InvalidInput" in out + err


def test_lambda_step_sample_gets_every_declared_output_as_a_string(env):
    """The input AWS's batch-monitoring pipeline passes to its LambdaStep, and the five outputs it
    declares (all `LambdaOutputTypeEnum.String`): present, strings (statusCode: the sample's 200),
    never null — also for a package registered without baselines or a ModelName."""
    sample = REPO / "events/get-approved-model-lambda-step.json"
    event = json.loads(sample.read_text())
    seeded = seed(env, event["model_package_group_name"], approved=2, pending=0)
    with Watch("get-approved-model", env) as w:
        rc, out, err = w.invoke("get-approved-model", data_file=sample)
        assert rc == 0, err
        result = json.loads(out)
        assert result["statusCode"] == 200
        for key in ("modelArn", "s3uriConstraints", "s3uriStatistics", "modelName"):
            assert isinstance(result[key], str), (key, result)
        assert result["modelArn"] == seeded["latest_approved"]
        assert result["s3uriStatistics"].startswith("s3://")
        assert result["baselineSource"] == "DriftCheckBaselines"
