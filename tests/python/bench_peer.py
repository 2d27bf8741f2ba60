"""The peer a data scientist would write: pandas + scikit-learn join and binary metrics over the
capture and ground-truth folders written by `driftloop-metrics-bench generate`.

Usage: python bench_peer.py DIR   -> prints one JSON line (records, bytes, seconds, peak_rss_kb, auc).
"""
import glob
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn import metrics


def load(pattern):
    files = sorted(glob.glob(pattern, recursive=True))
    rows = []
    for f in files:
        with open(f) as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return files, pd.json_normalize(rows)


def main(d):
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    gt_files, gt = load(os.path.join(d, "groundtruth", "**", "*.jsonl"))
    cap_files, cap = load(os.path.join(d, "capture", "**", "*.jsonl"))
    nbytes = sum(os.path.getsize(f) for f in gt_files + cap_files)
    n_capture = len(cap)
    key = cap["eventMetadata.eventId"]
    if "eventMetadata.inferenceId" in cap:
        key = cap["eventMetadata.inferenceId"].fillna(key)
    cap = pd.DataFrame({"key": key, "score": cap["captureData.endpointOutput.data"].astype(float)})
    gt = pd.DataFrame({"key": gt["eventMetadata.eventId"], "label": gt["groundTruthData.data"].astype(int)})
    gt = gt.drop_duplicates("key", keep="last")
    cap = cap.drop_duplicates("key", keep="first")
    m = cap.merge(gt, on="key", how="inner")
    y, s = m["label"].to_numpy(), m["score"].to_numpy()
    p = (s > 0.5).astype(int)
    out = {
        "confusion_matrix": metrics.confusion_matrix(y, p).tolist(),
        "accuracy": metrics.accuracy_score(y, p),
        "precision": metrics.precision_score(y, p, zero_division=0),
        "recall": metrics.recall_score(y, p, zero_division=0),
        "f0_5": metrics.fbeta_score(y, p, beta=0.5, zero_division=0),
        "f1": metrics.f1_score(y, p, zero_division=0),
        "f2": metrics.fbeta_score(y, p, beta=2, zero_division=0),
        "auc": metrics.roc_auc_score(y, s),
    }
    metrics.roc_curve(y, s)
    metrics.precision_recall_curve(y, s)
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    rss = r1.ru_maxrss  # KiB on Linux
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    print(json.dumps({"name": "peer", "records": n_capture, "bytes": nbytes, "seconds": secs,
                      "cpu_seconds": cpu, "peak_rss_kb": rss, "matched": int(len(m)), "auc": out["auc"], "f1": out["f1"]}))


if __name__ == "__main__":
    main(sys.argv[1])
