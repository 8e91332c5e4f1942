"""The data `tracedesk bench-views` measures against: the demo shop's spans and log records
over the hour before the build, stored through the real decoder and writer.

The shop writes about one log record per eight spans, so a million of each cannot come
from the same requests. The shop is run as a service sampling its traces: every simulated
request's log records are kept while only some of its traces are (or, when spans are the
larger number, the other way round), chosen so both counts fill at the same pace and so
spread evenly over the hour.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.writer import Writer

WINDOW_NS = 60 * 60 * 10**9  # the data covers the hour before it was built
CHUNK_TRACES = 50  # shop requests per generated batch
COMMIT_ROWS = 50_000
REPORT_ROWS = 100_000


@dataclass(frozen=True)
class ViewsData:
    path: Path
    spans: int
    logs: int
    oldest_ns: int  # the first and last trace start
    newest_ns: int
    red_trace_id: str  # the trace the RED panel is opened from: it starts mid-way
    red_span_id: str  # its root span
    red_operation: str  # "service: span name" of that root span


class _Counts:
    """Stored spans and logs against their targets."""

    def __init__(self, spans: int, logs: int) -> None:
        self.target = (max(1, spans), max(1, logs))
        self.spans = self.logs = 0

    def fraction(self) -> tuple[float, float]:
        return (min(1.0, self.spans / self.target[0]), min(1.0, self.logs / self.target[1]))

    @property
    def progress(self) -> float:
        return min(self.fraction())

    @property
    def done(self) -> bool:
        return self.spans >= self.target[0] and self.logs >= self.target[1]


def build_views_database(path: Path, spans: int, logs: int, seed: int = 13,
                         progress: Callable[[str], None] = lambda _: None) -> ViewsData:
    """Store at least ``spans`` spans and ``logs`` log records of the demo shop, their times
    spread over the hour up to now."""
    writer, resources, shop = Writer(path), ResourceTable(), Shop(seed=seed)
    end_ns = time.time_ns()
    counts = _Counts(spans, logs)
    step = 0.001  # the progress one batch makes: the time it covers (measured as it goes)
    next_commit, next_report = COMMIT_ROWS, REPORT_ROWS
    while not counts.done:
        before = counts.progress
        now = end_ns - int(WINDOW_NS * (1 - before))
        request, span_count, _ = shop.traces_request_for(
            CHUNK_TRACES, now_ns=now, spread_ns=max(1, int(WINDOW_NS * step)))
        log_request, log_count = shop.logs_request(now_ns=now)
        keep_spans, keep_logs = _keep(counts)
        if keep_spans:
            writer.apply(decode(Signal.TRACES, request.SerializeToString(), resources))
            counts.spans += span_count
        if keep_logs:
            writer.apply(decode(Signal.LOGS, log_request.SerializeToString(), resources))
            counts.logs += log_count
        if counts.progress > before:
            step = counts.progress - before
        rows = counts.spans + counts.logs
        if rows >= next_commit:
            writer.commit()
            next_commit += COMMIT_ROWS
        if rows >= next_report:
            progress(f"  {counts.spans:,} spans, {counts.logs:,} log records")
            next_report += REPORT_ROWS
    writer.commit()
    writer.close()
    return describe_views(path)


def _keep(counts: _Counts) -> tuple[bool, bool]:
    """Whether this batch's spans and its log records are stored: each while it is not
    ahead of the other (so both finish together), or until its own target once the other
    is done."""
    spans_at, logs_at = counts.fraction()
    keep_spans = counts.spans < counts.target[0] and (spans_at <= logs_at or logs_at >= 1)
    keep_logs = counts.logs < counts.target[1] and (logs_at <= spans_at or spans_at >= 1)
    return keep_spans, keep_logs


def describe_views(path: Path) -> ViewsData:
    """What a database built by ``build_views_database`` holds (also one kept from before)."""
    conn = sqlite3.connect(path)
    try:
        spans, oldest, newest, traces = conn.execute(
            "SELECT coalesce(sum(span_count), 0), min(start_time_unix_nano), "
            "max(start_time_unix_nano), count(*) FROM traces").fetchone()
        (logs,) = conn.execute("SELECT count(*) FROM logs").fetchone()
        # The median trace by start time: the RED window around it is full of data.
        trace_id, span_id, service, name = conn.execute(
            "SELECT trace_id, root_span_id, root_service_name, root_span_name FROM traces "
            "WHERE has_root ORDER BY start_time_unix_nano LIMIT 1 OFFSET ?",
            (traces // 2,)).fetchone()
    finally:
        conn.close()
    return ViewsData(path, spans, logs, oldest, newest, trace_id, span_id, f"{service}: {name}")
