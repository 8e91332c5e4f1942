"""Bringing an older database file up to this tracedesk's schema, with a word first.

A migration that rebuilds a table (schema 6 rebuilds ``spans``) takes a while on a large
file; done silently inside the writer process, it would look like a hang and could outlast
the writer's start-up timeout. So the receiver's starters run it here, in the open.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import TextIO

from tracedesk.store.schema import SCHEMA_VERSION, connect


def stored_version(path: Path) -> int | None:
    """The file's schema version, or None if there is no readable database there."""
    if not path.exists():
        return None
    try:
        with closing(connect(path, readonly=True)) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error:
        return None


def upgrade(path: Path, err: TextIO) -> None:
    """Migrate an older tracedesk database, saying so. Anything else (a new, foreign or
    newer file) is left to the writer, which reports it."""
    version = stored_version(path)
    if not version or version >= SCHEMA_VERSION:
        return
    print(f"tracedesk: upgrading {path} from schema {version} to {SCHEMA_VERSION} "
          "(once; a large file takes a minute) ...", file=err, flush=True)
    started = time.perf_counter()
    try:
        connect(path).close()
    except (sqlite3.Error, OSError) as exc:
        print(f"tracedesk: the upgrade failed: {exc}", file=err, flush=True)
        return
    print(f"tracedesk: upgraded in {time.perf_counter() - started:.1f} s", file=err, flush=True)
