"""Per-trace summaries of one batch's spans, computed where the spans are decoded.

The writer stores these directly for traces it has not seen before (the common case: an
SDK exports whole traces), and recomputes from stored spans only for traces that already
have rows. That keeps the summary work off the writer, which is the busier process.
"""

from __future__ import annotations

from tracedesk.otlp.values import to_json

TRACE_COLUMNS = (
    "trace_id", "start_time_unix_nano", "end_time_unix_nano", "duration_ns",
    "root_service_name", "root_span_name", "root_span_id", "has_root", "span_count",
    "error_count", "services",
)


def _root_key(row: tuple) -> tuple[bool, int]:
    # Parentless spans first, then the earliest: it stands in until the root arrives.
    return row[2] != "", row[6]


def summarize_traces(span_rows: list[tuple]) -> list[tuple]:
    """One TRACE_COLUMNS tuple per trace in ``span_rows`` (rows in SPAN_COLUMNS order)."""
    by_trace: dict[str, dict[str, tuple]] = {}
    for row in span_rows:
        spans = by_trace.get(row[0])
        if spans is None:
            spans = by_trace[row[0]] = {}
        spans[row[1]] = row  # a span repeated in one request counts once; the last wins
    out = []
    for trace_id, spans in by_trace.items():
        rows = spans.values()
        start = min(r[6] for r in rows)
        end = max(r[7] for r in rows)
        root = min(rows, key=_root_key)
        out.append((
            trace_id, start, end, max(0, end - start), root[5], root[3], root[1],
            int(root[2] == ""), len(spans), sum(1 for r in rows if r[9] == 2),
            to_json(sorted({r[5] for r in rows})),
        ))
    return out
