"""Recent queries of the traces screen, kept for the app's life and in a small file.

The file (``query-history.json`` in the user data directory) is a JSON array of strings,
oldest first. A missing or unreadable file is an empty history; a failed write is ignored:
history is a convenience, never a reason to stop.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import platformdirs

from tracedesk.config import APP_NAME

MAX_ENTRIES = 100


def default_history_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "query-history.json"


def load_history(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        entries = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, str) and e and "\n" not in e][-MAX_ENTRIES:]


def save_history(path: Path, entries: list[str]) -> None:
    """Write atomically (a reader never sees half a file); call it from a worker thread."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".tmp")
        partial.write_bytes(orjson.dumps(entries[-MAX_ENTRIES:]))
        os.replace(partial, path)
    except OSError:
        pass
