"""Shared fixtures: a real `tracedesk serve` process on free ports with its own database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from app_support import Store

from tracedesk.store.schema import connect


def as_read(column: str) -> str:
    """A span's JSON column (attributes, events, links) as tracedesk reads it: a span stored
    while the receiver was busy keeps them in its protobuf bytes until the writer converts
    it. Needs a connection from ``tracedesk.store.schema.connect`` (``ServeProcess.query``)."""
    return f"coalesce({column}, span_{column}(raw))"


@dataclass
class ServeProcess:
    proc: subprocess.Popen
    db_path: Path
    grpc_port: int
    http_port: int
    output: list[str] = field(default_factory=list)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        conn = connect(self.db_path, readonly=True)  # with span_attributes() and the like
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def children(self) -> list[int]:
        """PIDs of the receiver's child processes (its writer)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def writer_pid(self) -> int:
        """The writer process: the child started by multiprocessing's spawn."""
        (pid,) = [p for p in self.children()
                  if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        return pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        self.output.append(rest or "")
        return self.proc.returncode


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TRACEDESK_CONFIG"] = str(tmp_path / "no-config.toml")
    for key in list(env):
        if key.startswith("OTEL_"):
            del env[key]
    return env


_started: list[ServeProcess] = []


@pytest.fixture(autouse=True, scope="session")
def _stop_leftover_receivers() -> Iterator[None]:
    """A test that fails half-way must not leave its receiver running."""
    yield
    for receiver in _started:
        if receiver.proc.poll() is None:
            receiver.stop(signal.SIGKILL, timeout=5)


def start_serve(tmp_path: Path, *extra: str, db_name: str = "tracedesk.db") -> ServeProcess:
    db_path = tmp_path / db_name
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracedesk", "serve", "--db", str(db_path),
         "--grpc-port", "0", "--http-port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(tmp_path),
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("tracedesk serve exited early:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Ready."):
            break
    text = "".join(lines)
    grpc_port = int(re.search(r"OTLP/gRPC\s+\S+:(\d+)", text).group(1))
    http_port = int(re.search(r"OTLP/HTTP\s+\S+:(\d+)", text).group(1))
    receiver = ServeProcess(proc, db_path, grpc_port, http_port, lines)
    _started.append(receiver)
    return receiver


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    receiver = start_serve(tmp_path)
    yield receiver
    receiver.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A database the app tests write to, as the receiver would."""
    s = Store(tmp_path / "app.db")
    yield s
    s.writer.close()
