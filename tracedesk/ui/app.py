"""The app: wires screens, global keys and data notifications. Screens own their handlers."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tracedesk.store.reader import Totals
from tracedesk.ui.commands import ServiceCommands, TraceCommands, palette_commands
from tracedesk.ui.data import DataSource
from tracedesk.ui.query_history import load_history, save_history
from tracedesk.ui.screens.logs import LogsScreen
from tracedesk.ui.screens.metrics import MetricsScreen
from tracedesk.ui.screens.services import ServicesScreen
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.screens.traces import TracesScreen
from tracedesk.ui.text import clean, reset_service_colours
from tracedesk.ui.widgets.status_bar import StatusBar, status_text

POLL_SECONDS = 0.25
RATE_WINDOW_SECONDS = 5.0


@dataclass(frozen=True)
class ReceiverLine:
    """What the status line says about the receiver."""

    text: str
    ok: bool
    notice: str | None = None  # shown once at start, e.g. why no receiver runs
    # Where an SDK should send (the empty lists say so); None while nothing receives.
    grpc_address: str | None = None
    http_address: str | None = None


class TracedeskApp(App):
    TITLE = "tracedesk"
    CSS_PATH = "tracedesk.tcss"
    BINDINGS = [
        Binding("1", "show('traces')", "Traces", id="app.traces"),
        Binding("2", "show('logs')", "Logs", id="app.logs"),
        Binding("3", "show('metrics')", "Metrics", id="app.metrics"),
        Binding("4", "show('services')", "Services", id="app.services"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Keys", id="app.help"),
    ]
    MODES = {"traces": TracesScreen, "logs": LogsScreen, "metrics": MetricsScreen,
             "services": ServicesScreen}
    COMMANDS = App.COMMANDS | {TraceCommands, ServiceCommands}

    def __init__(self, data: DataSource, receiver: ReceiverLine,
                 clock: Callable[[], float] = time.monotonic,
                 poll_seconds: float = POLL_SECONDS, history_path: Path | None = None
                 ) -> None:
        super().__init__()
        reset_service_colours()
        self.data = data
        self.receiver = receiver
        self.clock = clock  # monotonic seconds; frozen for screenshots
        self._poll_seconds = poll_seconds
        self._version: int | None = None
        self._samples: list[tuple[float, int]] = []  # (time, stored spans) for the rate
        self._totals: Totals | None = None
        self.status: Text | None = None  # the status line last shown, for new screens
        self._resources: dict[int, dict[str, Any]] = {}
        # Recent queries, oldest first (the traces screen's up/down); saved when set.
        self._history_path = history_path
        self.query_history: list[str] = load_history(history_path)

    def on_mount(self) -> None:
        self.switch_mode("traces")
        self._version = self.data.data_version()
        self._load_totals()
        self.set_interval(self._poll_seconds, self._poll)
        if self.receiver.notice:
            self.notify(self.receiver.notice, title="Receiver", severity="warning", timeout=15,
                        markup=False)

    def _poll(self) -> None:
        version = self.data.data_version()
        if version != self._version:
            self._version = version
            self.data_changed()
        elif self._samples and self.clock() - self._samples[-1][0] > 1.0:
            self._load_totals()  # let the rate fall back to 0 when nothing arrives

    def data_changed(self) -> None:
        """Another process committed: refresh what is on screen."""
        screen = self.screen
        if hasattr(screen, "reload"):
            screen.reload()
        self._load_totals()

    @work(thread=True, exclusive=True, group="totals", exit_on_error=False)
    def _load_totals(self) -> None:
        totals = self.data.read(lambda r: r.totals())
        self.call_from_thread(self._show_totals, totals)

    def _show_totals(self, totals: Totals) -> None:
        now = self.clock()
        self._totals = totals
        self._samples.append((now, totals.spans))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.pop(0)
        rate = None
        if len(self._samples) >= 2 and now > self._samples[0][0]:
            (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
            rate = max(0.0, (s1 - s0) / (t1 - t0)) if t1 > t0 else None
        self.status = status_text(self.receiver.text, self.receiver.ok, totals.traces,
                                  totals.spans, rate)
        for bar in self.screen.query(StatusBar):
            bar.update(self.status)

    def resource(self, resource_id: int, then: Callable[[], None]) -> dict[str, Any] | None:
        """A resource's attributes if already read; otherwise None, and they are read in a
        thread, after which ``then`` runs (to show them). Resources never change."""
        attributes = self._resources.get(resource_id)
        if attributes is None:
            self._load_resource(resource_id, then)
        return attributes

    @work(thread=True, group="resources", exit_on_error=False)
    def _load_resource(self, resource_id: int, then: Callable[[], None]) -> None:
        attributes = self.data.read(lambda r: r.resource(resource_id))
        self.call_from_thread(self._resource_loaded, resource_id, attributes, then)

    def _resource_loaded(self, resource_id: int, attributes: dict[str, Any],
                         then: Callable[[], None]) -> None:
        self._resources[resource_id] = attributes
        then()

    def open_trace(self, trace_id: str, span_id: str | None = None) -> None:
        """Open a trace at a span (a link's, a log record's, an exemplar's) if it is stored;
        otherwise say so."""
        self._open_trace(trace_id, span_id)

    @work(thread=True, group="open-trace", exit_on_error=False)
    def _open_trace(self, trace_id: str, span_id: str | None) -> None:
        stored = self.data.read(lambda r: r.trace(trace_id)) is not None
        self.call_from_thread(self._trace_found, trace_id, span_id, stored)

    def _trace_found(self, trace_id: str, span_id: str | None, stored: bool) -> None:
        if stored:
            self.push_screen(TraceScreen(trace_id, span_id or None))
        else:
            self.notify(f"Trace {clean(trace_id)} is not stored (not received, or removed by "
                        "retention).", severity="warning", timeout=6, markup=False)

    def action_show(self, mode: str) -> None:
        """A screen's list, from anywhere: traces opened from it are closed on the way."""
        self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)

    def save_query_history(self) -> None:
        if self._history_path is not None:
            self._save_history(self._history_path, list(self.query_history))

    @work(thread=True, exclusive=True, group="query-history", exit_on_error=False)
    def _save_history(self, path: Path, entries: list[str]) -> None:
        save_history(path, entries)

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()


# The app's workers build tens of thousands of small objects at once (a service graph's
# window: 80,000 spans). With CPython's default young-generation threshold (700
# allocations), the collections that triggered cost a quarter of that work, measured with
# bench-views. Collecting every 50,000 allocations holds back a few MB at most.
GC_YOUNG_THRESHOLD = 50_000


def make_app(db_path: Path, receiver: ReceiverLine, **options: object) -> TracedeskApp:
    """The one way to build the app: used by the CLI, the tests and the screenshots."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return TracedeskApp(DataSource(db_path), receiver, **options)  # type: ignore[arg-type]
