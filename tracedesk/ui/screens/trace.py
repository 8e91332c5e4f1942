"""The Trace screen: one trace's span waterfall with the selected span's details."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from tracedesk.analysis.time_axis import format_duration
from tracedesk.analysis.waterfall import SpanTree, build_tree, self_time_ns
from tracedesk.model import LogRecord, Span, TraceSummary
from tracedesk.query import Query, QuerySpan, matching_spans
from tracedesk.store.log_queries import trace_log_count, trace_logs
from tracedesk.store.reader import Reader
from tracedesk.transfer import TransferError
from tracedesk.transfer.export import export_trace, write_file
from tracedesk.ui.screens.red import RedScreen
from tracedesk.ui.text import clean, format_clock, plural, service_colour
from tracedesk.ui.widgets.key_bar import KeyBar
from tracedesk.ui.widgets.span_details import SpanContext, SpanDetails
from tracedesk.ui.widgets.status_bar import StatusBar
from tracedesk.ui.widgets.waterfall import Waterfall

WIDE_LAYOUT_COLUMNS = 150  # from this width the details sit beside the waterfall
# Holding j (keys repeat every 30–40 ms) redraws the waterfall, not the details each row:
# a details rebuild lays the screen out (~5 ms), and the next key's frame then waited for
# Textual's 60 fps pacing too (16 ms a key at 30 repeats a second, 1.3 ms without).
DETAILS_DELAY_SECONDS = 0.06


@dataclass(frozen=True)
class _Loaded:
    summary: TraceSummary
    tree: SpanTree
    logs: list[LogRecord]
    version: tuple[int, int]
    matched: frozenset[str] | None  # the spans the list's query matched (None: no query)


class TraceScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="trace.back"),
        Binding("slash", "find", "Find", id="trace.find"),
        Binding("L", "toggle_trace_logs", "Logs: span/trace", show=False,
                id="trace.logs_scope"),
        Binding("m", "red", "RED metrics", id="trace.red"),
        Binding("y", "copy_trace_id", "Copy trace id", id="trace.copy_trace_id"),
        Binding("Y", "copy_span_id", "Copy span id", show=False, id="trace.copy_span_id"),
        Binding("x", "export", "Export OTLP JSON", show=False, id="trace.export"),
    ]

    def __init__(self, trace_id: str, span_id: str | None = None, *,
                 query: Query | None = None) -> None:
        super().__init__(classes="trace-screen")
        self.trace_id = trace_id
        self.list_query = query  # the trace list's query: the spans it matches are marked
        self._select = span_id  # a span to select once the trace has loaded
        # The trace's change counter and log count when last loaded: reload when they move.
        self._version: tuple[int, int] | None = None
        self._details_timer: Timer | None = None
        self._logs: list[LogRecord] = []  # the trace's log records, oldest first
        self._logs_of_trace = False  # list the whole trace's logs, not the span's
        # Read while the screen is built: a worker started once it is shown waits for the
        # first frame (~40 ms) before its thread runs.
        self._first_load = self._load(None)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"trace {self.trace_id} · loading…"), id="trace-header")
        with Horizontal(id="find-row"):
            yield Static("find", id="find-label")
            yield Input(placeholder="span or service name (enter keeps, escape clears)",
                        id="find")
        with Container(id="trace-body"):
            yield Waterfall(id="waterfall")
            yield SpanDetails(id="span-details")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Waterfall).focus()  # the trace loads when shown (on_screen_resume)

    def on_screen_resume(self) -> None:
        if self._version is None and self._first_load.is_running:
            return  # shown: the first read is under way
        self.reload()  # back from a screen on top (RED, a linked trace)

    def on_resize(self, event: Resize) -> None:
        self.query_one("#trace-body").set_class(event.size.width >= WIDE_LAYOUT_COLUMNS, "wide")

    # --- data -------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the trace if it changed since it was loaded (called on every commit)."""
        self._load(self._version)

    @work(thread=True, exclusive=True, group="trace", exit_on_error=False)
    def _load(self, seen: tuple[int, int] | None) -> None:
        def query(reader: Reader) -> _Loaded | None:
            summary = reader.trace(self.trace_id)
            if summary is None:
                return None
            version = (summary.seq, trace_log_count(reader, self.trace_id))
            if version == seen:
                return None
            spans = reader.spans(self.trace_id)
            return _Loaded(summary, build_tree(spans), trace_logs(reader, self.trace_id),
                           version, self._matched(reader, spans))

        loaded = self.app.data.read_long(query)
        if loaded is not None:
            self.app.call_from_thread(self._show, loaded)
        elif seen is None:
            self.app.call_from_thread(self._missing)

    def _matched(self, reader: Reader, spans: list[Span]) -> frozenset[str] | None:
        """The spans the query matches (in the worker: it reads resources)."""
        if self.list_query is None:
            return None
        resources: dict[int, dict[str, Any]] = {}
        for span in spans:
            if span.resource_id not in resources:
                resources[span.resource_id] = reader.resource(span.resource_id)
        return frozenset(matching_spans(self.list_query, [
            QuerySpan.from_span(span, resources[span.resource_id]) for span in spans]))

    def _show(self, loaded: _Loaded) -> None:
        self._version = loaded.version
        self._show_header(loaded.summary, loaded.matched)
        waterfall = self.query_one(Waterfall)
        waterfall.set_query_matches(loaded.matched or ())
        select, self._select = self._select, None
        waterfall.set_tree(loaded.tree, select=select)
        self._logs = loaded.logs
        levels: dict[str, int] = {}
        for record in loaded.logs:
            levels[record.span_id] = max(levels.get(record.span_id, 0), record.severity_number)
        waterfall.set_log_levels(levels)
        if select is not None and select not in loaded.tree:
            self.notify(f"Span {clean(select)} is not in this trace (not received yet?).",
                        severity="warning", timeout=6, markup=False)
        self._schedule_details()

    def _missing(self) -> None:
        self.query_one("#trace-header", Static).update(
            Text(f"trace {self.trace_id} is not stored", style="bold #ff5f5f"))
        self.query_one(Waterfall).set_tree(build_tree([]))

    def _show_header(self, t: TraceSummary, matched: frozenset[str] | None = None) -> None:
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append("trace ", style="dim")
        header.append(t.trace_id, style="bold")
        header.append("  ")
        header.append(clean(t.root_service_name), style=service_colour(t.root_service_name))
        header.append(" ")
        header.append(clean(t.root_span_name) if t.has_root else "(root span not received)",
                      style="bold" if t.has_root else "dim")
        header.append(f"  {format_clock(t.start_time_unix_nano)}", style="dim")
        header.append(f"  {format_duration(t.duration_ns)}")
        header.append(f"  {plural(t.span_count, 'span')}")
        header.append(f"  {plural(len(t.services), 'service')}", style="dim")
        if t.error_count:
            header.append(f"  ✖ {plural(t.error_count, 'error')}", style="bold #ff5f5f")
        if matched is not None:
            header.append(f"  ● {len(matched):,} matched", style="bold #d787ff")
        self.query_one("#trace-header", Static).update(header)

    # --- details ----------------------------------------------------------------------

    @on(Waterfall.Selected)
    def _selected(self) -> None:
        self._schedule_details()

    def _schedule_details(self) -> None:
        if self._details_timer is not None:
            self._details_timer.stop()
        self._details_timer = self.set_timer(DETAILS_DELAY_SECONDS, self._show_details)

    def _show_details(self) -> None:
        waterfall = self.query_one(Waterfall)
        row, tree = waterfall.selected, waterfall.span_tree
        details = self.query_one(SpanDetails)
        if row is None or tree is None:
            details.show(None, None)
            return
        span = row.span
        resource = self.app.resource(span.resource_id, self._show_details) or {}
        parent_id = tree.parent_of(span.span_id)
        parent_name = tree.spans[parent_id].name if parent_id else None
        logs = tuple(
            (record, tree.spans[record.span_id].name if record.span_id in tree else "")
            for record in self._logs
            if self._logs_of_trace or record.span_id == span.span_id)
        details.show(span, SpanContext(
            trace_start_ns=tree.start_ns,
            self_time_ns=self_time_ns(tree, span.span_id),
            resource=resource,
            parent_name=parent_name,
            orphan=row.orphan,
            descendant_count=row.child_count,
            logs=logs,
            logs_of_trace=self._logs_of_trace,
        ))

    def action_red(self) -> None:
        row = self.query_one(Waterfall).selected
        if row is not None:
            self.app.push_screen(RedScreen(row.span))

    def action_toggle_trace_logs(self) -> None:
        self._logs_of_trace = not self._logs_of_trace
        self._show_details()

    # --- links ------------------------------------------------------------------------

    @on(SpanDetails.LinkChosen)
    def _link_chosen(self, event: SpanDetails.LinkChosen) -> None:
        if event.trace_id != self.trace_id:
            self.app.open_trace(event.trace_id, event.span_id)
            return
        if not self.query_one(Waterfall).select(event.span_id):
            self.notify(f"Span {clean(event.span_id)} is not in this trace.", severity="warning",
                        markup=False)
        self.query_one(Waterfall).focus()

    # --- keys -------------------------------------------------------------------------

    def action_back(self) -> None:
        """Escape undoes the latest thing first: find, then zoom, then leaves the trace."""
        waterfall = self.query_one(Waterfall)
        find = self.query_one("#find", Input)
        if find.value or find.has_focus:
            find.value = ""
            self.query_one("#find-row").remove_class("visible")
            self.query_one("#find-row").styles.clear_rule("display")
            waterfall.find("")
            waterfall.focus()
        elif not waterfall.reset_zoom():
            self.app.pop_screen()

    def action_find(self) -> None:
        self.query_one("#find-row").add_class("visible")
        # Focus now, not on the next refresh: keys typed right after "/" must land in it.
        self.query_one("#find-row").display = True
        self.app.set_focus(self.query_one("#find", Input))

    @on(Input.Changed, "#find")
    def _find_changed(self, event: Input.Changed) -> None:
        count = self.query_one(Waterfall).find(event.value.strip())
        self.query_one("#find-label", Static).update(
            f"find {count}" if event.value.strip() else "find")

    @on(Input.Submitted, "#find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#find-row").styles.clear_rule("display")
        self.query_one(Waterfall).focus()

    def action_copy_trace_id(self) -> None:
        self._copy("trace id", self.trace_id)

    def action_copy_span_id(self) -> None:
        span_id = self.query_one(Waterfall).selected_id
        if span_id:
            self._copy("span id", span_id)

    def _copy(self, what: str, value: str) -> None:
        self.app.copy_to_clipboard(value)
        self.notify(f"Copied {what} {clean(value)}", timeout=3, markup=False)

    @work(thread=True, exclusive=True, group="trace-export", exit_on_error=False)
    def action_export(self) -> None:
        """Write the trace as OTLP JSON to ``trace-<16 hex>.json`` in the current directory."""
        path = Path.cwd() / f"trace-{self.trace_id[:16]}.json"
        try:
            exported = self.app.data.read_long(lambda reader: export_trace(reader, self.trace_id))
            write_file(path, exported.data)
        except TransferError as exc:
            self.app.call_from_thread(self.notify, f"Export failed: {exc}",
                                      severity="error", timeout=6, markup=False)
            return
        self.app.call_from_thread(
            self.notify, f"Exported {plural(exported.span_count, 'span')} to {path}",
            timeout=6, markup=False)
