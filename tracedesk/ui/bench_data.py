"""The data `tracedesk bench-app` measures against, stored through the real decoder and writer.

Many ordinary traces come from the demo shop; one large trace is a nightly batch job (a
shipping reconciliation that calls inventory and payments for every shipment) whose tree
has both fan-out and depth. It starts after every other trace, so it is the list's first row.
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracedesk.demo.shop import Shop
from tracedesk.demo.signals import kv, resource_for, scope_for
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.writer import Writer

MS = 1_000_000
BATCH_JOB_NAME = "nightly shipment reconciliation"
TRACE_STEP_NS = 20 * MS  # the shop's traces start 20 ms apart on average
REQUEST_SPANS = 1_000  # spans per Export request of the batch job, as an SDK batches them

_INTERNAL, _SERVER, _CLIENT = 1, 2, 3


@dataclass(frozen=True)
class Built:
    path: Path
    traces: int
    spans: int
    big_trace_id: str
    big_trace_spans: int


class _Job:
    """Builds the batch job's spans depth first, with a seeded clock and ids."""

    def __init__(self, seed: int, start_ns: int) -> None:
        self.rng = random.Random(seed)
        self.trace_id = self.rng.getrandbits(128).to_bytes(16, "big")
        self.start_ns = start_ns
        self.spans: list[tuple[str, str, Span]] = []  # (service, scope role, span)

    def span(self, service: str, role: str, parent: Span | None, name: str, kind: int,
             start: int, duration: int, **attrs: str | int) -> Span:
        s = Span(trace_id=self.trace_id, span_id=self.rng.getrandbits(64).to_bytes(8, "big"),
                 parent_span_id=parent.span_id if parent is not None else b"", name=name,
                 kind=kind, start_time_unix_nano=start, end_time_unix_nano=start + duration,
                 attributes=[kv(k, v) for k, v in attrs.items()], flags=0x101)
        self.spans.append((service, role, s))
        return s

    def ms(self, median: float) -> int:
        return max(1_000, int(self.rng.lognormvariate(0, 0.5) * median * MS))

    def call(self, parent: Span, at: int, caller: str, callee: str, route: str,
             tables: tuple[str, ...]) -> int:
        """An HTTP call with the callee's server span, validation and queries; returns end."""
        client = self.span(caller, "http", parent, f"GET {route}", _CLIENT, at, 0,
                           **{"http.request.method": "GET", "server.address": callee})
        server = self.span(callee, "http", client, f"GET {route}", _SERVER,
                           at + self.ms(0.3), 0, **{"http.route": route,
                                                    "http.response.status_code": 200})
        t = server.start_time_unix_nano + self.ms(0.1)
        check = self.span(callee, "app", server, "validate", _INTERNAL, t, 0,
                          **{"code.function.name": "validate"})
        cache = self.span(callee, "redis", check, "GET", _CLIENT, t + self.ms(0.05),
                          self.ms(0.4), **{"db.system.name": "redis"})
        check.end_time_unix_nano = cache.end_time_unix_nano + self.ms(0.05)
        t = check.end_time_unix_nano
        for table in tables:
            query = self.span(callee, "db", server, f"SELECT {table}", _CLIENT, t, self.ms(2),
                              **{"db.system.name": "postgresql", "db.collection.name": table,
                                 "db.query.text": f"SELECT * FROM {table} WHERE id = $1"})
            t = query.end_time_unix_nano + self.ms(0.05)
        if self.rng.random() < 0.01:
            server.status.CopyFrom(Status(code=2, message="upstream timeout"))
            server.events.add(time_unix_nano=t, name="exception", attributes=[
                kv("exception.type", "TimeoutError"), kv("exception.message", "timed out")])
        server.end_time_unix_nano = t + self.ms(0.2)
        client.end_time_unix_nano = server.end_time_unix_nano + self.ms(0.3)
        return client.end_time_unix_nano

    def build(self, total: int) -> None:
        """Stages of shipments; each shipment calls inventory then payments (~15 spans)."""
        root = self.span("shipping", "app", None, BATCH_JOB_NAME, _SERVER, self.start_ns, 0,
                         **{"job.name": "reconcile", "job.trigger": "cron"})
        at, stage_no = self.start_ns + MS, 0
        while len(self.spans) < total:
            stage_no += 1
            stage = self.span("shipping", "app", root, f"stage {stage_no}: partition",
                              _INTERNAL, at, 0, **{"job.partition": stage_no})
            t = at + self.ms(0.2)
            for n in range(40):
                if len(self.spans) >= total:
                    break
                item = self.span("shipping", "app", stage, "reconcile shipment", _INTERNAL, t,
                                 0, **{"shipment.id": f"s-{stage_no}-{n}"})
                t = self.call(item, t + self.ms(0.1), "shipping", "inventory",
                              "/api/stock/{sku}", ("stock", "reservations"))
                t = self.call(item, t + self.ms(0.1), "shipping", "payments",
                              "/api/charges/{id}", ("charges",))
                item.end_time_unix_nano = t = t + self.ms(0.1)
            stage.end_time_unix_nano = t
            at = t + self.ms(1)
        root.end_time_unix_nano = at
        del self.spans[total:]

    def requests(self) -> Iterator[bytes]:
        """The spans as Export requests, grouped by service and scope like an SDK sends."""
        for first in range(0, len(self.spans), REQUEST_SPANS):
            request = ExportTraceServiceRequest()
            groups: dict[object, object] = {}
            for service, role, span in self.spans[first:first + REQUEST_SPANS]:
                scope_spans = groups.get((service, role))
                if scope_spans is None:
                    rs = groups.get(service)
                    if rs is None:
                        rs = groups[service] = request.resource_spans.add(resource=resource_for(
                            service, str(uuid.UUID(int=hash(service) & (2**128 - 1)))))
                    scope_spans = groups[service, role] = rs.scope_spans.add(  # type: ignore
                        scope=scope_for(service, role))
                scope_spans.spans.append(span)  # type: ignore[attr-defined]
            yield request.SerializeToString()


def build_database(path: Path, traces: int, big_spans: int, seed: int = 7,
                   progress: Callable[[str], None] = lambda _: None) -> Built:
    """Store ``traces`` shop traces (at least) plus one ``big_spans``-span batch job."""
    writer = Writer(path)
    resources = ResourceTable()
    shop = Shop(seed=seed)
    end_ns = time.time_ns()
    stored_traces = stored_spans = 0
    chunk, report_at = 50, 20_000
    while stored_traces < traces:
        # Walk forward in time so start times spread evenly up to ``end_ns``.
        now = end_ns - (traces - stored_traces - chunk) * TRACE_STEP_NS
        request, spans, count = shop.traces_request_for(chunk, now_ns=now,
                                                        spread_ns=chunk * TRACE_STEP_NS)
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), resources))
        stored_traces += count
        stored_spans += spans
        if stored_traces >= report_at:
            writer.commit()
            progress(f"  {stored_traces:,} traces, {stored_spans:,} spans")
            report_at += 20_000
    job = _Job(seed, end_ns + 1_000 * MS)
    job.build(big_spans)
    for body in job.requests():
        writer.apply(decode(Signal.TRACES, body, resources))
    writer.commit()
    writer.close()
    return describe(path)


def describe(path: Path) -> Built:
    """What a database built by ``build_database`` holds (also for one kept from before)."""
    conn = sqlite3.connect(path)
    try:
        traces, spans = conn.execute(
            "SELECT count(*), coalesce(sum(span_count), 0) FROM traces").fetchone()
        big_id, big_spans = conn.execute(
            "SELECT trace_id, span_count FROM traces WHERE root_span_name = ?",
            (BATCH_JOB_NAME,)).fetchone()
    finally:
        conn.close()
    return Built(path, traces, spans, big_id, big_spans)
