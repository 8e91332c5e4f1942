"""Time windows over spans read through the block ranges (store.span_blocks): they find
exactly the spans a full scan finds, and skip the rowids of other times."""

from __future__ import annotations

import random
import sqlite3
import time

import pytest
from otlp_builders import make_span, traces_request

from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.clear import clear_all
from tracedesk.store.reader import Reader
from tracedesk.store.retention import Retention, RetentionLimits
from tracedesk.store.schema import MIGRATIONS, SCHEMA_VERSION, connect
from tracedesk.store.span_blocks import window_ranges
from tracedesk.store.writer import Writer

MS = 1_000_000
MINUTE_MS = 60_000
BASE = time.time_ns() - 3 * 3600 * 10**9


@pytest.fixture
def db(tmp_path):
    return tmp_path / "blocks.db"


def write(writer: Writer, spans) -> None:
    body = traces_request({"svc": spans}).SerializeToString()
    writer.apply(decode(Signal.TRACES, body, ResourceTable()))
    writer.commit()


def scanned(db, start_ns: int, end_ns: int) -> set[tuple[str, int]]:
    """What a full scan of the table finds: the truth the windows are checked against."""
    with sqlite3.connect(db) as conn:
        return set(conn.execute(
            "SELECT name, start_time_unix_nano FROM spans "
            "WHERE start_time_unix_nano >= ? AND start_time_unix_nano < ?", (start_ns, end_ns)))


def windowed(db, start_ns: int, end_ns: int) -> set[tuple[str, int]]:
    reader = Reader(db)
    try:
        return {(s.name, s.start_time_unix_nano) for s in reader.span_samples(start_ns, end_ns)}
    finally:
        reader.close()


def at(minute: float) -> int:
    return BASE + int(minute * MINUTE_MS) * MS


def test_windows_find_what_a_full_scan_finds(db):
    # Batches mostly in time order, as exporters send them, with stragglers from minutes
    # before, re-sent spans (which replace theirs) and whole old batches (an import).
    rng = random.Random(7)
    writer = Writer(db)
    next_span = 1
    for batch in range(60):
        spans = []
        for _ in range(rng.randint(1, 40)):
            minute = batch + rng.random()
            if rng.random() < 0.05:
                minute -= rng.uniform(1, 20)  # a long span ending now
            if batch % 17 == 16:
                minute -= 120  # an old batch
            spans.append(make_span(next_span, next_span, name=f"s{next_span}",
                                   start_ms=int(minute * MINUTE_MS), base_ns=BASE))
            next_span += 1
        if batch % 5 == 4:  # send a few earlier spans again, moved in time
            sid = rng.randint(1, next_span - 1)
            spans.append(make_span(sid, sid, name=f"s{sid}", start_ms=batch * MINUTE_MS,
                                   base_ns=BASE))
        write(writer, spans)
    writer.close()

    for start, end in [(10, 15), (0, 60), (-130, -100), (59.5, 61), (30.25, 30.5), (200, 300)]:
        assert windowed(db, at(start), at(end)) == scanned(db, at(start), at(end)), (start, end)


def test_a_window_skips_the_rowids_of_other_times(db):
    writer = Writer(db)
    for minute in range(60):
        write(writer, [make_span(minute * 200 + i + 1, i + 1, start_ms=minute * MINUTE_MS + i,
                                 base_ns=BASE) for i in range(200)])
    writer.close()
    conn = connect(db, readonly=True)
    ranges = window_ranges(conn, at(10), at(11))
    conn.close()
    # Minute 10's spans hold rowids 2001..2200; only the rows above every block come too.
    assert ranges[0][0] >= 2000 and ranges[0][1] == 2200
    assert all(not first <= 6000 <= last for first, last in ranges)
    assert windowed(db, at(10), at(11)) == scanned(db, at(10), at(11))
    assert len(scanned(db, at(10), at(11))) == 200


def test_spans_written_without_blocks_are_still_found(db):
    writer = Writer(db)
    write(writer, [make_span(1, 1, name="first", start_ms=0, base_ns=BASE)])
    # Another program inserts a span straight into the table: above every block.
    writer.conn.execute(
        "INSERT INTO spans SELECT 'ab' || trace_id, span_id, parent_span_id, 'direct', kind, "
        "service_name, start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, "
        "status_message, attributes, events, links, raw, resource_id, scope_name, "
        "scope_version, trace_state, flags, trace_ref FROM spans")
    writer.close()
    assert windowed(db, at(-1), at(1)) == {("first", BASE), ("direct", BASE)}


def test_retention_and_clear_keep_windows_right(db):
    writer = Writer(db)
    for minute in range(10):
        write(writer, [make_span(minute + 1, 1, name=f"m{minute}",
                                 start_ms=minute * MINUTE_MS, base_ns=BASE)])
    # Keep the newest five traces: the others' blocks go with them.
    Retention(writer.conn, RetentionLimits(max_spans=5)).run_chunk()
    blocks = writer.conn.execute("SELECT count(*) FROM span_blocks").fetchone()[0]
    assert blocks < 10
    assert windowed(db, at(0), at(10)) == scanned(db, at(0), at(10))
    writer.close()

    clear_all(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM span_blocks").fetchone()[0] == 0
    writer = Writer(db)  # rowids start again from 1
    write(writer, [make_span(99, 1, name="after", start_ms=5 * MINUTE_MS, base_ns=BASE)])
    writer.close()
    assert windowed(db, at(0), at(10)) == {("after", at(5))}


def test_migration_gives_stored_spans_blocks(db):
    # A database of the schema before blocks, with spans in it.
    conn = sqlite3.connect(db, isolation_level=None)
    for script in MIGRATIONS[:4]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 4")
    conn.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO resources (resource_id, service_name, attributes) "
                 "VALUES (1, 'svc', '{}')")
    rows = [(f"{i:032x}", f"{i:016x}", "", f"old{i}", 2, "svc", at(i), at(i) + MS, MS, 0, "",
             "{}", "[]", "[]", None, 1, "", "", "", 0) for i in range(5000)]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO spans VALUES (" + ", ".join("?" * 20) + ")", rows)
    conn.execute("COMMIT")
    conn.close()

    # A viewer that only reads (no receiver has migrated the file yet) still finds them.
    assert len(windowed(db, at(4500), at(4510))) == 10

    connect(db).close()  # migrates
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM span_blocks").fetchone()[0] == 2
    assert windowed(db, at(4500), at(4510)) == scanned(db, at(4500), at(4510))
    assert len(windowed(db, at(4500), at(4510))) == 10
