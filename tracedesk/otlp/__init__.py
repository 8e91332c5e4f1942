"""OTLP decoding: wire bytes (protobuf or JSON) → rows; ids, values and responses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tracedesk.otlp.batch import DecodedBatch
from tracedesk.otlp.json_input import JsonPayloadError, parse_json, to_json_bytes
from tracedesk.otlp.logs import decode_logs
from tracedesk.otlp.metrics import decode_metrics
from tracedesk.otlp.traces import decode_traces
from tracedesk.otlp.values import ResourceTable

__all__ = ["DecodedBatch", "PayloadError", "ResourceTable", "Signal", "decode", "response"]


class PayloadError(ValueError):
    """The request body cannot be decoded at all (HTTP 400, gRPC INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class _SignalSpec:
    request: type[Message]
    response: type[Message]
    partial: str  # the partial_success field counting rejected items
    decoder: Callable[..., DecodedBatch]


class Signal(Enum):
    TRACES = _SignalSpec(trace_service_pb2.ExportTraceServiceRequest,
                         trace_service_pb2.ExportTraceServiceResponse,
                         "rejected_spans", decode_traces)
    LOGS = _SignalSpec(logs_service_pb2.ExportLogsServiceRequest,
                       logs_service_pb2.ExportLogsServiceResponse,
                       "rejected_log_records", decode_logs)
    METRICS = _SignalSpec(metrics_service_pb2.ExportMetricsServiceRequest,
                          metrics_service_pb2.ExportMetricsServiceResponse,
                          "rejected_data_points", decode_metrics)


def decode(signal: Signal, body: bytes, resources: ResourceTable, *, json: bool = False,
           defer: bool = False) -> DecodedBatch:
    """Decode one Export request body into rows, collecting per-item rejections.

    ``defer`` leaves spans' attributes, events and links for the writer to convert (see
    ``otlp.traces``); other signals are always converted at once."""
    spec = signal.value
    request = spec.request()
    problems: list[str] = []
    if json:
        try:
            problems = parse_json(body, request)
        except JsonPayloadError as exc:
            raise PayloadError(str(exc)) from None
    else:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise PayloadError(f"invalid protobuf {spec.request.__name__}: {exc}") from None
    batch = DecodedBatch(messages=problems)
    if defer and signal is Signal.TRACES:
        return decode_traces(request, resources, batch, defer=True)  # type: ignore[arg-type]
    return spec.decoder(request, resources, batch)


def response(signal: Signal, batch: DecodedBatch | None, *, json: bool = False) -> bytes:
    """The Export response for a stored batch, with partial_success when items were rejected."""
    message = signal.value.response()
    if batch is not None and batch.rejected:
        setattr(message.partial_success, signal.value.partial, batch.rejected)
        message.partial_success.error_message = batch.error_message()
    return to_json_bytes(message) if json else message.SerializeToString()
