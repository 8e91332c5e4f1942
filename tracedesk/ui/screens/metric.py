"""The Metric screen: one metric's streams as charts over the window, and its exemplars.

Each stream (service and attribute set) gets a chart: a gauge's or up-down counter's
values, a counter's rate per second, a histogram's estimated p50/p95/p99 per interval next
to its bucket distribution over the window, a summary's own quantiles. Exemplars link
measurements to spans: enter opens the trace at the span. Recomputed at most every couple
of seconds while data arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from tracedesk.analysis.metric_format import format_rate, format_value
from tracedesk.analysis.metric_series import (
    HISTOGRAMS,
    bars,
    histogram_series,
    is_rate,
    rates,
    summary_quantiles,
    values,
)
from tracedesk.store.metric_queries import (
    Exemplar,
    StreamPoints,
    exemplars,
    metric_streams,
    newest_point,
)
from tracedesk.store.reader import Reader
from tracedesk.ui.screens.metrics import compact_attributes, differing_first, type_label
from tracedesk.ui.screens.throttled import ThrottledScreen
from tracedesk.ui.text import clean, format_clock, service_colour
from tracedesk.ui.widgets.chart import Chart, Line, bars_text
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.key_table import KeyTable
from tracedesk.ui.widgets.status_bar import StatusBar

MAX_CHARTS = 12
CHART_STEPS = 240  # points per stream read from the store: more than a chart can draw
BAR_ROWS = 8
BARS_WIDTH = 46
QUANTILE_COLOURS = {0.5: "#87d787", 0.95: "#ffd75f", 0.99: "#ff5f5f"}
LINE_COLOUR = "#5fafff"
DIM = Style(dim=True)


@dataclass(frozen=True)
class Panel:
    """One stream's chart, as the screen draws it."""

    title: Text
    lines: list[Line]
    label: Callable[[float], str]
    distribution: Text | None  # a histogram's buckets


@dataclass(frozen=True)
class _Computed:
    start_ns: int
    end_ns: int
    description: str
    kind: str
    unit: str
    streams: int
    panels: list[Panel]
    exemplars: list[Exemplar]


def _quantile_name(q: float) -> str:
    return f"p{q * 100:g}"


def _title(stream: StreamPoints, attributes: dict[str, Any], summary: str,
           legend: list[Line]) -> Text:
    """Service, what the chart says in short, its legend, then the attribute set (which
    may be long: the line is cut at its end, so it is given what tells it apart first)."""
    key = stream.key
    title = Text(no_wrap=True, overflow="ellipsis")
    title.append(clean(key.service_name), Style(color=service_colour(key.service_name),
                                                bold=True))
    if summary:
        title.append("  " + summary)
    for line in legend:
        title.append("  ━ ", Style(color=line.colour))
        title.append(line.label, DIM)
    shown = compact_attributes(attributes)
    title.append("  " + (clean(shown) if shown else "(no attributes)"), DIM)
    return title


def panel(stream: StreamPoints, since_ns: int, attributes: dict[str, Any]) -> Panel:
    """What the chart of one stream shows (pure: computed in the worker). ``attributes``
    is the stream's attribute set in the order its title shows it."""
    key, points = stream.key, stream.points
    title = partial(_title, stream, attributes)
    unit = key.unit

    def value_label(v: float) -> str:
        return format_value(v, unit)

    if key.type in HISTOGRAMS:
        series = histogram_series(points, key.type, stream.temporality, since_ns)
        lines = [Line(_quantile_name(q), QUANTILE_COLOURS[q], samples)
                 for q, samples in series.quantiles().items()]
        total = series.distribution
        rows = bars(total, BAR_ROWS) if total is not None else []
        summary = f"{series.count:,} observations"
        if total is not None and total.total:
            summary += " · p95 " + value_label(total.quantile(0.95))
        return Panel(title(summary, lines), lines, value_label,
                     bars_text(rows, value_label, BARS_WIDTH))
    if key.type == "summary":
        lines = [Line(_quantile_name(q), QUANTILE_COLOURS.get(q, LINE_COLOUR), samples)
                 for q, samples in summary_quantiles(points).items()]
        return Panel(title("", lines), lines, value_label, None)
    if is_rate(key.type, stream.temporality, stream.monotonic):
        samples = rates(points, stream.temporality, since_ns)
        latest = f"rate {format_rate(samples[-1][1], unit)}" if samples else ""
        line = Line("per second", LINE_COLOUR, samples)
        return Panel(title(latest, [line]), [line],
                     lambda v: format_rate(v, unit), None)
    samples = values(points)
    latest = f"latest {value_label(samples[-1][1])}" if samples else ""
    line = Line("value", LINE_COLOUR, samples)
    return Panel(title(latest, [line]), [line], value_label, None)


class _PanelWidgets:
    """One chart's block: title, chart and (histograms) bucket distribution."""

    def __init__(self, has_buckets: bool) -> None:
        self.title = Static("", classes="metric-title")
        self.chart = Chart()
        self.buckets = Static("", classes="metric-buckets") if has_buckets else None

    def block(self) -> Vertical:
        parts = [self.chart] if self.buckets is None else [self.chart, self.buckets]
        return Vertical(self.title, Horizontal(*parts, classes="metric-chart-row"),
                        classes="metric-panel")


class MetricScreen(ThrottledScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="metric.back"),
        Binding("enter", "open_exemplar", "Open trace", id="metric.open_trace"),
        Binding("w", "next_window", "Window", id="metric.window"),
        # j/k move through the exemplars; the charts scroll with the same keys, shifted.
        Binding("J", "next_chart", "Next chart", id="metric.next_chart"),
        Binding("K", "previous_chart", "Previous chart", show=False,
                id="metric.previous_chart"),
    ]

    def __init__(self, name: str, window_ns: int, window_name: str) -> None:
        super().__init__(id="metric")
        self.metric = name
        self.window_ns = window_ns
        self.window_name = window_name
        self._exemplars: list[Exemplar] = []
        self._panels: list[_PanelWidgets] | None = None  # the charts' widgets on screen

    def compose(self) -> ComposeResult:
        yield Static("", id="metric-header")
        yield VerticalScroll(id="metric-body")
        yield Static("", id="exemplars-title")
        yield KeyTable(id="exemplars", cursor_type="row", zebra_stripes=False)
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "value", "service", "trace id", "span id", "attributes")
        table.focus()

    # --- data -------------------------------------------------------------------------

    def recompute(self) -> None:
        self._compute(self.metric, self.window_ns)

    @work(thread=True, exclusive=True, group="metric", exit_on_error=False)
    def _compute(self, name: str, window_ns: int) -> None:
        def query(reader: Reader) -> tuple[int, list[StreamPoints], list[Exemplar]]:
            newest = newest_point(reader, name)
            if newest is None:
                return 0, [], []
            since = newest - window_ns
            return (newest, metric_streams(reader, name, since, newest, CHART_STEPS),
                    exemplars(reader, name, since))

        newest, streams, found = self.app.data.read_long(query)
        since, end = newest - window_ns, newest + 1
        # Less data than the window: the charts span the data rather than mostly blanks.
        start = max(since, min((s.points[0].time_unix_nano for s in streams if s.points),
                               default=since))
        charted = streams[:MAX_CHARTS]
        panels = [panel(s, since, attributes) for s, attributes in
                  zip(charted, differing_first([s.attributes for s in charted]), strict=True)]
        first = streams[0] if streams else None
        computed = _Computed(
            start, end, first.description if first else "",
            type_label(first.key.type, first.temporality, first.monotonic) if first else "",
            first.key.unit if first else "", len(streams), panels, found)
        self.app.call_from_thread(self._show, computed)

    def _show(self, computed: _Computed) -> None:
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(clean(self.metric), "bold")
        if computed.kind:
            header.append(f"  {computed.kind}", DIM)
        if computed.unit:
            header.append(f"  {clean(computed.unit)}", DIM)
        header.append(f" · last {self.window_name} of data · {computed.streams} streams", DIM)
        if computed.streams > MAX_CHARTS:
            header.append(f" (first {MAX_CHARTS} shown)", DIM)
        if computed.description:
            header.append("\n" + clean(computed.description), DIM)
        self.query_one("#metric-header", Static).update(header)
        self._show_panels(computed)
        self._show_exemplars(computed.exemplars, computed.unit)

    def _show_panels(self, computed: _Computed) -> None:
        if self._panels is None or len(computed.panels) != len(self._panels):
            # Streams came or went: build the blocks again (otherwise they are updated).
            body = self.query_one("#metric-body", VerticalScroll)
            body.remove_children()
            self._panels = [_PanelWidgets(p.distribution is not None) for p in computed.panels]
            body.mount_all([panel.block() for panel in self._panels] or [
                Vertical(Static(Text("no points in this window", DIM)),
                         classes="metric-panel")])
        for widgets, p in zip(self._panels, computed.panels, strict=True):
            widgets.title.update(p.title)
            widgets.chart.plot(p.lines, computed.start_ns, computed.end_ns, p.label)
            if widgets.buckets is not None:
                widgets.buckets.update(p.distribution or "")

    def _show_exemplars(self, found: list[Exemplar], unit: str) -> None:
        title = Text(f"exemplars · {len(found):,}", "bold")
        title.append("   enter: open the trace at the span" if found else
                     "   none recorded in this window", DIM)
        self.query_one("#exemplars-title", Static).update(title)
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        self._exemplars = found
        for e in found:
            table.add_row(
                Text(format_clock(e.time_unix_nano), DIM),
                Text(format_value(e.value, unit), justify="right"),
                Text(clean(e.service_name), Style(color=service_colour(e.service_name))),
                Text(clean(e.trace_id) or "-"), Text(clean(e.span_id) or "-", DIM),
                Text(clean(compact_attributes(e.filtered_attributes or e.attributes)), DIM))
        if found:
            table.move_cursor(row=min(cursor, len(found) - 1))

    # --- keys -------------------------------------------------------------------------

    def action_next_window(self) -> None:
        from tracedesk.ui.screens.metrics import WINDOW_NAMES, WINDOWS_NS

        index = (WINDOWS_NS.index(self.window_ns) + 1) % len(WINDOWS_NS) \
            if self.window_ns in WINDOWS_NS else 0
        self.window_ns, self.window_name = WINDOWS_NS[index], WINDOW_NAMES[index]
        self.reload(force=True)

    def action_next_chart(self) -> None:
        self._scroll_charts(1)

    def action_previous_chart(self) -> None:
        self._scroll_charts(-1)

    def _scroll_charts(self, step: int) -> None:
        """Bring the next (or previous) chart to the top of the charts area."""
        body = self.query_one("#metric-body", VerticalScroll)
        tops = [block.virtual_region.y for block in body.query(".metric-panel")]
        here = round(body.scroll_y)
        targets = ([top for top in tops if top > here] if step > 0
                   else [top for top in tops if top < here][-1:])
        if targets:
            body.scroll_to(y=targets[0], animate=False)

    @on(DataTable.RowSelected, "#exemplars")
    def action_open_exemplar(self) -> None:
        table = self.query_one(DataTable)
        if not self._exemplars or not 0 <= table.cursor_row < len(self._exemplars):
            return
        exemplar = self._exemplars[table.cursor_row]
        if not exemplar.trace_id:
            self.notify("This exemplar is not tied to a trace.", timeout=4)
            return
        self.app.open_trace(exemplar.trace_id, exemplar.span_id)
