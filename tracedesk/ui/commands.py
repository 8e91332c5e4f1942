"""The command palette (ctrl+p): open a trace by id, show a service's traces, follow, clear.

Service names and span names come from telemetry and are untrusted: hits are built as
``Content`` (never markup strings), and the palette's own markup-parsing highlighter is not
used on them.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.app import SystemCommand
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.screen import Screen
from textual.style import Style

from tracedesk.analysis.time_axis import format_duration
from tracedesk.model import TraceSummary
from tracedesk.store.clear import ClearError, clear_all
from tracedesk.store.reader import RowCounts, TraceOrder
from tracedesk.ui.screens.confirm import ConfirmScreen
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.screens.traces import TracesScreen, service_query
from tracedesk.ui.text import clean, plural, service_colour

if TYPE_CHECKING:
    from tracedesk.ui.app import TracedeskApp

TRACE_HITS = 10
SERVICE_LIMIT = 1000
SERVICE_HITS = 30
SERVICE_PHRASE = "Show traces of service "
# Four hex characters narrow 100k random ids down to a couple of traces.
_TRACE_ID_PREFIX = re.compile(r"[0-9a-f]{4,32}")
_MATCH_STYLE = Style(reverse=True)


def _app(provider: Provider) -> TracedeskApp:
    return cast("TracedeskApp", provider.app)


def trace_id_prefix(query: str) -> str | None:
    """The trace id, or its first characters, at the end of what was typed (lowercase)."""
    words = query.lower().split()
    if words and _TRACE_ID_PREFIX.fullmatch(words[-1]):
        return words[-1]
    return None


# --- providers ------------------------------------------------------------------------


class TraceCommands(Provider):
    """"Open trace <id>": one hit per stored trace whose id starts with what was typed."""

    async def search(self, query: str) -> Hits:
        prefix = trace_id_prefix(query)
        if prefix is None:
            return
        app = _app(self)
        try:
            traces = await asyncio.to_thread(
                app.data.read, lambda r: r.traces_by_id_prefix(prefix, TRACE_HITS))
        except sqlite3.Error:
            return  # an error in the palette's search would end the app: offer nothing
        for trace in traces:
            yield Hit(1.0 if trace.trace_id == prefix else 0.9,
                      _trace_prompt(trace, len(prefix), self.match_style or _MATCH_STYLE),
                      partial(app.open_trace, trace.trace_id),
                      text=f"Open trace {trace.trace_id}")
        if not traces and len(prefix) == 32:
            yield Hit(1.0, Content.assemble("Open trace ", (prefix, "bold"), "\n",
                                            ("not stored", "italic $text-muted")),
                      partial(app.open_trace, prefix), text=f"Open trace {prefix}")


def _trace_prompt(trace: TraceSummary, typed: int, match: Style) -> Content:
    """"Open trace <id>" (the typed part marked), and below it what the trace is."""
    tid = trace.trace_id
    name = clean(trace.root_span_name) if trace.has_root else "(root span not received)"
    parts: list[str | tuple[str, str | Style]] = [
        "Open trace ", (tid[:typed], match), (tid[typed:], "bold"), "\n",
        (clean(trace.root_service_name), service_colour(trace.root_service_name)), " ",
        (name, "" if trace.has_root else "italic"),
        f"  {format_duration(trace.duration_ns)}  {plural(trace.span_count, 'span')}",
    ]
    if trace.error_count:
        parts.append((f"  ✖ {plural(trace.error_count, 'error')}", "bold #ff5f5f"))
    return Content.assemble(*parts)


class ServiceCommands(Provider):
    """"Show traces of service <name>": one hit per service that appears in stored traces."""

    def __init__(self, screen: Screen, match_style: Style | None = None) -> None:
        super().__init__(screen, match_style)
        self._services: list[str] = []

    async def startup(self) -> None:
        self._services = await asyncio.to_thread(
            _app(self).data.read, lambda r: r.service_names(SERVICE_LIMIT))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        style = self.match_style or _MATCH_STYLE
        found = []
        for name in self._services:
            phrase = SERVICE_PHRASE + clean(name)
            score, offsets = matcher.fuzzy_search.match(matcher.query, phrase)
            if score > 0:
                found.append((score, name, phrase, offsets))
        # The best few: a short query matches every service, and the palette is for picking.
        found.sort(key=lambda hit: hit[0], reverse=True)
        for score, name, phrase, offsets in found[:SERVICE_HITS]:
            prompt = Content(phrase)
            for offset in offsets:
                prompt = prompt.stylize(style, offset, offset + 1)
            yield Hit(score, prompt, partial(show_service, _app(self), name), text=phrase)


class ServicePicker(ServiceCommands):
    """The services palette opened by "Show traces of service…": lists them all at once."""

    async def discover(self) -> Hits:
        for name in self._services:
            phrase = SERVICE_PHRASE + clean(name)
            yield DiscoveryHit(Content(phrase), partial(show_service, _app(self), name),
                               text=phrase)


def palette_commands(app: TracedeskApp, screen: Screen) -> Iterable[SystemCommand]:
    """Commands offered with an empty query (and found by fuzzy search)."""
    yield SystemCommand("Open trace…", "Type a trace id or its first characters",
                        partial(_pick, app, TraceCommands, "Trace id or its first characters…"))
    yield SystemCommand("Show traces of service…", "Filter the traces list to one service",
                        partial(_pick, app, ServicePicker, "Service name…"))
    if (isinstance(screen, TracesScreen) and screen.following
            and screen.order is TraceOrder.NEWEST):
        yield SystemCommand("Pause following",
                            "Keep the traces list still; new traces are counted, not shown",
                            screen.pause_following)
    else:
        yield SystemCommand("Follow newest traces",
                            "Show the newest traces first and keep up as they arrive",
                            partial(follow, app))
    yield SystemCommand("Clear all data…",
                        "Delete every stored trace, span, log and metric point",
                        partial(start_clear_all, app))


def _pick(app: TracedeskApp, provider: type[Provider], placeholder: str) -> None:
    app.push_screen(CommandPalette(providers=[provider], placeholder=placeholder))


# --- what the commands do -------------------------------------------------------------


def traces_list(app: TracedeskApp) -> TracesScreen:
    """Go back to the traces list, closing any trace open on top of it."""
    app.action_show("traces")
    screen = app.screen_stack[0]
    assert isinstance(screen, TracesScreen)
    return screen


def show_service(app: TracedeskApp, service: str) -> None:
    traces_list(app).show_filter(service_query(service))


def follow(app: TracedeskApp) -> None:
    traces_list(app).action_follow()


# --- clear all data -------------------------------------------------------------------


def start_clear_all(app: TracedeskApp) -> None:
    """Count what would go, ask, then delete: every database step runs in a thread."""
    app.run_worker(partial(_count, app), thread=True, group="clear-all", exit_on_error=False)


def _count(app: TracedeskApp) -> None:
    try:
        counts = app.data.read(lambda r: r.row_counts())
    except sqlite3.Error as exc:
        app.call_from_thread(app.notify, f"Could not read the database: {exc}.",
                             title="Clear all data", severity="error", markup=False)
        return
    app.call_from_thread(_confirm, app, counts)


def _confirm(app: TracedeskApp, counts: RowCounts) -> None:
    if not counts.total:
        app.notify("There is no data to clear.", timeout=4)
        return
    body = Content.assemble(
        "This deletes from the database:\n\n",
        _count_lines(counts), "\n\n",
        ("This cannot be undone.", "bold $error"),
        " Telemetry that arrives afterwards is stored as usual.",
    )
    app.push_screen(ConfirmScreen("Clear all data?", body, "Delete all"),
                    partial(_confirmed, app))


def _count_lines(counts: RowCounts) -> Content:
    width = len(f"{max(counts.traces, counts.spans, counts.logs, counts.metric_points):,}")
    rows = [(counts.traces, "trace"), (counts.spans, "span"), (counts.logs, "log record"),
            (counts.metric_points, "metric point")]
    return Content("\n".join(f"  {n:>{width},} {what}{'' if n == 1 else 's'}"
                             for n, what in rows))


def _confirmed(app: TracedeskApp, yes: bool | None) -> None:
    if yes:
        app.notify("Clearing all data…", timeout=3)
        app.run_worker(partial(_clear, app), thread=True, group="clear-all",
                       exit_on_error=False)


def _clear(app: TracedeskApp) -> None:
    try:
        cleared = clear_all(app.data.db_path)
    except ClearError as exc:
        app.call_from_thread(app.notify, f"Could not clear the data: {exc}.",
                             title="Clear all data", severity="error", timeout=12,
                             markup=False)
        return
    app.call_from_thread(_cleared, app, cleared)


def _cleared(app: TracedeskApp, counts: RowCounts) -> None:
    while isinstance(app.screen, TraceScreen) and len(app.screen_stack) > 1:
        app.pop_screen()  # the trace it showed is gone
    app.notify(f"Deleted {plural(counts.traces, 'trace')}, {plural(counts.spans, 'span')}, "
               f"{plural(counts.logs, 'log record')} and "
               f"{plural(counts.metric_points, 'metric point')}.",
               title="All data cleared", timeout=8, markup=False)
