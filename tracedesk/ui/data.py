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

    def read(self, query: Callable[[Reader], T]) -> T:
        with self._lock:
            return query(self._reader)

    def data_version(self) -> int:
        """Microseconds: fine on the event loop."""
        with self._lock:
            return self._reader.data_version()

    def close(self) -> None:
        with self._lock:
            self._reader.close()
