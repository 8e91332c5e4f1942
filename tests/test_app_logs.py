"""The Logs screen, driven through Pilot over a real database written by the real writer."""

from __future__ import annotations

from app_support import BASE, RECEIVER, settle, widget_text
from otlp_builders import make_span, span_id, trace_id

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.logs import LogsScreen
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.widgets.log_details import LogDetails
from tracedesk.ui.widgets.log_list import LogList
from tracedesk.ui.widgets.span_details import SpanDetails
from tracedesk.ui.widgets.waterfall import Waterfall

SIZE = (120, 24)
INFO, WARN, ERROR = 9, 13, 17


def lines(app) -> list[str]:
    log_list = app.screen.query_one(LogList)
    return [log_list.render_line(y).text.rstrip()
            for y in range(1, min(log_list.total, log_list.size.height - 1) + 1)]


def banner(app) -> str:
    return str(app.screen.query_one("#list-banner").render())


async def open_logs(pilot) -> None:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    assert isinstance(pilot.app.screen, LogsScreen)


async def test_logs_newest_first_with_levels_and_follow(store):
    store.add_log("cache warmed", service="inventory", at_ms=1)
    store.add_log("payment declined", service="payments", severity=ERROR, at_ms=2, trace=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(pilot)
        rows = lines(app)
        assert "ERROR" in rows[0] and "payments" in rows[0] and "↗" in rows[0]
        assert "payment declined" in rows[0]
        assert "INFO" in rows[1] and "cache warmed" in rows[1] and "↗" not in rows[1]

        store.add_log("newest", at_ms=3)
        await settle(pilot)
        assert "newest" in lines(app)[0] and app.screen.query_one(LogList).cursor == 0

        await pilot.press("j")  # leave follow mode: new records are counted, not shown
        store.add_log("hidden for now", at_ms=4)
        await settle(pilot)
        assert "newest" in lines(app)[0] and "+1 new records" in banner(app)
        await pilot.press("f")
        await settle(pilot)
        assert "hidden for now" in lines(app)[0]


async def test_filters_by_level_service_and_text(store):
    store.add_log("debug noise", severity=5, at_ms=1)
    store.add_log("slow query", service="db", severity=WARN, at_ms=2)
    store.add_log("failed [bold]x[/]", service="api", severity=ERROR, at_ms=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(pilot)
        await pilot.press("v", "v", "v")  # ≥ WARN
        await settle(pilot)
        assert [r.split()[1] for r in lines(app)] == ["ERROR", "WARN"]
        assert "level ≥ WARN" in banner(app)

        await pilot.press("j", "S")  # only the selected record's service
        await settle(pilot)
        assert len(lines(app)) == 1 and "slow query" in lines(app)[0]
        await pilot.press("S", "slash", *"[bold", "enter")
        await settle(pilot)
        assert len(lines(app)) == 1 and "failed [bold]x[/]" in lines(app)[0]
        assert "[bold" in banner(app)  # typed text shown literally
        await pilot.press("escape")
        await settle(pilot)
        assert len(lines(app)) == 3


async def test_enter_opens_the_trace_at_the_records_span_and_back(store):
    store.add_spans({"checkout": [make_span(7, 1, None, name="POST /orders", base_ns=BASE,
                                            duration_ms=50),
                                  make_span(7, 2, 1, name="charge", base_ns=BASE, start_ms=5)]})
    store.add_log("charging card", service="checkout", at_ms=6, trace=7, span=2)
    store.add_log("not in any trace", at_ms=7)
    store.add_log("trace gone", at_ms=8, trace=404)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(170, 60)) as pilot:  # wide: the details beside
        await open_logs(pilot)
        await pilot.press("enter")  # "trace gone": its trace is not stored
        await settle(pilot)
        assert isinstance(app.screen, LogsScreen)
        assert any("not stored" in str(n.message) for n in app._notifications)

        await pilot.press("j", "enter")  # no trace id at all
        await settle(pilot)
        assert isinstance(app.screen, LogsScreen)

        await pilot.press("j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == trace_id(7).hex()
        assert app.screen.query_one(Waterfall).selected_id == span_id(2).hex()
        await settle(pilot, 0.1)
        details = widget_text(app.screen.query_one(SpanDetails))
        assert "Logs of this span (1)" in details and "charging card" in details
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, LogsScreen)
        assert "charging card" in lines(app)[app.screen.query_one(LogList).cursor]


async def test_details_show_the_whole_body_and_attributes_literally(store):
    store.add_log("line one\nline two [@click=app.quit]x", at_ms=1, **{"user.id": "u-7"})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_logs(pilot)
        assert "line one⏎line two" in lines(app)[0]
        await pilot.press("space")
        await settle(pilot, 0.1)
        shown = widget_text(app.screen.query_one(LogDetails))
        assert "line one\n" in shown and "line two [@click=app.quit]x" in shown
        assert "user.id" in shown and "u-7" in shown and "service.name" in shown
        await pilot.click(LogDetails, offset=(20, 4))
        assert app.is_running
