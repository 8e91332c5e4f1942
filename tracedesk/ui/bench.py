"""`tracedesk bench-app`: the app's UI targets, measured on the real app.

The app runs headless (``App.run_test``) on a stored database. A key sample is the time from
sending the key event to the end of the first frame composed after the key's effect reached
the widget, including encoding that frame as terminal output (headless skips only the
write). Start-up is timed in a subprocess under a pseudo-terminal. Under load, a real
``tracedesk serve`` is fed over OTLP/gRPC by a separate sender process at a fixed rate.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.screen import Screen
from textual.strip import Strip

from tracedesk.ui.app import ReceiverLine, TracedeskApp, make_app
from tracedesk.ui.bench_data import Built, build_database, describe
from tracedesk.ui.bench_process import measure_startup, receiver, sender
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.screens.traces import TracesScreen
from tracedesk.ui.widgets.paged_list import PagedList
from tracedesk.ui.widgets.trace_list import TraceList
from tracedesk.ui.widgets.waterfall import Waterfall

SIZE = (160, 50)
LOAD_RATE = 5_000  # spans/s sent while keys are pressed
LOAD_KEY_INTERVAL = 0.1
METHOD = """\
how: key → frame is from sending the key event to the end of the first frame composed after
  the key's action ran (headless: the frame is encoded as terminal output, not written); keys
  are spaced out, so no frame waits for Textual's 60 fps pacing. 'compose' is that frame's own
  share (compositor + encoding); the rest is dispatch, the action and layout.
  start: `tracedesk --no-receiver` spawned under a pty until the text reaches the terminal
  (Python start-up and imports included). ready: from building the app to the first frame
  with the first page's rows. load: j/k on the paused list while `tracedesk serve` stores
  5,000 spans/s sent over OTLP/gRPC by another process."""


@dataclass
class Result:
    target: str
    limit_ms: float
    samples_ms: list[float]
    compose_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else math.nan

    @property
    def p95_ms(self) -> float:
        s = sorted(self.samples_ms)
        return s[max(0, math.ceil(0.95 * len(s)) - 1)] if s else math.nan

    @property
    def passed(self) -> bool:
        return self.median_ms < self.limit_ms


class FrameClock:
    """Notes when frames end and wakes a waiter whose condition holds at a frame's end."""

    def __init__(self) -> None:
        self._compose_start: float | None = None
        self._waiting: tuple[Callable[[], bool], asyncio.Future[tuple[float, float]]] | None
        self._waiting = None

    def attach(self, app: TracedeskApp) -> None:
        original = app._display

        def display(screen: Screen, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is not None:
                renderable.render_segments(app.console)  # what a terminal would be sent
                self._frame_done()

        app._display = display  # type: ignore[method-assign]

    @contextmanager
    def composing(self) -> Iterator[None]:
        """Time each frame from the start of its compositor refresh."""
        original = Screen._compositor_refresh

        def timed(screen: Screen) -> None:
            self._compose_start = time.perf_counter()
            original(screen)

        Screen._compositor_refresh = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            Screen._compositor_refresh = original  # type: ignore[method-assign]

    def expect(self, condition: Callable[[], bool]) -> asyncio.Future[tuple[float, float]]:
        """A future for (frame end, compose seconds) of the first frame where ``condition``."""
        future = asyncio.get_running_loop().create_future()
        self._waiting = (condition, future)
        return future

    def _frame_done(self) -> None:
        end = time.perf_counter()
        if self._waiting is None:
            return
        condition, future = self._waiting
        if not future.done() and condition():
            compose = end - self._compose_start if self._compose_start else math.nan
            future.set_result((end, compose))
            self._waiting = None


# --- conditions on what a frame shows ------------------------------------------------------

def rows_filled(trace_list: PagedList[Any]) -> bool:
    """Every row on screen drawn from data, none as a placeholder awaiting its page."""
    top = trace_list.scroll_offset.y
    bottom = min(trace_list.total, top + trace_list.size.height - 1)
    return trace_list.size.height > 1 and all(
        trace_list.cached_row(i) is not None for i in range(top, bottom))


def list_ready(app: TracedeskApp) -> bool:
    screen = app.screen
    if not isinstance(screen, TracesScreen):
        return False
    trace_list = screen.query_one(TraceList)
    return trace_list.total > 0 and rows_filled(trace_list)


def waterfall_ready(app: TracedeskApp) -> bool:
    screen = app.screen
    if not isinstance(screen, TraceScreen):
        return False
    waterfall = screen.query_one(Waterfall)
    return bool(waterfall.rows) and waterfall.size.height > 1


def _state(widget: PagedList[Any] | Waterfall) -> tuple[int, int]:
    rows = widget.total if isinstance(widget, PagedList) else len(widget.rows)
    return widget.cursor, rows


class LineProbe:
    """Which screen lines a widget drew, in which state: a key counts as answered only by
    a frame that drew the line now under the cursor (not just any frame)."""

    def __init__(self, widget: PagedList[Any] | Waterfall) -> None:
        self.widget = widget
        self.drawn: dict[int, tuple[int, int]] = {}  # screen line -> state when drawn
        original = widget.render_line

        def render_line(y: int) -> Strip:
            self.drawn[y] = _state(widget)
            return original(y)

        widget.render_line = render_line  # type: ignore[method-assign]

    def cursor_drawn(self, *, as_now: bool = True) -> bool:
        """The cursor's line was drawn since ``drawn`` was cleared (in the current state)."""
        w = self.widget
        line = w.cursor - w.scroll_offset.y + 1
        return line in self.drawn and (not as_now or self.drawn[line] == _state(w))


# --- the session ---------------------------------------------------------------------------

async def quiet(pilot: Pilot) -> None:
    """Let the previous key's follow-up work (pages, details) finish before the next key."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await asyncio.sleep(0.03)


async def timed_key(pilot: Pilot, clock: FrameClock, key: str, probe: LineProbe,
               filled: bool = False) -> tuple[float, float]:
    """Press ``key``; (ms until the frame showing its effect, that frame's compose ms)."""
    await quiet(pilot)
    widget = probe.widget
    before = _state(widget)
    probe.drawn.clear()
    done = clock.expect(lambda: _state(widget) != before and probe.cursor_drawn() and (
        not filled or rows_filled(widget)))  # type: ignore[arg-type]
    started = time.perf_counter()
    await pilot.press(key)
    end, compose = await asyncio.wait_for(done, 30)
    return (end - started) * 1000, compose * 1000


async def timed_keys(pilot: Pilot, clock: FrameClock, presses: int, probe: LineProbe,
                     keys: tuple[str, str], results: dict[str, Result], name: str,
                     also_filled: str | None = None) -> None:
    widget = probe.widget
    for n in range(presses):
        key = keys[n % 2]
        ms, compose = await timed_key(pilot, clock, key, probe)
        results[name].samples_ms.append(ms)
        results[name].compose_ms.append(compose)
        if also_filled and isinstance(widget, PagedList):
            # The same key again with no page cached (as after a reload), timed until every
            # row on screen is drawn from the database.
            await timed_key(pilot, clock, keys[(n + 1) % 2], probe)
            widget.reset(widget.total, widget.generation)
            ms, compose = await timed_key(pilot, clock, key, probe, filled=True)
            results[also_filled].samples_ms.append(ms)
            results[also_filled].compose_ms.append(compose)


def _render_ms(widget: PagedList[Any] | Waterfall) -> float:
    """The widget's own cost of drawing every visible line (median of 20), from scratch:
    the strips it keeps of rows drawn before are dropped each time."""
    samples = []
    for _ in range(20):
        widget.strips.clear()
        started = time.perf_counter()
        for y in range(widget.size.height):
            widget.render_line(y)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def app_session(clock: FrameClock, built: Built, opens: int, presses: int,
                      results: dict[str, Result], render: dict[str, list[float]]) -> None:
    """One app run: the list appears, keys on it, the big trace opens, keys on it."""
    app = make_app(built.path, ReceiverLine("viewing only (benchmark)", False))
    clock.attach(app)
    ready = clock.expect(lambda: list_ready(app))
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        keys = partial(timed_keys, pilot, clock, presses)
        end, compose = await asyncio.wait_for(ready, 60)
        results["ready"].samples_ms.append((end - started) * 1000)
        results["ready"].compose_ms.append(compose * 1000)
        trace_list = app.screen.query_one(TraceList)
        render["trace list"].append(_render_ms(trace_list))
        probe = LineProbe(trace_list)
        await pilot.press("pagedown", "pagedown", "j")  # j/k where the list is scrolled
        await keys(probe, ("j", "k"), results, "list j/k")
        await keys(probe, ("pagedown", "pageup"), results, "list page")
        await keys(probe, ("G", "g"), results, "list G/g", also_filled="list G/g rows")
        for n in range(opens):
            await pilot.press("g")
            await quiet(pilot)
            if trace_list.selected is None or trace_list.selected.trace_id != built.big_trace_id:
                raise RuntimeError("the batch job's trace is not the first row")
            opened = clock.expect(lambda: waterfall_ready(app))
            started = time.perf_counter()
            await pilot.press("enter")
            end, compose = await asyncio.wait_for(opened, 60)
            results["open"].samples_ms.append((end - started) * 1000)
            results["open"].compose_ms.append(compose * 1000)
            waterfall = app.screen.query_one(Waterfall)
            if n == 0:
                render["waterfall"].append(_render_ms(waterfall))
                probe = LineProbe(waterfall)
                await pilot.press("pagedown", "pagedown", "j")
                await keys(probe, ("j", "k"), results, "wf j/k")
                await keys(probe, ("pagedown", "pageup"), results, "wf page")
                await keys(probe, ("G", "g"), results, "wf G/g")
                await keys(probe, ("space", "space"), results, "wf fold")
                await pilot.press("j")  # the first stage: a subtree of a few hundred spans
                await keys(probe, ("space", "space"), results, "wf fold stage")
            await quiet(pilot)
            await pilot.press("escape")
            await quiet(pilot)


async def keys_under_load(clock: FrameClock, db: Path, go: Any, seconds: float,
                          result: Result) -> int:
    """j/k on the traces screen while the receiver stores what the sender sends.

    Returns how many keys a reload undid: the row the key selected was no longer selected.
    (A reload may move the cursor with its row, when late traces sort in above it.)"""
    app = make_app(db, ReceiverLine("benchmark receiver", True))
    clock.attach(app)
    ready = clock.expect(lambda: list_ready(app))
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(ready, 60)
        trace_list = app.screen.query_one(TraceList)
        acted: list[str | None] = []  # the trace each key's action selected

        probe = LineProbe(trace_list)

        def marked(original: Callable[[], None]) -> Callable[[], None]:
            def action() -> None:
                original()
                probe.drawn.clear()
                acted.append(_selected_trace(trace_list))
            return action

        # A reload may move the cursor too, so the key's own action marks its effect.
        for name in ("action_cursor_down", "action_cursor_up"):
            setattr(trace_list, name, marked(getattr(trace_list, name)))
        go.set()
        # Leave follow mode first, as a user reading the list does: while following, each
        # commit puts the cursor back on the newest trace.
        await pilot.press("j")
        await asyncio.sleep(1.0)  # the first commits arrive and the polls pick them up
        stop = time.perf_counter() + seconds
        undone = 0
        while time.perf_counter() < stop:
            count = len(acted)
            done = clock.expect(lambda c=count: len(acted) > c and probe.cursor_drawn(
                as_now=False))  # type: ignore[misc]
            started = time.perf_counter()
            key = "j" if len(result.samples_ms) % 2 == 0 else "k"
            # Sent as the driver does: Pilot's own waits for idle never end under load.
            app._driver.send_message(events.Key(key, key))  # type: ignore[union-attr]
            end, compose = await asyncio.wait_for(done, 30)
            result.samples_ms.append((end - started) * 1000)
            result.compose_ms.append(compose * 1000)
            n = len(result.samples_ms)
            await asyncio.sleep(LOAD_KEY_INTERVAL * (0.5 + (n * 7919 % 100) / 100))
            undone += _selected_trace(trace_list) != acted[-1]
        await pilot.press("q")
    return undone


def _selected_trace(trace_list: TraceList) -> str | None:
    row = trace_list.cached_row(trace_list.cursor)
    return row.trace_id if row is not None else None


# --- the command ---------------------------------------------------------------------------

TARGETS = (
    ("start", "start → first frame (list header), subprocess in a pty", 1000),
    ("start row", "start → first row drawn, subprocess in a pty", 1000),
    ("ready", "traces screen ready (first page drawn), in-process", 300),
    ("list j/k", "trace list: j/k (scrolled down)", 16),
    ("list page", "trace list: pagedown/pageup", 16),
    ("list G/g", "trace list: G/g (frame, rows may be placeholders)", 16),
    ("list G/g rows", "trace list: G/g until its rows are read and drawn", 16),
    ("open", "open the big trace (enter → waterfall drawn)", 500),
    ("wf j/k", "waterfall: j/k (scrolled down)", 16),
    ("wf page", "waterfall: pagedown/pageup", 16),
    ("wf G/g", "waterfall: G/g", 16),
    ("wf fold", "waterfall: space (fold / unfold the root)", 16),
    ("wf fold stage", "waterfall: space (fold / unfold a stage below the root)", 16),
    ("load", "trace list j/k while 5,000 spans/s arrive", 50),
)


def _prepare(keep: Path | None, tmp: Path, traces: int, spans: int, say: Callable[[str], None]
             ) -> Built:
    path = (keep if keep is not None else tmp) / f"bench-app-{traces}-traces-{spans}-spans.db"
    started = time.perf_counter()
    if not build_once(path, partial(build_database, traces=traces, big_spans=spans,
                                    progress=say), say,
                      f"building {traces:,} demo traces and a {spans:,}-span batch job trace "
                      "(decode + writer, as the receiver stores them) ..."):
        return describe(path)
    built = describe(path)
    say(f"built {built.traces:,} traces, {built.spans:,} spans in "
        f"{time.perf_counter() - started:.0f} s")
    return built


def build_once(path: Path, build: Callable[[Path], object], say: Callable[[str], None],
               building: str) -> bool:
    """Build the database at ``path`` (saying ``building``) unless one is kept there from
    before; whether it was built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        say(f"using the database kept in {path}")
        return False
    say(building)
    unfinished = path.with_suffix(".partial")  # renamed only once complete
    unfinished.unlink(missing_ok=True)
    build(unfinished)
    unfinished.rename(path)
    return True


def _load_copy(built: Built, keep: Path | None, tmp: Path) -> Path:
    """The database the receiver writes into: a copy when the built one is kept."""
    if keep is None:
        return built.path
    copy = tmp / "load.db"
    src, dst = sqlite3.connect(built.path), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    return copy


def run_bench_app(traces: int, trace_spans: int, runs: int, keep: Path | None,
                  load_seconds: float, as_json: bool, presses: int = 10) -> int:
    def say(line: str) -> None:
        if not as_json:
            print(line, flush=True)

    results = {key: Result(text, limit, [], []) for key, text, limit in TARGETS}
    render: dict[str, list[float]] = {"trace list": [], "waterfall": []}
    with tempfile.TemporaryDirectory(prefix="tracedesk-bench-app-") as tmp_name:
        tmp = Path(tmp_name)
        built = _prepare(keep, tmp, traces, trace_spans, say)
        say(f"measuring ({runs} run(s), terminal {SIZE[0]}×{SIZE[1]}) ...")
        for first_frame, first_row in measure_startup(built.path, runs, SIZE, tmp):
            results["start"].samples_ms.append(first_frame)
            results["start row"].samples_ms.append(first_row)
        clock = FrameClock()
        with clock.composing():
            for _ in range(runs):
                asyncio.run(app_session(clock, built, 3, presses, results, render))
        say(f"load: a receiver stores {LOAD_RATE:,} spans/s from a sender process ...")
        load_db = _load_copy(built, keep, tmp)
        load = {"sent_spans_per_second": 0.0}
        with receiver(load_db, tmp) as target, \
                sender(target, LOAD_RATE, load_seconds * runs + 2) as (go, outcome), \
                clock.composing():
            load["keys_undone"] = asyncio.run(keys_under_load(
                clock, load_db, go, load_seconds * runs, results["load"]))
            load["sent_spans_per_second"] = outcome()
    _report(results, render, load, built, runs, as_json)
    return 0


def target_json(r: Result) -> dict[str, Any]:
    """One target as the JSON report gives it."""
    return {**{k: v for k, v in asdict(r).items() if k != "compose_ms"},
            "median_ms": round(r.median_ms, 2), "p95_ms": round(r.p95_ms, 2),
            "compose_median_ms": round(statistics.median(r.compose_ms), 2)
            if r.compose_ms else None, "passed": r.passed}


def print_table(results: dict[str, Result]) -> None:
    """The report's table: a line per target, with its verdict."""
    print(f"{'target':<58} {'median':>8} {'p95':>8} {'compose':>8} {'limit':>6}  n   result")
    for r in results.values():
        compose = f"{statistics.median(r.compose_ms):8.2f}" if r.compose_ms and not all(
            math.isnan(c) for c in r.compose_ms) else f"{'-':>8}"
        verdict = "pass" if r.passed else "MISSED  <<<"
        print(f"{r.target:<58} {r.median_ms:8.1f} {r.p95_ms:8.1f} {compose} "
              f"{r.limit_ms:6.0f} {len(r.samples_ms):>3}   {verdict}")


def _report(results: dict[str, Result], render: dict[str, list[float]], load: dict[str, float],
            built: Built, runs: int, as_json: bool) -> None:
    if as_json:
        print(json.dumps({
            "data": {"traces": built.traces, "spans": built.spans,
                     "big_trace_spans": built.big_trace_spans},
            "runs": runs, "terminal": list(SIZE), "method": METHOD,
            "render_all_visible_lines_ms": {k: statistics.median(v) for k, v in render.items()
                                            if v},
            "load": load,
            "targets": [target_json(r) for r in results.values()],
        }, indent=1))
        return
    print(f"\n{METHOD}\n")
    print_table(results)
    costs = ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in render.items() if v)
    print(f"\nwidget render_line for every visible line, no strip kept (median): {costs}")
    print(f"load: the sender achieved {load['sent_spans_per_second']:,.0f} spans/s; "
          f"{load['keys_undone']:.0f} of {len(results['load'].samples_ms)} keys were undone "
          "by a reload (the row the key selected no longer selected)")
    missed = [r.target for r in results.values() if not r.passed]
    print("all targets met" if not missed else f"MISSED {len(missed)}: " + "; ".join(missed))
