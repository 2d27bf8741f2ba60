"""CloudWatch backend fixes for moto 5.2.5 (monkey patches, applied by ``apply()``).

* GetMetricData ignores the Namespace of a MetricStat that has Dimensions (it matches name and
  dimensions only), so equal metric names in two namespaces are mixed up: queries are now scoped to
  their namespace.
* Metric math: moto only resolves an expression that is exactly another query's Id (``m1 * 100``
  yields nothing). Arithmetic (``+ - * /``, parentheses, unary minus, numbers, query Ids) and
  ``ABS``, ``SUM``/``AVG``/``MIN``/``MAX`` over ``[a, b, ...]`` are evaluated per timestamp.
* ListMetrics lists a metric without dimensions once per datum put; it is listed once now.
* GetMetricStatistics matches a metric whose dimensions *include* the requested ones (a datum
  put with ``Endpoint``, ``MonitoringSchedule`` and ``Publication`` is counted by a query for
  ``Endpoint`` and ``MonitoringSchedule``); CloudWatch identifies a metric by its whole dimension
  set, so only an exact match is counted now (as GetMetricData already does).
* StartTime is rounded down as CloudWatch documents it (to the minute when less than 15 days ago,
  5 minutes up to 63 days, the hour beyond), so datapoints carry period-aligned timestamps
  (moto buckets from the raw StartTime, e.g. 12:32:34, 12:33:34, ...).
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.cloudwatch.exceptions import ValidationError

_TLS = threading.local()
_APPLIED = False

_orig_get_all_metrics = cw_models.CloudWatchBackend.get_all_metrics
_orig_get_metric_data = cw_models.CloudWatchBackend.get_metric_data
_orig_get_filtered_metrics = cw_models.CloudWatchBackend.get_filtered_metrics


def get_all_metrics(self: cw_models.CloudWatchBackend) -> list[Any]:
    data = _orig_get_all_metrics(self)
    namespace = getattr(_TLS, "namespace", None)
    if namespace is None:
        return data
    return [md for md in data if md.namespace == namespace]


def get_filtered_metrics(self: cw_models.CloudWatchBackend, metric_name: str, namespace: str,
                         dimensions: list[dict[str, str]]) -> list[Any]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for md in _orig_get_filtered_metrics(self, metric_name, namespace, dimensions):
        key = (md.namespace, md.name, tuple(sorted((d.name, d.value) for d in md.dimensions)))
        if key not in seen:
            seen.add(key)
            out.append(md)
    return out


# --- metric math ------------------------------------------------------------------------------

Series = dict[datetime, float]
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


class _Parser:
    def __init__(self, text: str, series: dict[str, Series], timeline: list[datetime]):
        self.tokens = []
        for number, name, other in _TOKEN.findall(text):
            if number:
                self.tokens.append(("num", float(number)))
            elif name:
                self.tokens.append(("name", name))
            elif other.strip():
                self.tokens.append(("op", other))
        self.pos = 0
        self.series = series
        self.timeline = timeline

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None or (expected is not None and tok[1] != expected):
            raise ValueError(f"expected {expected or 'a token'}")
        self.pos += 1
        return tok

    def parse(self) -> Any:
        value = self.expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        return value

    def expr(self) -> Any:
        value = self.term()
        while (tok := self.peek()) is not None and tok[1] in ("+", "-"):
            self.take()
            value = _binary(tok[1], value, self.term())
        return value

    def term(self) -> Any:
        value = self.unary()
        while (tok := self.peek()) is not None and tok[1] in ("*", "/"):
            self.take()
            value = _binary(tok[1], value, self.unary())
        return value

    def unary(self) -> Any:
        tok = self.peek()
        if tok is not None and tok[1] == "-":
            self.take()
            return _binary("*", -1.0, self.unary())
        if tok is not None and tok[1] == "+":
            self.take()
            return self.unary()
        return self.atom()

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "num":
            return value
        if kind == "op" and value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "op" and value == "[":
            items = [self.expr()]
            while self.peek() is not None and self.peek()[1] == ",":
                self.take()
                items.append(self.expr())
            self.take("]")
            return items
        if kind == "name":
            if self.peek() is not None and self.peek()[1] == "(":
                self.take("(")
                arg = self.expr()
                self.take(")")
                return _function(value.upper(), arg)
            if value not in self.series:
                raise ValueError(f"unknown metric id {value}")
            return self.series[value]
        raise ValueError(f"unexpected {value!r}")


def _binary(op: str, left: Any, right: Any) -> Any:
    def apply(a: float, b: float) -> float | None:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return None if b == 0 else a / b

    if isinstance(left, list) or isinstance(right, list):
        raise ValueError("arrays are only allowed as function arguments")
    if isinstance(left, dict) and isinstance(right, dict):
        out = {t: apply(left[t], right[t]) for t in left if t in right}
    elif isinstance(left, dict):
        out = {t: apply(v, right) for t, v in left.items()}
    elif isinstance(right, dict):
        out = {t: apply(left, v) for t, v in right.items()}
    else:
        return apply(left, right)
    return {t: v for t, v in out.items() if v is not None}


def _function(name: str, arg: Any) -> Any:
    if name == "ABS":
        if isinstance(arg, dict):
            return {t: abs(v) for t, v in arg.items()}
        if isinstance(arg, (int, float)):
            return abs(arg)
        raise ValueError("ABS takes one time series")
    aggregate = {"SUM": sum, "MIN": min, "MAX": max, "AVG": lambda vs: sum(vs) / len(vs)}.get(name)
    if aggregate is None:
        raise ValueError(f"unsupported function {name}")
    items = arg if isinstance(arg, list) else [arg]
    series = [s for s in items if isinstance(s, dict)]
    if not series:
        return aggregate([float(x) for x in items])
    stamps = sorted({t for s in series for t in s})
    out = {}
    for t in stamps:
        values = [s[t] for s in series if t in s] + [float(x) for x in items if not isinstance(x, dict)]
        out[t] = aggregate(values)
    return out


def round_start(start: datetime) -> datetime:
    from datetime import timedelta, timezone

    now = datetime.now(timezone.utc) if start.tzinfo else datetime.utcnow()
    age = now - start
    step = 60 if age < timedelta(days=15) else (300 if age < timedelta(days=63) else 3600)
    seconds = start.minute * 60 + start.second
    return start.replace(minute=0, second=0, microsecond=0) + timedelta(seconds=seconds - seconds % step)


_orig_get_metric_statistics = cw_models.CloudWatchBackend.get_metric_statistics


def get_metric_statistics(self: cw_models.CloudWatchBackend, namespace: str, metric_name: str, start_time: datetime,
                          end_time: datetime, period: int, stats: list[str], dimensions: list[dict[str, str]],
                          unit: str | None = None) -> list[Any]:
    """moto buckets from the first datum's timestamp; AWS buckets from the (rounded) StartTime."""
    from datetime import timedelta

    start = round_start(start_time).replace(microsecond=0)
    whole = max(int((end_time - start).total_seconds()) + 1, 1)
    # one bucket spanning the whole range gives the datums moto's filters select
    selected = _orig_get_metric_statistics(self, namespace, metric_name, start, end_time, whole, stats, dimensions, unit)
    datums = [md for s in selected for md in s.metric_data]
    wanted = sorted((d["Name"], d.get("Value")) for d in dimensions or [])
    datums = [md for md in datums if sorted((d.name, d.value) for d in md.dimensions) == wanted]
    buckets: dict[int, Any] = {}
    for md in sorted(datums, key=lambda m: m.timestamp):
        index = int((md.timestamp - start).total_seconds()) // period
        bucket = buckets.get(index)
        if bucket is None:
            bucket = buckets[index] = cw_models.Statistics(stats, start + timedelta(seconds=index * period))
        bucket.metric_data.append(md)
        bucket.unit = md.unit
    return [buckets[i] for i in sorted(buckets)]


def get_metric_data(self: cw_models.CloudWatchBackend, queries: list[dict[str, Any]], start_time: datetime,
                    end_time: datetime, scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
    start_time = round_start(start_time)
    stat_queries = [q for q in queries if "MetricStat" in q]
    math_queries = [q for q in queries if "Expression" in q and not q["Expression"].lstrip().upper().startswith("SELECT")]
    insight_queries = [q for q in queries if q not in stat_queries and q not in math_queries]
    computed: dict[str, dict[str, Any]] = {}
    for query in stat_queries:
        _TLS.namespace = query["MetricStat"]["Metric"].get("Namespace")
        try:
            [result] = _orig_get_metric_data(self, [{**query, "ReturnData": True}], start_time, end_time, scan_by)
        finally:
            _TLS.namespace = None
        computed[query["Id"]] = result
    if insight_queries:
        for result in _orig_get_metric_data(self, insight_queries, start_time, end_time, scan_by):
            computed[result["id"]] = result
    series = {qid: dict(zip(r["timestamps"], (float(v) for v in r["values"]))) for qid, r in computed.items()}
    timeline = sorted({t for s in series.values() for t in s})
    for query in math_queries:
        try:
            value = _Parser(query["Expression"], series, timeline).parse()
        except (ValueError, ZeroDivisionError, TypeError) as exc:
            raise ValidationError(f"Error in expression '{query['Id']}': {exc}") from None
        if isinstance(value, list):
            raise ValidationError(f"Error in expression '{query['Id']}': the result must be a time series")
        if not isinstance(value, dict):
            value = {t: float(value) for t in timeline}
        series[query["Id"]] = value
        stamps = sorted(value, reverse=scan_by == "TimestampDescending")
        computed[query["Id"]] = {
            "id": query["Id"], "label": query.get("Label") or query["Id"],
            "values": [value[t] for t in stamps], "timestamps": stamps, "status_code": "Complete",
        }
    out = []
    for query in queries:
        if query.get("ReturnData", True) is False:
            continue
        result = computed.get(query["Id"])
        if result is not None:
            out.append(result)
    return out


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    backend = cw_models.CloudWatchBackend
    backend.get_all_metrics = get_all_metrics
    backend.get_filtered_metrics = get_filtered_metrics
    backend.get_metric_data = get_metric_data
    backend.get_metric_statistics = get_metric_statistics
    _APPLIED = True
