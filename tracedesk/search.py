"""`tracedesk search QUERY`: the traces a query matches, for people and for scripts.

The query selects traces in SQL (``query.sql``); the spans that made each one match are
then picked out by the reference evaluator over that trace's spans, which is cheap for the
few traces a result holds.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

import orjson

from tracedesk.analysis.time_axis import format_duration
from tracedesk.query import Query, QueryError, QuerySpan, matching_spans, parse
from tracedesk.query.sql import TraceQuery
from tracedesk.safe_text import clean
from tracedesk.store.reader import Reader, TraceOrder


@dataclass(frozen=True)
class SearchResult:
    trace_id: str
    root_service_name: str
    root_span_name: str
    start_time_unix_nano: int
    start: str  # ISO 8601, local time with its offset
    duration_ns: int
    span_count: int
    error_count: int
    matched_span_count: int
    matched_span_ids: list[str]


def search(reader: Reader, query: Query, *, since_ns: int | None = None, limit: int = 20,
           order: TraceOrder = TraceOrder.NEWEST) -> list[SearchResult]:
    """The first ``limit`` matching traces in ``order``, with the spans that matched."""
    traces = reader.trace_page(0, limit, order, where=TraceQuery(query, since_ns=since_ns))
    results = []
    for trace in traces:
        spans = [QuerySpan.from_span(s, reader.resource(s.resource_id))
                 for s in reader.spans(trace.trace_id)]
        matched = sorted(matching_spans(query, spans))
        start = datetime.fromtimestamp(trace.start_time_unix_nano / 1e9).astimezone()
        results.append(SearchResult(
            trace.trace_id, trace.root_service_name, trace.root_span_name,
            trace.start_time_unix_nano, start.isoformat(timespec="milliseconds"),
            max(0, trace.duration_ns), trace.span_count, trace.error_count, len(matched),
            matched))
    return results


def query_error_text(text: str, error: QueryError) -> str:
    """The error, the query and a caret under the place it points at."""
    line_start = text.rfind("\n", 0, error.position) + 1
    line_end = text.find("\n", error.position)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    return f"{error.message}\n  {line}\n  {' ' * (error.position - line_start)}^"


def _table(results: list[SearchResult], out: TextIO) -> None:
    if not results:
        print("no matching traces", file=out)
        return
    rows = [(r.trace_id, r.root_service_name, r.root_span_name, r.start[11:23],
             format_duration(r.duration_ns), f"{r.matched_span_count}/{r.span_count}")
            for r in results]
    headers = ("trace id", "root service", "root span", "start", "duration", "matched")
    widths = [max(len(h), *(len(str(row[i])) for row in rows)) for i, h in enumerate(headers)]
    widths[2] = min(widths[2], 40)
    right = {4, 5}

    def line(cells) -> str:
        parts = []
        for i, cell in enumerate(cells):
            text = clean(str(cell))  # telemetry text: no terminal escapes reach the screen
            text = text if len(text) <= widths[i] else text[:widths[i] - 1] + "…"
            parts.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    print(line(headers), file=out)
    for row in rows:
        print(line(row), file=out)


def run_search(db_path: Path, text: str, *, since_seconds: float, limit: int,
               by_duration: bool, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Print the matches; 0 when the search ran (even with no match), 2 for a bad query,
    1 when there is no database."""
    try:
        query = parse(text)
    except QueryError as exc:
        print(f"tracedesk search: {query_error_text(text, exc)}", file=sys.stderr)
        return 2
    if not db_path.exists():
        print(f"tracedesk search: no database at {db_path} (choose one with --db)",
              file=sys.stderr)
        return 1
    since_ns = time.time_ns() - int(since_seconds * 1e9) if since_seconds else None
    reader = Reader(db_path)
    try:
        results = search(reader, query, since_ns=since_ns, limit=limit,
                         order=TraceOrder.SLOWEST if by_duration else TraceOrder.NEWEST)
    finally:
        reader.close()
    if as_json:
        out.write(orjson.dumps([asdict(r) for r in results], option=orjson.OPT_INDENT_2)
                  .decode() + "\n")
    else:
        _table(results, out)
    return 0
