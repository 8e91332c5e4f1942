"""The fictional shop: what its customers do, rendered as OTLP traces, logs and metrics.

A storefront (frontend, Node.js) calls checkout (Go, gRPC) and inventory (Python, HTTP);
checkout charges cards through payments (Java), which calls a third-party API. Orders go
to Kafka ("orders-queue"), where shipping and email pick them up in traces of their own
that link back to the span that sent the message. Postgres and Redis have no telemetry of
their own: they appear only in client spans (db.system.name, server.address, peer.service).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracedesk.demo import flows
from tracedesk.demo.catalog import BACKGROUND_LOGS, SERVICES
from tracedesk.demo.signals import LogTuple, logs_request, resource_for, scope_for
from tracedesk.demo.spans import TraceDraft

# Span.flags: sampled, plus whether the parent context came from another process.
_LOCAL_PARENT = 0x101
_REMOTE_PARENT = 0x301
# Logs wait here for logs_request(); bounded so that generating traces alone (as the
# benchmark does) cannot grow memory without end.
MAX_PENDING_LOGS = 20_000


class Shop(flows.Flows):
    """Generates the shop's telemetry. With a seed, the same seed yields the same requests
    (names, structure, timing, attributes); ids are fresh unless ``repeat_ids``."""

    def __init__(self, seed: int | None = None, *, repeat_ids: bool = False) -> None:
        super().__init__(seed, repeat_ids=repeat_ids)
        self._resources = {
            name: resource_for(name, str(uuid.UUID(int=self._ids.getrandbits(128), version=4)))
            for name in SERVICES}
        self._logs: deque[LogTuple] = deque(maxlen=MAX_PENDING_LOGS)

    def traces_request(self, min_spans: int, now_ns: int | None = None
                       ) -> tuple[ExportTraceServiceRequest, int]:
        """Whole traces, at least ``min_spans`` spans of them; returns (request, span count)."""
        request, spans, _ = self._generate(min_spans, 0, now_ns, 0)
        return request, spans

    def traces_request_for(self, traces: int, now_ns: int | None = None, spread_ns: int = 0
                           ) -> tuple[ExportTraceServiceRequest, int, int]:
        """At least ``traces`` traces, each ending within ``spread_ns`` before now.

        Returns (request, span count, trace count); a checkout brings its consumers' traces,
        so the count can exceed what was asked for.
        """
        return self._generate(0, traces, now_ns, spread_ns)

    def logs_request(self, now_ns: int | None = None) -> tuple[ExportLogsServiceRequest, int]:
        """The log records of the traces generated since the last call, plus a few that
        belong to no request; returns (request, record count)."""
        now = time.time_ns() if now_ns is None else now_ns
        records = list(self._logs)
        self._logs.clear()
        for service, severity, body, attrs in BACKGROUND_LOGS:
            if self.side_rng.random() < 0.04:
                records.append((service, now, severity, body, attrs, b"", b"", ""))
        return logs_request(records, self._resources)

    def metrics_request(self, now_ns: int | None = None
                        ) -> tuple[ExportMetricsServiceRequest, int]:
        """Every metric's current value (cumulative since the first call); returns
        (request, data point count)."""
        now = time.time_ns() if now_ns is None else now_ns
        return self.metrics.request(now, self._resources)

    # ---------------------------------------------------------------- internals
    def _generate(self, min_spans: int, min_traces: int, now_ns: int | None, spread_ns: int
                  ) -> tuple[ExportTraceServiceRequest, int, int]:
        now = time.time_ns() if now_ns is None else now_ns
        request = ExportTraceServiceRequest()
        groups: dict[Any, Any] = {}
        spans = traces = 0
        while spans < min_spans or traces < min_traces:
            bundle = self.scenario()
            # Place the scenario so that it has just finished.
            last = max(s.end for t in bundle for s in t.spans)
            base = now - last - (self.side_rng.randrange(spread_ns) if spread_ns > 0 else 0)
            for t in bundle:
                spans += self._emit(t, base, request, groups)
            traces += len(bundle)
        return request, spans, traces

    def _scope_spans(self, request: ExportTraceServiceRequest, groups: dict[Any, Any],
                     service: str, role: str) -> Any:
        resource_spans = groups.get(service)
        if resource_spans is None:
            resource_spans = groups[service] = request.resource_spans.add(
                resource=self._resources[service])
        found = groups[service, role] = resource_spans.scope_spans.add(
            scope=scope_for(service, role))
        return found

    def _emit(self, t: TraceDraft, base: int, request: ExportTraceServiceRequest,
              groups: dict[Any, Any]) -> int:
        """Add one finished trace to the request; record its metrics and queue its logs."""
        trace_id = t.trace_id
        record = self.metrics.record
        for s in t.spans:
            scope_spans = groups.get((s.service, s.role))
            if scope_spans is None:
                scope_spans = self._scope_spans(request, groups, s.service, s.role)
            start, end = base + s.start, base + s.end
            scope_spans.spans.add(
                trace_id=trace_id, span_id=s.span_id, parent_span_id=s.parent, name=s.name,
                kind=s.kind, start_time_unix_nano=start, end_time_unix_nano=end,
                attributes=s.attrs, flags=_REMOTE_PARENT if s.remote else _LOCAL_PARENT,
                status=Status(code=s.status[0], message=s.status[1]) if s.status else None,
                events=[Span.Event(time_unix_nano=base + at, name=name, attributes=attrs)
                        for at, name, attrs in s.events] if s.events else None,
                links=[Span.Link(trace_id=tid, span_id=sid, attributes=attrs,
                                 flags=_REMOTE_PARENT)
                       for tid, sid, attrs in s.links] if s.links else None)
            if s.metric is not None:
                name, labels, per_unit = s.metric
                record(s.service, name, labels, (end - start) / per_unit, end, trace_id,
                       s.span_id)
        append = self._logs.append
        for service, at, severity, body, attrs, span_id, event_name in t.logs:
            append((service, base + at, severity, body, attrs, trace_id, span_id, event_name))
        return len(t.spans)
