"""Label-free performance estimation (CBPE) through the CLI, checked against scikit-learn.

A logistic-regression model is fitted on generated data whose labels follow a logistic law, so
its scores are (nearly) calibrated; `driftloop-metrics calibrate` fits the reference calibration
on a labelled reference window, `driftloop-metrics run --calibration` estimates a drifted window
from its capture alone, and scikit-learn computes the realised metrics once the labels are used.

Tolerance (README "Performance before labels"): |estimate - realised| <= 3 * std + 0.01 for
accuracy and ROC AUC, std being the CLI's `estimated_<metric>_std`.

The CLI binary is $DRIFTLOOP_METRICS_BIN, else built as in test_metrics_reference.py.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
W = np.array([1.5, -1.0])
B = 0.3


@pytest.fixture(scope="session")
def cli():
    env_bin = os.environ.get("DRIFTLOOP_METRICS_BIN")
    if env_bin:
        return env_bin
    subprocess.run(
        ["cargo", "build", "-q", "-p", "driftloop", "--no-default-features", "--features", "cli",
         "--bin", "driftloop-metrics"],
        cwd=REPO, check=True)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO,
                                     check=True, capture_output=True, text=True).stdout)
    return str(Path(meta["target_directory"]) / "debug" / "driftloop-metrics")


def truth(x):
    return 1.0 / (1.0 + np.exp(-(x @ W + B)))


@pytest.fixture(scope="session")
def model():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20_000, 2))
    y = rng.random(20_000) < truth(x)
    return LogisticRegression().fit(x, y)


def sample(seed, n, mu, sd=1.0, p=truth):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=mu, scale=sd, size=(n, 2))
    y = (rng.random(n) < p(x)).astype(int)
    return x, y


def write_window(d, prefix, scores, labels):
    d.mkdir(parents=True, exist_ok=True)
    cap, gt = [], []
    for i, (s, y) in enumerate(zip(scores, labels)):
        eid = f"{prefix}-{i}"
        cap.append(json.dumps({"captureData": {"endpointOutput": {
            "observedContentType": "application/json", "mode": "OUTPUT",
            "data": json.dumps({"score": float(s)}), "encoding": "JSON"}},
            "eventMetadata": {"eventId": eid, "inferenceTime": "2024-01-01T00:10:00Z"}, "eventVersion": "0"}))
        gt.append(json.dumps({"groundTruthData": {"data": str(int(y)), "encoding": "CSV"},
                              "eventMetadata": {"eventId": eid}, "eventVersion": "0"}))
    (d / "capture.jsonl").write_text("\n".join(cap) + "\n")
    (d / "labels.jsonl").write_text("\n".join(gt) + "\n")
    return d / "capture.jsonl", d / "labels.jsonl"


def calibrate(cli, tmp, scores, labels, *extra):
    cap, gt = write_window(tmp / "ref", "ref", scores, labels)
    out = tmp / "cal"
    r = subprocess.run([cli, "calibrate", "--capture", str(cap), "--ground-truth", str(gt),
                        "--probability-attribute", "score", "--output", str(out), *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "calibration (binned isotonic" in r.stdout
    return out / "calibration.json"


def estimate(cli, tmp, name, cal, scores, labels):
    cap, _ = write_window(tmp / name, name, scores, labels)
    out = tmp / f"{name}-out"
    r = subprocess.run([cli, "run", "--capture", str(cap), "--calibration", str(cal), "--output", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "estimated_accuracy" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    m = {x["name"]: x["value"] for x in summary["metrics"]}
    doc = json.loads((out / "estimation.json").read_text())
    assert doc["records"] == len(scores)
    for k in ["estimated_accuracy", "estimated_precision", "estimated_recall", "estimated_f1", "estimated_auc"]:
        assert doc["metrics"][k]["value"] == pytest.approx(m[k], abs=1e-12)
        assert doc["metrics"][k]["standard_deviation"] == pytest.approx(m[k + "_std"], abs=1e-12)
    return m, doc


def realised(scores, labels):
    pred = scores > 0.5
    return {
        "estimated_accuracy": metrics.accuracy_score(labels, pred),
        "estimated_precision": metrics.precision_score(labels, pred, zero_division=0),
        "estimated_recall": metrics.recall_score(labels, pred, zero_division=0),
        "estimated_f1": metrics.f1_score(labels, pred, zero_division=0),
        "estimated_auc": metrics.roc_auc_score(labels, scores),
    }


def within(m, real, k):
    return abs(m[k] - real[k]) <= 3 * m[k + "_std"] + 0.01


@pytest.mark.parametrize("distort", ["calibrated", "cubed"])
def test_covariate_shift_that_keeps_calibration_is_estimated_within_tolerance(cli, tmp_path, model, distort):
    # "cubed": the model's scores cubed — still a ranking, no longer probabilities; the isotonic
    # calibration repairs that (a sigmoid fit of the score would not).
    f = (lambda s: s) if distort == "calibrated" else (lambda s: s ** 3)
    xr, yr = sample(1, 20_000, [0.0, 0.0])
    cal = calibrate(cli, tmp_path, f(model.predict_proba(xr)[:, 1]), yr)
    doc = json.loads(cal.read_text())
    assert doc["version"] == 1 and doc["kind"] == "driftloop.calibration"
    assert doc["reference"]["auc"] == pytest.approx(metrics.roc_auc_score(yr, f(model.predict_proba(xr)[:, 1])), abs=1e-9)
    worst = {}
    for seed, mu, sd in [(11, [0.8, -0.5], 1.0), (12, [-0.7, 0.4], 0.8), (13, [0.2, 0.2], 0.6), (14, [0.0, 0.0], 1.5)]:
        x, y = sample(seed, 5_000, mu, sd)
        s = f(model.predict_proba(x)[:, 1])
        m, est = estimate(cli, tmp_path, f"w{seed}", cal, s, y)
        real = realised(s, y)
        assert est["reliability"]["reliable"], est["reliability"]
        assert m["estimation_reliable"] == 1.0
        for k in ["estimated_accuracy", "estimated_auc"]:
            assert within(m, real, k), (k, mu, m[k], m[k + "_std"], real[k])
            worst[k] = max(worst.get(k, 0), abs(m[k] - real[k]))
        # Precision, recall and F1 are estimated too (looser: ratios of estimated counts).
        for k in ["estimated_precision", "estimated_recall", "estimated_f1"]:
            assert abs(m[k] - real[k]) <= 4 * m[k + "_std"] + 0.02, (k, mu, m[k], real[k])
        # The expected confusion matrix adds up to the window.
        cm = est["expected_confusion_matrix"]
        assert sum(cm.values()) == pytest.approx(len(s), rel=1e-9)
    print(f"{distort}: largest |estimate - realised| {worst}")


def test_a_shift_that_breaks_calibration_is_flagged_unreliable(cli, tmp_path, model):
    xr, yr = sample(2, 20_000, [0.0, 0.0])
    cal = calibrate(cli, tmp_path, model.predict_proba(xr)[:, 1], yr)
    # Where the reference had (almost) no data the label law changes: beyond x1 = 3 the positive
    # rate is 0.3 whatever the score. The window moves there.
    broken = lambda x: np.where(x[:, 0] > 3.0, 0.3, truth(x))
    x, y = sample(31, 5_000, [4.0, -1.5], p=broken)
    s = model.predict_proba(x)[:, 1]
    m, est = estimate(cli, tmp_path, "broken", cal, s, y)
    real = realised(s, y)
    assert not within(m, real, "estimated_accuracy"), (m["estimated_accuracy"], real["estimated_accuracy"])
    assert not est["reliability"]["reliable"]
    assert est["reliability"]["out_of_reference_share"] > est["reliability"]["max_out_of_reference_share"]
    assert m["estimation_reliable"] == 0.0
    out = (tmp_path / "broken-out" / "summary.txt").read_text()
    assert "UNRELIABLE" in out


def test_estimate_and_realised_side_by_side_and_bad_inputs_are_errors(cli, tmp_path, model):
    xr, yr = sample(3, 4_000, [0.0, 0.0])
    sr = model.predict_proba(xr)[:, 1]
    cal = calibrate(cli, tmp_path, sr, yr, "--bins", "20")
    assert len(json.loads(cal.read_text())["edges"]) + 1 <= 22
    # With labels and a calibration, one run gives both.
    x, y = sample(4, 3_000, [0.5, 0.0])
    cap, gt = write_window(tmp_path / "both", "both", model.predict_proba(x)[:, 1], y)
    out = tmp_path / "both-out"
    r = subprocess.run([cli, "run", "--capture", str(cap), "--ground-truth", str(gt), "--problem-type",
                        "binary-classification", "--probability-attribute", "score", "--calibration", str(cal),
                        "--output", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x["value"] for x in json.loads((out / "summary.json").read_text())["metrics"]}
    assert abs(m["accuracy"] - m["estimated_accuracy"]) <= 3 * m["estimated_accuracy_std"] + 0.01
    # One class only: a clear error, exit 2.
    cap, gt = write_window(tmp_path / "one", "one", sr[:100], np.zeros(100, dtype=int))
    r = subprocess.run([cli, "calibrate", "--capture", str(cap), "--ground-truth", str(gt),
                        "--probability-attribute", "score", "--output", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "both classes" in r.stderr, r.stderr
    # Not a calibration document.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 0.0, "dataset": {}}))
    r = subprocess.run([cli, "run", "--capture", str(cap), "--calibration", str(bad), "--output",
                        str(tmp_path / "y")], capture_output=True, text=True)
    assert r.returncode == 2 and "driftloop.calibration" in r.stderr, r.stderr
    # A calibration is for binary classification only.
    r = subprocess.run([cli, "run", "--capture", str(cap), "--ground-truth", str(gt), "--problem-type", "regression",
                        "--calibration", str(cal), "--output", str(tmp_path / "z")], capture_output=True, text=True)
    assert r.returncode == 2 and "binary" in r.stderr, r.stderr
