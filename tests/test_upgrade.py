"""An older database is upgraded before the receiver starts, with a word to the user."""

from __future__ import annotations

import io
import sqlite3

from old_schema import database_at_version

from tracedesk.store.schema import SCHEMA_VERSION, connect
from tracedesk.store.upgrade import upgrade


def _version(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_an_older_database_is_upgraded_and_the_user_told(tmp_path):
    path = tmp_path / "old.db"
    database_at_version(path, 5)
    err = io.StringIO()
    upgrade(path, err)
    assert f"from schema 5 to {SCHEMA_VERSION}" in err.getvalue()
    assert "upgraded in" in err.getvalue()
    assert _version(path) == SCHEMA_VERSION
    again = io.StringIO()
    upgrade(path, again)  # up to date: nothing to say
    assert again.getvalue() == ""


def test_new_foreign_and_current_files_are_left_alone(tmp_path):
    current = tmp_path / "current.db"
    connect(current).close()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    err = io.StringIO()
    for path in (tmp_path / "missing.db", current, foreign):
        upgrade(path, err)
    assert err.getvalue() == ""
    assert not (tmp_path / "missing.db").exists()
    assert _version(foreign) == 0
