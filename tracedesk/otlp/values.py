"""OTLP value conversions: AnyValue and attribute lists to JSON text, ids to hex, resources.

These run once per attribute of every received record, so the common scalar cases are
tested first and handled inline.
"""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

import orjson

_dumps = orjson.dumps
# SQLite integers are signed 64-bit; unsigned fixed64 fields (times, counts) can exceed this.
MAX_INT64 = 2**63 - 1
_SORTED = orjson.OPT_SORT_KEYS


def any_value(v: Any) -> Any:
    """An ``AnyValue`` message as a JSON-ready Python value (bytes become base64 text)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "bool_value":
        return v.bool_value
    if which == "double_value":
        d = v.double_value
        # JSON has no NaN or infinity; keep them visible as text instead of turning them to null.
        return d if math.isfinite(d) else str(d)
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return None


def attributes_dict(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        # Most values are non-empty strings: reading the field first saves the oneof
        # lookup for them (another kind of value reads as "").
        text = v.string_value
        if text:
            out[kv.key] = text
            continue
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = text
        elif which == "int_value":
            out[kv.key] = v.int_value
        elif which == "bool_value":
            out[kv.key] = v.bool_value
        else:
            out[kv.key] = any_value(v)
    return out


def attributes_json(kvs: Any) -> str:
    """A repeated ``KeyValue`` as a JSON object's text; ``{}`` when empty."""
    if not kvs:
        return "{}"
    return _dumps(attributes_dict(kvs)).decode()


def to_json(value: Any) -> str:
    return _dumps(value).decode()


def hex_id(raw: bytes, size: int) -> str | None:
    """Lowercase hex of an id of ``size`` bytes, ``""`` for an absent id, None if invalid."""
    if not raw:
        return ""
    if len(raw) != size or not any(raw):
        return None
    return raw.hex()


class ResourceTable:
    """Deduplicates resources: the same attribute set always gets the same id.

    Ids are derived from the content (a 63-bit hash), so decoders in any process agree
    without asking the database. Recent resources are cached by their wire bytes.
    """

    CACHE_LIMIT = 4096

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[int, str, str, str]] = {}

    def lookup(self, resource: Any, schema_url: str) -> tuple[int, str, str, str]:
        """(resource_id, service_name, attributes JSON, schema_url) for a Resource message."""
        key = resource.SerializeToString(deterministic=True) + b"\0" + schema_url.encode()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        attrs = attributes_dict(resource.attributes)
        canonical = _dumps(attrs, option=_SORTED)
        digest = hashlib.blake2b(canonical + b"\0" + schema_url.encode(), digest_size=8).digest()
        resource_id = int.from_bytes(digest, "big") >> 1
        service = attrs.get("service.name")
        service_name = service if isinstance(service, str) and service else "unknown_service"
        entry = (resource_id, service_name, canonical.decode(), schema_url)
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = entry
        return entry
