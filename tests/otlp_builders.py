"""Small builders for OTLP protobuf requests used across tests."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def trace_id(n: int) -> bytes:
    return n.to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return n.to_bytes(8, "big")


def make_span(tid: int, sid: int, parent: int | None = None, *, name: str = "op",
              start_ms: int = 0, duration_ms: int = 10, error: bool = False,
              base_ns: int | None = None, **attributes: str | int | float | bool
              ) -> trace_pb2.Span:
    base = time.time_ns() if base_ns is None else base_ns
    start = base + start_ms * 1_000_000
    span = trace_pb2.Span(
        trace_id=trace_id(tid), span_id=span_id(sid), name=name,
        kind=trace_pb2.Span.SPAN_KIND_SERVER if parent is None else trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start, end_time_unix_nano=start + duration_ms * 1_000_000,
        attributes=[kv(k, v) for k, v in attributes.items()],
    )
    if parent is not None:
        span.parent_span_id = span_id(parent)
    if error:
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = "boom"
    return span


def traces_request(spans_by_service: dict[str, list[trace_pb2.Span]]
                   ) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for service, spans in spans_by_service.items():
        rs = request.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", service))
        ss = rs.scope_spans.add()
        ss.scope.name = "tests"
        ss.spans.extend(spans)
    return request


def logs_request(*records: logs_pb2.LogRecord, service: str = "svc",
                 scope: str = "logger") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    sl = rl.scope_logs.add()
    sl.scope.name = scope
    sl.log_records.extend(records)
    return request


def metrics_request(*metrics: metrics_pb2.Metric, service: str = "svc",
                    scope: str = "meter") -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", service))
    sm = rm.scope_metrics.add()
    sm.scope.name = scope
    sm.metrics.extend(metrics)
    return request


def trace_exporter(target: str):
    """A raw gRPC TraceService/Export callable for ``target``, and its channel to close."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    channel = grpc.insecure_channel(target)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        response_deserializer=ExportTraceServiceResponse.FromString)
    return export, channel
