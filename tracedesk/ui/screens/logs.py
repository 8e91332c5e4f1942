"""The Logs screen: every log record, newest first, live, with filters and the way to its trace."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import Static

from tracedesk.model import LogRecord
from tracedesk.store.log_queries import (
    LogFilter,
    log_count,
    log_page,
    logs_before,
    severity_floor,
)
from tracedesk.store.reader import Reader
from tracedesk.ui.screens.live_list import LiveListScreen
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.log_details import LogDetails
from tracedesk.ui.widgets.log_list import LogList
from tracedesk.ui.widgets.paged_list import PagedList
from tracedesk.ui.widgets.status_bar import StatusBar

# What `v` steps through: everything, then each level and above.
LEVELS = (0, *(severity_floor(name) for name in ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")))
DETAILS_DELAY_SECONDS = 0.03


@dataclass(frozen=True)
class LogSource:
    where: LogFilter

    def count(self, reader: Reader) -> int:
        return log_count(reader, self.where)

    def page(self, reader: Reader, offset: int, limit: int, total: int | None = None
             ) -> list[LogRecord]:
        return log_page(reader, offset, limit, self.where, total)

    def position(self, reader: Reader, item: LogRecord) -> int:
        return logs_before(reader, item, self.where)

    def refreshed(self, reader: Reader, item: LogRecord) -> LogRecord | None:
        return item  # records never change once stored

    def key(self, item: LogRecord) -> int:
        return item.log_id

    def quick(self) -> bool:
        return self.where == LogFilter()


class LogsScreen(LiveListScreen[LogRecord]):
    BINDINGS = [
        Binding("enter", "open_trace", "Open trace", id="logs.open_trace"),
        Binding("space", "toggle_details", "Details", id="logs.details"),
        Binding("slash", "focus_filter", "Filter", id="logs.filter"),
        Binding("v", "next_level", "Level", id="logs.level"),
        Binding("S", "toggle_service", "This service", id="logs.service"),
        Binding("f", "follow", "Follow", id="logs.follow"),
        Binding("escape", "clear_filters", "Clear filters", show=False, id="logs.clear"),
    ]

    def __init__(self) -> None:
        super().__init__(id="logs")
        self.where = LogFilter()
        self._details_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield from self.filter_row("text in the body or service (enter applies, escape clears)")
        yield Static("", id="list-banner")
        yield LogList(self.request_page, id="log-list")
        yield LogDetails(id="log-details")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.live_list.focus()  # the rows load when the screen is shown (on_screen_resume)

    @property
    def live_list(self) -> PagedList[LogRecord]:
        return self.query_one(LogList)

    def source(self) -> LogSource:
        return LogSource(self.where)

    def empty_hint(self) -> tuple[str, ...]:
        if self.where.describe():
            return ("No log record matches.",)
        return self.nothing_received("log records")

    def update_banner(self) -> None:
        parts = ["following newest" if self.following else "paused"]
        if self.where.describe():
            parts.append(self.where.describe())
        if self.hidden_new:
            parts.append(f"+{self.hidden_new:,} new records (f to show)")
        self.show_banner(parts)

    def _filter_by(self, where: LogFilter) -> None:
        if where != self.where:
            self.where = where
            self.live_list.cursor = 0
            self.reload(keep_selection=False)
            self.update_banner()

    # --- keys -------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.follow()

    def action_next_level(self) -> None:
        current = LEVELS.index(self.where.min_severity) if self.where.min_severity in LEVELS else 0
        self._filter_by(replace(self.where, min_severity=LEVELS[(current + 1) % len(LEVELS)]))

    def action_toggle_service(self) -> None:
        record = self.live_list.selected
        if self.where.service:
            self._filter_by(replace(self.where, service=""))
        elif record is not None:
            self._filter_by(replace(self.where, service=record.service_name))

    def action_clear_filters(self) -> None:
        self.clear_filter()
        self._filter_by(LogFilter())

    def apply_filter(self, text: str) -> None:
        self._filter_by(replace(self.where, text=text))

    # --- opening the trace --------------------------------------------------------------

    @on(PagedList.Chosen)
    def action_open_trace(self) -> None:
        record = self.live_list.selected
        if record is None:
            return
        if not record.trace_id:
            self.notify("This record is not tied to a trace.", timeout=4)
            return
        self.app.open_trace(record.trace_id, record.span_id)

    # --- details ------------------------------------------------------------------------

    def action_toggle_details(self) -> None:
        details = self.query_one(LogDetails)
        details.display = not details.display
        if details.display:
            self._show_details()

    @on(PagedList.CursorMoved)
    def _schedule_details(self) -> None:
        if not self.query_one(LogDetails).display:
            return
        if self._details_timer is not None:
            self._details_timer.stop()
        self._details_timer = self.set_timer(DETAILS_DELAY_SECONDS, self._show_details)

    def _show_details(self) -> None:
        record = self.live_list.selected
        resource = self.app.resource(record.resource_id, self._show_details) if record else {}
        self.query_one(LogDetails).show(record, resource or {})
