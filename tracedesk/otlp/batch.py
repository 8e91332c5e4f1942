"""The decoded form of one Export request: rows ready for the writer, plus what was rejected.

Rows are plain tuples in the column order below (the order of the INSERT statements in
``tracedesk.store.writer``), so a batch crosses to the writer process as one ``marshal``
blob: far cheaper than pickling objects.
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field

SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service_name",
    "start_time_unix_nano", "end_time_unix_nano", "duration_ns", "status_code",
    "status_message", "attributes", "events", "links", "raw", "resource_id", "scope_name",
    "scope_version", "trace_state", "flags",
)
LOG_COLUMNS = (
    "time_unix_nano", "observed_time_unix_nano", "severity_number", "severity_text", "body",
    "attributes", "trace_id", "span_id", "service_name", "resource_id", "scope_name",
    "event_name", "flags",
)
METRIC_COLUMNS = (
    "name", "description", "unit", "type", "temporality", "is_monotonic", "service_name",
    "resource_id", "scope_name", "start_time_unix_nano", "time_unix_nano", "value", "count",
    "sum", "min", "max", "buckets", "attributes", "exemplars", "flags",
)
RESOURCE_COLUMNS = ("resource_id", "service_name", "attributes", "schema_url")

# Only the first few rejection messages are kept: enough to explain, bounded in size.
MAX_MESSAGES = 5


@dataclass
class DecodedBatch:
    resources: list[tuple] = field(default_factory=list)
    spans: list[tuple] = field(default_factory=list)
    logs: list[tuple] = field(default_factory=list)
    metric_points: list[tuple] = field(default_factory=list)
    traces: list[tuple] = field(default_factory=list)  # summaries: see otlp.summaries
    rejected: int = 0
    messages: list[str] = field(default_factory=list)
    _resource_ids: set[int] = field(default_factory=set, repr=False)

    def add_resource(self, entry: tuple) -> None:
        """Record a resource row (once per batch) for the rows that refer to it."""
        if entry[0] not in self._resource_ids:
            self._resource_ids.add(entry[0])
            self.resources.append(entry)

    def reject(self, message: str, count: int = 1) -> None:
        self.rejected += count
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    @property
    def accepted(self) -> int:
        return len(self.spans) + len(self.logs) + len(self.metric_points)

    def error_message(self) -> str:
        more = "" if self.rejected <= len(self.messages) else " (and more)"
        return "; ".join(self.messages) + more

    def to_bytes(self) -> bytes:
        return marshal.dumps(
            (self.resources, self.spans, self.logs, self.metric_points, self.traces))

    @classmethod
    def from_bytes(cls, data: bytes) -> DecodedBatch:
        return cls(*marshal.loads(data))
