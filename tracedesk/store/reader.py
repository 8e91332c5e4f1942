"""Typed, read-only queries over the database: what the app and commands read.

One ``Reader`` per thread: SQLite connections are cheap, and a worker thread never shares
one with another. Every method returns plain model objects, never rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from tracedesk.analysis.service_graph import ATTRIBUTES as GRAPH_ATTRIBUTES
from tracedesk.analysis.service_graph import GraphSpan
from tracedesk.analysis.span_metrics import SpanSample
from tracedesk.model import Span, TraceSummary
from tracedesk.store.paging import nearer_end, reversed_order
from tracedesk.store.schema import SCHEMA_VERSION, connect
from tracedesk.store.span_blocks import window_ranges
from tracedesk.store.upgrade import stored_version

TRACE_FIELDS = ("trace_id, start_time_unix_nano, end_time_unix_nano, root_service_name, "
                "root_span_name, has_root, span_count, error_count, services, seq")
SPAN_FIELDS = ("trace_id, span_id, parent_span_id, name, kind, service_name, "
               "start_time_unix_nano, end_time_unix_nano, status_code, status_message, "
               "coalesce(attributes, span_attributes(raw)), coalesce(events, span_events(raw)), "
               "coalesce(links, span_links(raw)), resource_id, scope_name, scope_version, "
               "trace_state, flags")
# The spans of a trace are found by its number, trace_ref (see schema 6).
SPANS_OF_TRACE = (f"SELECT {SPAN_FIELDS} FROM spans WHERE trace_ref = "
                  "(SELECT trace_ref FROM traces WHERE trace_id = ?) ORDER BY start_time_unix_nano")
SPAN_OF_TRACE = (f"SELECT {SPAN_FIELDS} FROM spans WHERE trace_ref = "
                 "(SELECT trace_ref FROM traces WHERE trace_id = ?) AND span_id = ?")
# How many distinct peer-attribute answers graph_spans keeps parsed.
PARSED_ATTRIBUTE_SETS = 4096


_START, _DURATION = "start_time_unix_nano", "duration_ns"


class TraceOrder(Enum):
    # Ties by id descending too, so that the index on the column (whose entries end with
    # the id) serves the order as it is, read backwards, with no sort.
    NEWEST = "start_time_unix_nano DESC, trace_id DESC"
    SLOWEST = "duration_ns DESC, trace_id DESC"


@dataclass(frozen=True, slots=True)
class Totals:
    traces: int
    spans: int
    max_seq: int


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """A quick text filter: a trace matches when a service or its root name contains it."""

    text: str = ""

    def sql(self) -> tuple[str, tuple]:
        if not self.text:
            return "", ()
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        return (" WHERE (root_span_name LIKE ?1 ESCAPE '\\' OR services LIKE ?1 ESCAPE '\\')",
                (pattern,))


def _summary(row: tuple) -> TraceSummary:
    return TraceSummary(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7],
                        orjson.loads(row[8]), row[9])


def _span(row: tuple) -> Span:
    return Span(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                orjson.loads(row[10]), orjson.loads(row[11]), orjson.loads(row[12]), row[13],
                row[14], row[15], row[16], row[17])

@dataclass(frozen=True, slots=True)
class RowCounts:
    traces: int
    spans: int
    logs: int
    metric_points: int

    @property
    def total(self) -> int:
        return self.traces + self.spans + self.logs + self.metric_points



def _migrated(path: Path) -> Path:
    """The path, once its schema is this tracedesk's: an empty database is created so that
    there is something to read, and an older one is migrated (the queries need its
    columns). A file that cannot be written is read as it is."""
    if path.exists():
        version = stored_version(path)
        if version is None or version >= SCHEMA_VERSION:
            return path  # current, or not a database (reading it says so)
    try:
        connect(path).close()
    except (sqlite3.Error, OSError):
        if not path.exists():
            raise
    return path


class Reader:
    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        self.conn: sqlite3.Connection = connect(_migrated(path), readonly=True)
        self.path = path

    def close(self) -> None:
        self.conn.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits: cheap to poll."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def totals(self) -> Totals:
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(span_count), 0), coalesce(max(seq), 0) FROM traces"
        ).fetchone()
        return Totals(*row)

    def trace_count(self, where: TraceFilter = TraceFilter()) -> int:
        clause, args = where.sql()
        return self.conn.execute(f"SELECT count(*) FROM traces{clause}", args).fetchone()[0]

    def trace_page(self, offset: int, limit: int, order: TraceOrder = TraceOrder.NEWEST,
                   where: TraceFilter = TraceFilter(), total: int | None = None
                   ) -> list[TraceSummary]:
        """Rows ``[offset, offset + limit)`` of the list; with the list's ``total``, a page
        past the middle is read from the end (see ``paging``)."""
        clause, args = where.sql()
        backwards, skip, take = nearer_end(offset, limit, total)
        inner = reversed_order(order.value) if backwards else order.value
        # Skip rows in the index alone, then read only the page's rows: reading every
        # skipped row made the last page of 100k traces take ~220 ms.
        rows = self.conn.execute(
            f"SELECT {TRACE_FIELDS} FROM traces WHERE trace_id IN ("
            f"SELECT trace_id FROM traces{clause} ORDER BY {inner} "
            f"LIMIT {int(take)} OFFSET {int(skip)}) ORDER BY {order.value}", args)
        return [_summary(r) for r in rows]

    def trace(self, trace_id: str) -> TraceSummary | None:
        row = self.conn.execute(f"SELECT {TRACE_FIELDS} FROM traces WHERE trace_id = ?",
                                (trace_id,)).fetchone()
        return _summary(row) if row else None

    def spans(self, trace_id: str) -> list[Span]:
        rows = self.conn.execute(SPANS_OF_TRACE, (trace_id,))
        return [_span(r) for r in rows]

    def resource(self, resource_id: int) -> dict[str, Any]:
        """The resource's attributes ({} if it is not stored)."""
        row = self.conn.execute("SELECT attributes FROM resources WHERE resource_id = ?",
                                (resource_id,)).fetchone()
        return orjson.loads(row[0]) if row else {}

    def span(self, trace_id: str, span_id: str) -> Span | None:
        row = self.conn.execute(SPAN_OF_TRACE, (trace_id, span_id)).fetchone()
        return _span(row) if row else None

    def position(self, trace: TraceSummary, order: TraceOrder = TraceOrder.NEWEST,
                 where: TraceFilter = TraceFilter()) -> int:
        """How many traces come before ``trace`` in ``order``: its row in the list."""
        column, value = ((_START, trace.start_time_unix_nano) if order is TraceOrder.NEWEST
                         else (_DURATION, trace.duration_ns))
        clause, args = where.sql()
        joiner = " AND" if clause else " WHERE"
        return self.conn.execute(
            f"SELECT count(*) FROM traces{clause}{joiner} "
            f"({column} > ? OR ({column} = ? AND trace_id > ?))",
            (*args, value, value, trace.trace_id)).fetchone()[0]

    def traces_by_id_prefix(self, prefix: str, limit: int = 10) -> list[TraceSummary]:
        """Traces whose id starts with ``prefix`` (lowercase hex), in id order.

        A range on the primary key, so it costs a few page reads however many traces."""
        # Ids are lowercase hex, so every id with the prefix sorts below prefix + "g".
        rows = self.conn.execute(
            f"SELECT {TRACE_FIELDS} FROM traces WHERE trace_id >= ?1 AND trace_id < ?1 || 'g' "
            f"ORDER BY trace_id LIMIT {int(limit)}", (prefix,))
        return [_summary(r) for r in rows]

    def service_names(self, limit: int = 1000) -> list[str]:
        """Distinct services that appear in stored traces, sorted case-insensitively."""
        # One pass over the traces' service lists: tens of milliseconds for 100k traces,
        # where a DISTINCT over spans (no index on service_name) reads every span.
        rows = self.conn.execute(
            "SELECT DISTINCT s.value FROM traces, json_each(traces.services) AS s "
            f"LIMIT {int(limit)}")
        return sorted((r[0] for r in rows if isinstance(r[0], str)),
                      key=lambda name: (name.casefold(), name))

    def row_counts(self) -> RowCounts:
        """How many rows each kind of telemetry has (what clearing would delete)."""
        row = self.conn.execute(
            "SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM spans), "
            "(SELECT count(*) FROM logs), (SELECT count(*) FROM metric_points)").fetchone()
        return RowCounts(*row)

    def span_samples(self, start_ns: int, end_ns: int, service: str | None = None,
                     name: str | None = None, kind: int | None = None) -> list[SpanSample]:
        """Spans that start in ``[start_ns, end_ns)``, as span-metrics samples (one SELECT),
        optionally only one service's, span name's or kind's."""
        where = ""
        args: list[Any] = []
        for column, value in (("service_name", service), ("name", name), ("kind", kind)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        rows = spans_in_window(
            self.conn, "SELECT service_name, name, kind, start_time_unix_nano, duration_ns, "
            "status_code FROM spans", where, args, start_ns, end_ns)
        # tuple.__new__ makes each row a SpanSample in C: no Python call per row.
        return list(map(partial(tuple.__new__, SpanSample), rows))

    def graph_spans(self, start_ns: int, end_ns: int) -> list[GraphSpan]:
        """CLIENT, SERVER, PRODUCER and CONSUMER spans that start in ``[start_ns, end_ns)``,
        with the attributes the service graph reads (one SELECT)."""
        return graph_spans(self.conn, start_ns, end_ns)

    def newest_trace_start(self) -> int | None:
        """The start time of the newest trace (from the index: no scan)."""
        return self.conn.execute("SELECT max(start_time_unix_nano) FROM traces").fetchone()[0]

    def attribute_keys(self, sample: int = 2000, limit: int = 500
                       ) -> tuple[list[str], list[str]]:
        """Attribute names, for completion: those of the ``sample`` most recently stored
        spans, and those of the stored resources (each sorted, at most ``limit``)."""
        span_keys = [row[0] for row in self.conn.execute(
            "SELECT DISTINCT j.key FROM (SELECT coalesce(attributes, span_attributes(raw)) "
            "AS a FROM spans ORDER BY rowid DESC LIMIT ?) AS s, json_each(s.a) AS j "
            "ORDER BY j.key LIMIT ?", (sample, limit))]
        resource_keys = [row[0] for row in self.conn.execute(
            "SELECT DISTINCT j.key FROM (SELECT attributes FROM resources "
            "ORDER BY resource_id DESC LIMIT ?) AS r, json_each(r.attributes) AS j "
            "ORDER BY j.key LIMIT ?", (sample, limit))]
        return span_keys, resource_keys

    def attribute_values(self, key: str, *, resource: bool = False, sample: int = 2000,
                         limit: int = 100) -> list[str]:
        """The text values of attribute ``key`` among the ``sample`` most recent spans (or
        the stored resources), most frequent first, for completion."""
        source = ("SELECT attributes AS a FROM resources ORDER BY resource_id DESC LIMIT ?"
                  if resource else
                  "SELECT coalesce(attributes, span_attributes(raw)) AS a FROM spans "
                  "ORDER BY rowid DESC LIMIT ?")
        rows = self.conn.execute(
            f"SELECT j.value FROM ({source}) AS s, json_each(s.a) AS j "
            "WHERE j.key = ? AND j.type = 'text' GROUP BY j.value "
            "ORDER BY count(*) DESC, j.value LIMIT ?", (sample, key, limit))
        return [row[0] for row in rows]


def graph_spans(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> list[GraphSpan]:
    """CLIENT, SERVER, PRODUCER and CONSUMER spans that start in ``[start_ns, end_ns)``,
    with the attributes the service graph reads (one SELECT)."""
    # One json_extract with every path parses the attributes once and answers a JSON
    # array: about half the time of one call per attribute. A server span with a parent
    # needs no attributes (only roots are named from theirs).
    paths = ", ".join(f"'$.\"{key}\"'" for key in GRAPH_ATTRIBUTES)
    rows = spans_in_window(
        conn,
        "SELECT trace_id, span_id, parent_span_id, service_name, kind, "
        "start_time_unix_nano, duration_ns, status_code, "
        "CASE WHEN kind = 2 AND parent_span_id != '' THEN NULL "
        f"ELSE json_extract(coalesce(attributes, span_attributes(raw)), {paths}) END, "
        "CASE WHEN kind = 5 THEN nullif(coalesce(links, span_links(raw)), '[]') END "
        "FROM spans", " AND kind BETWEEN 2 AND 5", [], start_ns, end_ns)
    new, loads = tuple.__new__, orjson.loads
    # Spans of one operation carry the same peer attributes, so a window holds only a
    # few hundred distinct answers: each is parsed once (bounded, in case it is not so).
    parsed: dict[str | None, tuple] = {None: (None,) * len(GRAPH_ATTRIBUTES)}
    out = []
    for row in rows:
        attrs = parsed.get(row[8])
        if attrs is None:
            attrs = tuple(loads(row[8]))
            if len(parsed) < PARSED_ATTRIBUTE_SETS:
                parsed[row[8]] = attrs
        links = row[9]
        if links is not None:  # a consumer's links: (trace id, span id) pairs
            links = tuple((link.get("trace_id", ""), link.get("span_id", ""))
                          for link in loads(links) if isinstance(link, dict))
        out.append(new(GraphSpan, (*row[:8], *attrs, links)))
    return out


def spans_in_window(conn: sqlite3.Connection, select: str, where: str, args: list[Any],
                    start_ns: int, end_ns: int) -> Iterator[tuple]:
    """Rows of ``select`` for spans starting in ``[start_ns, end_ns)`` that also meet
    ``where`` (`` AND ...``), read range by range from the block ranges that can hold
    them (see store.span_blocks)."""
    sql = (f"{select} WHERE rowid BETWEEN ? AND ? AND start_time_unix_nano >= ? "
           f"AND start_time_unix_nano < ?{where}")
    for first, last in window_ranges(conn, start_ns, end_ns):
        yield from conn.execute(sql, (first, last, start_ns, end_ns, *args))

