"""OTLP/JSON → protobuf messages.

The OTLP JSON mapping differs from protobuf's canonical JSON in one way that matters here:
trace and span ids are hex strings, not base64. Everything else (camelCase or snake_case
keys, 64-bit integers as strings or numbers, enums as numbers or names) is what
``json_format`` already accepts; unknown fields are ignored as the spec requires.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_ID_KEYS = frozenset({"traceId", "trace_id", "spanId", "span_id", "parentSpanId",
                      "parent_span_id"})
# An invalid hex id is replaced by one byte: the decoders then reject just that item.
_INVALID_ID = base64.b64encode(b"\xff").decode()


class JsonPayloadError(ValueError):
    """The body is not OTLP/JSON; the message says where and why."""


def _fix_ids(node: Any, problems: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                if _HEX.fullmatch(value):
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                else:
                    if len(problems) < 5:
                        problems.append(f"{key} {value[:40]!r} is not hex")
                    node[key] = _INVALID_ID
            else:
                _fix_ids(value, problems)
    elif isinstance(node, list):
        for item in node:
            _fix_ids(item, problems)


def parse_json(body: bytes, message: Message) -> list[str]:
    """Fill ``message`` from an OTLP/JSON body; return notes on ids that were not hex."""
    try:
        tree = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JsonPayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(tree, dict):
        raise JsonPayloadError("invalid OTLP/JSON: the body must be a JSON object")
    problems: list[str] = []
    try:
        _fix_ids(tree, problems)
    except RecursionError:
        raise JsonPayloadError("invalid OTLP/JSON: nested too deeply") from None
    try:
        json_format.ParseDict(tree, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise JsonPayloadError(f"invalid OTLP/JSON: {exc}") from None
    return problems


def to_json_bytes(message: Message) -> bytes:
    """A response message in OTLP/JSON (camelCase, omitting defaults)."""
    return orjson.dumps(json_format.MessageToDict(message))
