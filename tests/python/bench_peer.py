"""The programs a data engineer would write instead of driftloop-metrics, over the capture and
ground-truth folders written by `driftloop-metrics-bench generate --case CASE`.

Usage: python bench_peer.py DIR [--tool duckdb|polars|pandas|duckdb-1t|polars-1t] [--case csv|json|multirow|dq]
  -> prints one JSON line: name, case, bytes, seconds, cpu_seconds, peak_rss_kb, metrics.
  DuckDB and polars use every core; `-1t` runs them on one thread (DuckDB `SET threads TO 1`,
  polars `POLARS_MAX_THREADS=1`), for their own speed-up from threads on the same machine.

Cases (the payload layout `generate` writes):
  csv       endpointOutput data "0.731" (text/csv): the score is the whole payload
  json      endpointOutput data "{\"prediction\":{\"score\":0.731}}" (application/json, JSON)
  multirow  endpointInput 4 CSV rows, endpointOutput 4 scores: the record's score is the first row
  dq        endpointInput "f0,f1,f2,f3,f4" (5 numeric features), no ground truth: data quality

Model quality (csv, json, multirow): join on coalesce(inferenceId, eventId) = ground truth
eventId, predicted positive when score > 0.5, the confusion metrics and the rank AUC with ties
averaged (grouped by score, so equal scores count one half). Data quality: per feature count,
sum, mean, population std dev, min, max and 10 equal-width buckets between min and max
(the last one closed), as the engine's statistics. Generated keys are unique, so no contender
de-duplicates (the engine's counts confirm: no duplicates).
"""
import glob
import json
import os
import resource
import sys
import time

FEATURES = 5
BUCKETS = 10


def files(d, sub):
    return sorted(glob.glob(os.path.join(d, sub, "**", "*.jsonl"), recursive=True))


def confusion(tp, fp, tn, fn):
    def ratio(a, b):
        return a / b if b else 0.0

    p, r = ratio(tp, tp + fp), ratio(tp, tp + fn)

    def f(beta):
        b2 = beta * beta
        return ratio((1 + b2) * p * r, b2 * p + r)

    return {"matched": tp + fp + tn + fn, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "accuracy": ratio(tp + tn, tp + fp + tn + fn), "precision": p, "recall": r,
            "f0_5": f(0.5), "f1": f(1.0), "f2": f(2.0)}


def auc_from_groups(groups):
    """groups: (positives, negatives) per distinct score, in ascending score order."""
    P = sum(g[0] for g in groups)
    N = sum(g[1] for g in groups)
    below, acc = 0, 0.0
    for pos, neg in groups:
        acc += pos * (below + neg / 2.0)
        below += neg
    return acc / (P * N) if P and N else float("nan")


# ---------------------------------------------------------------- DuckDB

def duckdb_run(d, case, threads=None):
    import duckdb
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    cap, gt = files(d, "capture"), files(d, "groundtruth")
    if case == "dq":
        cols = "{'captureData': 'STRUCT(endpointInput STRUCT(data VARCHAR))'}"
        con.execute(f"""CREATE TEMP TABLE f AS SELECT {', '.join(
            f"CAST(split_part(captureData.endpointInput.data, ',', {i + 1}) AS DOUBLE) AS c{i}"
            for i in range(FEATURES))}
            FROM read_json({cap!r}, format='newline_delimited', columns={cols})""")
        out = {"columns": []}
        for i in range(FEATURES):
            c = f"c{i}"
            n, s, mean, sd, mn, mx, q = con.execute(
                f"SELECT count({c}), sum({c}), avg({c}), stddev_pop({c}), min({c}), max({c}), "
                f"approx_quantile({c}, [0.25, 0.5, 0.75]) FROM f").fetchone()
            w = (mx - mn) / BUCKETS
            hist = dict(con.execute(
                f"SELECT least(CAST(floor(({c} - {mn!r}) / {w!r}) AS INTEGER), {BUCKETS - 1}) b, count(*) "
                f"FROM f GROUP BY b").fetchall())
            out["columns"].append({"count": n, "sum": s, "mean": mean, "std_dev": sd, "min": mn,
                                   "max": mx, "quantiles": q,
                                   "buckets": [hist.get(b, 0) for b in range(BUCKETS)]})
        return out
    score = {
        "csv": "CAST(captureData.endpointOutput.data AS DOUBLE)",
        "json": "CAST(json_extract(captureData.endpointOutput.data, '$.prediction.score') AS DOUBLE)",
        "multirow": "CAST(split_part(captureData.endpointOutput.data, chr(10), 1) AS DOUBLE)",
    }[case]
    ccols = ("{'captureData': 'STRUCT(endpointOutput STRUCT(data VARCHAR))', "
             "'eventMetadata': 'STRUCT(eventId VARCHAR, inferenceId VARCHAR)'}")
    gcols = ("{'groundTruthData': 'STRUCT(data VARCHAR)', "
             "'eventMetadata': 'STRUCT(eventId VARCHAR)'}")
    con.execute(f"""CREATE TEMP TABLE m AS
        WITH c AS (SELECT coalesce(eventMetadata.inferenceId, eventMetadata.eventId) AS k, {score} AS s
                   FROM read_json({cap!r}, format='newline_delimited', columns={ccols})),
             g AS (SELECT eventMetadata.eventId AS k, CAST(groundTruthData.data AS INTEGER) AS y
                   FROM read_json({gt!r}, format='newline_delimited', columns={gcols}))
        SELECT s, y FROM c JOIN g USING (k)""")
    tp, fp, tn, fn = con.execute(
        "SELECT count(*) FILTER (s > 0.5 AND y = 1), count(*) FILTER (s > 0.5 AND y = 0), "
        "count(*) FILTER (s <= 0.5 AND y = 0), count(*) FILTER (s <= 0.5 AND y = 1) FROM m").fetchone()
    P, N, acc = con.execute("""
        WITH g AS (SELECT s, sum(y) AS p, count(*) - sum(y) AS n FROM m GROUP BY s),
             w AS (SELECT p, n, coalesce(sum(n) OVER (ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING
                                                   AND 1 PRECEDING), 0) AS below FROM g)
        SELECT sum(p), sum(n), sum(p * (below + n / 2.0)) FROM w""").fetchone()
    out = confusion(tp, fp, tn, fn)
    out["auc"] = float(acc) / (float(P) * float(N))
    return out


# ---------------------------------------------------------------- polars

def polars_run(d, case):
    import polars as pl
    cap, gt = files(d, "capture"), files(d, "groundtruth")
    if case == "dq":
        schema = {"captureData": pl.Struct({"endpointInput": pl.Struct({"data": pl.String})})}
        parts = (pl.col("captureData").struct.field("endpointInput").struct.field("data")
                 .str.split_exact(",", FEATURES - 1))
        f = (pl.scan_ndjson(cap, schema=schema)
             .select(parts.alias("p")).unnest("p")
             .select([pl.col(f"field_{i}").cast(pl.Float64).alias(f"c{i}") for i in range(FEATURES)])
             .collect())
        out = {"columns": []}
        for i in range(FEATURES):
            c = f[f"c{i}"]
            mn, mx = c.min(), c.max()
            w = (mx - mn) / BUCKETS
            b = ((c - mn) / w).floor().cast(pl.Int64).clip(upper_bound=BUCKETS - 1)
            vc = dict(b.value_counts().iter_rows())
            out["columns"].append({"count": c.count(), "sum": c.sum(), "mean": c.mean(),
                                   "std_dev": c.std(ddof=0), "min": mn, "max": mx,
                                   "quantiles": [c.quantile(q) for q in (0.25, 0.5, 0.75)],
                                   "buckets": [vc.get(k, 0) for k in range(BUCKETS)]})
        return out
    data = pl.col("captureData").struct.field("endpointOutput").struct.field("data")
    score = {
        "csv": data.cast(pl.Float64),
        "json": data.str.json_path_match("$.prediction.score").cast(pl.Float64),
        "multirow": data.str.split_exact("\n", 1).struct.field("field_0").cast(pl.Float64),
    }[case]
    meta = pl.col("eventMetadata")
    cschema = {"captureData": pl.Struct({"endpointOutput": pl.Struct({"data": pl.String})}),
               "eventMetadata": pl.Struct({"eventId": pl.String, "inferenceId": pl.String})}
    gschema = {"groundTruthData": pl.Struct({"data": pl.String}),
               "eventMetadata": pl.Struct({"eventId": pl.String})}
    c = pl.scan_ndjson(cap, schema=cschema).select(
        pl.coalesce(meta.struct.field("inferenceId"), meta.struct.field("eventId")).alias("k"),
        score.alias("s"))
    g = pl.scan_ndjson(gt, schema=gschema).select(
        meta.struct.field("eventId").alias("k"),
        pl.col("groundTruthData").struct.field("data").cast(pl.Int64).alias("y"))
    m = c.join(g, on="k", how="inner").select("s", "y")
    pred = pl.col("s") > 0.5
    y1 = pl.col("y") == 1
    conf, grp = pl.collect_all([
        m.select((pred & y1).sum().alias("tp"), (pred & ~y1).sum().alias("fp"),
                 (~pred & ~y1).sum().alias("tn"), (~pred & y1).sum().alias("fn")),
        m.group_by("s").agg(pl.col("y").sum().alias("p"), (pl.len() - pl.col("y").sum()).alias("n"))
         .sort("s")
         .with_columns((pl.col("n").cum_sum() - pl.col("n")).alias("below"))
         .select(pl.col("p").sum().alias("P"), pl.col("n").sum().alias("N"),
                 (pl.col("p") * (pl.col("below") + pl.col("n") / 2.0)).sum().alias("acc")),
    ])
    out = confusion(*[int(conf[k][0]) for k in ("tp", "fp", "tn", "fn")])
    out["auc"] = float(grp["acc"][0]) / (float(grp["P"][0]) * float(grp["N"][0]))
    return out


# ---------------------------------------------------------------- pandas + scikit-learn

def pandas_load(fs):
    import pandas as pd
    rows = []
    for f in fs:
        with open(f) as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return pd.json_normalize(rows)


def pandas_run(d, case):
    import numpy as np
    import pandas as pd
    from sklearn import metrics
    cap = pandas_load(files(d, "capture"))
    if case == "dq":
        f = cap["captureData.endpointInput.data"].str.split(",", expand=True).astype(float)
        out = {"columns": []}
        for i in range(FEATURES):
            c = f[i].to_numpy()
            mn, mx = float(c.min()), float(c.max())
            b = np.minimum(np.floor((c - mn) / ((mx - mn) / BUCKETS)).astype(int), BUCKETS - 1)
            out["columns"].append({"count": int(len(c)), "sum": float(c.sum()), "mean": float(c.mean()),
                                   "std_dev": float(c.std()), "min": mn, "max": mx,
                                   "quantiles": [float(q) for q in np.quantile(c, [0.25, 0.5, 0.75])],
                                   "buckets": np.bincount(b, minlength=BUCKETS).tolist()})
        return out
    gt = pandas_load(files(d, "groundtruth"))
    key = cap["eventMetadata.eventId"]
    if "eventMetadata.inferenceId" in cap:
        key = cap["eventMetadata.inferenceId"].fillna(key)
    data = cap["captureData.endpointOutput.data"]
    score = {
        "csv": lambda: data.astype(float),
        "json": lambda: data.map(lambda t: json.loads(t)["prediction"]["score"]).astype(float),
        "multirow": lambda: data.str.split("\n").str[0].astype(float),
    }[case]()
    c = pd.DataFrame({"key": key, "score": score})
    g = pd.DataFrame({"key": gt["eventMetadata.eventId"], "label": gt["groundTruthData.data"].astype(int)})
    m = c.merge(g, on="key", how="inner")
    y, s = m["label"].to_numpy(), m["score"].to_numpy()
    p = (s > 0.5).astype(int)
    (tn, fp), (fn, tp) = metrics.confusion_matrix(y, p, labels=[0, 1]).tolist()
    out = confusion(tp, fp, tn, fn)
    out["auc"] = float(metrics.roc_auc_score(y, s))  # ties averaged
    metrics.roc_curve(y, s)
    metrics.precision_recall_curve(y, s)
    return out


def main(argv):
    d = argv[0]
    tool = argv[argv.index("--tool") + 1] if "--tool" in argv else "pandas"
    case = argv[argv.index("--case") + 1] if "--case" in argv else "csv"
    base, one_thread = (tool[:-3], True) if tool.endswith("-1t") else (tool, False)
    if one_thread and base not in ("duckdb", "polars"):
        sys.exit(f"--tool {tool}: only duckdb and polars run on several threads")
    if one_thread and base == "polars":
        # Read by polars when it is imported (polars_run imports it).
        os.environ["POLARS_MAX_THREADS"] = "1"
    run = {"duckdb": duckdb_run, "polars": polars_run, "pandas": pandas_run}[base]
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    out = duckdb_run(d, case, threads=1) if one_thread and base == "duckdb" else run(d, case)
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    nbytes = sum(os.path.getsize(f) for f in files(d, "capture") + files(d, "groundtruth"))
    print(json.dumps({"name": tool, "case": case, "bytes": nbytes, "seconds": secs,
                      "cpu_seconds": cpu, "peak_rss_kb": r1.ru_maxrss, "metrics": out}))


if __name__ == "__main__":
    main(sys.argv[1:])
