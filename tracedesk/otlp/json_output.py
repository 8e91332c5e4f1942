"""Stored spans → an ExportTraceServiceRequest in the OTLP/JSON mapping.

The inverse of decoding: lowerCamelCase keys, hex ids, 64-bit integers as strings, enums as
numbers, attribute values as AnyValue objects. Attribute values come back as stored: bytes
were kept as base64 text, so they are exported as strings; NaN and infinities as text too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tracedesk.model import Span


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A resource as the ``resources`` table holds it."""

    attributes: dict[str, Any]
    schema_url: str = ""


def any_value(value: Any) -> dict[str, Any]:
    """A stored JSON value as an OTLP/JSON ``AnyValue`` (``{}`` for null)."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):  # before int: bool is an int
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    return {}


def key_values(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An attribute map as a repeated ``KeyValue``, in the stored order."""
    return [{"key": key, "value": any_value(value)} for key, value in attributes.items()]


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"timeUnixNano": str(event.get("time_unix_nano", 0)),
                           "name": event.get("name", "")}
    if event.get("attributes"):
        out["attributes"] = key_values(event["attributes"])
    if event.get("dropped_attributes_count"):
        out["droppedAttributesCount"] = event["dropped_attributes_count"]
    return out


def _link(link: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": link.get("trace_id", ""), "spanId": link.get("span_id", "")}
    if link.get("trace_state"):
        out["traceState"] = link["trace_state"]
    if link.get("attributes"):
        out["attributes"] = key_values(link["attributes"])
    if link.get("flags"):
        out["flags"] = link["flags"]
    return out


def span_json(span: Span) -> dict[str, Any]:
    """One span as an OTLP/JSON ``Span`` object (defaults left out, as the Collector does)."""
    out: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    if span.flags:
        out["flags"] = span.flags
    out["name"] = span.name
    out["kind"] = span.kind
    out["startTimeUnixNano"] = str(span.start_time_unix_nano)
    out["endTimeUnixNano"] = str(span.end_time_unix_nano)
    if span.attributes:
        out["attributes"] = key_values(span.attributes)
    if span.events:
        out["events"] = [_event(e) for e in span.events if isinstance(e, dict)]
    if span.links:
        out["links"] = [_link(link) for link in span.links if isinstance(link, dict)]
    status: dict[str, Any] = {}
    if span.status_message:
        status["message"] = span.status_message
    if span.status_code:
        status["code"] = span.status_code
    out["status"] = status
    return out


def traces_request(spans: Iterable[Span], resources: Mapping[int, StoredResource]
                   ) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest``: spans grouped by resource, then by scope, each group
    in the order its first span comes. A span whose resource is missing from ``resources``
    gets one holding only its service name."""
    groups: dict[int, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    services: dict[int, str] = {}
    for span in spans:
        scopes = groups.setdefault(span.resource_id, {})
        scopes.setdefault((span.scope_name, span.scope_version), []).append(span_json(span))
        services.setdefault(span.resource_id, span.service_name)
    resource_spans = []
    for resource_id, scopes in groups.items():
        stored = resources.get(resource_id)
        if stored is None:
            stored = StoredResource({"service.name": services[resource_id]})
        entry: dict[str, Any] = {"resource": {"attributes": key_values(stored.attributes)}}
        entry["scopeSpans"] = [
            {"scope": _scope(name, version), "spans": rows}
            for (name, version), rows in scopes.items()]
        if stored.schema_url:
            entry["schemaUrl"] = stored.schema_url
        resource_spans.append(entry)
    return {"resourceSpans": resource_spans}


def _scope(name: str, version: str) -> dict[str, str]:
    scope = {"name": name}
    if version:
        scope["version"] = version
    return scope
