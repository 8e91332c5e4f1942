"""One receiver per database: an exclusive ``flock`` on a lock file beside the database.

`tracedesk serve` holds ``<db>.receiver.lock`` for as long as it runs. The OS drops the
lock when the process dies, even on ``kill -9``, so a held lock always means a live
receiver. The holder writes its details (pid, addresses, version) into the same file as
JSON, so that the viewer and a second ``serve`` can say where it listens.

The lock file is never deleted, only emptied: unlinking it would let two receivers hold
locks on two different files of the same name. Where ``fcntl`` is missing nothing is
locked and nobody is reported running: there the answer is "cannot tell".
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tracedesk import __version__
from tracedesk.receiver.ports import host_port

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".receiver.lock"
# Probing the lock holds it for microseconds; a starting receiver retries for this long
# before concluding that another receiver really owns the database.
ACQUIRE_GRACE_SECONDS = 0.5
# The holder rewrites its details in place; a reader may catch a half-written file.
_READ_ATTEMPTS = 10
_READ_RETRY_SECONDS = 0.01


def lock_path(db_path: Path | str) -> Path:
    """The lock file for a database; symlinks resolved so every alias finds the same file."""
    db = Path(os.path.realpath(db_path))
    return db.with_name(db.name + LOCK_SUFFIX)


@dataclass(frozen=True)
class ReceiverInfo:
    """What a running receiver published about itself; ports are None while it starts."""

    pid: int | None
    host: str = ""
    grpc_port: int | None = None
    http_port: int | None = None
    started_at: float | None = None
    version: str = ""

    @property
    def listening(self) -> bool:
        return self.grpc_port is not None and self.http_port is not None

    @property
    def grpc_address(self) -> str | None:
        return None if self.grpc_port is None else host_port(self.host, self.grpc_port)

    @property
    def http_address(self) -> str | None:
        return None if self.http_port is None else f"http://{host_port(self.host, self.http_port)}"

    def describe(self) -> str:
        """``pid N, OTLP/gRPC host:port, OTLP/HTTP http://host:port`` or what is known."""
        pid = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        if not self.listening:
            return f"{pid}, still starting"
        return f"{pid}, OTLP/gRPC {self.grpc_address}, OTLP/HTTP {self.http_address}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> ReceiverInfo:
        """Parse published details; raises ValueError on anything but a complete record."""
        raw: Any = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("receiver details are not an object")
        return cls(pid=_opt(raw, "pid", int), host=str(raw.get("host", "")),
                   grpc_port=_opt(raw, "grpc_port", int), http_port=_opt(raw, "http_port", int),
                   started_at=_opt(raw, "started_at", float),
                   version=str(raw.get("version", "")))


def _opt(raw: dict[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"receiver detail {key} is not a number")
    return kind(value)


class ReceiverRunning(Exception):
    """Another live process holds the receiver lock for this database."""

    def __init__(self, db_path: Path | str, info: ReceiverInfo) -> None:
        super().__init__(f"a receiver for {db_path} is already running ({info.describe()})")
        self.db_path, self.info = db_path, info

    def advice(self) -> str:
        return f"tracedesk: {self}"


ALREADY_RUNNING_MARKER = "is already running (pid"


def is_already_running_message(line: str) -> bool:
    """Whether a line printed by `tracedesk serve` is ReceiverRunning's advice."""
    return line.startswith("tracedesk: a receiver for ") and ALREADY_RUNNING_MARKER in line


class ReceiverLock:
    """The lock a running receiver holds on its database, and the details it publishes."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise ReceiverRunning naming the receiver that has it."""
        if fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _lock_with_grace(fd)
        except OSError:
            # A filesystem without flock support: run unguarded rather than not at all.
            os.close(fd)
            return
        if not locked:
            info = _read_info(fd) or ReceiverInfo(pid=None)
            os.close(fd)
            raise ReceiverRunning(self.db_path, info)
        self._fd = fd
        # Claim at once, so details left by a receiver that was killed are never shown.
        self.publish(ReceiverInfo(pid=os.getpid(), version=__version__))

    def publish(self, info: ReceiverInfo) -> None:
        """Replace the published details; readers retry if they catch it half-written."""
        if self._fd is None:
            return
        data = info.to_json()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def release(self) -> None:
        """Empty the file and drop the lock; safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)


def _lock_with_grace(fd: int) -> bool:
    """Try the exclusive lock for ACQUIRE_GRACE_SECONDS; False if someone keeps it."""
    assert fcntl is not None
    deadline = time.monotonic() + ACQUIRE_GRACE_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def running_receiver(db_path: Path | str) -> ReceiverInfo | None:
    """The live receiver for ``db_path``, or None if none runs (or it cannot be told).

    A receiver that holds the lock but has not published its ports yet is returned with
    ``listening`` False.
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except OSError:
        return None  # no lock file: no receiver has run here
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_info(fd) or ReceiverInfo(pid=None)
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_info(fd: int) -> ReceiverInfo | None:
    """The holder's details, or None if they are missing, unreadable or stale."""
    for attempt in range(_READ_ATTEMPTS):
        try:
            data = os.pread(fd, 64 * 1024, 0)
        except OSError:
            return None
        if not data.strip():
            return None  # the holder has not written yet
        try:
            info = ReceiverInfo.from_json(data)
        except ValueError:
            if attempt + 1 < _READ_ATTEMPTS:
                time.sleep(_READ_RETRY_SECONDS)
            continue
        return info if _alive(info.pid) else None
    return None


def _alive(pid: int | None) -> bool:
    """False only for a pid that certainly has no process (details left by a dead holder)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else
    return True
