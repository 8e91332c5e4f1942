"""The service graph as counts that add up: each time slice's edges as request and error
counts and latency histograms, so that stored slices (``store.graph_rollups``) merge into
the graph of any longer window. The pairs are those of ``analysis.service_graph``, whose
pairing core this shares; only the latencies become estimates (within about 4.5 %, see
``analysis.latency_histogram``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from tracedesk.analysis.latency_histogram import LatencyHistogram
from tracedesk.analysis.service_graph import (
    DEFAULT_DATABASE_NAME_ATTRIBUTES,
    DEFAULT_PEER_ATTRIBUTES,
    Edge,
    GraphSpan,
    LatencyStats,
    ServiceGraph,
    _Acc,
    _nodes,
    _pair,
)
from tracedesk.analysis.span_metrics import NS_PER_S, QUANTILES


@dataclass(slots=True)
class EdgeCounts:
    requests: int = 0
    errors: int = 0
    server: LatencyHistogram = field(default_factory=LatencyHistogram)
    client: LatencyHistogram = field(default_factory=LatencyHistogram)
    messaging: LatencyHistogram = field(default_factory=LatencyHistogram)

    def merge(self, other: EdgeCounts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.server.merge(other.server)
        self.client.merge(other.client)
        self.messaging.merge(other.messaging)


def _estimated(histogram: LatencyHistogram) -> LatencyStats | None:
    if not histogram.count:
        return None
    p50, p95, p99 = (histogram.quantile(q) for q in QUANTILES)
    return LatencyStats(histogram.count, histogram.min, histogram.max,
                        histogram.total / histogram.count, p50, p95, p99)


@dataclass(slots=True)
class GraphCounts:
    """A time range's edges as counts and latency histograms: the counts of adjacent ranges
    add up to those of the two together, so stored slices make any longer window.

    ``services`` and ``virtual`` describe the nodes the edges name; ``spans`` counts, and
    ``first_start_ns`` is the earliest of, the graph's spans that start in the range."""

    edges: dict[tuple[str, str, str], EdgeCounts] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    virtual: dict[str, tuple[str, str]] = field(default_factory=dict)
    unpaired_clients: int = 0
    unpaired_servers: int = 0
    spans: int = 0
    first_start_ns: int | None = None

    def merge(self, other: GraphCounts) -> None:
        for key, counts in other.edges.items():
            mine = self.edges.get(key)
            if mine is None:
                mine = self.edges[key] = EdgeCounts()
            mine.merge(counts)
        self.services |= other.services
        for name, node in other.virtual.items():
            self.virtual.setdefault(name, node)
        self.unpaired_clients += other.unpaired_clients
        self.unpaired_servers += other.unpaired_servers
        self.spans += other.spans
        if other.first_start_ns is not None and (self.first_start_ns is None
                                                 or other.first_start_ns < self.first_start_ns):
            self.first_start_ns = other.first_start_ns

    def graph(self, start_ns: int, end_ns: int) -> ServiceGraph:
        """The service graph these counts make over ``[start_ns, end_ns)`` (for the rates),
        with latency quantiles estimated from the histograms."""
        seconds = (end_ns - start_ns) / NS_PER_S
        edges = [Edge(client, server, ctype, c.requests, c.errors,
                      c.requests / seconds if seconds > 0 else 0.0,
                      _estimated(c.server), _estimated(c.client), _estimated(c.messaging))
                 for (client, server, ctype), c in sorted(self.edges.items())]
        used = {e.client for e in edges} | {e.server for e in edges}
        return ServiceGraph(_nodes(used, self.services, self.virtual), edges, start_ns,
                            end_ns, self.unpaired_clients, self.unpaired_servers)

    def to_json(self) -> bytes:
        return orjson.dumps({
            "edges": [[*key, c.requests, c.errors, c.server.to_list(), c.client.to_list(),
                       c.messaging.to_list()] for key, c in self.edges.items()],
            "services": sorted(self.services),
            "virtual": self.virtual,
            "unpaired": [self.unpaired_clients, self.unpaired_servers],
            "spans": self.spans,
            "first_start_ns": self.first_start_ns,
        })

    @classmethod
    def from_json(cls, stored: bytes | str) -> GraphCounts:
        data = orjson.loads(stored)
        histogram = LatencyHistogram.from_list
        edges = {(client, server, ctype): EdgeCounts(requests, errors, histogram(s),
                                                     histogram(c), histogram(m))
                 for client, server, ctype, requests, errors, s, c, m in data["edges"]}
        return cls(edges, set(data["services"]),
                   {name: (kind, system) for name, (kind, system) in data["virtual"].items()},
                   *data["unpaired"], data["spans"], data["first_start_ns"])


def sliced_graph_counts(
    spans: Iterable[GraphSpan],
    start_ns: int,
    end_ns: int,
    slice_ns: int,
    *,
    peer_attributes: Sequence[str] = DEFAULT_PEER_ATTRIBUTES,
    database_name_attributes: Sequence[str] = DEFAULT_DATABASE_NAME_ATTRIBUTES,
    pair_links: bool = True,
    max_gap_ns: int | None = None,
) -> dict[int, GraphCounts]:
    """The counts of each ``slice_ns`` slice of ``[start_ns, end_ns)`` (``start_ns`` a
    multiple of it; the last slice is cut short at ``end_ns`` if that is not), keyed by the
    slice's start, paired once over all the spans given (pass spans from a margin either
    side, as for ``service_graph``). Every slice has an entry, empty or not.

    Give ``max_gap_ns`` (and spans from that margin either side) to make each slice's
    counts depend only on the spans within the margin of it, however many slices are
    paired together: what lets stored slices be forgotten and paired again one by one."""
    if start_ns % slice_ns:
        raise ValueError("the range must start on a slice boundary")
    spans = spans if isinstance(spans, Sequence) else list(spans)
    slices = {at: GraphCounts() for at in range(start_ns, end_ns, slice_ns)}
    accs: dict[tuple[int, str, str, str], _Acc] = defaultdict(_Acc)

    def record(client: str, server: str, ctype: str, when: int, failed: bool,
               client_ns: int | None, server_ns: int | None, messaging_ns: int | None
               ) -> None:
        if start_ns <= when < end_ns:
            acc = accs[when - when % slice_ns, client, server, ctype]
            acc.requests += 1
            acc.errors += failed
            if client_ns is not None:
                acc.client.append(client_ns)
            if server_ns is not None:
                acc.server.append(server_ns)
            if messaging_ns is not None:
                acc.messaging.append(messaging_ns)

    def unpaired(is_client: bool, when: int) -> None:
        if start_ns <= when < end_ns:
            counts = slices[when - when % slice_ns]
            if is_client:
                counts.unpaired_clients += 1
            else:
                counts.unpaired_servers += 1

    services, virtual = _pair(spans, record, unpaired, peer_attributes,
                              database_name_attributes, pair_links, max_gap_ns)
    for s in spans:
        when = s[5]
        if start_ns <= when < end_ns:
            counts = slices[when - when % slice_ns]
            counts.spans += 1
            if counts.first_start_ns is None or when < counts.first_start_ns:
                counts.first_start_ns = when
    histogram = LatencyHistogram.of
    for (at, *key), a in accs.items():  # histograms from whole lists: much the cheaper
        slices[at].edges[tuple(key)] = EdgeCounts(a.requests, a.errors, histogram(a.server),
                                                  histogram(a.client), histogram(a.messaging))
    for counts in slices.values():  # each slice describes only the nodes it names
        used = {name for key in counts.edges for name in key[:2]}
        counts.services = used & services
        counts.virtual = {name: virtual[name] for name in used - services if name in virtual}
    return slices
