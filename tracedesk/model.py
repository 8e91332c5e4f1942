"""Plain records shared by every layer: what the store's readers return.

The ingest hot path does not build these (it moves tuples: see ``tracedesk.otlp.rows``);
they exist for readers, the query layer and the UI, which handle far fewer objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class SpanKind(IntEnum):
    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    UNSET = 0
    OK = 1
    ERROR = 2


# Read-only by convention, not frozen: a frozen dataclass sets each field through
# object.__setattr__, which doubled the cost of building a 10,000-span trace's spans.
@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    service_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int = 0
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    resource_id: int = 0
    scope_name: str = ""
    scope_version: str = ""
    trace_state: str = ""
    flags: int = 0

    @property
    def duration_ns(self) -> int:
        return self.end_time_unix_nano - self.start_time_unix_nano


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    root_service_name: str
    root_span_name: str
    has_root: bool
    span_count: int
    error_count: int
    services: list[str]
    seq: int

    @property
    def duration_ns(self) -> int:
        return self.end_time_unix_nano - self.start_time_unix_nano


@dataclass(frozen=True, slots=True)
class LogRecord:
    log_id: int
    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    service_name: str
    resource_id: int
    scope_name: str
    event_name: str


@dataclass(frozen=True, slots=True)
class MetricPoint:
    point_id: int
    name: str
    description: str
    unit: str
    type: str
    temporality: str | None
    is_monotonic: bool | None
    service_name: str
    start_time_unix_nano: int
    time_unix_nano: int
    value: float | None
    count: int | None
    sum: float | None
    buckets: Any
    attributes: dict[str, Any]
    exemplars: list[dict[str, Any]]
    resource_id: int
