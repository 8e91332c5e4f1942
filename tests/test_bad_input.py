"""Bad OTLP/HTTP requests get the right status and body, and the receiver keeps serving.

Every test here is followed by a good request that must be stored (see ``keeps_serving``).
"""

from __future__ import annotations

import gzip
import http.client
import json
import secrets
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ServeProcess, start_serve
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import kv, make_span, traces_request

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
LIMIT = 1_000_000  # --max-body-size 1MB
PATHS = ["/v1/traces", "/v1/logs", "/v1/metrics"]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = start_serve(tmp_path_factory.mktemp("bad-input"), "--max-body-size", "1MB")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def keeps_serving(receiver: ServeProcess) -> Iterator[None]:
    yield
    assert receiver.proc.poll() is None, "the receiver exited"
    trace_id = secrets.token_bytes(16)
    span = trace_pb2.Span(trace_id=trace_id, span_id=b"\x01" * 8, name="after",
                          start_time_unix_nano=time.time_ns(), end_time_unix_nano=time.time_ns())
    reply = post(receiver, "/v1/traces", traces_request({"svc": [span]}).SerializeToString(),
                 content_type=PROTOBUF)
    assert (reply.status, reply.body) == (200, b"")
    assert receiver.query("SELECT name FROM spans WHERE trace_id = ?",
                          (trace_id.hex(),)) == [("after",)]


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def status_message(self) -> tuple[int, str]:
        """(code, message) of the google.rpc.Status body, in either encoding."""
        if self.content_type == JSON:
            parsed = json.loads(self.body)
            assert set(parsed) == {"code", "message"}
            return parsed["code"], parsed["message"]
        assert self.content_type == PROTOBUF
        status = status_pb2.Status.FromString(self.body)
        return status.code, status.message


def post(server: ServeProcess, path: str, body: bytes, *, content_type: str | None = JSON,
         headers: dict[str, str] | None = None, method: str = "POST") -> Reply:
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def raw_exchange(server: ServeProcess, data: bytes) -> tuple[Reply, bool]:
    """Send raw bytes; return the reply and whether the server then closed the connection."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        reply = Reply(response.status, response.headers, response.read())
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return reply, closed


def request_head(*headers: str, content_type: str = JSON) -> bytes:
    lines = ["POST /v1/traces HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}",
             *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def good_traces_body(spans: int = 5) -> bytes:
    return traces_request({"svc": [make_span(i + 1, i + 1, name=f"span-{i}", route="/x" * 20)
                                   for i in range(spans)]}).SerializeToString()


def truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


# --- malformed bodies: 400 with a google.rpc.Status in the request's encoding ------------


def _logs_body() -> bytes:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", "svc"))
    rl.scope_logs.add().log_records.add(time_unix_nano=1, severity_text="INFO" * 10)
    return request.SerializeToString()


def _metrics_body() -> bytes:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "svc"))
    metric = rm.scope_metrics.add().metrics.add(name="m" * 30)
    metric.gauge.data_points.add(time_unix_nano=1, as_int=1)
    return request.SerializeToString()


def _invalid_utf8_body() -> bytes:
    body = traces_request({"svc": [make_span(1, 1, name="ABCD")]}).SerializeToString()
    return body.replace(b"ABCD", b"\xff\xfeCD")


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/traces", truncated(good_traces_body())),
    ("/v1/logs", truncated(_logs_body())),
    ("/v1/metrics", truncated(_metrics_body())),
    ("/v1/traces", b"\xff\xff\xff\xff"),
    ("/v1/traces", b"\x0a\x05abc"),  # a field longer than the body
    ("/v1/traces", _invalid_utf8_body()),
    ("/v1/traces", json.dumps({"resourceSpans": []}).encode()),  # JSON sent as protobuf
], ids=["traces-truncated", "logs-truncated", "metrics-truncated", "garbage", "short-field",
        "invalid-utf8", "json-as-protobuf"])
def test_malformed_protobuf_gets_400_with_protobuf_status(receiver, path, body):
    reply = post(receiver, path, body, content_type=PROTOBUF)
    assert reply.status == 400
    code, message = reply.status_message()
    assert code == 3 and "invalid protobuf Export" in message


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"[]", b'[{"resourceSpans": []}]', b'"a string"', b"42", b"null",
    b'{"resourceSpans": 5}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 12}]}]}]}',
    b'{"resourceSpans": [{"resource": {"attributes": {"service.name": "svc"}}}]}',
    b'{"resourceSpans": [], "x": "\xc3\x28"}',  # not UTF-8
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\\udc00"}]}]}]}',
    b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b"}",  # nested deeper than any decoder recurses
], ids=["syntax", "empty", "array", "array-of-request", "string", "number", "null",
        "wrong-type", "bad-int", "numeric-id", "attributes-as-map", "invalid-utf8",
        "lone-surrogate", "deep-nesting"])
def test_malformed_json_gets_400_with_json_status(receiver, body):
    reply = post(receiver, "/v1/traces", body)
    assert reply.status == 400
    code, message = reply.status_message()
    assert code == 3 and "JSON" in message


@pytest.mark.parametrize("path", PATHS)
def test_malformed_requests_on_every_path(receiver, path):
    reply = post(receiver, path, b"{")
    assert (reply.status, reply.status_message()[0]) == (400, 3)
    reply = post(receiver, path, b"\xff", content_type=PROTOBUF)
    assert (reply.status, reply.status_message()[0]) == (400, 3)


# --- status codes for the request line and headers ---------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/xml", "application/jsonl", "multipart/form-data", None])
def test_unsupported_content_type_gets_415(receiver, content_type):
    reply = post(receiver, "/v1/traces", b"{}", content_type=content_type)
    assert reply.status == 415
    assert b"application/x-protobuf" in reply.body and b"application/json" in reply.body


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
@pytest.mark.parametrize("path", PATHS)
def test_other_methods_get_405_with_allow_post(receiver, method, path):
    reply = post(receiver, path, b"", method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/unknown"), ("POST", "/v1/traces/extra"), ("POST", "/"),
    ("POST", "/v1/Traces"), ("GET", "/v1/unknown"),
])
def test_unknown_path_gets_404(receiver, method, path):
    assert post(receiver, path, b"{}", method=method).status == 404


# --- Content-Encoding --------------------------------------------------------------------


GOOD_JSON = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
    {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "gzip"}] * 30}]}]}).encode()


def _with_bad_crc(gz: bytes) -> bytes:
    crc_at = len(gz) - 8  # the trailer: CRC-32, then the length
    return gz[:crc_at] + bytes([gz[crc_at] ^ 0xFF]) + gz[crc_at + 1:]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"this is not gzip", JSON),
    (b"\x1f\x8b\x08\x00garbage", PROTOBUF),
    (gzip.compress(GOOD_JSON)[:-8], JSON),  # the stream without its CRC and length
    (truncated(gzip.compress(good_traces_body(50))), PROTOBUF),
    (_with_bad_crc(gzip.compress(GOOD_JSON)), JSON),
], ids=["not-gzip", "bad-header", "no-trailer", "cut-in-half", "bad-crc"])
def test_invalid_gzip_gets_400(receiver, body, content_type):
    before = receiver.query("SELECT count(*) FROM spans WHERE name = 'gzip'")
    reply = post(receiver, "/v1/traces", body, content_type=content_type,
                 headers={"Content-Encoding": "gzip"})
    assert reply.status == 400
    code, message = reply.status_message()
    assert code == 3 and "gzip" in message
    assert receiver.query("SELECT count(*) FROM spans WHERE name = 'gzip'") == before


def test_unsupported_content_encoding_gets_400(receiver):
    reply = post(receiver, "/v1/traces", b"{}", headers={"Content-Encoding": "br"})
    assert reply.status == 400
    assert "Content-Encoding" in reply.status_message()[1]


# --- size limit: 413 ---------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [JSON, PROTOBUF])
def test_content_length_over_the_limit_gets_413_before_the_body_is_read(receiver,
                                                                        content_type):
    head = request_head(f"Content-Length: {LIMIT + 1}", content_type=content_type)
    reply, closed = raw_exchange(receiver, head)  # the body is never sent
    assert reply.status == 413 and closed
    code, message = reply.status_message()
    assert code == 8 and str(LIMIT) in message


def test_chunked_body_over_the_limit_gets_413(receiver):
    head = request_head("Transfer-Encoding: chunked")
    reply, closed = raw_exchange(receiver, head + f"{LIMIT + 1:x}\r\n".encode())
    assert reply.status == 413 and closed
    assert reply.status_message()[0] == 8


def test_body_at_the_limit_is_accepted(receiver):
    pad = "x" * (LIMIT - 200)
    body = json.dumps({"resourceSpans": [], "pad": pad}).encode()
    body += b" " * (LIMIT - len(body))
    assert post(receiver, "/v1/traces", body).status == 200
    assert post(receiver, "/v1/traces", body + b" ").status == 413


def test_gzip_bomb_gets_413_without_inflating_it(receiver):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(50)) + compressor.flush()
    assert len(bomb) < 100_000  # 50 MB once inflated
    peak_before = peak_rss_bytes(receiver.proc.pid)
    for content_type in (PROTOBUF, JSON):
        reply = post(receiver, "/v1/traces", bomb, content_type=content_type,
                     headers={"Content-Encoding": "gzip"})
        assert reply.status == 413
        code, message = reply.status_message()
        assert code == 8 and "decompressed" in message
    assert peak_rss_bytes(receiver.proc.pid) - peak_before < 20 * 1024 * 1024


def test_gzip_within_the_limit_once_inflated_is_accepted(receiver):
    body = gzip.compress(good_traces_body(200))
    reply = post(receiver, "/v1/traces", body, content_type=PROTOBUF,
                 headers={"Content-Encoding": "gzip"})
    assert (reply.status, reply.body) == (200, b"")


# --- broken framing: 400, and the connection is closed -----------------------------------


@pytest.mark.parametrize("framing", [
    b"Content-Length: -1\r\n\r\n{}",
    b"Content-Length: 2x\r\n\r\n{}",
    b"Content-Length: 1_0\r\n\r\n{}",
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n",
], ids=["negative-length", "bad-length", "underscore-length", "bad-chunk-size",
        "negative-chunk-size", "prefixed-chunk-size"])
def test_broken_framing_gets_400_at_once_and_closes(receiver, framing):
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    started = time.monotonic()
    reply, closed = raw_exchange(receiver, head + framing)
    assert time.monotonic() - started < 3  # not waiting for more body
    assert reply.status == 400 and closed
    assert reply.status_message()[0] == 3


def test_body_shorter_than_its_content_length(receiver):
    body = good_traces_body()
    with socket.create_connection(("127.0.0.1", receiver.http_port), timeout=5) as sock:
        sock.sendall(request_head(f"Content-Length: {len(body)}", content_type=PROTOBUF)
                     + body[:20])
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 400


def test_client_that_disconnects_mid_body(receiver):
    with socket.create_connection(("127.0.0.1", receiver.http_port), timeout=5) as sock:
        sock.sendall(request_head("Content-Length: 5000") + b'{"resourceSpans": [')


# --- items the store cannot hold: rejected one by one, never fatal ----------------------


def test_span_times_beyond_int64_are_partial_success(receiver):
    trace_id = secrets.token_hex(16)
    spans = [{"traceId": trace_id, "spanId": "01" * 8, "name": "fine",
              "startTimeUnixNano": str(time.time_ns()), "endTimeUnixNano": str(time.time_ns())},
             {"traceId": trace_id, "spanId": "02" * 8, "name": "far future",
              "startTimeUnixNano": "1", "endTimeUnixNano": str(2**64 - 1)}]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    reply = post(receiver, "/v1/traces", body)
    assert reply.status == 200
    partial = json.loads(reply.body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "'far future'" in partial["errorMessage"]
    assert receiver.query("SELECT name FROM spans WHERE trace_id = ?", (trace_id,)) == [
        ("fine",)]

    span = make_span(1, 1, name="far future too")
    span.start_time_unix_nano = 2**63
    reply = post(receiver, "/v1/traces", traces_request({"svc": [span]}).SerializeToString(),
                 content_type=PROTOBUF)
    assert reply.status == 200
    assert ExportTraceServiceResponse.FromString(reply.body).partial_success.rejected_spans == 1


def test_log_times_beyond_int64_are_partial_success(receiver):
    service = f"logs-{secrets.token_hex(4)}"
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    records = rl.scope_logs.add().log_records
    records.add(time_unix_nano=time.time_ns(), severity_text="kept")
    records.add(observed_time_unix_nano=2**64 - 1, severity_text="dropped")
    reply = post(receiver, "/v1/logs", request.SerializeToString(), content_type=PROTOBUF)
    assert reply.status == 200
    partial = ExportLogsServiceResponse.FromString(reply.body).partial_success
    assert partial.rejected_log_records == 1
    assert receiver.query("SELECT severity_text FROM logs WHERE service_name = ?",
                          (service,)) == [("kept",)]


def test_many_bad_requests_in_a_row(receiver):
    bodies = [(b"{", JSON), (b"\xff", PROTOBUF), (b"[]", JSON)] * 30
    for body, content_type in bodies:
        assert post(receiver, "/v1/traces", body, content_type=content_type).status == 400
