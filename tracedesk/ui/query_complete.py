"""Completion for the query line: attribute names and values from what is stored.

``context(text)`` says what the end of the text is: an attribute name being typed (after
``span.``, ``resource.`` or ``.``), a value after ``attr =``/``!=``, or an intrinsic. The
suggester then reads the names (sampled from recent spans and the resources) or the values
of that attribute in a thread, caches them for a while, and completes the text.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.suggester import Suggester

from tracedesk.query.format import quote
from tracedesk.ui.data import DataSource

INTRINSICS = ("duration", "kind", "name", "rootName", "rootServiceName", "status",
              "statusMessage", "traceDuration")
NAMED_VALUES = {"status": ("error", "ok", "unset"),
                "kind": ("server", "client", "producer", "consumer", "internal")}
CACHE_SECONDS = 30.0

_NAME = r"[A-Za-z0-9_.\-/:]"
_SCOPE = r"(?:(?<![\w.\"])(span|resource)\.|(?<![\w.\"])\.)"
_KEY = re.compile(_SCOPE + rf"({_NAME}*)$")
_VALUE = re.compile(_SCOPE + rf"({_NAME}+)\s*!?=\s*(\"[^\"\\]*)?$")
_INTRINSIC_VALUE = re.compile(r"(?<![\w.])(status|kind)\s*!?=\s*([a-z]*)$")
_WORD = re.compile(r"(?:^|[{(\s&|!])([A-Za-z]+)$")


@dataclass(frozen=True)
class Context:
    what: str  # "key", "value", "intrinsic" or "named" (a status or kind name)
    scope: str | None  # "span", "resource" or None (either)
    key: str  # the attribute (for values) or intrinsic (for named values)
    typed: str  # what of the completed token is already typed


def context(text: str) -> Context | None:
    """What the end of ``text`` is being typed as, inside a spanset; None outside one."""
    if text.rfind("{") <= text.rfind("}"):
        return None
    if m := _VALUE.search(text):
        return Context("value", m.group(1), m.group(2), m.group(3) or "")
    if text.replace('\\"', "").count('"') % 2:
        return None  # inside a string that is not a value being completed
    if m := _INTRINSIC_VALUE.search(text):
        return Context("named", None, m.group(1), m.group(2))
    if m := _KEY.search(text):
        return Context("key", m.group(1), "", m.group(2))
    if m := _WORD.search(text):
        return Context("intrinsic", None, "", m.group(1))
    return None


def complete(text: str, ctx: Context, candidates: Sequence[str]) -> str | None:
    """``text`` completed with the first candidate that extends what is typed."""
    for candidate in candidates:
        token = quote(candidate) if ctx.what == "value" else candidate
        if token.startswith(ctx.typed) and len(token) > len(ctx.typed):
            return text + token[len(ctx.typed):]
    return None


class QuerySuggester(Suggester):
    """Suggests completions from the store; every read runs in a thread, cached."""

    def __init__(self, data: DataSource, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._data = data
        self._clock = clock
        self._cache: dict[tuple, tuple[float, list[str]]] = {}

    async def get_suggestion(self, value: str) -> str | None:
        ctx = context(value)
        if ctx is None:
            return None
        if ctx.what == "intrinsic":
            return complete(value, ctx, INTRINSICS)
        if ctx.what == "named":
            return complete(value, ctx, NAMED_VALUES[ctx.key])
        if ctx.what == "key":
            span_keys, resource_keys = await self._read(("keys",), self._keys)
            keys = (span_keys if ctx.scope == "span" else resource_keys
                    if ctx.scope == "resource" else sorted({*span_keys, *resource_keys}))
            return complete(value, ctx, keys)
        resource = ctx.scope == "resource" or (ctx.scope is None and ctx.key == "service.name")
        values = await self._read(("values", ctx.key, resource),
                                  lambda: self._values(ctx.key, resource))
        return complete(value, ctx, values)

    async def _read(self, key: tuple, read: Callable):
        now = self._clock()
        cached = self._cache.get(key)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            cached = (now, await asyncio.to_thread(read))
            self._cache[key] = cached
        return cached[1]

    def _keys(self) -> tuple[list[str], list[str]]:
        return self._data.read(lambda reader: reader.attribute_keys())

    def _values(self, key: str, resource: bool) -> list[str]:
        if resource and key == "service.name":  # every service, not only recent ones
            return self._data.read(lambda reader: reader.service_names())
        return self._data.read(lambda reader: reader.attribute_values(key, resource=resource))
