"""Service-graph rollups (``graph_rollups``, schema 8): the graph's counts per 10-second
slice, so that a window of the Services screen reads a row per slice for its past and
pairs spans only for its last minute or so.

The writer computes a slice in a quiet moment once it is closed: once the newest stored
trace starts ``CLOSE_MARGIN_NS`` after the slice ends, which is the pairing margin and 10 s
for spans that arrive late (exporters batch every few seconds; a parent is exported when
it ends). A span that comes later still only costs its slices a second pairing: storing
spans deletes the rollups of every slice they can change (``forget_slices``), as pairing
reads ``PAIRING_MARGIN_NS`` either side of a slice. Only slices within the longest window
before the newest trace are kept. Retention and clearing delete rollups with the spans.
So a rollup always says what pairing the stored spans would say, or is absent, and absent
slices are paired from spans.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from tracedesk.analysis.graph_counts import GraphCounts, sliced_graph_counts
from tracedesk.store.reader import graph_spans
from tracedesk.store.span_blocks import window_ranges

SLICE_NS = 10 * 10**9
# Calls are counted when they start inside a range, but their other side is read from a
# little before and after it: a server span starts after its client, a consumer after its
# producer. Tempo pairs the two sides if they arrive within 10 s (its ``wait``) too.
PAIRING_MARGIN_NS = 10 * 10**9
CLOSE_MARGIN_NS = PAIRING_MARGIN_NS + 10 * 10**9
# The Services screen's longest window, and the slice its start may fall in.
HORIZON_NS = 60 * 60 * 10**9 + SLICE_NS
# Slices paired per quiet moment of the writer: a minute of spans and its margins, or
# fewer where they hold more rows than this (about 150 ms and 20 MB of pairing). A slice
# whose pairing alone reads more (over ~1,600 spans/s) is marked too dense: a flood is not
# rolled up, so the writer's quiet moments stay short and its memory bounded; its window
# is paired from spans, as without rollups.
STEP_SLICES = 6
MAX_SCANNED_ROWS = 50_000
TOO_DENSE = b""

NEWEST_TRACE_START = "SELECT max(start_time_unix_nano) FROM traces"
LATEST_SEQ = "SELECT coalesce(max(seq), 0) FROM traces"
STORED = "SELECT slice_start FROM graph_rollups WHERE slice_start >= ? AND slice_start < ?"
LOAD = ("SELECT slice_start, counts FROM graph_rollups "
        "WHERE slice_start >= ? AND slice_start < ?")
SAVE = "INSERT OR REPLACE INTO graph_rollups (slice_start, counts) VALUES (?, ?)"
PRUNE = "DELETE FROM graph_rollups WHERE slice_start < ?"
FORGET = "DELETE FROM graph_rollups WHERE slice_start >= ? AND slice_start <= ?"


def slice_of(ns: int) -> int:
    return ns - ns % SLICE_NS


def forget_slices(conn: sqlite3.Connection, first_start_ns: int, last_start_ns: int) -> None:
    """Delete the rollups that spans starting in ``[first, last]`` can change."""
    conn.execute(FORGET, (slice_of(first_start_ns - PAIRING_MARGIN_NS),
                          slice_of(last_start_ns + PAIRING_MARGIN_NS)))


def _runs(starts: list[int]) -> Iterator[tuple[int, int]]:
    """Ascending slice starts as ``[first, end)`` runs of adjacent slices."""
    run_start = previous = None
    for at in starts:
        if previous is not None and at != previous + SLICE_NS:
            yield run_start, previous + SLICE_NS
            run_start = None
        if run_start is None:
            run_start = at
        previous = at
    if run_start is not None:
        yield run_start, previous + SLICE_NS


def _paired(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> dict[int, GraphCounts]:
    spans = graph_spans(conn, start_ns - PAIRING_MARGIN_NS, end_ns + PAIRING_MARGIN_NS)
    return sliced_graph_counts(spans, start_ns, end_ns, SLICE_NS, max_gap_ns=PAIRING_MARGIN_NS)


def _stored_slices(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> set[int]:
    try:
        return {row[0] for row in conn.execute(STORED, (start_ns, end_ns))}
    except sqlite3.OperationalError:  # an older schema, opened read-only: none stored
        return set()


def closed_range(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """``[start, end)`` of the closed slices within the horizon (None: no traces)."""
    newest = conn.execute(NEWEST_TRACE_START).fetchone()[0]
    if newest is None:
        return None
    # Slices that end by the newest start less the margin are closed.
    return slice_of(newest - HORIZON_NS), slice_of(newest - CLOSE_MARGIN_NS)


def stale_slices(conn: sqlite3.Connection) -> list[int]:
    """The closed slices within the horizon that have no rollup, ascending."""
    closed = closed_range(conn)
    return [] if closed is None else _stale(conn, closed)


def _stale(conn: sqlite3.Connection, closed: tuple[int, int]) -> list[int]:
    stored = _stored_slices(conn, *closed)
    return [at for at in range(*closed, SLICE_NS) if at not in stored]


def _scanned_rows(conn: sqlite3.Connection, start_ns: int, end_ns: int, top: int) -> int:
    """How many span rows pairing ``[start_ns, end_ns)`` reads (its block ranges' rows)."""
    return sum(min(last, top) - first + 1 for first, last in
               window_ranges(conn, start_ns - PAIRING_MARGIN_NS, end_ns + PAIRING_MARGIN_NS)
               if first <= top)


def roll_up_some(conn: sqlite3.Connection, max_slices: int = STEP_SLICES) -> int:
    """Compute and store up to ``max_slices`` stale slices (the newest first: what the
    screen shows first), outside any open transaction; how many were stored (0: all are
    current, or another writer stored spans meanwhile and they wait for a later round).
    A step reads at most ``MAX_SCANNED_ROWS`` span rows; a slice that alone needs more is
    stored as too dense (``TOO_DENSE``), to be paired from spans when shown."""
    closed = closed_range(conn)
    stale = [] if closed is None else _stale(conn, closed)
    if closed is None or not stale:
        return 0
    first, end = list(_runs(stale))[-1]
    first = max(first, end - max_slices * SLICE_NS)
    top = conn.execute("SELECT coalesce(max(rowid), 0) FROM spans").fetchone()[0]
    start = end - SLICE_NS
    while start > first and _scanned_rows(conn, start - SLICE_NS, end, top) <= MAX_SCANNED_ROWS:
        start -= SLICE_NS
    seq = conn.execute(LATEST_SEQ).fetchone()[0]
    if _scanned_rows(conn, start, end, top) > MAX_SCANNED_ROWS:
        rows = [(start, TOO_DENSE)]
    else:
        rows = [(at, counts.to_json()) for at, counts in _paired(conn, start, end).items()]
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Spans stored meanwhile (by another writer, such as an import) may have changed
        # what was read: leave the slices for the next round.
        if conn.execute(LATEST_SEQ).fetchone()[0] == seq:
            conn.executemany(SAVE, rows)
        else:
            rows = []
        # Slices before the horizon are no longer shown: they would only take room.
        conn.execute(PRUNE, (closed[0],))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(rows)


def window_counts(conn: sqlite3.Connection, start_ns: int, end_ns: int) -> GraphCounts:
    """The graph's counts for ``[start_ns, end_ns)``, ``start_ns`` on a slice boundary: the
    stored rollups, and the other slices (the open ones at the end) paired from spans."""
    if start_ns % SLICE_NS:
        raise ValueError("the window must start on a slice boundary")
    total = GraphCounts()
    try:
        rows = conn.execute(LOAD, (start_ns, slice_of(end_ns))).fetchall()
    except sqlite3.OperationalError:  # an older schema, opened read-only
        rows = []
    stored = set()
    for at, counts in rows:
        if at + SLICE_NS <= end_ns and counts != TOO_DENSE:
            total.merge(GraphCounts.from_json(counts))
            stored.add(at)
    missing = [at for at in range(start_ns, end_ns, SLICE_NS) if at not in stored]
    for first, end in _runs(missing):
        for counts in _paired(conn, first, min(end, end_ns)).values():
            total.merge(counts)
    return total
