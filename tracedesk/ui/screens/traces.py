"""The Traces screen: the live list of traces, newest first, with follow mode."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tracedesk.model import TraceSummary
from tracedesk.store.reader import TraceFilter, TraceOrder
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.text import clean
from tracedesk.ui.widgets.status_bar import StatusBar
from tracedesk.ui.widgets.trace_list import PAGE_SIZE, TraceList


@dataclass(frozen=True)
class _Snapshot:
    generation: int
    total: int
    hidden_new: int
    first_page: list[TraceSummary]
    cursor: int | None  # where the selected trace is now, when the list is paused


class TracesScreen(Screen):
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
        self.following = True
        # Start time of the newest trace the user had seen when they left follow mode.
        self._anchor_start: int | None = None
        self._generation = 0
        self._hidden_new = 0  # traces newer than the anchor, kept out of view while paused

    def compose(self) -> ComposeResult:
        with Horizontal(id="filter-row"):
            yield Static("filter", id="filter-label")
            yield Input(placeholder="service or span name (enter applies, escape clears)",
                        id="filter")
        yield Static("", id="list-banner")
        yield TraceList(self._request_page, id="trace-list")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TraceList).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()  # while a trace was open, this screen did not follow new data

    # --- data -------------------------------------------------------------------------

    def reload(self, *, keep_selection: bool = True) -> None:
        """Re-read after new data or a change of order/filter (in a worker). While paused,
        the selected trace stays selected unless ``keep_selection`` is False."""
        self._generation += 1
        anchor = None if self.following else self._anchor_start
        keep = (self.query_one(TraceList).selected
                if keep_selection and not self.following else None)
        self._load(self._generation, self.order, self.filter, anchor, keep)

    @work(thread=True, exclusive=True, group="trace-list", exit_on_error=False)
    def _load(self, generation: int, order: TraceOrder, where: TraceFilter,
              anchor: int | None, keep: TraceSummary | None) -> None:
        def query(reader) -> _Snapshot:
            total = reader.trace_count(where)
            hidden = (reader.newer_than(anchor, where)
                      if anchor is not None and order is TraceOrder.NEWEST else 0)
            first = reader.trace_page(hidden, PAGE_SIZE, order, where)
            # A late trace can sort in above the selected one: find where that one went.
            now = reader.trace(keep.trace_id) if keep is not None else None
            cursor = reader.position(now, order, where) - hidden if now is not None else None
            return _Snapshot(generation, total, hidden, first, cursor)

        snapshot = self.app.data.read(query)
        self.app.call_from_thread(self._show, snapshot)

    def _show(self, snap: _Snapshot) -> None:
        if snap.generation != self._generation:
            return
        trace_list = self.query_one(TraceList)
        self._hidden_new = snap.hidden_new
        trace_list.reset(snap.total - snap.hidden_new, snap.generation)
        trace_list.set_page(0, snap.generation, snap.first_page)
        if self.following:
            trace_list.cursor = 0
        elif snap.cursor is not None and 0 <= snap.cursor < trace_list.total:
            # Keep the selected trace on the same screen line.
            shift = snap.cursor - trace_list.cursor
            trace_list.scroll_to(y=trace_list.scroll_offset.y + shift, animate=False)
            trace_list.cursor = snap.cursor
        self._update_banner()

    def _request_page(self, page: int, generation: int) -> None:
        self._fetch_page(page, generation, self.order, self.filter,
                         self._hidden_new)

    @work(thread=True, group="trace-pages", exit_on_error=False)
    def _fetch_page(self, page: int, generation: int, order: TraceOrder, where: TraceFilter,
                    hidden: int) -> None:
        rows = self.app.data.read(
            lambda r: r.trace_page(hidden + page * PAGE_SIZE, PAGE_SIZE, order, where))
        self.app.call_from_thread(self.query_one(TraceList).set_page, page, generation, rows)

    def _update_banner(self) -> None:
        banner = self.query_one("#list-banner", Static)
        parts = []
        if self.order is TraceOrder.NEWEST:
            parts.append("following newest" if self.following else "paused")
        else:
            parts.append("slowest first")
        if self.filter.text:
            parts.append(f"filter: {clean(self.filter.text)}")
        hidden = self._hidden_new
        if hidden:
            parts.append(f"+{hidden:,} new traces (f to show)")
        banner.update(Text(" · ".join(parts)))  # the filter is typed or chosen text: no markup
        banner.set_class(bool(hidden), "has-new")

    # --- opening a trace --------------------------------------------------------------

    def action_open(self) -> None:
        trace = self.query_one(TraceList).selected
        if trace is not None:
            self.app.push_screen(TraceScreen(trace.trace_id))

    @on(TraceList.Chosen)
    def _chosen(self) -> None:
        self.action_open()

    # --- follow mode ------------------------------------------------------------------

    @on(TraceList.CursorMoved)
    def _cursor_moved(self, event: TraceList.CursorMoved) -> None:
        if self.order is not TraceOrder.NEWEST:
            return
        if event.index > 0 and self.following:
            self.pause_following()

    def pause_following(self) -> None:
        """Keep the list still: newer traces are counted ("+N new"), not shown."""
        if self.order is not TraceOrder.NEWEST or not self.following:
            return
        self.following = False
        top = self.query_one(TraceList).row(0)
        self._anchor_start = top.start_time_unix_nano if top else None
        self._update_banner()

    def action_follow(self) -> None:
        self.following = True
        self._anchor_start = None
        self.order = TraceOrder.NEWEST
        self.reload()

    def action_toggle_sort(self) -> None:
        self.order = TraceOrder.SLOWEST if self.order is TraceOrder.NEWEST else TraceOrder.NEWEST
        self.following = self.order is TraceOrder.NEWEST
        self._anchor_start = None
        self.query_one(TraceList).cursor = 0
        self.reload(keep_selection=False)

    # --- filter -----------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        # Focus now, not on the next refresh: keys typed right after "/" must land in it.
        self.query_one("#filter-row").display = True
        self.app.set_focus(self.query_one("#filter", Input))

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        filter_input.value = ""
        self.query_one("#filter-row").styles.clear_rule("display")
        self._apply_filter("")
        self.query_one(TraceList).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._apply_filter(event.value.strip())

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#filter-row").styles.clear_rule("display")
        self.query_one(TraceList).focus()

    def show_filter(self, text: str) -> None:
        """Fill the quick filter with ``text`` and show the traces it matches."""
        self.query_one("#filter", Input).value = text
        self._apply_filter(text.strip())
        self.query_one(TraceList).focus()

    def _apply_filter(self, text: str) -> None:
        self.query_one("#filter-row").set_class(bool(text), "visible")
        if text != self.filter.text:
            self.filter = TraceFilter(text)
            self.query_one(TraceList).cursor = 0
            self.reload(keep_selection=False)
