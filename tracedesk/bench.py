"""`tracedesk bench`: ingest measured end to end, the way exporters see it.

Each run starts a fresh `tracedesk serve` on free ports with a temporary database, then
separate sender processes (so the clients do not share the receiver's interpreter) send
pre-built realistic batches over OTLP/gRPC as fast as the receiver acknowledges them. An
acknowledgement means committed, so accepted spans/s is the sustained storage rate.

The batches are the demo shop's traces, enriched to what instrumented services typically
send (~10 attributes and ~1 event a span): the demo keeps its own lighter output.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


_SERVER, _CLIENT = 2, 3
_LOG_LINES = {
    _SERVER: ("request received", "request authenticated", "response written"),
    _CLIENT: ("connection reused from pool", "sending request", "response headers received"),
}
_OTHER_LOG_LINES = ("step started", "step finished", "cache lookup done")
_POOLS = ("primary", "replica", "cache")


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(int_value=value))


def _event_count(rng: random.Random) -> int:
    # 0, 1 or 2 events; with the two per gRPC call and the demo's own, ~1 a span overall.
    r = rng.random()
    return 0 if r < 0.25 else 1 if r < 0.89 else 2


def _events(span: Any, rng: random.Random) -> list[Any]:
    """Events as instrumentations record them: gRPC messages, pool waits, log lines."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    keys = {kv.key for kv in span.attributes}
    if "rpc.system" in keys:
        size = rng.randrange(80, 4000)
        return [Span.Event(time_unix_nano=at, name="message", attributes=[
                    _kv("rpc.message.type", kind), _kv("rpc.message.id", 1),
                    _kv("rpc.message.uncompressed_size", size + n * 37)])
                for n, (kind, at) in enumerate((("SENT", start), ("RECEIVED", end)))]
    out = []
    for _ in range(_event_count(rng)):
        at = start + int((end - start) * rng.random())
        if "db.system.name" in keys:
            out.append(Span.Event(time_unix_nano=at, name="db.client.connection.acquired",
                                  attributes=[
                                      _kv("db.client.connection.pool.name", rng.choice(_POOLS)),
                                      _kv("db.client.connection.wait_time",
                                          round(rng.expovariate(2.0), 3))]))
        else:
            line = rng.choice(_LOG_LINES.get(span.kind, _OTHER_LOG_LINES))
            out.append(Span.Event(time_unix_nano=at, name="log", attributes=[
                _kv("log.severity", "INFO"), _kv("log.message", line)]))
    return out


def enrich(request: Any, rng: random.Random) -> None:
    """Give each span what SDKs and instrumentations commonly add beyond the demo's spans:
    thread attributes and events (gRPC messages, connection-pool waits, log lines)."""
    for rs in request.resource_spans:
        threads = rng.randrange(8, 64)
        for ss in rs.scope_spans:
            for span in ss.spans:
                thread = rng.randrange(1, threads)
                span.attributes.append(_kv("thread.id", thread))
                if span.kind != _CLIENT:
                    span.attributes.append(_kv("thread.name", f"worker-{thread}"))
                span.events.extend(_events(span, rng))


@dataclass
class RunResult:
    accepted_spans: int
    rejected_spans: int
    failed_requests: int
    seconds: float
    spans_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    receiver_peak_rss_mb: float
    stored_spans: int


def _sender(target: str, spans: int, batch: int, seed: int, ready, go, results) -> None:
    """Sender process: build every request first, then send them back to back."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    from tracedesk.demo.shop import Shop

    shop = Shop(seed=seed)
    rng = random.Random(seed)
    payloads: list[tuple[bytes, int]] = []
    total = 0
    while total < spans:
        request, count = shop.traces_request(batch)
        enrich(request, rng)
        payloads.append((request.SerializeToString(), count))
        total += count
    channel = grpc.insecure_channel(target, options=[
        ("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT,
                                 response_deserializer=ExportTraceServiceResponse.FromString)
    export(payloads[0][0], timeout=30)  # connect and warm up; the receiver's db is fresh
    ready.put(os.getpid())
    go.wait()
    accepted = rejected = failed = 0
    latencies: list[float] = []
    for body, count in payloads[1:]:
        started = time.perf_counter()
        try:
            response = export(body, timeout=30)
        except grpc.RpcError:
            failed += 1
            rejected += count
        else:
            refused = response.partial_success.rejected_spans
            accepted += count - refused
            rejected += refused
        latencies.append(time.perf_counter() - started)
    results.put((accepted, rejected, failed, latencies, time.perf_counter()))
    channel.close()


def _peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of a process and its children (Linux: VmHWM), 0 if unknown."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid] + ([int(p) for p in children.read_text().split()] if children.exists() else [])
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def _start_receiver(db_path: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracedesk", "serve", "--db", str(db_path),
         "--grpc-port", "0", "--http-port", "0", "--max-age", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ready."):
            port = re.search(r"OTLP/gRPC\s+\S+:(\d+)", "".join(lines))
            assert port is not None
            return proc, int(port.group(1))
    raise RuntimeError("the receiver did not start:\n" + "".join(lines))


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def bench_once(spans: int, batch: int, senders: int, seed: int) -> RunResult:
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="tracedesk-bench-") as tmp:
        db_path = Path(tmp) / "bench.db"
        receiver, port = _start_receiver(db_path)
        try:
            ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
            workers = [ctx.Process(target=_sender, args=(
                f"127.0.0.1:{port}", spans // senders + batch, batch, seed * 100 + i,
                ready, go, results)) for i in range(senders)]
            for w in workers:
                w.start()
            for _ in workers:
                ready.get(timeout=300)
            started = time.perf_counter()
            go.set()
            outcomes = [results.get(timeout=600) for _ in workers]
            for w in workers:
                w.join()
            peak_rss = _peak_rss_bytes(receiver.pid)
        finally:
            receiver.send_signal(signal.SIGTERM)
            receiver.communicate(timeout=60)
        conn = sqlite3.connect(db_path)
        stored = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        conn.close()
    seconds = max(o[4] for o in outcomes) - started
    accepted = sum(o[0] for o in outcomes)
    latencies = sorted(x for o in outcomes for x in o[3])
    return RunResult(
        accepted_spans=accepted, rejected_spans=sum(o[1] for o in outcomes),
        failed_requests=sum(o[2] for o in outcomes), seconds=round(seconds, 3),
        spans_per_second=round(accepted / seconds),
        latency_p50_ms=round(1000 * statistics.median(latencies), 1),
        latency_p99_ms=round(1000 * _percentile(latencies, 0.99), 1),
        receiver_peak_rss_mb=round(peak_rss / 1e6, 1), stored_spans=stored)


def run_bench(spans: int, batch: int, senders: int, runs: int, as_json: bool) -> int:
    if not as_json:
        print(f"tracedesk bench: {runs} run(s) of {spans:,} spans in batches of {batch} "
              f"from {senders} sender process(es) over OTLP/gRPC; each run uses a fresh "
              "receiver and database", flush=True)
    results = []
    for n in range(runs):
        result = bench_once(spans, batch, senders, seed=n + 1)
        results.append(result)
        if not as_json:
            print(f"  run {n + 1}: {result.spans_per_second:>8,} spans/s  "
                  f"p50 {result.latency_p50_ms} ms  p99 {result.latency_p99_ms} ms  "
                  f"peak RSS {result.receiver_peak_rss_mb} MB  "
                  f"stored {result.stored_spans:,}  failed requests {result.failed_requests}",
                  flush=True)
    summary = {
        "spans_per_second_median": statistics.median(r.spans_per_second for r in results),
        "latency_p50_ms_median": statistics.median(r.latency_p50_ms for r in results),
        "latency_p99_ms_median": statistics.median(r.latency_p99_ms for r in results),
        "receiver_peak_rss_mb_max": max(r.receiver_peak_rss_mb for r in results),
        "senders": senders, "batch": batch, "spans_per_run": spans,
        "runs": [asdict(r) for r in results],
    }
    lost = any(r.stored_spans < r.accepted_spans for r in results)
    if as_json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"median: {summary['spans_per_second_median']:,.0f} accepted spans/s, Export "
              f"latency p50 {summary['latency_p50_ms_median']} ms, p99 "
              f"{summary['latency_p99_ms_median']} ms; receiver peak RSS "
              f"{summary['receiver_peak_rss_mb_max']} MB (receiver and writer processes)")
        if lost:
            print("ERROR: fewer spans stored than acknowledged", file=sys.stderr)
    return 1 if lost else 0
