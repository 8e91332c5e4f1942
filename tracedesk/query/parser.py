"""A recursive-descent parser for the TraceQL subset (see ``tracedesk.query``).

Grammar, loosest first (``&&`` binds tighter than ``||`` at both levels, as in Tempo)::

    query      := words | spansets
    spansets   := sand ( "||" sand )*
    sand       := sprimary ( "&&" sprimary )*
    sprimary   := "{" [ condition ] "}" | "(" spansets ")"
    condition  := cand ( "||" cand )*
    cand       := unary ( "&&" unary )*
    unary      := "!" unary | "(" condition ")" | field OP value
"""

from __future__ import annotations

import difflib
import re

from tracedesk.query.ast import (
    KIND_NAMES,
    STATUS_NAMES,
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
    Spanset,
    SpansetAnd,
    SpansetExpr,
    SpansetOr,
    Status,
    TextSearch,
    fold,
)
from tracedesk.query.errors import QueryError
from tracedesk.query.lexer import T, Token, tokenize

INTRINSICS: dict[str, Intrinsic] = {i.value: i for i in Intrinsic} | {
    # Tempo's newer scoped spellings.
    "span:name": Intrinsic.NAME, "span:status": Intrinsic.STATUS,
    "span:statusMessage": Intrinsic.STATUS_MESSAGE, "span:kind": Intrinsic.KIND,
    "span:duration": Intrinsic.DURATION, "trace:rootName": Intrinsic.ROOT_NAME,
    "trace:rootService": Intrinsic.ROOT_SERVICE_NAME, "trace:duration": Intrinsic.TRACE_DURATION,
}
KEYWORDS: dict[str, Literal] = ({"true": True, "false": False, "nil": Nil()}
                                | {n: Status(c) for n, c in STATUS_NAMES.items()}
                                | {n: Kind(c) for n, c in KIND_NAMES.items()})
STRING_FIELDS = frozenset({Intrinsic.NAME, Intrinsic.STATUS_MESSAGE, Intrinsic.ROOT_NAME,
                           Intrinsic.ROOT_SERVICE_NAME})
EQUALITY = frozenset({CompareOp.EQ, CompareOp.NE})
REGEX = frozenset({CompareOp.MATCH, CompareOp.NOT_MATCH})
EXPECTED_TYPE: dict[Intrinsic, tuple[type, str]] = {
    Intrinsic.DURATION: (Duration, "a duration such as 200ms"),
    Intrinsic.TRACE_DURATION: (Duration, "a duration such as 200ms"),
    Intrinsic.STATUS: (Status, "error, ok or unset"),
    Intrinsic.KIND: (Kind, "server, client, producer, consumer, internal or unspecified"),
} | {i: (str, "a string") for i in STRING_FIELDS}


def parse(text: str) -> Query:
    """The query ``text`` means, or a ``QueryError`` saying where it goes wrong.

    Text whose first character (after spaces and opening parentheses) is ``{`` is TraceQL;
    anything else is plain words to search for, so that typing a service name just works.
    """
    if not text.lstrip(" \t\r\n(").startswith("{"):
        return TextSearch(tuple(fold(word) for word in text.split()))
    return _Parser(text).query()


def _quote(token: Token) -> str:
    return "the end" if token.kind is T.EOF else f"'{token.text}'"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def previous(self) -> Token:
        return self.tokens[self.i - 1]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def close(self, kind: T, opener: Token, expected: str) -> None:
        """Consume the ``}`` or ``)`` that closes ``opener``."""
        token = self.peek()
        if token.kind is kind:
            self.advance()
        elif token.kind is T.EOF:
            raise QueryError(f"unclosed '{opener.text}'", opener.pos)
        else:
            raise QueryError(f"expected {expected} after {_quote(self.previous())}, "
                             f"not {_quote(token)}", token.pos)

    # Spanset level

    def query(self) -> SpansetExpr:
        expr = self.spansets()
        token = self.peek()
        if token.kind is T.EOF:
            return expr
        if token.kind in (T.RBRACE, T.RPAREN):
            raise QueryError(f"unbalanced '{token.text}'", token.pos)
        if token.kind in (T.OP, T.NOT):
            end, j = token.pos + len(token.text), self.i + 1
            while self.tokens[j].kind in (T.OP, T.NOT) and self.tokens[j].pos == end:
                end, j = end + len(self.tokens[j].text), j + 1
            raise QueryError(f"structural operators such as '{self.text[token.pos:end]}' are "
                             "not supported (join spansets with && or ||)", token.pos)
        raise QueryError(f"expected '&&' or '||' between spansets, not {_quote(token)}",
                         token.pos)

    def spansets(self) -> SpansetExpr:
        expr = self.spanset_and()
        while self.peek().kind is T.OR:
            self.advance()
            expr = SpansetOr(expr, self.spanset_and())
        return expr

    def spanset_and(self) -> SpansetExpr:
        expr = self.spanset_primary()
        while self.peek().kind is T.AND:
            self.advance()
            expr = SpansetAnd(expr, self.spanset_primary())
        return expr

    def spanset_primary(self) -> SpansetExpr:
        token = self.advance()
        if token.kind is T.LBRACE:
            condition = None if self.peek().kind is T.RBRACE else self.condition()
            self.close(T.RBRACE, token, "'&&', '||' or '}'")
            return Spanset(condition)
        if token.kind is T.LPAREN:
            expr = self.spansets()
            self.close(T.RPAREN, token, "'&&', '||' or ')'")
            return expr
        after = f" after {_quote(self.tokens[self.i - 2])}" if self.i > 1 else ""
        raise QueryError(f"expected '{{' or '('{after}", token.pos)

    # Condition level (inside braces)

    def condition(self) -> Condition:
        expr = self.condition_and()
        while self.peek().kind is T.OR:
            self.advance()
            expr = Or(expr, self.condition_and())
        return expr

    def condition_and(self) -> Condition:
        expr = self.unary()
        while self.peek().kind is T.AND:
            self.advance()
            expr = And(expr, self.unary())
        return expr

    def unary(self) -> Condition:
        token = self.peek()
        if token.kind is T.NOT:
            self.advance()
            return Not(self.unary())
        if token.kind is T.LPAREN:
            self.advance()
            expr = self.condition()
            self.close(T.RPAREN, token, "'&&', '||' or ')'")
            return expr
        return self.comparison()

    def comparison(self) -> Comparison:
        field_token = self.advance()
        field = self.field(field_token)
        op_token = self.advance()
        if op_token.kind is not T.OP:
            raise QueryError(f"expected an operator after '{field_token.text}'", op_token.pos)
        op = CompareOp(op_token.text)
        value_token = self.advance()
        value = self.value(value_token, op_token)
        _check(field, op, value, op_token, value_token)
        return Comparison(field, op, value)

    def field(self, token: Token) -> Field:
        if token.kind is T.ATTR:
            attribute: Attribute = token.value
            return attribute
        if token.kind is T.WORD and token.text in INTRINSICS:
            return INTRINSICS[token.text]
        if token.kind is T.WORD and token.text not in KEYWORDS:
            close = difflib.get_close_matches(token.text, INTRINSICS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise QueryError(f"unknown intrinsic '{token.text}'{hint}", token.pos)
        raise QueryError(f"expected an attribute or intrinsic after "
                         f"{_quote(self.tokens[self.i - 2])}, not {_quote(token)}", token.pos)

    def value(self, token: Token, op: Token) -> Literal:
        if token.kind in (T.STRING, T.INT, T.FLOAT, T.DURATION):
            literal: Literal = token.value
            return literal
        if token.kind is T.WORD and token.text in KEYWORDS:
            return KEYWORDS[token.text]
        hint = " (strings need quotes)" if token.kind is T.WORD else ""
        raise QueryError(f"expected a value after '{op.text}'{hint}", token.pos)


def _check(field: Field, op: CompareOp, value: Literal, op_token: Token,
           value_token: Token) -> None:
    """Reject what can never be true because of the types alone. Attributes have no type
    until a span is read, so for them only the operator and the literal are checked."""
    if isinstance(value, Nil):
        if op not in EQUALITY:
            raise QueryError(f"'{op.value}' does not apply to nil; use = or !=", op_token.pos)
        return
    if op in REGEX:
        if not isinstance(value, str):
            raise QueryError(f"'{op.value}' needs a string regex", value_token.pos)
        try:
            re.compile(value)
        except re.error as error:
            raise QueryError(f"invalid regex: {error.msg}", value_token.pos) from None
    if isinstance(value, bool | Status | Kind) and op not in EQUALITY:
        raise QueryError(f"'{op.value}' does not apply to {value_token.text}; use = or !=",
                         op_token.pos)
    if isinstance(field, Intrinsic):
        expected, description = EXPECTED_TYPE[field]
        if op in REGEX and expected is not str:
            raise QueryError(f"'{op.value}' does not apply to {field.value}", op_token.pos)
        if not isinstance(value, expected):
            raise QueryError(f"{field.value} compares with {description}", value_token.pos)
