"""The processes `tracedesk bench-app` runs beside the app: the app itself started under a
pseudo-terminal (start-up time), a receiver, and a sender feeding it at a fixed rate."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracedesk.ui.bench_data import BATCH_JOB_NAME

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
HEADER_TEXT = "root span"  # in the trace list's header line


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    env["TRACEDESK_CONFIG"] = str(tmp / "no-config.toml")  # the user's settings stay out
    return env


def _startup_once(db: Path, size: tuple[int, int], env: dict[str, str]) -> tuple[float, float]:
    """ms from spawning ``tracedesk --no-receiver`` to the header, and to the first row,
    reaching the terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracedesk", "--no-receiver", "--db", str(db)],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    raw, header, row = b"", None, None
    try:
        while row is None and time.perf_counter() - started < 30:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                raw += os.read(master, 1 << 16)
            except OSError:
                break  # the app exited
            now = time.perf_counter()
            text = ESCAPES.sub("", raw.decode(errors="replace"))
            if header is None and HEADER_TEXT in text:
                header = now
            if BATCH_JOB_NAME in text:
                row = now
        os.write(master, b"q")
        _drain_until_exit(master, proc)
    finally:
        os.close(master)
    if header is None or row is None:
        raise RuntimeError("the app drew no trace list within 30 s")
    return (header - started) * 1000, (row - started) * 1000


def _drain_until_exit(master: int, proc: subprocess.Popen, timeout: float = 10) -> None:
    """Keep reading: an app whose terminal output is not read blocks and cannot quit."""
    deadline = time.perf_counter() + timeout
    while proc.poll() is None and time.perf_counter() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                os.read(master, 1 << 16)
            except OSError:
                break
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def measure_startup(db: Path, runs: int, size: tuple[int, int], tmp: Path
                    ) -> list[tuple[float, float]]:
    env = _env(tmp)
    _startup_once(db, size, env)  # unmeasured: brings the code and the db into the OS cache
    return [_startup_once(db, size, env) for _ in range(runs)]


@contextmanager
def receiver(db: Path, tmp: Path) -> Iterator[str]:
    """A `tracedesk serve` on free ports storing into ``db``; yields its gRPC target."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracedesk", "serve", "--db", str(db), "--grpc-port", "0",
         "--http-port", "0", "--max-age", "0", "--max-spans", "0", "--max-db-size", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp))
    assert proc.stdout is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ready."):
                break
        port = re.search(r"OTLP/gRPC\s+\S+:(\d+)", "".join(lines))
        if port is None:
            raise RuntimeError("the receiver did not start:\n" + "".join(lines))
        yield f"127.0.0.1:{port.group(1)}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _send(target: str, rate: float, seconds: float, ready: Any, go: Any, done: Any) -> None:
    """Sender process: build the requests first, then send 10 a second to keep ``rate``."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    from tracedesk.demo.shop import Shop

    shop = Shop(seed=11)
    payloads, total = [], 0
    while total < rate * seconds:
        request, count = shop.traces_request(max(1, int(rate / 10)))
        payloads.append((request.SerializeToString(), count))
        total += count
    channel = grpc.insecure_channel(target)
    export = channel.unary_unary(EXPORT,
                                 response_deserializer=ExportTraceServiceResponse.FromString)
    ready.put(True)
    go.wait()
    started, sent = time.perf_counter(), 0
    for body, count in payloads:
        delay = started + sent / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        export(body, timeout=30)
        sent += count
    done.put(sent / (time.perf_counter() - started))
    channel.close()


@contextmanager
def sender(target: str, rate: float, seconds: float
           ) -> Iterator[tuple[Any, Callable[[], float]]]:
    """A sender process, ready to start; yields (go event, the achieved spans/s once done)."""
    ctx = multiprocessing.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_send, args=(target, rate, seconds, ready, go, done))
    proc.start()
    try:
        ready.get(timeout=120)
        yield go, lambda: done.get(timeout=seconds + 120)
    finally:
        go.set()
        proc.join(timeout=seconds + 120)
        if proc.is_alive():
            proc.kill()
