"""The viewer's receiver: `tracedesk serve` run as a child process, or one already running.

The viewer never receives OTLP itself. It starts `tracedesk serve` for its database in a
session of its own (so Ctrl-C in the terminal reaches only the viewer, which then stops
the receiver in order), waits for its "Ready." line and keeps reading its output so the
child can never block on a full pipe. If a receiver for the same database already runs,
the viewer attaches to it instead and leaves it running on exit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from tracedesk.config import Settings
from tracedesk.receiver.instance import (
    ReceiverInfo,
    is_already_running_message,
    running_receiver,
)

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
TAIL_LINES = 50
EXIT_USAGE = 2  # serve's exit code for a taken port or a database that has a receiver
# Starting can lose a race with another viewer more than once in theory; give up after this.
_START_ATTEMPTS = 3
_POLL_SECONDS = 0.05

Mode = Literal["started", "attached", "unavailable"]


@dataclass(frozen=True)
class ReceiverStatus:
    """How the viewer gets its data.

    ``started``: our own child receiver runs (``pid`` is the child's). ``attached``:
    another receiver for the same database runs (``pid`` is its). ``unavailable``: none
    runs; ``message`` says why in words fit for the user, and stored data is still viewable.
    """

    mode: Mode
    grpc_address: str | None = None
    http_address: str | None = None
    pid: int | None = None
    message: str = ""


def serve_command(settings: Settings) -> list[str]:
    """The `tracedesk serve` command line that reproduces ``settings`` exactly.

    Every setting is passed as a flag, so the child does not depend on the environment
    or config file it happens to see.
    """
    return [
        sys.executable, "-m", "tracedesk", "serve", "--stop-on-stdin-eof",
        "--db", str(settings.db_path),
        "--host", settings.host,
        "--grpc-port", str(settings.grpc_port),
        "--http-port", str(settings.http_port),
        "--max-age", f"{settings.max_age:f}",
        "--max-spans", str(settings.max_spans),
        "--max-db-size", str(settings.max_db_size),
        "--max-body-size", str(settings.max_body_size),
        "--max-pending", str(settings.max_pending),
        "--forward-queue-size", str(settings.forward_queue_size),
        # Empty means none, so a forward in the config file cannot creep back in.
        "--forward", settings.forward or "",
    ]


def _child_env(env: dict[str, str] | None, token: str | None,
               forward_headers: str | None = None) -> dict[str, str]:
    """The child's environment. The token and the upstream's headers (credentials, as a
    rule) go here, not on its command line, which any local user can read (ps)."""
    child = dict(os.environ if env is None else env)
    for key, value in (("TRACEDESK_TOKEN", token),
                       ("TRACEDESK_FORWARD_HEADERS", forward_headers)):
        if value:
            child[key] = value
        else:
            child.pop(key, None)
    return child


class _OutputDrain(threading.Thread):
    """Reads the child's output to its end: notes the addresses and "Ready.", keeps a tail."""

    _ADDRESS = re.compile(r"^\s*OTLP/(gRPC|HTTP)\s+(\S+)")

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(name="tracedesk-receiver-output", daemon=True)
        self._stream = stream
        self._lock = threading.Lock()
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.addresses: dict[str, str] = {}
        self.ready = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            for line in iter(self._stream.readline, ""):
                self._take(line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass  # the pipe broke or was closed under us: nothing more to read
        finally:
            self.ended.set()

    def _take(self, line: str) -> None:
        with self._lock:
            self._tail.append(line)
        if self.ready.is_set():
            return
        match = self._ADDRESS.match(line)
        if match:
            self.addresses[match.group(1)] = match.group(2)
        elif line.startswith("Ready."):
            self.ready.set()

    def tail(self) -> list[str]:
        with self._lock:
            return list(self._tail)


class ChildReceiver:
    """Starts, watches and stops the viewer's receiver, once; ``stop()`` is safe to repeat.

    ``start()`` may run in a worker thread while ``stop()`` is called from another: a
    child started meanwhile is stopped rather than left behind.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(env) if env is not None else None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._drain: _OutputDrain | None = None
        self._stopped = False
        self.status: ReceiverStatus | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it has exited; None while it runs or if none was started."""
        return self._proc.poll() if self._proc is not None else None

    def output_tail(self) -> list[str]:
        """The child's last lines of output (stdout and stderr), for diagnostics."""
        return self._drain.tail() if self._drain is not None else []

    def start(self, settings: Settings,
              timeout: float = READY_TIMEOUT_SECONDS) -> ReceiverStatus:
        """Attach to the database's running receiver, or start one and wait until it listens."""
        deadline = time.monotonic() + timeout
        status = _unavailable(f"could not start a receiver for {settings.db_path}")
        for _ in range(_START_ATTEMPTS):
            info = _await_listening(settings.db_path, deadline)
            if info is not None:
                status = _attached(info)
                break
            status, lost_race = self._spawn(settings, deadline)
            if not lost_race:
                break
        if status.mode != "started":
            with self._lock:
                self._proc = None  # nothing of ours runs; stop() has nothing to do
        self.status = status
        return status

    def _spawn(self, settings: Settings, deadline: float) -> tuple[ReceiverStatus, bool]:
        """Run `tracedesk serve`; the flag is True when another receiver took the database."""
        try:
            proc = subprocess.Popen(
                # We keep the stdin pipe's write end: it closes when we exit, however we
                # exit, and the child stops then (see --stop-on-stdin-eof).
                serve_command(settings), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, errors="replace",
                start_new_session=True, env=_child_env(self._env, settings.token,
                                                   settings.forward_headers))
        except OSError as exc:
            return _unavailable(f"could not run the receiver: {exc}"), False
        assert proc.stdout is not None
        drain = _OutputDrain(proc.stdout)
        drain.start()
        with self._lock:
            self._proc, self._drain = proc, drain
            if self._stopped:  # stop() came while we were starting: do not leave a child
                _terminate(proc, STOP_TIMEOUT_SECONDS)
                return _unavailable("stopped before the receiver was ready"), False
        if not _await_ready(proc, drain, deadline):
            return self._failed_start(settings, proc, drain)
        # Our child listens: a pid and two addresses, read from its banner.
        return ReceiverStatus("started", drain.addresses.get("gRPC"),
                              drain.addresses.get("HTTP"), proc.pid), False

    def _failed_start(self, settings: Settings, proc: subprocess.Popen[str],
                      drain: _OutputDrain) -> tuple[ReceiverStatus, bool]:
        if proc.poll() is None:  # still silent at the deadline
            with self._lock:
                _terminate(proc, STOP_TIMEOUT_SECONDS)
            return _unavailable("the receiver did not report ready in time",
                                drain.tail()), False
        if self._stopped:
            return _unavailable("stopped before the receiver was ready"), False
        drain.ended.wait(1.0)  # collect its last words
        lines = [line for line in drain.tail() if line.strip()]
        last = lines[-1] if lines else ""
        if proc.returncode == EXIT_USAGE:
            # Exit 2 is either a taken port or a receiver that beat us to the database.
            if running_receiver(settings.db_path) is not None or is_already_running_message(last):
                return _unavailable(last), True
            return _unavailable(last), False
        return _unavailable(f"the receiver exited with code {proc.returncode}", lines), False

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Stop our child gracefully (SIGTERM, then SIGKILL); returns its exit code.

        Does nothing when attached to someone else's receiver or when already stopped.
        """
        with self._lock:
            self._stopped = True
            proc, drain = self._proc, self._drain
            if proc is None:
                return None
            if proc.poll() is None:
                _terminate(proc, timeout)
        if drain is not None:
            # A writer process that outlives the receiver could hold the pipe open.
            drain.join(2.0)
        return proc.returncode


def _terminate(proc: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM lets serve commit what it accepted; SIGKILL only if it does not finish."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _await_ready(proc: subprocess.Popen[str], drain: _OutputDrain, deadline: float) -> bool:
    """True once the child printed "Ready."; False when it exited or time ran out."""
    while not drain.ready.wait(_POLL_SECONDS):
        if drain.ended.is_set() or proc.poll() is not None:
            # Exited: one last look, as "Ready." may have been its final line read.
            return drain.ready.is_set()
        if time.monotonic() >= deadline:
            return False
    return True


def _await_listening(db_path: Path, deadline: float) -> ReceiverInfo | None:
    """The database's running receiver, waiting while it starts; None if there is none."""
    while True:
        info = running_receiver(db_path)
        if info is None or info.listening or time.monotonic() >= deadline:
            return info
        time.sleep(_POLL_SECONDS)


def _attached(info: ReceiverInfo) -> ReceiverStatus:
    if info.listening:
        message = f"using the receiver already running for this database ({info.describe()})"
    else:
        message = f"a receiver for this database is still starting ({info.describe()})"
    return ReceiverStatus("attached", info.grpc_address, info.http_address, info.pid, message)


def _unavailable(message: str, lines: list[str] | None = None) -> ReceiverStatus:
    if lines:
        message = "\n".join([message, *lines[-10:]])
    return ReceiverStatus("unavailable", message=message)
