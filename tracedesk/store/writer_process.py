"""The writer process: receives decoded batches over a pipe, group-commits, acknowledges.

Runs apart from the receiver so that decoding (in the receiver) and SQLite writing (here)
use both cores instead of sharing one interpreter lock.

Protocol (``multiprocessing`` connection, raw bytes):
- receiver → writer: ``b"B" + batch id (8 bytes) + DecodedBatch.to_bytes()``, or ``b"S"`` to stop.
- writer → receiver: ``marshal((committed ids, [(failed id, message), ...]))`` after each commit.

A batch is acknowledged only after the transaction holding it has committed.
"""

from __future__ import annotations

import marshal
import signal
import sqlite3
import time
from multiprocessing.connection import Connection

from tracedesk.otlp.batch import DecodedBatch
from tracedesk.store.checkpoint import Checkpointer
from tracedesk.store.graph_rollups import STEP_SLICES
from tracedesk.store.retention import Retention, RetentionLimits
from tracedesk.store.writer import Writer

# Commit when the pipe is drained, or at the latest after this many rows or seconds: small
# batches share a commit under load, and a lone batch is committed at once. The row limit
# is low on purpose: each exporter waits for its ack before it sends again, so a large
# group holds back every sender in it, and they all come back at once; the receiver then
# decodes their requests one by one while the writer idles. Measured with four senders of
# 500-span batches: 1,000 rows gave 69k spans/s, 2,000 rows 49-56k, 20,000 rows 42k, and
# a commit per batch 58k (a commit costs about 2 ms).
GROUP_MAX_ROWS = 1_000
GROUP_MAX_SECONDS = 0.1
IDLE_POLL_SECONDS = 1.0
# Idle work (converting deferred spans, then indexing new ones), a chunk per transaction,
# small enough that a batch arriving meanwhile waits only a few milliseconds, and only once
# no batch has come for a moment: between the batches of a flood it would slow the flood
# down. SDKs export every few seconds, which leaves plenty of such moments.
QUIET_SECONDS = 0.2
IDLE_CHUNK = 256
# Data that never pauses that long (a steady trickle from many exporters) must not starve
# the idle work: it then runs between two commits, every this many seconds (or less often
# if a chunk takes long), for at most this share of the writer's time.
STARVED_SECONDS = 1.0
STARVED_SHARE = 0.05
# Service-graph slices can go stale without a batch of ours: another writer (an import)
# or retention forgot them. Look for such slices this often while idle.
ROLLUP_CHECK_SECONDS = 5.0

STOP = b"S"
BATCH = b"B"


def encode_batch(batch_id: int, payload: bytes) -> bytes:
    return BATCH + batch_id.to_bytes(8, "big") + payload


def _idle_work(writer: Writer, rollup_slices: int = STEP_SLICES) -> None:
    """One chunk of the work the pipe left time for, in its own transaction: the service
    graph's rollups first (the Services screen waits for them), then deferred spans'
    conversion, then the attribute index."""
    try:
        if writer.has_stale_rollups:
            writer.roll_up(rollup_slices)
        elif writer.has_deferred:
            writer.convert_deferred(IDLE_CHUNK)
        elif writer.has_unindexed:
            writer.index_some(IDLE_CHUNK)
        writer.commit()
    except Exception:  # nothing is lost: the next batch's idle moment tries again
        writer.rollback()
        writer.has_unindexed = writer.has_stale_rollups = False


def _has_idle_work(writer: Writer) -> bool:
    return writer.has_stale_rollups or writer.has_deferred or writer.has_unindexed


def _starved_idle_work(writer: Writer) -> float:
    """Idle work between two commits, for data that never pauses: chunks for a share of
    STARVED_SECONDS; when such work may run again. Rollups go a slice at a time, so that
    the batches waiting meanwhile wait less."""
    started = time.monotonic()
    while True:
        _idle_work(writer, rollup_slices=1)
        now = time.monotonic()
        if now - started >= STARVED_SECONDS * STARVED_SHARE or not _has_idle_work(writer):
            return now + max(STARVED_SECONDS, (now - started) / STARVED_SHARE)


def writer_main(conn: Connection, db_path: str, limits: RetentionLimits) -> None:
    """Entry point of the writer process."""
    # Ctrl-C reaches the whole process group; the receiver decides when the writer stops,
    # so that everything it accepted is committed first. SIGTERM keeps its default: it is
    # how the receiver ends a writer that does not stop, and a commit is atomic anyway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = Writer(db_path)
    retention = Retention(writer.conn, limits)
    checkpointer = Checkpointer(db_path, writer.conn)
    conn.send_bytes(marshal.dumps(("ready", writer.seq)))
    committed: list[int] = []
    failed: list[tuple[int, str]] = []
    rows = 0
    opened_at = last_batch_at = 0.0
    idle_due = time.monotonic() + STARVED_SECONDS
    rollups_checked_at = time.monotonic()

    def flush() -> None:
        nonlocal rows
        try:
            writer.commit()
        except sqlite3.Error as exc:
            writer.rollback()
            failed.extend((bid, f"database error: {exc}") for bid in committed)
            committed.clear()
        conn.send_bytes(marshal.dumps((committed, failed)))
        committed.clear()
        failed.clear()
        rows = 0

    while True:
        waiting = committed or failed
        if waiting and (rows >= GROUP_MAX_ROWS or not conn.poll(0)
                        or time.monotonic() - opened_at > GROUP_MAX_SECONDS):
            flush()
            retention.tick()
            checkpointer.catch_up()
            if time.monotonic() >= idle_due and _has_idle_work(writer):
                idle_due = _starved_idle_work(writer)
            continue
        if not waiting:
            wait = IDLE_POLL_SECONDS
            if _has_idle_work(writer):
                wait = max(0.0, last_batch_at + QUIET_SECONDS - time.monotonic())
            if not conn.poll(wait):
                now = time.monotonic()
                if now - rollups_checked_at >= ROLLUP_CHECK_SECONDS:
                    rollups_checked_at = now
                    writer.has_stale_rollups = True
                if now - last_batch_at >= QUIET_SECONDS and _has_idle_work(writer):
                    _idle_work(writer)
                retention.tick()
                checkpointer.catch_up()
                continue
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            message = STOP  # the receiver is gone: keep what was written, then exit
        if message[:1] == STOP:
            break
        batch_id = int.from_bytes(message[1:9], "big")
        last_batch_at = time.monotonic()
        if not waiting:
            opened_at = time.monotonic()
        try:
            batch = DecodedBatch.from_bytes(message[9:])
            writer.apply(batch)
        except Exception as exc:  # one bad batch must not stop the writer
            failed.append((batch_id, f"could not store the batch: {exc}"))
            continue
        committed.append(batch_id)
        rows += batch.accepted
    try:
        if committed or failed:
            flush()
    except (BrokenPipeError, OSError):
        writer.commit()
    checkpointer.close()
    writer.close()
