"""Reference test: the driftloop metrics CLI against scikit-learn / numpy on generated data.

Generates SageMaker-layout capture + ground-truth files, runs `driftloop-metrics run`, and compares
Model Monitor's metrics with independent computations (1e-9 where exact).

The CLI binary is taken from $DRIFTLOOP_METRICS_BIN, else built with
`cargo build -p driftloop --no-default-features --features cli --bin driftloop-metrics`.
"""
import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-9


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


def capture_line(event_id, out_data, out_enc="CSV", out_ct="text/csv", in_data="1,2", in_enc="CSV",
                 in_ct="text/csv", inference_id=None, t="2024-01-01T00:10:00Z"):
    meta = {"eventId": event_id, "inferenceTime": t}
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": in_ct, "mode": "INPUT", "data": in_data, "encoding": in_enc},
        "endpointOutput": {"observedContentType": out_ct, "mode": "OUTPUT", "data": out_data, "encoding": out_enc}},
        "eventMetadata": meta, "eventVersion": "0"})


def gt_line(event_id, data, enc="CSV"):
    return json.dumps({"groundTruthData": {"data": data, "encoding": enc}, "eventMetadata": {"eventId": event_id},
                       "eventVersion": "0"})


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def run_cli(cli, tmp, *args):
    out = tmp / "out"
    proc = subprocess.run([cli, "run", "--capture", str(tmp / "capture"), "--ground-truth", str(tmp / "gt"),
                           "--output", str(out), *args], capture_output=True, text=True)
    assert proc.returncode in (0, 3), proc.stderr
    stats = json.loads((out / "statistics.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    return stats, summary, out


def val(m, name):
    return m[name]["value"]


def test_binary_against_sklearn(cli, tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    y = (rng.random(n) < 0.35).astype(int)
    # Rounded scores -> many ties, exercising the tie handling of the AUC.
    s = np.round(np.clip(0.25 * y + rng.normal(0.4, 0.2, n), 0, 1), 2)
    caps, gts = [], []
    for i in range(n):
        eid = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i))
        inf = f"inf-{i}" if i % 3 == 0 else None
        key = inf or eid
        score = f"{s[i]:.2f}"
        if i % 5 == 0:
            caps.append(capture_line(eid, base64.b64encode(score.encode()).decode(), out_enc="BASE64",
                                     inference_id=inf))
        else:
            caps.append(capture_line(eid, score, inference_id=inf))
        gts.append(gt_line(key, str(y[i]) if i % 2 else f"{y[i]}.0"))
    caps.append("{not json")
    gts.append(gt_line("orphan", "1"))
    write(tmp_path / "capture/ep/AllTraffic/2024/01/01/00/a.jsonl", caps[: n // 2])
    write(tmp_path / "capture/ep/AllTraffic/2024/01/01/00/b.jsonl", caps[n // 2:])
    write(tmp_path / "gt/2024/01/01/00/labels.jsonl", gts)
    stats, summary, _ = run_cli(cli, tmp_path, "--problem-type", "binary-classification", "--max-curve-points",
                                "100000")
    c = summary["counts"]
    assert c["matched"] == n and c["evaluated"] == n
    assert c["malformed_capture"] == 1 and c["unmatched_labels"] == 1
    m = stats["binary_classification_metrics"]
    assert stats["dataset"]["item_count"] == n
    p = (s > 0.5).astype(int)
    cm = metrics.confusion_matrix(y, p)
    tn, fp, fn, tp = cm.ravel()
    assert m["confusion_matrix"]["1"]["1"] == tp and m["confusion_matrix"]["0"]["0"] == tn
    assert m["confusion_matrix"]["0"]["1"] == fp and m["confusion_matrix"]["1"]["0"] == fn
    ref = {
        "accuracy": metrics.accuracy_score(y, p),
        "precision": metrics.precision_score(y, p, zero_division=0),
        "recall": metrics.recall_score(y, p, zero_division=0),
        "true_positive_rate": tp / (tp + fn),
        "true_negative_rate": tn / (tn + fp),
        "false_positive_rate": fp / (fp + tn),
        "false_negative_rate": fn / (fn + tp),
        "f0_5": metrics.fbeta_score(y, p, beta=0.5, zero_division=0),
        "f1": metrics.f1_score(y, p, zero_division=0),
        "f2": metrics.fbeta_score(y, p, beta=2, zero_division=0),
        "auc": metrics.roc_auc_score(y, s),
    }
    ones = np.ones_like(y)
    ref["precision_best_constant_classifier"] = metrics.precision_score(y, ones)
    ref["recall_best_constant_classifier"] = metrics.recall_score(y, ones)
    ref["accuracy_best_constant_classifier"] = metrics.accuracy_score(y, ones)
    ref["f1_best_constant_classifier"] = metrics.f1_score(y, ones)
    ref["f2_best_constant_classifier"] = metrics.fbeta_score(y, ones, beta=2)
    ref["f0_5_best_constant_classifier"] = metrics.fbeta_score(y, ones, beta=0.5)
    for k, v in ref.items():
        assert abs(val(m, k) - v) <= TOL, (k, val(m, k), v)
        assert isinstance(m[k]["standard_deviation"], float), k
    fpr, tpr, _ = metrics.roc_curve(y, s, drop_intermediate=False)
    roc = m["receiver_operating_characteristic_curve"]
    np.testing.assert_allclose(roc["false_positive_rates"], fpr, atol=TOL)
    np.testing.assert_allclose(roc["true_positive_rates"], tpr, atol=TOL)
    prec, rec, _ = metrics.precision_recall_curve(y, s, drop_intermediate=False)
    # sklearn lists by increasing threshold and appends (1, 0); ours by decreasing threshold.
    np.testing.assert_allclose(m["precision_recall_curve"]["precisions"], prec[:-1][::-1], atol=TOL)
    np.testing.assert_allclose(m["precision_recall_curve"]["recalls"], rec[:-1][::-1], atol=TOL)


def test_regression_against_sklearn(cli, tmp_path):
    rng = np.random.default_rng(2)
    n = 150
    y = rng.normal(50, 10, n)
    yhat = y + rng.normal(0, 3, n)
    caps = [capture_line(f"r{i}", json.dumps({"prediction": float(yhat[i])}), out_enc="JSON",
                         out_ct="application/json") for i in range(n)]
    gts = [gt_line(f"r{i}", repr(float(y[i]))) for i in range(n)]
    write(tmp_path / "capture/c.jsonl", caps)
    write(tmp_path / "gt/g.jsonl", gts)
    stats, _, _ = run_cli(cli, tmp_path, "--problem-type", "regression", "--inference-attribute", "prediction")
    m = stats["regression_metrics"]
    assert abs(val(m, "mae") - metrics.mean_absolute_error(y, yhat)) <= TOL
    assert abs(val(m, "mse") - metrics.mean_squared_error(y, yhat)) <= TOL
    assert abs(val(m, "rmse") - np.sqrt(metrics.mean_squared_error(y, yhat))) <= TOL
    assert abs(val(m, "r2") - metrics.r2_score(y, yhat)) <= TOL
    assert m["mae"]["standard_deviation"] == "NaN"  # fewer than 200 samples


def test_multiclass_against_sklearn(cli, tmp_path):
    rng = np.random.default_rng(3)
    classes = np.array(["cat", "dog", "bird", "fish"])
    n = 500
    y = rng.choice(classes, n, p=[0.4, 0.3, 0.2, 0.1])
    pred = np.where(rng.random(n) < 0.7, y, rng.choice(classes, n))
    caps = [capture_line(f"m{i}", json.dumps({"predicted_label": str(pred[i]), "probabilities": [0.1, 0.9]}),
                         out_enc="JSON", out_ct="application/json") for i in range(n)]
    gts = [gt_line(f"m{i}", str(y[i])) for i in range(n)]
    write(tmp_path / "capture/c.jsonl", caps)
    write(tmp_path / "gt/g.jsonl", gts)
    stats, _, _ = run_cli(cli, tmp_path, "--problem-type", "multiclass-classification", "--inference-attribute",
                          "predicted_label")
    m = stats["multiclass_classification_metrics"]
    ref = {
        "accuracy": metrics.accuracy_score(y, pred),
        "weighted_recall": metrics.recall_score(y, pred, average="weighted", zero_division=0),
        "weighted_precision": metrics.precision_score(y, pred, average="weighted", zero_division=0),
        "weighted_f0_5": metrics.fbeta_score(y, pred, beta=0.5, average="weighted", zero_division=0),
        "weighted_f1": metrics.f1_score(y, pred, average="weighted", zero_division=0),
        "weighted_f2": metrics.fbeta_score(y, pred, beta=2, average="weighted", zero_division=0),
    }
    majority = np.full(n, "cat")
    ref["accuracy_best_constant_classifier"] = metrics.accuracy_score(y, majority)
    ref["weighted_precision_best_constant_classifier"] = metrics.precision_score(
        y, majority, average="weighted", zero_division=0)
    ref["weighted_f1_best_constant_classifier"] = metrics.f1_score(y, majority, average="weighted", zero_division=0)
    for k, v in ref.items():
        assert abs(val(m, k) - v) <= TOL, (k, val(m, k), v)
    cm = metrics.confusion_matrix(y, pred, labels=sorted(classes))
    for i, a in enumerate(sorted(classes)):
        for j, b in enumerate(sorted(classes)):
            assert m["confusion_matrix"][a][b] == cm[i, j]


def test_forecast_against_numpy(cli, tmp_path):
    rng = np.random.default_rng(4)
    qs = [0.1, 0.5, 0.9]
    n, h = 40, 6
    caps, gts, Y, F, Q, mase = [], [], [], [], [], []
    for i in range(n):
        hist = rng.normal(100, 10, 30)
        y = rng.normal(100, 10, h)
        mean = y + rng.normal(0, 5, h)
        quant = {str(q): list(mean + (q - 0.5) * 20) for q in qs}
        out = {"predictions": [{"quantiles": quant, "mean": list(mean)}]}
        inp = {"instances": [{"start": "2024-01-01 00:00:00", "target": list(hist)}]}
        caps.append(capture_line(f"f{i}", json.dumps(out), out_enc="JSON", out_ct="application/json",
                                 in_data=json.dumps(inp), in_enc="JSON", in_ct="application/json"))
        gts.append(gt_line(f"f{i}", json.dumps(list(y)), enc="JSON"))
        Y.append(y); F.append(mean); Q.append(np.array([quant[str(q)] for q in qs]))
        mase.append(np.mean(np.abs(y - mean)) / np.mean(np.abs(np.diff(hist))))
    write(tmp_path / "capture/c.jsonl", caps)
    write(tmp_path / "gt/g.jsonl", gts)
    stats, _, _ = run_cli(cli, tmp_path, "--problem-type", "forecast")
    m = stats["forecast_metrics"]
    Y, F, Q = np.concatenate(Y), np.concatenate(F), np.concatenate(Q, axis=1)
    denom = np.abs(Y).sum()
    wql = [2 * np.sum(q * np.maximum(Y - Q[k], 0) + (1 - q) * np.maximum(Q[k] - Y, 0)) / denom
           for k, q in enumerate(qs)]
    for k, q in enumerate(qs):
        assert abs(val(m, f"wQL_{q}") - wql[k]) <= TOL
    assert abs(val(m, "mean_wQL") - np.mean(wql)) <= TOL
    assert abs(val(m, "WAPE") - np.abs(Y - F).sum() / denom) <= TOL
    assert abs(val(m, "RMSE") - np.sqrt(np.mean((Y - F) ** 2))) <= TOL
    assert abs(val(m, "MAPE") - np.mean(np.abs((Y - F) / Y))) <= TOL
    assert abs(val(m, "MASE") - np.mean(mase)) <= TOL


def test_data_quality_against_numpy_and_drift(cli, tmp_path):
    rng = np.random.default_rng(5)
    n = 2000
    age = rng.integers(18, 90, n)
    income = np.round(rng.normal(50000, 8000, n), 2)
    city = rng.choice(["a", "b", "c"], n)
    train = tmp_path / "train.csv"
    train.write_text("age,income,city\n" + "\n".join(f"{age[i]},{income[i]},{city[i]}" for i in range(n)) + "\n")
    base = tmp_path / "baseline"
    subprocess.run([cli, "suggest-baseline", "--dataset", str(train), "--header", "--output", str(base)], check=True,
                   capture_output=True)
    bstats = json.loads((base / "statistics.json").read_text())
    f = {x["name"]: x for x in bstats["features"]}
    ns = f["income"]["numerical_statistics"]
    assert f["age"]["inferred_type"] == "Integral" and f["income"]["inferred_type"] == "Fractional"
    assert abs(ns["mean"] - income.mean()) <= 1e-9 * abs(income.mean())
    assert abs(ns["sum"] - income.sum()) <= 1e-9 * abs(income.sum())
    assert abs(ns["std_dev"] - income.std()) <= 1e-9 * income.std()
    assert ns["min"] == income.min() and ns["max"] == income.max()
    assert sum(b["count"] for b in ns["distribution"]["kll"]["buckets"]) == n
    cats = {b["value"]: b["count"] for b in f["city"]["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert cats == {k: int((city == k).sum()) for k in "abc"}
    # Current traffic: drifted age, a new city, no output columns.
    caps = []
    for i in range(n):
        a = int(age[i]) + 30
        c = "zzz" if i % 10 == 0 else city[i]
        caps.append(capture_line(f"d{i}", "0.5", in_data=f"{a},{income[i]},{c}"))
    write(tmp_path / "capture/c.jsonl", caps)
    write(tmp_path / "gt/g.jsonl", [])
    out = tmp_path / "out"
    proc = subprocess.run([cli, "run", "--capture", str(tmp_path / "capture"), "--no-output-columns",
                           "--feature-names", "age,income,city", "--baseline-statistics",
                           str(base / "statistics.json"), "--baseline-constraints", str(base / "constraints.json"),
                           "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    v = json.loads((out / "constraint_violations.json").read_text())["violations"]
    kinds = {(x["feature_name"], x["constraint_check_type"]) for x in v}
    assert ("age", "baseline_drift_check") in kinds
    assert ("city", "categorical_values_check") in kinds
    assert ("income", "baseline_drift_check") not in kinds
    d = next(x for x in v if x["feature_name"] == "age" and x["constraint_check_type"] == "baseline_drift_check")
    assert " exceeds threshold: 0.1" in d["description"]
