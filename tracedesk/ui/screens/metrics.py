"""The Metrics screen: every received metric stream with its latest value and a sparkline.

A stream is a metric's points from one service with one attribute set. The window ends at
the newest stored point (so old or imported data shows too) and ``w`` cycles its length.
The streams are read once, then only new rows (see ``metric_queries.StreamCache``), and
recomputed at most every couple of seconds while data arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any

import orjson
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tracedesk.analysis.metric_format import format_value
from tracedesk.analysis.metric_series import (
    HISTOGRAMS,
    MetricPoint,
    means,
    resample,
    trend,
)
from tracedesk.store.metric_queries import Stream, StreamCache, StreamKey
from tracedesk.store.reader import Reader
from tracedesk.ui.screens.filter_screen import FilterScreen
from tracedesk.ui.screens.throttled import ThrottledScreen
from tracedesk.ui.text import clean, fit, service_colour
from tracedesk.ui.widgets.chart import sparkline
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.paged_list import HEADER, PAGE_SIZE, PagedList
from tracedesk.ui.widgets.status_bar import StatusBar

WINDOWS_NS = tuple(minutes * 60 * 10**9 for minutes in (5, 15, 60, 360))
WINDOW_NAMES = ("5m", "15m", "1h", "6h")
SPARK_STEPS = 24
DIM = Style(dim=True)
TYPE_NAMES = {"gauge": "gauge", "sum": "sum", "histogram": "histogram",
              "exponential_histogram": "exp hist", "summary": "summary"}
# Column widths; the attributes take what is left.
NAME_W, TYPE_W, UNIT_W, SERVICE_W, LATEST_W = 32, 9, 10, 14, 12


def compact_attributes(attributes: dict[str, Any]) -> str:
    """``k=v k2=v2`` on one line; values that are not text as JSON."""
    return " ".join(f"{k}={v if isinstance(v, str) else orjson.dumps(v).decode()}"
                    for k, v in attributes.items())


def differing_first(attribute_sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sets, each with the keys whose values differ between them first: streams of
    one metric and service often share most attributes, and a cut line should still
    show what tells them apart."""
    if len(attribute_sets) < 2:
        return attribute_sets
    keys = {k for attributes in attribute_sets for k in attributes}
    # A value as its JSON; b"" (no JSON text) where the set lacks the key.
    varying = {k for k in keys
               if len({orjson.dumps(a[k]) if k in a else b"" for a in attribute_sets}) > 1}
    return [{**{k: v for k, v in a.items() if k in varying},
             **{k: v for k, v in a.items() if k not in varying}} for a in attribute_sets]


def type_label(stream_type: str, temporality: str | None, monotonic: bool | None) -> str:
    if stream_type == "sum":
        return "counter" if monotonic else "updown"
    return TYPE_NAMES.get(stream_type, stream_type)


def latest_text(stream: Stream, since_ns: int) -> str:
    """A sum's or gauge's newest value; a histogram's or summary's mean over its newest
    interval."""
    key, latest = stream.key, stream.latest
    if key.type in HISTOGRAMS or key.type == "summary":
        found = means(stream.points[-2:] or [latest], stream.temporality, 0)
        if found:
            return "avg " + format_value(found[-1][1], key.unit)
        return format_value(_mean(latest), key.unit)
    return format_value(latest.value, key.unit)


def _mean(point: MetricPoint) -> float | None:
    return point.sum / point.count if point.count and point.sum is not None else None


@dataclass(frozen=True, slots=True)
class StreamRow:
    """What one line of the list shows."""

    key: StreamKey
    kind: str
    attributes: str
    latest: str
    spark: str


def stream_rows(cache: StreamCache, steps: int = SPARK_STEPS) -> list[StreamRow]:
    """Every stream's line, by name, then service, then attribute set."""
    since, end = cache.since_ns, cache.newest_ns + 1
    # Less data than the window: the sparklines span the data rather than mostly blanks.
    start = max(since, min((s.points[0].time_unix_nano for s in cache.streams.values()
                            if s.points), default=since))
    rows = []
    keys = sorted(cache.streams)
    for _, group in groupby(keys, key=lambda k: (k.name, k.type, k.unit, k.service_name)):
        streams = [cache.streams[key] for key in group]
        shown = differing_first([stream.attributes for stream in streams])
        for stream, attributes in zip(streams, shown, strict=True):
            key = stream.key
            samples = trend(key.type, stream.temporality, stream.monotonic, stream.points,
                            since)
            rows.append(StreamRow(
                key, type_label(key.type, stream.temporality, stream.monotonic),
                compact_attributes(attributes), latest_text(stream, since),
                sparkline(resample(samples, start, end, steps))))
    return rows


def matches(row: StreamRow, text: str) -> bool:
    folded = text.casefold()
    return folded in row.key.name.casefold() or folded in row.key.service_name.casefold()


class MetricList(PagedList[StreamRow]):
    """The streams, one per line (all in memory: pages are served at once)."""

    def render_header(self, width: int) -> Strip:
        attrs_w = max(0, width - (NAME_W + TYPE_W + UNIT_W + SERVICE_W + LATEST_W
                                  + SPARK_STEPS + 6))
        return Strip([Segment(
            f"{fit('metric', NAME_W)} {fit('type', TYPE_W)} {fit('unit', UNIT_W)} "
            f"{fit('service', SERVICE_W)} {fit('attributes', attrs_w)} "
            f"{'latest':>{LATEST_W}} {fit('trend', SPARK_STEPS)}", HEADER)])

    def render_row(self, row: StreamRow, width: int) -> Strip:
        key = row.key
        attrs_w = max(0, width - (NAME_W + TYPE_W + UNIT_W + SERVICE_W + LATEST_W
                                  + SPARK_STEPS + 6))
        return Strip([
            Segment(fit(key.name, NAME_W) + " "),
            Segment(fit(row.kind, TYPE_W) + " ", DIM),
            Segment(fit(key.unit, UNIT_W) + " ", DIM),
            Segment(fit(key.service_name, SERVICE_W) + " ",
                    Style(color=service_colour(key.service_name))),
            Segment(fit(row.attributes, attrs_w) + " ", DIM),
            Segment(fit(row.latest, LATEST_W).strip().rjust(LATEST_W) + " "),
            Segment(row.spark, Style(color="#5fafd7")),
        ])


class MetricsScreen(ThrottledScreen, FilterScreen):
    BINDINGS = [
        Binding("enter", "open_metric", "Open", id="metrics.open"),
        Binding("w", "next_window", "Window", id="metrics.window"),
        Binding("slash", "focus_filter", "Filter", id="metrics.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="metrics.clear"),
    ]

    def __init__(self) -> None:
        super().__init__(id="metrics")
        self.window = 0
        self.text = ""
        self._cache = StreamCache(WINDOWS_NS[self.window])
        self._rows: list[StreamRow] = []
        self._shown: list[StreamRow] = []
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield from self.filter_row("text in the metric or service name (enter applies, "
                                   "escape clears)")
        yield Static("", id="metrics-banner")
        yield MetricList(self._serve_page, id="metric-list")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(MetricList).focus()

    # --- data -------------------------------------------------------------------------

    def recompute(self) -> None:
        self._load(self._cache)

    @work(thread=True, exclusive=True, group="metric-streams", exit_on_error=False)
    def _load(self, cache: StreamCache) -> None:
        # Under the data lock: one update of the cache at a time.
        def query(reader: Reader) -> list[StreamRow]:
            cache.update(reader)
            return stream_rows(cache)

        rows = self.app.data.read_long(query)
        self.app.call_from_thread(self._show, cache, rows)

    def _show(self, cache: StreamCache, rows: list[StreamRow]) -> None:
        if cache is not self._cache:
            return  # read for another window
        self._rows = rows
        self._fill()

    def _fill(self) -> None:
        metric_list = self.query_one(MetricList)
        selected = metric_list.selected
        self._shown = [r for r in self._rows if matches(r, self.text)] if self.text \
            else self._rows
        self._generation += 1
        metric_list.reset(len(self._shown), self._generation)
        keys = [r.key for r in self._shown]
        if selected is not None and selected.key in keys:
            metric_list.cursor = keys.index(selected.key)
        self._update_banner()

    def _serve_page(self, page: int, generation: int) -> None:
        rows = self._shown[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
        self.query_one(MetricList).set_page(page, generation, rows)

    def _update_banner(self) -> None:
        banner = Text(no_wrap=True, overflow="ellipsis")
        banner.append(f"metrics · last {WINDOW_NAMES[self.window]} of data", "bold")
        count = f"{len(self._shown):,} of {len(self._rows):,}" if self.text \
            else f"{len(self._rows):,}"
        banner.append(f" · {count} streams", DIM)
        if self.text:
            banner.append(f" · filter {clean(self.text)}", DIM)
        banner.append("   trend: values, rate/s for counters, mean for histograms · "
                      "w: window", DIM)
        self.query_one("#metrics-banner", Static).update(banner)

    # --- keys -------------------------------------------------------------------------

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS_NS)
        self._cache = StreamCache(WINDOWS_NS[self.window])
        self.reload(force=True)

    @on(PagedList.Chosen)
    def action_open_metric(self) -> None:
        row = self.query_one(MetricList).selected
        if row is not None:
            from tracedesk.ui.screens.metric import MetricScreen

            self.app.push_screen(MetricScreen(row.key.name, WINDOWS_NS[self.window],
                                              WINDOW_NAMES[self.window]))

    def filter_target(self) -> Widget:
        return self.query_one(MetricList)

    def action_clear_filter(self) -> None:
        self.clear_filter()

    def apply_filter(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.query_one(MetricList).cursor = 0
            self._fill()
