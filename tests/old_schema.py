"""Database files as an older tracedesk left them, for the migration tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tracedesk.store.schema import MIGRATIONS, _statements


def database_at_version(path: Path, version: int) -> None:
    """Create an empty database at ``path`` with the schema as it stood at ``version``."""
    conn = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        for statement in _statements(script):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
