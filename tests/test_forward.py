"""`--forward URL`: a receiver passes what it stores on to an upstream OTLP endpoint.

The upstream is a second real `tracedesk serve` (a real OTLP endpoint, both transports)
with its own database; data is sent to the first with the real SDK exporters, or as
OTLP/JSON over HTTP, and must arrive in the upstream's SQLite as it was stored locally.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ServeProcess, clean_env, start_serve
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tracedesk.cli import build_parser, main, settings_from
from tracedesk.config import Settings
from tracedesk.otlp import Signal
from tracedesk.receiver.child import _child_env, serve_command
from tracedesk.receiver.forward import Forwarder
from tracedesk.receiver.http_server import rpc_status
from tracedesk.receiver.upstream import (
    Upstream,
    _http_message,
    _retry_after,
    _retry_info,
    parse_headers,
)

SPAN_COLUMNS = ("trace_id, span_id, parent_span_id, name, kind, service_name, "
                "start_time_unix_nano, end_time_unix_nano, status_code, status_message, "
                "attributes, events, links, scope_name, scope_version, trace_state")
LOG_COLUMNS = ("time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body, "
               "attributes, trace_id, span_id, service_name, scope_name, event_name, flags")
POINT_COLUMNS = ("name, description, unit, type, temporality, is_monotonic, service_name, "
                 "start_time_unix_nano, time_unix_nano, value, count, sum, min, max, buckets, "
                 "attributes, exemplars")


def rows(receiver: ServeProcess, table: str, columns: str) -> list[tuple]:
    return sorted(receiver.query(f"SELECT {columns} FROM {table}"), key=repr)


def wait_for_rows(receiver: ServeProcess, table: str, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (have,) = receiver.query(f"SELECT count(*) FROM {table}")[0]
        # Spans stored before their attributes were converted are not comparable yet.
        raw = table == "spans" and receiver.query(
            "SELECT count(*) FROM spans WHERE raw IS NOT NULL")[0][0]
        if have >= count and not raw:
            assert have == count, f"{have} rows in {table}, expected {count}"
            return
        assert time.monotonic() < deadline, f"{have} of {count} rows in {table} arrived"
        time.sleep(0.05)


def upstream_url(upstream: ServeProcess, kind: str) -> str:
    return (f"grpc://127.0.0.1:{upstream.grpc_port}" if kind == "grpc"
            else f"http://127.0.0.1:{upstream.http_port}")


def send_with_sdk(receiver: ServeProcess, service: str) -> None:
    """Spans over OTLP/gRPC, logs and metrics over OTLP/HTTP protobuf, with the SDK."""
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(
        GrpcSpans(endpoint=receiver.grpc_target, insecure=True)))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(
        HttpLogs(endpoint=f"{receiver.http_url}/v1/logs")))
    logger = logging.getLogger(f"tests.forward.{service}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = tracer_provider.get_tracer("tests.forward", "0.1")
    with tracer.start_as_current_span("GET /cart", attributes={"http.route": "/cart"}), \
            tracer.start_as_current_span("SELECT carts") as child:
        child.add_event("rows", {"count": 3})
        logger.warning("slow query: %d ms", 230)
    reader = PeriodicExportingMetricReader(HttpMetrics(endpoint=f"{receiver.http_url}/v1/metrics"),
                                           export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("tests.forward")
    meter.create_counter("carts").add(2, {"region": "eu"})
    meter.create_histogram("latency", unit="ms").record(12.5)
    assert meter_provider.force_flush(10_000)
    for provider in (tracer_provider, logger_provider, meter_provider):
        provider.shutdown()
    logger.removeHandler(handler)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_what_the_sdk_sends_arrives_upstream_as_stored_locally(tmp_path, kind):
    upstream = start_serve(tmp_path, db_name="upstream.db")
    local = start_serve(tmp_path, "--forward", upstream_url(upstream, kind))
    try:
        assert f"  forward    {upstream_url(upstream, kind)}\n" in local.output
        send_with_sdk(local, f"shop-{kind}")
        stored = 0
        for table in ("spans", "logs", "metric_points"):
            count = len(local.query(f"SELECT 1 FROM {table}"))
            wait_for_rows(upstream, table, count)
            stored += count
        assert len(rows(local, "spans", SPAN_COLUMNS)) == 2
        assert rows(upstream, "spans", SPAN_COLUMNS) == rows(local, "spans", SPAN_COLUMNS)
        assert rows(upstream, "logs", LOG_COLUMNS) == rows(local, "logs", LOG_COLUMNS)
        assert (rows(upstream, "metric_points", POINT_COLUMNS)
                == rows(local, "metric_points", POINT_COLUMNS))
    finally:
        assert local.stop() == 0
        upstream.stop()
    summary = "".join(local.output)
    assert f" requests ({stored} items) forwarded to {upstream_url(upstream, kind)}," in summary
    assert "0 retries, 0 dropped" in summary and "not taking data" not in summary


def post_json(receiver: ServeProcess, path: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body).encode(),
                     {"Content-Type": "application/json"})
        answer = conn.getresponse()
        assert answer.status == 200
        return json.loads(answer.read())
    finally:
        conn.close()


def test_otlp_json_received_over_http_reaches_a_grpc_upstream_intact(tmp_path):
    upstream = start_serve(tmp_path, db_name="upstream.db")
    local = start_serve(tmp_path, "--forward", upstream_url(upstream, "grpc"))
    now = time.time_ns()
    trace_id, root_id, child_id = "5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174", \
        "0102030405060708"
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]}
    spans = [
        {"traceId": trace_id, "spanId": root_id, "name": "POST /pay", "kind": "SPAN_KIND_SERVER",
         "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
         "status": {"code": "STATUS_CODE_ERROR", "message": "declined"},
         "attributes": [{"key": "retries", "value": {"intValue": "3"}},
                        {"key": "blob", "value": {"bytesValue": "AAEC"}},
                        {"key": "tags", "value": {"arrayValue": {"values": [
                            {"stringValue": "a"}, {"doubleValue": 1.5}]}}}],
         "events": [{"timeUnixNano": str(now + 1000), "name": "charge",
                     "attributes": [{"key": "ok", "value": {"boolValue": False}}]}],
         "aNewField": {"ignored": True}},
        {"traceId": trace_id.lower(), "spanId": child_id, "parentSpanId": root_id,
         "name": "charge", "kind": 3, "startTimeUnixNano": now + 100,
         "endTimeUnixNano": now + 200, "traceState": "k=v",
         "links": [{"traceId": "00112233445566778899aabbccddeeff",
                    "spanId": "0011223344556677", "attributes": []}]},
        # Not hex: rejected here (partial success) and, forwarded as it came, there too.
        {"traceId": trace_id, "spanId": "zz", "name": "bad id",
         "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1)},
    ]
    logs = [{"timeUnixNano": str(now), "severityNumber": 17, "severityText": "ERROR",
             "body": {"kvlistValue": {"values": [{"key": "msg",
                                                  "value": {"stringValue": "declined"}}]}},
             "traceId": trace_id, "spanId": child_id}]
    points = [{"asInt": "7", "timeUnixNano": str(now), "startTimeUnixNano": str(now - 10**9),
               "attributes": [{"key": "region", "value": {"stringValue": "eu"}}]}]
    try:
        answer = post_json(local, "/v1/traces", {"resourceSpans": [
            {"resource": resource, "scopeSpans": [{"scope": {"name": "json"}, "spans": spans}]}]})
        assert answer["partialSuccess"]["rejectedSpans"] == "1"
        post_json(local, "/v1/logs", {"resourceLogs": [
            {"resource": resource, "scopeLogs": [{"logRecords": logs}]}]})
        post_json(local, "/v1/metrics", {"resourceMetrics": [
            {"resource": resource, "scopeMetrics": [{"metrics": [
                {"name": "payments", "unit": "1", "sum": {
                    "dataPoints": points, "isMonotonic": True,
                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE"}}]}]}]})
        wait_for_rows(upstream, "spans", 2)
        wait_for_rows(upstream, "logs", 1)
        wait_for_rows(upstream, "metric_points", 1)
        assert rows(upstream, "spans", SPAN_COLUMNS) == rows(local, "spans", SPAN_COLUMNS)
        assert rows(upstream, "logs", LOG_COLUMNS) == rows(local, "logs", LOG_COLUMNS)
        assert (rows(upstream, "metric_points", POINT_COLUMNS)
                == rows(local, "metric_points", POINT_COLUMNS))
        (link,) = json.loads(upstream.query("SELECT links FROM spans WHERE name = 'charge'")[0][0])
        assert link["trace_id"] == "00112233445566778899aabbccddeeff"
    finally:
        local.stop()
        upstream.stop()
    summary = "".join(local.output)
    assert "3 requests (5 items) forwarded to grpc://" in summary, summary
    assert "(1 items rejected there)" in summary and "0 dropped" in summary


def test_headers_reach_the_upstream_and_a_refusal_is_dropped_not_retried(tmp_path):
    upstream = start_serve(tmp_path, "--token", "team-secret", db_name="upstream.db")
    with_token = start_serve(tmp_path, "--forward", upstream_url(upstream, "http"),
                             "--forward-headers", "Authorization=Bearer%20team-secret",
                             db_name="a.db")
    without = start_serve(tmp_path, "--forward", upstream_url(upstream, "grpc"), db_name="b.db")
    try:
        for receiver, name in ((with_token, "with the token"), (without, "without")):
            exporter = HttpSpans(endpoint=f"{receiver.http_url}/v1/traces")
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            with provider.get_tracer("tests").start_as_current_span(name):
                pass
            provider.shutdown()
        wait_for_rows(upstream, "spans", 1)
        time.sleep(0.5)  # the refused one would have arrived by now
        assert upstream.query("SELECT name FROM spans") == [("with the token",)]
    finally:
        with_token.stop()
        without.stop()
        upstream.stop()
    refused = "".join(without.output)
    assert "refused a traces request (UNAUTHENTICATED: missing or wrong bearer token" in refused
    assert "0 retries, 1 dropped (1 refused: 1 items)" in refused, refused


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_data_sent_while_the_upstream_is_down_arrives_once_it_starts(tmp_path, kind):
    grpc_port, http_port = free_port(), free_port()
    port = grpc_port if kind == "grpc" else http_port
    local = start_serve(tmp_path, "--forward", f"{kind}://127.0.0.1:{port}")
    upstream = None
    try:
        exporter = HttpSpans(endpoint=f"{local.http_url}/v1/traces")
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("tests").start_as_current_span("early"):
            pass
        provider.shutdown()  # acknowledged: stored locally, though nothing listens upstream
        time.sleep(1.0)
        upstream = start_serve(tmp_path, "--grpc-port", str(grpc_port),
                               "--http-port", str(http_port), db_name="upstream.db")
        wait_for_rows(upstream, "spans", 1)
        assert upstream.query("SELECT name FROM spans") == [("early",)]
    finally:
        local.stop()
        if upstream is not None:
            upstream.stop()
    output = "".join(local.output)
    assert output.count("is not taking data") == 1, output  # one line, not one per retry
    assert "takes data again" in output
    assert "1 requests (1 items) forwarded" in output and "0 dropped" in output


def test_shutdown_waits_only_briefly_for_an_unreachable_upstream(tmp_path):
    local = start_serve(tmp_path, "--forward", f"grpc://127.0.0.1:{free_port()}")
    post_json(local, "/v1/traces", {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
         "name": "lost upstream", "startTimeUnixNano": str(time.time_ns()),
         "endTimeUnixNano": str(time.time_ns())}]}]}]})
    started = time.monotonic()
    assert local.stop() == 0
    assert time.monotonic() - started < 8
    output = "".join(local.output)
    assert "stored 1 spans" in output and "1 dropped (1 at shutdown: 1 items)" in output


def test_a_bad_forward_url_stops_serve_with_a_one_line_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tracedesk", "serve", "--db", str(tmp_path / "t.db"),
         "--forward", "localhost:4318"], capture_output=True, text=True, timeout=60,
        env=clean_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr == ("tracedesk: --forward: 'localhost:4318' is not an upstream URL: "
                             "use http://HOST:PORT, https://HOST[/PREFIX] or grpc://HOST:PORT "
                             "(grpcs:// for TLS)\n")
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize(("url", "says"), [
    ("ftp://collector:21", "is not an upstream URL"),
    ("http://", "is not an upstream URL"),
    ("grpc://collector:4317/v1/traces", "a gRPC URL has no path"),
    ("http://collector:99999", "has a bad port"),
    ("https://user:pw@collector", "put credentials in --forward-headers"),
    ("http://collector:4318/?tenant=a", "takes no ?query"),
])
def test_bad_forward_urls_are_refused_before_anything_starts(url, says, tmp_path, monkeypatch,
                                                             capsys):
    monkeypatch.setenv("TRACEDESK_CONFIG", str(tmp_path / "no-config.toml"))
    for argv in (["serve", "--forward", url], ["--forward", url]):  # serve, and the app
        assert main([*argv, "--db", str(tmp_path / "t.db")]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("tracedesk: --forward: ") and says in line
    monkeypatch.setenv("TRACEDESK_FORWARD", url)
    assert main(["serve", "--db", str(tmp_path / "t.db")]) == 2
    assert capsys.readouterr().err.startswith("tracedesk: TRACEDESK_FORWARD: ")
    assert not (tmp_path / "t.db").exists()


def test_forwarding_to_itself_is_refused(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "tracedesk", "serve", "--db", str(tmp_path / "t.db"),
         "--grpc-port", "0", "--http-port", str(port),
         "--forward", f"http://localhost:{port}"],
        capture_output=True, text=True, timeout=60, env=clean_env(tmp_path))
    assert result.returncode == 2
    assert f"--forward http://localhost:{port} is this receiver itself" in result.stderr


def test_upstream_urls():
    assert str(Upstream.parse("http://collector:4318")) == "http://collector:4318"
    assert Upstream.parse("HTTP://collector").port == 80
    assert Upstream.parse("grpc://collector").port == 4317
    assert Upstream.parse("grpcs://tempo.example.com").port == 443
    assert Upstream.parse("grpcs://tempo.example.com").secure
    # A prefix is kept; a signal's own path stands for the prefix before it.
    assert Upstream.parse("https://otlp.example.com/otlp/").path == "/otlp"
    assert Upstream.parse("https://otlp.example.com/otlp/v1/traces").path == "/otlp"
    assert str(Upstream.parse("http://[::1]:4318/v1/logs")) == "http://[::1]:4318"
    here = Upstream.parse("grpc://127.0.0.1:4317")
    assert here.is_receiver("127.0.0.1", (4317, 4318))
    assert not here.is_receiver("127.0.0.1", (14317, 14318))
    assert not Upstream.parse("grpc://collector:4317").is_receiver("127.0.0.1", (4317, 4318))


def test_upstream_headers():
    assert parse_headers("Authorization=Bearer%20x, X-Scope-OrgID=team ,") == [
        ("authorization", "Bearer x"), ("x-scope-orgid", "team")]
    assert parse_headers("") == parse_headers(None) == []
    for bad in ("novalue", "=x", "bad name=x", "a=b%0Ac"):
        with pytest.raises(ValueError):
            parse_headers(bad)


def test_a_full_queue_drops_the_oldest_requests():
    forwarder = Forwarder(Upstream.parse(f"http://127.0.0.1:{free_port()}"), max_bytes=1000)
    for n in range(5):  # the sending thread is not started: everything stays queued
        forwarder.submit(Signal.TRACES, bytes([n]) * 300, json=False, items=n + 1)
    forwarder.submit(Signal.LOGS, b"x" * 1001, json=False, items=9)
    assert [item.body[0] for item in forwarder._queue] == [2, 3, 4]
    assert forwarder.stats.queued_bytes == 900
    assert forwarder.stats.dropped == {"queue full": 2, "larger than the queue": 1}
    assert forwarder.stats.dropped_items == 1 + 2 + 9
    forwarder.close(timeout=0)
    assert forwarder.stats.dropped["at shutdown"] == 3 and forwarder.stats.queued_bytes == 0


def test_an_upstreams_error_message_is_read_for_the_log():
    for json_ in (False, True):
        body = rpc_status(3, "bad\nthing", json=json_)
        content_type = "application/json" if json_ else "application/x-protobuf"
        assert _http_message(body, content_type) == ": bad thing"
    assert _http_message(b"no such path", "text/plain") == ": no such path"
    assert _http_message(b"", "text/plain") == ""


def test_retry_delays_the_upstream_asks_for():
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    assert 0 < _retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                          time.gmtime(time.time() + 60))) <= 60
    info = any_pb2.Any()
    info.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2,
                                                                              nanos=500_000_000)))
    status = status_pb2.Status(code=8, message="slow down", details=[info])
    assert _retry_info((("grpc-status-details-bin", status.SerializeToString()),)) == 2.5
    assert _retry_info((("other", b""),)) is None


def test_the_apps_child_receiver_forwards_too_with_headers_kept_off_its_argv(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("TRACEDESK_CONFIG", str(tmp_path / "no-config.toml"))
    settings = Settings(db_path=tmp_path / "t.db", forward="grpc://collector:4317",
                        forward_headers="authorization=Bearer team", forward_queue_size=1000)
    command = serve_command(settings)
    assert not any("team" in arg for arg in command)
    parsed = settings_from(build_parser().parse_args(command[3:]))
    assert parsed == Settings(db_path=tmp_path / "t.db", forward="grpc://collector:4317",
                              forward_queue_size=1000)
    env = _child_env({"PATH": "/bin"}, None, settings.forward_headers)
    assert env == {"PATH": "/bin", "TRACEDESK_FORWARD_HEADERS": "authorization=Bearer team"}
    assert "TRACEDESK_FORWARD_HEADERS" not in _child_env({"TRACEDESK_FORWARD_HEADERS": "x"}, None)
    # No forward: the child is told so, whatever its config file says.
    assert serve_command(Settings(db_path=Path("t.db")))[-2:] == ["--forward", ""]
