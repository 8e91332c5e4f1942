"""Background WAL checkpoints, so that commits never pay for them.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, copying
pages into the database file and syncing it while every Export waits. Here a thread with
its own connection does it instead (PASSIVE: it never blocks the writer), and the writer's
connection has automatic checkpoints switched off.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from tracedesk.store.schema import connect

CHECK_EVERY_SECONDS = 0.5
# Checkpoint once the WAL holds this much: big enough to batch the work, small enough that
# readers (which search the WAL index for every page) stay fast.
WAL_THRESHOLD_BYTES = 16 * 1024 * 1024


class Checkpointer:
    def __init__(self, db_path: Path | str, writer_conn: sqlite3.Connection) -> None:
        writer_conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._wal = Path(f"{db_path}-wal")
        self._conn = connect(db_path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracedesk-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CHECK_EVERY_SECONDS):
            try:
                if self._wal.stat().st_size >= WAL_THRESHOLD_BYTES:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (OSError, sqlite3.Error):
                continue  # the next round tries again; the WAL only grows meanwhile

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()
