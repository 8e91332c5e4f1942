"""Splits query text into tokens, each with its offset, so errors can point at the text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto
from fractions import Fraction
from typing import Any

from tracedesk.query.ast import Attribute, Duration, Scope
from tracedesk.query.errors import QueryError


class T(Enum):
    LBRACE = auto()
    RBRACE = auto()
    LPAREN = auto()
    RPAREN = auto()
    AND = auto()
    OR = auto()
    NOT = auto()
    OP = auto()  # a comparison operator; the text says which
    STRING = auto()
    INT = auto()
    FLOAT = auto()
    DURATION = auto()
    WORD = auto()  # an intrinsic, a keyword (true, nil, error, server...) or a scoped intrinsic
    ATTR = auto()
    EOF = auto()


@dataclass(frozen=True, slots=True)
class Token:
    kind: T
    text: str  # the source text, for messages ("after '='")
    pos: int
    value: Any = None


PUNCTUATION = {"{": T.LBRACE, "}": T.RBRACE, "(": T.LPAREN, ")": T.RPAREN,
               "&&": T.AND, "||": T.OR}
# Longest first, so that "!=" is not read as "!" then "=".
OPERATORS = ("=~", "!=", "!~", ">=", "<=", "=", ">", "<")
# What ends an unquoted attribute name: whitespace and the language's own punctuation.
NAME_STOP = frozenset(" \t\r\n{}()=!<>~&|\"`,")
ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
           "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", re.ASCII)
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
DURATION_RUN = re.compile(r"[\w.µμ]+")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DIGITS = frozenset("0123456789")
SCOPES = {"span": Scope.SPAN, "resource": Scope.RESOURCE}


def read_string(text: str, start: int) -> tuple[str, int]:
    """The string literal opening at ``start`` and the offset after it. Double quotes take
    backslash escapes; backticks are raw, which suits regexes."""
    quote = text[start]
    i = start + 1
    if quote == "`":
        end = text.find("`", i)
        if end < 0:
            raise QueryError("unterminated string", start)
        return text[i:end], end + 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt in ESCAPES:
            out.append(ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
            out.append(chr(int(text[i + 2:i + 6], 16)))
            i += 6
        elif not nxt:
            break
        else:
            raise QueryError(f"unknown escape '\\{nxt}' (write '\\\\{nxt}', or quote the "
                             "string with backticks)", i)
    raise QueryError("unterminated string", start)


def _number(text: str, start: int) -> Token:
    match = NUMBER.match(text, start)
    assert match is not None
    end = match.end()
    if end < len(text) and (text[end].isalpha() or text[end] in "µμ"):
        sign = 1 if text[start] != "-" else -1
        digits = start + (sign < 0)
        run = DURATION_RUN.match(text, digits)
        assert run is not None
        source = run.group()
        parts = DURATION_PART.findall(source)
        if "".join(n + u for n, u in parts) != source:
            raise QueryError(f"unknown duration '{text[start:run.end()]}' (units: ns, us, ms, "
                             "s, m, h)", start)
        ns = sum(Fraction(n) * UNIT_NS[u] for n, u in parts)
        return Token(T.DURATION, text[start:run.end()], start, Duration(sign * int(ns)))
    source = match.group()
    if match.group(1) or match.group(2):
        return Token(T.FLOAT, source, start, float(source))
    return Token(T.INT, source, start, int(source))


def _attribute(text: str, start: int, dot: int, scope: Scope) -> Token:
    """An attribute whose name starts after the '.' at ``dot``."""
    i = dot + 1
    if i < len(text) and text[i] == '"':
        name, end = read_string(text, i)
        if not name:
            raise QueryError("empty attribute name", i)
    else:
        end = i
        while end < len(text) and text[end] not in NAME_STOP:
            end += 1
        name = text[i:end]
        if not name:
            raise QueryError(f"expected an attribute name after '{text[start:i]}'", i)
    return Token(T.ATTR, text[start:end], start, Attribute(scope, name))


def _word(text: str, start: int) -> Token:
    word = WORD.match(text, start)
    assert word is not None
    end = word.end()
    nxt = text[end] if end < len(text) else ""
    if nxt == "." and word.group() in SCOPES:
        return _attribute(text, start, end, SCOPES[word.group()])
    if nxt == ".":
        raise QueryError(f"unknown scope '{word.group()}' (use span., resource. or .)", start)
    if nxt == ":" and (rest := WORD.match(text, end + 1)):
        end = rest.end()
    return Token(T.WORD, text[start:end], start)


def tokenize(text: str) -> list[Token]:
    """Every token of ``text``, ending with an EOF token at ``len(text)``."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        two = text[i:i + 2]
        if ch.isspace():
            i += 1
            continue
        if two in PUNCTUATION or ch in PUNCTUATION:
            source = two if two in PUNCTUATION else ch
            tokens.append(Token(PUNCTUATION[source], source, i))
        elif ch == "|":
            raise QueryError("pipelines ('|') are not supported", i)
        elif ch == "&":
            raise QueryError("expected '&&'", i)
        elif op := next((o for o in OPERATORS if text.startswith(o, i)), None):
            tokens.append(Token(T.OP, op, i))
        elif ch == "!":
            tokens.append(Token(T.NOT, ch, i))
        elif ch in "\"`":
            value, end = read_string(text, i)
            tokens.append(Token(T.STRING, text[i:end], i, value))
        elif ch == ".":
            tokens.append(_attribute(text, i, i, Scope.ANY))
        elif ch in DIGITS or (ch == "-" and text[i + 1:i + 2] in DIGITS):
            tokens.append(_number(text, i))
        elif WORD.match(text, i):
            tokens.append(_word(text, i))
        else:
            hint = " (strings use double quotes or backticks)" if ch == "'" else ""
            raise QueryError(f"unexpected character '{ch}'{hint}", i)
        i = tokens[-1].pos + len(tokens[-1].text)
    tokens.append(Token(T.EOF, "", len(text)))
    return tokens
