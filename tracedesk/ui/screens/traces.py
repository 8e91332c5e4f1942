"""The Traces screen: the live list of traces, newest (or slowest) first, with follow mode."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from tracedesk.model import TraceSummary
from tracedesk.store.reader import Reader, TraceFilter, TraceOrder
from tracedesk.ui.screens.live_list import LiveListScreen
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.widgets.paged_list import PagedList
from tracedesk.ui.widgets.status_bar import StatusBar
from tracedesk.ui.widgets.trace_list import TraceList


@dataclass(frozen=True)
class TraceSource:
    order: TraceOrder
    where: TraceFilter

    def count(self, reader: Reader) -> int:
        return reader.trace_count(self.where)

    def page(self, reader: Reader, offset: int, limit: int, total: int | None = None
             ) -> list[TraceSummary]:
        return reader.trace_page(offset, limit, self.order, self.where, total)

    def position(self, reader: Reader, item: TraceSummary) -> int:
        return reader.position(item, self.order, self.where)

    def refreshed(self, reader: Reader, item: TraceSummary) -> TraceSummary | None:
        return reader.trace(item.trace_id)  # late spans move its start or duration


class TracesScreen(LiveListScreen[TraceSummary]):
    BINDINGS = [
        Binding("enter", "open", "Open", id="traces.open"),
        Binding("slash", "focus_filter", "Filter", id="traces.filter"),
        Binding("f", "follow", "Follow", id="traces.follow"),
        Binding("s", "toggle_sort", "Sort", id="traces.sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="traces.clear"),
    ]

    def __init__(self) -> None:
        super().__init__(id="traces")
        self.order = TraceOrder.NEWEST
        self.filter = TraceFilter()

    def compose(self) -> ComposeResult:
        yield from self.filter_row("service or span name (enter applies, escape clears)")
        yield Static("", id="list-banner")
        yield TraceList(self.request_page, id="trace-list")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.live_list.focus()  # the rows load when the screen is shown (on_screen_resume)

    @property
    def live_list(self) -> PagedList[TraceSummary]:
        return self.query_one(TraceList)

    def source(self) -> TraceSource:
        return TraceSource(self.order, self.filter)

    def can_follow(self) -> bool:
        return self.order is TraceOrder.NEWEST

    def update_banner(self) -> None:
        if self.order is TraceOrder.NEWEST:
            parts = ["following newest" if self.following else "paused"]
        else:
            parts = ["slowest first"]
        if self.filter.text:
            parts.append(f"filter: {self.filter.text}")
        if self.hidden_new:
            parts.append(f"+{self.hidden_new:,} new traces (f to show)")
        self.show_banner(parts)

    # --- keys -------------------------------------------------------------------------

    @on(PagedList.Chosen)
    def action_open(self) -> None:
        trace = self.live_list.selected
        if trace is not None:
            self.app.push_screen(TraceScreen(trace.trace_id))

    def action_follow(self) -> None:
        self.order = TraceOrder.NEWEST
        self.follow()

    def action_toggle_sort(self) -> None:
        self.order = TraceOrder.SLOWEST if self.order is TraceOrder.NEWEST else TraceOrder.NEWEST
        self.live_list.cursor = 0
        if self.order is TraceOrder.NEWEST:
            self.follow()
        else:  # nothing to follow: the slowest traces are not the newest
            self.following = False
            self.reload(keep_selection=False)

    def action_clear_filter(self) -> None:
        self.clear_filter()

    def apply_filter(self, text: str) -> None:
        if text != self.filter.text:
            self.filter = TraceFilter(text)
            self.live_list.cursor = 0
            self.reload(keep_selection=False)
