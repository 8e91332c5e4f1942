"""The command palette (ctrl+p) and "Clear all data", driven through Pilot over a real database."""

from __future__ import annotations

import sqlite3
import threading
import time

from app_support import BASE, RECEIVER, Store, settle, widget_text
from conftest import start_serve
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from otlp_builders import logs_request, make_span, metrics_request, trace_exporter, traces_request
from textual.command import CommandList, CommandPalette
from textual.widgets import Input
from textual.widgets._toast import Toast

from tracedesk.otlp import Signal, decode
from tracedesk.ui.app import make_app
from tracedesk.ui.screens.confirm import ConfirmScreen
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.screens.traces import TracesScreen
from tracedesk.ui.widgets.trace_list import TraceList

SIZE = (130, 36)
TABLES = ("traces", "spans", "logs", "metric_points")


def tid(hex_prefix: str) -> int:
    """A trace id number whose 32-hex id starts with ``hex_prefix``."""
    return int(hex_prefix.ljust(32, "0"), 16) + 1


def rows(app) -> list[str]:
    trace_list = app.screen.query_one(TraceList)
    return [trace_list.render_line(y).text.rstrip()
            for y in range(1, min(trace_list.total, trace_list.size.height - 1) + 1)]


def banner(app) -> str:
    return widget_text(app.screen.query_one("#list-banner"))


def options(app) -> list[str]:
    """The palette's hits as the user sees them, one string per hit (lines joined)."""
    command_list = app.screen.query_one(CommandList)
    return [" ".join(str(command_list.get_option_at_index(i).prompt).split())
            for i in range(command_list.option_count)]


def toasts(app) -> str:
    """The notifications on screen, their wrapped lines joined (and the toast edge dropped)."""
    words = " ".join(widget_text(toast) for toast in app.screen.query(Toast)).split()
    return " ".join(word for word in words if word != "▌")


def counts(path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


async def until(pilot, condition, seconds: float = 15) -> None:
    """Wait for ``condition()``, without waiting for every worker (data may keep arriving)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert condition()


async def palette(pilot, query: str) -> None:
    """Open the command palette, type ``query`` and wait until its search is done."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*query)
    screen = app.screen
    await until(pilot, lambda: not any(w.node is screen and not w.is_finished
                                       for w in app.workers))
    await pilot.pause(0.05)


async def choose(pilot, hit: str) -> None:
    """Move the highlight to the hit containing ``hit`` with the arrow keys, press enter."""
    screen = pilot.app.screen
    index = next(i for i, text in enumerate(options(pilot.app)) if hit in text)
    highlighted = screen.query_one(CommandList).highlighted
    assert highlighted is not None and highlighted <= index  # the palette highlights the top
    await pilot.press(*["down"] * (index - highlighted), "enter")
    await until(pilot, lambda: pilot.app.screen is not screen)
    await pilot.pause(0.05)


async def ask_to_clear(pilot) -> None:
    """Choose "Clear all data…" in the palette and wait for the question."""
    await palette(pilot, "clear all")
    await choose(pilot, "Clear all data")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))


def add_logs_and_metrics(store: Store) -> None:
    record = logs_pb2.LogRecord(time_unix_nano=BASE, severity_text="INFO")
    record.body.string_value = "hello"
    metric = metrics_pb2.Metric(name="requests")
    metric.gauge.data_points.add(time_unix_nano=BASE, as_int=3)
    for signal, request in ((Signal.LOGS, logs_request(record)),
                            (Signal.METRICS, metrics_request(metric))):
        store.writer.apply(decode(signal, request.SerializeToString(), store.resources))
    store.writer.commit()


async def test_a_typed_trace_id_prefix_opens_that_trace(store):
    store.add_trace(tid("abcdef01"), "GET /cart", "frontend", duration_ms=42, start_ms=1)
    store.add_trace(tid("abcd9902"), "charge", "payments", start_ms=2)
    store.add_trace(tid("12345678"), "other", start_ms=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await palette(pilot, "ABCD")  # any case
        shown = [o for o in options(app) if o.startswith("Open trace ")]
        assert len(shown) == 2
        assert "abcd9902" in shown[0] or "abcd9902" in shown[1]
        cart = next(o for o in shown if "abcdef01" in o)
        assert "frontend GET /cart" in cart and "42ms" in cart and "2 spans" in cart

        await pilot.press(*"ef0")
        await settle(pilot)
        assert [o for o in options(app) if o.startswith("Open trace ")] == [
            next(o for o in options(app) if "abcdef01" in o)]
        await choose(pilot, "abcdef01")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen)
        assert app.screen.trace_id == f"{tid('abcdef01'):032x}"
        assert "GET /cart" in widget_text(app.screen.query_one("#trace-header"))


async def test_an_unknown_full_trace_id_says_it_is_not_stored(store):
    store.add_trace(tid("abcdef01"), "GET /cart")
    missing = "abcdef01" + "9" * 24
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await palette(pilot, "open trace")
        await choose(pilot, "Open trace…")  # a palette just for trace ids
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*missing)
        await until(pilot, lambda: bool(options(app)))
        assert options(app) == [f"Open trace {missing} not stored"]
        await choose(pilot, missing)
        await settle(pilot)
        assert isinstance(app.screen, TracesScreen)
        assert f"Trace {missing} is not stored" in toasts(app)


async def test_choosing_a_service_closes_the_trace_and_filters_the_list(store):
    store.add_trace(1, "GET /home", "frontend", start_ms=1)
    store.add_trace(2, "charge", "payments", start_ms=2)
    store.add_trace(3, "place order", "checkout", start_ms=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen)

        await palette(pilot, "paym")
        assert "Show traces of service payments" in options(app)
        await choose(pilot, "Show traces of service payments")
        await settle(pilot)
        assert isinstance(app.screen, TracesScreen) and len(app.screen_stack) == 1
        query = '{ resource.service.name = "payments" }'
        assert app.screen.query_one("#filter", Input).value == query
        shown = rows(app)
        assert len(shown) == 1 and "charge" in shown[0]
        assert f"query: {query}" in banner(app)


async def test_the_service_picker_lists_every_service(store):
    store.add_trace(1, "GET /home", "frontend", start_ms=1)
    store.add_trace(2, "charge", "payments", start_ms=2)
    store.add_spans({"checkout": [make_span(3, 1, name="place order", base_ns=BASE)],
                     "inventory": [make_span(3, 2, 1, name="reserve", base_ns=BASE)]})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await palette(pilot, "show traces of")
        await choose(pilot, "Show traces of service…")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        # Every service, also one that only has child spans (inventory).
        assert options(app) == [f"Show traces of service {name}"
                                for name in ("checkout", "frontend", "inventory", "payments")]
        await choose(pilot, "inventory")
        await settle(pilot)
        assert [r.split()[2] for r in rows(app)] == ["place"]


async def test_pause_and_follow_from_the_palette(store):
    for t in range(1, 4):
        store.add_trace(t, f"op {t}", start_ms=t)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "following" in banner(app)
        await palette(pilot, "pause")
        await choose(pilot, "Pause following")
        await settle(pilot)
        assert "paused" in banner(app)
        before = rows(app)

        store.add_trace(10, "op new", start_ms=50)
        await settle(pilot)
        assert rows(app) == before
        assert "+1 new traces" in banner(app)

        await palette(pilot, "follow")
        assert "Pause following" not in options(app)
        await choose(pilot, "Follow newest traces")
        await settle(pilot)
        assert "following" in banner(app)
        assert "op new" in rows(app)[0]


async def test_clear_all_asks_first_and_deletes_everything_but_resources(store):
    store.add_trace(1, "GET /a", "frontend", start_ms=1, spans=3)
    store.add_trace(2, "GET /b", "frontend", start_ms=2)
    add_logs_and_metrics(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # a trace is open: clearing goes back to the list
        await settle(pilot)
        await ask_to_clear(pilot)
        shown = " ".join(widget_text(app.screen.query_one("#confirm-dialog")).split())
        assert "2 traces" in shown and "5 spans" in shown
        assert "1 log record " in shown and "1 metric point " in shown  # one: no "s"
        assert "cannot be undone" in shown

        await pilot.press("y")
        await settle(pilot, 0.5)
        assert counts(store.path) == dict.fromkeys(TABLES, 0)
        conn = sqlite3.connect(store.path)
        assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] > 0
        conn.close()
        assert isinstance(app.screen, TracesScreen)
        assert rows(app) == []
        assert "0 traces" in widget_text(app.screen.query_one("#status"))
        assert ("Deleted 2 traces, 5 spans, 1 log record and 1 metric point."
                in toasts(app))

        # The writer still knows the resources it inserted: new data lands normally.
        store.add_trace(3, "GET /after", "frontend", start_ms=3)
        await settle(pilot)
        assert len(rows(app)) == 1 and "GET /after" in rows(app)[0]


async def test_clear_all_cancelled_deletes_nothing(store):
    store.add_trace(1, "GET /a", start_ms=1)
    add_logs_and_metrics(store)
    before = counts(store.path)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        for answer in ("n", "escape", "enter"):  # enter presses the focused "Cancel"
            await ask_to_clear(pilot)
            await pilot.press(answer)
            await settle(pilot)
            assert isinstance(app.screen, TracesScreen)
            assert counts(store.path) == before
        assert len(rows(app)) == 1


async def test_clear_all_on_a_locked_database_reports_it(store):
    store.add_trace(1, "GET /a", start_ms=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await ask_to_clear(pilot)
        blocker.execute("BEGIN IMMEDIATE")  # another writer that does not let go
        try:
            await pilot.press("y")
            deadline = time.monotonic() + 30
            while "Could not clear" not in toasts(app) and time.monotonic() < deadline:
                await pilot.pause(0.2)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert "locked" in toasts(app)
        assert app.is_running
        assert counts(store.path)["traces"] == 1
        assert len(rows(app)) == 1


async def test_hostile_service_name_is_shown_literally_and_does_nothing(store):
    hostile = "[@click=app.quit]x"
    store.add_trace(1, "GET /a", hostile, start_ms=1)
    store.add_trace(2, "GET /b", "frontend", start_ms=2)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await palette(pilot, "click")
        command_list = app.screen.query_one(CommandList)
        assert f"Show traces of service {hostile}" in widget_text(command_list)
        await choose(pilot, hostile)
        await settle(pilot)
        assert app.is_running
        query = '{ resource.service.name = "' + hostile + '" }'
        assert app.screen.query_one("#filter", Input).value == query
        assert f"query: {query}" in banner(app)
        shown = rows(app)
        assert len(shown) == 1 and "GET /a" in shown[0]
        await pilot.click("#list-banner", offset=(25, 0))
        await settle(pilot)
        assert app.is_running


async def test_clear_all_while_the_receiver_writes_keeps_the_database_consistent(tmp_path):
    serve = start_serve(tmp_path)
    export, channel = trace_exporter(serve.grpc_target)
    stop = threading.Event()
    sent: list[int] = []

    def send() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            spans = [make_span(n, 1, None, name=f"op {n}")]
            spans += [make_span(n, s, 1, name="child") for s in range(2, 6)]
            export(traces_request({"svc": spans[:3], "db": spans[3:]}).SerializeToString(),
                   timeout=30)
            sent.append(n)
            time.sleep(0.01)  # steady traffic that still leaves the app time to draw

    sender = threading.Thread(target=send)
    sender.start()
    try:
        app = make_app(serve.db_path, RECEIVER, poll_seconds=0.05)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            trace_list = app.screen.query_one(TraceList)
            await until(pilot, lambda: trace_list.total >= 20)
            await ask_to_clear(pilot)
            await pilot.press("y")
            await until(pilot, lambda: "All data cleared" in toasts(app), seconds=30)
            sent_before = len(sent)
            # The receiver goes on storing, and the list shows only what came afterwards.
            await until(pilot, lambda: len(sent) >= sent_before + 20)
            stop.set()
            sender.join(timeout=30)
            stored_now = serve.query("SELECT count(*) FROM traces")[0][0]
            await until(pilot, lambda: trace_list.total == stored_now)
            assert 20 <= stored_now < len(sent)
            assert app.is_running
    finally:
        stop.set()
        sender.join(timeout=30)
    try:
        stored = serve.query("SELECT count(*) FROM traces")[0][0]
        assert 20 <= stored < len(sent)  # what came before the clear is gone
        # Every trace row matches its spans, and no span is without its trace row.
        assert serve.query(
            "SELECT count(*) FROM traces AS t WHERE span_count != "
            "(SELECT count(*) FROM spans WHERE trace_id = t.trace_id)") == [(0,)]
        assert serve.query(
            "SELECT count(*) FROM spans WHERE trace_id NOT IN (SELECT trace_id FROM traces)"
        ) == [(0,)]
        assert serve.query("SELECT count(*) FROM spans WHERE resource_id NOT IN "
                           "(SELECT resource_id FROM resources)") == [(0,)]
        assert serve.query("PRAGMA integrity_check") == [("ok",)]
        # The receiver still stores new data.
        export(traces_request({"svc": [make_span(10**6, 1, name="after")]}).SerializeToString(),
               timeout=30)
        assert serve.query("SELECT count(*) FROM traces WHERE root_span_name = 'after'") == [(1,)]
    finally:
        channel.close()
        assert serve.stop() == 0
