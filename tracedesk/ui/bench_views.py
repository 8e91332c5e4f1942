"""`tracedesk bench-views`: the Services, RED and Logs screens' targets, on the real app.

The app runs headless (``App.run_test``) on a database of the demo shop's spans and log
records spread over the hour before it was built (see ``bench_views_data``). The screens'
windows follow the data, not the clock, so a database kept with ``--keep`` stays valid:
the service graph reads the 5 minutes before the newest trace's start, the RED panel the
5 minutes either side of its span, and the log list has no window (newest first).

Each screen is timed as a fresh screen (the first time a session shows it): between two
samples its mode is removed and added again. Key → frame samples reuse ``bench``'s clock.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import NoActiveWorker, get_current_worker

from tracedesk.store.graph_rollups import STEP_SLICES
from tracedesk.store.writer import Writer
from tracedesk.ui.app import ReceiverLine, TracedeskApp, make_app
from tracedesk.ui.bench import (
    SIZE,
    FrameClock,
    LineProbe,
    Result,
    build_once,
    list_ready,
    print_table,
    quiet,
    rows_filled,
    target_json,
    timed_key,
    timed_keys,
    waterfall_ready,
)
from tracedesk.ui.bench_views_data import ViewsData, build_views_database, describe_views
from tracedesk.ui.screens.logs import LogsScreen
from tracedesk.ui.screens.red import RedScreen
from tracedesk.ui.screens.services import ServicesScreen
from tracedesk.ui.widgets.key_table import KeyTable
from tracedesk.ui.widgets.log_list import LogList
from tracedesk.ui.widgets.waterfall import Waterfall

OPENS = 3  # fresh openings of each screen per run
WAIT_SECONDS = 120
WALK_LIMIT = 20  # pagedowns per page-read sample at most (a page is ~4 screenfuls)
TARGETS = (
    ("services", "services screen ready (4 → graph table drawn)", 500),
    ("red", "RED panel ready (m on a span → its figures drawn)", 500),
    ("logs open", "logs screen opens (2 → first page of rows drawn)", 300),
    ("logs page", "log list: pagedown/pageup a screenful, rows read before", 16),
    ("logs page new", "log list: pagedown onto unread rows, until drawn", 16),
    ("logs G/g", "log list: G/g (frame, rows may be placeholders)", 16),
    ("logs G/g rows", "log list: G/g until its rows are read and drawn", 16),
)
# Which worker group reads each screen's data, and which screen method shows it.
READS = {"services": "service-graph", "red": "red", "logs open": "live-list"}
SHOWS = {"services": ServicesScreen, "red": RedScreen, "logs open": LogsScreen}
METHOD = """\
how: ready is from sending the key event to the end of the first frame that draws the
  screen's data (services: the table's first row; RED: its last figure; logs: every row on
  screen), encoded as terminal output (headless: not written). Each opening is of a fresh
  screen, as the first time in a session. The RED panel is opened with m on the root span of
  the trace that starts mid-way through the data. Paging walks down the log list with
  pagedown, then back up with pageup, and counts only presses that scrolled the view (a
  pagedown from the top line, or a pageup from the bottom one, only moves the cursor):
  'unread rows' are the presses whose view reached a page not read yet (about one in four),
  the others are 'rows read before'. Both, and 'G/g rows' (which drops the cached pages
  first, as bench-app), wait until every row on screen is drawn from the database.
  parts: 'db read' is the time the screen's worker held the database (its query), 'worker'
  the worker's read + compute as the screen measures it, 'show' the main thread filling the
  widgets; the rest of 'ready' is dispatch, thread hand-offs, layout and the frame."""


# --- what a frame shows and where the time went ---------------------------------------------

class Drawn:
    """Notes when a widget of ``cls`` draws a line that ``shows`` accepts (patched on the
    class: the screen and its widgets are built only when the key is handled)."""

    def __init__(self, cls: type[Widget], shows: Callable[[Widget, int, Strip], bool]) -> None:
        self.cls, self.shows, self.seen = cls, shows, False

    @contextmanager
    def watching(self) -> Iterator[None]:
        own = "render_line" in self.cls.__dict__
        original = self.cls.render_line

        def render_line(widget: Widget, y: int) -> Strip:
            strip = original(widget, y)
            if not self.seen and self.shows(widget, y, strip):
                self.seen = True
            return strip

        self.cls.render_line = render_line  # type: ignore[method-assign]
        try:
            yield
        finally:
            if own:
                self.cls.render_line = original  # type: ignore[method-assign]
            else:
                del self.cls.render_line


def _services_row(widget: Widget, y: int, strip: Strip) -> bool:
    return (widget.id == "services-table" and y == 1 and isinstance(widget, KeyTable)
            and widget.row_count > 0 and bool(strip.text.strip()))


def _red_figure(widget: Widget, y: int, strip: Strip) -> bool:
    # The last widget the panel fills: drawn, every figure before it is too.
    return widget.id == "red-service-p99-value" and bool(strip.text.strip())


@dataclass
class Parts:
    """Database reads by worker group, and screens' ``_show`` calls, with their times."""

    reads: list[tuple[float, float, str]] = field(default_factory=list)
    shows: list[tuple[float, float, type, Any]] = field(default_factory=list)

    def attach(self, app: TracedeskApp) -> None:
        app.data.read = self._timed_read(app.data.read)  # type: ignore[method-assign]
        app.data.read_long = self._timed_read(app.data.read_long)  # type: ignore[method-assign]
        app.data.read_now = self._timed_read_now(app.data.read_now)  # type: ignore[method-assign]

    def _timed_read_now(self, original: Callable[[Callable[[Any], Any]], tuple[bool, Any]]
                        ) -> Callable[[Callable[[Any], Any]], tuple[bool, Any]]:
        """Lists read their quick pages on the event loop: counted as their page reads."""
        def read_now(query: Callable[[Any], Any]) -> tuple[bool, Any]:
            started = time.perf_counter()
            done, answer = original(query)
            if done:
                self.reads.append((started, time.perf_counter(), "live-list-pages"))
            return done, answer

        return read_now

    def _timed_read(self, original: Callable[[Callable[[Any], Any]], Any]
                    ) -> Callable[[Callable[[Any], Any]], Any]:
        def read(query: Callable[[Any], Any]) -> Any:
            try:
                group = get_current_worker().group
            except NoActiveWorker:
                group = ""
            started = time.perf_counter()
            try:
                return original(query)
            finally:
                self.reads.append((started, time.perf_counter(), group))

        return read

    @contextmanager
    def timing_shows(self) -> Iterator[None]:
        """Time each screen's ``_show`` (it fills the widgets on the main thread)."""
        originals = {cls: (cls.__dict__.get("_show"), cls._show) for cls in SHOWS.values()}
        for cls, (_, show) in originals.items():
            cls._show = self._timed(cls, show)
        try:
            yield
        finally:
            for cls, (own, _) in originals.items():
                if own is not None:
                    cls._show = own
                else:
                    delattr(cls, "_show")

    def _timed(self, cls: type, show: Callable[..., None]) -> Callable[..., None]:
        def timed(screen: Any, computed: Any, *rest: Any) -> None:
            started = time.perf_counter()
            try:
                show(screen, computed, *rest)
            finally:
                self.shows.append((started, time.perf_counter(), cls, computed))
        return timed

    def read_ms(self, start: float, end: float, group: str) -> float:
        return 1000 * sum(e - s for s, e, g in self.reads if g == group and start <= s <= end)

    def shown(self, start: float, end: float, cls: type) -> list[tuple[float, Any]]:
        """(ms, what was shown) of ``cls``'s ``_show`` calls in ``[start, end]``."""
        return [(1000 * (e - s), what) for s, e, c, what in self.shows
                if c is cls and start <= s <= end]


Breakdown = dict[str, dict[str, list[float]]]


def _note_parts(parts: Parts, name: str, start: float, end: float, breakdown: Breakdown,
                notes: dict[str, list[float]]) -> None:
    into = breakdown.setdefault(name, {})
    into.setdefault("db read", []).append(parts.read_ms(start, end, READS[name]))
    shown = parts.shown(start, end, SHOWS[name])
    into.setdefault("show", []).append(sum(ms for ms, _ in shown))
    if shown and name != "logs open":  # a _Computed or _Red: the worker timed itself
        what = shown[-1][1]
        into.setdefault("worker (read + compute)", []).append(what.seconds * 1000)
        if name == "services":
            notes.setdefault("services: spans read for the graph", []).append(what.spans)
        elif what.operation is not None:
            notes.setdefault("RED: calls of the operation in the window", []).append(
                what.operation.total.calls)
            if what.service is not None:
                notes.setdefault("RED: calls of the service in the window", []).append(
                    what.service.total.calls)


# --- the session -------------------------------------------------------------------------

@dataclass
class Session:
    pilot: Pilot
    clock: FrameClock
    parts: Parts
    results: dict[str, Result]
    breakdown: Breakdown
    notes: dict[str, list[float]]

    @property
    def app(self) -> TracedeskApp:
        return self.pilot.app  # type: ignore[return-value]

    async def timed(self, name: str, ready: Callable[[], bool],
                    act: Callable[[], Any]) -> None:
        """Run ``act`` (a key press); the time until the first frame where ``ready``."""
        await quiet(self.pilot)
        done = self.clock.expect(ready)
        started = time.perf_counter()
        await act()
        end, compose = await asyncio.wait_for(done, WAIT_SECONDS)
        self.results[name].samples_ms.append((end - started) * 1000)
        self.results[name].compose_ms.append(compose * 1000)
        await quiet(self.pilot)  # its worker's call to show the data has run
        _note_parts(self.parts, name, started, end, self.breakdown, self.notes)

    async def fresh(self, mode: str, screen: type) -> None:
        """Back to the traces screen, with ``mode``'s screen to be built anew."""
        await self.pilot.press("1")
        await quiet(self.pilot)
        await self.app.remove_mode(mode)
        self.app.add_mode(mode, screen)


def _logs_ready(app: TracedeskApp) -> bool:
    if not isinstance(app.screen, LogsScreen):
        return False
    log_list = app.screen.query_one(LogList)
    return log_list.total > 0 and rows_filled(log_list)


async def _services(s: Session, drawn: Drawn) -> None:
    drawn.seen = False
    await s.timed("services", lambda: drawn.seen, partial(s.pilot.press, "4"))
    await s.fresh("services", ServicesScreen)


async def _logs(s: Session, presses: int, keys: bool) -> None:
    await s.timed("logs open", lambda: _logs_ready(s.app), partial(s.pilot.press, "2"))
    if keys:
        probe = LineProbe(s.app.screen.query_one(LogList))
        await _walk(s, probe, presses)
        await timed_keys(s.pilot, s.clock, presses, probe, ("G", "g"), s.results, "logs G/g",
                         also_filled="logs G/g rows")
    await s.fresh("logs", LogsScreen)


async def _page(s: Session, probe: LineProbe, key: str) -> tuple[float, float] | None:
    """Press ``key`` until the rows on screen are drawn; (ms, compose ms) if it scrolled the
    view, else None. Counted as 'unread rows' when a page was read meanwhile."""
    await quiet(s.pilot)  # no page read is pending before the press
    top, started = probe.widget.scroll_offset.y, time.perf_counter()
    ms, compose = await timed_key(s.pilot, s.clock, key, probe, filled=True)
    if probe.widget.scroll_offset.y == top:
        return None
    read = any(g == "live-list-pages" and t >= started for t, _, g in s.parts.reads)
    result = s.results["logs page new" if read else "logs page"]
    result.samples_ms.append(ms)
    result.compose_ms.append(compose)
    return ms, compose


async def _walk(s: Session, probe: LineProbe, presses: int) -> None:
    """Down from the top until ``presses`` pagedowns each read a page, then back up."""
    await s.pilot.press("g")
    new = s.results["logs page new"].samples_ms
    enough = len(new) + presses  # earlier runs' samples are there too
    for _ in range(presses * WALK_LIMIT):
        if len(new) >= enough:
            break
        await _page(s, probe, "pagedown")
    while probe.widget.cursor > 0:  # the first pageup only moves the cursor to the top line
        await _page(s, probe, "pageup")


async def _red(s: Session, data: ViewsData, drawn: Drawn) -> None:
    await quiet(s.pilot)
    opened = s.clock.expect(lambda: waterfall_ready(s.app))
    s.app.open_trace(data.red_trace_id, data.red_span_id)
    await asyncio.wait_for(opened, WAIT_SECONDS)
    await quiet(s.pilot)
    selected = s.app.screen.query_one(Waterfall).selected
    if selected is None or selected.span_id != data.red_span_id:
        raise RuntimeError("the RED panel's span is not selected in its trace")
    drawn.seen = False
    await s.timed("red", lambda: drawn.seen and isinstance(s.app.screen, RedScreen),
                  partial(s.pilot.press, "m"))
    await s.pilot.press("escape")  # the RED panel
    await quiet(s.pilot)
    await s.pilot.press("escape")  # the trace
    await quiet(s.pilot)


async def views_session(clock: FrameClock, parts: Parts, data: ViewsData, presses: int,
                        results: dict[str, Result], breakdown: Breakdown,
                        notes: dict[str, list[float]]) -> None:
    """One app run: the Services screen, the Logs screen and its keys, the RED panel."""
    app = make_app(data.path, ReceiverLine("viewing only (benchmark)", False))
    clock.attach(app)
    parts.attach(app)
    ready = clock.expect(lambda: list_ready(app))
    table, figure = Drawn(KeyTable, _services_row), Drawn(Static, _red_figure)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(ready, WAIT_SECONDS)
        s = Session(pilot, clock, parts, results, breakdown, notes)
        with table.watching(), figure.watching():
            for _ in range(OPENS):
                await _services(s, table)
            for n in range(OPENS):
                await _logs(s, presses, keys=n == 0)
            for _ in range(OPENS):
                await _red(s, data, figure)
        await pilot.press("q")


# --- the command ---------------------------------------------------------------------------

def _prepare(keep: Path | None, tmp: Path, spans: int, logs: int, say: Callable[[str], None]
             ) -> ViewsData:
    path = (keep if keep is not None else tmp) / f"bench-views-{spans}-spans-{logs}-logs.db"
    started = time.perf_counter()
    if build_once(path, partial(build_views_database, spans=spans, logs=logs, progress=say),
                  say, f"building {spans:,} demo spans and {logs:,} log records over the last "
                  "hour (decode + writer, as the receiver stores them) ..."):
        say(f"built in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    slices = roll_up_all(path)
    if slices:
        say(f"service-graph rollups of {slices:,} slices stored in "
            f"{time.perf_counter() - started:.0f} s, as the writer does when data pauses")
    return describe_views(path)


def roll_up_all(path: Path) -> int:
    """Store every stale service-graph slice of the database; how many were stored."""
    writer = Writer(path)
    try:
        stored = 0
        while done := writer.roll_up(STEP_SLICES):
            stored += done
        return stored
    finally:
        writer.close()


def run_bench_views(spans: int, logs: int, runs: int, keep: Path | None, as_json: bool,
                    presses: int = 10) -> int:
    def say(line: str) -> None:
        if not as_json:
            print(line, flush=True)

    results = {key: Result(text, limit, [], []) for key, text, limit in TARGETS}
    breakdown: Breakdown = {}
    notes: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tracedesk-bench-views-") as tmp_name:
        data = _prepare(keep, Path(tmp_name), spans, logs, say)
        say(f"measuring ({runs} run(s), terminal {SIZE[0]}×{SIZE[1]}) ...")
        clock, parts = FrameClock(), Parts()
        with clock.composing(), parts.timing_shows():
            for _ in range(runs):
                asyncio.run(views_session(clock, parts, data, presses, results, breakdown,
                                          notes))
    _report(results, breakdown, notes, data, runs, as_json)
    return 0


def _medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(statistics.median(v), 2) for k, v in values.items() if v}


def _report(results: dict[str, Result], breakdown: Breakdown, notes: dict[str, list[float]],
            data: ViewsData, runs: int, as_json: bool) -> None:
    described = {"spans": data.spans, "logs": data.logs,
                 "span_minutes": round((data.newest_ns - data.oldest_ns) / 60e9, 1),
                 "red_operation": data.red_operation}
    if as_json:
        print(json.dumps({
            "data": described, "runs": runs, "terminal": list(SIZE), "method": METHOD,
            "breakdown_ms": {k: _medians(v) for k, v in breakdown.items()},
            "notes": _medians(notes),
            "targets": [target_json(r) for r in results.values()],
        }, indent=1))
        return
    print(f"\ndata: {data.spans:,} spans over {described['span_minutes']} minutes, "
          f"{data.logs:,} log records; RED opened on {data.red_operation}")
    print(f"\n{METHOD}\n")
    print_table(results)
    print("\nwhere the time goes (medians, ms):")
    for name, values in breakdown.items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in _medians(values).items())
        print(f"  {results[name].target}: ready {results[name].median_ms:.1f}; {parts}")
    for name, value in _medians(notes).items():
        print(f"  {name}: {value:,.0f}")
    missed = [r.target for r in results.values() if not r.passed]
    print("all targets met" if not missed else f"MISSED {len(missed)}: " + "; ".join(missed))
