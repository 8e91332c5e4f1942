"""Attribute helpers, log records and metric aggregation for the demo shop.

Metrics aggregate like an SDK with cumulative temporality: counters and histograms grow
over the whole run from one start time, while exemplars are per collection and point at
server spans of traces the shop has already emitted.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tracedesk.demo.catalog import SERVICES

Value = str | int | float | bool

_KV_CACHE: dict[tuple[str, type, Value], KeyValue] = {}
_KV_CACHE_MAX = 50_000


def any_value(value: Any) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=attributes(value)))
    return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))


def kv(key: str, value: Value) -> KeyValue:
    """A shared KeyValue for a value from a small set; building protobufs dominates the cost."""
    cache_key = (key, value.__class__, value)  # the class keeps True apart from 1
    found = _KV_CACHE.get(cache_key)
    if found is None:
        if len(_KV_CACHE) >= _KV_CACHE_MAX:
            _KV_CACHE.clear()
        found = _KV_CACHE[cache_key] = KeyValue(key=key, value=any_value(value))
    return found


def kv_new(key: str, value: Any) -> KeyValue:
    """A KeyValue for a value that is rarely repeated (ids, amounts), so not worth caching."""
    return KeyValue(key=key, value=any_value(value))


def attributes(mapping: Mapping[str, Any]) -> list[KeyValue]:
    return [kv_new(k, v) for k, v in mapping.items()]


def resource_for(service: str, instance_id: str) -> Resource:
    s = SERVICES[service]
    return Resource(attributes=attributes({
        "service.name": s.name, "service.version": s.version, "service.namespace": "shop",
        "service.instance.id": instance_id, "deployment.environment.name": "demo",
        "host.name": s.host, "host.arch": "amd64", "os.type": "linux",
        "process.runtime.name": s.runtime[0], "process.runtime.version": s.runtime[1],
        "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": s.language,
        "telemetry.sdk.version": s.sdk_version,
    }))


def scope_for(service: str, role: str) -> InstrumentationScope:
    scopes = SERVICES[service].scopes
    name, version = scopes.get(role) or scopes["app"]
    return InstrumentationScope(name=name, version=version)


# ---------------------------------------------------------------------------- logs

SEVERITY_TEXT = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR"}

# (service, time ns, severity number, body, attributes, trace id, span id, event name)
LogTuple = tuple[str, int, int, Any, Mapping[str, Any] | None, bytes, bytes, str]


def logs_request(records: Iterable[LogTuple], resources: Mapping[str, Resource]
                 ) -> tuple[ExportLogsServiceRequest, int]:
    request = ExportLogsServiceRequest()
    by_service: dict[str, Any] = {}
    count = 0
    for service, when, severity, body, attrs, trace_id, span_id, event_name in records:
        scope_logs = by_service.get(service)
        if scope_logs is None:
            rl = request.resource_logs.add(resource=resources[service])
            scope_logs = by_service[service] = rl.scope_logs.add(
                scope=scope_for(service, "app"))
        scope_logs.log_records.add(
            time_unix_nano=when, observed_time_unix_nano=when + 150_000,
            severity_number=severity, severity_text=SEVERITY_TEXT[severity],
            body=any_value(body), attributes=attributes(attrs) if attrs else None,
            trace_id=trace_id, span_id=span_id, flags=1 if trace_id else 0,
            event_name=event_name)
        count += 1
    return request, count


# ------------------------------------------------------------------------- metrics

HTTP_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
RPC_BOUNDS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
              5000.0, 7500.0, 10000.0)
DB_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)

# name → (description, unit, scope role, histogram bounds or None, monotonic for sums)
METRICS: dict[str, tuple[str, str, str, tuple[float, ...] | None, bool]] = {
    "http.server.request.duration": ("Duration of HTTP server requests.", "s",
                                     "http_server", HTTP_BOUNDS, False),
    "rpc.server.duration": ("Measures the duration of inbound RPC.", "ms", "grpc",
                            RPC_BOUNDS, False),
    "db.client.operation.duration": ("Duration of database client operations.", "s", "db",
                                     DB_BOUNDS, False),
    "http.server.request.count": ("Number of HTTP server requests.", "{request}",
                                  "http_server", None, True),
    "messaging.client.sent.messages": ("Number of messages producer attempted to send.",
                                       "{message}", "messaging", None, True),
    "messaging.client.consumed.messages": ("Number of messages delivered to the application.",
                                           "{message}", "messaging", None, True),
    "shop.orders.placed": ("Orders accepted by checkout.", "{order}", "app", None, True),
    "shop.orders.revenue": ("Value of accepted orders.", "USD", "app", None, True),
    "db.client.connection.count": ("The number of connections that are currently in state "
                                   "described by the state attribute.", "{connection}", "db",
                                   None, False),
    "http.server.active_requests": ("Number of active HTTP server requests.", "{request}",
                                    "http_server", None, False),
    "process.cpu.utilization": ("Difference in process.cpu.time since the last measurement, "
                                "divided by the elapsed time and number of CPUs available.",
                                "1", "app", None, False),
}

Attrs = tuple[tuple[str, Value], ...]
_POOLS = {"checkout": "pgx", "payments": "HikariPool-1", "inventory": "psycopg_pool"}


class _Histogram:
    __slots__ = ("bounds", "count", "counts", "exemplars", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.exemplars: dict[int, tuple[int, float, bytes, bytes]] = {}

    def record(self, value: float, when: int, trace_id: bytes, span_id: bytes) -> None:
        bucket = bisect_left(self.bounds, value)
        self.counts[bucket] += 1
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        # Like the SDK's aligned-bucket reservoir: the latest measurement per bucket.
        self.exemplars[bucket] = (when, value, trace_id, span_id)


class Metrics:
    """Cumulative metric state for every service, turned into requests on demand."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.start_ns = 0
        self._histograms: dict[tuple[str, str, Attrs], _Histogram] = {}
        self._sums: dict[tuple[str, str, Attrs], float] = {}
        self._cpu = {name: 0.05 for name in SERVICES}

    def record(self, service: str, name: str, attrs: Attrs, value: float, when: int,
               trace_id: bytes, span_id: bytes) -> None:
        key = (service, name, attrs)
        hist = self._histograms.get(key)
        if hist is None:
            hist = self._histograms[key] = _Histogram(METRICS[name][3] or ())
        hist.record(value, when, trace_id, span_id)

    def add(self, service: str, name: str, attrs: Attrs, value: float = 1) -> None:
        key = (service, name, attrs)
        self._sums[key] = self._sums.get(key, 0) + value

    def request(self, now_ns: int, resources: Mapping[str, Resource]
                ) -> tuple[ExportMetricsServiceRequest, int]:
        if not self.start_ns:
            self.start_ns = now_ns - 1_000_000_000
        by_metric: dict[tuple[str, str], metrics_pb2.Metric] = {}
        request = ExportMetricsServiceRequest()
        groups: dict[Any, Any] = {}  # service → ResourceMetrics, (service, role) → scope

        def metric(service: str, name: str) -> metrics_pb2.Metric:
            found = by_metric.get((service, name))
            if found is None:
                description, unit, role = METRICS[name][:3]
                scope = groups.get((service, role))
                if scope is None:
                    rm = groups.get(service)
                    if rm is None:
                        rm = groups[service] = request.resource_metrics.add(
                            resource=resources[service])
                    scope = groups[service, role] = rm.scope_metrics.add(
                        scope=scope_for(service, role))
                found = by_metric[service, name] = scope.metrics.add(
                    name=name, description=description, unit=unit)
            return found

        points = self._histogram_points(metric, now_ns)
        points += self._sum_points(metric, now_ns)
        points += self._observed_points(metric, now_ns)
        return request, points

    def _histogram_points(self, metric: Any, now_ns: int) -> int:
        for (service, name, attrs), h in self._histograms.items():
            data = metric(service, name).histogram
            data.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
            data.data_points.add(
                attributes=[kv(k, v) for k, v in attrs], start_time_unix_nano=self.start_ns,
                time_unix_nano=now_ns, count=h.count, sum=h.sum, min=h.min, max=h.max,
                bucket_counts=h.counts, explicit_bounds=h.bounds,
                exemplars=[metrics_pb2.Exemplar(time_unix_nano=t, as_double=v, trace_id=tid,
                                                span_id=sid)
                           for t, v, tid, sid in h.exemplars.values()])
            h.exemplars = {}
        return len(self._histograms)

    def _sum_points(self, metric: Any, now_ns: int) -> int:
        for (service, name, attrs), value in self._sums.items():
            data = metric(service, name).sum
            data.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
            data.is_monotonic = METRICS[name][4]
            point = data.data_points.add(attributes=[kv(k, v) for k, v in attrs],
                                         start_time_unix_nano=self.start_ns,
                                         time_unix_nano=now_ns)
            if isinstance(value, int):
                point.as_int = value
            else:
                point.as_double = round(value, 2)
        return len(self._sums)

    def _observed_points(self, metric: Any, now_ns: int) -> int:
        """Gauges and up-down counters: what a callback would observe right now."""
        rng, points = self._rng, 0
        for service in SERVICES:
            cpu = self._cpu[service] = min(0.95, max(0.01, self._cpu[service]
                                                     + rng.gauss(0, 0.02)))
            metric(service, "process.cpu.utilization").gauge.data_points.add(
                time_unix_nano=now_ns, as_double=round(cpu, 4))
            points += 1
        for service, pool in _POOLS.items():
            data = metric(service, "db.client.connection.count").sum
            data.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
            used = rng.randint(1, 8)
            for state, value in (("used", used), ("idle", 10 - used)):
                data.data_points.add(
                    attributes=[kv("db.client.connection.pool.name", pool),
                                kv("db.client.connection.state", state)],
                    start_time_unix_nano=self.start_ns, time_unix_nano=now_ns, as_int=value)
                points += 1
        data = metric("frontend", "http.server.active_requests").sum
        data.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
        data.data_points.add(attributes=[kv("http.request.method", "GET"),
                                         kv("url.scheme", "https")],
                             start_time_unix_nano=self.start_ns, time_unix_nano=now_ns,
                             as_int=rng.randint(0, 12))
        return points + 1
