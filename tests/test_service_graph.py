"""The service graph against hand-built traces, following Tempo's service-graph processor."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tracedesk.analysis.service_graph import (
    ATTRIBUTES,
    DATABASE,
    DIRECT,
    MESSAGING,
    VIRTUAL,
    GraphSpan,
    ServiceGraph,
    service_graph,
)
from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.reader import Reader
from tracedesk.store.writer import Writer

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S
SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1
FIELD = {key: GraphSpan._fields[i] for key, i in ATTRIBUTES.items()}


def span(trace: str, sid: str, parent: str, service: str, kind: int, start: int = T0,
         duration: int = MS, status: int = 0, links: tuple = (), **attrs: object) -> GraphSpan:
    """A GraphSpan; attributes by their OpenTelemetry names with dots as underscores."""
    fields = {FIELD[key]: attrs.pop(key.replace(".", "_")) for key in ATTRIBUTES
              if key.replace(".", "_") in attrs}
    assert not attrs, attrs
    return GraphSpan(trace, sid, parent, service, kind, start, duration, status,
                     links=links or None, **fields)


def graph(spans: list[GraphSpan], **options: object) -> ServiceGraph:
    return service_graph(spans, T0, T0 + 10 * S, **options)


def edges(g: ServiceGraph) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {(e.client, e.server, e.connection_type): (e.requests, e.errors) for e in g.edges}


# frontend's root server span calls checkout (client 10 ms, server 8 ms), which calls itself.
CALL = [
    span("t1", "r", "", "frontend", SERVER, T0, 20 * MS),
    span("t1", "c1", "r", "frontend", CLIENT, T0 + MS, 10 * MS),
    span("t1", "s1", "c1", "checkout", SERVER, T0 + 2 * MS, 8 * MS),
    span("t1", "i1", "s1", "checkout", INTERNAL, T0 + 3 * MS, 1 * MS),
    span("t1", "c2", "i1", "checkout", CLIENT, T0 + 3 * MS, 3 * MS),
    span("t1", "s2", "c2", "checkout", SERVER, T0 + 4 * MS, 2 * MS),
]


def test_client_server_pairs_and_the_user_root():
    g = graph(CALL)
    assert edges(g) == {
        ("user", "frontend", VIRTUAL): (1, 0),
        ("frontend", "checkout", DIRECT): (1, 0),
        ("checkout", "checkout", DIRECT): (1, 0),  # a service calling itself is an edge
    }
    call = g.edge("frontend", "checkout")
    assert call is not None
    assert call.server_latency is not None and call.server_latency.p50 == 8 * MS
    assert call.client_latency is not None and call.client_latency.p99 == 10 * MS
    assert call.messaging_latency is None
    assert call.rate == 0.1  # one request in a 10 s window
    root = g.edge("user", "frontend")
    assert root is not None and root.client_latency is None
    assert root.server_latency is not None and root.server_latency.max_ns == 20 * MS
    assert [(n.name, n.virtual, n.kind) for n in g.nodes] == [
        ("checkout", False, "service"), ("frontend", False, "service"), ("user", True, "user")]
    assert (g.unpaired_clients, g.unpaired_servers) == (0, 0)


def test_pairing_does_not_depend_on_span_order():
    expected = graph(CALL)
    for seed in range(5):
        shuffled = CALL[:]
        random.Random(seed).shuffle(shuffled)
        assert graph(shuffled) == expected
    assert graph(CALL[::-1]) == expected


def test_either_side_failing_fails_the_request_once():
    spans = []
    for n, (client_status, server_status) in enumerate([(0, 0), (2, 0), (0, 2), (2, 2)]):
        spans += [span(f"t{n}", "c", "p", "a", CLIENT, status=client_status),
                  span(f"t{n}", "s", "c", "b", SERVER, status=server_status)]
    e = graph(spans).edge("a", "b")
    assert e is not None and (e.requests, e.errors, e.error_rate) == (4, 3, 0.75)


def test_latency_quantiles_rate_and_window():
    spans = []
    for n, ms in enumerate((4, 1, 3, 2)):
        spans += [span(f"t{n}", "c", "p", "a", CLIENT, T0 + n * S, (ms + 1) * MS),
                  span(f"t{n}", "s", "c", "b", SERVER, T0 + n * S, ms * MS)]
    g = service_graph(spans, T0, T0 + 2 * S)  # only the first two requests start inside
    e = g.edge("a", "b")
    assert e is not None and (e.requests, e.rate) == (2, 1.0)
    full = service_graph(spans, T0, T0 + 4 * S).edge("a", "b")
    assert full is not None and full.server_latency is not None
    lat = full.server_latency
    # nearest rank of [1, 2, 3, 4] ms: ceil(2) = 2nd, ceil(3.8) = 4th, ceil(3.96) = 4th
    assert (lat.count, lat.min_ns, lat.max_ns, lat.mean_ns) == (4, MS, 4 * MS, 2.5 * MS)
    assert (lat.p50, lat.p95, lat.p99) == (2 * MS, 4 * MS, 4 * MS)
    assert full.client_latency is not None and full.client_latency.p50 == 3 * MS
    assert service_graph(spans, T0 - 2 * S, T0).edges == []


def test_client_without_server_names_a_virtual_node_from_peer_service_only():
    g = graph([
        span("t1", "c1", "p", "payments", CLIENT, duration=5 * MS, status=2,
             peer_service="payflow", server_address="api.payflow.example"),
        span("t2", "c2", "p", "shipping", CLIENT, server_address="api.parcelhub.example"),
        span("t3", "c3", "p", "email", CLIENT),
    ])
    # server.address alone does not name a virtual node in Tempo (not a peer attribute)
    assert edges(g) == {("payments", "payflow", VIRTUAL): (1, 1)}
    e = g.edge("payments", "payflow")
    assert e is not None and e.server_latency is None
    assert e.client_latency is not None and e.client_latency.p50 == 5 * MS
    payflow = g.node("payflow")
    assert payflow is not None and (payflow.virtual, payflow.kind) == (True, "peer")
    assert (g.unpaired_clients, g.unpaired_servers) == (2, 0)


def test_peer_attributes_in_tempos_order_of_preference():
    attrs = {"peer_service": "svc", "db_name": "dbname", "db_system": "legacy",
             "db_system_name": "postgresql"}
    # With database detection off, the first peer attribute present names the node.
    for expected in ("svc", "dbname", "legacy", "postgresql"):
        g = graph([span("t", "c", "p", "a", CLIENT, **attrs)], database_name_attributes=())
        assert edges(g) == {("a", expected, VIRTUAL): (1, 0)}
        attrs.pop(next(iter(attrs)))
    g = graph([span("t", "c", "p", "a", CLIENT, peer_service="svc", db_name="x")],
              peer_attributes=("db.name", "peer.service"), database_name_attributes=())
    assert edges(g) == {("a", "x", VIRTUAL): (1, 0)}
    with pytest.raises(ValueError, match=r"net\.peer\.name"):
        graph([], peer_attributes=("net.peer.name",))


def test_database_nodes_are_named_in_tempos_order():
    attrs = {"peer_service": "pg-main", "server_address": "db.local",
             "network_peer_port": 5432, "network_peer_address": "10.0.0.1",
             "db_namespace": "shop", "db_system_name": "postgresql"}
    expected = ["pg-main", "db.local", "10.0.0.1:5432", "10.0.0.1", "shop", "postgresql"]
    for name in expected:
        g = graph([span("t", "c", "p", "checkout", CLIENT, duration=3 * MS, **attrs)])
        assert edges(g) == {("checkout", name, DATABASE): (1, 0)}, attrs
        e = g.edge("checkout", name)
        # Tempo records the database span's duration as both sides' latency
        assert e is not None and e.server_latency is not None and e.client_latency is not None
        assert e.server_latency.p50 == e.client_latency.p50 == 3 * MS
        node = g.node(name)
        assert node is not None and (node.virtual, node.kind, node.system) == (
            True, "database", "postgresql")
        attrs.pop(next(iter(attrs)))
    for legacy in ({"db_system": "mysql"}, {"db_name": "orders"}):
        g = graph([span("t", "c", "p", "checkout", CLIENT, **legacy)])
        assert edges(g) == {("checkout", next(iter(legacy.values())), DATABASE): (1, 0)}


def test_a_database_edge_wins_over_a_server_span_below_it():
    g = graph([span("t", "c", "p", "a", CLIENT, db_system_name="redis", peer_service="cache"),
               span("t", "s", "c", "cache-proxy", SERVER)])
    assert edges(g) == {("a", "cache", DATABASE): (1, 0)}
    assert g.unpaired_servers == 1


def test_server_roots_come_from_user_or_their_peer_and_orphans_are_unpaired():
    g = graph([
        span("t1", "r1", "", "api", SERVER, status=2),
        span("t2", "r2", "", "api", SERVER, peer_service="cron"),
        span("t3", "o1", "gone", "api", SERVER),  # parent never arrived: not a root
    ])
    assert edges(g) == {("user", "api", VIRTUAL): (1, 1), ("cron", "api", VIRTUAL): (1, 0)}
    cron = g.node("cron")
    assert cron is not None and (cron.virtual, cron.kind) == (True, "peer")
    assert (g.unpaired_clients, g.unpaired_servers) == (0, 1)


def test_producer_and_consumer_pair_through_the_parent():
    g = graph([
        span("t", "p1", "x", "checkout", PRODUCER, T0, 2 * MS, peer_service="orders-queue",
             messaging_system="kafka"),
        span("t", "k1", "p1", "shipping", CONSUMER, T0 + 7 * MS, 30 * MS),
    ])
    assert edges(g) == {("checkout", "shipping", MESSAGING): (1, 0)}
    e = g.edge("checkout", "shipping")
    assert e is not None and e.messaging_latency is not None
    assert e.messaging_latency.p50 == 5 * MS  # consumer start - producer end
    assert e.server_latency is not None and e.server_latency.p50 == 30 * MS
    skewed = graph([span("t", "p1", "x", "a", PRODUCER, T0, 2 * MS),
                    span("t", "k1", "p1", "b", CONSUMER, T0 + MS)]).edge("a", "b")
    assert skewed is not None and skewed.requests == 1 and skewed.messaging_latency is None


def test_consumers_pair_through_links_with_fan_out():
    producer = span("t1", "p1", "x", "checkout", PRODUCER, T0, 2 * MS,
                    peer_service="orders-queue", messaging_system="kafka")
    consumers = [span("t2", "k1", "", "shipping", CONSUMER, T0 + 3 * MS, status=2,
                      links=(("t1", "p1"),)),
                 span("t3", "k2", "", "email", CONSUMER, T0 + 4 * MS, links=(("t1", "p1"),)),
                 span("t4", "k3", "", "audit", CONSUMER, links=(("t9", "gone"),))]
    g = graph([producer, *consumers])
    assert edges(g) == {("checkout", "shipping", MESSAGING): (1, 1),
                        ("checkout", "email", MESSAGING): (1, 0),
                        ("user", "audit", VIRTUAL): (1, 0)}  # link to nothing: a root
    # Tempo's own behaviour: the consumer roots come from "user", the producer expires into
    # a virtual node named by its peer attribute.
    plain = graph([producer, *consumers], pair_links=False)
    assert edges(plain) == {("checkout", "orders-queue", VIRTUAL): (1, 0),
                            ("user", "shipping", VIRTUAL): (1, 1),
                            ("user", "email", VIRTUAL): (1, 0),
                            ("user", "audit", VIRTUAL): (1, 0)}
    queue = plain.node("orders-queue")
    assert queue is not None and (queue.kind, queue.system) == ("messaging", "kafka")


def test_duplicate_span_ids_count_once():
    g = graph([*CALL, *CALL, CALL[1]])
    assert edges(g) == edges(graph(CALL))


def test_unknown_and_internal_kinds_make_no_edges():
    g = graph([span("t", "a", "", "x", INTERNAL), span("t", "b", "a", "x", 0),
               span("t", "c", "b", "x", 9), span("t", "d", "c", "y", SERVER)])
    assert g.edges == [] and g.nodes == []
    assert g.unpaired_servers == 1
    assert graph([]) == ServiceGraph([], [], T0, T0 + 10 * S, 0, 0)


def test_attribute_map_matches_the_fields():
    assert [GraphSpan._fields[i] for i in ATTRIBUTES.values()] == [
        key.replace(".", "_") for key in ATTRIBUTES]


# ---------------------------------------------------------------- the demo shop


def test_the_demo_shops_graph(tmp_path):
    now = 1_800_000_000 * S
    request, span_count, trace_count = Shop(seed=1, repeat_ids=True).traces_request_for(
        150, now_ns=now, spread_ns=60 * S)
    writer = Writer(tmp_path / "demo.db")
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
    writer.close()
    reader = Reader(tmp_path / "demo.db")
    try:
        spans = reader.graph_spans(0, 2 * now)
        assert reader.graph_spans(0, 1) == []
    finally:
        reader.close()
    assert 0 < len(spans) < span_count  # internal spans are left out
    kinds = Counter(s.kind for s in spans)
    assert set(kinds) == {SERVER, CLIENT, PRODUCER, CONSUMER}
    assert all(s.links for s in spans if s.kind == CONSUMER)
    assert all(s.links is None for s in spans if s.kind != CONSUMER)

    g = service_graph(spans, now - 120 * S, now + 1)
    found = {(e.client, e.server, e.connection_type) for e in g.edges}
    assert found >= {
        ("user", "frontend", VIRTUAL),
        ("frontend", "checkout", DIRECT),
        ("frontend", "inventory", DIRECT),
        ("checkout", "inventory", DIRECT),
        ("checkout", "payments", DIRECT),
        ("checkout", "shipping", MESSAGING),
        ("checkout", "email", MESSAGING),
        ("payments", "payflow", VIRTUAL),
        ("shipping", "parcelhub", VIRTUAL),
        ("email", "mailrelay", VIRTUAL),
        ("frontend", "redis", DATABASE),
        ("checkout", "redis", DATABASE),
        ("checkout", "postgres", DATABASE),
        ("inventory", "postgres", DATABASE),
        ("payments", "postgres", DATABASE),
        ("shipping", "postgres", DATABASE),
        ("email", "postgres", DATABASE),
    }
    assert {e.server for e in g.edges if e.connection_type == DATABASE} == {"postgres", "redis"}
    assert (g.unpaired_clients, g.unpaired_servers) == (0, 0)
    postgres, redis = g.node("postgres"), g.node("redis")
    assert postgres is not None and (postgres.virtual, postgres.system) == (True, "postgresql")
    assert redis is not None and (redis.kind, redis.system) == ("database", "redis")
    assert {n.name for n in g.nodes if not n.virtual} == {
        "frontend", "checkout", "payments", "inventory", "shipping", "email"}

    # Cross-checks against counting the spans directly.
    requests = {(e.client, e.server, e.connection_type): e.requests for e in g.edges}
    roots = [s for s in spans if s.kind == SERVER and not s.parent_span_id]
    assert requests["user", "frontend", VIRTUAL] == len(roots)
    assert len(roots) + kinds[CONSUMER] == trace_count
    assert requests["checkout", "shipping", MESSAGING] + requests[
        "checkout", "email", MESSAGING] == kinds[CONSUMER]
    paired_servers = sum(1 for s in spans if s.kind == SERVER and s.parent_span_id)
    assert sum(n for (_, _, ctype), n in requests.items() if ctype == DIRECT) == paired_servers
    # every client span once, every root once, and each message once more per extra consumer
    assert sum(requests.values()) == sum(1 for s in spans if s.kind in (CLIENT, PRODUCER)) + len(
        roots) + kinds[CONSUMER] - kinds[PRODUCER]
