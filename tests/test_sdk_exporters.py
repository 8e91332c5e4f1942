"""The real OpenTelemetry Python SDK exporters against a real `tracedesk serve`.

An Export that returned success means the rows are committed, so the tests read SQLite
right after flushing, without waiting.
"""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def _exporters(transport: str, serve):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        kw = {"endpoint": serve.grpc_target, "insecure": True}
        return OTLPSpanExporter(**kw), OTLPLogExporter(**kw), OTLPMetricExporter(**kw)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = serve.http_url
    return (OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
            OTLPLogExporter(endpoint=f"{base}/v1/logs"),
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics"))


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_traces_logs_and_metrics_are_stored(serve, transport):
    span_exporter, log_exporter, metric_exporter = _exporters(transport, serve)
    resource = Resource.create({"service.name": f"shop-{transport}", "deployment.env": "test"})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    tracer = tracer_provider.get_tracer("tests.sdk", "1.2.3")
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger = logging.getLogger(f"tests.sdk.{transport}")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=logger_provider))
    logger.setLevel(logging.INFO)

    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER,
                                      attributes={"http.route": "/checkout", "retry": 2,
                                                  "ratio": 0.5, "ok": True,
                                                  "tags": ["a", "b"]}) as root:
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as child:
            child.add_event("card.declined", {"attempt": 1})
            child.set_status(Status(StatusCode.ERROR, "declined"))
            logger.warning("card declined for order %s", "A-1")
            child_ctx = child.get_span_context()
        root_ctx = root.get_span_context()
    with tracer.start_as_current_span("refund", links=[Link(child_ctx, {"why": "follow"})]):
        pass
    assert tracer_provider.force_flush(10_000)

    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("tests.sdk")
    meter.create_counter("orders", unit="1").add(3, {"region": "eu"})
    meter.create_histogram("latency", unit="ms").record(12.5, {"route": "/checkout"})
    meter.create_up_down_counter("queue.depth").add(-2)
    assert meter_provider.force_flush(10_000)

    trace_id = f"{root_ctx.trace_id:032x}"
    spans = serve.query(
        "SELECT name, kind, service_name, parent_span_id, status_code, status_message, "
        "attributes, events, scope_name, scope_version FROM spans WHERE trace_id = ? "
        "ORDER BY start_time_unix_nano", (trace_id,))
    assert [s[0] for s in spans] == ["GET /checkout", "charge card"]
    root_row, child_row = spans
    assert root_row[1] == 2 and child_row[1] == 3  # SERVER, CLIENT
    assert root_row[2] == f"shop-{transport}"
    assert root_row[3] == "" and child_row[3] == f"{root_ctx.span_id:016x}"
    assert json.loads(root_row[6]) == {"http.route": "/checkout", "retry": 2, "ratio": 0.5,
                                       "ok": True, "tags": ["a", "b"]}
    assert child_row[4:6] == (2, "declined")
    (event,) = json.loads(child_row[7])
    assert event["name"] == "card.declined" and event["attributes"] == {"attempt": 1}
    assert root_row[8:10] == ("tests.sdk", "1.2.3")

    (summary,) = serve.query(
        "SELECT root_span_name, root_service_name, has_root, span_count, error_count, services "
        "FROM traces WHERE trace_id = ?", (trace_id,))
    assert summary == ("GET /checkout", f"shop-{transport}", 1, 2, 1,
                       f'["shop-{transport}"]')

    (links,) = serve.query("SELECT links FROM spans WHERE name = 'refund'")
    (link,) = json.loads(links[0])
    assert link["span_id"] == f"{child_ctx.span_id:016x}"
    assert link["attributes"] == {"why": "follow"}

    (log,) = serve.query("SELECT severity_number, severity_text, body, trace_id, span_id, "
                         "service_name FROM logs")
    assert log[0] == 13 and log[1] == "WARN"
    assert json.loads(log[2]) == "card declined for order A-1"
    assert log[3:5] == (trace_id, f"{child_ctx.span_id:016x}")
    assert log[5] == f"shop-{transport}"

    points = {r[0]: r[1:] for r in serve.query(
        "SELECT name, type, value, count, sum, temporality, is_monotonic, attributes, buckets "
        "FROM metric_points")}
    assert points["orders"][:2] == ("sum", 3.0)
    assert points["orders"][4:7] == ("cumulative", 1, '{"region":"eu"}')
    assert points["latency"][0] == "histogram" and points["latency"][2:4] == (1, 12.5)
    assert sum(json.loads(points["latency"][7])["counts"]) == 1
    assert points["queue.depth"][:2] == ("sum", -2.0) and points["queue.depth"][5] == 0

    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()
