"""Files → Export request bodies: OTLP JSON, JSON lines, or protobuf.

- A protobuf file (a ``.pb``/``.binpb``/``.proto`` suffix, or content that is not UTF-8
  text starting with ``{``) holds one binary Export request, or a sequence of them each
  preceded by its length as 4 big-endian bytes (the Collector's file exporter with
  ``format: proto``).
- A JSON file holds one request object (possibly pretty-printed), or one per line as the
  Collector's file exporter writes them (read line by line, so size does not matter).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
from google.protobuf.message import DecodeError

from tracedesk.otlp import Signal

PROTOBUF_SUFFIXES = frozenset({".pb", ".binpb", ".proto"})
SNIFF_BYTES = 64 * 1024
_BOM = codecs.BOM_UTF8


@dataclass(frozen=True, slots=True)
class Body:
    """One request body; ``where`` says where it is in its file ("line 3"; "" for the file)."""

    data: bytes
    json: bool
    where: str
    position: int  # bytes of the file read once this body is handled


@dataclass(frozen=True, slots=True)
class Malformed:
    """A part of a file that is no request at all, and why."""

    where: str
    reason: str
    position: int


def read_bodies(path: Path) -> Iterator[Body | Malformed]:
    """The request bodies in ``path``, in file order. Raises OSError if it cannot be read."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
        if not head.strip():
            yield Malformed("", "the file is empty", len(head))
            return
        if path.suffix.lower() in PROTOBUF_SUFFIXES or not _looks_like_json(head):
            yield from _protobuf_bodies(head + f.read())
            return
        f.seek(0)
        yield from _json_bodies(f)


def _looks_like_json(head: bytes) -> bool:
    text = head[len(_BOM):] if head.startswith(_BOM) else head
    try:
        # Not final: a sample may end inside a character.
        decoded = codecs.getincrementaldecoder("utf-8")().decode(text, final=False)
    except UnicodeDecodeError:
        return False
    return decoded.lstrip()[:1] == "{"


def _json_bodies(f: BinaryIO) -> Iterator[Body | Malformed]:
    position = 0
    for number, line in enumerate(f, 1):
        position += len(line)
        if not line.strip():
            continue
        if _is_object(line):  # the first request fits on its line: JSON lines
            yield Body(line, True, f"line {number}", position)
            yield from _json_lines(f, number + 1, position)
            return
        break
    # One pretty-printed object, or JSON lines whose first line is broken.
    f.seek(0)
    whole = f.read()
    try:
        orjson.loads(whole)
    except orjson.JSONDecodeError as exc:
        lines = whole.splitlines(keepends=True)
        if any(_is_object(line) for line in lines if line.strip()):
            yield from _json_lines(iter(lines), 1, 0)
        else:
            yield Malformed("", f"invalid JSON: {exc}", len(whole))
        return
    yield Body(whole, True, "", len(whole))


def _json_lines(lines: Iterator[bytes] | BinaryIO, first: int, position: int
                ) -> Iterator[Body]:
    for number, line in enumerate(lines, first):
        position += len(line)
        if line.strip():
            yield Body(line, True, f"line {number}", position)


def _is_object(data: bytes) -> bool:
    try:
        return isinstance(orjson.loads(data), dict)
    except orjson.JSONDecodeError:
        return False


def _protobuf_bodies(data: bytes) -> Iterator[Body]:
    frames = _length_prefixed(data)
    if frames is None:
        yield Body(data, False, "", len(data))
        return
    position = 0
    for number, frame in enumerate(frames, 1):
        position += 4 + len(frame)
        yield Body(frame, False, f"message {number}" if len(frames) > 1 else "", position)


def _length_prefixed(data: bytes) -> list[bytes] | None:
    """The messages of a length-prefixed sequence, or None if ``data`` is not exactly one."""
    frames, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        start, at = at + 4, at + 4 + size
        if start > len(data) or at > len(data):
            return None
        frames.append(data[start:at])
    return frames


def protobuf_signal(data: bytes) -> Signal | None:
    """Which Export request ``data`` is: the type that parses it with the most known
    bytes (a request of one signal reads as another's with unknown fields, or not at all)."""
    best, best_size = None, -1
    for signal in Signal:
        message = signal.value.request()
        try:
            message.ParseFromString(data)
        except DecodeError:
            continue
        message.DiscardUnknownFields()
        size = message.ByteSize()
        if size > best_size:
            best, best_size = signal, size
    if best is None or (data and best_size == 0):
        return None
    return best


_JSON_KEYS = {
    Signal.TRACES: ("resourceSpans", "resource_spans"),
    Signal.LOGS: ("resourceLogs", "resource_logs"),
    Signal.METRICS: ("resourceMetrics", "resource_metrics"),
}


def json_signals(tree: dict) -> list[Signal]:
    """The signals whose top-level key a JSON request object has."""
    return [signal for signal, keys in _JSON_KEYS.items() if any(k in tree for k in keys)]
