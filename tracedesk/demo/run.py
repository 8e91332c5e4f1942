"""`tracedesk demo`: send the shop's telemetry to an OTLP/gRPC receiver at a steady rate.

Every half second the traces due at the requested rate go out, followed by their logs;
metrics go out every five seconds and once more at the end. A receiver that goes away
mid-run is waited for with backoff; one that never answers at the start ends the demo.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracedesk.config import DEMO_ENDPOINT
from tracedesk.demo.shop import Shop

_SERVICE = "/opentelemetry.proto.collector.{0}.v1.{1}/Export"
# signal → (method, request class, response class, partial_success field)
_METHODS: dict[str, tuple[str, Any, Any, str]] = {
    "traces": (_SERVICE.format("trace", "TraceService"), ExportTraceServiceRequest,
               ExportTraceServiceResponse, "rejected_spans"),
    "logs": (_SERVICE.format("logs", "LogsService"), ExportLogsServiceRequest,
             ExportLogsServiceResponse, "rejected_log_records"),
    "metrics": (_SERVICE.format("metrics", "MetricsService"), ExportMetricsServiceRequest,
                ExportMetricsServiceResponse, "rejected_data_points"),
}
TICK = 0.5              # seconds between trace batches
METRICS_EVERY = 5.0
PROGRESS_EVERY = 5.0
EXPORT_TIMEOUT = 10.0
MAX_BACKOFF = 5.0
MAX_TRACES_PER_REQUEST = 200
# Codes an OTLP exporter retries: the receiver is down, busy or slow.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})
# Reconnect quickly once a receiver appears (gRPC's default backoff grows to 2 minutes).
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 250),
                    ("grpc.min_reconnect_backoff_ms", 250),
                    ("grpc.max_reconnect_backoff_ms", 2000)]


class DemoError(Exception):
    """Ends the demo with exit status 1."""


def _unreachable(endpoint: str) -> str:
    return (f"cannot reach an OTLP receiver at {endpoint} — start one with `tracedesk serve` "
            "(or `tracedesk`), or pass --endpoint")


@dataclass
class Totals:
    traces: int = 0
    spans: int = 0
    logs: int = 0
    points: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_METHODS, 0))

    def line(self) -> str:
        text = (f"sent {self.traces:,} traces ({self.spans:,} spans), {self.logs:,} logs, "
                f"{self.points:,} metric points")
        refused = [f"{n:,} {what}" for what, n in zip(
            ("spans", "log records", "metric points"), self.rejected.values(), strict=True)
            if n]
        return text + (f"; the receiver rejected {', '.join(refused)}" if refused else "")


class Exporter:
    """The three OTLP Export calls on one gRPC channel."""

    def __init__(self, endpoint: str, token: str | None = None) -> None:
        self.channel = grpc.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._calls = {
            signal: (self.channel.unary_unary(
                method, request_serializer=request.SerializeToString,
                response_deserializer=response.FromString), rejected)
            for signal, (method, request, response, rejected) in _METHODS.items()}

    def probe(self, timeout: float) -> None:
        """Export nothing, waiting up to ``timeout`` for a connection; raises grpc.RpcError.

        Unlike watching the channel's state, this also proves the peer speaks OTLP.
        """
        call, _ = self._calls["traces"]
        call(ExportTraceServiceRequest(), timeout=timeout, wait_for_ready=True,
             metadata=self._metadata)

    def export(self, signal: str, request: Any, timeout: float = EXPORT_TIMEOUT) -> int:
        """Send one request; returns how many items the receiver rejected."""
        call, rejected = self._calls[signal]
        response = call(request, timeout=timeout, metadata=self._metadata)
        return getattr(response.partial_success, rejected)

    def close(self) -> None:
        self.channel.close()


class Demo:
    def __init__(self, endpoint: str, rate: float, duration: float, seed: int | None,
                 connect_timeout: float, token: str | None = None) -> None:
        self.endpoint = endpoint
        self.rate = rate
        self.duration = duration
        self.connect_timeout = connect_timeout
        self.shop = Shop(seed)
        self.exporter = Exporter(endpoint, token)
        self.totals = Totals()
        self.disabled: set[str] = set()  # signals the receiver does not implement
        self.failing = False
        self.ends_at = math.inf

    def run(self) -> int:
        length = f" for {self.duration:g} s" if self.duration else ""
        print(f"tracedesk demo: sending a fictional shop's traces, logs and metrics to "
              f"{self.endpoint} over OTLP/gRPC, {self.rate:g} traces/s{length}; "
              "press Ctrl-C to stop", flush=True)
        started = time.monotonic()
        try:
            if not self._connect():
                print(f"tracedesk demo: {_unreachable(self.endpoint)}", file=sys.stderr)
                return 1
            self._loop(time.monotonic())  # --duration counts from the first connection
            self._flush(final=True)
        except KeyboardInterrupt:
            self._flush(final=False)
        except DemoError as exc:
            print(f"tracedesk demo: {exc}", file=sys.stderr)
            print(f"stopped: {self.totals.line()}", flush=True)
            return 1
        finally:
            self.exporter.close()
        print(f"stopped after {time.monotonic() - started:.0f} s: {self.totals.line()} to "
              f"{self.endpoint}", flush=True)
        return 0

    def _connect(self) -> bool:
        """Wait up to connect_timeout for the receiver; False if it never answered."""
        deadline = time.monotonic() + self.connect_timeout
        timeout = min(1.0, self.connect_timeout)  # short at first, to say why we wait
        while True:
            try:
                self.exporter.probe(timeout)
                if self.failing:
                    print(f"connected to {self.endpoint}", flush=True)
                    self.failing = False
                return True
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise DemoError(f"the receiver at {self.endpoint} refused an OTLP export: "
                                    f"{exc.code().name}: {exc.details()}") from None
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return False
            if not self.failing:
                print(f"{_unreachable(self.endpoint)}; retrying for "
                      f"{self.connect_timeout:g} s", file=sys.stderr, flush=True)
                self.failing = True

    def _loop(self, started: float) -> None:
        self.ends_at = started + self.duration if self.duration > 0 else math.inf
        last = tick = started
        next_metrics, next_progress = started + METRICS_EVERY, started + PROGRESS_EVERY
        owed = 0.0  # traces due but not yet sent
        while True:
            tick += TICK
            wait = min(tick, self.ends_at) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = time.monotonic()
            # After an outage, carry on at the normal rate rather than catching up.
            owed = min(owed + self.rate * (now - last), max(1.0, 2 * self.rate * TICK))
            last = now
            owed -= self._send_traces(int(owed))
            self._send_logs()
            if now >= next_metrics:
                self._send_metrics()
                next_metrics = now + METRICS_EVERY
            if now >= next_progress:
                print(self.totals.line(), flush=True)
                next_progress = now + PROGRESS_EVERY
            if now >= self.ends_at:
                return

    def _send_traces(self, due: int) -> int:
        sent = 0
        while sent < due:
            request, spans, traces = self.shop.traces_request_for(
                min(due - sent, MAX_TRACES_PER_REQUEST), spread_ns=int(TICK * 1e9))
            sent += traces
            if self._export("traces", request):
                self.totals.traces += traces
                self.totals.spans += spans
        return sent

    def _send_logs(self, timeout: float = EXPORT_TIMEOUT, retry: bool = True) -> None:
        request, count = self.shop.logs_request()
        if count and self._export("logs", request, timeout, retry):
            self.totals.logs += count

    def _send_metrics(self, timeout: float = EXPORT_TIMEOUT, retry: bool = True) -> None:
        request, count = self.shop.metrics_request()
        if count and self._export("metrics", request, timeout, retry):
            self.totals.points += count

    def _flush(self, final: bool) -> None:
        """Last logs and metrics; after Ctrl-C, one short attempt and no more waiting."""
        try:
            self._send_logs(5.0 if final else 2.0, retry=False)
            self._send_metrics(5.0 if final else 2.0, retry=False)
        except (KeyboardInterrupt, DemoError):
            pass

    def _export(self, signal: str, request: Any, timeout: float = EXPORT_TIMEOUT,
                retry: bool = True) -> bool:
        """Send, backing off while the receiver is unavailable; False if it was not sent."""
        if signal in self.disabled:
            return False
        backoff = TICK
        while True:
            try:
                rejected = self.exporter.export(signal, request, timeout)
            except grpc.RpcError as exc:
                if not retry or not self._can_retry(signal, exc):
                    return False
                if time.monotonic() + backoff > self.ends_at:
                    return False
                time.sleep(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF)
                continue
            if self.failing:
                print(f"the receiver at {self.endpoint} is back; carrying on", flush=True)
                self.failing = False
            self.totals.rejected[signal] += rejected
            return True

    def _can_retry(self, signal: str, exc: grpc.RpcError) -> bool:
        code, details = exc.code(), exc.details()
        if code == grpc.StatusCode.UNIMPLEMENTED and signal != "traces":
            print(f"the receiver at {self.endpoint} does not accept OTLP {signal}; sending "
                  "only the other signals", file=sys.stderr, flush=True)
            self.disabled.add(signal)
            return False
        if code not in RETRYABLE:
            raise DemoError(f"the receiver at {self.endpoint} refused {signal}: "
                            f"{code.name}: {details}")
        if not self.failing:
            print(f"the receiver at {self.endpoint} is unavailable ({code.name}: {details}); "
                  "retrying with backoff", file=sys.stderr, flush=True)
            self.failing = True
        return True


def run_demo(endpoint: str = DEMO_ENDPOINT, *, rate: float = 5.0, duration: float = 0.0,
             seed: int | None = None, connect_timeout: float = 10.0,
             token: str | None = None) -> int:
    """Run the demo; returns the exit status (0 done or interrupted, 1 no receiver, 2 usage).

    ``connect_timeout`` is how long to wait for the receiver at the start.
    """
    if not 0 < rate < math.inf:
        print("tracedesk demo: --rate must be a positive number of traces per second",
              file=sys.stderr)
        return 2
    if not 0 <= duration < math.inf:
        print("tracedesk demo: --duration must be 0 (until Ctrl-C) or a number of seconds",
              file=sys.stderr)
        return 2
    return Demo(endpoint, rate, duration, seed, connect_timeout, token).run()
