"""The Traces screen: the live list of traces, newest (or slowest) first, with follow mode.

The query line (``/``) takes a TraceQL-subset query or plain words (``tracedesk.query``),
applied on enter; a malformed query keeps the line open and shows where it went wrong. A
time range (``t``, or a leading ``since:30m`` in the query) keeps the list to recent traces.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from tracedesk.model import TraceSummary
from tracedesk.query import Query, QueryError, parse
from tracedesk.query.format import quote
from tracedesk.query.sql import TraceQuery
from tracedesk.store.reader import Reader, TraceOrder
from tracedesk.ui.query_complete import QuerySuggester
from tracedesk.ui.screens.live_list import LiveListScreen
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.text import clean
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.paged_list import PagedList
from tracedesk.ui.widgets.query_input import QueryInput
from tracedesk.ui.widgets.status_bar import StatusBar
from tracedesk.ui.widgets.trace_list import TraceList

MINUTE_NS = 60 * 1_000_000_000
# What ``t`` steps through: (label, length in ns); None is every stored trace.
RANGES: list[tuple[str, int | None]] = [
    ("all", None), ("last 5m", 5 * MINUTE_NS), ("last 15m", 15 * MINUTE_NS),
    ("last 1h", 60 * MINUTE_NS), ("last 6h", 360 * MINUTE_NS), ("last 24h", 1440 * MINUTE_NS)]
_SINCE = re.compile(r"\s*since:(\S*)\s*")
_UNITS_NS = {"s": 1_000_000_000, "m": MINUTE_NS, "h": 60 * MINUTE_NS, "d": 1440 * MINUTE_NS}


def service_query(service: str) -> str:
    """The query for one service's traces."""
    return "{ resource.service.name = " + quote(service) + " }"


def split_since(text: str) -> tuple[int | None, str, str]:
    """A leading ``since:30m`` token: (its length in ns or None, its label, the rest).
    Raises ``QueryError`` for a token that is not a duration."""
    m = _SINCE.match(text)
    if not m:
        return None, "", text
    value = m.group(1)
    number = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", value)
    if not number or float(number.group(1)) <= 0:
        raise QueryError("since: takes a duration such as 30s, 15m, 2h or 7d",
                         m.start(1))
    ns = int(float(number.group(1)) * _UNITS_NS[number.group(2)])
    return ns, f"last {value}", text[m.end():]


@dataclass(frozen=True)
class TraceSource:
    order: TraceOrder
    where: TraceQuery

    def count(self, reader: Reader) -> int:
        return reader.trace_count(self.where)  # type: ignore[arg-type]

    def page(self, reader: Reader, offset: int, limit: int, total: int | None = None
             ) -> list[TraceSummary]:
        return reader.trace_page(offset, limit, self.order, self.where,  # type: ignore[arg-type]
                                 total)

    def position(self, reader: Reader, item: TraceSummary) -> int:
        return reader.position(item, self.order, self.where)  # type: ignore[arg-type]

    def refreshed(self, reader: Reader, item: TraceSummary) -> TraceSummary | None:
        return reader.trace(item.trace_id)  # late spans move its start or duration

    def key(self, item: TraceSummary) -> str:
        return item.trace_id

    def quick(self) -> bool:
        # A time range is a range of the start index: quick when that is the order too.
        where = self.where
        ranged = where.since_ns is not None or where.until_ns is not None
        return where.query is None and (not ranged or self.order is TraceOrder.NEWEST)


class TracesScreen(LiveListScreen[TraceSummary]):
    BINDINGS = [
        Binding("enter", "open", "Open", id="traces.open"),
        Binding("slash", "focus_filter", "Query", id="traces.filter"),
        Binding("f", "follow", "Follow", id="traces.follow"),
        Binding("s", "toggle_sort", "Sort", id="traces.sort"),
        Binding("t", "cycle_range", "Time range", id="traces.range"),
        Binding("escape", "clear_filter", "Clear query", show=False, id="traces.clear"),
    ]
    FILTER_AS_YOU_TYPE = False

    def __init__(self) -> None:
        super().__init__(id="traces")
        self.order = TraceOrder.NEWEST
        self.query_text = ""  # the active query as typed ("" for none)
        self.trace_query: Query | None = None
        self.range_label, self.range_ns = RANGES[0]
        self._since_ns: int | None = None  # fixed at each reload: "now" moves
        self._reads_running = 0
        self._reload_pending = False

    def compose(self) -> ComposeResult:
        yield from self.filter_row("", label="query", field=QueryInput(
            history=self.app.query_history, suggester=QuerySuggester(self.app.data),
            placeholder='{ span.http.status_code >= 500 } or words · enter applies, '
                        'escape keeps the old query', id="filter"))
        yield Static("", id="query-error")
        yield Static("", id="list-banner")
        yield TraceList(self.request_page, id="trace-list")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.live_list.focus()  # the rows load when the screen is shown (on_screen_resume)

    @property
    def live_list(self) -> PagedList[TraceSummary]:
        return self.query_one(TraceList)

    def reload(self, *, keep_selection: bool = True) -> None:
        """As ``LiveListScreen.reload``; but new data while a read still runs (a slow query
        over a big store) is read once after it, not once per commit: reads never queue."""
        if self._reads_running and keep_selection:
            self._reload_pending = True
            return
        self._reads_running += 1
        self._since_ns = time.time_ns() - self.range_ns if self.range_ns is not None else None
        super().reload(keep_selection=keep_selection)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A read ended (shown, failed, or cancelled by a newer one, maybe before it ran)."""
        if event.worker.group == "live-list" and event.state in (
                WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._reads_running = max(0, self._reads_running - 1)
            if not self._reads_running and self._reload_pending:
                self._reload_pending = False
                self.reload()

    def source(self) -> TraceSource:
        return TraceSource(self.order, TraceQuery(self.trace_query, self._since_ns))

    def can_follow(self) -> bool:
        return self.order is TraceOrder.NEWEST

    def empty_hint(self) -> tuple[str, ...]:
        if self.query_text or self.range_ns is not None:
            return ("No trace matches." + (" (t widens the time range)"
                                           if self.range_ns is not None else ""),)
        return self.nothing_received("traces")

    def update_banner(self) -> None:
        if self.order is TraceOrder.NEWEST:
            parts = ["following newest" if self.following else "paused"]
        else:
            parts = ["slowest first"]
        if self.range_ns is not None:
            parts.append(self.range_label)
        if self.query_text:
            parts.append(f"query: {self.query_text}")
        if self.query_text or self.range_ns is not None:
            total = self.live_list.total + self.hidden_new
            parts.append(f"{total:,} matching" if total != 1 else "1 matching")
        if self.hidden_new:
            parts.append(f"+{self.hidden_new:,} new traces (f to show)")
        self.show_banner(parts)

    # --- keys -------------------------------------------------------------------------

    @on(PagedList.Chosen)
    def action_open(self) -> None:
        trace = self.live_list.selected
        if trace is not None:
            self.app.push_screen(TraceScreen(trace.trace_id, query=self.trace_query))

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

    def action_cycle_range(self) -> None:
        """The next preset range (after a typed one: the next longer preset, else all)."""
        longer = [r for r in RANGES[1:] if self.range_ns is not None and r[1] > self.range_ns]
        self.range_label, self.range_ns = longer[0] if longer else (
            RANGES[1] if self.range_ns is None else RANGES[0])
        self._restart()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_focus:  # escape while editing: close the line, the query unchanged
            field.value = self.query_text
            self._show_error(None)
            self.query_one("#filter-row").set_class(bool(self.query_text), "visible")
            self.query_one("#filter-row").styles.clear_rule("display")
            self.live_list.focus()
        else:
            self.clear_filter()

    def action_focus_filter(self) -> None:
        super().action_focus_filter()
        field = self.query_one(QueryInput)
        field.cursor_position = len(field.value)

    # --- the query --------------------------------------------------------------------

    def submit_filter(self, text: str) -> bool:
        return self.set_query(text)

    def apply_filter(self, text: str) -> None:
        self.set_query(text)

    def filter_edited(self, text: str) -> None:
        self._show_error(None)  # the error was about other text

    def set_query(self, text: str) -> bool:
        """Show the traces ``text`` matches; False (and the error shown) if it is malformed."""
        text = text.strip()
        try:
            range_ns, range_label, rest = split_since(text)
        except QueryError as exc:
            self._show_error(exc, text, 0)
            return False
        try:
            query = parse(rest) if rest.strip() else None
        except QueryError as exc:
            self._show_error(exc, text, len(text) - len(rest))
            return False
        self._show_error(None)
        if text:
            self.query_one(QueryInput).remember(text)
            self.app.save_query_history()
        rest = rest.strip()
        if range_ns is not None:
            self.range_label, self.range_ns = range_label, range_ns
        if rest != self.query_text or range_ns is not None:
            self.query_text = rest
            self.trace_query = query
            self._restart()
        return True

    def _restart(self) -> None:
        self.live_list.cursor = 0
        if self.order is TraceOrder.NEWEST:
            self.follow()
        else:
            self.reload(keep_selection=False)

    def _show_error(self, error: QueryError | None, text: str = "", offset: int = 0) -> None:
        """The error under the line: a caret under the place it points at, then the message."""
        box = self.query_one("#query-error", Static)
        box.set_class(error is not None, "visible")
        if error is None:
            box.update("")
            return
        field = self.query_one("#filter", Input)
        label = self.query_one("#filter-label")
        position = min(len(text), offset + error.position)
        column = label.size.width + cell_len(text[:position]) - int(field.scroll_offset.x)
        column = max(0, min(column, max(0, self.size.width - 2)))
        line = Text(" " * column + "^ ", style="bold")
        line.append(clean(error.message))
        box.update(line)
