"""The viewer's receiver: a `tracedesk serve` child per database, or the one already running.

Real processes throughout: the lock is an OS lock and only real processes can hold it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import clean_env, start_serve
from otlp_builders import make_span, trace_exporter, traces_request

from tracedesk.config import Settings
from tracedesk.receiver.child import ChildReceiver, ReceiverStatus, serve_command
from tracedesk.receiver.instance import (
    ReceiverInfo,
    ReceiverLock,
    ReceiverRunning,
    lock_path,
    running_receiver,
)


def settings_for(tmp_path: Path, **overrides) -> Settings:
    values = {"db_path": tmp_path / "t.db", "grpc_port": 0, "http_port": 0, **overrides}
    return Settings(**values)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[list[ChildReceiver]]:
    """Makes ChildReceivers with a clean environment and stops them all afterwards."""
    made: list[ChildReceiver] = []
    yield made
    for child in made:
        child.stop()


def new_child(children: list[ChildReceiver], tmp_path: Path) -> ChildReceiver:
    child = ChildReceiver(env=clean_env(tmp_path))
    children.append(child)
    return child


def published(db_path: Path) -> dict:
    text = lock_path(db_path).read_text()
    return json.loads(text) if text.strip() else {}


def port_of(address: str | None) -> int:
    assert address is not None
    return int(address.rsplit(":", 1)[1])


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still exists")


def test_a_started_child_publishes_its_ports_stores_spans_and_stops_cleanly(tmp_path,
                                                                           children):
    child = new_child(children, tmp_path)
    settings = settings_for(tmp_path)
    status = child.start(settings)

    assert status.mode == "started", status.message
    assert status.pid == child.pid and status.grpc_address and status.http_address
    assert status.http_address.startswith("http://127.0.0.1:")
    grpc_port, http_port = port_of(status.grpc_address), port_of(status.http_address)
    details = published(settings.db_path)
    assert (details["pid"], details["grpc_port"], details["http_port"]) == (
        status.pid, grpc_port, http_port)
    assert running_receiver(settings.db_path) == ReceiverInfo.from_json(
        lock_path(settings.db_path).read_bytes())

    export, channel = trace_exporter(status.grpc_address)
    export(traces_request({"svc": [make_span(7, 1)]}).SerializeToString(), timeout=10)
    channel.close()

    assert child.stop() == 0
    wait_gone(status.pid)
    assert published(settings.db_path) == {}
    assert running_receiver(settings.db_path) is None
    assert any("stored 1 spans" in line for line in child.output_tail())
    assert child.stop() == 0  # a second stop is harmless
    with sqlite3.connect(settings.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM spans").fetchone() == (1,)


def test_a_second_viewer_attaches_to_the_running_receiver(tmp_path, children):
    first = new_child(children, tmp_path)
    started = first.start(settings_for(tmp_path))
    # Different requested ports: the running receiver's own are what count.
    second = new_child(children, tmp_path)
    attached = second.start(settings_for(tmp_path, grpc_port=1, http_port=2))

    assert attached.mode == "attached"
    assert (attached.grpc_address, attached.http_address, attached.pid) == (
        started.grpc_address, started.http_address, started.pid)
    assert second.stop() is None and second.stop() is None
    assert first.returncode is None  # still serving
    assert running_receiver(tmp_path / "t.db").pid == started.pid


def test_serve_refuses_a_database_that_already_has_a_receiver(tmp_path):
    first = start_serve(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tracedesk", "serve", "--db", str(first.db_path),
             "--grpc-port", "0", "--http-port", "0"],
            capture_output=True, text=True, timeout=30, env=clean_env(tmp_path))
    finally:
        assert first.stop() == 0
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"tracedesk: a receiver for {first.db_path} is already running "
        f"(pid {first.proc.pid}, OTLP/gRPC 127.0.0.1:{first.grpc_port}, "
        f"OTLP/HTTP http://127.0.0.1:{first.http_port})"]


@pytest.mark.parametrize("which, flag", [("grpc_port", "--grpc-port"),
                                         ("http_port", "--http-port")])
def test_a_port_taken_by_something_else_makes_the_receiver_unavailable(tmp_path, children,
                                                                       which, flag):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = new_child(children, tmp_path).start(settings_for(tmp_path, **{which: port}))
    assert status.mode == "unavailable"
    assert "\n" not in status.message
    assert f"port {port}" in status.message and flag in status.message
    assert status.pid is None and status.grpc_address is None
    assert running_receiver(tmp_path / "t.db") is None


def test_a_killed_receiver_frees_the_database_for_a_new_one(tmp_path, children):
    first = new_child(children, tmp_path)
    old = first.start(settings_for(tmp_path))
    assert old.mode == "started" and old.pid is not None
    os.kill(old.pid, signal.SIGKILL)
    wait_gone_or_zombie(first)
    assert running_receiver(tmp_path / "t.db") is None
    assert first.stop() == -signal.SIGKILL

    status = new_child(children, tmp_path).start(settings_for(tmp_path))
    assert status.mode == "started", status.message
    assert status.pid != old.pid
    assert published(tmp_path / "t.db")["pid"] == status.pid


def wait_gone_or_zombie(child: ChildReceiver, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while child.returncode is None:
        assert time.monotonic() < deadline, "the receiver outlived SIGKILL"
        time.sleep(0.02)


def test_two_viewers_starting_at_once_end_with_one_receiver(tmp_path, children):
    pair = [new_child(children, tmp_path) for _ in range(2)]
    results: list[ReceiverStatus] = []
    go = threading.Barrier(2)

    def start(child: ChildReceiver) -> None:
        go.wait()
        results.append(child.start(settings_for(tmp_path)))

    threads = [threading.Thread(target=start, args=(child,)) for child in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status.mode for status in results) == ["attached", "started"], results
    assert len({(s.grpc_address, s.http_address, s.pid) for s in results}) == 1


def test_the_lock_says_who_holds_it_and_is_free_once_released(tmp_path):
    # flock locks belong to open files, so this process's own probe sees its own lock.
    db = tmp_path / "sub" / "t.db"
    assert running_receiver(db) is None
    lock = ReceiverLock(db)
    lock.acquire()
    starting = running_receiver(db)
    assert starting == ReceiverInfo(pid=os.getpid(), version=starting.version)
    assert not starting.listening and "still starting" in starting.describe()
    lock.publish(ReceiverInfo(pid=os.getpid(), host="::1", grpc_port=5, http_port=6))
    assert running_receiver(db).grpc_address == "[::1]:5"
    with pytest.raises(ReceiverRunning, match=r"already running \(pid \d+, OTLP/gRPC \[::1\]:5"):
        ReceiverLock(db).acquire()
    lock.release()
    lock.release()
    assert running_receiver(db) is None
    assert lock_path(db).read_text() == ""


def test_the_child_gets_every_receiver_setting_as_a_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEDESK_CONFIG", str(tmp_path / "no-config.toml"))
    settings = settings_for(tmp_path, host="0.0.0.0", max_age=1e16, max_spans=7,
                            max_db_size=8, max_body_size=9, max_pending=10)
    command = serve_command(settings)
    assert command[:4] == [sys.executable, "-m", "tracedesk", "serve"]
    from tracedesk.cli import build_parser, settings_from

    assert settings_from(build_parser().parse_args(command[3:])) == settings


def test_the_child_stops_when_the_viewer_dies_abruptly(tmp_path):
    """A viewer killed with -9 (or whose terminal closed) must not leave its receiver behind."""
    viewer_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tracedesk.config import Settings\n"
        "from tracedesk.receiver.child import ChildReceiver\n"
        "status = ChildReceiver().start(Settings(db_path=Path(sys.argv[1]), grpc_port=0,"
        " http_port=0))\n"
        "print(status.mode, status.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    viewer = subprocess.Popen([sys.executable, "-c", viewer_code, str(tmp_path / "t.db")],
                              stdout=subprocess.PIPE, text=True, env=clean_env(tmp_path))
    assert viewer.stdout is not None
    mode, pid = viewer.stdout.readline().split()
    assert mode == "started"
    os.kill(viewer.pid, signal.SIGKILL)
    viewer.wait()
    wait_gone(int(pid))
    assert running_receiver(tmp_path / "t.db") is None
