#!/usr/bin/env python3
"""Writes the committed seed corpora, fuzz/corpus/<target>/seed-*, from real-shaped inputs.

Small on purpose (libFuzzer grows the corpus from them; what it adds is not committed, see
fuzz/.gitignore). Run from anywhere: `python3 fuzz/seeds.py`. Sources: the capture and
ground-truth line shapes of shared/src/metrics/engine/tests.rs, the conformance files in
shared/tests/data/conformance (trimmed to two features), the trigger events in events/.
"""

import base64
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
CONF = ROOT / "shared" / "tests" / "data" / "conformance"


def rt(eid, out='"0.5"', enc="CSV", ctype="text/csv", data='"1,2.5,abc"', t="2024-01-01T00:00:00Z",
       inference_id=None):
    meta = {"eventId": eid, "inferenceTime": t}
    if inference_id:
        meta["inferenceId"] = inference_id
    return (
        '{"captureData":{"endpointInput":{"observedContentType":"%s","mode":"INPUT","data":%s,'
        '"encoding":"%s"},"endpointOutput":{"observedContentType":"%s","mode":"OUTPUT","data":%s,'
        '"encoding":"%s"}},"eventMetadata":%s,"eventVersion":"0"}'
        % (ctype, data, enc, ctype, out, enc, json.dumps(meta, separators=(",", ":")))
    )


def gt(eid, label="1", enc="CSV"):
    return (
        '{"groundTruthData":{"data":"%s","encoding":"%s"},"eventMetadata":{"eventId":"%s"},'
        '"eventVersion":"0"}' % (label, enc, eid)
    )


B64 = base64.b64encode(b'{"score":0.25,"label":"1"}').decode()
JSON_IN = json.dumps('{"age":30,"city":"x"}')
JSON_OUT = json.dumps('{"predictions":[{"mean":0.7,"score":0.7}]}')

CAPTURE = {
    "realtime-csv": "\n".join(rt(f"id-{i}", out=f'"0.{i}"') for i in range(1, 4)) + "\n",
    "realtime-json": rt("id-1", out=JSON_OUT, enc="JSON", ctype="application/json", data=JSON_IN) + "\n",
    "realtime-base64": rt("id-1", out='"%s"' % B64, enc="BASE64", ctype="application/json") + "\n",
    "realtime-multirow": rt("id-1", out='"0.1\\n0.9\\n0.4"', data='"1,2\\n3,4\\n5,6"') + "\n",
    "realtime-inference-id": rt("e-1", inference_id="id-1") + "\n\n" + rt("id-2", out='"1"') + "\n",
    "batch-csv": "0.5,id-1,2024-01-01T00:00:00Z\n1,2,0.9,id-2,2024-01-01T00:00:01Z\n",
    "batch-json": '{"prediction":3.5,"SageMakerInferenceId":"id-1","SageMakerInferenceTime":"2024-01-01T00:00:00Z"}\n'
    '{"predictions":[{"mean":0.2}],"SageMakerInferenceId":"id-2","SageMakerInferenceTime":"2024-01-01T00:00:01Z"}\n',
}
GROUND_TRUTH = {
    "csv": "\n".join(gt(f"id-{i}", str(i % 2)) for i in range(1, 4)) + "\n",
    "multiclass": gt("id-1", "cat") + "\n" + gt("id-2", "dog") + "\n",
    "regression": gt("id-1", "3.25") + "\n" + gt("id-2", "-1e3") + "\n",
    "json": gt("id-1", '{\\"label\\":1}', "JSON") + "\n",
    "base64": gt("id-1", base64.b64encode(b"1").decode(), "BASE64") + "\n",
    "duplicate": gt("id-1", "1") + "\n" + gt("id-1", "0") + "\n",
}


def trimmed(path, keep=2):
    d = json.loads(path.read_text())
    if "features" in d:
        d["features"] = d["features"][:keep]
        for f in d["features"]:
            kll = f.get("numerical_statistics", {}).get("distribution", {}).get("kll", {})
            if "sketch" in kll:
                kll["sketch"]["data"] = [row[:8] for row in kll["sketch"]["data"][:2]]
    return json.dumps(d, indent=1)


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    for k, v in CAPTURE.items():
        write("capture_line", k, v)
    for k, v in GROUND_TRUTH.items():
        write("ground_truth_line", k, v)
    # parse_tiers reads each line as capture and as ground truth.
    for k, v in list(CAPTURE.items())[:5]:
        write("parse_tiers", "capture-" + k, v)
    for k, v in GROUND_TRUTH.items():
        write("parse_tiers", "gt-" + k, v)
    write("parse_tiers", "escapes", rt("id-\\u0031", out='"0.5\\t"', data='"a\\"b\\\\c"') + "\n")

    boston = CONF / "nb-amazon-sagemaker-mlops-workshop-boston" / "RECONSTRUCTED_from_notebook_log_run-2021-03-14"
    for name, path in [
        ("sdk-statistics", CONF / "sdk-tests-data-monitor" / "statistics.json"),
        ("sdk-constraints", CONF / "sdk-tests-data-monitor" / "constraints.json"),
        ("boston-statistics", boston / "statistics.json"),
        ("boston-constraints", boston / "constraints.json"),
        ("nyctaxi-dq-constraints", CONF / "awsmljp-nyctaxi-data_quality" / "baseline" / "constraints.json"),
        ("nyctaxi-mq-statistics", CONF / "awsmljp-nyctaxi-model_quality" / "baseline" / "statistics.json"),
    ]:
        write("baseline_files", name, trimmed(path))

    # bounded_feed: byte 0 problem/window flags, 1-2 line max, 3-4 gt limit, 5-12 start, 13-20 end,
    # then ground truth, a 0 byte, capture.
    start, end = 1704067200000, 1704070800000
    for i, problem in enumerate([0, 2, 3, 1]):
        head = bytes([problem | 0xC0]) + struct.pack("<HH", 700 + i * 900, 8) + struct.pack("<qq", start, end)
        gts = GROUND_TRUTH["multiclass" if problem == 3 else "csv"]
        write("bounded_feed", f"p{problem}", head + gts.encode() + b"\0" + CAPTURE["realtime-csv"].encode())

    # broadcast_join: byte 0 problem + threads (+0x80: inference attribute), ground truth sources cut
    # at 0x01, a 0 byte, capture sources cut at 0x01.
    for head, gts, caps in [
        (2, [GROUND_TRUTH["csv"], GROUND_TRUTH["duplicate"]], [CAPTURE["realtime-csv"], CAPTURE["realtime-inference-id"]]),
        (3 | 0x08, [GROUND_TRUTH["multiclass"]], [CAPTURE["realtime-csv"], CAPTURE["realtime-multirow"]]),
        (1 | 0x10, [GROUND_TRUTH["regression"], ""], [CAPTURE["realtime-csv"]] * 3),
        (2 | 0x80, [GROUND_TRUTH["csv"]], [CAPTURE["realtime-json"], CAPTURE["realtime-csv"]]),
        (0, [], [CAPTURE["realtime-csv"], CAPTURE["realtime-base64"]]),
    ]:
        data = bytes([head]) + b"\x01".join(g.encode() for g in gts) + b"\0" + b"\x01".join(c.encode() for c in caps)
        write("broadcast_join", f"h{head:02x}", data)

    # plan_windows: byte 0 window length, 1-2 offset, 3-4 ground-truth delay, 5-12 seconds for now,
    # 13 now's mode, 14-19 unused, then the event JSON.
    now = struct.pack("<q", 14_600_000)  # 1_700_000_000 + this: 2024-05-01-ish
    for i, ev in enumerate(sorted((ROOT / "events").glob("custom-metrics-*.json"))):
        head = bytes([3 + i % 2]) + struct.pack("<HH", 60 * (i % 2), 30) + now + bytes(7)
        write("plan_windows", ev.stem.removeprefix("custom-metrics-"), head + json.dumps(json.loads(ev.read_text())).encode())


if __name__ == "__main__":
    main()
