"""The app's one door to the database: a Reader guarded by a lock for worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tracedesk.store.reader import Reader

T = TypeVar("T")


class DataSource:
    """Runs reader calls one at a time per kind (short or long); call them from worker
    threads, except ``read_now``."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._reader = Reader(db_path)
        self._lock = threading.Lock()
        # Reads that take a while (a service graph's window, a 10,000-span trace) have a
        # connection of their own: a list's page or the status line's totals never wait
        # a quarter of a second behind one.
        self._long_reader = Reader(db_path)
        self._long_lock = threading.Lock()
        # Its own connection: the event loop polls it and must never wait behind a worker.
        self._version = Reader(db_path)

    def read(self, query: Callable[[Reader], T]) -> T:
        """A quick read: a page of rows, a count, one span."""
        with self._lock:
            return query(self._reader)

    def read_now(self, query: Callable[[Reader], T]) -> tuple[bool, T | None]:
        """A quick read on the calling thread, the event loop's included, if no worker
        holds the reader: (True, its answer), else (False, None) at once."""
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            return True, query(self._reader)
        finally:
            self._lock.release()

    def read_long(self, query: Callable[[Reader], T]) -> T:
        """A read that may take a while: a whole trace, a window of spans or points."""
        with self._long_lock:
            return query(self._long_reader)

    def data_version(self) -> int:
        """Microseconds, on a connection of its own: fine on the event loop."""
        return self._version.data_version()

    def close(self) -> None:
        self._version.close()
        with self._lock:
            self._reader.close()
        with self._long_lock:
            self._long_reader.close()
