"""Reference test: driftloop's drift statistics (issue 16) against scipy / numpy exact values.

Generates a Model-Monitor-shaped baseline (statistics.json whose KLL sketch holds every baseline
value at level 0, i.e. an exact sketch of any size, plus constraints.json) and SageMaker capture
files, runs `driftloop-metrics run --data-quality` with that baseline, and compares every statistic
in summary.json with its exact value within the bound the module docs state
(shared/src/metrics/dq/drift/mod.rs, README "Drift statistics"):

* categorical statistics (exact counts): 1e-9;
* numeric statistics of a current window of at most 2,049 values (the sketch never compacts): 1e-9;
* larger windows (a compacted sketch with rank error eps <= 0.005):
  KS D within eps, its p-value between those of D +- eps, Wasserstein/sigma within
  eps * range / sigma, PSI within the mean-value bound psi_bound(p, q, 0, 2 eps), JS and
  Hellinger within sqrt(bins * eps).

The CLI binary is $DRIFTLOOP_METRICS_BIN (see scripts/test), else built like test_metrics_reference.
"""
import json
import math
import os
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

REPO = Path(__file__).resolve().parents[2]
EPS = 0.005          # documented KLL rank error (k = 2048, c = 0.64)
EXACT_MAX = 2049     # a sketch below level-0 capacity (2,050) is exact
PSI_FLOOR = 1e-4
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


# ---------------------------------------------------------------- exact reference computations

def edges_of(base, bins=10):
    """Baseline quantile edges: numpy's inverted_cdf quantiles at i/bins, duplicates dropped."""
    qs = np.quantile(np.asarray(base, dtype=float), [i / bins for i in range(1, bins)], method="inverted_cdf")
    out = []
    for q in qs:
        if not out or q > out[-1]:
            out.append(float(q))
    return np.array(out)


def shares(x, edges):
    idx = np.searchsorted(edges, np.asarray(x, dtype=float), side="left")  # right-closed bins
    return np.bincount(idx, minlength=len(edges) + 1) / len(x)


def psi(p, q):
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def psi_bound(p, q, dp, dq):
    """Mean-value bound of |PSI(p^, q^) - PSI(p, q)| for share errors dp, dq (corners of the box)."""
    total = 0.0
    for a, b in zip(p, q):
        a0, a1 = max(a - dp, PSI_FLOOR), max(a + dp, PSI_FLOOR)
        b0, b1 = max(b - dq, PSI_FLOOR), max(b + dq, PSI_FLOOR)
        corners = [(a0, b0), (a0, b1), (a1, b0), (a1, b1)]
        d_q = max(abs(math.log(y / x) + 1 - x / y) for x, y in corners)
        d_p = max(abs(math.log(x / y) + 1 - y / x) for x, y in corners)
        total += dq * d_q + dp * d_p
    return total


def hellinger(p, q):
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def js(p, q):
    return float(jensenshannon(p, q, base=2))


def ks_pvalue(d, n, m):
    return float(sps.kstwobign.sf(math.sqrt(n * m / (n + m)) * d))


def numeric_exact(base, cur, bins=10):
    e = edges_of(base, bins)
    p, q = shares(base, e), shares(cur, e)
    d = float(sps.ks_2samp(base, cur).statistic)
    return {
        "psi": psi(p, q), "js": js(p, q), "hellinger": hellinger(p, q),
        "wasserstein": float(sps.wasserstein_distance(base, cur) / np.std(base)),
        "ks": d, "ks_pvalue": ks_pvalue(d, len(base), len(cur)),
    }, (p, q)


def category_shares(base_counts, cur_values):
    n = sum(base_counts.values())
    cats, cnt = np.unique(np.asarray(cur_values, dtype=object).astype(str), return_counts=True)
    cur = dict(zip(cats.tolist(), cnt.tolist()))
    m = sum(cur.values())
    keys = list(base_counts) + sorted(k for k in cur if k not in base_counts)
    p = np.array([base_counts.get(k, 0) / n for k in keys])
    q = np.array([cur.get(k, 0) / m for k in keys])
    return p, q, cur


def chi2_pvalue(base_counts, cur):
    """Model Monitor's rule: baseline rescaled to the current size, the smallest categories merged
    until at most 20% of expected counts are < 5 (2 categories: all >= 10)."""
    n, m = sum(base_counts.values()), sum(cur.values())
    keys = set(base_counts) | set(cur)
    cols = sorted(([base_counts.get(k, 0) * m / n, cur.get(k, 0)] for k in keys), key=lambda c: c[0] + c[1])

    def ok(cols):
        exp = [(a + b) / 2 for a, b in cols for _ in (0, 1)]
        if len(cols) == 2:
            return all(e >= 10 for e in exp)
        return sum(e < 5 for e in exp) <= 0.2 * len(exp)

    while len(cols) >= 2 and not ok(cols):
        a = cols.pop(0)
        cols[0] = [cols[0][0] + a[0], cols[0][1] + a[1]]
        cols.sort(key=lambda c: c[0] + c[1])
    table = np.array(cols).T
    return float(sps.chi2_contingency(table, correction=False).pvalue)


# ---------------------------------------------------------------- files and the CLI

def baseline_files(tmp, base_x, base_cats, x_type, thresholds=None):
    n = len(base_x)
    stats = {"version": 0.0, "dataset": {"item_count": n}, "features": [
        {"name": "x", "inferred_type": x_type, "numerical_statistics": {
            "common": {"num_present": n, "num_missing": 0},
            "mean": float(np.mean(base_x)), "sum": float(np.sum(base_x)), "std_dev": float(np.std(base_x)),
            "min": float(np.min(base_x)), "max": float(np.max(base_x)),
            # An exact sketch: every value at level 0.
            "distribution": {"kll": {"buckets": [], "sketch": {"parameters": {"c": 0.64, "k": 2048.0},
                                                               "data": [[float(v) for v in base_x]]}}}}},
        {"name": "c", "inferred_type": "String", "string_statistics": {
            "common": {"num_present": sum(base_cats.values()), "num_missing": 0}, "distinct_count": len(base_cats),
            "distribution": {"categorical": {"buckets": [{"value": k, "count": v} for k, v in base_cats.items()]}}}},
    ]}
    dc = {"perform_comparison": "Enabled", "comparison_threshold": 0.1, "comparison_method": "Robust",
          "categorical_comparison_threshold": 0.1, "categorical_drift_method": "LInfinity"}
    if thresholds:
        dc["drift_thresholds"] = thresholds
    cons = {"version": 0.0, "features": [
        {"name": "x", "inferred_type": x_type, "completeness": 1.0},
        {"name": "c", "inferred_type": "String", "completeness": 1.0}],
        "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
                              "datatype_check_threshold": 1.0, "domain_content_threshold": 1.0,
                              "distribution_constraints": dc}}
    (tmp / "stats.json").write_text(json.dumps(stats))
    (tmp / "cons.json").write_text(json.dumps(cons))


def fmt(v):
    return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)


def capture_files(tmp, xs, cats, scores, name="capture"):
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (x, c, s) in enumerate(zip(xs, cats, scores)):
        lines.append(json.dumps({"captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": f"{fmt(x)},{c}",
                              "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": repr(float(s)),
                               "encoding": "CSV"}},
            "eventMetadata": {"eventId": f"e{name}{i}", "inferenceTime": "2024-01-01T00:10:00Z"},
            "eventVersion": "0"}))
    (d / "part.jsonl").write_text("\n".join(lines) + "\n")
    return d


def run_cli(cli, tmp, capture, *args):
    out = tmp / f"out-{capture.name}"
    proc = subprocess.run([cli, "run", "--capture", str(capture), "--output", str(out), *args],
                          capture_output=True, text=True)
    assert proc.returncode in (0, 3), proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    return {m["name"]: m["value"] for m in summary["metrics"]}, violations, out, proc.stdout


# ---------------------------------------------------------------- the cases

def gen(kind, n, rng, shift=0.0):
    if kind == "normal":
        return rng.normal(10 + shift, 3, n)
    if kind == "lognormal":
        return rng.lognormal(0.2 * shift, 0.8, n)
    if kind == "uniform":
        return rng.uniform(0, 100 + 20 * shift, n)
    if kind == "ties":  # heavy ties: 70% zeros, then a few integers
        return np.where(rng.random(n) < 0.7 - 0.1 * shift, 0, rng.integers(1, 5, n)).astype(float)
    raise ValueError(kind)


BASE_CATS = {"red": 5000, "green": 3000, "blue": 1500, "violet": 400, "amber": 100}


def cur_cats(n, rng):
    """Drifted categories with unseen values of distinct counts ('teal', 'plum')."""
    vals = rng.choice(["red", "green", "blue", "violet", "amber"], size=n, p=[0.4, 0.35, 0.15, 0.07, 0.03])
    vals = vals.astype(object)
    k1, k2 = max(1, n // 60), max(2, n // 25)
    vals[:k1] = "teal"
    vals[k1:k1 + k2] = "plum"
    return vals


CASES = [
    # (baseline distribution, n baseline, current n)
    ("normal", 5000, 800),
    ("normal", 50_000, 60_000),
    ("lognormal", 20_000, 1500),
    ("lognormal", 20_000, 40_000),
    ("uniform", 3000, 30_000),
    ("ties", 10_000, 500),
    ("ties", 10_000, 30_000),
]


@pytest.mark.parametrize("kind,nb,nc", CASES, ids=[f"{k}-{a}-{b}" for k, a, b in CASES])
def test_statistics_against_scipy(cli, tmp_path, kind, nb, nc):
    rng = np.random.default_rng(zlib.crc32(f"{kind}-{nb}-{nc}".encode()))
    base = gen(kind, nb, rng)
    cur = gen(kind, nc, rng, shift=1.0)
    if kind == "ties":
        base, cur = base.astype(int), cur.astype(int)
    x_type = "Integral" if kind == "ties" else "Fractional"
    baseline_files(tmp_path, base, BASE_CATS, x_type)
    cats = cur_cats(nc, rng)
    cap = capture_files(tmp_path, cur, cats, rng.random(nc))
    m, _, _, stdout = run_cli(cli, tmp_path, cap, "--data-quality", "--baseline-statistics",
                              str(tmp_path / "stats.json"), "--baseline-constraints", str(tmp_path / "cons.json"))

    exact, (p, q) = numeric_exact(base.astype(float), cur.astype(float))
    eps = 0.0 if nc <= EXACT_MAX else EPS
    bins = len(p)
    got = {k: m[f"feature_{k}_x"] for k in exact}
    # The CLI summary names them too.
    assert "feature_psi_x" in stdout and "feature_chi2_pvalue_c" in stdout
    rng_width = max(base.max(), cur.max()) - min(base.min(), cur.min())
    bounds = {
        "psi": psi_bound(p, q, 0.0, 2 * eps),
        "js": math.sqrt(bins * eps),
        "hellinger": math.sqrt(bins * eps),
        "wasserstein": eps * rng_width / np.std(base),
        "ks": eps,
    }
    for k, b in bounds.items():
        assert abs(got[k] - exact[k]) <= b + TOL, f"{k}: {got[k]} vs exact {exact[k]} (bound {b})"
    d = exact["ks"]
    lo, hi = ks_pvalue(d + eps, nb, nc), ks_pvalue(max(d - eps, 0.0), nb, nc)
    assert lo - TOL <= got["ks_pvalue"] <= hi + TOL, (got["ks_pvalue"], lo, hi)
    # The drift is visible, and feature_baseline_drift stays Model Monitor's robust L-infinity.
    assert got["ks"] > 0.02
    robust = max(0.0, got["ks"] - 1.8 * math.sqrt((nb + nc) / (nb * nc)))
    assert abs(m["feature_baseline_drift_x"] - robust) <= TOL

    # Categorical: exact counts, unseen values as their own bins.
    pc, qc, cur_counts = category_shares(BASE_CATS, cats)
    for key, want in [("psi", psi(pc, qc)), ("js", js(pc, qc)), ("hellinger", hellinger(pc, qc)),
                      ("chi2_pvalue", chi2_pvalue(BASE_CATS, cur_counts))]:
        assert abs(m[f"feature_{key}_c"] - want) <= TOL * max(1.0, abs(want)), (key, m[f"feature_{key}_c"], want)
    linf = float(np.max(np.abs(pc - qc)))
    nbc = sum(BASE_CATS.values())
    assert abs(m["feature_baseline_drift_c"] - max(0.0, linf - 1.8 * math.sqrt((nbc + nc) / (nbc * nc)))) <= TOL
    assert "feature_wasserstein_c" not in m and "feature_chi2_pvalue_x" not in m


def test_thresholds_and_method_choice_make_violations(cli, tmp_path):
    """drift_thresholds add baseline_drift_check violations naming the statistic; a feature's
    numerical_drift_method makes feature_baseline_drift its value."""
    rng = np.random.default_rng(5)
    base, cur = rng.normal(0, 1, 4000), rng.normal(0.5, 1, 1500)
    baseline_files(tmp_path, base, BASE_CATS, "Fractional",
                   thresholds={"psi": 0.2, "ks_pvalue": 0.05, "js": 0.99, "chi2_pvalue": 0.05})
    cons = json.loads((tmp_path / "cons.json").read_text())
    cons["features"][0]["monitoringConfigOverrides"] = {"numerical_drift_method": "PSI", "psi_bins": 20}
    (tmp_path / "cons.json").write_text(json.dumps(cons))
    cap = capture_files(tmp_path, cur, cur_cats(1500, rng), rng.random(1500))
    m, v, _, _ = run_cli(cli, tmp_path, cap, "--baseline-statistics", str(tmp_path / "stats.json"),
                         "--baseline-constraints", str(tmp_path / "cons.json"))
    exact, _ = numeric_exact(base, cur, bins=20)
    assert abs(m["feature_psi_x"] - exact["psi"]) <= TOL
    assert m["feature_baseline_drift_x"] == m["feature_psi_x"]
    drift = [x for x in v if x["constraint_check_type"] == "baseline_drift_check"]
    by = {(x["feature_name"], x["description"].split(" drift distance")[0]) for x in drift}
    # The configured method (PSI against comparison_threshold 0.1, once), then the extra thresholds.
    psi_x = [x for x in drift if x["feature_name"] == "x" and x["description"].startswith("PSI drift distance: ")]
    assert len(psi_x) == 1 and psi_x[0]["description"].endswith("exceeds threshold: 0.1"), drift
    assert ("c", "PSI") in by  # categorical PSI over the drift_thresholds' 0.2
    assert any(x["feature_name"] == "x" and "Kolmogorov-Smirnov p-value" in x["description"]
               and "is below threshold: 0.05" in x["description"] for x in drift), drift
    assert ("x", "Jensen-Shannon distance") not in by  # 0.99 not exceeded
    assert any(x["feature_name"] == "c" and "chi-squared p-value" in x["description"] for x in drift), drift
    for x in drift:
        assert "distance: " in x["description"] and "threshold: " in x["description"]


def test_prediction_drift_without_labels(cli, tmp_path):
    """prediction_statistics.json from a reference window, then prediction_<statistic> of a
    drifted window against it — no ground truth involved."""
    rng = np.random.default_rng(11)
    ref_scores = np.round(rng.beta(2, 5, 2000), 4)   # ties from rounding; exact reference sketch
    cur_scores = np.round(rng.beta(3, 4, 30_000), 4)
    baseline_files(tmp_path, rng.normal(0, 1, 100), BASE_CATS, "Fractional")
    ref = capture_files(tmp_path, rng.normal(0, 1, 2000), cur_cats(2000, rng), ref_scores, name="ref")
    _, _, out_ref, _ = run_cli(cli, tmp_path, ref, "--prediction-drift")
    pstats = json.loads((out_ref / "prediction_statistics.json").read_text())
    assert pstats["features"][0]["name"] == "prediction"
    assert pstats["features"][0]["numerical_statistics"]["common"]["num_present"] == 2000
    cur = capture_files(tmp_path, rng.normal(0, 1, 30_000), cur_cats(30_000, rng), cur_scores, name="cur")
    m, v, _, _ = run_cli(cli, tmp_path, cur, "--prediction-baseline", str(out_ref / "prediction_statistics.json"))
    exact, (p, q) = numeric_exact(ref_scores, cur_scores)
    eps = EPS
    assert abs(m["prediction_ks"] - exact["ks"]) <= eps
    assert abs(m["prediction_psi"] - exact["psi"]) <= psi_bound(p, q, 0.0, 2 * eps) + TOL
    assert abs(m["prediction_js"] - exact["js"]) <= math.sqrt(len(p) * eps) + TOL
    assert abs(m["prediction_hellinger"] - exact["hellinger"]) <= math.sqrt(len(p) * eps) + TOL
    width = max(ref_scores.max(), cur_scores.max()) - min(ref_scores.min(), cur_scores.min())
    assert abs(m["prediction_wasserstein"] - exact["wasserstein"]) <= eps * width / np.std(ref_scores) + TOL
    assert m["prediction_ks"] > 0.1 and m["prediction_baseline_drift"] > 0.1
    assert any(x["feature_name"] == "prediction" and x["constraint_check_type"] == "baseline_drift_check"
               for x in v), v
    # The same window against itself: no drift.
    m2, v2, _, _ = run_cli(cli, tmp_path, ref, "--prediction-baseline", str(out_ref / "prediction_statistics.json"))
    assert m2["prediction_ks"] == 0.0 and m2["prediction_psi"] == 0.0 and m2["prediction_baseline_drift"] == 0.0
    assert not [x for x in v2 if x["feature_name"] == "prediction"]
