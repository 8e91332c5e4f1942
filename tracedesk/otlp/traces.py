"""ExportTraceServiceRequest → span rows. The hottest loop in tracedesk: keep it lean.

Converting attributes, events and links to JSON is most of a span's decoding cost (about
two thirds). When the receiver is busy it *defers* that work: the row keeps the span's own
protobuf bytes (``raw``) with NULL attributes, events and links, and the writer converts
them once it is idle (:func:`cold_columns`). Readers see the same values either way.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tracedesk.otlp.batch import DecodedBatch
from tracedesk.otlp.summaries import summarize_traces
from tracedesk.otlp.values import (
    MAX_INT64,
    ResourceTable,
    attributes_dict,
    attributes_json,
    to_json,
)

# All-zero ids are invalid; comparing with them is far cheaper than any() over the bytes.
_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)


def _events_json(events: Any) -> str:
    if not events:
        return "[]"
    out = []
    for e in events:
        ev: dict[str, Any] = {"time_unix_nano": e.time_unix_nano, "name": e.name}
        if e.attributes:
            ev["attributes"] = attributes_dict(e.attributes)
        if e.dropped_attributes_count:
            ev["dropped_attributes_count"] = e.dropped_attributes_count
        out.append(ev)
    return to_json(out)


def _links_json(links: Any) -> str:
    if not links:
        return "[]"
    out = []
    for link in links:
        item: dict[str, Any] = {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
        if link.trace_state:
            item["trace_state"] = link.trace_state
        if link.attributes:
            item["attributes"] = attributes_dict(link.attributes)
        if link.flags:
            item["flags"] = link.flags
        out.append(item)
    return to_json(out)


def cold_columns(raw: bytes) -> tuple[str, str, str]:
    """The attributes, events and links JSON of a span stored deferred, from its bytes."""
    span = Span.FromString(raw)
    return attributes_json(span.attributes), _events_json(span.events), _links_json(span.links)


def decode_traces(
    request: ExportTraceServiceRequest, resources: ResourceTable,
    batch: DecodedBatch | None = None, *, defer: bool = False,
) -> DecodedBatch:
    """Span rows for every valid span; with ``defer``, attributes, events and links stay
    in the span's bytes for the writer to convert later."""
    batch = batch if batch is not None else DecodedBatch()
    rows = batch.spans
    append = rows.append
    for rs in request.resource_spans:
        res = resources.lookup(rs.resource, rs.schema_url)
        resource_id, service = res[0], res[1]
        batch.add_resource(res)
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_name, scope_version = scope.name, scope.version
            for s in ss.spans:
                trace_id, span_id, parent = s.trace_id, s.span_id, s.parent_span_id
                if len(trace_id) != 16 or len(span_id) != 8 or (parent and len(parent) != 8):
                    batch.reject(
                        f"span {s.name!r}: invalid ids (trace_id {len(trace_id)} bytes, "
                        f"span_id {len(span_id)} bytes, parent_span_id {len(parent)} bytes; "
                        "want 16, 8 and 0 or 8)"
                    )
                    continue
                if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
                    batch.reject(f"span {s.name!r}: all-zero trace_id or span_id")
                    continue
                start = s.start_time_unix_nano
                end = s.end_time_unix_nano
                if start > MAX_INT64 or end > MAX_INT64:
                    batch.reject(f"span {s.name!r}: start or end time over 2**63 - 1 ns")
                    continue
                status = s.status
                if defer:
                    cold: tuple = (None, None, None, s.SerializeToString())
                else:
                    cold = (attributes_json(s.attributes), _events_json(s.events),
                            _links_json(s.links), None)
                append((
                    trace_id.hex(), span_id.hex(), parent.hex(), s.name, s.kind, service,
                    start, end, end - start if end > start else 0, status.code, status.message,
                    *cold, resource_id, scope_name, scope_version, s.trace_state, s.flags,
                ))
    batch.traces = summarize_traces(rows)
    return batch
