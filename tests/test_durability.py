"""Acknowledged means stored: what was acknowledged survives `kill -9` the instant after."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import grpc
from conftest import start_serve
from otlp_builders import make_span, trace_exporter, traces_request


def test_acknowledged_spans_survive_kill_9(tmp_path):
    serve = start_serve(tmp_path)
    export, channel = trace_exporter(serve.grpc_target)
    acknowledged: set[tuple[str, str]] = set()
    for batch in range(40):
        spans = [make_span(batch * 1000 + t, s, None if s == 1 else 1, name=f"op-{s}")
                 for t in range(1, 11) for s in range(1, 6)]
        export(traces_request({"svc": spans}).SerializeToString(), timeout=10)
        acknowledged.update((sp.trace_id.hex(), sp.span_id.hex()) for sp in spans)
    # Kill the receiver and its writer at once, with no chance to clean up.
    victims = [serve.proc.pid, *serve.children()]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    serve.proc.wait(10)
    channel.close()

    conn = sqlite3.connect(serve.db_path)
    stored = set(conn.execute("SELECT trace_id, span_id FROM spans").fetchall())
    assert acknowledged <= stored
    assert conn.execute("SELECT sum(span_count) FROM traces").fetchone()[0] == len(stored)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_killed_writer_is_replaced_and_the_receiver_keeps_storing(tmp_path):
    serve = start_serve(tmp_path)
    export, channel = trace_exporter(serve.grpc_target)
    export(traces_request({"svc": [make_span(1, 1, None)]}).SerializeToString(), timeout=10)
    first_writer = serve.writer_pid()
    os.kill(first_writer, signal.SIGKILL)

    stored_after: set[int] = set()
    deadline = time.monotonic() + 30
    tid = 100
    while len(stored_after) < 5 and time.monotonic() < deadline:
        tid += 1
        try:  # what was in flight when the writer died is refused, never acknowledged
            export(traces_request({"svc": [make_span(tid, 1, None)]}).SerializeToString(),
                   timeout=10)
            stored_after.add(tid)
        except grpc.RpcError:
            time.sleep(0.1)
    channel.close()
    assert len(stored_after) == 5
    assert serve.writer_pid() != first_writer
    ids = {row[0] for row in serve.query("SELECT trace_id FROM spans")}
    assert {t.to_bytes(16, "big").hex() for t in stored_after | {1}} <= ids
    assert serve.stop() == 0
