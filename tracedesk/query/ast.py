"""The syntax tree of a query: frozen dataclasses that the parser builds, the reference
evaluator interprets and the SQL compiler translates.

A query is either a ``TextSearch`` (plain words) or a spanset expression: ``Spanset`` filters
(``{ ... }``) joined by ``SpansetAnd``/``SpansetOr``. Inside a spanset, conditions are
``Comparison``s joined by ``And``/``Or`` and negated by ``Not``.

Literal values are plain Python ``str``, ``int``, ``float`` and ``bool``, plus the wrappers
below for the types TraceQL has and Python does not (durations, status and kind enums, nil):
wrapping them keeps ``status = error`` from ever equalling an integer attribute 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration literal such as ``200ms``, in nanoseconds."""

    ns: int


@dataclass(frozen=True, slots=True)
class Status:
    """A status literal (``error``, ``ok``, ``unset``) as its OTLP code (2, 1, 0)."""

    code: int


@dataclass(frozen=True, slots=True)
class Kind:
    """A span kind literal (``server``, ``client``...) as its OTLP number (0-5)."""

    code: int


@dataclass(frozen=True, slots=True)
class Nil:
    """``nil``: ``= nil`` tests that an attribute is absent, ``!= nil`` that it is present."""


Literal = str | int | float | bool | Duration | Status | Kind | Nil

STATUS_NAMES: dict[str, int] = {"unset": 0, "ok": 1, "error": 2}
KIND_NAMES: dict[str, int] = {"unspecified": 0, "internal": 1, "server": 2, "client": 3,
                              "producer": 4, "consumer": 5}


class Scope(Enum):
    """Where an attribute is looked up. ``ANY`` (``.name``) tries the span, then the
    resource, as Tempo does for unscoped attributes."""

    SPAN = "span"
    RESOURCE = "resource"
    ANY = ""


@dataclass(frozen=True, slots=True)
class Attribute:
    scope: Scope
    name: str  # the key as stored, dots included: "http.response.status_code"


class Intrinsic(Enum):
    """Fields every span has. The ``root*`` and ``traceDuration`` ones are the trace's and
    read the same on every span of it."""

    NAME = "name"
    STATUS = "status"
    STATUS_MESSAGE = "statusMessage"
    KIND = "kind"
    DURATION = "duration"
    ROOT_NAME = "rootName"
    ROOT_SERVICE_NAME = "rootServiceName"
    TRACE_DURATION = "traceDuration"


Field = Attribute | Intrinsic


class CompareOp(Enum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    MATCH = "=~"  # the whole value matches the regex (anchored, as in Tempo)
    NOT_MATCH = "!~"


@dataclass(frozen=True, slots=True)
class Comparison:
    field: Field
    op: CompareOp
    value: Literal


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


Condition = Comparison | Not | And | Or


@dataclass(frozen=True, slots=True)
class Spanset:
    """``{ condition }``: the spans of a trace that satisfy it. ``{}`` has no condition and
    selects every span."""

    condition: Condition | None


@dataclass(frozen=True, slots=True)
class SpansetAnd:
    """A trace matches when both sides select at least one span (maybe the same one)."""

    left: SpansetExpr
    right: SpansetExpr


@dataclass(frozen=True, slots=True)
class SpansetOr:
    left: SpansetExpr
    right: SpansetExpr


SpansetExpr = Spanset | SpansetAnd | SpansetOr


@dataclass(frozen=True, slots=True)
class TextSearch:
    """Plain words, case-folded (``fold``): a trace matches when each word is part of some
    span's name or service name. No words matches every trace."""

    words: tuple[str, ...]


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Text search ignores ASCII case only: exactly what SQLite's ``lower()`` does, so the
    search runs in SQL without a Python call per span."""
    return text.translate(_ASCII_LOWER)


Query = SpansetExpr | TextSearch
