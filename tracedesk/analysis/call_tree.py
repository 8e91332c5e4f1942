"""The service graph drawn as a call tree: who calls whom, from the entry points down.

A terminal cannot draw a general graph legibly, but calls mostly flow one way: from users
through front ends to back ends and databases. So the graph is unfolded depth first from the
nodes nothing calls (usually "user"); a node reached again is listed where it is called but
unfolded only once, and marked as repeated. Every edge appears exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracedesk.analysis.service_graph import Edge, ServiceGraph


@dataclass(frozen=True, slots=True)
class CallRow:
    """One line: ``node``, called through ``edge`` (None for an entry point).

    ``depth``, ``guide_bits`` and ``is_last`` follow ``waterfall.tree_prefix``'s rules."""

    node: str
    edge: Edge | None
    depth: int
    guide_bits: int
    is_last: bool
    repeated: bool  # unfolded elsewhere in the tree


def _calls_first(edge: Edge) -> tuple[float, str, str]:
    return (-edge.rate, edge.server, edge.connection_type)


def call_tree(graph: ServiceGraph) -> list[CallRow]:
    """Rows depth first: entry points (nodes nothing calls) by name, each node's calls
    busiest first. Nodes only reachable through a cycle start trees of their own."""
    outgoing: dict[str, list[Edge]] = {node.name: [] for node in graph.nodes}
    called: set[str] = set()
    for edge in graph.edges:
        outgoing.setdefault(edge.client, []).append(edge)
        outgoing.setdefault(edge.server, [])
        if edge.client != edge.server:
            called.add(edge.server)
    for edges in outgoing.values():
        edges.sort(key=_calls_first)

    rows: list[CallRow] = []
    unfolded: set[str] = set()
    starts = sorted(n for n in outgoing if n not in called) + sorted(n for n in outgoing
                                                                    if n in called)
    for root in starts:
        if root in unfolded:
            continue
        # (node, edge into it, depth, guide bits, is last); popped in drawing order.
        stack: list[tuple[str, Edge | None, int, int, bool]] = [(root, None, 0, 0, True)]
        while stack:
            node, edge, depth, bits, is_last = stack.pop()
            repeated = node in unfolded
            rows.append(CallRow(node, edge, depth, bits, is_last, repeated))
            if repeated:
                continue
            unfolded.add(node)
            calls = outgoing[node]
            # As in the waterfall: a call with later siblings keeps its guide running.
            for index in range(len(calls) - 1, -1, -1):
                last = index == len(calls) - 1
                guides = bits if last else bits | (1 << depth)
                stack.append((calls[index].server, calls[index], depth + 1, guides, last))
    return rows
