"""The app's one door to the database: a Reader guarded by a lock for worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tracedesk.store.reader import Reader

T = TypeVar("T")


class DataSource:
    """Runs reader calls one at a time; call it only from worker threads."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._reader = Reader(db_path)
        self._lock = threading.Lock()
        # Its own connection: the event loop polls it and must never wait behind a worker's
        # long read (a service graph's window, say) holding the shared one.
        self._version = Reader(db_path)

    def read(self, query: Callable[[Reader], T]) -> T:
        with self._lock:
            return query(self._reader)

    def data_version(self) -> int:
        """Microseconds, on a connection of its own: fine on the event loop."""
        return self._version.data_version()

    def close(self) -> None:
        self._version.close()
        with self._lock:
            self._reader.close()
