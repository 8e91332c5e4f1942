"""OTLP/HTTP with JSON (and protobuf) bodies against a real receiver; rows checked exactly."""

from __future__ import annotations

import gzip
import http.client
import json
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest
from conftest import ServeProcess, as_read, start_serve
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import kv, traces_request

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
# Recent, or retention (by age) would evict the rows before the checks read them.
T0 = time.time_ns()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = start_serve(tmp_path_factory.mktemp("http-json"))
    yield server
    server.stop()


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self):
        assert self.content_type == JSON
        return json.loads(self.body)


def post(server: ServeProcess, path: str, body: bytes | dict | Iterable[bytes], *,
         content_type: str = JSON, headers: dict[str, str] | None = None) -> Reply:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        # An iterable body is sent with chunked Transfer-Encoding.
        conn.request("POST", path, body=body, encode_chunked=not isinstance(body, bytes),
                     headers={"Content-Type": content_type, **(headers or {})})
        response = conn.getresponse()
        return Reply(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        conn.close()


def new_ids() -> tuple[str, str]:
    """A fresh (trace_id, span_id) in lowercase hex, so tests sharing a receiver never clash."""
    return secrets.token_hex(16), secrets.token_hex(8)


def spans_body(*spans: dict, service: str = "json-svc") -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": list(spans)}],
    }]}


def span_rows(server: ServeProcess, trace_id: str, columns: str = "*") -> list[tuple]:
    wanted = ", ".join(as_read(c) if c in ("attributes", "events", "links") else c
                       for c in (c.strip() for c in columns.split(",")))
    return server.query(f"SELECT {wanted} FROM spans WHERE trace_id = ? ORDER BY span_id",
                        (trace_id,))


def counts(server: ServeProcess) -> tuple:
    return server.query("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM logs), "
                        "(SELECT count(*) FROM metric_points), "
                        "(SELECT count(*) FROM resources)")[0]


EVERY_ANY_VALUE = [
    {"key": "s", "value": {"stringValue": "text"}},
    {"key": "i", "value": {"intValue": "42"}},
    {"key": "i_number", "value": {"intValue": -7}},
    {"key": "i_max", "value": {"intValue": "9223372036854775807"}},
    {"key": "d", "value": {"doubleValue": 0.5}},
    {"key": "d_nan", "value": {"doubleValue": "NaN"}},
    {"key": "d_inf", "value": {"doubleValue": "-Infinity"}},
    {"key": "b", "value": {"boolValue": True}},
    {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "a"},
                                                       {"intValue": "1"}]}}},
    {"key": "kv", "value": {"kvlistValue": {"values": [
        {"key": "inner", "value": {"boolValue": False}},
        {"key": "deeper", "value": {"arrayValue": {"values": [{"doubleValue": 1.5}]}}}]}}},
    {"key": "raw", "value": {"bytesValue": "AAEC/w=="}},
    {"key": "empty", "value": {}},
]
EVERY_ANY_VALUE_STORED = {
    "s": "text", "i": 42, "i_number": -7, "i_max": 2**63 - 1, "d": 0.5, "d_nan": "nan",
    "d_inf": "-inf", "b": True, "arr": ["a", 1], "kv": {"inner": False, "deeper": [1.5]},
    "raw": "AAEC/w==", "empty": None,
}


def test_json_span_is_stored_with_exact_values(receiver):
    trace_id, span_id = new_ids()
    parent_id, link_span = secrets.token_hex(8), secrets.token_hex(8)
    link_trace = secrets.token_hex(16)
    attributes = [dict(a) for a in EVERY_ANY_VALUE]
    attributes[0] = {"key": "s", "value": {"stringValue": "text", "futureValue": 1}}
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "checkout"}},
                {"key": "host.name", "value": {"stringValue": "h1"}}], "futureResource": 1},
            "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
            "scopeSpans": [{
                "scope": {"name": "shop", "version": "2.0", "futureScope": [1, 2]},
                "spans": [{
                    "traceId": trace_id.upper(), "spanId": span_id.upper(),
                    "parentSpanId": parent_id.upper(), "traceState": "k=v", "flags": 257,
                    "name": "GET /cart", "kind": "SPAN_KIND_SERVER",
                    "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 2_500),
                    "attributes": attributes,
                    "events": [{"timeUnixNano": str(T0 + 100), "name": "retry",
                                "attributes": [{"key": "n", "value": {"intValue": "2"}}],
                                "futureEvent": True}],
                    "links": [{"traceId": link_trace.upper(), "spanId": link_span.upper(),
                               "traceState": "a=b"}],
                    "status": {"code": "STATUS_CODE_ERROR", "message": "out of stock",
                               "futureStatus": "x"},
                    "futureSpanField": {"nested": [{"traceId": "not even hex"}]},
                }],
                "futureScopeSpans": None,
            }],
        }],
        "futureTopLevel": {"anything": [1, "two"]},
    }
    reply = post(receiver, "/v1/traces", body)
    assert (reply.status, reply.json()) == (200, {})

    (row,) = span_rows(receiver, trace_id,
                       "trace_id, span_id, parent_span_id, name, kind, service_name, "
                       "start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, "
                       "status_message, scope_name, scope_version, trace_state, flags, "
                       "attributes, events, links, resource_id")
    assert row[:15] == (trace_id, span_id, parent_id, "GET /cart", 2, "checkout", T0, T0 + 2_500,
                        2_500, 2, "out of stock", "shop", "2.0", "k=v", 257)
    assert json.loads(row[15]) == EVERY_ANY_VALUE_STORED
    assert json.loads(row[16]) == [{"time_unix_nano": T0 + 100, "name": "retry",
                                    "attributes": {"n": 2}}]
    assert json.loads(row[17]) == [{"trace_id": link_trace, "span_id": link_span,
                                    "trace_state": "a=b"}]
    assert receiver.query("SELECT service_name, attributes, schema_url FROM resources "
                          "WHERE resource_id = ?", (row[18],)) == [
        ("checkout", '{"host.name":"h1","service.name":"checkout"}',
         "https://opentelemetry.io/schemas/1.21.0")]
    assert receiver.query("SELECT root_span_name, root_span_id, has_root, span_count, "
                          "error_count FROM traces WHERE trace_id = ?", (trace_id,)) == [
        ("GET /cart", span_id, 0, 1, 1)]


def test_snake_case_keys_numeric_ints_and_numeric_enums(receiver):
    trace_id, span_id = new_ids()
    span = {"trace_id": trace_id, "span_id": span_id, "name": "numbers", "kind": 3,
            "start_time_unix_nano": T0, "end_time_unix_nano": T0 + 9,
            "status": {"code": 1}}
    reply = post(receiver, "/v1/traces", spans_body(span),
                 content_type="application/json; charset=utf-8")
    assert (reply.status, reply.json()) == (200, {})
    assert span_rows(receiver, trace_id, "name, kind, start_time_unix_nano, duration_ns, "
                                         "status_code") == [("numbers", 3, T0, 9, 1)]


def test_unknown_enum_numbers_are_stored(receiver):
    trace_id, span_id = new_ids()
    span = {"traceId": trace_id, "spanId": span_id, "name": "future", "kind": 99,
            "status": {"code": 7}, "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0)}
    assert post(receiver, "/v1/traces", spans_body(span)).status == 200
    assert span_rows(receiver, trace_id, "kind, status_code") == [(99, 7)]


def test_bad_ids_are_partial_success_and_good_spans_are_stored(receiver):
    trace_id, span_id = new_ids()
    good = {"traceId": trace_id, "spanId": span_id, "name": "good"}
    short = {"traceId": trace_id[:30], "spanId": secrets.token_hex(8), "name": "short"}
    not_hex = {"traceId": trace_id, "spanId": "zz" * 8, "name": "not hex"}
    zero = {"traceId": "0" * 32, "spanId": secrets.token_hex(8), "name": "zero"}
    reply = post(receiver, "/v1/traces", spans_body(short, good, not_hex, zero))
    assert reply.status == 200
    partial = reply.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    for fragment in ("'short'", "'not hex'", "'zz", "'zero'"):
        assert fragment in partial["errorMessage"]
    assert span_rows(receiver, trace_id, "name") == [("good",)]
    assert receiver.query("SELECT count(*) FROM spans WHERE trace_id = ?", ("0" * 32,)) == [(0,)]


def test_protobuf_request_gets_protobuf_response(receiver):
    trace_id, span_id = new_ids()
    good = trace_pb2.Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id),
                          name="pb", start_time_unix_nano=T0, end_time_unix_nano=T0 + 1)
    bad = trace_pb2.Span(trace_id=b"\x01" * 15, span_id=b"\x01" * 8, name="pb-bad")
    request = traces_request({"pb-svc": [good, bad]})
    reply = post(receiver, "/v1/traces", request.SerializeToString(), content_type=PROTOBUF)
    assert (reply.status, reply.content_type) == (200, PROTOBUF)
    partial = ExportTraceServiceResponse.FromString(reply.body).partial_success
    assert partial.rejected_spans == 1 and "'pb-bad'" in partial.error_message
    assert span_rows(receiver, trace_id, "name, service_name") == [("pb", "pb-svc")]


def test_json_logs_are_stored_with_exact_values(receiver):
    service = f"logs-{secrets.token_hex(4)}"
    trace_id, span_id = new_ids()
    body = {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"scope": {"name": "app.logger"}, "logRecords": [
            {   # no time: stored at its observed time
                "observedTimeUnixNano": str(T0 + 5), "severityNumber": "SEVERITY_NUMBER_WARN",
                "severityText": "WARN", "traceId": trace_id.upper(),
                "spanId": span_id.upper(), "flags": 1, "eventName": "cart.warning",
                "body": {"kvlistValue": {"values": [
                    {"key": "msg", "value": {"stringValue": "low stock"}},
                    {"key": "left", "value": {"intValue": "3"}}]}},
                "attributes": EVERY_ANY_VALUE, "futureLogField": {"a": 1},
            },
            {"timeUnixNano": T0 + 7, "observedTimeUnixNano": T0 + 8, "severityNumber": 9,
             "body": {"stringValue": "plain"}},
            {"timeUnixNano": str(T0 + 9), "severityNumber": 21,
             "body": {"arrayValue": {"values": [{"boolValue": True}, {"bytesValue": "AQ=="}]}}},
        ]}],
    }]}
    reply = post(receiver, "/v1/logs", body)
    assert (reply.status, reply.json()) == (200, {})
    rows = receiver.query(
        "SELECT time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body, "
        "attributes, trace_id, span_id, scope_name, event_name, flags FROM logs "
        "WHERE service_name = ? ORDER BY log_id", (service,))
    assert [r[:4] for r in rows] == [(T0 + 5, T0 + 5, 13, "WARN"), (T0 + 7, T0 + 8, 9, ""),
                                     (T0 + 9, 0, 21, "")]
    assert [json.loads(r[4]) for r in rows] == [{"msg": "low stock", "left": 3}, "plain",
                                                [True, "AQ=="]]
    assert json.loads(rows[0][5]) == EVERY_ANY_VALUE_STORED
    assert rows[0][6:] == (trace_id, span_id, "app.logger", "cart.warning", 1)
    assert rows[1][5:10] == ("{}", "", "", "app.logger", "")


def test_json_metrics_are_stored_with_exact_values(receiver):
    service = f"metrics-{secrets.token_hex(4)}"
    trace_id, span_id = new_ids()
    point = {"startTimeUnixNano": str(T0 - 1000), "timeUnixNano": str(T0)}
    metrics = [
        {"name": "temp", "unit": "C", "description": "room temperature",
         "gauge": {"dataPoints": [{**point, "asInt": "7",
                                   "attributes": [{"key": "room", "value":
                                                   {"stringValue": "a"}}]}]}},
        {"name": "orders", "sum": {
            "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE", "isMonotonic": True,
            "dataPoints": [{**point, "asDouble": 2.5, "exemplars": [
                {"timeUnixNano": str(T0 - 1), "asInt": "3", "traceId": trace_id.upper(),
                 "spanId": span_id.upper()}]}]}},
        {"name": "latency", "unit": "ms", "histogram": {
            "aggregationTemporality": 1,
            "dataPoints": [{**point, "count": "6", "sum": 30.5, "min": 0.5, "max": 20,
                            "bucketCounts": ["1", "2", "3"], "explicitBounds": [1, 10]}]}},
        {"name": "sizes", "exponentialHistogram": {
            "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
            "dataPoints": [{**point, "count": "5", "sum": 12, "scale": 2, "zeroCount": "1",
                            "zeroThreshold": 0.001,
                            "positive": {"offset": 3, "bucketCounts": ["1", "2"]},
                            "negative": {"offset": -2, "bucketCounts": [1]}}]}},
        {"name": "rpc", "summary": {"dataPoints": [
            {**point, "count": "4", "sum": 10, "quantileValues": [
                {"quantile": 0.5, "value": 2}, {"quantile": 0.99, "value": 9.5}]}]}},
        {"name": "future", "futureMetricType": {"dataPoints": [point]}},  # nothing to store
    ]
    body = {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeMetrics": [{"scope": {"name": "meter"}, "metrics": metrics}],
    }]}
    reply = post(receiver, "/v1/metrics", body)
    assert reply.status == 200
    assert reply.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    rows = receiver.query(
        "SELECT name, description, unit, type, temporality, is_monotonic, scope_name, "
        "start_time_unix_nano, time_unix_nano, value, count, sum, min, max, buckets, "
        "attributes, exemplars FROM metric_points WHERE service_name = ? ORDER BY point_id",
        (service,))
    times = (T0 - 1000, T0)
    assert [r[:9] for r in rows] == [
        ("temp", "room temperature", "C", "gauge", None, None, "meter", *times),
        ("orders", "", "", "sum", "cumulative", 1, "meter", *times),
        ("latency", "", "ms", "histogram", "delta", None, "meter", *times),
        ("sizes", "", "", "exponential_histogram", "delta", None, "meter", *times),
        ("rpc", "", "", "summary", None, None, "meter", *times),
    ]
    values = [r[9:14] for r in rows]
    assert values == [(7.0, None, None, None, None), (2.5, None, None, None, None),
                      (None, 6, 30.5, 0.5, 20.0), (None, 5, 12.0, None, None),
                      (None, 4, 10.0, None, None)]
    buckets = [json.loads(r[14]) if r[14] is not None else None for r in rows]
    assert buckets == [
        None, None, {"bounds": [1.0, 10.0], "counts": [1, 2, 3]},
        {"scale": 2, "zero_count": 1, "zero_threshold": 0.001,
         "positive": {"offset": 3, "counts": [1, 2]},
         "negative": {"offset": -2, "counts": [1]}},
        {"quantiles": [[0.5, 2.0], [0.99, 9.5]]},
    ]
    assert rows[0][15] == '{"room":"a"}'
    assert json.loads(rows[1][16]) == [{"time_unix_nano": T0 - 1, "value": 3,
                                        "trace_id": trace_id, "span_id": span_id}]


# Names that must come back exactly as sent: control characters, terminal escapes, markup
# that a terminal UI might interpret, and non-ASCII text.
TRICKY_TEXT = [
    "nul\x00byte",
    "bell\x07 back\x08 esc\x1b[2J\x1b[31mred\x1b[0m del\x7f c1\x85 \r\n\t",
    "[bold red]x[/]",
    "[@click=app.quit]boom",
    "naïve café 日本語 🚀 \u2028\u200f rtl",
    "\\[escaped] {braces} %s $(shell) '; DROP TABLE spans; --",
]


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_tricky_text_is_stored_byte_exactly(receiver, encoding):
    trace_id = secrets.token_hex(16)
    span_ids = sorted(secrets.token_hex(8) for _ in TRICKY_TEXT)
    if encoding == "json":
        spans = [{"traceId": trace_id, "spanId": sid, "name": text,
                  "attributes": [{"key": text, "value": {"stringValue": text}}],
                  "status": {"message": text}}
                 for sid, text in zip(span_ids, TRICKY_TEXT, strict=True)]
        reply = post(receiver, "/v1/traces", spans_body(*spans, service=TRICKY_TEXT[3]))
    else:
        spans = [trace_pb2.Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(sid),
                                name=text, attributes=[kv(text, text)],
                                status=trace_pb2.Status(message=text))
                 for sid, text in zip(span_ids, TRICKY_TEXT, strict=True)]
        reply = post(receiver, "/v1/traces",
                     traces_request({TRICKY_TEXT[3]: spans}).SerializeToString(),
                     content_type=PROTOBUF)
    assert reply.status == 200
    rows = span_rows(receiver, trace_id, "name, attributes, status_message, service_name")
    assert [r[0] for r in rows] == TRICKY_TEXT
    assert [json.loads(r[1]) for r in rows] == [{t: t} for t in TRICKY_TEXT]
    assert [r[2] for r in rows] == TRICKY_TEXT
    assert {r[3] for r in rows} == {TRICKY_TEXT[3]}


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs", "/v1/metrics"])
def test_empty_requests_store_nothing(receiver, path):
    before = counts(receiver)
    reply = post(receiver, path, {})
    assert (reply.status, reply.json()) == (200, {})
    reply = post(receiver, path, b"", content_type=PROTOBUF)
    assert (reply.status, reply.content_type, reply.body) == (200, PROTOBUF, b"")
    # A resource with no items in it is not stored either.
    outer = path.removeprefix("/v1/")
    key = {"traces": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "idle"}}]}
    assert post(receiver, path, {key[outer]: [{"resource": resource}]}).status == 200
    assert counts(receiver) == before


def test_resent_span_is_stored_once(receiver):
    trace_id, span_id = new_ids()
    first = {"traceId": trace_id, "spanId": span_id, "name": "first",
             "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 10)}
    assert post(receiver, "/v1/traces", spans_body(first)).status == 200
    assert post(receiver, "/v1/traces", spans_body(first)).status == 200
    # A re-sent span with the same ids replaces the stored one.
    again = {**first, "traceId": trace_id.upper(), "name": "second"}
    assert post(receiver, "/v1/traces", spans_body(again)).status == 200
    assert span_rows(receiver, trace_id, "name") == [("second",)]
    assert receiver.query("SELECT span_count, root_span_name FROM traces WHERE trace_id = ?",
                          (trace_id,)) == [(1, "second")]


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize(("gzipped", "chunked"), [(True, False), (False, True), (True, True)])
def test_gzip_and_chunked_bodies(receiver, gzipped, chunked):
    trace_id = secrets.token_hex(16)
    spans = [{"traceId": trace_id, "spanId": f"{i + 1:016x}", "name": f"s{i}",
              "attributes": [{"key": "pad", "value": {"stringValue": "x" * 200}}]}
             for i in range(40)]
    data = json.dumps(spans_body(*spans)).encode()
    headers = {}
    if gzipped:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    body = chunks(data) if chunked else data
    reply = post(receiver, "/v1/traces", body, headers=headers)
    assert (reply.status, reply.json()) == (200, {})
    assert receiver.query("SELECT count(*) FROM spans WHERE trace_id = ?", (trace_id,)) == [(40,)]


def test_keep_alive_connection_serves_several_requests(receiver):
    trace_id = secrets.token_hex(16)
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=10)
    try:
        # Bad requests in between do not spoil the connection for the good ones.
        for i, body in enumerate([b"{not json", None, b"[]", None]):
            good = body is None
            if good:
                body = json.dumps(spans_body({"traceId": trace_id, "spanId": f"{i + 1:016x}",
                                              "name": f"req{i}"})).encode()
            conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": JSON})
            response = conn.getresponse()
            payload = json.loads(response.read())
            if good:
                assert (response.status, payload) == (200, {})
            else:
                assert (response.status, payload["code"]) == (400, 3)
    finally:
        conn.close()
    assert span_rows(receiver, trace_id, "name") == [("req1",), ("req3",)]
    assert receiver.proc.poll() is None
