"""The reference evaluator: what a query means, in plain Python over one trace's spans.

It is the oracle that the SQL compiler is tested against, so it favours the obvious over
the fast. The rules (Tempo's, see the package docstring):

* A comparison is true or false, never unknown. It is false when the field is missing
  (``!=`` included) and when the types do not meet: strings compare with strings, numbers
  (int and float alike, never booleans) with numbers, booleans, durations, statuses and
  kinds only with their own kind. Lists and maps compare with nothing.
* ``= nil`` is true when the attribute is missing, ``!= nil`` when it is present.
* ``=~`` / ``!~`` match the whole string (Python ``re.fullmatch``); non-strings are false
  for both.
* ``!`` is plain negation: ``!(.a = 1)`` holds on a span without ``a``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from tracedesk.query.ast import (
    And,
    Attribute,
    CompareOp,
    Comparison,
    Condition,
    Duration,
    Field,
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
    fold,
)
from tracedesk.query.spans import QuerySpan, TraceFacts, trace_facts

MISSING: Any = object()  # what a field reads when the span has no such attribute

ORDERED: dict[CompareOp, Callable[[Any, Any], bool]] = {
    CompareOp.EQ: operator.eq, CompareOp.NE: operator.ne, CompareOp.GT: operator.gt,
    CompareOp.GE: operator.ge, CompareOp.LT: operator.lt, CompareOp.LE: operator.le,
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regex_full_match(pattern: str, value: str) -> bool:
    """``value =~ pattern``: the whole value matches. A SQL backend can register this as
    its REGEXP function so that both sides agree on regex syntax."""
    return _regex(pattern).fullmatch(value) is not None


def attribute_value(attribute: Attribute, span: QuerySpan) -> Any:
    """The attribute's value on ``span``, or ``MISSING``. JSON null counts as missing.

    ``resource.service.name`` is the span's ``service_name`` (the stored column, which the
    receiver fills from that resource attribute). Unscoped names try the span first."""
    def resource() -> Any:
        if attribute.name == "service.name":
            return span.service_name
        return span.resource_attributes.get(attribute.name, MISSING)

    if attribute.scope is Scope.SPAN:
        value = span.attributes.get(attribute.name, MISSING)
    elif attribute.scope is Scope.RESOURCE:
        value = resource()
    else:
        value = span.attributes.get(attribute.name, MISSING)
        if value is MISSING or value is None:
            value = resource()
    return MISSING if value is None else value


def field_value(field: Field, span: QuerySpan, trace: TraceFacts) -> Any:
    """What ``field`` reads on ``span``: a JSON value for attributes, or the intrinsic as
    ``str``, ``Duration``, ``Status`` or ``Kind``."""
    if isinstance(field, Attribute):
        return attribute_value(field, span)
    return {
        Intrinsic.NAME: lambda: span.name,
        Intrinsic.STATUS: lambda: Status(span.status_code),
        Intrinsic.STATUS_MESSAGE: lambda: span.status_message,
        Intrinsic.KIND: lambda: Kind(span.kind),
        Intrinsic.DURATION: lambda: Duration(span.duration_ns),
        Intrinsic.ROOT_NAME: lambda: trace.root_name,
        Intrinsic.ROOT_SERVICE_NAME: lambda: trace.root_service_name,
        Intrinsic.TRACE_DURATION: lambda: Duration(trace.duration_ns),
    }[field]()


def _typed(value: Any) -> tuple[str, Any] | None:
    """The comparison family of a value and the plain value compared within it."""
    if isinstance(value, bool):  # before int: bool is an int subclass in Python
        return "bool", value
    if isinstance(value, int | float):
        return "number", value
    if isinstance(value, str):
        return "string", value
    if isinstance(value, Duration):
        return "duration", value.ns
    if isinstance(value, Status):
        return "status", value.code
    if isinstance(value, Kind):
        return "kind", value.code
    return None


def compare(actual: Any, op: CompareOp, literal: Literal) -> bool:
    """``actual op literal`` under the rules in the module docstring."""
    if isinstance(literal, Nil):
        return (actual is MISSING) if op is CompareOp.EQ else (
            op is CompareOp.NE and actual is not MISSING)
    if actual is MISSING:
        return False
    if op in (CompareOp.MATCH, CompareOp.NOT_MATCH):
        if not (isinstance(actual, str) and isinstance(literal, str)):
            return False
        return regex_full_match(literal, actual) == (op is CompareOp.MATCH)
    left, right = _typed(actual), _typed(literal)
    if left is None or right is None or left[0] != right[0]:
        return False
    if left[0] in ("bool", "status", "kind") and op not in (CompareOp.EQ, CompareOp.NE):
        return False
    return ORDERED[op](left[1], right[1])


def satisfies(condition: Condition | None, span: QuerySpan, trace: TraceFacts) -> bool:
    """Whether ``span`` satisfies a spanset's condition (``None``, from ``{}``, always)."""
    if condition is None:
        return True
    if isinstance(condition, Comparison):
        return compare(field_value(condition.field, span, trace), condition.op,
                       condition.value)
    if isinstance(condition, Not):
        return not satisfies(condition.operand, span, trace)
    if isinstance(condition, And):
        return satisfies(condition.left, span, trace) and satisfies(condition.right, span,
                                                                    trace)
    if isinstance(condition, Or):
        return satisfies(condition.left, span, trace) or satisfies(condition.right, span,
                                                                   trace)
    raise TypeError(f"not a condition: {condition!r}")


def spanset_spans(expr: SpansetExpr, spans: Sequence[QuerySpan], trace: TraceFacts
                  ) -> set[str]:
    """The ids of the spans that ``expr`` selects; empty when the trace does not match.

    ``A && B`` selects A's spans and B's when both select some; ``A || B`` whatever
    either selects."""
    if isinstance(expr, Spanset):
        return {s.span_id for s in spans if satisfies(expr.condition, s, trace)}
    left = spanset_spans(expr.left, spans, trace)
    right = spanset_spans(expr.right, spans, trace)
    if isinstance(expr, SpansetAnd):
        return left | right if left and right else set()
    if isinstance(expr, SpansetOr):
        return left | right
    raise TypeError(f"not a spanset expression: {expr!r}")


def _text_spans(search: TextSearch, spans: Sequence[QuerySpan]) -> set[str]:
    """Per trace: every word is in some span's name or service (case-insensitive); the
    spans selected are those that contain at least one word (all of them for no words)."""
    texts = {s.span_id: (fold(s.name), fold(s.service_name)) for s in spans}
    for word in search.words:
        if not any(word in name or word in service for name, service in texts.values()):
            return set()
    if not search.words:
        return set(texts)
    return {span_id for span_id, (name, service) in texts.items()
            if any(word in name or word in service for word in search.words)}


def matching_spans(query: Query, spans: Sequence[QuerySpan]) -> set[str]:
    """The ids of the trace's spans that made it match ``query``: the union of what the
    spansets that held selected. Empty when the trace does not match."""
    if isinstance(query, TextSearch):
        return _text_spans(query, spans)
    return spanset_spans(query, spans, trace_facts(spans))


def trace_matches(query: Query, spans: Sequence[QuerySpan]) -> bool:
    """Whether the trace made of ``spans`` matches ``query`` (a trace with no spans never
    does)."""
    return bool(matching_spans(query, spans))
