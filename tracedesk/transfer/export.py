"""A stored trace as an OTLP/JSON ExportTraceServiceRequest (see ``otlp.json_output``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from tracedesk.otlp.json_output import StoredResource, traces_request
from tracedesk.store.reader import Reader
from tracedesk.transfer import TransferError

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,32}")
_RESOURCES = ("SELECT resource_id, attributes, schema_url FROM resources "
              "WHERE resource_id IN (SELECT value FROM json_each(?))")


@dataclass(frozen=True, slots=True)
class ExportedTrace:
    trace_id: str
    span_count: int
    data: bytes  # compact OTLP/JSON and a newline: also a valid JSON-lines file


def resolve_trace_id(reader: Reader, text: str) -> str:
    """The full id of the one stored trace whose id starts with ``text`` (any case)."""
    prefix = text.strip().lower()
    if not _HEX_PREFIX.fullmatch(prefix):
        raise TransferError(f"{text!r} is not a trace id (hex digits, at most 32)")
    matches = reader.traces_by_id_prefix(prefix, limit=3)
    if not matches:
        if len(prefix) == 32:
            raise TransferError(f"trace {prefix} is not stored")
        raise TransferError(f"no stored trace has an id starting with {prefix}")
    if len(matches) > 1:
        shown = ", ".join(m.trace_id for m in matches[:2])
        more = ", …" if len(matches) > 2 else ""
        raise TransferError(f"trace id {prefix} is ambiguous: it starts {shown}{more}; "
                            "give more of the id")
    return matches[0].trace_id


def stored_resources(reader: Reader, resource_ids: set[int]) -> dict[int, StoredResource]:
    """The stored attributes and schema URL of each resource (missing ones left out)."""
    rows = reader.conn.execute(_RESOURCES, (orjson.dumps(sorted(resource_ids)).decode(),))
    return {rid: StoredResource(orjson.loads(attrs), url or "") for rid, attrs, url in rows}


def export_trace(reader: Reader, trace_id: str) -> ExportedTrace:
    """The trace with exactly this id as OTLP/JSON; TransferError if it has no spans."""
    spans = reader.spans(trace_id)
    if not spans:
        raise TransferError(f"trace {trace_id} is not stored")
    resources = stored_resources(reader, {s.resource_id for s in spans})
    data = orjson.dumps(traces_request(spans, resources)) + b"\n"
    return ExportedTrace(trace_id, len(spans), data)


def write_file(path: Path, data: bytes) -> None:
    """Write (or overwrite) ``path``; TransferError with the reason if that fails."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise TransferError(f"cannot write {path}: {exc.strerror or exc}") from None
