"""Block ranges of span start times (``span_blocks``, schema 5): how a time window finds its
spans without an index on ``spans.start_time_unix_nano``.

Spans arrive roughly in time order, so the rowids a batch gets cover a narrow span of start
times. The writer records, per batch, its first and last rowid and its earliest and latest
start (as PostgreSQL's BRIN indexes do per block of pages). A window reads only the rowid
ranges whose times overlap it: a range scan of the table's own B-tree. A real index on the
start time would cost every insert a random-order B-tree write (a third of ingest's rate,
measured), a block row costs one small insert per batch.

Rows above the last recorded block are always read, so a span stored by anything that does
not record blocks is never missed; blocks whose rows were deleted only cost an empty range
scan, and retention drops them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

# Ranges closer than this many rowids are read as one: a few extra rows cost less than
# another statement.
MERGE_GAP_ROWS = 4096
LAST_ROWID = 2**63 - 1

RECORD = ("INSERT INTO span_blocks (first_rowid, last_rowid, min_start, max_start) "
          "VALUES (?, ?, ?, ?)")
# A block overlaps [start, end) when it starts before the end and ends at or after the start.
OVERLAPPING = ("SELECT first_rowid, last_rowid FROM span_blocks "
               "WHERE min_start < ? AND max_start >= ? ORDER BY first_rowid")
COVERED_TO = "SELECT coalesce(max(last_rowid), 0) FROM span_blocks"


def record_block(conn: sqlite3.Connection, first_rowid: int, last_rowid: int,
                 starts: Sequence[int]) -> None:
    """Note that rowids ``first_rowid..last_rowid`` hold spans starting within ``starts``."""
    conn.execute(RECORD, (first_rowid, last_rowid, min(starts), max(starts)))


def window_ranges(conn: sqlite3.Connection, start_ns: int, end_ns: int
                  ) -> list[tuple[int, int]]:
    """Inclusive rowid ranges that hold every span starting in ``[start_ns, end_ns)`` (and
    others: the caller still filters by start time), in rowid order."""
    try:
        blocks = conn.execute(OVERLAPPING, (end_ns, start_ns)).fetchall()
    except sqlite3.OperationalError:  # a database of schema 4, opened read-only: no blocks
        return [(0, LAST_ROWID)]
    ranges: list[tuple[int, int]] = []
    for first, last in blocks:
        if ranges and first <= ranges[-1][1] + MERGE_GAP_ROWS:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((first, last))
    covered_to = conn.execute(COVERED_TO).fetchone()[0]
    if ranges and ranges[-1][1] + MERGE_GAP_ROWS >= covered_to:
        ranges[-1] = (ranges[-1][0], LAST_ROWID)
    else:
        ranges.append((covered_to + 1, LAST_ROWID))
    return ranges


def prune_blocks(conn: sqlite3.Connection) -> None:
    """Drop the blocks whose rows are all gone (after retention deleted the oldest spans)."""
    conn.execute("DELETE FROM span_blocks WHERE last_rowid < "
                 "(SELECT coalesce(min(rowid), ?) FROM spans)", (LAST_ROWID,))
