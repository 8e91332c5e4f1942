"""Retention: keeps the database within its age, span-count and size limits.

Runs inside the writer process between commits, in small chunks (a few hundred traces per
transaction) so that ingest never waits long. Whole traces go, oldest first, with their
logs; logs and metric points also age out by time on their own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from tracedesk.store.graph_rollups import forget_slices
from tracedesk.store.span_blocks import prune_blocks
from tracedesk.store.span_words import forget_traces
from tracedesk.store.writer import json_ids

CHUNK_TRACES = 500
CHUNK_ROWS = 5000
CHECK_EVERY_SECONDS = 5.0
# Evict down to this fraction of a count or size limit, so eviction runs now and then in
# bursts rather than for every new trace once the limit is reached.
LOW_WATER = 0.9


@dataclass(frozen=True)
class RetentionLimits:
    max_age_seconds: float = 0.0  # 0 = no limit
    max_spans: int = 0
    max_db_bytes: int = 0


class Retention:
    def __init__(self, conn: sqlite3.Connection, limits: RetentionLimits,
                 clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.limits = limits
        self.clock = clock
        self._next_check = 0.0
        self.evicted_traces = 0

    def tick(self) -> None:
        """Called by the writer when no transaction is open; does at most one chunk."""
        now = time.monotonic()
        if now < self._next_check:
            return
        more = self.run_chunk()
        # While over a limit, keep going soon; otherwise check again later.
        self._next_check = now + (0.05 if more else CHECK_EVERY_SECONDS)

    def run_chunk(self) -> bool:
        """Evict one chunk if over a limit; True if more eviction is still needed."""
        more = False
        if self.limits.max_age_seconds:
            cutoff = int((self.clock() - self.limits.max_age_seconds) * 1e9)
            more |= self._evict_traces_before(cutoff)
            more |= self._delete_rows("logs", "log_id", cutoff)
            more |= self._delete_rows("metric_points", "point_id", cutoff)
        if self.limits.max_spans:
            more |= self._enforce_span_limit()
        if self.limits.max_db_bytes:
            more |= self._enforce_size_limit()
        return more

    def used_bytes(self) -> int:
        c = self.conn
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * c.execute("PRAGMA page_size").fetchone()[0]

    def _evict_traces(self, trace_ids: list[str]) -> None:
        if not trace_ids:
            return
        ids = json_ids(trace_ids)
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            refs = json_ids(str(ref) for (ref,) in c.execute(
                "SELECT trace_ref FROM traces WHERE trace_id IN (SELECT value FROM json_each(?))",
                (ids,)))
            forget_traces(c, refs)  # before the spans go: it needs their text
            # The slices that paired these spans (spans of a trace may start after the
            # trace's recorded end, if some end before they start).
            first, last = c.execute(
                "SELECT min(start_time_unix_nano), max(start_time_unix_nano) FROM spans "
                "WHERE trace_ref IN (SELECT value FROM json_each(?))", (refs,)).fetchone()
            if first is not None:
                forget_slices(c, first, last)
            c.execute("DELETE FROM spans WHERE trace_ref IN (SELECT value FROM json_each(?))",
                      (refs,))
            for table in ("logs", "traces"):
                c.execute(f"DELETE FROM {table} WHERE trace_id IN (SELECT value FROM json_each(?))",
                          (ids,))
            prune_blocks(c)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        self.evicted_traces += len(trace_ids)

    def _oldest_traces(self, limit: int, before: int | None = None) -> list[str]:
        sql = "SELECT trace_id FROM traces"
        args: tuple = ()
        if before is not None:
            sql += " WHERE start_time_unix_nano < ?"
            args = (before,)
        sql += " ORDER BY start_time_unix_nano LIMIT ?"
        return [r[0] for r in self.conn.execute(sql, (*args, limit))]

    def _evict_traces_before(self, cutoff: int) -> bool:
        ids = self._oldest_traces(CHUNK_TRACES, before=cutoff)
        self._evict_traces(ids)
        return len(ids) == CHUNK_TRACES

    def _delete_rows(self, table: str, key: str, cutoff: int) -> bool:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute(
                f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
                f"WHERE time_unix_nano < ? ORDER BY time_unix_nano LIMIT {CHUNK_ROWS})", (cutoff,))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return cur.rowcount == CHUNK_ROWS

    def _enforce_span_limit(self) -> bool:
        total = self.conn.execute("SELECT coalesce(sum(span_count), 0) FROM traces").fetchone()[0]
        if total <= self.limits.max_spans:
            return False
        excess = total - int(self.limits.max_spans * LOW_WATER)
        rows = self.conn.execute(
            "SELECT trace_id, span_count FROM traces ORDER BY start_time_unix_nano LIMIT ?",
            (CHUNK_TRACES,)).fetchall()
        chosen, removed = [], 0
        for trace_id, count in rows:
            if removed >= excess:
                break
            chosen.append(trace_id)
            removed += count
        self._evict_traces(chosen)
        return removed < excess

    def _enforce_size_limit(self) -> bool:
        used = self.used_bytes()
        if used <= self.limits.max_db_bytes:
            return False
        # Evict the share of traces by which the file is over its low-water mark.
        share = (used - self.limits.max_db_bytes * LOW_WATER) / used
        traces = self.conn.execute("SELECT count(*) FROM traces").fetchone()[0]
        ids = self._oldest_traces(max(1, min(CHUNK_TRACES, int(traces * share))))
        if ids:
            newest_start = self.conn.execute(
                "SELECT start_time_unix_nano FROM traces WHERE trace_id = ?", (ids[-1],)
            ).fetchone()[0]
            self._evict_traces(ids)
        else:
            newest_start = int(self.clock() * 1e9)
        # Logs and metric points as old as the evicted traces go with them.
        self._delete_rows("logs", "log_id", newest_start)
        self._delete_rows("metric_points", "point_id", newest_start)
        self._release_free_pages()
        return self.used_bytes() > self.limits.max_db_bytes

    def _release_free_pages(self) -> None:
        # Only shrinks the file when the database was created with auto_vacuum=INCREMENTAL.
        self.conn.execute("PRAGMA incremental_vacuum(2000)").fetchall()
