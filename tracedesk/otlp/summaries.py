"""Per-trace summaries of one batch's spans, computed where the spans are decoded.

The writer stores these directly for traces it has not seen before (the common case: an
SDK exports whole traces), and recomputes from stored spans only for traces that already
have rows. That keeps the summary work off the writer, which is the busier process.
"""

from __future__ import annotations

from operator import itemgetter

from tracedesk.otlp.values import to_json

TRACE_COLUMNS = (
    "trace_id", "start_time_unix_nano", "end_time_unix_nano", "duration_ns",
    "root_service_name", "root_span_name", "root_span_id", "has_root", "span_count",
    "error_count", "services",
)
_START, _END, _STATUS, _SERVICE = itemgetter(6), itemgetter(7), itemgetter(9), itemgetter(5)


def summarize_traces(span_rows: list[tuple]) -> list[tuple]:
    """One TRACE_COLUMNS tuple per trace in ``span_rows`` (rows in SPAN_COLUMNS order)."""
    by_trace: dict[str, dict[str, tuple]] = {}
    for row in span_rows:
        spans = by_trace.get(row[0])
        if spans is None:
            spans = by_trace[row[0]] = {}
        spans[row[1]] = row  # a span repeated in one request counts once; the last wins
    out = []
    # itemgetter, map and list.count run in C: this is per span of every request.
    for trace_id, spans in by_trace.items():
        rows = list(spans.values())
        start = min(map(_START, rows))
        end = max(map(_END, rows))
        # The parentless span (the earliest, if several), else the earliest: it stands in
        # until the root arrives.
        roots = [r for r in rows if r[2] == ""]
        root = min(roots or rows, key=_START)
        out.append((
            trace_id, start, end, max(0, end - start), root[5], root[3], root[1],
            int(root[2] == ""), len(rows), list(map(_STATUS, rows)).count(2),
            to_json(sorted(set(map(_SERVICE, rows)))),
        ))
    return out
