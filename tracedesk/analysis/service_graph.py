"""The service graph: who calls whom, how often, how often it fails and how long it takes,
as Grafana Tempo's service-graph processor defines it (``modules/generator/processor/
servicegraphs``, docs "Service graphs"), computed over stored spans instead of a live stream.

Tempo's rules, followed here:

* An edge is a pair of spans: a CLIENT or PRODUCER span, and the SERVER or CONSUMER span
  whose parent it is (the processor keys the client side by ``(trace, span id)`` and the
  server side by ``(trace, parent span id)``). Services are whatever the spans report, so a
  service calling itself is an edge like any other.
* ``connection_type`` is "" for client/server pairs and "messaging_system" when a PRODUCER or
  CONSUMER takes part. An edge failed when either span has status ERROR.
* Latency is recorded from both sides: ``server`` is the server span's duration
  (``traces_service_graph_request_server_seconds``), ``client`` the client span's
  (``..._client_seconds``); for messaging, ``messaging`` is the time from the producer's end
  to the consumer's start (``..._messaging_system_seconds``, off by default in Tempo;
  not recorded when skewed clocks make it zero or negative).
* Database calls need no server span: a CLIENT/PRODUCER span with any of
  ``database_name_attributes`` (Tempo's defaults ``db.namespace``, ``db.name``, ``db.system``;
  ``db.system.name``, its newer spelling, is added) makes a "database" edge at once. Its node is
  named by ``peer.service``, else ``server.address``, else ``network.peer.address[:port]``,
  else the first database name attribute present; its server latency is the client span's.
* Virtual nodes, once a span has no partner ("expired" in Tempo), connection_type
  "virtual_node":
  - a CLIENT/PRODUCER span whose server never reported, with a peer attribute (Tempo's
    ``peer_attributes`` defaults: ``peer.service``, ``db.name``, ``db.system``,
    ``db.system.name``; the first present names the node) becomes an edge to that node;
  - a SERVER/CONSUMER root span (no parent) becomes an edge from the node its own peer
    attribute names, or else from "user";
  - anything else unpaired is counted (``unpaired_clients``/``unpaired_servers``, Tempo's
    expired edges) but draws no edge.

Where this differs from Tempo, on purpose:

* Tempo pairs what arrives within ``wait`` (10 s); here everything in the input is paired
  regardless of order, and what is still unpaired is then treated as expired.
* A CONSUMER whose parent is not a known client span is paired through its span links with
  the linked PRODUCER/CLIENT spans, one edge per link, as the OpenTelemetry Collector's
  servicegraph connector (derived from Tempo's processor) does. Messaging instrumentation
  commonly starts the consumer's own trace with a link to the sender; without this the
  broker would show as a virtual node and each consumer as called by "user". Off with
  ``pair_links=False``.
* Several server spans with the same parent client span (a message consumed by several
  groups) each make an edge with that client; Tempo keeps whichever came first or last.
* Spans with the same (trace id, span id) count once: the last one given wins, as the store
  replaces a re-sent span.
* The missing side of a virtual edge has no latency here (Tempo observes 0 s for it).
* Attributes are read from the span only (Tempo also looks at resource attributes for the
  database rules; they are rarely set there).

``tracedesk.analysis.graph_counts`` keeps the same pairs as counts that add up across time
slices, for the stored rollups.

Only spans whose edge starts inside ``[start_ns, end_ns)`` count (the client span's start, or
the server span's when there is no client); give the spans of a slightly wider window so that
pairs straddling the window's start still pair.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from tracedesk.analysis.span_metrics import NS_PER_S, QUANTILES, exact_quantile

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
_CLIENT_KINDS = frozenset({CLIENT, PRODUCER})
_SERVER_KINDS = frozenset({SERVER, CONSUMER})
ERROR = 2
USER = "user"

# Connection types (Tempo's ``connection_type`` label values).
DIRECT = ""
MESSAGING = "messaging_system"
DATABASE = "database"
VIRTUAL = "virtual_node"


class GraphSpan(NamedTuple):
    """The columns and attributes the graph needs; one ``SELECT`` with ``json_extract`` on the
    attributes column yields these. Attribute fields are None when absent."""

    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str
    kind: int
    start_time_unix_nano: int
    duration_ns: int
    status_code: int
    peer_service: str | None = None
    db_namespace: str | None = None
    db_name: str | None = None
    db_system: str | None = None
    db_system_name: str | None = None
    server_address: str | None = None
    network_peer_address: str | None = None
    network_peer_port: str | int | None = None
    messaging_system: str | None = None
    # (trace id, span id) of each linked span; readers fill it for CONSUMER spans only
    # (None or empty: no links).
    links: tuple[tuple[str, str], ...] | None = None


# Attribute key -> GraphSpan field index: the attributes a GraphSpan carries, in field order.
ATTRIBUTES: dict[str, int] = {
    "peer.service": 8, "db.namespace": 9, "db.name": 10, "db.system": 11,
    "db.system.name": 12, "server.address": 13, "network.peer.address": 14,
    "network.peer.port": 15, "messaging.system": 16,
}
DEFAULT_PEER_ATTRIBUTES = ("peer.service", "db.name", "db.system", "db.system.name")
DEFAULT_DATABASE_NAME_ATTRIBUTES = ("db.namespace", "db.name", "db.system", "db.system.name")


@dataclass(frozen=True, slots=True)
class LatencyStats:
    count: int
    min_ns: int
    max_ns: int
    mean_ns: float
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    virtual: bool
    kind: str          # "service", "database", "messaging", "peer" or "user"
    system: str = ""   # db.system(.name) or messaging.system of a virtual node, if known


@dataclass(frozen=True, slots=True)
class Edge:
    client: str
    server: str
    connection_type: str  # "", "messaging_system", "database" or "virtual_node"
    requests: int
    errors: int
    rate: float                            # requests per second over the window
    server_latency: LatencyStats | None    # None when that side is not known
    client_latency: LatencyStats | None
    messaging_latency: LatencyStats | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class ServiceGraph:
    nodes: list[Node]
    edges: list[Edge]
    start_ns: int
    end_ns: int
    unpaired_clients: int = 0
    unpaired_servers: int = 0

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def edge(self, client: str, server: str, connection_type: str | None = None) -> Edge | None:
        return next((e for e in self.edges if e.client == client and e.server == server
                     and (connection_type is None or e.connection_type == connection_type)),
                    None)


def _attr(span: GraphSpan, index: int) -> str:
    value = span[index]
    return "" if value is None else str(value)


def _first(span: GraphSpan, indices: Sequence[int]) -> str:
    for i in indices:
        value = span[i]
        if value is not None and value != "":
            return str(value)
    return ""


def _indices(names: Sequence[str]) -> tuple[int, ...]:
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"GraphSpan carries no attribute {unknown[0]!r}; known: "
                         f"{', '.join(ATTRIBUTES)}")
    return tuple(ATTRIBUTES[n] for n in names)


def _database_node(span: GraphSpan, db_indices: tuple[int, ...]) -> str:
    """Tempo's database node name, or "" when the span is not a database call."""
    for i in db_indices:
        value = span[i]
        if value is not None and value != "":
            fallback = str(value)
            break
    else:
        return ""
    for i in (8, 13):  # peer.service, server.address
        value = span[i]
        if value is not None and value != "":
            return str(value)
    host = _attr(span, 14)
    if host:
        port = _attr(span, 15)
        return f"{host}:{port}" if port else host
    return fallback



# record(client, server, connection type, when, failed, client ns, server ns, messaging ns)
Record = Callable[[str, str, str, int, bool, int | None, int | None, int | None], None]
# unpaired(True for a client span / False for a server span, its start)
Unpaired = Callable[[bool, int], None]


def _pair(spans: Sequence[GraphSpan], record: Record, unpaired: Unpaired,
          peer_attributes: Sequence[str], database_name_attributes: Sequence[str],
          pair_links: bool, max_gap_ns: int | None = None
          ) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Pair the spans into edges, calling ``record`` per edge observation and ``unpaired``
    per span left without a partner; the services seen and the virtual nodes named
    (name -> (kind, system)). With ``max_gap_ns``, two spans pair only if their starts are
    at most that far apart (Tempo's ``wait``)."""
    peer_idx = _indices(peer_attributes)
    db_idx = _indices(database_name_attributes)
    # Deduplicate (last wins) and split into the two sides of an edge.
    services = {s[3] for s in spans}
    clients = {(s[0], s[1]): s for s in spans if s[4] == CLIENT or s[4] == PRODUCER}
    servers = {(s[0], s[1]): s for s in spans if s[4] == SERVER or s[4] == CONSUMER}
    virtual: dict[str, tuple[str, str]] = {}

    # Database calls complete on the client span alone (Tempo: upsertDatabaseRequest).
    databases: set[tuple[str, str]] = set()
    for key, c in clients.items():
        name = _database_node(c, db_idx)
        if name:
            databases.add(key)
            if name not in virtual:
                virtual[name] = ("database", _attr(c, 12) or _attr(c, 11))
            record(c[3], name, DATABASE, c[5], c[7] == ERROR, c[6], c[6], None)

    paired: set[tuple[str, str]] = set()

    def pair(c: GraphSpan, s: GraphSpan) -> None:
        messaging = c[4] == PRODUCER or s[4] == CONSUMER
        # Producer end to consumer start; Tempo skips it when clocks make it <= 0.
        gap = s[5] - (c[5] + c[6]) if messaging else 0
        record(c[3], s[3], MESSAGING if messaging else DIRECT, c[5],
               c[7] == ERROR or s[7] == ERROR, c[6], s[6], gap if gap > 0 else None)

    def near(c: GraphSpan, s: GraphSpan) -> bool:
        return max_gap_ns is None or abs(s[5] - c[5]) <= max_gap_ns

    for s in servers.values():
        trace_id, parent = s[0], s[2]
        key = (trace_id, parent)
        if parent and key in clients and near(clients[key], s):
            if key not in databases:  # Tempo lets the database edge win; the server is dropped
                paired.add(key)
                pair(clients[key], s)
            else:
                unpaired(False, s[5])
            continue
        if pair_links and s[4] == CONSUMER and s[17]:
            linked = [k for k in s[17]
                      if k in clients and k not in databases and near(clients[k], s)]
            for k in linked:
                paired.add(k)
                pair(clients[k], s)
            if linked:
                continue
        if not parent:
            # A root server span: the caller is not instrumented (Tempo: onExpire, IsRoot).
            caller = _first(s, peer_idx)
            if caller:
                virtual.setdefault(caller, ("peer", ""))
            else:
                caller = USER
                virtual.setdefault(caller, ("user", ""))
            record(caller, s[3], VIRTUAL, s[5], s[7] == ERROR, None, s[6], None)
        else:
            unpaired(False, s[5])

    for key, c in clients.items():
        if key in paired or key in databases:
            continue
        peer = _first(c, peer_idx)
        if not peer:
            unpaired(True, c[5])
            continue
        system = _attr(c, 16)
        messaging = c[4] == PRODUCER or bool(system)
        virtual.setdefault(peer, ("messaging", system) if messaging else ("peer", ""))
        record(c[3], peer, VIRTUAL, c[5], c[7] == ERROR, c[6], None, None)
    return services, virtual


def _nodes(used: set[str], services: set[str], virtual: dict[str, tuple[str, str]]
           ) -> list[Node]:
    nodes = []
    for name in sorted(used):
        if name in services:
            nodes.append(Node(name, False, "service"))
        else:
            kind, system = virtual.get(name, ("peer", ""))
            nodes.append(Node(name, True, kind, system))
    return nodes


@dataclass(slots=True)
class _Acc:
    """One edge's observations while pairing."""

    requests: int = 0
    errors: int = 0
    server: list[int] = field(default_factory=list)
    client: list[int] = field(default_factory=list)
    messaging: list[int] = field(default_factory=list)


def _latency(values: list[int]) -> LatencyStats | None:
    if not values:
        return None
    values.sort()
    p50, p95, p99 = (exact_quantile(values, q) for q in QUANTILES)
    return LatencyStats(len(values), values[0], values[-1], sum(values) / len(values),
                        p50, p95, p99)


def service_graph(
    spans: Iterable[GraphSpan],
    start_ns: int,
    end_ns: int,
    *,
    peer_attributes: Sequence[str] = DEFAULT_PEER_ATTRIBUTES,
    database_name_attributes: Sequence[str] = DEFAULT_DATABASE_NAME_ATTRIBUTES,
    pair_links: bool = True,
) -> ServiceGraph:
    """Build the service graph of the edges that start in ``[start_ns, end_ns)``, with
    exact latency quantiles."""
    spans = spans if isinstance(spans, Sequence) else list(spans)
    accs: dict[tuple[str, str, str], _Acc] = defaultdict(_Acc)
    lonely = [0, 0]  # unpaired servers, clients

    def record(client: str, server: str, ctype: str, when: int, failed: bool,
               client_ns: int | None, server_ns: int | None, messaging_ns: int | None
               ) -> None:
        if start_ns <= when < end_ns:
            acc = accs[client, server, ctype]
            acc.requests += 1
            acc.errors += failed
            if client_ns is not None:
                acc.client.append(client_ns)
            if server_ns is not None:
                acc.server.append(server_ns)
            if messaging_ns is not None:
                acc.messaging.append(messaging_ns)

    def unpaired(is_client: bool, when: int) -> None:
        lonely[is_client] += start_ns <= when < end_ns

    services, virtual = _pair(spans, record, unpaired, peer_attributes,
                              database_name_attributes, pair_links)
    seconds = (end_ns - start_ns) / NS_PER_S
    edges = [Edge(client, server, ctype, a.requests, a.errors,
                  a.requests / seconds if seconds > 0 else 0.0,
                  _latency(a.server), _latency(a.client), _latency(a.messaging))
             for (client, server, ctype), a in sorted(accs.items())]
    used = {e.client for e in edges} | {e.server for e in edges}
    return ServiceGraph(_nodes(used, services, virtual), edges, start_ns, end_ns,
                        lonely[True], lonely[False])
