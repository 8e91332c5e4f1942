"""The Services screen over demo data: the graph's calls, and from a call to its traces."""

from __future__ import annotations

import re

from app_support import (
    BASE,
    RECEIVER,
    SECOND_PAGE_ROW,
    add_paged_traces,
    page_into_second_page,
    settle,
    widget_text,
)
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import make_span
from textual.widgets import DataTable

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.services import ServicesScreen
from tracedesk.ui.screens.traces import TracesScreen, service_query
from tracedesk.ui.screenshots import seed_demo_database
from tracedesk.ui.widgets.trace_list import TraceList


def table_rows(app) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [" | ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]


async def test_the_demo_shops_calls_are_drawn_and_lead_to_traces(tmp_path):
    db = tmp_path / "demo.db"
    seed_demo_database(db, traces=40)
    app = make_app(db, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot, 0.5)
        assert isinstance(app.screen, ServicesScreen)
        rows = table_rows(app)
        assert rows[0].startswith("user")
        calls = [r.split(" | ")[0] for r in rows]
        assert "└─ frontend" in calls[1]
        assert any("checkout" in c for c in calls) and any("payments" in c for c in calls)
        assert any("postgres" in c and "database" in r for c, r in zip(calls, rows, strict=True))
        assert any("⇢ shipping" in c for c in calls)  # through the queue
        frontend = rows[1].split(" | ")
        assert float(frontend[2]) > 0 and int(frontend[6].replace(",", "")) >= 40
        # 40 traces 0.4 s apart: rates are per second of the ~16 s received, not of 5 min.
        assert 2.0 < float(frontend[2]) < 3.0
        banner = str(app.screen.query_one("#services-banner").render())
        received = re.search(r"last 5m of data \(([\d.]+)s received\)", banner)
        assert received and 15 < float(received[1]) < 17, banner

        await pilot.press("t")  # the flat table of edges
        assert any(r.startswith("checkout → payments") for r in table_rows(app))

        table = app.screen.query_one(DataTable)
        index = next(i for i, r in enumerate(table_rows(app))
                     if r.startswith("checkout → payments"))
        table.move_cursor(row=index)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TracesScreen)
        assert app.screen.query_text == service_query("payments")


async def test_vim_keys_move_through_the_graph_and_the_entry_point_says_it_has_no_spans(
        tmp_path):
    db = tmp_path / "demo.db"
    seed_demo_database(db, traces=20)
    app = make_app(db, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(140, 50), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot, 0.5)
        table = app.screen.query_one(DataTable)
        assert table.row_count > 3 and table.cursor_row == 0
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g")
        assert table.cursor_row == 0

        assert table_rows(app)[0].startswith("user")
        await pilot.press("enter")  # "user" stands for the callers: it has no traces
        await settle(pilot)
        assert isinstance(app.screen, ServicesScreen)
        assert any("user is not an instrumented service" in str(n.message)
                   for n in app._notifications)


async def test_new_calls_appear_while_the_graph_is_shown(store, monkeypatch):
    monkeypatch.setattr(ServicesScreen, "MIN_RELOAD_SECONDS", 0.1)
    store.add_spans({"shop": [make_span(1, 1, None, name="GET /", base_ns=BASE)]})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot, 0.3)
        assert not any("stock" in row for row in table_rows(app))

        server = make_span(2, 3, 2, name="GET /stock", start_ms=101, duration_ms=5,
                           base_ns=BASE)
        server.kind = trace_pb2.Span.SPAN_KIND_SERVER
        store.add_spans({
            "shop": [make_span(2, 1, None, name="GET /", start_ms=100, base_ns=BASE),
                     make_span(2, 2, 1, name="GET", start_ms=100, duration_ms=7,
                               base_ns=BASE)],
            "stock": [server]})
        await settle(pilot, 0.5)
        calls = [row.split(" | ")[0] for row in table_rows(app)]
        assert any(call.endswith("└─ stock") for call in calls), calls
        # A graph that takes long to compute is recomputed less often.
        screen = app.screen
        assert isinstance(screen, ServicesScreen)
        assert screen.reload_seconds() == max(0.1, 5 * screen._compute_seconds)
        screen._compute_seconds = 2.0
        assert screen.reload_seconds() == 10.0


async def test_a_long_read_does_not_hold_up_the_list_pages(store):
    add_paged_traces(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        with app.data._long_lock:  # a long read (another service graph, say) is under way
            await pilot.press("4")
            await pilot.pause(0.2)
            banner = str(app.screen.query_one("#services-banner").render())
            assert "service graph" not in banner  # the graph waits for its turn ...
            await pilot.press("1")
            trace_list = app.screen.query_one(TraceList)
            await page_into_second_page(pilot)
            await pilot.pause(0.3)
            shown = widget_text(trace_list)  # ... but the list's pages do not
            assert SECOND_PAGE_ROW in shown and "…" not in shown
        await pilot.press("4")
        await settle(pilot)
        banner = str(app.screen.query_one("#services-banner").render())
        assert "service graph" in banner
