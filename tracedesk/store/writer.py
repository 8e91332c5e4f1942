"""The single writer: applies decoded batches to SQLite and keeps the ``traces`` table current.

The caller groups several batches into one transaction (group commit) and tells their
senders only after ``commit()`` returns. Each batch runs in its own savepoint, so a batch
that fails leaves the others of its transaction intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import orjson

from tracedesk.otlp.batch import (
    LOG_COLUMNS,
    METRIC_COLUMNS,
    RESOURCE_COLUMNS,
    SPAN_COLUMNS,
    DecodedBatch,
)
from tracedesk.otlp.summaries import TRACE_COLUMNS
from tracedesk.otlp.traces import cold_columns
from tracedesk.store.graph_rollups import forget_slices, roll_up_some
from tracedesk.store.schema import connect
from tracedesk.store.span_blocks import record_block
from tracedesk.store.span_words import forget_rows


def _insert(table: str, columns: tuple[str, ...], verb: str = "INSERT") -> str:
    marks = ", ".join("?" * len(columns))
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def json_ids(ids: Iterable[str]) -> str:
    """Hex ids as a JSON array, for ``IN (SELECT value FROM json_each(?))``: one bound
    parameter however many ids (hex needs no escaping)."""
    return '["' + '","'.join(ids) + '"]'


# A span row's JSON columns and its bytes: a batch holds either (see otlp.traces). Each
# statement leaves the other out, to be NULL: binding None costs the sqlite3 module an
# adapter lookup per value, a tenth of a span's insert.
COLD = SPAN_COLUMNS.index("attributes")
RAW = SPAN_COLUMNS.index("raw")
INSERT_SPAN = _insert("spans", (*SPAN_COLUMNS[:RAW], *SPAN_COLUMNS[RAW + 1:], "trace_ref"))
INSERT_DEFERRED_SPAN = _insert("spans", (*SPAN_COLUMNS[:COLD], *SPAN_COLUMNS[RAW:], "trace_ref"))
INSERT_LOG = _insert("logs", LOG_COLUMNS)
INSERT_METRIC = _insert("metric_points", METRIC_COLUMNS)
INSERT_RESOURCE = _insert("resources", RESOURCE_COLUMNS, "INSERT OR IGNORE")
INSERT_TRACE = _insert("traces", (*TRACE_COLUMNS, "seq", "trace_ref"))
START = SPAN_COLUMNS.index("start_time_unix_nano")
SPAN_COUNT = TRACE_COLUMNS.index("span_count")
DEFERRED_SPANS = ("SELECT rowid, raw FROM spans WHERE rowid >= ? AND raw IS NOT NULL "
                  "ORDER BY rowid LIMIT ?")
CONVERT_SPAN = "UPDATE spans SET attributes = ?, events = ?, links = ?, raw = NULL WHERE rowid = ?"
UNINDEXED_SPANS = ("SELECT rowid, coalesce(attributes, span_attributes(raw)) FROM spans "
                   "WHERE rowid > ? ORDER BY rowid LIMIT ?")
EXISTING_TRACES = ("SELECT trace_id, trace_ref FROM traces "
                   "WHERE trace_id IN (SELECT value FROM json_each(?))")
# The stored copies of spans sent again: a JSON array of [trace_ref, span_id] pairs.
STORED_SPANS = ("SELECT s.rowid, s.start_time_unix_nano FROM json_each(?) AS j JOIN spans AS s "
                "ON s.trace_ref = json_extract(j.value, '$[0]') "
                "AND s.span_id = json_extract(j.value, '$[1]')")
DELETE_SPANS = "DELETE FROM spans WHERE rowid IN (SELECT value FROM json_each(?))"

# Recomputes the summary of the given traces (a JSON array of trace_refs) from their
# stored spans. Recomputing (rather than adding up deltas) keeps the row right when spans
# arrive late, out of order, or twice. The root is the parentless span; until it arrives,
# the earliest span stands in.
REFRESH_TRACES = """
INSERT INTO traces (trace_id, start_time_unix_nano, end_time_unix_nano, duration_ns,
                    root_service_name, root_span_name, root_span_id, has_root,
                    span_count, error_count, services, seq, trace_ref)
SELECT a.trace_id, a.first_start, a.last_end, max(0, a.last_end - a.first_start),
       r.service_name, r.name, r.span_id, r.parent_span_id = '',
       a.n, a.errors, a.services, ?2, a.trace_ref
FROM (
    SELECT trace_ref, min(trace_id) AS trace_id, min(start_time_unix_nano) AS first_start,
           max(end_time_unix_nano) AS last_end, count(*) AS n,
           sum(status_code = 2) AS errors,
           json_group_array(DISTINCT service_name) AS services
    FROM spans WHERE trace_ref IN (SELECT value FROM json_each(?1))
    GROUP BY trace_ref
) AS a
JOIN spans AS r ON r.rowid = (
    SELECT rowid FROM spans WHERE trace_ref = a.trace_ref
    ORDER BY parent_span_id != '', start_time_unix_nano LIMIT 1
)
WHERE true
ON CONFLICT (trace_id) DO UPDATE SET
    start_time_unix_nano = excluded.start_time_unix_nano,
    end_time_unix_nano = excluded.end_time_unix_nano,
    duration_ns = excluded.duration_ns,
    root_service_name = excluded.root_service_name,
    root_span_name = excluded.root_span_name,
    root_span_id = excluded.root_span_id,
    has_root = excluded.has_root,
    span_count = excluded.span_count,
    error_count = excluded.error_count,
    services = excluded.services,
    seq = excluded.seq
"""


def _one_of_each(spans: list[tuple]) -> list[tuple]:
    """The spans with each (trace id, span id) once: the last copy, as if sent in turn."""
    return list({(r[0], r[1]): r for r in spans}.values())


class Writer:
    """Owns the one read-write connection. Not thread-safe: one thread drives it."""

    def __init__(self, path: Path | str) -> None:
        self.conn: sqlite3.Connection = connect(path)
        self.seq, self.trace_ref = self._stored_numbers()
        self._known_resources: set[int] = set()
        self._in_tx = False
        # Spans whose attributes, events and links wait in their bytes (see otlp.traces)
        # have rowids from this one on; None when there are none.
        self._deferred_from = self._stored_deferred_from()
        self.has_unindexed = True  # until index_some finds nothing left
        self.has_stale_rollups = True  # until roll_up finds nothing to do

    def begin(self) -> None:
        if not self._in_tx:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            # Another writer (tracedesk import) may have used numbers meanwhile: continue
            # above them, or pollers asking "seq > last seen" would miss changes, and two
            # traces would share a trace_ref.
            seq, trace_ref = self._stored_numbers()
            self.seq, self.trace_ref = max(self.seq, seq), max(self.trace_ref, trace_ref)

    def commit(self) -> None:
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False

    def rollback(self) -> None:
        if self._in_tx:
            self.conn.execute("ROLLBACK")
            self._in_tx = False
            self._deferred_from = self._stored_deferred_from()

    def apply(self, batch: DecodedBatch) -> None:
        """Write one batch inside the open transaction; on error only this batch is undone."""
        self.begin()
        conn = self.conn
        conn.execute("SAVEPOINT batch")
        try:
            fresh = [r for r in batch.resources if r[0] not in self._known_resources]
            if fresh:
                conn.executemany(INSERT_RESOURCE, fresh)
            if batch.spans:
                self._write_spans(batch)
            if batch.logs:
                conn.executemany(INSERT_LOG, batch.logs)
            if batch.metric_points:
                conn.executemany(INSERT_METRIC, batch.metric_points)
        except BaseException:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            raise
        conn.execute("RELEASE batch")
        self._known_resources.update(r[0] for r in fresh)

    def _write_spans(self, batch: DecodedBatch) -> None:
        conn = self.conn
        self.seq += 1
        summaries = batch.traces
        spans = batch.spans
        if sum(t[SPAN_COUNT] for t in summaries) != len(spans):  # the summaries count once
            spans = _one_of_each(spans)
        refs: dict[str, int] = dict(
            conn.execute(EXISTING_TRACES, (json_ids(t[0] for t in summaries),)))
        stored = json_ids(str(ref) for ref in refs.values()) if refs else None
        if refs:  # spans sent again replace theirs
            self._delete_stored_copies(spans, refs)
        new = [t for t in summaries if t[0] not in refs]
        for t in new:
            self.trace_ref += 1
            refs[t[0]] = self.trace_ref
        # New rows take rowids above the largest now (a replaced span at most reuses it).
        top = conn.execute("SELECT coalesce(max(rowid), 0) FROM spans").fetchone()[0]
        deferred = spans[0][RAW] is not None  # a batch is deferred as a whole
        if deferred and self._deferred_from is None:
            self._set_deferred_from(top)  # convert from here
        # If the top rows were deleted, their rowids come again: not indexed any more.
        conn.execute("UPDATE span_words_progress SET indexed_to = ?1 WHERE indexed_to > ?1",
                     (top,))
        if deferred:
            conn.executemany(INSERT_DEFERRED_SPAN,
                             [(*r[:COLD], *r[RAW:], refs[r[0]]) for r in spans])
        else:
            conn.executemany(INSERT_SPAN, [(*r[:RAW], *r[RAW + 1:], refs[r[0]]) for r in spans])
        # From ``top``, not above it: a span replacing the top row may take its rowid.
        last = conn.execute("SELECT max(rowid) FROM spans").fetchone()[0]
        starts = [r[START] for r in spans]
        record_block(conn, max(top, 1), last, starts)
        forget_slices(conn, min(starts), max(starts))
        self.has_unindexed = self.has_stale_rollups = True
        seq = self.seq
        conn.executemany(INSERT_TRACE, [(*t, seq, refs[t[0]]) for t in new])
        if stored:
            conn.execute(REFRESH_TRACES, (stored, seq))

    def _delete_stored_copies(self, spans: list[tuple], refs: dict[str, int]) -> None:
        """Delete the stored spans that these spans of known traces replace, and their
        entries in the attribute index first (it needs their text)."""
        pairs = orjson.dumps([(refs[r[0]], r[1]) for r in spans if r[0] in refs]).decode()
        stored = self.conn.execute(STORED_SPANS, (pairs,)).fetchall()
        rowids = [row[0] for row in stored]
        if rowids:
            # A copy may have started elsewhere than its replacement: its slices change too.
            starts = [row[1] for row in stored]
            forget_slices(self.conn, min(starts), max(starts))
            rowids_json = "[" + ",".join(map(str, rowids)) + "]"
            forget_rows(self.conn, rowids_json)
            self.conn.execute(DELETE_SPANS, (rowids_json,))

    def _stored_numbers(self) -> tuple[int, int]:
        # Two subqueries: each max() is then one step down its index, not a scan.
        return self.conn.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM traces), "
            "(SELECT coalesce(max(trace_ref), 0) FROM traces)").fetchone()

    def _stored_deferred_from(self) -> int | None:
        return self.conn.execute("SELECT min(from_rowid) FROM deferred_spans").fetchone()[0]

    @property
    def has_deferred(self) -> bool:
        return self._deferred_from is not None

    def _set_deferred_from(self, rowid: int | None) -> None:
        self.conn.execute("DELETE FROM deferred_spans")
        if rowid is not None:
            self.conn.execute("INSERT INTO deferred_spans VALUES (?)", (rowid,))
        self._deferred_from = rowid

    def convert_deferred(self, limit: int) -> int:
        """Convert up to ``limit`` deferred spans, oldest first, to JSON columns inside the
        open transaction; the number converted (fewer than ``limit``: none are left)."""
        if self._deferred_from is None:
            return 0
        self.begin()
        rows = self.conn.execute(DEFERRED_SPANS, (self._deferred_from, limit)).fetchall()
        self.conn.executemany(CONVERT_SPAN, [(*cold_columns(raw), rowid) for rowid, raw in rows])
        self._set_deferred_from(rows[-1][0] + 1 if len(rows) == limit else None)
        return len(rows)

    def index_some(self, limit: int) -> int:
        """Add up to ``limit`` spans, in rowid order, to the attribute index inside the
        open transaction; the number added (fewer than ``limit``: all are in it)."""
        self.begin()
        conn = self.conn
        done = conn.execute("SELECT indexed_to FROM span_words_progress").fetchone()[0]
        rows = conn.execute(UNINDEXED_SPANS, (done, limit)).fetchall()
        if rows:
            conn.executemany("INSERT INTO span_words (rowid, attributes) VALUES (?, ?)", rows)
            conn.execute("UPDATE span_words_progress SET indexed_to = ?", (rows[-1][0],))
        self.has_unindexed = len(rows) == limit
        return len(rows)

    def roll_up(self, limit: int) -> int:
        """Store up to ``limit`` closed slices of the service graph (see
        store.graph_rollups) in a transaction of its own; the number stored."""
        self.commit()
        done = roll_up_some(self.conn, limit)
        self.has_stale_rollups = done > 0
        return done

    def close(self) -> None:
        self.commit()
        self.conn.close()
