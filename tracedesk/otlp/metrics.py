"""ExportMetricsServiceRequest → metric point rows, one per data point.

Histogram shapes go into the ``buckets`` JSON column:
- histogram: ``{"bounds": [...], "counts": [...]}``
- exponential_histogram: ``{"scale", "zero_count", "zero_threshold",
  "positive": {"offset", "counts"}, "negative": {"offset", "counts"}}``
- summary: ``{"quantiles": [[q, value], ...]}``
"""

from __future__ import annotations

import math
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tracedesk.otlp.batch import DecodedBatch
from tracedesk.otlp.values import (
    MAX_INT64,
    ResourceTable,
    attributes_dict,
    attributes_json,
    to_json,
)

_TEMPORALITY = {1: "delta", 2: "cumulative"}


def _number(point: Any) -> float | int | None:
    which = point.WhichOneof("value")
    if which == "as_int":
        return point.as_int
    if which == "as_double":
        d = point.as_double
        return d if math.isfinite(d) else None
    return None


def _exemplars_json(exemplars: Any) -> str:
    if not exemplars:
        return "[]"
    out = []
    for e in exemplars:
        item: dict[str, Any] = {"time_unix_nano": e.time_unix_nano, "value": _number(e)}
        if e.trace_id:
            item["trace_id"] = e.trace_id.hex()
        if e.span_id:
            item["span_id"] = e.span_id.hex()
        if e.filtered_attributes:
            item["attributes"] = attributes_dict(e.filtered_attributes)
        out.append(item)
    return to_json(out)


def _optional(point: Any, name: str) -> float | None:
    return getattr(point, name) if point.HasField(name) else None


def _shape(kind: str, p: Any) -> tuple:
    """(value, count, sum, min, max, buckets JSON) of one data point."""
    if kind in ("gauge", "sum"):
        return _number(p), None, None, None, None, None
    if kind == "summary":
        quantiles = [[q.quantile, q.value] for q in p.quantile_values]
        return None, p.count, p.sum, None, None, to_json({"quantiles": quantiles})
    if kind == "histogram":
        buckets = {"bounds": list(p.explicit_bounds), "counts": list(p.bucket_counts)}
    else:  # exponential_histogram
        buckets = {
            "scale": p.scale, "zero_count": p.zero_count, "zero_threshold": p.zero_threshold,
            "positive": {"offset": p.positive.offset, "counts": list(p.positive.bucket_counts)},
            "negative": {"offset": p.negative.offset, "counts": list(p.negative.bucket_counts)},
        }
    return (None, p.count, _optional(p, "sum"), _optional(p, "min"), _optional(p, "max"),
            to_json(buckets))


def decode_metrics(
    request: ExportMetricsServiceRequest,
    resources: ResourceTable,
    batch: DecodedBatch | None = None,
) -> DecodedBatch:
    batch = batch if batch is not None else DecodedBatch()
    rows = batch.metric_points
    for rm in request.resource_metrics:
        res = resources.lookup(rm.resource, rm.schema_url)
        resource_id, service = res[0], res[1]
        batch.add_resource(res)
        for sm in rm.scope_metrics:
            scope_name = sm.scope.name
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    batch.reject(f"metric {m.name!r}: no data (not gauge, sum, histogram, "
                                 "exponential histogram or summary)")
                    continue
                data = getattr(m, kind)
                head = (m.name, m.description, m.unit, kind,
                        _TEMPORALITY.get(getattr(data, "aggregation_temporality", 0)),
                        int(data.is_monotonic) if kind == "sum" else None,
                        service, resource_id, scope_name)
                for p in data.data_points:
                    shape = _shape(kind, p)
                    if max(p.start_time_unix_nano, p.time_unix_nano, shape[1] or 0) > MAX_INT64:
                        batch.reject(f"metric {m.name!r}: a time or count over 2**63 - 1")
                        continue
                    rows.append((
                        *head, p.start_time_unix_nano, p.time_unix_nano, *shape,
                        attributes_json(p.attributes),
                        _exemplars_json(getattr(p, "exemplars", ())), p.flags,
                    ))
    return batch
