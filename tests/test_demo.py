"""`tracedesk demo`: the shop's telemetry through a real receiver, and the generator alone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import defaultdict

from conftest import as_read, clean_env, start_serve
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tracedesk.demo.run import run_demo
from tracedesk.demo.shop import Shop

NOW = 1_800_000_000_000_000_000
RESOURCE_KEYS = {"service.name", "service.version", "service.namespace",
                 "deployment.environment.name", "host.name", "telemetry.sdk.name",
                 "telemetry.sdk.language", "telemetry.sdk.version"}


def run_cli_demo(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracedesk", "demo", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=clean_env(tmp_path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spans_of(request: ExportTraceServiceRequest) -> list[tuple[str, Span]]:
    out = []
    for rs in request.resource_spans:
        attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
        assert attrs.keys() >= RESOURCE_KEYS
        out += [(attrs["service.name"], s) for ss in rs.scope_spans for s in ss.spans]
    return out


def by_trace(request: ExportTraceServiceRequest) -> dict[bytes, list[tuple[str, Span]]]:
    traces: dict[bytes, list[tuple[str, Span]]] = defaultdict(list)
    for service, span in spans_of(request):
        traces[span.trace_id].append((service, span))
    return traces


def shape(request: ExportTraceServiceRequest) -> list[list[tuple]]:
    """Each trace without its ids: services, names, kinds, parents, timing and status."""
    out = []
    for spans in by_trace(request).values():
        index = {s.span_id: i for i, (_, s) in enumerate(spans)}
        out.append([(svc, s.name, s.kind, index.get(s.parent_span_id, -1),
                     s.end_time_unix_nano - s.start_time_unix_nano, s.status.code)
                    for svc, s in spans])
    return out


def test_demo_fills_a_receiver_with_a_realistic_shop(serve, tmp_path):
    result = run_cli_demo(tmp_path, "--endpoint", serve.grpc_target, "--duration", "3",
                          "--rate", "10", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert f"to {serve.grpc_target}" in result.stdout.splitlines()[0]
    assert "stopped after" in result.stdout and "traces (" in result.stdout

    services = {row[0] for row in serve.query("SELECT DISTINCT service_name FROM spans")}
    assert {"frontend", "checkout", "payments", "inventory"} <= services
    assert len(services) >= 5
    low, high, count = serve.query(
        "SELECT min(span_count), max(span_count), count(*) FROM traces WHERE has_root = 1")[0]
    assert count >= 20 and low >= 5 and high <= 60
    assert serve.query("SELECT count(*) FROM traces WHERE has_root = 0") == [(0,)]

    # Errors with exception events, other span events, and links to stored producer spans.
    assert serve.query("SELECT count(*) FROM spans WHERE status_code = 2")[0][0] > 0
    events = [json.loads(row[0]) for row in serve.query(
        f"SELECT {as_read('events')} AS e FROM spans WHERE e != '[]'")]
    assert any(e["name"] != "exception" for evs in events for e in evs)
    links = [link for row in serve.query(
                 f"SELECT {as_read('links')} AS l FROM spans WHERE l != '[]'")
             for link in json.loads(row[0])]
    assert links
    for link in links:
        assert serve.query("SELECT kind FROM spans WHERE trace_id = ? AND span_id = ?",
                           (link["trace_id"], link["span_id"])) == [(4,)]  # producer
    # The uninstrumented peers show up on client spans only.
    assert serve.query("SELECT count(*) FROM spans WHERE kind = 3 AND json_extract("
                       f"{as_read('attributes')}, '$.\"db.system.name\"') = 'postgresql'")[0][0] > 0

    correlated, matched = serve.query(
        "SELECT count(*), sum(EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = l.trace_id AND "
        "s.span_id = l.span_id)) FROM logs l WHERE l.trace_id != ''")[0]
    assert correlated > 0 and matched == correlated
    severities = {row[0] for row in serve.query("SELECT DISTINCT severity_text FROM logs")}
    assert "INFO" in severities and severities <= {"DEBUG", "INFO", "WARN", "ERROR"}

    kinds = dict(serve.query("SELECT type, count(*) FROM metric_points GROUP BY type"))
    assert kinds.get("sum", 0) > 0 and kinds.get("histogram", 0) > 0 and kinds.get("gauge", 0)
    exemplar_traces = {e["trace_id"] for row in serve.query(
        "SELECT exemplars FROM metric_points WHERE exemplars != '[]'")
        for e in json.loads(row[0])}
    assert exemplar_traces
    stored = {row[0] for row in serve.query("SELECT trace_id FROM traces")}
    assert exemplar_traces & stored


def test_a_batch_is_whole_traces_nested_in_time():
    request, count = Shop(seed=1).traces_request(512, now_ns=NOW)
    spans = spans_of(request)
    assert count == len(spans) >= 512
    assert len({s.span_id for _, s in spans}) == len(spans)
    everything = {(s.trace_id, s.span_id): s for _, s in spans}
    for trace in by_trace(request).values():
        assert 5 <= len(trace) <= 60
        ids = {s.span_id: s for _, s in trace}
        assert sum(1 for _, s in trace if not s.parent_span_id) == 1
        for _, s in trace:
            assert len(s.trace_id) == 16 and any(s.trace_id)
            assert len(s.span_id) == 8 and any(s.span_id)
            assert s.start_time_unix_nano <= s.end_time_unix_nano <= NOW
            assert len(s.attributes) >= 1
            for link in s.links:  # consumers link to the producer, sent alongside
                assert everything[link.trace_id, link.span_id].kind == Span.SPAN_KIND_PRODUCER
            if not s.parent_span_id:
                continue
            parent = ids[s.parent_span_id]
            assert parent.start_time_unix_nano <= s.start_time_unix_nano
            assert s.end_time_unix_nano <= parent.end_time_unix_nano
            for event in s.events:
                assert s.start_time_unix_nano <= event.time_unix_nano <= s.end_time_unix_nano
            if s.kind == Span.SPAN_KIND_SERVER:  # the network between caller and callee
                assert parent.kind == Span.SPAN_KIND_CLIENT
                assert parent.start_time_unix_nano < s.start_time_unix_nano
                assert s.end_time_unix_nano < parent.end_time_unix_nano
    attrs_per_span = sum(len(s.attributes) for _, s in spans) / len(spans)
    assert 7 <= attrs_per_span <= 12
    assert any(s.status.code == 2 for _, s in spans)


def test_the_same_seed_gives_the_same_traces_with_fresh_ids():
    first, _ = Shop(seed=1).traces_request(512, now_ns=NOW)
    again, _ = Shop(seed=1).traces_request(512, now_ns=NOW)
    other, _ = Shop(seed=2).traces_request(512, now_ns=NOW)
    assert shape(first) == shape(again)
    assert shape(first) != shape(other)
    assert not by_trace(first).keys() & by_trace(again).keys()


def test_logs_and_metrics_refer_to_generated_spans():
    shop = Shop(seed=3)
    request, _ = shop.traces_request(400)
    keys = {(s.trace_id, s.span_id) for _, s in spans_of(request)}
    logs, count = shop.logs_request()
    records = [r for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert count == len(records) > 0
    correlated = [r for r in records if r.trace_id]
    assert correlated and all((r.trace_id, r.span_id) in keys for r in correlated)
    assert any(r.body.HasField("kvlist_value") for r in records)
    assert shop.logs_request()[1] < count  # drained: only background records remain

    metrics, points = shop.metrics_request()
    histograms = [m for rm in metrics.resource_metrics for sm in rm.scope_metrics
                  for m in sm.metrics if m.HasField("histogram")]
    exemplars = [e for m in histograms for p in m.histogram.data_points for e in p.exemplars]
    assert points > 0 and exemplars
    assert all((e.trace_id, e.span_id) in keys for e in exemplars)
    for m in histograms:
        for p in m.histogram.data_points:
            assert sum(p.bucket_counts) == p.count

    def total_requests(request) -> tuple[int, int]:
        (m,) = [m for rm in request.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == "http.server.request.duration"
                and rm.resource.attributes[0].value.string_value == "frontend"]
        starts = {p.start_time_unix_nano for p in m.histogram.data_points}
        assert len(starts) == 1
        return sum(p.count for p in m.histogram.data_points), starts.pop()

    shop.traces_request(400)
    before, start = total_requests(metrics)
    after, same_start = total_requests(shop.metrics_request()[0])
    assert after > before and same_start == start  # cumulative


def test_without_a_receiver_the_demo_says_how_to_start_one(capsys):
    port = free_port()
    started = time.monotonic()
    assert run_demo(f"127.0.0.1:{port}", duration=5, connect_timeout=1.0) == 1
    assert time.monotonic() - started < 8
    err = capsys.readouterr().err
    assert f"cannot reach an OTLP receiver at 127.0.0.1:{port}" in err
    assert "`tracedesk serve`" in err and "--endpoint" in err


def test_the_demo_waits_for_a_receiver_that_starts_late(tmp_path):
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "tracedesk", "demo", "--endpoint", f"127.0.0.1:{port}",
         "--duration", "2", "--rate", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(tmp_path))
    time.sleep(2)
    receiver = start_serve(tmp_path, "--grpc-port", str(port))
    try:
        out, err = demo.communicate(timeout=60)
        assert demo.returncode == 0, err
        assert "retrying" in err and "stopped after" in out
        assert receiver.query("SELECT count(*) FROM traces")[0][0] > 0
    finally:
        receiver.stop()


def test_bad_rates_and_durations_are_usage_errors(capsys):
    assert run_demo("127.0.0.1:1", rate=0) == 2
    assert run_demo("127.0.0.1:1", duration=-1) == 2
    assert "--rate" in capsys.readouterr().err
