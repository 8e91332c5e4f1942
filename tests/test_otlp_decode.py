"""The decoders on their own: OTLP requests (protobuf or JSON bytes) → rows and rejections."""

from __future__ import annotations

import base64
import json
import math

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import kv, logs_request, make_span, metrics_request, traces_request

from tracedesk.otlp import PayloadError, ResourceTable, Signal, decode, response
from tracedesk.otlp.batch import LOG_COLUMNS, METRIC_COLUMNS, SPAN_COLUMNS, DecodedBatch
from tracedesk.otlp.traces import cold_columns

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
T0 = 1_700_000_000_000_000_000


def decode_pb(signal: Signal, request, resources: ResourceTable | None = None) -> DecodedBatch:
    return decode(signal, request.SerializeToString(), resources or ResourceTable())


def decode_json(signal: Signal, tree: dict, resources: ResourceTable | None = None
                ) -> DecodedBatch:
    return decode(signal, orjson.dumps(tree), resources or ResourceTable(), json=True)


def span_row(batch: DecodedBatch, index: int = 0) -> dict:
    return dict(zip(SPAN_COLUMNS, batch.spans[index], strict=True))


def log_row(batch: DecodedBatch, index: int = 0) -> dict:
    return dict(zip(LOG_COLUMNS, batch.logs[index], strict=True))


def metric_rows(batch: DecodedBatch) -> dict[str, dict]:
    return {row[0]: dict(zip(METRIC_COLUMNS, row, strict=True)) for row in batch.metric_points}


def one_span(**fields) -> ExportTraceServiceRequest:
    span = trace_pb2.Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="op",
                          start_time_unix_nano=T0, end_time_unix_nano=T0 + 5)
    for key, value in fields.items():
        setattr(span, key, value)
    return traces_request({"svc": [span]})


def with_attribute(value: AnyValue) -> ExportTraceServiceRequest:
    request = one_span()
    request.resource_spans[0].scope_spans[0].spans[0].attributes.append(
        KeyValue(key="v", value=value))
    return request


def attribute_of(value: AnyValue):
    return json.loads(span_row(decode_pb(Signal.TRACES, with_attribute(value)))["attributes"])["v"]


# --- spans ------------------------------------------------------------------------------


def test_span_row_has_every_column():
    span = trace_pb2.Span(
        trace_id=TRACE_ID, span_id=SPAN_ID, parent_span_id=PARENT_ID, name="GET /x",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT, start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 1500, trace_state="k=v", flags=0x301,
        attributes=[kv("http.route", "/x"), kv("retry", 2)],
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"),
        events=[trace_pb2.Span.Event(time_unix_nano=T0 + 10, name="ev",
                                     attributes=[kv("n", 1)], dropped_attributes_count=2)],
        links=[trace_pb2.Span.Link(trace_id=TRACE_ID, span_id=PARENT_ID, trace_state="a=b",
                                   attributes=[kv("why", "retry")], flags=1)],
    )
    request = traces_request({"checkout": [span]})
    request.resource_spans[0].scope_spans[0].scope.version = "1.2"
    batch = decode_pb(Signal.TRACES, request)
    assert (batch.rejected, batch.messages) == (0, [])
    row = span_row(batch)
    resource_id = batch.resources[0][0]
    assert row == {
        "trace_id": TRACE_ID.hex(), "span_id": SPAN_ID.hex(), "parent_span_id": PARENT_ID.hex(),
        "name": "GET /x", "kind": 3, "service_name": "checkout",
        "start_time_unix_nano": T0, "end_time_unix_nano": T0 + 1500, "duration_ns": 1500,
        "status_code": 2, "status_message": "boom",
        "attributes": '{"http.route":"/x","retry":2}',
        "events": orjson.dumps([{"time_unix_nano": T0 + 10, "name": "ev",
                                 "attributes": {"n": 1}, "dropped_attributes_count": 2}]).decode(),
        "links": orjson.dumps([{"trace_id": TRACE_ID.hex(), "span_id": PARENT_ID.hex(),
                                "trace_state": "a=b", "attributes": {"why": "retry"},
                                "flags": 1}]).decode(),
        "raw": None,
        "resource_id": resource_id, "scope_name": "tests", "scope_version": "1.2",
        "trace_state": "k=v", "flags": 0x301,
    }
    assert batch.resources == [(resource_id, "checkout", '{"service.name":"checkout"}', "")]

    # Deferred: the same row, but attributes, events and links wait in the span's bytes,
    # and converting those bytes later gives exactly the JSON above.
    deferred = decode(Signal.TRACES, request.SerializeToString(), ResourceTable(), defer=True)
    late = span_row(deferred)
    assert (late["attributes"], late["events"], late["links"]) == (None, None, None)
    assert cold_columns(late["raw"]) == (row["attributes"], row["events"], row["links"])
    hot = {k: v for k, v in row.items() if k not in ("attributes", "events", "links", "raw")}
    assert {k: late[k] for k in hot} == hot
    assert deferred.traces == batch.traces


def test_only_spans_are_deferred():
    request = logs_request(logs_pb2.LogRecord(time_unix_nano=T0, body=AnyValue(
        string_value="hi"), attributes=[kv("k", "v")]))
    batch = decode(Signal.LOGS, request.SerializeToString(), ResourceTable(), defer=True)
    assert dict(zip(LOG_COLUMNS, batch.logs[0], strict=True))["attributes"] == '{"k":"v"}'


def test_end_before_start_gives_zero_duration():
    row = span_row(decode_pb(Signal.TRACES, one_span(end_time_unix_nano=T0 - 10)))
    assert row["duration_ns"] == 0


@pytest.mark.parametrize(("fields", "reason"), [
    ({"trace_id": TRACE_ID[:15]}, "trace_id 15 bytes"),
    ({"trace_id": TRACE_ID + b"\x01"}, "trace_id 17 bytes"),
    ({"trace_id": b""}, "trace_id 0 bytes"),
    ({"span_id": SPAN_ID[:7]}, "span_id 7 bytes"),
    ({"span_id": b""}, "span_id 0 bytes"),
    ({"parent_span_id": b"\x01" * 4}, "parent_span_id 4 bytes"),
    ({"trace_id": bytes(16)}, "all-zero"),
    ({"span_id": bytes(8)}, "all-zero"),
])
def test_span_with_invalid_ids_is_rejected_with_a_message(fields, reason):
    request = one_span(**fields)
    good = request.resource_spans[0].scope_spans[0].spans.add()
    good.CopyFrom(make_span(7, 7, name="good"))
    batch = decode_pb(Signal.TRACES, request)
    assert [row[3] for row in batch.spans] == ["good"]
    assert batch.rejected == 1
    (message,) = batch.messages
    assert "'op'" in message and reason in message


def test_span_times_beyond_int64_are_rejected():
    # SQLite integers are signed 64-bit: such a row could not be stored at all.
    batch = decode_pb(Signal.TRACES, one_span(end_time_unix_nano=2**64 - 1))
    assert batch.spans == [] and batch.rejected == 1
    assert "time" in batch.messages[0]


def test_rejection_messages_are_bounded():
    spans = [trace_pb2.Span(trace_id=b"\x01", span_id=SPAN_ID, name=f"s{i}") for i in range(50)]
    batch = decode_pb(Signal.TRACES, traces_request({"svc": spans}))
    assert batch.rejected == 50 and len(batch.messages) == 5
    assert batch.error_message().endswith(" (and more)")


# --- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (AnyValue(string_value="x"), "x"),
    (AnyValue(int_value=-(2**63)), -(2**63)),
    (AnyValue(double_value=0.25), 0.25),
    (AnyValue(bool_value=False), False),
    (AnyValue(double_value=math.nan), "nan"),
    (AnyValue(double_value=math.inf), "inf"),
    (AnyValue(double_value=-math.inf), "-inf"),
    (AnyValue(bytes_value=b"\x00\xffbin"), base64.b64encode(b"\x00\xffbin").decode()),
    (AnyValue(), None),
])
def test_scalar_attribute_values(value, expected):
    assert attribute_of(value) == expected


def test_nested_array_and_kvlist_values():
    inner = AnyValue()
    inner.kvlist_value.values.extend([kv("deep", True),
                                      KeyValue(key="raw", value=AnyValue(bytes_value=b"\x01"))])
    value = AnyValue()
    value.array_value.values.extend([AnyValue(int_value=1), AnyValue(string_value="two"), inner,
                                     AnyValue(double_value=math.nan)])
    outer = AnyValue()
    outer.kvlist_value.values.extend([KeyValue(key="list", value=value),
                                      KeyValue(key="empty", value=AnyValue())])
    assert attribute_of(outer) == {"list": [1, "two", {"deep": True, "raw": "AQ=="}, "nan"],
                                   "empty": None}


# --- resources ---------------------------------------------------------------------------


def resource_request(*pairs: tuple[str, object], schema_url: str = ""
                     ) -> ExportTraceServiceRequest:
    request = traces_request({"svc": [make_span(1, 1)]})
    rs = request.resource_spans[0]
    rs.schema_url = schema_url
    del rs.resource.attributes[:]
    rs.resource.attributes.extend(kv(k, v) for k, v in pairs)
    return request


def resource_id(request, resources: ResourceTable | None = None) -> int:
    return decode_pb(Signal.TRACES, request, resources).resources[0][0]


def test_same_resource_gets_the_same_id_across_requests_and_tables():
    table = ResourceTable()
    request = resource_request(("service.name", "a"), ("host", "h1"))
    first = resource_id(request, table)
    assert resource_id(request, table) == first
    # Ids come from content, so another process (another table) agrees.
    assert resource_id(request, ResourceTable()) == first
    # Order of attributes does not matter.
    assert resource_id(resource_request(("host", "h1"), ("service.name", "a")), table) == first
    assert 0 <= first < 2**63


def test_different_resources_get_different_ids():
    base = resource_id(resource_request(("service.name", "a"), ("host", "h1")))
    assert resource_id(resource_request(("service.name", "a"), ("host", "h2"))) != base
    assert resource_id(resource_request(("service.name", "a"), ("host", "h1"),
                                        schema_url="https://opentelemetry.io/schemas/1.21.0")
                       ) != base


def test_resource_row_is_canonical_and_service_name_defaults():
    batch = decode_pb(Signal.TRACES, resource_request(("z", 1), ("a", "x")))
    (_, service, attributes, schema_url) = batch.resources[0]
    assert (service, attributes, schema_url) == ("unknown_service", '{"a":"x","z":1}', "")
    assert span_row(batch)["service_name"] == "unknown_service"


def test_a_resource_is_listed_once_per_batch():
    request = traces_request({"svc": [make_span(1, 1)]})
    request.resource_spans.add().CopyFrom(request.resource_spans[0])
    request.resource_spans[1].scope_spans[0].spans[0].span_id = SPAN_ID
    batch = decode_pb(Signal.TRACES, request)
    assert len(batch.spans) == 2 and len(batch.resources) == 1


# --- logs --------------------------------------------------------------------------------


def test_log_row_has_every_column():
    record = logs_pb2.LogRecord(
        time_unix_nano=T0, observed_time_unix_nano=T0 + 1,
        severity_number=logs_pb2.SEVERITY_NUMBER_ERROR, severity_text="ERROR",
        body=AnyValue(string_value="disk full"), attributes=[kv("path", "/var")],
        trace_id=TRACE_ID, span_id=SPAN_ID, flags=1, event_name="disk.alert",
    )
    batch = decode_pb(Signal.LOGS, logs_request(record))
    assert log_row(batch) == {
        "time_unix_nano": T0, "observed_time_unix_nano": T0 + 1, "severity_number": 17,
        "severity_text": "ERROR", "body": '"disk full"', "attributes": '{"path":"/var"}',
        "trace_id": TRACE_ID.hex(), "span_id": SPAN_ID.hex(), "service_name": "svc",
        "resource_id": batch.resources[0][0], "scope_name": "logger",
        "event_name": "disk.alert", "flags": 1,
    }


def test_log_without_time_uses_observed_time_and_may_lack_body_and_ids():
    batch = decode_pb(Signal.LOGS, logs_request(logs_pb2.LogRecord(observed_time_unix_nano=T0)))
    row = log_row(batch)
    assert (row["time_unix_nano"], row["observed_time_unix_nano"]) == (T0, T0)
    assert (row["body"], row["trace_id"], row["span_id"]) == ("null", "", "")


def test_log_structured_body():
    body = AnyValue()
    body.kvlist_value.values.extend([kv("msg", "hi"), kv("n", 3),
                                     KeyValue(key="b", value=AnyValue(bytes_value=b"\x02"))])
    row = log_row(decode_pb(Signal.LOGS, logs_request(logs_pb2.LogRecord(body=body))))
    assert row["body"] == '{"msg":"hi","n":3,"b":"Ag=="}'


@pytest.mark.parametrize("fields", [
    {"trace_id": TRACE_ID[:8]},
    {"span_id": SPAN_ID + b"\x00"},
    {"trace_id": TRACE_ID, "span_id": b"\x01"},
])
def test_log_with_invalid_ids_is_rejected(fields):
    bad = logs_pb2.LogRecord(time_unix_nano=T0, **fields)
    good = logs_pb2.LogRecord(time_unix_nano=T0, body=AnyValue(string_value="ok"))
    batch = decode_pb(Signal.LOGS, logs_request(bad, good))
    assert [row[4] for row in batch.logs] == ['"ok"']
    assert batch.rejected == 1 and "invalid trace_id" in batch.messages[0]


def test_log_time_beyond_int64_is_rejected():
    batch = decode_pb(Signal.LOGS, logs_request(logs_pb2.LogRecord(time_unix_nano=2**63)))
    assert batch.logs == [] and batch.rejected == 1


# --- metrics -----------------------------------------------------------------------------


def every_metric_type() -> list[metrics_pb2.Metric]:
    gauge = metrics_pb2.Metric(name="g", description="temp", unit="C")
    gauge.gauge.data_points.add(time_unix_nano=T0, as_int=-7, attributes=[kv("room", "a")])
    gauge.gauge.data_points.add(time_unix_nano=T0, as_double=math.nan)

    total = metrics_pb2.Metric(name="s", unit="1")
    total.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    total.sum.is_monotonic = True
    point = total.sum.data_points.add(start_time_unix_nano=T0 - 10, time_unix_nano=T0,
                                      as_double=2.5)
    point.exemplars.add(time_unix_nano=T0 - 1, as_int=3, trace_id=TRACE_ID, span_id=SPAN_ID,
                        filtered_attributes=[kv("user", "u1")])

    hist = metrics_pb2.Metric(name="h", unit="ms")
    hist.histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    hist.histogram.data_points.add(time_unix_nano=T0, count=6, sum=30.5, min=0.5, max=20,
                                   bucket_counts=[1, 2, 3], explicit_bounds=[1.0, 10.0])

    expo = metrics_pb2.Metric(name="e")
    p = expo.exponential_histogram.data_points.add(time_unix_nano=T0, count=5, scale=2,
                                                   zero_count=1, zero_threshold=0.001)
    p.positive.offset, p.negative.offset = 3, -2
    p.positive.bucket_counts.extend([1, 2])
    p.negative.bucket_counts.extend([1])

    summary = metrics_pb2.Metric(name="q")
    q = summary.summary.data_points.add(time_unix_nano=T0, count=4, sum=10.0)
    q.quantile_values.add(quantile=0.5, value=2.0)
    q.quantile_values.add(quantile=0.99, value=9.5)
    return [gauge, total, hist, expo, summary]


def test_every_metric_type_has_its_shape():
    batch = decode_pb(Signal.METRICS, metrics_request(*every_metric_type()))
    assert batch.rejected == 0
    shapes = [(r[0], r[3], r[4], r[5], *r[11:17]) for r in batch.metric_points]
    assert shapes == [
        # name, type, temporality, is_monotonic, value, count, sum, min, max, buckets
        ("g", "gauge", None, None, -7, None, None, None, None, None),
        ("g", "gauge", None, None, None, None, None, None, None, None),  # NaN: no value
        ("s", "sum", "cumulative", 1, 2.5, None, None, None, None, None),
        ("h", "histogram", "delta", None, None, 6, 30.5, 0.5, 20.0,
         '{"bounds":[1.0,10.0],"counts":[1,2,3]}'),
        ("e", "exponential_histogram", None, None, None, 5, None, None, None,
         '{"scale":2,"zero_count":1,"zero_threshold":0.001,'
         '"positive":{"offset":3,"counts":[1,2]},"negative":{"offset":-2,"counts":[1]}}'),
        ("q", "summary", None, None, None, 4, 10.0, None, None,
         '{"quantiles":[[0.5,2.0],[0.99,9.5]]}'),
    ]
    rows = metric_rows(batch)
    assert (rows["g"]["description"], rows["g"]["unit"], rows["g"]["service_name"],
            rows["g"]["scope_name"]) == ("temp", "C", "svc", "meter")
    assert rows["s"]["start_time_unix_nano"] == T0 - 10 and rows["s"]["time_unix_nano"] == T0
    assert json.loads(rows["s"]["exemplars"]) == [{
        "time_unix_nano": T0 - 1, "value": 3, "trace_id": TRACE_ID.hex(),
        "span_id": SPAN_ID.hex(), "attributes": {"user": "u1"}}]
    assert batch.metric_points[0][METRIC_COLUMNS.index("attributes")] == '{"room":"a"}'


def test_metric_without_data_is_rejected():
    batch = decode_pb(Signal.METRICS, metrics_request(metrics_pb2.Metric(name="empty"),
                                                      *every_metric_type()[:1]))
    assert batch.rejected == 1 and "'empty'" in batch.messages[0]
    assert [r[0] for r in batch.metric_points] == ["g", "g"]


def test_metric_count_beyond_int64_is_rejected():
    hist = metrics_pb2.Metric(name="h")
    hist.histogram.data_points.add(time_unix_nano=T0, count=2**64 - 1)
    hist.histogram.data_points.add(time_unix_nano=T0, count=1)
    batch = decode_pb(Signal.METRICS, metrics_request(hist))
    assert batch.rejected == 1 and [r[12] for r in batch.metric_points] == [1]


# --- JSON input --------------------------------------------------------------------------


def json_span(**fields) -> dict:
    span = {"traceId": TRACE_ID.hex().upper(), "spanId": SPAN_ID.hex().upper(), "name": "op",
            "startTimeUnixNano": str(T0), "endTimeUnixNano": T0 + 5}
    span.update(fields)
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def test_json_ids_any_case_ints_as_strings_or_numbers_enums_as_names():
    batch = decode_json(Signal.TRACES, json_span(
        parentSpanId=PARENT_ID.hex().upper(), kind="SPAN_KIND_PRODUCER",
        status={"code": "STATUS_CODE_OK"}, unknownField={"x": [1]}))
    row = span_row(batch)
    assert (row["trace_id"], row["span_id"], row["parent_span_id"]) == (
        TRACE_ID.hex(), SPAN_ID.hex(), PARENT_ID.hex())
    assert (row["start_time_unix_nano"], row["end_time_unix_nano"]) == (T0, T0 + 5)
    assert (row["kind"], row["status_code"]) == (4, 1)


def test_json_ids_that_are_not_hex_reject_only_their_item():
    tree = json_span(spanId="not-hex-at-all!!")
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"].append(json_span()["resourceSpans"][0][
        "scopeSpans"][0]["spans"][0])
    batch = decode_json(Signal.TRACES, tree)
    assert len(batch.spans) == 1 and batch.rejected == 1
    assert any("not hex" in m for m in batch.messages)


def test_json_unknown_enum_number_is_kept():
    assert span_row(decode_json(Signal.TRACES, json_span(kind=99)))["kind"] == 99


@pytest.mark.parametrize("body", [
    b"", b"{", b"[]", b'"text"', b"42", b"null", b'{"resourceSpans": 5}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": true}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}',
    b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}",  # deeper than the stack allows
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\\ud800"}]}]}]}',
    b'{"resourceSpans": [], "x": "\xff"}',  # not UTF-8
])
def test_malformed_json_is_a_payload_error(body):
    with pytest.raises(PayloadError, match="JSON"):
        decode(Signal.TRACES, body, ResourceTable(), json=True)


def test_truncated_protobuf_is_a_payload_error():
    body = traces_request({"svc": [make_span(1, 1, name="x" * 50)]}).SerializeToString()
    with pytest.raises(PayloadError, match="invalid protobuf ExportTraceServiceRequest"):
        decode(Signal.TRACES, body[: len(body) // 2], ResourceTable())


def test_empty_bodies_decode_to_nothing():
    for signal in Signal:
        for batch in (decode(signal, b"", ResourceTable()),
                      decode(signal, b"{}", ResourceTable(), json=True)):
            assert (batch.accepted, batch.rejected, batch.resources) == (0, 0, [])


# --- responses ---------------------------------------------------------------------------


@pytest.mark.parametrize(("signal", "message_type", "field"), [
    (Signal.TRACES, ExportTraceServiceResponse, "rejected_spans"),
    (Signal.LOGS, ExportLogsServiceResponse, "rejected_log_records"),
    (Signal.METRICS, ExportMetricsServiceResponse, "rejected_data_points"),
])
def test_response_has_partial_success_only_when_items_were_rejected(signal, message_type,
                                                                     field):
    assert response(signal, DecodedBatch()) == b""
    assert response(signal, DecodedBatch(), json=True) == b"{}"
    batch = DecodedBatch()
    batch.reject("bad one")
    batch.reject("bad two")
    parsed = message_type.FromString(response(signal, batch))
    assert getattr(parsed.partial_success, field) == 2
    assert parsed.partial_success.error_message == "bad one; bad two"
    camel = "".join(w.capitalize() if i else w for i, w in enumerate(field.split("_")))
    assert json.loads(response(signal, batch, json=True)) == {
        "partialSuccess": {camel: "2", "errorMessage": "bad one; bad two"}}
