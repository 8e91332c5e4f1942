"""Building blocks for detail panels (spans, log records): labelled sections of key/value
rows that wrap, drawn straight to segments.

Every string shown comes from telemetry and is untrusted: it is appended to Text objects as
plain text (never parsed as markup) after control characters are made visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from tracedesk.ui.text import clean

SECTION = Style(bold=True, color="#87afd7")
KEY = Style(color="#9e9e9e")
DIM = Style(dim=True)

# A hostile value of megabytes would stall rendering; real stack traces fit well within this.
MAX_VALUE_CHARS = 100_000


def clean_block(text: str) -> str:
    """Like ``clean`` but keeps line breaks and expands tabs: stack traces and multi-line
    values stay readable, while every other control character is still made visible."""
    text = text.replace("\r\n", "\n").expandtabs(4)
    return "\n".join(clean(line) for line in text.split("\n"))


def value_text(value: Any, style: Style | None = None) -> Text:
    """An attribute value: strings as-is, anything else as compact JSON; huge values cut."""
    if isinstance(value, str):
        raw = value
    else:
        try:
            raw = orjson.dumps(value).decode()
        except TypeError:  # integers beyond 64 bits, or anything else JSON cannot hold
            raw = repr(value)
    text = Text(overflow="fold")
    text.append(clean_block(raw[:MAX_VALUE_CHARS]), style)
    if len(raw) > MAX_VALUE_CHARS:
        text.append(f" … ({len(raw) - MAX_VALUE_CHARS:,} more characters)", DIM)
    return text


def id_text(value: Any) -> Text:
    """An id as given (hostile data can hold anything), with empty ones made visible."""
    value = "" if value is None else str(value)
    return Text(clean(value)) if value else Text("(empty)", DIM)


Line = list[Segment]
VALUE_MIN_WIDTH = 30


def _wrap(console: Console, text: Text, width: int) -> list[Text]:
    """Lines of ``text`` at most ``width`` cells wide (at least one line)."""
    if "\n" not in text.plain and text.cell_len <= width:
        return [text]  # the common case, and far cheaper than wrapping
    return list(text.wrap(console, width, overflow="fold")) or [Text()]


class KeyValues:
    """Rows of key and value in two aligned columns; a long value wraps under its own column."""

    def __init__(self, key_width: int | None = None, gap: int = 2) -> None:
        self.rows: list[tuple[Text, Text]] = []
        self.key_width = key_width
        self.gap = gap

    def add_row(self, key: str | Text, value: Text) -> None:
        # Keys passed as str are ours; telemetry keys arrive as Text already cleaned.
        self.rows.append((Text(key, KEY) if isinstance(key, str) else key, value))

    def lines(self, console: Console, width: int) -> Iterable[Line]:
        widest = self.key_width or max((key.cell_len for key, _ in self.rows), default=0)
        # A hostile 500-character key must not squeeze every value into one column: keys get
        # at most 40 cells, and no more than half the width unless values keep 30.
        key_width = max(1, min(widest, 40, max(width // 2, width - VALUE_MIN_WIDTH)))
        value_width = max(1, width - key_width - self.gap)
        blank_key = Segment(" " * (key_width + self.gap))
        for key, value in self.rows:
            keys = _wrap(console, key, key_width)
            values = _wrap(console, value, value_width)
            for index in range(max(len(keys), len(values))):
                line: Line = []
                if index < len(keys):
                    line += keys[index].render(console)
                    line.append(Segment(" " * (key_width + self.gap - keys[index].cell_len)))
                else:
                    line.append(blank_key)
                if index < len(values):
                    line += values[index].render(console)
                yield line


class Block:
    """One section: paragraphs and key/value rows, each at an indent.

    It emits its lines directly and keeps them for the last width: Textual draws a Rich
    renderable twice per update (height, then lines), and a rich Table or nested Padding
    costs tens of milliseconds for the few hundred attributes a span can carry.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[int, Text | KeyValues]] = []
        self._cache: tuple[int, list[Segment]] | None = None

    def add(self, part: Text | KeyValues, indent: int = 0) -> Block:
        self.parts.append((indent, part))
        return self

    def extend(self, other: Block, gap: bool = True) -> Block:
        """Append another block's parts (after a blank line when ``gap``)."""
        if gap:
            self.parts.append((0, Text()))
        self.parts += other.parts
        self._cache = None
        return self

    def _lines(self, console: Console, width: int) -> Iterable[Line]:
        for indent, part in self.parts:
            inner = max(1, width - indent)
            lines = (part.lines(console, inner) if isinstance(part, KeyValues)
                     else (list(line.render(console)) for line in _wrap(console, part, inner)))
            for line in lines:
                yield [Segment(" " * indent), *line] if indent else line

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self._cache is None or self._cache[0] != width:
            new_line = Segment.line()
            segments: list[Segment] = []
            for line in self._lines(console, width):
                segments += line
                segments.append(new_line)
            self._cache = (width, segments)
        return self._cache[1]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)


def none_text() -> Text:
    return Text("none", DIM)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (hostile data holds anything)."""
    return value if isinstance(value, dict) else {}


def attributes_block(title: str, attributes: Any) -> Block:
    """A titled group of sorted key/value rows, or a dimmed "none"."""
    attributes = as_dict(attributes)
    block = Block().add(Text(title, SECTION))
    if not attributes:
        return block.add(none_text(), 2)
    rows = KeyValues()
    for key in sorted(attributes, key=str):
        rows.add_row(Text(clean(str(key)), KEY), value_text(attributes[key]))
    return block.add(rows, 2)
