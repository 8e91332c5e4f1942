"""Every instrument of the real OpenTelemetry SDK, through its OTLP exporter, into a real
`tracedesk serve`: what is stored for each (types, temporality, values, buckets)."""

from __future__ import annotations

import json

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from tracedesk.analysis.metric_series import ExponentialBuckets


def test_every_instrument_is_stored(serve):
    exporter = OTLPMetricExporter(endpoint=serve.grpc_target, insecure=True)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "sdk-metrics"}), metric_readers=[reader],
        views=[View(instrument_name="payload.size",
                    aggregation=ExponentialBucketHistogramAggregation(max_size=20))])
    meter = provider.get_meter("tests.sdk.metrics")
    meter.create_counter("orders", unit="{order}").add(3, {"region": "eu"})
    meter.create_up_down_counter("queue.depth").add(-2)
    meter.create_observable_gauge(
        "temperature", callbacks=[lambda options: [Observation(21.5, {"room": "a"})]],
        unit="Cel")
    meter.create_gauge("cpu.ratio", unit="1").set(0.25)
    latency = meter.create_histogram("latency", unit="ms")
    for value in (3.0, 12.5, 80.0):
        latency.record(value, {"route": "/checkout"})
    payload = meter.create_histogram("payload.size", unit="By")
    for value in (1.0, 2.0, 3.0, 1000.0):
        payload.record(value)
    assert provider.force_flush(10_000)
    provider.shutdown()

    rows = {r[0]: r[1:] for r in serve.query(
        "SELECT name, type, temporality, is_monotonic, value, count, sum, min, max, buckets, "
        "attributes, service_name FROM metric_points")}
    assert {name: row[0] for name, row in rows.items()} == {
        "orders": "sum", "queue.depth": "sum", "temperature": "gauge", "cpu.ratio": "gauge",
        "latency": "histogram", "payload.size": "exponential_histogram"}
    assert all(row[-1] == "sdk-metrics" for row in rows.values())

    assert rows["orders"][1:4] == ("cumulative", 1, 3.0)
    assert json.loads(rows["orders"][9]) == {"region": "eu"}
    assert rows["queue.depth"][1:4] == ("cumulative", 0, -2.0)
    assert rows["temperature"][1:4] == (None, None, 21.5)
    assert rows["cpu.ratio"][3] == 0.25

    _, temporality, _, _, count, total, low, high, buckets, _, _ = rows["latency"]
    assert (temporality, count, total, low, high) == ("cumulative", 3, 95.5, 3.0, 80.0)
    shape = json.loads(buckets)
    assert set(shape) == {"bounds", "counts"}
    assert len(shape["counts"]) == len(shape["bounds"]) + 1 and sum(shape["counts"]) == 3

    _, temporality, _, _, count, total, low, high, buckets, _, _ = rows["payload.size"]
    assert (temporality, count, total, low, high) == ("cumulative", 4, 1006.0, 1.0, 1000.0)
    shape = json.loads(buckets)
    assert set(shape) == {"scale", "zero_count", "zero_threshold", "positive", "negative"}
    assert set(shape["positive"]) == {"offset", "counts"}
    assert sum(shape["positive"]["counts"]) == 4 and shape["positive"]["counts"]
    assert len(shape["positive"]["counts"]) <= 20  # max_size: the SDK lowered the scale
    # Read back as bounds, the median falls between 2 and 3 and p99 near 1000.
    explicit = ExponentialBuckets.from_json(shape).buckets()
    assert 1.0 < explicit.quantile(0.5) <= 4.0
    assert 500 < explicit.quantile(0.99) <= 2048
