"""Building blocks of the shop's traces: one call between two parties at a time.

Spans are built as light Python objects with times relative to the start of their scenario,
so a whole scenario can be placed in time (ending just before "now") once it is complete,
and only then turned into protobuf. Each block nests its spans inside the caller's: a client
span encloses the callee's server span with a small network gap on both sides.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from tracedesk.demo.catalog import (
    DB_NAME,
    KAFKA,
    POSTGRES,
    QUEUE,
    REDIS,
    SERVICES,
    Failure,
    Peer,
)
from tracedesk.demo.signals import Metrics, Value, kv, kv_new

MS = 1_000_000
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
ERROR = 2
DEBUG, INFO, WARN, SEVERE = 5, 9, 13, 17
# gRPC codes a server reports as a span error (the rest are the caller's problem).
_GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})


class SpanDraft:
    __slots__ = ("attrs", "end", "events", "kind", "links", "metric", "name", "parent",
                 "remote", "role", "service", "span_id", "start", "status")

    def __init__(self, service: str, role: str, span_id: bytes, parent: bytes, name: str,
                 kind: int, start: int) -> None:
        self.service = service
        self.role = role  # picks the instrumentation scope
        self.span_id = span_id
        self.parent = parent
        self.name = name
        self.kind = kind
        self.start = start
        self.end = start
        self.attrs: list[KeyValue] = []
        self.status: tuple[int, str] | None = None
        self.events: list[tuple[int, str, list[KeyValue]]] | None = None
        self.links: list[tuple[bytes, bytes, list[KeyValue]]] | None = None
        # (histogram name, attributes, ns per unit) this span's duration is recorded in.
        self.metric: tuple[str, tuple[tuple[str, Value], ...], float] | None = None
        self.remote = False  # the parent span lives in another process


class TraceDraft:
    __slots__ = ("logs", "spans", "trace_id")

    def __init__(self, trace_id: bytes) -> None:
        self.trace_id = trace_id
        self.spans: list[SpanDraft] = []
        # (service, time, severity, body, attributes, span id, event name)
        self.logs: list[tuple[str, int, int, Any, dict[str, Any] | None, bytes, str]] = []


def _partition(key: str) -> int:
    return zlib.crc32(key.encode()) % 3


Handler = Callable[[SpanDraft, int], tuple[int, int]]
RpcHandler = Callable[[SpanDraft, int], tuple[int, int, str]]


class SpanBuilder:
    """Random timing, ids and the common span shapes (HTTP, gRPC, SQL, Redis, Kafka)."""

    def __init__(self, seed: int | None, *, repeat_ids: bool = False) -> None:
        self.rng = random.Random(seed)
        # Ids come from their own generator so that a seed repeats what happens without
        # repeating ids, which would overwrite earlier runs' spans in the same database.
        # Pictures and tests that must be identical on every run ask for repeated ids.
        self._ids = random.Random(seed if repeat_ids and seed is not None else None)
        # Whatever varies with how often the caller collects (background logs, gauges,
        # time spread) draws from here, so it cannot shift the scenarios.
        self.side_rng = random.Random(None if seed is None else seed + 1)
        self.metrics = Metrics(self.side_rng)

    # ---------------------------------------------------------------- randomness
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def ms(self, lo: float, hi: float) -> int:
        return int((lo + (hi - lo) * self.rng.random()) * MS)

    def lat(self, median_ms: float, sigma: float = 0.5) -> int:
        return int(self.rng.lognormvariate(math.log(median_ms), sigma) * MS)

    def pause(self) -> int:
        """Time a handler spends between two calls."""
        return int((0.02 + 0.2 * self.rng.random()) * MS)

    def gap(self) -> int:
        """Network time between two pods."""
        return int((0.08 + 0.5 * self.rng.random()) * MS)

    def new_trace(self) -> TraceDraft:
        return TraceDraft((self._ids.getrandbits(128) | 1).to_bytes(16, "big"))

    def unique(self, prefix: str) -> str:
        return f"{prefix}{self._ids.getrandbits(40):010x}"

    # ---------------------------------------------------------------- spans
    def span(self, t: TraceDraft, parent: SpanDraft | None, service: str, role: str,
             name: str, kind: int, start: int) -> SpanDraft:
        s = SpanDraft(service, role, (self._ids.getrandbits(64) | 1).to_bytes(8, "big"),
                      parent.span_id if parent is not None else b"", name, kind, start)
        t.spans.append(s)
        return s

    def internal(self, t: TraceDraft, parent: SpanDraft, service: str, name: str, at: int,
                 duration: int, function: str, **attrs: Value) -> SpanDraft:
        s = self.span(t, parent, service, "app", name, INTERNAL, at)
        s.end = at + duration
        s.attrs = [kv("code.function.name", function), *(kv(k, v) for k, v in attrs.items())]
        return s

    @staticmethod
    def event(span: SpanDraft, at: int, name: str, attrs: list[KeyValue]) -> None:
        if span.events is None:
            span.events = []
        span.events.append((at, name, attrs))

    def fail(self, span: SpanDraft, failure: Failure, at: int, message: str = "") -> None:
        """Mark a span as failed by an exception, the way SDKs record one."""
        span.status = (ERROR, message or failure.message)
        self.event(span, at, "exception", [
            kv("exception.type", failure.type), kv("exception.message", failure.message),
            kv("exception.stacktrace", failure.stacktrace)])

    @staticmethod
    def log(t: TraceDraft, span: SpanDraft, at: int, severity: int, body: Any,
            attrs: dict[str, Any] | None = None, event_name: str = "") -> None:
        t.logs.append((span.service, at, severity, body, attrs, span.span_id, event_name))

    # ---------------------------------------------------------------- HTTP
    def server_attrs(self, span: SpanDraft, method: str, route: str, path: str, status: int,
                     host: str, port: int, client_ip: str, scheme: str = "http",
                     protocol: str = "1.1") -> None:
        span.attrs = [
            kv("http.request.method", method), kv("http.route", route), kv("url.path", path),
            kv("url.scheme", scheme), kv("server.address", host), kv("server.port", port),
            kv("client.address", client_ip), kv("network.peer.address", client_ip),
            kv("network.protocol.version", protocol), kv("http.response.status_code", status)]
        if status >= 500:
            span.attrs.append(kv("error.type", str(status)))
            if span.status is None:
                span.status = (ERROR, "")
        labels = (("http.request.method", method), ("http.route", route),
                  ("http.response.status_code", status), ("url.scheme", scheme))
        span.metric = ("http.server.request.duration", labels, 1e9)
        self.metrics.add(span.service, "http.server.request.count", labels)

    def http(self, t: TraceDraft, parent: SpanDraft, caller: str, callee: str, method: str,
             route: str, path: str, at: int, handler: Handler) -> tuple[int, int]:
        """An HTTP call between two instrumented services; returns (end, status code)."""
        svc = SERVICES[callee]
        client = self.span(t, parent, caller, "http_client", method, CLIENT, at)
        server = self.span(t, client, callee, "http_server", f"{method} {route}", SERVER,
                           at + self.gap())
        server.remote = True
        end, status = handler(server, server.start + self.ms(0.05, 0.4))
        server.end = end + self.ms(0.03, 0.2)
        client.end = server.end + self.gap()
        self.server_attrs(server, method, route, path, status, callee, svc.port,
                          SERVICES[caller].ip)
        client.attrs = [
            kv("http.request.method", method), kv("url.full", f"http://{callee}:{svc.port}{path}"),
            kv("url.template", route), kv("server.address", callee), kv("server.port", svc.port),
            kv("network.peer.address", svc.ip), kv("network.protocol.version", "1.1"),
            kv("peer.service", callee), kv("http.response.status_code", status)]
        if status >= 400:
            client.attrs.append(kv("error.type", str(status)))
            client.status = (ERROR, "")
        return client.end, status

    def external(self, t: TraceDraft, parent: SpanDraft, service: str, peer: Peer,
                 method: str, route: str, at: int, duration: int, status: int,
                 resend: int = 0, error: str = "") -> SpanDraft:
        """An HTTPS call to a third-party API, which sends no telemetry of its own.

        ``status`` 0 means no response arrived; ``error`` then says why (error.type).
        """
        s = self.span(t, parent, service, "http_client", method, CLIENT, at)
        s.end = at + duration
        s.attrs = [
            kv("http.request.method", method), kv("url.full", f"https://{peer.address}{route}"),
            kv("url.template", route), kv("server.address", peer.address),
            kv("server.port", peer.port), kv("network.peer.address", peer.ip),
            kv("network.protocol.version", "2"), kv("peer.service", peer.name)]
        if status:
            s.attrs.append(kv("http.response.status_code", status))
        if resend:
            s.attrs.append(kv("http.request.resend_count", resend))
        if status >= 400 or not status:
            s.attrs.append(kv("error.type", error or str(status)))
            s.status = (ERROR, "")
        return s

    # ---------------------------------------------------------------- gRPC
    def grpc(self, t: TraceDraft, parent: SpanDraft, caller: str, callee: str,
             rpc_service: str, method: str, at: int, handler: RpcHandler) -> tuple[int, int, str]:
        """A gRPC call; the handler returns (end, status code, description)."""
        svc, full = SERVICES[callee], f"{rpc_service}/{method}"
        client = self.span(t, parent, caller, "grpc", full, CLIENT, at)
        server = self.span(t, client, callee, "grpc", full, SERVER, at + self.gap())
        server.remote = True
        end, code, detail = handler(server, server.start + self.ms(0.05, 0.3))
        server.end = end + self.ms(0.02, 0.15)
        client.end = server.end + self.gap()
        common = [kv("rpc.system", "grpc"), kv("rpc.service", rpc_service),
                  kv("rpc.method", method), kv("rpc.grpc.status_code", code),
                  kv("server.address", callee), kv("server.port", svc.port),
                  kv("network.transport", "tcp")]
        caller_ip = SERVICES[caller].ip
        client.attrs = [*common, kv("network.peer.address", svc.ip),
                        kv("network.peer.port", svc.port), kv("peer.service", callee)]
        server.attrs = [*common, kv("client.address", caller_ip),
                        kv("network.peer.address", caller_ip), kv("network.type", "ipv4")]
        if code:
            client.status = (ERROR, detail)
            if code in _GRPC_SERVER_ERRORS and server.status is None:
                server.status = (ERROR, detail)
        server.metric = ("rpc.server.duration", (
            ("rpc.system", "grpc"), ("rpc.service", rpc_service), ("rpc.method", method),
            ("rpc.grpc.status_code", code)), 1e6)
        return client.end, code, detail

    # ---------------------------------------------------------------- data stores
    def sql(self, t: TraceDraft, parent: SpanDraft, service: str, op: str, table: str,
            query: str, at: int, rows: int = 1, duration: int = 0) -> SpanDraft:
        s = self.span(t, parent, service, "db", f"{op} {table}", CLIENT, at)
        s.end = at + (duration or self.lat(0.9 if op == "SELECT" else 1.6, 0.6))
        s.attrs = [
            kv("db.system.name", "postgresql"), kv("db.namespace", DB_NAME),
            kv("db.operation.name", op), kv("db.collection.name", table),
            kv("db.query.text", query), kv("server.address", POSTGRES.address),
            kv("server.port", POSTGRES.port), kv("network.peer.address", POSTGRES.ip),
            kv("peer.service", POSTGRES.name)]
        if op == "SELECT":
            s.attrs.append(kv("db.response.returned_rows", rows))
        s.metric = ("db.client.operation.duration", (
            ("db.system.name", "postgresql"), ("db.operation.name", op),
            ("db.collection.name", table)), 1e9)
        return s

    def redis(self, t: TraceDraft, parent: SpanDraft, service: str, op: str, key: str,
              at: int) -> SpanDraft:
        s = self.span(t, parent, service, "redis", op, CLIENT, at)
        s.end = at + self.lat(0.25, 0.4)
        s.attrs = [
            kv("db.system.name", "redis"), kv("db.operation.name", op),
            kv("db.query.text", f"{op} {key}"), kv("db.namespace", "0"),
            kv("server.address", REDIS.address), kv("server.port", REDIS.port),
            kv("network.peer.address", REDIS.ip), kv("peer.service", REDIS.name)]
        return s

    def _messaging(self, operation: str, key: str, partition: int) -> list[KeyValue]:
        return [kv("messaging.system", "kafka"), kv("messaging.destination.name", QUEUE),
                kv("messaging.operation.type", operation),
                kv("messaging.operation.name", operation),
                kv_new("messaging.kafka.message.key", key),
                kv("messaging.destination.partition.id", str(partition)),
                kv("server.address", KAFKA.address), kv("server.port", KAFKA.port)]

    def publish(self, t: TraceDraft, parent: SpanDraft, service: str, key: str, at: int,
                size: int) -> SpanDraft:
        s = self.span(t, parent, service, "messaging", f"send {QUEUE}", PRODUCER, at)
        s.end = at + self.lat(1.4, 0.5)
        s.attrs = [*self._messaging("send", key, _partition(key)),
                   kv_new("messaging.message.body.size", size), kv("peer.service", KAFKA.name)]
        self.metrics.add(service, "messaging.client.sent.messages", (
            ("messaging.system", "kafka"), ("messaging.destination.name", QUEUE),
            ("messaging.operation.name", "send")))
        return s

    def consume(self, producer_trace: TraceDraft, producer: SpanDraft, group: str, key: str,
                handler: Callable[[TraceDraft, SpanDraft, int], int]) -> TraceDraft:
        """The consumer's own trace, linked to the span that sent the message."""
        t = self.new_trace()
        lag = self.ms(800, 3000) if self.chance(0.04) else self.lat(12, 0.6)
        root = self.span(t, None, group, "messaging", f"process {QUEUE}", CONSUMER,
                         producer.end + lag)
        root.links = [(producer_trace.trace_id, producer.span_id,
                       [kv("messaging.operation.type", "send")])]
        root.end = handler(t, root, root.start + self.ms(0.05, 0.3)) + self.ms(0.05, 0.4)
        root.attrs = [*self._messaging("process", key, _partition(key)),
                      kv("messaging.consumer.group.name", group),
                      kv_new("messaging.kafka.offset", self._ids.getrandbits(20))]
        self.metrics.add(group, "messaging.client.consumed.messages", (
            ("messaging.system", "kafka"), ("messaging.destination.name", QUEUE),
            ("messaging.consumer.group.name", group)))
        return t
