"""Query trees back to text that ``parse`` reads as the same tree: for showing a query in
canonical form, and for property tests that generate trees (``parse(to_text(q)) == q``)."""

from __future__ import annotations

from tracedesk.query.ast import (
    KIND_NAMES,
    STATUS_NAMES,
    And,
    Attribute,
    Comparison,
    Condition,
    Duration,
    Kind,
    Literal,
    Nil,
    Not,
    Or,
    Query,
    Spanset,
    SpansetAnd,
    SpansetExpr,
    SpansetOr,
    Status,
    TextSearch,
)
from tracedesk.query.lexer import NAME_STOP, UNIT_NS

_STATUS = {code: name for name, code in STATUS_NAMES.items()}
_KIND = {code: name for name, code in KIND_NAMES.items()}
_UNITS = ("h", "m", "s", "ms", "us", "ns")  # the largest unit that states it exactly


def quote(text: str) -> str:
    """A double-quoted string literal for ``text``."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\t", "\\t").replace("\r", "\\r"))
    return f'"{escaped}"'


def _attribute(attribute: Attribute) -> str:
    plain = attribute.name and not any(ch in NAME_STOP or not ch.isprintable()
                                       for ch in attribute.name)
    name = attribute.name if plain and attribute.name[0] != '"' else quote(attribute.name)
    return f"{attribute.scope.value}.{name}"


def _literal(value: Literal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Duration):
        unit = next((u for u in _UNITS if value.ns % UNIT_NS[u] == 0), "ns") if value.ns else "s"
        return f"{value.ns // UNIT_NS[unit]}{unit}"
    if isinstance(value, Status):
        return _STATUS[value.code]
    if isinstance(value, Kind):
        return _KIND[value.code]
    if isinstance(value, Nil):
        return "nil"
    return repr(value)  # int, float: repr round-trips ("1e+20" included)


def _condition(condition: Condition) -> str:
    if isinstance(condition, Comparison):
        field = (_attribute(condition.field) if isinstance(condition.field, Attribute)
                 else condition.field.value)
        return f"{field} {condition.op.value} {_literal(condition.value)}"
    if isinstance(condition, Not):
        return f"!({_condition(condition.operand)})"
    joiner = " && " if isinstance(condition, And) else " || "
    assert isinstance(condition, And | Or)
    return f"({_condition(condition.left)}{joiner}{_condition(condition.right)})"


def _spansets(expr: SpansetExpr) -> str:
    if isinstance(expr, Spanset):
        return "{}" if expr.condition is None else f"{{ {_condition(expr.condition)} }}"
    joiner = " && " if isinstance(expr, SpansetAnd) else " || "
    assert isinstance(expr, SpansetAnd | SpansetOr)
    return f"({_spansets(expr.left)}{joiner}{_spansets(expr.right)})"


def to_text(query: Query) -> str:
    """Canonical text for ``query``, fully parenthesised."""
    if isinstance(query, TextSearch):
        return " ".join(query.words)
    return _spansets(query)

