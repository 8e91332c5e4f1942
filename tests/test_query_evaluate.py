"""The reference evaluator on hand-built traces, one semantic rule at a time."""

from __future__ import annotations

import pytest

from tracedesk.model import Span
from tracedesk.query import QuerySpan, matching_spans, parse, trace_facts, trace_matches
from tracedesk.query.ast import CompareOp, Comparison, Intrinsic, Spanset, Status

MS = 1_000_000


def span(span_id: str, parent: str = "", *, name: str = "op", service: str = "svc",
         kind: int = 1, status: int = 0, message: str = "", start: int = 0,
         duration: int = 10 * MS, attrs: dict | None = None,
         resource: dict | None = None) -> QuerySpan:
    return QuerySpan(span_id, parent, name, service, kind, status, message, duration, start,
                     attrs or {}, resource or {})


# A small shop trace: web (root, server) -> checkout (client call, then server) -> db.
ROOT = span("r", name="GET /cart", service="web", kind=2, duration=300 * MS,
            attrs={"http.route": "/cart", "http.response.status_code": 200},
            resource={"deployment.environment": "dev", "host.name": "laptop"})
CALL = span("c", "r", name="POST /checkout", service="web", kind=3, start=10 * MS,
            duration=250 * MS, attrs={"http.response.status_code": 500, "retry": True})
SERVE = span("s", "c", name="POST /checkout", service="checkout", kind=2, status=2,
             message="payment timed out", start=20 * MS, duration=240 * MS,
             attrs={"http.response.status_code": "500", "ratio": 0.5, "tags": ["a", "b"],
                    "host.name": "span-host", "empty": None},
             resource={"host.name": "pod-7", "deployment.environment": "dev"})
QUERY = span("q", "s", name="SELECT orders", service="postgres", kind=3, status=1,
             start=30 * MS, duration=5 * MS, attrs={"db.system": "postgresql", "rows": 3})
TRACE = [ROOT, CALL, SERVE, QUERY]


def spans_of(text: str, trace: list[QuerySpan] = TRACE) -> set[str]:
    return matching_spans(parse(text), trace)


@pytest.mark.parametrize(("text", "expected"), [
    ('{ name = "POST /checkout" }', {"c", "s"}),
    ('{ name != "POST /checkout" }', {"r", "q"}),
    ('{ resource.service.name = "checkout" }', {"s"}),
    ('{ .service.name = "postgres" }', {"q"}),
    ("{ span.http.response.status_code >= 500 }", {"c"}),
    ("{ span.http.response.status_code > 200 }", {"c"}),
    ("{ span.http.response.status_code < 500 }", {"r"}),
    ("{ span.http.response.status_code <= 200 }", {"r"}),
    ("{ span.http.response.status_code = 500 }", {"c"}),
    ('{ span.http.response.status_code = "500" }', {"s"}),
    ('{ name > "POST" && name < "R" }', {"c", "s"}),  # strings order by code point
    ("{ status = error }", {"s"}),
    ("{ status = ok }", {"q"}),
    ("{ status = unset }", {"r", "c"}),
    ("{ status != unset }", {"s", "q"}),
    ('{ statusMessage = "payment timed out" }', {"s"}),
    ('{ statusMessage = "" }', {"r", "c", "q"}),
    ("{ kind = server }", {"r", "s"}),
    ("{ kind = client && status != error }", {"c", "q"}),
    ("{ kind = internal }", set()),
    ("{ duration > 240ms }", {"r", "c"}),
    ("{ duration >= 240ms }", {"r", "c", "s"}),
    ("{ duration = 5000us }", {"q"}),
    ("{ duration < 0.25s && duration > 1ms }", {"s", "q"}),
])
def test_comparisons_on_each_field(text: str, expected: set[str]) -> None:
    assert spans_of(text) == expected


def test_type_mismatch_is_false_for_every_operator() -> None:
    # SERVE's status code is the string "500": no numeric comparison holds, != included.
    for op in ("=", "!=", ">", ">=", "<", "<="):
        assert "s" not in spans_of(f"{{ span.http.response.status_code {op} 500 }}")
    # Strings against a number, booleans against numbers, lists against anything.
    assert spans_of("{ .retry = 1 }") == set()
    assert spans_of("{ .retry != 1 }") == set()
    assert spans_of("{ .retry = true }") == {"c"}
    assert spans_of("{ .retry != false }") == {"c"}
    assert spans_of('{ .tags = "a" }') == spans_of('{ .tags != "a" }') == set()
    assert spans_of('{ .db.system =~ ".*" }') == {"q"}
    assert spans_of("{ .rows =~ `3` }") == spans_of("{ .rows !~ `x` }") == set()
    # A status literal never equals an integer attribute, nor a duration a number.
    assert spans_of("{ .rows = ok }") == spans_of("{ .rows != ok }") == set()
    assert spans_of("{ .rows > 1ns }") == set()


def test_ints_and_floats_compare_together() -> None:
    assert spans_of("{ .rows = 3.0 }") == {"q"}
    assert spans_of("{ .rows > 2.5 }") == {"q"}
    assert spans_of("{ .ratio = 0.5 }") == {"s"}
    assert spans_of("{ .ratio < 1 }") == {"s"}
    assert spans_of("{ .ratio > 0 && .ratio < 1 }") == {"s"}


def test_missing_attributes_are_false_even_for_not_equal() -> None:
    assert spans_of('{ .nope = "x" }') == set()
    assert spans_of('{ .nope != "x" }') == set()
    assert spans_of("{ .rows != 4 }") == {"q"}  # only QUERY has rows at all
    # JSON null counts as missing.
    assert spans_of("{ span.empty != 1 }") == set()


def test_nil_tests_presence() -> None:
    assert spans_of("{ span.rows = nil }") == {"r", "c", "s"}
    assert spans_of("{ span.rows != nil }") == {"q"}
    assert spans_of("{ span.empty = nil }") == {"r", "c", "s", "q"}
    assert spans_of("{ resource.host.name != nil }") == {"r", "s"}
    assert spans_of("{ name = nil }") == set()  # intrinsics are never missing
    assert spans_of("{ name != nil }") == {"r", "c", "s", "q"}


def test_not_is_plain_negation() -> None:
    # A span without the attribute fails the comparison, so its negation holds.
    assert spans_of("{ !(.rows = 3) }") == {"r", "c", "s"}
    assert spans_of("{ !(kind = server || kind = client) }") == set()
    assert spans_of("{ !!(status = error) }") == {"s"}


def test_scopes_and_unscoped_lookup() -> None:
    # host.name: ROOT has it on its resource, SERVE on both (the span's wins unscoped).
    assert spans_of('{ span.host.name = "span-host" }') == {"s"}
    assert spans_of('{ resource.host.name = "pod-7" }') == {"s"}
    assert spans_of('{ resource.host.name = "laptop" }') == {"r"}
    assert spans_of('{ .host.name = "span-host" }') == {"s"}
    assert spans_of('{ .host.name = "pod-7" }') == set()  # shadowed by the span's value
    assert spans_of('{ .host.name = "laptop" }') == {"r"}  # falls back to the resource
    assert spans_of('{ span.deployment.environment = "dev" }') == set()
    assert spans_of('{ .deployment.environment = "dev" }') == {"r", "s"}
    assert spans_of('{ resource.http.route = "/cart" }') == set()
    # service.name is the span's service, whether or not the resource map repeats it.
    assert spans_of('{ resource.service.name = "web" }') == {"r", "c"}


def test_quoted_attribute_names() -> None:
    trace = [span("a", attrs={"my attr": "x", "x y": 1}, resource={"a b": True})]
    assert spans_of('{ span."my attr" = "x" }', trace) == {"a"}
    assert spans_of('{ ."x y" = 1 }', trace) == {"a"}
    assert spans_of('{ resource."a b" = true }', trace) == {"a"}
    assert spans_of('{ ."a b" = true }', trace) == {"a"}


def test_regex_matches_the_whole_value() -> None:
    assert spans_of('{ name =~ "POST" }') == set()  # anchored: a prefix is not enough
    assert spans_of('{ name =~ "POST.*" }') == {"c", "s"}
    assert spans_of('{ name =~ ".*cart" }') == {"r"}
    assert spans_of('{ name =~ "GET /cart|SELECT orders" }') == {"r", "q"}
    assert spans_of('{ name !~ "POST.*" }') == {"r", "q"}
    assert spans_of('{ name !~ "POST" }') == {"r", "c", "s", "q"}
    assert spans_of("{ statusMessage =~ `.*timed\\s+out` }") == {"s"}
    assert spans_of('{ name =~ "get.*" }') == set()  # case-sensitive
    assert spans_of('{ .nope !~ "x" }') == set()  # missing: false for !~ too


def test_empty_spanset_matches_every_span_of_any_trace() -> None:
    assert spans_of("{}") == {"r", "c", "s", "q"}
    assert trace_matches(parse("{}"), [QUERY])
    assert not trace_matches(parse("{}"), [])


def test_spanset_and_needs_both_sides_and_returns_both() -> None:
    assert spans_of('{ status = error } && { .db.system = "postgresql" }') == {"s", "q"}
    assert spans_of('{ status = error } && { .db.system = "mysql" }') == set()
    # The same span may satisfy both sides.
    assert spans_of("{ status = error } && { kind = server }") == {"r", "s"}
    assert not trace_matches(parse('{ name = "x" } && {}'), TRACE)


def test_spanset_or_returns_what_either_side_selects() -> None:
    assert spans_of('{ status = error } || { .db.system = "mysql" }') == {"s"}
    assert spans_of('{ status = error } || { status = ok }') == {"s", "q"}
    assert spans_of('{ name = "x" } || { name = "y" }') == set()


def test_nested_spanset_combinations() -> None:
    query = '({ name = "x" } || { status = ok }) && { kind = server && duration > 250ms }'
    assert spans_of(query) == {"q", "r"}
    assert spans_of('({ name = "x" } || { name = "y" }) && {}') == set()
    assert spans_of('{ name = "x" } || ({ status = ok } && { status = error })') == {"q", "s"}


def test_root_intrinsics_hold_on_every_span_of_the_trace() -> None:
    assert spans_of('{ rootName = "GET /cart" }') == {"r", "c", "s", "q"}
    assert spans_of('{ rootServiceName = "web" && kind = client }') == {"c", "q"}
    assert spans_of('{ rootServiceName = "checkout" }') == set()
    # The trace runs from 0 to 300 ms (the root's end).
    assert spans_of("{ traceDuration = 300ms && status = error }") == {"s"}
    assert spans_of("{ traceDuration > 300ms }") == set()
    assert spans_of("{ trace:duration >= 300ms && span:name =~ `SELECT.*` }") == {"q"}


def test_trace_facts_root_rules() -> None:
    facts = trace_facts(TRACE)
    assert (facts.root_name, facts.root_service_name, facts.duration_ns) == (
        "GET /cart", "web", 300 * MS)
    # Without a parentless span, the earliest stands in; the duration spans all of them.
    orphans = [span("b", "x", name="late", start=50, duration=100),
               span("a", "x", name="early", service="api", start=20, duration=10)]
    facts = trace_facts(orphans)
    assert (facts.root_name, facts.root_service_name, facts.duration_ns) == (
        "early", "api", 130)
    assert spans_of('{ rootName = "early" && rootServiceName = "api" }', orphans) == {"a", "b"}
    # Several parentless spans: the earliest of them, even if a child started before.
    two_roots = [span("z", "", name="second", start=40), span("y", "", name="first", start=30),
                 span("c", "y", name="child", start=0)]
    assert trace_facts(two_roots).root_name == "first"
    # Equal starts: the smaller span id, whatever the input order.
    ties = [span("b", name="bee"), span("a", name="ay")]
    assert trace_facts(ties).root_name == trace_facts(ties[::-1]).root_name == "ay"


@pytest.mark.parametrize(("text", "expected"), [
    ("checkout", {"c", "s"}),  # span name "POST /checkout" or service "checkout"
    ("CHECKOUT", {"c", "s"}),
    ("checkout postgres", {"c", "s", "q"}),  # words may be in different spans
    ("post ORDERS", {"c", "s", "q"}),
    ("cart", {"r"}),
    ("checkout mysql", set()),  # every word must appear somewhere
    ("", {"r", "c", "s", "q"}),
    ("e", {"r", "c", "s", "q"}),  # "web", "checkout", "postgres" all contain it
    ("'; DROP", set()),
])
def test_plain_words_search_names_and_services_per_trace(text: str,
                                                         expected: set[str]) -> None:
    assert spans_of(text) == expected
    assert trace_matches(parse(text), TRACE) == bool(expected)


def test_hostile_literals_compare_as_plain_text() -> None:
    trace = [span("h", name="50%_off'; DROP TABLE spans; --", attrs={"q": 'a"b\\c'})]
    assert spans_of('{ name = "50%_off\'; DROP TABLE spans; --" }', trace) == {"h"}
    assert spans_of('{ name = "50__off\'; DROP TABLE spans; --" }', trace) == set()
    assert spans_of('{ name = "%" }', trace) == set()
    assert spans_of('{ .q = "a\\"b\\\\c" }', trace) == {"h"}
    assert spans_of("50%_", trace) == {"h"}


def test_works_on_trees_built_in_code_and_on_stored_spans() -> None:
    query = Spanset(Comparison(Intrinsic.STATUS, CompareOp.EQ, Status(2)))
    stored = Span("t", "s1", "", "GET /", 2, "web", 100, 350, status_code=2,
                  attributes={"http.route": "/"})
    converted = QuerySpan.from_span(stored, {"host.name": "h"})
    assert (converted.duration_ns, converted.resource_attributes) == (250, {"host.name": "h"})
    assert matching_spans(query, [converted]) == {"s1"}
    assert spans_of('{ duration = 250ns && .http.route = "/" && .host.name = "h" }',
                    [converted]) == {"s1"}
