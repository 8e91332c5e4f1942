"""The service graph unfolded as a call tree (pure)."""

from __future__ import annotations

from tracedesk.analysis.call_tree import call_tree
from tracedesk.analysis.service_graph import Edge, Node, ServiceGraph
from tracedesk.analysis.waterfall import tree_prefix


def graph(*edges: tuple[str, str, float]) -> ServiceGraph:
    names = sorted({name for client, server, _ in edges for name in (client, server)})
    nodes = [Node(name, False, "service") for name in names]
    return ServiceGraph(nodes, [Edge(c, s, "", 10, 1, rate, None, None)
                                for c, s, rate in edges], 0, 0)


def drawn(g: ServiceGraph) -> list[str]:
    return [tree_prefix(row) + row.node + (" ↑" if row.repeated else "")
            for row in call_tree(g)]


def test_calls_unfold_from_the_entry_point_busiest_first():
    g = graph(("user", "frontend", 5), ("frontend", "checkout", 1), ("frontend", "cart", 3),
              ("checkout", "db", 1), ("cart", "db", 2))
    assert drawn(g) == [
        "user",
        "└─ frontend",
        "   ├─ cart",
        "   │  └─ db",
        "   └─ checkout",
        "      └─ db ↑",  # shown where it is called, unfolded once
    ]


def test_every_edge_is_drawn_once_even_with_cycles_and_self_calls():
    g = graph(("a", "b", 1), ("b", "a", 1), ("b", "b", 1), ("c", "d", 1))
    rows = call_tree(g)
    edges = [(row.edge.client, row.edge.server) for row in rows if row.edge]
    assert sorted(edges) == [("a", "b"), ("b", "a"), ("b", "b"), ("c", "d")]
    assert [row.node for row in rows if row.depth == 0] == ["c", "a"]  # c: nothing calls it


def test_an_empty_graph_draws_nothing():
    assert call_tree(ServiceGraph([], [], 0, 0)) == []
