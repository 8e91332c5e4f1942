"""Clear all data: delete every stored trace, span, log and metric point.

Safe while the receiver's writer process runs: the delete is one transaction that waits
for the writer's current commit (busy_timeout), so the writer and every reader see either
all the data or none of it, and the writer's next batch simply starts afresh. Resources
stay: the writer remembers which resources it has inserted and would not insert them again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tracedesk.store.reader import RowCounts
from tracedesk.store.schema import SchemaError, connect
from tracedesk.store.span_words import forget_all

# Freed pages go back to the file system in chunks, each its own short transaction, so the
# writer is never kept waiting for long.
VACUUM_CHUNK_PAGES = 1024


class ClearError(RuntimeError):
    """The data could not be cleared; the message says why, for the user."""


def clear_all(db_path: Path | str) -> RowCounts:
    """Delete all telemetry in one transaction and return how many rows went."""
    try:
        conn = connect(db_path)
    except (sqlite3.Error, OSError, SchemaError) as exc:
        raise ClearError(_reason(exc)) from exc
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
            # The attribute index goes in one step, not an entry per span.
            forget_all(conn)
            counts = RowCounts(*(conn.execute(f"DELETE FROM {table}").rowcount
                                 for table in ("traces", "spans", "logs", "metric_points")))
            # New spans may take the old rowids: no block may claim them.
            conn.execute("DELETE FROM span_blocks")
            conn.execute("DELETE FROM graph_rollups")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise ClearError(_reason(exc)) from exc
        _release_free_pages(conn)
        return counts
    finally:
        conn.close()


def _release_free_pages(conn: sqlite3.Connection) -> None:
    """Shrink the file by the pages the delete freed (databases with incremental vacuum)."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # 2 = INCREMENTAL
        return
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    while free:
        try:
            # executescript, not execute: execute steps a statement without result columns
            # only once, and incremental_vacuum frees one page per step.
            conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_CHUNK_PAGES})")
        except sqlite3.Error:
            return  # the data is gone already; new data reuses the free pages anyway
        left = conn.execute("PRAGMA freelist_count").fetchone()[0]
        if left >= free:
            return
        free = left


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return "the database is read-only"
    if "locked" in text or "busy" in text:
        return "the database stayed locked by another process; try again"
    return text or type(exc).__name__
