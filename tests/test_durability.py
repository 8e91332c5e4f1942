"""Acknowledged means stored: what was acknowledged survives `kill -9` the instant after."""

from __future__ import annotations

import os
import signal
import sqlite3

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
