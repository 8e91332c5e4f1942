"""The query parser: every construct of the TraceQL subset, plain words, and the errors
(message and position) for malformed input."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracedesk.query import QueryError, parse
from tracedesk.query.ast import (
    And,
    Attribute,
    CompareOp,
    Comparison,
    Condition,
    Duration,
    Intrinsic,
    Kind,
    Nil,
    Not,
    Or,
    Query,
    Scope,
    Spanset,
    SpansetAnd,
    SpansetOr,
    Status,
    TextSearch,
)
from tracedesk.query.format import to_text

NAME = Intrinsic.NAME


def cond(text: str) -> Condition:
    """The condition of a query that is one spanset."""
    query = parse(text)
    assert isinstance(query, Spanset) and query.condition is not None
    return query.condition


def value(text: str) -> object:
    """The literal of ``{ .x = <text> }``."""
    comparison = cond(f"{{ .x = {text} }}")
    assert isinstance(comparison, Comparison)
    return comparison.value


def test_example_from_the_issue() -> None:
    query = parse('{ resource.service.name = "checkout" && span.http.response.status_code >= 500 }')
    assert query == Spanset(And(
        Comparison(Attribute(Scope.RESOURCE, "service.name"), CompareOp.EQ, "checkout"),
        Comparison(Attribute(Scope.SPAN, "http.response.status_code"), CompareOp.GE, 500)))


@pytest.mark.parametrize("op", list(CompareOp))
def test_every_operator(op: CompareOp) -> None:
    assert cond(f'{{ name {op.value} "a" }}') == Comparison(NAME, op, "a")
    # Without spaces too: the operator ends the attribute name.
    assert cond(f'{{.a{op.value}"a"}}') == Comparison(Attribute(Scope.ANY, "a"), op, "a")


@pytest.mark.parametrize(("text", "expected"), [
    ('"plain"', "plain"),
    ('""', ""),
    ('"say \\"hi\\""', 'say "hi"'),
    ('"back\\\\slash"', "back\\slash"),
    ('"a\\nb\\tc\\rd"', "a\nb\tc\rd"),
    ('"\\u00e9t\\u00E9"', "été"),
    ("`raw \\d+ \"quoted\"`", 'raw \\d+ "quoted"'),
    ("``", ""),
    ('"ünïcode ✓"', "ünïcode ✓"),
    ("42", 42),
    ("0", 0),
    ("-7", -7),
    ("12345678901234567890", 12345678901234567890),
    ("1.5", 1.5),
    ("-0.25", -0.25),
    ("1e3", 1000.0),
    ("2.5E-2", 0.025),
    ("true", True),
    ("false", False),
    ("nil", Nil()),
    ("error", Status(2)), ("ok", Status(1)), ("unset", Status(0)),
    ("unspecified", Kind(0)), ("internal", Kind(1)), ("server", Kind(2)),
    ("client", Kind(3)), ("producer", Kind(4)), ("consumer", Kind(5)),
])
def test_literals(text: str, expected: object) -> None:
    got = value(text)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("text", "ns"), [
    ("5ns", 5), ("3us", 3_000), ("3µs", 3_000), ("3μs", 3_000), ("200ms", 200_000_000),
    ("1.5s", 1_500_000_000), ("2m", 120_000_000_000), ("1h", 3_600_000_000_000),
    ("1h30m", 5_400_000_000_000), ("1m0.5s", 60_500_000_000), ("0.1s", 100_000_000),
    ("-5ms", -5_000_000), ("0s", 0),
])
def test_durations(text: str, ns: int) -> None:
    assert cond(f"{{ duration > {text} }}") == Comparison(Intrinsic.DURATION, CompareOp.GT,
                                                          Duration(ns))


@pytest.mark.parametrize("hostile", [
    "'; DROP TABLE spans; --", "100%", "a_b", "%_%", "\\", '"', "\\\\%\\_", "' OR 1=1 --",
    "{ name = \"x\" }", "&& ||", "\x00\x1b[31m", "`",
])
def test_hostile_strings_are_plain_literals(hostile: str) -> None:
    escaped = hostile.replace("\\", "\\\\").replace('"', '\\"')
    assert cond(f'{{ name = "{escaped}" }}') == Comparison(NAME, CompareOp.EQ, hostile)
    if "`" not in hostile:
        assert value(f"`{hostile}`") == hostile


@pytest.mark.parametrize(("text", "attribute"), [
    ("span.http.route", Attribute(Scope.SPAN, "http.route")),
    ("resource.k8s.pod.name", Attribute(Scope.RESOURCE, "k8s.pod.name")),
    (".foo", Attribute(Scope.ANY, "foo")),
    (".http.status_code", Attribute(Scope.ANY, "http.status_code")),
    ('span."my attr"', Attribute(Scope.SPAN, "my attr")),
    ('resource."a.b c"', Attribute(Scope.RESOURCE, "a.b c")),
    ('."x y"', Attribute(Scope.ANY, "x y")),
    ('."quo\\"te"', Attribute(Scope.ANY, 'quo"te')),
    (".span.name", Attribute(Scope.ANY, "span.name")),  # a key, not a scope
    (".a-b/c:d", Attribute(Scope.ANY, "a-b/c:d")),
    ("span.name", Attribute(Scope.SPAN, "name")),  # an attribute called name, not the intrinsic
])
def test_attribute_scopes_and_names(text: str, attribute: Attribute) -> None:
    assert cond(f"{{ {text} = 1 }}") == Comparison(attribute, CompareOp.EQ, 1)


@pytest.mark.parametrize(("text", "intrinsic", "literal"), [
    ('name = "GET /"', Intrinsic.NAME, "GET /"),
    ("status = error", Intrinsic.STATUS, Status(2)),
    ('statusMessage =~ "time.*"', Intrinsic.STATUS_MESSAGE, "time.*"),
    ("kind = client", Intrinsic.KIND, Kind(3)),
    ("duration >= 10ms", Intrinsic.DURATION, Duration(10_000_000)),
    ('rootName = "GET /cart"', Intrinsic.ROOT_NAME, "GET /cart"),
    ('rootServiceName != "web"', Intrinsic.ROOT_SERVICE_NAME, "web"),
    ("traceDuration < 2s", Intrinsic.TRACE_DURATION, Duration(2_000_000_000)),
    ('span:name = "x"', Intrinsic.NAME, "x"),
    ("span:status = ok", Intrinsic.STATUS, Status(1)),
    ("span:kind = server", Intrinsic.KIND, Kind(2)),
    ("span:duration > 1s", Intrinsic.DURATION, Duration(1_000_000_000)),
    ('span:statusMessage = ""', Intrinsic.STATUS_MESSAGE, ""),
    ('trace:rootName = "r"', Intrinsic.ROOT_NAME, "r"),
    ('trace:rootService = "s"', Intrinsic.ROOT_SERVICE_NAME, "s"),
    ("trace:duration > 1m", Intrinsic.TRACE_DURATION, Duration(60_000_000_000)),
])
def test_intrinsics(text: str, intrinsic: Intrinsic, literal: object) -> None:
    comparison = cond(f"{{ {text} }}")
    assert isinstance(comparison, Comparison)
    assert (comparison.field, comparison.value) == (intrinsic, literal)


def test_and_binds_tighter_than_or_and_parentheses_regroup() -> None:
    a, b, c = (Comparison(Attribute(Scope.ANY, n), CompareOp.EQ, 1) for n in "abc")
    assert cond("{ .a = 1 || .b = 1 && .c = 1 }") == Or(a, And(b, c))
    assert cond("{ (.a = 1 || .b = 1) && .c = 1 }") == And(Or(a, b), c)
    assert cond("{ .a = 1 && .b = 1 && .c = 1 }") == And(And(a, b), c)
    assert cond("{ ((.a = 1) && ((.b = 1 || (.c = 1)))) }") == And(a, Or(b, c))
    assert cond("{ !.a = 1 && !(.b = 1 || .c = 1) }") == And(Not(a), Not(Or(b, c)))
    assert cond("{ !!.a = 1 }") == Not(Not(a))


def test_spanset_combinations() -> None:
    a, b, c = (Spanset(Comparison(NAME, CompareOp.EQ, n)) for n in "abc")
    assert parse('{ name = "a" } && { name = "b" }') == SpansetAnd(a, b)
    assert parse('{ name = "a" } || { name = "b" }') == SpansetOr(a, b)
    assert parse('{ name = "a" } || { name = "b" } && { name = "c" }') == SpansetOr(
        a, SpansetAnd(b, c))
    assert parse('({ name = "a" } || { name = "b" }) && { name = "c" }') == SpansetAnd(
        SpansetOr(a, b), c)
    assert parse('(({ name = "a" }))') == a
    assert parse('{name="a"}&&{}') == SpansetAnd(a, Spanset(None))


@pytest.mark.parametrize("text", ["{}", "{ }", "  {\n}  ", "({})"])
def test_empty_spanset(text: str) -> None:
    assert parse(text) == Spanset(None)


@pytest.mark.parametrize(("text", "words"), [
    ("checkout", ("checkout",)),
    ("  Checkout   GET\t/cart ", ("checkout", "get", "/cart")),
    ("", ()),
    ("   ", ()),
    ('name = "x"', ("name", "=", '"x"')),  # no braces: words, not TraceQL
    ("'; DROP TABLE spans; --", ("';", "drop", "table", "spans;", "--")),
    ("50% a_b \\", ("50%", "a_b", "\\")),
    ("(unbalanced", ("(unbalanced",)),
])
def test_plain_words_are_a_text_search(text: str, words: tuple[str, ...]) -> None:
    assert parse(text) == TextSearch(words)


@pytest.mark.parametrize(("text", "message", "position"), [
    ('{ resource.service.name = && duration > 1s }', "expected a value after '='", 26),
    ("{ name = }", "expected a value after '='", 9),
    ("{ name = foo }", "expected a value after '=' (strings need quotes)", 9),
    ("{ durationn > 1s }", "unknown intrinsic 'durationn' (did you mean 'duration'?)", 2),
    ("{ frobnicate = 1 }", "unknown intrinsic 'frobnicate'", 2),
    ('{ name = "abc }', "unterminated string", 9),
    ("{ .a = `abc }", "unterminated string", 7),
    ('{ span."abc = 1 }', "unterminated string", 7),
    ('{ name = "a" }}', "unbalanced '}'", 14),
    ("{} )", "unbalanced ')'", 3),
    ('{ name = "a"', "unclosed '{'", 0),
    ('  ({ name = "a" }', "unclosed '('", 2),
    ('{ name = "a" && (name = "b" }', "expected '&&', '||' or ')' after '\"b\"', not '}'", 28),
    ('{ name = "a" )', "expected '&&', '||' or '}' after '\"a\"', not ')'", 13),
    ("{ span. = 1 }", "expected an attribute name after 'span.'", 7),
    ("{ . = 1 }", "expected an attribute name after '.'", 3),
    ('{ span."" = 1 }', "empty attribute name", 7),
    ("{ event.name = 1 }", "unknown scope 'event' (use span., resource. or .)", 2),
    ("{ duration > 5x }", "unknown duration '5x' (units: ns, us, ms, s, m, h)", 13),
    ("{ duration > 100 }", "duration compares with a duration such as 200ms", 13),
    ("{ status = 2 }", "status compares with error, ok or unset", 11),
    ('{ kind = "server" }', "kind compares with server, client, producer, consumer, "
                            "internal or unspecified", 9),
    ("{ name = 5 }", "name compares with a string", 9),
    ("{ kind > server }", "'>' does not apply to server; use = or !=", 7),
    ("{ .ok >= true }", "'>=' does not apply to true; use = or !=", 6),
    ("{ .a < nil }", "'<' does not apply to nil; use = or !=", 5),
    ("{ .a =~ 5 }", "'=~' needs a string regex", 8),
    ("{ duration =~ \"1\" }", "'=~' does not apply to duration", 11),
    ('{ name =~ "(" }', "invalid regex: missing ), unterminated subpattern", 10),
    ('{ name = "\\d" }', "unknown escape '\\d' (write '\\\\d', or quote the string with "
                         "backticks)", 10),
    ('{ name = "a" } &&', "expected '{' or '(' after '&&'", 17),
    ('{ name = "a" } && )', "expected '{' or '(' after '&&'", 18),
    ('{ .a = "x" && }', "expected an attribute or intrinsic after '&&', not '}'", 14),
    ("{ = 1 }", "expected an attribute or intrinsic after '{', not '='", 2),
    ("{ true }", "expected an attribute or intrinsic after '{', not 'true'", 2),
    ('{ .a "x" }', "expected an operator after '.a'", 5),
    ("{ name }", "expected an operator after 'name'", 7),
    ('{ name = "a" } { name = "b" }', "expected '&&' or '||' between spansets, not '{'", 15),
    ("{ .a = 1 } >> { .b = 2 }", "structural operators such as '>>' are not supported "
                                 "(join spansets with && or ||)", 11),
    ("{ .a = 1 } | count() > 2", "pipelines ('|') are not supported", 11),
    ("{ .a = 1 & .b = 2 }", "expected '&&'", 9),
    ("{ name = 'x' }", "unexpected character ''' (strings use double quotes or backticks)", 9),
    ("{ .a = 1 ; }", "unexpected character ';'", 9),
])
def test_errors_say_what_and_where(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse(text)
    assert (caught.value.message, caught.value.position) == (message, position)
    assert str(caught.value) == f"{message} at {position}"
    assert 0 <= position <= len(text)


# Round trip: any tree printed by to_text parses back to itself. This is also a strategy
# for generating queries that the SQL compiler can be checked against.

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
                max_size=8)
attributes = st.builds(Attribute, st.sampled_from(list(Scope)), names)
strings = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
numbers = st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
comparisons = st.one_of(
    st.builds(Comparison, attributes, st.sampled_from(list(CompareOp)[:6]),
              strings | numbers),
    st.builds(Comparison, attributes, st.sampled_from([CompareOp.EQ, CompareOp.NE]),
              st.booleans() | st.just(Nil())),
    st.builds(Comparison, st.sampled_from([Intrinsic.NAME, Intrinsic.ROOT_NAME]),
              st.sampled_from(list(CompareOp)), st.sampled_from(["a.*", "", "x|y"])),
    st.builds(Comparison, st.just(Intrinsic.DURATION), st.sampled_from(list(CompareOp)[:6]),
              st.builds(Duration, st.integers(-10**15, 10**15))),
    st.builds(Comparison, st.just(Intrinsic.STATUS), st.sampled_from(list(CompareOp)[:2]),
              st.builds(Status, st.integers(0, 2))),
    st.builds(Comparison, st.just(Intrinsic.KIND), st.sampled_from(list(CompareOp)[:2]),
              st.builds(Kind, st.integers(0, 5))),
)
conditions = st.recursive(comparisons, lambda inner: st.one_of(
    st.builds(Not, inner), st.builds(And, inner, inner), st.builds(Or, inner, inner)),
    max_leaves=6)
spansets = st.recursive(st.builds(Spanset, st.none() | conditions), lambda inner: st.one_of(
    st.builds(SpansetAnd, inner, inner), st.builds(SpansetOr, inner, inner)), max_leaves=4)


@given(spansets)
def test_printed_queries_parse_back_to_the_same_tree(query: Query) -> None:
    assert parse(to_text(query)) == query


def test_the_query_package_imports_no_terminal_library() -> None:
    code = ("import sys, tracedesk.query, tracedesk.query.evaluate, tracedesk.query.format; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
