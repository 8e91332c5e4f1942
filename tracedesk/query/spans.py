"""What the reference evaluator reads: one trace's spans, reduced to the fields a query
can test, and the trace-level facts (root, duration) derived from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracedesk.model import Span


@dataclass(frozen=True, slots=True)
class QuerySpan:
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    service_name: str
    kind: int  # OTLP SpanKind number, 0-5
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    duration_ns: int
    start_time_unix_nano: int = 0  # picks the root when no span is parentless
    attributes: dict[str, Any] = field(default_factory=dict)
    resource_attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_span(cls, span: Span, resource_attributes: dict[str, Any] | None = None
                  ) -> QuerySpan:
        """The query's view of a stored span (its resource's attributes come separately,
        from ``Reader.resource``)."""
        return cls(span.span_id, span.parent_span_id, span.name, span.service_name, span.kind,
                   span.status_code, span.status_message, span.duration_ns,
                   span.start_time_unix_nano, span.attributes, resource_attributes or {})


@dataclass(frozen=True, slots=True)
class TraceFacts:
    """What ``rootName``, ``rootServiceName`` and ``traceDuration`` read."""

    root_name: str
    root_service_name: str
    duration_ns: int


def trace_facts(spans: Sequence[QuerySpan]) -> TraceFacts:
    """The trace's root and duration, as the store's ``traces`` row computes them.

    The root is the parentless span (the earliest, if several); while it has not arrived,
    the earliest span stands in. Ties go to the smaller span id, so that the answer does
    not depend on input order. The duration runs from the first start to the last end.
    """
    if not spans:
        return TraceFacts("", "", 0)
    root = min(spans, key=lambda s: (s.parent_span_id != "", s.start_time_unix_nano,
                                      s.span_id))
    start = min(s.start_time_unix_nano for s in spans)
    end = max(s.start_time_unix_nano + s.duration_ns for s in spans)
    return TraceFacts(root.name, root.service_name, max(0, end - start))
