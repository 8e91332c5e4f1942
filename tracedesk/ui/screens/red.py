"""RED metrics around one span: rate, errors and latency of its operation and its service,
computed from stored spans like Tempo's span-metrics processor, with the span's own duration
placed in its operation's distribution ("slower than 97% of its kind")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Sparkline, Static

from tracedesk.analysis.span_metrics import (
    NS_PER_S,
    Series,
    SpanSample,
    by_operation,
    by_service,
    percentile_rank,
    red_series,
)
from tracedesk.analysis.time_axis import format_duration
from tracedesk.model import Span, SpanKind
from tracedesk.ui.text import clean, format_clock, service_colour
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.status_bar import StatusBar

MINUTE_NS = 60 * 10**9
# Either side of the span: a minute for a burst of local requests, up to an hour.
HALF_WINDOWS_NS = (MINUTE_NS, 5 * MINUTE_NS, 15 * MINUTE_NS, 60 * MINUTE_NS)
STEPS = 30
DIM = Style(dim=True)
ERROR = Style(color="#ff5f5f", bold=True)
ROWS = ("rate", "errors", "p50", "p95", "p99")


@dataclass(frozen=True)
class _Red:
    operation: Series | None
    service: Series | None
    seconds: float  # the time the read and computation took
    covered_seconds: float  # the part of the window the service's spans cover


def covered_seconds(samples: list[SpanSample], start_ns: int, end_ns: int) -> float:
    """The seconds of ``[start_ns, end_ns)`` that the samples cover, first to last start
    (at least one): a window centred on a recent span reaches into the future, and one
    around an app's first minute into the time before it ran. Rates are per second of data."""
    starts = [s[3] for s in samples if start_ns <= s[3] < end_ns]
    if not starts:
        return max(1.0, (end_ns - start_ns) / NS_PER_S)
    return max(1.0, (max(starts) - min(starts)) / NS_PER_S)


def _kind_name(kind: int) -> str:
    try:
        return SpanKind(kind).name.lower()
    except ValueError:
        return str(kind)


class RedScreen(Screen):
    """Opened with ``m`` from a span."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="red.back"),
        Binding("w", "next_window", "Window", id="red.window"),
    ]

    def __init__(self, span: Span) -> None:
        super().__init__(classes="red-screen")
        self.span = span
        self.window = 1

    def compose(self) -> ComposeResult:
        yield Static(id="red-header")
        yield Static(id="red-verdict")
        with VerticalScroll(id="red-body"):
            for group in ("operation", "service"):
                yield Static(id=f"red-{group}-title", classes="red-title")
                with Grid(classes="red-grid"):
                    for row in ROWS:
                        yield Static(row, classes="red-label")
                        yield Sparkline([], id=f"red-{group}-{row}", classes="red-spark")
                        yield Static("", id=f"red-{group}-{row}-value", classes="red-value")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        self._compute(HALF_WINDOWS_NS[self.window])

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(HALF_WINDOWS_NS)
        self._compute(HALF_WINDOWS_NS[self.window])

    @work(thread=True, exclusive=True, group="red", exit_on_error=False)
    def _compute(self, half_ns: int) -> None:
        started = self.app.clock()
        span = self.span
        start = span.start_time_unix_nano - half_ns
        end = span.start_time_unix_nano + half_ns
        step = max(1, (end - start) // STEPS)

        # One pass over the service's spans of the window (read through the block ranges
        # of start times, store.span_blocks), the operation's picked out of them.
        service = self.app.data.read_long(
            lambda reader: reader.span_samples(start, end, span.service_name))
        op_series = red_series(
            [s for s in service if s[1] == span.name and s[2] == span.kind], start, end, step,
            key=by_operation)
        svc_series = red_series(service, start, end, step, key=by_service)
        red = _Red(op_series.get((span.service_name, span.name, span.kind)),
                   svc_series.get(span.service_name), self.app.clock() - started,
                   covered_seconds(service, start, end))
        self.app.call_from_thread(self._show, red, start, end)

    def _show(self, red: _Red, start: int, end: int) -> None:
        span = self.span
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append("RED  ", "bold")
        header.append(clean(span.service_name), Style(color=service_colour(span.service_name)))
        header.append(f"  {clean(span.name)}", "bold")
        header.append(f"  ({_kind_name(span.kind)})", DIM)
        header.append(f"   {format_clock(start)} – {format_clock(end)} around the span"
                      f" · {red.seconds * 1000:.0f} ms", DIM)
        self.query_one("#red-header", Static).update(header)
        self.query_one("#red-verdict", Static).update(self._verdict(red.operation))
        self._fill("operation", red.operation, red.covered_seconds, Text.assemble(
            ("Operation ", "bold"), (clean(span.name), "bold"),
            (f"  {_kind_name(span.kind)} spans of {clean(span.service_name)}", DIM)))
        self._fill("service", red.service, red.covered_seconds, Text.assemble(
            ("Service ", "bold"),
            (clean(span.service_name), Style(color=service_colour(span.service_name),
                                             bold=True)),
            ("  all its spans", DIM)))

    def _verdict(self, series: Series | None) -> Text:
        span = self.span
        text = Text()
        text.append(f"This span took {format_duration(span.duration_ns)}")
        if series is None or not series.durations:
            text.append(" · no other calls of its kind in the window", DIM)
            return text
        rank = percentile_rank(series.durations, span.duration_ns, ordered=True)
        calls = len(series.durations)
        text.append(": slower than ")
        text.append(f"{rank:.1f}%" if not math.isnan(rank) else "?",
                    ERROR if rank >= 95 else "bold")
        text.append(f" of the {calls:,} calls of its kind in the window")
        return text

    def _fill(self, group: str, series: Series | None, seconds: float, title: Text) -> None:
        self.query_one(f"#red-{group}-title", Static).update(title)
        values: dict[str, list[float]] = {row: [] for row in ROWS}
        summary: dict[str, str] = dict.fromkeys(ROWS, "-")
        if series is not None:
            values["rate"] = series.rates
            values["errors"] = [e or 0.0 for e in series.error_rates]
            for q in ("p50", "p95", "p99"):
                values[q] = [v or 0.0 for v in series.quantile(q)]
            total = series.total
            summary["rate"] = f"{total.calls / seconds:,.2f}/s  ({total.calls:,} calls)"
            summary["errors"] = (f"{total.error_rate:.1%}  ({total.errors:,})"
                                 if total.error_rate is not None else "-")
            if total.exact is not None:
                for q in ("p50", "p95", "p99"):
                    summary[q] = format_duration(int(getattr(total.exact, q)))
        for row in ROWS:
            self.query_one(f"#red-{group}-{row}", Sparkline).data = values[row]
            self.query_one(f"#red-{group}-{row}-value", Static).update(summary[row])
