"""Background checkpoints: the WAL must start over under continuous writes, losing nothing."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from otlp_builders import make_span, traces_request

from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store import checkpoint
from tracedesk.store.checkpoint import Checkpointer
from tracedesk.store.writer import Writer

BASE = time.time_ns()


def _wal_restarts(db: Path) -> int:
    # The WAL header's checkpoint sequence number (bytes 12-15) grows each time the WAL
    # starts over from its beginning.
    return int.from_bytes(Path(f"{db}-wal").read_bytes()[12:16], "big")


def _counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("SELECT count(*) FROM spans").fetchone()[0],
                conn.execute("SELECT count(*) FROM traces").fetchone()[0])
    finally:
        conn.close()


def _write_trace(writer: Writer, resources: ResourceTable, tid: int) -> None:
    spans = [make_span(tid, 1, None, base_ns=BASE)]
    spans += [make_span(tid, i, 1, base_ns=BASE, **{"http.route": f"/item/{i}"})
              for i in range(2, 6)]
    body = traces_request({"svc": spans}).SerializeToString()
    writer.apply(decode(Signal.TRACES, body, resources))
    writer.commit()


def test_the_wal_starts_over_while_the_writer_keeps_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "RESET_FRAMES", 1)
    monkeypatch.setattr(checkpoint, "RESET_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(checkpoint, "CHECK_EVERY_SECONDS", 0.01)
    db = tmp_path / "store.db"
    writer = Writer(db)
    checkpointer = Checkpointer(db, writer.conn)
    resources = ResourceTable()
    try:
        tid = 0
        _write_trace(writer, resources, tid := tid + 1)
        restarts = _wal_restarts(db)
        # Write without a break, as under load, until the thread asks the writer to pause.
        deadline = time.monotonic() + 60
        while not checkpointer.catch_up():
            assert time.monotonic() < deadline, "the checkpointer never asked for a pause"
            _write_trace(writer, resources, tid := tid + 1)
        _write_trace(writer, resources, tid := tid + 1)
        assert _wal_restarts(db) > restarts
        assert checkpointer.pauses >= 1
    finally:
        checkpointer.close()
        writer.close()
    assert _counts(db) == (tid * 5, tid)


def test_no_pause_while_the_wal_is_small(tmp_path):
    db = tmp_path / "store.db"
    writer = Writer(db)
    checkpointer = Checkpointer(db, writer.conn)
    resources = ResourceTable()
    try:
        for tid in range(1, 4):
            _write_trace(writer, resources, tid)
            assert not checkpointer.catch_up()
    finally:
        checkpointer.close()
        writer.close()
