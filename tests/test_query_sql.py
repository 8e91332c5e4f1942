"""The SQL compiler agrees with the reference evaluator, and binds every value it is given.

For random stores and random queries (hypothesis), the traces the compiled SQL selects from
a real SQLite file are exactly those the plain-Python evaluator matches over the same spans,
read back through the store's reader. Half the traces are stored deferred (attributes in the
span's bytes), as a busy receiver stores them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import span_id, trace_id, traces_request

from tracedesk.demo.signals import any_value
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.query import QuerySpan, matching_spans, parse
from tracedesk.query.ast import (
    And,
    Attribute,
    CompareOp,
    Comparison,
    Duration,
    Intrinsic,
    Kind,
    Nil,
    Not,
    Or,
    Scope,
    Spanset,
    SpansetAnd,
    SpansetOr,
    Status,
    TextSearch,
)
from tracedesk.query.sql import TraceQuery, compile_query
from tracedesk.store.reader import Reader
from tracedesk.store.writer import Writer

BASE_NS = 1_700_000_000_000_000_000
KEYS = ["a", "b", "http.status", 'we"ird', "back\\slash", "service.name"]
SERVICES = ["api", "db", "Web"]
NAMES = ["GET /a", "get /b", "POST", "q%_x", "Ünïcode"]
STRINGS = ["x", "X", "500", "a.b", "", "Ünï"]


def _any(value) -> AnyValue:
    """As the demo builds values, plus JSON null (an empty AnyValue), in lists too."""
    if value is None:
        return AnyValue()
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    return any_value(value)


scalars = st.one_of(st.integers(-3, 600), st.sampled_from([0.5, 2.0, 499.5, -1.0]),
                    st.sampled_from(STRINGS), st.booleans(), st.none())
values = scalars | st.lists(scalars, max_size=2)
attribute_maps = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)


@st.composite
def traces(draw) -> list[dict]:
    """One trace: spans with distinct start times; the first is the root unless orphaned."""
    count = draw(st.integers(1, 5))
    orphaned = draw(st.booleans())
    starts = draw(st.lists(st.integers(0, 10_000), min_size=count, max_size=count,
                           unique=True))
    spans = []
    for index in range(count):
        parent = None if index == 0 and not orphaned else draw(st.integers(0, count + 3))
        spans.append({
            "id": index + 1, "parent": parent, "start": starts[index],
            "duration": draw(st.sampled_from([0, 5, 100, 2_000_000, 10**9])),
            "name": draw(st.sampled_from(NAMES)), "service": draw(st.sampled_from(SERVICES)),
            "kind": draw(st.integers(0, 5)), "status": draw(st.integers(0, 2)),
            "message": draw(st.sampled_from(["", "boom", "x"])),
            "attributes": draw(attribute_maps),
        })
    return spans


stores = st.lists(traces(), min_size=1, max_size=5)
resource_attributes = st.fixed_dictionaries({}, optional={"a": values, "b": values,
                                                          "env": st.sampled_from(STRINGS)})

fields = st.one_of(st.builds(Attribute, st.sampled_from(list(Scope)), st.sampled_from(KEYS)),
                   st.sampled_from(list(Intrinsic)))
literals = st.one_of(st.integers(-3, 600), st.sampled_from([0.5, 2.0, 499.5]),
                     st.sampled_from([*STRINGS, "x|X", ".*", "a\\.b", "GET.*", "api"]),
                     st.booleans(), st.just(Nil()),
                     st.builds(Duration, st.sampled_from([0, 5, 100, 10**6, 10**9])),
                     st.builds(Status, st.integers(0, 2)), st.builds(Kind, st.integers(0, 5)))
comparisons = st.builds(Comparison, fields, st.sampled_from(list(CompareOp)), literals)
conditions = st.recursive(comparisons, lambda inner: st.one_of(
    st.builds(Not, inner), st.builds(And, inner, inner), st.builds(Or, inner, inner)),
    max_leaves=4)
spansets = st.recursive(st.builds(Spanset, st.none() | conditions), lambda inner: st.one_of(
    st.builds(SpansetAnd, inner, inner), st.builds(SpansetOr, inner, inner)), max_leaves=3)
words = st.lists(st.sampled_from(["get", "GE", "/b", "%", "_", "api", "web", "ü", "zz"]),
                 max_size=3).map(tuple)
queries = spansets | st.builds(TextSearch, words)


def _store(path: Path, store: list[list[dict]], resources: dict[str, dict]) -> None:
    writer = Writer(path)
    for number, spans in enumerate(store, start=1):
        by_service: dict[str, list] = {}
        for s in spans:
            start = BASE_NS + number * 10**12 + s["start"]
            span = trace_pb2.Span(
                trace_id=trace_id(number), span_id=span_id(s["id"]), name=s["name"],
                kind=s["kind"], start_time_unix_nano=start,
                end_time_unix_nano=start + s["duration"],
                status=trace_pb2.Status(code=s["status"], message=s["message"]),
                attributes=[KeyValue(key=k, value=_any(v)) for k, v in s["attributes"].items()])
            if s["parent"] is not None:
                span.parent_span_id = span_id(s["parent"])
            by_service.setdefault(s["service"], []).append(span)
        request = traces_request(by_service)
        for rs in request.resource_spans:
            service = next(kv.value.string_value for kv in rs.resource.attributes
                           if kv.key == "service.name")
            rs.resource.attributes.extend(
                KeyValue(key=k, value=_any(v)) for k, v in resources[service].items())
        defer = number % 2 == 0
        if number == len(store):  # all but the last trace are in the attribute index
            while writer.index_some(3):
                pass
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable(),
                            defer=defer))
    writer.commit()
    writer.close()


def _expected(reader: Reader, query) -> set[str]:
    out = set()
    for trace in reader.trace_page(0, 1000):
        spans = [QuerySpan.from_span(s, reader.resource(s.resource_id))
                 for s in reader.spans(trace.trace_id)]
        if matching_spans(query, spans):
            out.add(trace.trace_id)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(store=stores, resources=st.fixed_dictionaries({s: resource_attributes
                                                      for s in SERVICES}),
       batch=st.lists(queries, min_size=1, max_size=8))
def test_compiled_sql_selects_what_the_evaluator_matches(store, resources, batch):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.db"
        _store(path, store, resources)
        reader = Reader(path)
        try:
            for query in batch:
                clause, params = TraceQuery(query).sql()
                found = {row[0] for row in reader.conn.execute(
                    f"SELECT trace_id FROM traces{clause}", params)}
                assert found == _expected(reader, query), query
        finally:
            reader.close()


@pytest.fixture
def shop_db(tmp_path) -> Path:
    from tracedesk.ui.screenshots import seed_demo_database

    path = tmp_path / "shop.db"
    seed_demo_database(path, traces=40)
    return path


@pytest.mark.parametrize("text", [
    '{ resource.service.name = "checkout" && span.http.response.status_code >= 500 }',
    '{ status = error } && { kind = client }',
    '{ name =~ "POST.*" } || { duration > 300ms }',
    '{ .db.system.name = "postgresql" && !(.server.port = 5432) }',
    '{ traceDuration > 100ms && rootServiceName = "frontend" }',
    "checkout POST",
])
def test_realistic_queries_agree_with_the_evaluator(shop_db, text):
    reader = Reader(shop_db)
    query = parse(text)
    clause, params = TraceQuery(query).sql()
    found = {r[0] for r in reader.conn.execute(f"SELECT trace_id FROM traces{clause}", params)}
    assert found == _expected(reader, query)
    reader.close()


HOSTILE = ["'; DROP TABLE spans; --", '") OR 1=1 --', "%", "_", "\\", "?1", "$.a"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_are_bound_never_spliced(hostile):
    quoted = hostile.replace("\\", "\\\\").replace('"', '\\"')
    trees = [parse(f'{{ name = "{quoted}" }}'), parse(f'{{ span."{quoted}" = "{quoted}" }}'),
             Spanset(Comparison(Attribute(Scope.ANY, hostile), CompareOp.MATCH, hostile)),
             TextSearch((hostile,))]
    for tree in trees:
        compiled = compile_query(tree)
        if len(hostile) > 3:  # shorter ones ("_", "?1") are part of any statement
            assert hostile not in compiled.condition
        assert hostile in compiled.params or f'$."{hostile}"' in compiled.params


def test_hostile_stored_text_cannot_change_the_statement(tmp_path):
    """Stored names full of SQL and JSON-path syntax are data: queries for them find
    exactly their own traces."""
    path = tmp_path / "h.db"
    store = [[{"id": 1, "parent": None, "start": 0, "duration": 5, "name": name,
               "service": "api", "kind": 2, "status": 0, "message": "",
               "attributes": {"we\"ird": name}}] for name in HOSTILE]
    _store(path, store, {s: {} for s in SERVICES})
    reader = Reader(path)
    for number, name in enumerate(HOSTILE, start=1):
        for query in (Spanset(Comparison(Intrinsic.NAME, CompareOp.EQ, name)),
                      Spanset(Comparison(Attribute(Scope.SPAN, 'we"ird'), CompareOp.EQ,
                                         name))):
            clause, params = TraceQuery(query).sql()
            found = [r[0] for r in reader.conn.execute(
                f"SELECT trace_id FROM traces{clause}", params)]
            assert found == [trace_id(number).hex()]
    assert reader.conn.execute("SELECT count(*) FROM spans").fetchone()[0] == len(HOSTILE)
    reader.close()


def test_the_time_range_bounds_trace_starts(tmp_path):
    path = tmp_path / "t.db"
    spans = {"id": 1, "parent": None, "start": 0, "duration": 5, "name": "n",
             "service": "api", "kind": 2, "status": 0, "message": "", "attributes": {}}
    _store(path, [[spans], [spans], [spans]], {s: {} for s in SERVICES})
    reader = Reader(path)
    second = BASE_NS + 2 * 10**12
    clause, params = TraceQuery(Spanset(None), since_ns=second, until_ns=second + 1).sql()
    assert [r[0] for r in reader.conn.execute(f"SELECT trace_id FROM traces{clause}",
                                              params)] == [trace_id(2).hex()]
    reader.close()
