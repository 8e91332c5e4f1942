"""A stalled writer makes the receiver say "retry later" instead of growing without bound."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from conftest import start_serve
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otlp_builders import make_span, trace_exporter, traces_request


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def batch_body(first_trace: int, spans: int = 1000) -> bytes:
    return traces_request({"svc": [
        make_span(first_trace + i // 10, i % 10 + 1, None if i % 10 == 0 else 1,
                  name="x" * 40, **{f"attr.{k}": "v" * 30 for k in range(8)})
        for i in range(spans)
    ]}).SerializeToString()


def test_stalled_writer_gets_unavailable_and_503_then_recovers(tmp_path):
    serve = start_serve(tmp_path, "--max-pending", "2000")
    writer_pid = serve.writer_pid()
    export, channel = trace_exporter(serve.grpc_target)
    os.kill(writer_pid, signal.SIGSTOP)
    try:
        # Two batches fill the queue; their Export calls wait for the commit.
        waiting_results: list[object] = []

        def send(first: int) -> None:
            try:
                waiting_results.append(export(batch_body(first), timeout=60))
            except grpc.RpcError as exc:
                waiting_results.append(exc)

        waiting = [threading.Thread(target=send, args=(n,)) for n in (1, 1001)]
        for thread in waiting:
            thread.start()
            time.sleep(0.5)

        rss_before = rss_bytes(serve.proc.pid)
        started = time.monotonic()
        for n in range(30):
            with pytest.raises(grpc.RpcError) as info:
                export(batch_body(10_000 + n * 1000), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 10  # refused at once, not after a timeout

        conn = http.client.HTTPConnection("127.0.0.1", serve.http_port, timeout=10)
        conn.request("POST", "/v1/traces", body=batch_body(50_000),
                     headers={"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        assert response.status == 503
        assert response.getheader("Retry-After") == "2"
        # 30 MB of refused requests went through; memory did not keep them.
        assert rss_bytes(serve.proc.pid) - rss_before < 20 * 1024 * 1024
    finally:
        os.kill(writer_pid, signal.SIGCONT)
    for thread in waiting:
        thread.join(30)
    assert all(isinstance(r, ExportTraceServiceResponse) for r in waiting_results)
    assert serve.query("SELECT count(*) FROM spans") == [(2000,)]
    # Once the writer catches up, new requests are accepted again.
    export(batch_body(90_000), timeout=10)
    assert serve.query("SELECT count(*) FROM spans") == [(3000,)]
    channel.close()
    assert serve.stop() == 0
