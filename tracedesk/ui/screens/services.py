"""The Services screen: the service graph over a recent window, as a call tree or a table.

The graph is built like Tempo's service-graph processor (see ``analysis.service_graph``)
over the window ending at the newest stored trace, so old or imported data shows too: from
the writer's rollups of its closed 10-second slices and the spans of the rest (see
``store.graph_rollups``). It is recomputed at most every few seconds while data arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tracedesk.analysis.call_tree import CallRow, call_tree
from tracedesk.analysis.graph_counts import GraphCounts
from tracedesk.analysis.service_graph import Edge, ServiceGraph
from tracedesk.analysis.span_metrics import NS_PER_S
from tracedesk.analysis.time_axis import format_duration
from tracedesk.analysis.waterfall import tree_prefix
from tracedesk.store.graph_rollups import slice_of, window_counts
from tracedesk.store.reader import Reader
from tracedesk.ui.screens.throttled import ThrottledScreen
from tracedesk.ui.text import clean, service_colour
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.key_table import KeyTable
from tracedesk.ui.widgets.status_bar import StatusBar

WINDOWS_NS = (5 * 60 * 10**9, 15 * 60 * 10**9, 60 * 60 * 10**9)
WINDOW_NAMES = ("5m", "15m", "1h")
NODE_KINDS = {"database": "database", "messaging": "queue", "peer": "external",
              "user": "entry"}
ERROR_STYLE = Style(color="#ff5f5f", bold=True)
DIM = Style(dim=True)


@dataclass(frozen=True)
class _Computed:
    graph: ServiceGraph
    spans: int
    seconds: float


class ServicesScreen(ThrottledScreen):
    # The rollups make a recompute cheap; a window of a flood (paired from spans) is not,
    # so the screen spends at most a fifth of the time recomputing.
    MIN_RELOAD_SECONDS = 2.0
    RELOAD_COST_FACTOR = 5.0
    BINDINGS = [
        Binding("enter", "traces", "Traces", id="services.traces"),
        Binding("w", "next_window", "Window", id="services.window"),
        Binding("t", "toggle_view", "Tree/table", id="services.view"),
    ]

    def __init__(self) -> None:
        super().__init__(id="services")
        self.window = 0  # 5 minutes: the cheapest, and what a developer just did
        self.as_table = False
        self._graph: ServiceGraph | None = None
        # row key -> the service whose traces it lists (None: an entry point, no spans)
        self._services: dict[str, str | None] = {}
        # Read while the screen is built: a worker started once it is shown waits for the
        # first frame (~40 ms) before its thread runs. The first resume counts as done.
        self._early: _Computed | None = None
        self._built = self._resumed = False
        self._compute_seconds = 0.0
        self.reload(force=True)

    def compose(self) -> ComposeResult:
        yield Static("", id="services-banner")
        yield KeyTable(id="services-table", cursor_type="row", zebra_stripes=False)
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # Numbers are right-aligned: so are their headers.
        table.add_columns("calls", "kind", *(Text(label, justify="right") for label in
                                             ("req/s", "errors", "p50", "p95", "requests")))
        table.focus()
        self._built = True
        if self._early is not None:  # the first read ended before the screen was built
            self._show(self._early)

    def on_screen_resume(self) -> None:
        if self._resumed:
            super().on_screen_resume()
        self._resumed = True

    # --- data -------------------------------------------------------------------------

    def reload_seconds(self) -> float:
        return max(self.MIN_RELOAD_SECONDS, self.RELOAD_COST_FACTOR * self._compute_seconds)

    def recompute(self) -> None:
        self._compute(WINDOWS_NS[self.window])

    @work(thread=True, exclusive=True, group="service-graph", exit_on_error=False)
    def _compute(self, window_ns: int) -> None:
        started = self.app.clock()

        def query(reader: Reader) -> tuple[int, int, GraphCounts]:
            newest = reader.newest_trace_start()
            if newest is None:
                return 0, 0, GraphCounts()
            end = newest + 1
            start = slice_of(end - window_ns)  # whole slices: a few seconds more
            return start, end, window_counts(reader.conn, start, end)

        start, end, counts = self.app.data.read_long(query)
        graph = counts.graph(observed_start(counts.first_start_ns, start, end), end)
        self.app.call_from_thread(self._show, _Computed(graph, counts.spans,
                                                        self.app.clock() - started))

    def _show(self, computed: _Computed) -> None:
        if not self._built:
            self._early = computed
            return
        self._early = None
        self._graph = computed.graph
        self._compute_seconds = computed.seconds
        banner = Text(no_wrap=True, overflow="ellipsis")
        banner.append(f"service graph · last {WINDOW_NAMES[self.window]} of data", "bold")
        graph = computed.graph
        covered_ns = graph.end_ns - graph.start_ns
        if covered_ns < WINDOWS_NS[self.window]:
            banner.append(f" ({format_duration(covered_ns)} received)", "bold")
        banner.append(f" · {len(computed.graph.nodes)} nodes, {len(computed.graph.edges)} "
                      f"edges from {computed.spans:,} spans in {computed.seconds * 1000:.0f} ms",
                      DIM)
        banner.append("   w: window · t: " + ("tree" if self.as_table else "table"), DIM)
        self.query_one("#services-banner", Static).update(banner)
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value \
            if table.row_count else None
        table.clear()
        self._services.clear()
        graph = self._graph
        if graph is None:
            return
        if self.as_table:
            for edge in sorted(graph.edges, key=lambda e: (-e.rate, e.client, e.server)):
                key = f"{edge.client}\0{edge.server}\0{edge.connection_type}"
                self._services[key] = edge.server if _is_service(graph, edge.server) \
                    else edge.client
                table.add_row(_edge_label(graph, edge), *_edge_cells(graph, edge), key=key)
        else:
            for index, row in enumerate(call_tree(graph)):
                key = f"{index}\0{row.node}"
                if _is_service(graph, row.node):
                    self._services[key] = row.node
                else:  # a database or peer: its caller's traces; an entry point: none
                    self._services[key] = row.edge.client if row.edge else None
                cells = _edge_cells(graph, row.edge) if row.edge else _node_kind_only(graph,
                                                                                    row.node)
                table.add_row(_tree_label(graph, row), *cells, key=key)
        if keep is not None and keep in self._services:
            table.move_cursor(row=table.get_row_index(keep))

    # --- keys -------------------------------------------------------------------------

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS_NS)
        self.reload(force=True)

    def action_toggle_view(self) -> None:
        self.as_table = not self.as_table
        if self._graph is not None:
            self._fill()

    @on(DataTable.RowSelected)
    def action_traces(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key not in self._services:
            return
        service = self._services[key]
        if service is None:
            node = key.split("\0")[-1]
            self.notify(f"{clean(node)} is not an instrumented service: it has no spans of "
                        "its own. Choose a service it calls.", timeout=5, markup=False)
            return
        from tracedesk.ui.commands import show_service

        show_service(self.app, service)


def observed_start(first_ns: int | None, start_ns: int, end_ns: int) -> int:
    """Where the data in ``[start_ns, end_ns)`` begins (its first span starts at
    ``first_ns``), so rates are per second of data: a receiver that started a minute ago
    has received a minute of calls, not five. At least a second before the end, so one
    lone trace does not make a rate of thousands."""
    first = start_ns if first_ns is None else first_ns
    return max(start_ns, min(first, end_ns - NS_PER_S))


def _is_service(graph: ServiceGraph, name: str) -> bool:
    node = graph.node(name)
    return node is not None and not node.virtual


def _node_text(graph: ServiceGraph, name: str) -> Text:
    node = graph.node(name)
    style = DIM if node is not None and node.virtual else Style(color=service_colour(name))
    return Text(clean(name), style)


def _tree_label(graph: ServiceGraph, row: CallRow) -> Text:
    label = Text(tree_prefix(row), DIM)
    if row.edge is not None and row.edge.connection_type == "messaging_system":
        label.append("⇢ ", DIM)  # through a queue
    label.append_text(_node_text(graph, row.node))
    if row.repeated:
        label.append(" ↑", DIM)
    return label


def _edge_label(graph: ServiceGraph, edge: Edge) -> Text:
    label = _node_text(graph, edge.client)
    label.append(" ⇢ " if edge.connection_type == "messaging_system" else " → ", DIM)
    label.append_text(_node_text(graph, edge.server))
    return label


def _kind(graph: ServiceGraph, name: str) -> Text:
    node = graph.node(name)
    if node is None or not node.virtual:
        return Text("service", DIM)
    kind = NODE_KINDS.get(node.kind, node.kind)
    return Text(f"{kind} ({clean(node.system)})" if node.system else kind, DIM)


def _node_kind_only(graph: ServiceGraph, name: str) -> list[Text]:
    return [_kind(graph, name), Text(""), Text(""), Text(""), Text(""), Text("")]


def _edge_cells(graph: ServiceGraph, edge: Edge) -> list[Text]:
    latency = edge.server_latency or edge.client_latency
    errors = Text(f"{edge.error_rate:.1%}", ERROR_STYLE if edge.errors else DIM, justify="right")
    return [
        _kind(graph, edge.server),
        Text(f"{edge.rate:,.2f}", justify="right"),
        errors,
        Text(format_duration(latency.p50) if latency else "-", justify="right"),
        Text(format_duration(latency.p95) if latency else "-", justify="right"),
        Text(f"{edge.requests:,}", justify="right"),
    ]
