"""Queries compiled to SQL: one boolean expression over a ``traces`` row.

A spanset becomes a correlated ``EXISTS`` over the trace's spans (served by the spans'
``(trace_ref, span_id)`` index), so listing the newest matching traces walks the
traces index newest first and stops once a page is full. ``&&`` and ``||`` between
spansets are SQL's ``AND`` and ``OR``.

Every value the user typed is a bound parameter, never part of the statement, whatever
it holds. The semantics are the reference evaluator's (``evaluate``), which the tests
check this against: a comparison is true or false, never NULL, so ``NOT`` agrees too.

Attribute values are read with ``json_type`` (to keep TraceQL's types apart: JSON
``true`` is not the number 1) and ``json_extract``, from the span's JSON or, for a span
whose conversion is still deferred, from its bytes (``span_attributes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracedesk.query.ast import (
    And,
    Attribute,
    CompareOp,
    Comparison,
    Condition,
    Duration,
    Intrinsic,
    Kind,
    Literal,
    Nil,
    Not,
    Or,
    Query,
    Scope,
    Spanset,
    SpansetAnd,
    SpansetExpr,
    SpansetOr,
    Status,
    TextSearch,
)

SPAN_ATTRIBUTES = "coalesce(s.attributes, span_attributes(s.raw))"
RESOURCE_ATTRIBUTES = "(SELECT attributes FROM resources WHERE resource_id = s.resource_id)"
MISSING = "'missing'"  # the type of an absent attribute (json_type gives NULL)
NUMBER_TYPES = "('integer', 'real')"
FALSE, TRUE = "0", "1"

# Intrinsic columns with the literal type they compare with. Root fields are the trace's.
_TEXT_COLUMNS = {
    Intrinsic.NAME: "s.name",
    Intrinsic.STATUS_MESSAGE: "s.status_message",
    Intrinsic.ROOT_NAME: "traces.root_span_name",
    Intrinsic.ROOT_SERVICE_NAME: "traces.root_service_name",
}
_CODE_COLUMNS: dict[Intrinsic, tuple[str, type]] = {
    Intrinsic.STATUS: ("s.status_code", Status),
    Intrinsic.KIND: ("s.kind", Kind),
    Intrinsic.DURATION: ("s.duration_ns", Duration),
    Intrinsic.TRACE_DURATION: ("traces.duration_ns", Duration),
}
_ORDERED = {CompareOp.EQ, CompareOp.NE, CompareOp.GT, CompareOp.GE, CompareOp.LT,
            CompareOp.LE}


@dataclass
class _Builder:
    params: list[Any] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        """A numbered placeholder: an expression may appear twice in the statement."""
        self.params.append(value)
        return f"?{len(self.params)}"


@dataclass(frozen=True)
class CompiledQuery:
    """``condition`` holds for a ``traces`` row (the table named ``traces``) that matches."""

    condition: str
    params: tuple[Any, ...]


@dataclass(frozen=True)
class TraceQuery:
    """A query and an optional time range (trace start, Unix ns), as a filter for the
    store's trace list: ``Reader.trace_page(..., where=TraceQuery(...))``."""

    query: Query | None  # None: every trace (of the time range)
    since_ns: int | None = None
    until_ns: int | None = None

    def sql(self) -> tuple[str, tuple]:
        builder = _Builder()
        parts = []
        if self.since_ns is not None:
            parts.append(f"traces.start_time_unix_nano >= {builder.bind(self.since_ns)}")
        if self.until_ns is not None:
            parts.append(f"traces.start_time_unix_nano < {builder.bind(self.until_ns)}")
        if self.query is not None:
            parts.append(_query(self.query, builder))
        if not parts:
            return "", ()
        return " WHERE " + " AND ".join(parts), tuple(builder.params)


def compile_query(query: Query) -> CompiledQuery:
    builder = _Builder()
    return CompiledQuery(_query(query, builder), tuple(builder.params))


def _query(query: Query, builder: _Builder) -> str:
    if isinstance(query, TextSearch):
        return _text_search(query, builder)
    return _spanset_expr(query, builder)


def _spans_exist(condition: str) -> str:
    return (f"EXISTS (SELECT 1 FROM spans AS s WHERE s.trace_ref = traces.trace_ref "
            f"AND {condition})")


def _text_search(search: TextSearch, b: _Builder) -> str:
    if not search.words:
        return _spans_exist(TRUE)
    # instr() finds '%' and '_' literally, unlike LIKE; lower() folds ASCII, as fold() does.
    parts = []
    for word in search.words:
        w = b.bind(word)
        parts.append(_spans_exist(f"(instr(lower(s.name), {w}) OR "
                                  f"instr(lower(s.service_name), {w}))"))
    return "(" + " AND ".join(parts) + ")"


def _spanset_expr(expr: SpansetExpr, b: _Builder) -> str:
    if isinstance(expr, Spanset):
        if expr.condition is None:
            return _spans_exist(TRUE)
        condition = _condition(expr.condition, b)
        if not _reads_attributes(expr.condition) or "traces." in condition:
            return _spans_exist(condition)
        # Attribute tests read every span's JSON and are often selective (an order id):
        # one pass over the spans, then the traces that appear, beats probing the spans of
        # trace after trace, newest first, until a page is full. Better still, a required
        # string equality asks the attribute index for its candidates, and only the spans
        # not indexed yet are read.
        words = _index_words(expr.condition)
        if words is None:
            return f"traces.trace_id IN (SELECT s.trace_id FROM spans AS s WHERE {condition})"
        phrase = b.bind('"' + words.replace('"', '""') + '"')
        return (f"traces.trace_id IN (SELECT s.trace_id FROM spans AS s WHERE s.rowid IN "
                f"(SELECT rowid FROM span_words WHERE span_words MATCH {phrase}) "
                f"AND {condition} UNION ALL SELECT s.trace_id FROM spans AS s WHERE "
                f"s.rowid > (SELECT indexed_to FROM span_words_progress) AND {condition})")
    joiner = " AND " if isinstance(expr, SpansetAnd) else " OR "
    if not isinstance(expr, SpansetAnd | SpansetOr):
        raise TypeError(f"not a spanset expression: {expr!r}")
    return "(" + _spanset_expr(expr.left, b) + joiner + _spanset_expr(expr.right, b) + ")"


def _index_words(condition: Condition) -> str | None:
    """Text for the attribute index from a span string equality the condition requires
    (a conjunct), or None. The value's JSON text is what the index tokenized, so it gives
    the same words; it needs one (an ASCII letter or digit surely is one)."""
    if isinstance(condition, And):
        return _index_words(condition.left) or _index_words(condition.right)
    if (isinstance(condition, Comparison) and isinstance(condition.field, Attribute)
            and condition.field.scope is Scope.SPAN and condition.op is CompareOp.EQ
            and isinstance(condition.value, str)):
        text = orjson.dumps(condition.value).decode()
        if any(c.isascii() and c.isalnum() for c in text):
            return text
    return None


def _reads_attributes(condition: Condition) -> bool:
    if isinstance(condition, Comparison):
        field = condition.field  # resource.service.name is the span's own column
        return isinstance(field, Attribute) and not (
            field.scope is Scope.RESOURCE and field.name == "service.name")
    if isinstance(condition, Not):
        return _reads_attributes(condition.operand)
    return _reads_attributes(condition.left) or _reads_attributes(condition.right)


def _condition(condition: Condition, b: _Builder) -> str:
    if isinstance(condition, Comparison):
        return _comparison(condition, b)
    if isinstance(condition, Not):
        return f"(NOT {_condition(condition.operand, b)})"
    if isinstance(condition, And):
        return f"({_condition(condition.left, b)} AND {_condition(condition.right, b)})"
    if isinstance(condition, Or):
        return f"({_condition(condition.left, b)} OR {_condition(condition.right, b)})"
    raise TypeError(f"not a condition: {condition!r}")


def _comparison(c: Comparison, b: _Builder) -> str:
    field = c.field
    if isinstance(field, Attribute):
        compared = _typed_comparison(lambda: _attribute(field, b), c.op, c.value, b)
        if (field.scope is Scope.SPAN and c.op is CompareOp.EQ and isinstance(c.value, str)
                and compared != FALSE):
            # The stored JSON holds the value exactly as orjson writes it: finding that
            # text first is a plain substring search, far cheaper than parsing the JSON.
            needle = b.bind(orjson.dumps(c.value).decode())
            return f"((s.attributes IS NULL OR instr(s.attributes, {needle})) AND {compared})"
        return compared
    if field in _TEXT_COLUMNS:
        return _typed_comparison(lambda: ("'text'", _TEXT_COLUMNS[field]), c.op, c.value, b)
    column, literal_type = _CODE_COLUMNS[c.field]
    if isinstance(c.value, Nil):  # an intrinsic is never nil
        return TRUE if c.op is CompareOp.NE else FALSE
    if not isinstance(c.value, literal_type) or c.op not in _ORDERED:
        return FALSE
    if literal_type is not Duration and c.op not in (CompareOp.EQ, CompareOp.NE):
        return FALSE  # statuses and kinds have no order
    number = c.value.ns if isinstance(c.value, Duration) else c.value.code  # type: ignore[union-attr]
    return f"({column} {c.op.value} {b.bind(number)})"


def _lookup(attributes: str, name: str, b: _Builder) -> tuple[str, str]:
    """Type and value of key ``name`` in the JSON object ``attributes``."""
    if '"' in name or "\\" in name or any(c < " " for c in name):
        # A JSON path cannot spell such a key as stored: compare it with every key instead.
        k = b.bind(name)
        return (f"coalesce((SELECT type FROM json_each({attributes}) WHERE key = {k}), "
                f"{MISSING})",
                f"(SELECT value FROM json_each({attributes}) WHERE key = {k})")
    p = b.bind(f'$."{name}"')
    return f"coalesce(json_type({attributes}, {p}), {MISSING})", f"json_extract({attributes}, {p})"


def _attribute(attribute: Attribute, b: _Builder) -> tuple[str, str]:
    """SQL for the attribute's JSON type (``'missing'`` when absent) and its value."""

    def span() -> tuple[str, str]:
        return _lookup(SPAN_ATTRIBUTES, attribute.name, b)

    def resource() -> tuple[str, str]:
        if attribute.name == "service.name":  # the column the receiver fills from it
            return "'text'", "s.service_name"
        return _lookup(RESOURCE_ATTRIBUTES, attribute.name, b)

    if attribute.scope is Scope.SPAN:
        return span()
    if attribute.scope is Scope.RESOURCE:
        return resource()
    # Unscoped: the span's value unless it has none (absent or JSON null).
    span_type, span_value = span()
    resource_type, resource_value = resource()
    has_own = f"{span_type} NOT IN ({MISSING}, 'null')"
    return (f"(CASE WHEN {has_own} THEN {span_type} ELSE {resource_type} END)",
            f"(CASE WHEN {has_own} THEN {span_value} ELSE {resource_value} END)")


def _typed_comparison(lookup: Callable[[], tuple[str, str]], op: CompareOp, literal: Literal,
                      b: _Builder) -> str:
    """``value op literal``, where ``lookup`` gives SQL for the value's JSON type and the
    value (called only when the answer depends on them: it binds parameters)."""
    if isinstance(literal, Duration | Status | Kind):
        return FALSE  # these compare only with intrinsics
    if isinstance(literal, bool | int | float) and op in (CompareOp.MATCH,
                                                          CompareOp.NOT_MATCH):
        return FALSE
    if isinstance(literal, bool) and op not in (CompareOp.EQ, CompareOp.NE):
        return FALSE
    if isinstance(literal, Nil) and op not in (CompareOp.EQ, CompareOp.NE):
        return FALSE
    kind, value = lookup()
    if isinstance(literal, Nil):
        absent = f"{kind} IN ({MISSING}, 'null')"
        return f"({absent})" if op is CompareOp.EQ else f"(NOT {absent})"
    if op in (CompareOp.MATCH, CompareOp.NOT_MATCH):
        negate = "NOT " if op is CompareOp.NOT_MATCH else ""
        return f"({kind} = 'text' AND {negate}regexp_full({b.bind(literal)}, {value}))"
    if isinstance(literal, bool):
        wanted = "true" if literal == (op is CompareOp.EQ) else "false"
        return f"({kind} = '{wanted}')"
    if isinstance(literal, str):
        typed = "" if kind == "'text'" else f"{kind} = 'text' AND "
        return f"({typed}{value} {op.value} {b.bind(literal)})"
    return f"({kind} IN {NUMBER_TYPES} AND {value} {op.value} {b.bind(literal)})"
