"""OTLP/gRPC against a real receiver over real channels: status codes, compression, rows.

Every test here is followed by a good Export that must be stored (see ``keeps_serving``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from conftest import ServeProcess, start_serve
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import kv, logs_request, metrics_request, traces_request

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
RESPONSES = {TRACES: ExportTraceServiceResponse, LOGS: ExportLogsServiceResponse,
             METRICS: ExportMetricsServiceResponse}
LIMIT = 1_000_000  # --max-body-size 1MB


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = start_serve(tmp_path_factory.mktemp("grpc-wire"), "--max-body-size", "1MB")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(receiver: ServeProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(receiver.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def gzip_channel(receiver: ServeProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(receiver.grpc_target, compression=grpc.Compression.Gzip) as ch:
        yield ch


@pytest.fixture(autouse=True)
def keeps_serving(receiver: ServeProcess, channel: grpc.Channel) -> Iterator[None]:
    yield
    assert receiver.proc.poll() is None, "the receiver exited"
    trace_id = secrets.token_hex(16)
    response = export(channel, TRACES, spans_request(trace_id, "after"))
    assert not response.HasField("partial_success")
    assert receiver.query("SELECT name FROM spans WHERE trace_id = ?", (trace_id,)) == [
        ("after",)]


def export(channel: grpc.Channel, method: str, body: bytes | object, timeout: float = 10):
    """One unary Export call with raw bytes (or a message); returns the parsed response."""
    if not isinstance(body, bytes):
        body = body.SerializeToString()
    call = channel.unary_unary(method, response_deserializer=RESPONSES[method].FromString)
    return call(body, timeout=timeout)


def export_error(channel: grpc.Channel, method: str, body: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method)(body, timeout=10)
    return info.value


def span(trace_id: str, span_id: str, name: str, **fields) -> trace_pb2.Span:
    now = time.time_ns()
    return trace_pb2.Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id),
                          name=name, start_time_unix_nano=now, end_time_unix_nano=now + 1000,
                          **fields)


def spans_request(trace_id: str, *names: str, service: str = "grpc-svc") -> bytes:
    spans = [span(trace_id, f"{i + 1:016x}", name) for i, name in enumerate(names)]
    return traces_request({service: spans}).SerializeToString()


def gauge(name: str, value: int) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name)
    metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_int=value)
    return metric


def counts(server: ServeProcess) -> tuple:
    return server.query("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM logs), "
                        "(SELECT count(*) FROM metric_points), "
                        "(SELECT count(*) FROM resources)")[0]


# --- the three services ------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["identity", "gzip"])
def test_each_service_stores_its_signal(receiver, channel, gzip_channel, compressed):
    ch = gzip_channel if compressed else channel
    service = f"grpc-{secrets.token_hex(4)}"
    trace_id = secrets.token_hex(16)
    now = time.time_ns()

    response = export(ch, TRACES, spans_request(trace_id, "root", "child", service=service))
    assert not response.HasField("partial_success")
    assert receiver.query("SELECT name, service_name FROM spans WHERE trace_id = ? "
                          "ORDER BY span_id", (trace_id,)) == [("root", service),
                                                               ("child", service)]

    record = logs_pb2.LogRecord(time_unix_nano=now, severity_number=logs_pb2.SEVERITY_NUMBER_WARN,
                                severity_text="WARN", body=AnyValue(string_value="careful"),
                                trace_id=bytes.fromhex(trace_id), span_id=(1).to_bytes(8, "big"))
    response = export(ch, LOGS, logs_request(record, service=service, scope="grpc.logger"))
    assert not response.HasField("partial_success")
    assert receiver.query("SELECT time_unix_nano, severity_number, body, trace_id, span_id, "
                          "scope_name FROM logs WHERE service_name = ?", (service,)) == [
        (now, 13, '"careful"', trace_id, f"{1:016x}", "grpc.logger")]

    response = export(ch, METRICS, metrics_request(gauge("queue.depth", 12), service=service))
    assert not response.HasField("partial_success")
    assert receiver.query("SELECT name, type, value FROM metric_points WHERE service_name = ?",
                          (service,)) == [("queue.depth", "gauge", 12.0)]


def test_large_compressible_request_within_the_limit(receiver, gzip_channel):
    trace_id = secrets.token_hex(16)
    spans = [span(trace_id, f"{i + 1:016x}", f"s{i}", attributes=[kv("pad", "y" * 500)])
             for i in range(1500)]
    body = traces_request({"svc": spans}).SerializeToString()
    assert len(body) < LIMIT
    export(gzip_channel, TRACES, body)
    assert receiver.query("SELECT count(*) FROM spans WHERE trace_id = ?", (trace_id,)) == [
        (1500,)]


def test_text_comes_back_exactly(receiver, channel):
    trace_id = secrets.token_hex(16)
    names = ["nul\x00 esc\x1b[31m bell\x07 \r\n", "[bold red]x[/]", "[@click=app.quit]boom",
             "日本語 🚀 naïve"]
    export(channel, TRACES, spans_request(trace_id, *names))
    rows = receiver.query("SELECT name FROM spans WHERE trace_id = ? ORDER BY span_id",
                          (trace_id,))
    assert [r[0] for r in rows] == names


def test_resent_span_is_stored_once(receiver, channel):
    trace_id = secrets.token_hex(16)
    body = spans_request(trace_id, "only")
    export(channel, TRACES, body)
    export(channel, TRACES, body)
    assert receiver.query("SELECT count(*) FROM spans WHERE trace_id = ?", (trace_id,)) == [(1,)]
    assert receiver.query("SELECT span_count FROM traces WHERE trace_id = ?", (trace_id,)) == [
        (1,)]


@pytest.mark.parametrize("method", [TRACES, LOGS, METRICS])
def test_empty_request_is_ok_and_stores_nothing(receiver, channel, method):
    before = counts(receiver)
    response = export(channel, method, b"")
    assert response.ByteSize() == 0
    assert counts(receiver) == before


# --- rejected items: OK with partial_success ---------------------------------------------


def test_spans_with_wrong_length_ids_are_partial_success(receiver, channel):
    trace_id = secrets.token_hex(16)
    good = span(trace_id, "01" * 8, "good")
    short_trace = trace_pb2.Span(trace_id=bytes.fromhex(trace_id)[:12], span_id=b"\x02" * 8,
                                 name="short trace")
    long_span = trace_pb2.Span(trace_id=bytes.fromhex(trace_id), span_id=b"\x03" * 9,
                               name="long span")
    bad_parent = span(trace_id, "04" * 8, "bad parent", parent_span_id=b"\x01")
    response = export(channel, TRACES, traces_request({"svc": [short_trace, good, long_span,
                                                               bad_parent]}))
    assert response.partial_success.rejected_spans == 3
    for name in ("'short trace'", "'long span'", "'bad parent'"):
        assert name in response.partial_success.error_message
    assert receiver.query("SELECT name FROM spans WHERE trace_id = ?", (trace_id,)) == [
        ("good",)]


def test_logs_with_wrong_length_ids_are_partial_success(receiver, channel):
    service = f"grpc-{secrets.token_hex(4)}"
    records = [logs_pb2.LogRecord(time_unix_nano=time.time_ns(), severity_text="kept"),
               logs_pb2.LogRecord(time_unix_nano=time.time_ns(), trace_id=b"\x01" * 10),
               logs_pb2.LogRecord(time_unix_nano=time.time_ns(), trace_id=b"\x01" * 16,
                                  span_id=b"\x01" * 3)]
    response = export(channel, LOGS, logs_request(*records, service=service))
    assert response.partial_success.rejected_log_records == 2
    assert "invalid trace_id (10 bytes)" in response.partial_success.error_message
    assert receiver.query("SELECT severity_text FROM logs WHERE service_name = ?",
                          (service,)) == [("kept",)]


def test_metric_without_data_is_partial_success(receiver, channel):
    service = f"grpc-{secrets.token_hex(4)}"
    response = export(channel, METRICS, metrics_request(
        metrics_pb2.Metric(name="no data"), gauge("kept", 1), service=service))
    assert response.partial_success.rejected_data_points == 1
    assert "'no data'" in response.partial_success.error_message
    assert receiver.query("SELECT name FROM metric_points WHERE service_name = ?",
                          (service,)) == [("kept",)]


def test_times_beyond_int64_are_partial_success(receiver, channel):
    trace_id = secrets.token_hex(16)
    far = span(trace_id, "02" * 8, "far future")
    far.end_time_unix_nano = 2**64 - 1
    response = export(channel, TRACES, traces_request({"svc": [span(trace_id, "01" * 8, "now"),
                                                               far]}))
    assert response.partial_success.rejected_spans == 1
    assert receiver.query("SELECT name FROM spans WHERE trace_id = ?", (trace_id,)) == [
        ("now",)]

    service = f"grpc-{secrets.token_hex(4)}"
    hist = metrics_pb2.Metric(name="huge count")
    hist.histogram.data_points.add(time_unix_nano=time.time_ns(), count=2**63)
    response = export(channel, METRICS, metrics_request(hist, gauge("kept", 2), service=service))
    assert response.partial_success.rejected_data_points == 1
    assert receiver.query("SELECT name FROM metric_points WHERE service_name = ?",
                          (service,)) == [("kept",)]


# --- failed calls ------------------------------------------------------------------------


def _truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]


@pytest.mark.parametrize(("method", "body"), [
    (TRACES, _truncated(spans_request("ab" * 16, "a" * 40, "b" * 40))),
    (LOGS, _truncated(logs_request(logs_pb2.LogRecord(severity_text="x" * 80))
                      .SerializeToString())),
    (METRICS, _truncated(metrics_request(gauge("m" * 80, 1)).SerializeToString())),
    (TRACES, b"\xff\xff\xff\xff"),
    (TRACES, spans_request("ab" * 16, "ABCD").replace(b"ABCD", b"\xc3\x28CD")),
], ids=["traces-truncated", "logs-truncated", "metrics-truncated", "garbage", "invalid-utf8"])
@pytest.mark.parametrize("compressed", [False, True], ids=["identity", "gzip"])
def test_malformed_protobuf_is_invalid_argument(channel, gzip_channel, method, body,
                                                compressed):
    error = export_error(gzip_channel if compressed else channel, method, body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid protobuf Export" in error.details()


@pytest.mark.parametrize("compressed", [False, True], ids=["identity", "gzip"])
def test_oversized_message_is_resource_exhausted(receiver, channel, gzip_channel, compressed):
    # With gzip this is a few kilobytes on the wire: the limit applies once decompressed.
    trace_id = secrets.token_hex(16)
    big = span(trace_id, "01" * 8, "big", attributes=[kv("pad", "z" * (3 * LIMIT))])
    body = traces_request({"svc": [big]}).SerializeToString()
    error = export_error(gzip_channel if compressed else channel, TRACES, body)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert receiver.query("SELECT count(*) FROM spans WHERE trace_id = ?", (trace_id,)) == [(0,)]


@pytest.mark.parametrize("method", [
    "/opentelemetry.proto.collector.trace.v1.TraceService/Exports",
    "/opentelemetry.proto.collector.trace.v1.TraceService/export",
    "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
    "/opentelemetry.proto.collector.trace.v2.TraceService/Export",
    "/grpc.health.v1.Health/Check",
])
def test_unknown_method_is_unimplemented(channel, method):
    error = export_error(channel, method, b"")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_good_and_bad_calls_at_once(receiver, channel, gzip_channel):
    trace_id = secrets.token_hex(16)

    def call(i: int) -> grpc.StatusCode:
        ch = gzip_channel if i % 2 else channel
        if i % 3 == 0:
            return export_error(ch, TRACES, b"\x0a\xff\xff").code()
        export(ch, TRACES, traces_request({"svc": [span(trace_id, f"{i + 1:016x}", f"s{i}")]}))
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(call, range(60)))
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT if i % 3 == 0 else grpc.StatusCode.OK
                     for i in range(60)]
    assert receiver.query("SELECT count(*) FROM spans WHERE trace_id = ?", (trace_id,)) == [
        (40,)]

