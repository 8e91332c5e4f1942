"""WAL checkpoints that keep the WAL small without making commits wait for the bulk of them.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, copying
pages into the database file and syncing it while every Export waits. Here a thread with
its own connection copies frames in the background instead (PASSIVE: it never blocks the
writer), and the writer's connection has automatic checkpoints switched off.

A background checkpoint alone never lets the WAL start over under steady load: SQLite
rewinds the WAL only when a write transaction begins after *every* frame was copied, and
the writer keeps appending while the thread copies. The WAL then grows without end (GBs
per million spans) and ingest slows down as it does. So once the WAL holds enough, the
thread asks the writer to pause between two transactions (:meth:`Checkpointer.catch_up`)
while it copies the last few frames; the writer's next transaction then rewinds the WAL.
The pause must stay short, and rewinding syncs the database file: so before asking, the
thread syncs the pages its passes copied, pass after pass until little is left, and the
writer's pause covers only the last few frames.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from tracedesk.store.schema import connect

CHECK_EVERY_SECONDS = 0.1
# The writer pauses once the WAL holds this many frames (pages) and the last pause is this
# long ago: often enough to bound the WAL to a few hundred MB under full load, rarely
# enough that few commits pay for the pause.
RESET_FRAMES = 8192
RESET_EVERY_SECONDS = 1.0
# A pause never lasts longer than this, whatever the disk does.
MAX_PAUSE_SECONDS = 1.0
# Before a pause, sync and copy again until a sync takes less than this (or a few rounds).
QUICK_SYNC_SECONDS = 0.02
MAX_SYNC_ROUNDS = 3


class Checkpointer:
    def __init__(self, db_path: Path | str, writer_conn: sqlite3.Connection) -> None:
        writer_conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn = connect(db_path)
        self._db_fd = os.open(db_path, os.O_RDONLY)  # to sync what passes copied
        self._due = threading.Event()  # the thread wants the writer to pause
        self._paused = threading.Event()  # the writer is paused, waiting for a pass
        self._wake = threading.Event()
        self._passed = threading.Event()  # a pass that began during the pause is done
        self._paused_at = time.monotonic()
        self.pauses = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracedesk-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(CHECK_EVERY_SECONDS)
            self._wake.clear()
            for_writer = self._paused.is_set()
            frames = self._pass()
            if for_writer:
                self._passed.set()
            elif (frames >= RESET_FRAMES
                    and time.monotonic() - self._paused_at >= RESET_EVERY_SECONDS):
                self._prepare_pause()
                self._due.set()

    def _pass(self) -> int:
        """Copy what the WAL holds now (PASSIVE); the number of frames in the WAL."""
        try:
            return self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        except sqlite3.Error:
            return 0  # the next round tries again; the WAL only grows meanwhile

    def _prepare_pause(self) -> None:
        # A pass that copies every frame syncs the database file, and that sync would flush
        # all that earlier passes copied: flush it here, while the writer keeps writing.
        for round_ in range(MAX_SYNC_ROUNDS):
            if round_:
                self._pass()  # what the writer wrote during the last sync
            started = time.monotonic()
            try:
                os.fdatasync(self._db_fd)
            except OSError:
                return
            if time.monotonic() - started < QUICK_SYNC_SECONDS or self._stop.is_set():
                return

    def catch_up(self) -> bool:
        """Called by the writer with no transaction open: if the thread asked for it, wait
        while it copies the frames not yet copied. True if the writer paused."""
        if not self._due.is_set():
            return False
        self._due.clear()
        self._passed.clear()
        self._paused.set()
        self._wake.set()
        try:
            self._passed.wait(MAX_PAUSE_SECONDS)
        finally:
            self._paused.clear()
            self._paused_at = time.monotonic()
        self.pauses += 1
        return True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._conn.close()
        os.close(self._db_fd)
