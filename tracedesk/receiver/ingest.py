"""The receiver's side of the ingest pipeline: hands decoded batches to the writer process
and blocks each Export call until its batch is committed ("acknowledged means stored").

Memory stays bounded: when more than ``max_pending`` records wait for the writer, new
requests are turned away with :class:`Backpressure` (HTTP 503 / gRPC UNAVAILABLE) and the
exporters retry.
"""

from __future__ import annotations

import marshal
import multiprocessing
import multiprocessing.connection
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tracedesk.otlp.batch import DecodedBatch
from tracedesk.store.retention import RetentionLimits
from tracedesk.store.writer_process import STOP, encode_batch, writer_main

# How long an Export waits for its commit before answering "try again".
COMMIT_TIMEOUT_SECONDS = 20.0
RETRY_AFTER_SECONDS = 2


class Backpressure(Exception):
    """Too much is waiting for the writer: retry later."""


class StoreFailed(Exception):
    """The writer could not store the batch."""


@dataclass
class _Waiter:
    records: int
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class Ingest:
    def __init__(self, db_path: Path, limits: RetentionLimits, max_pending: int) -> None:
        self.db_path = db_path
        self.limits = limits
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}
        self._pending_records = 0
        self._next_id = 0
        self._closing = False
        self.committed_records = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._start_writer()

    @property
    def writer_pid(self) -> int | None:
        return self._process.pid

    @property
    def pending_records(self) -> int:
        return self._pending_records

    def _start_writer(self) -> None:
        self._conn, child = self._ctx.Pipe()
        self._process = self._ctx.Process(
            target=writer_main, args=(child, str(self.db_path), self.limits),
            name="tracedesk-writer", daemon=True)
        self._process.start()
        child.close()
        # The writer answers once the database is open and migrated; a failure there
        # (unwritable path, foreign file) surfaces now, before any port is opened.
        if not self._conn.poll(60):
            raise StoreFailed("the writer process did not start within 60 s")
        try:
            marshal.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            self._process.join(5)
            raise StoreFailed(
                f"could not open the database {self.db_path} (see the error above)") from None
        self._reader = threading.Thread(target=self._read_acks, args=(self._conn,),
                                        name="tracedesk-acks", daemon=True)
        self._reader.start()

    def store(self, batch: DecodedBatch, timeout: float = COMMIT_TIMEOUT_SECONDS) -> None:
        """Return once ``batch`` is committed; raise Backpressure or StoreFailed otherwise."""
        records = batch.accepted
        if not records:
            return
        payload = batch.to_bytes()
        with self._lock:
            if self._closing:
                raise Backpressure("the receiver is shutting down")
            # A lone batch larger than the limit is still taken, or it could never get in.
            if self._pending_records and self._pending_records + records > self.max_pending:
                raise Backpressure(
                    f"{self._pending_records} records are waiting to be stored; retry later")
            batch_id = self._next_id = self._next_id + 1
            waiter = self._waiters[batch_id] = _Waiter(records)
            self._pending_records += records
        try:
            with self._send_lock:
                self._conn.send_bytes(encode_batch(batch_id, payload))
        except (OSError, ValueError):
            self._resolve([], [(batch_id, "the writer process is not running")])
        if not waiter.done.wait(timeout):
            raise Backpressure(f"the batch was not committed within {timeout:.0f} s")
        if waiter.error:
            raise StoreFailed(waiter.error)

    def _resolve(self, committed: list[int], failed: list[tuple[int, str]]) -> None:
        with self._lock:
            for batch_id in committed:
                waiter = self._waiters.pop(batch_id, None)
                if waiter:
                    self._pending_records -= waiter.records
                    self.committed_records += waiter.records
                    waiter.done.set()
            for batch_id, message in failed:
                waiter = self._waiters.pop(batch_id, None)
                if waiter:
                    self._pending_records -= waiter.records
                    waiter.error = message
                    waiter.done.set()

    def _read_acks(self, conn: multiprocessing.connection.Connection) -> None:
        while True:
            try:
                committed, failed = marshal.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break
            self._resolve(committed, failed)
        with self._lock:
            lost = list(self._waiters)
        self._resolve([], [(b, "the writer process stopped") for b in lost])
        if not self._closing:
            # The writer died (it should not): start another so the receiver keeps serving.
            self._process.join(1)
            self._start_writer()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking batches, let the writer commit what it has, and wait for it."""
        with self._lock:
            self._closing = True
        try:
            with self._send_lock:
                self._conn.send_bytes(STOP)
        except OSError:
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
        self._reader.join(5)
