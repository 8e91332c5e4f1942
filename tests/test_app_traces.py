"""The Traces screen, driven through Pilot over a real database written by the real writer."""

from __future__ import annotations

from app_support import RECEIVER, settle

from tracedesk.ui.app import make_app
from tracedesk.ui.widgets.trace_list import TraceList


def lines(app) -> list[str]:
    """The trace list as the user sees it, one string per row (the header excluded)."""
    trace_list = app.screen.query_one(TraceList)
    return [trace_list.render_line(y).text.rstrip()
            for y in range(1, min(trace_list.total, trace_list.size.height - 1) + 1)]


def banner(app) -> str:
    return str(app.screen.query_one("#list-banner").render())


async def test_list_shows_traces_newest_first_and_follows_new_ones(store):
    store.add_trace(1, "GET /old", start_ms=0)
    store.add_trace(2, "GET /newer", "payments", start_ms=100, error=True)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        rows = lines(app)
        assert "GET /newer" in rows[0] and "payments" in rows[0] and "✖" in rows[0]
        assert "GET /old" in rows[1] and "✖" not in rows[1]
        assert "following" in banner(app)

        store.add_trace(3, "GET /newest", start_ms=200)
        await settle(pilot)
        assert "GET /newest" in lines(app)[0]
        assert app.screen.query_one(TraceList).cursor == 0
        status = str(app.screen.query_one("#status").render())
        assert "3 traces" in status and "6 spans" in status


async def test_moving_away_pauses_and_counts_new_traces(store):
    for t in range(1, 6):
        store.add_trace(t, f"op {t}", start_ms=t)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")
        before = lines(app)
        assert "paused" in banner(app)

        store.add_trace(10, "op new A", start_ms=50)
        store.add_trace(11, "op new B", start_ms=60)
        await settle(pilot)
        assert lines(app) == before  # the view stays still
        assert "+2 new traces" in banner(app)
        assert app.screen.query_one(TraceList).cursor == 2

        await pilot.press("f")
        await settle(pilot)
        assert "op new B" in lines(app)[0] and "op new A" in lines(app)[1]
        assert "new traces" not in banner(app)


async def test_sort_by_duration_and_filter(store):
    store.add_trace(1, "fast", "frontend", duration_ms=5, start_ms=3)
    store.add_trace(2, "slow", "checkout", duration_ms=900, start_ms=1)
    store.add_trace(3, "medium", "payments", duration_ms=50, start_ms=2)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert [row.split()[2] for row in lines(app)] == ["slow", "medium", "fast"]
        assert "slowest first" in banner(app)

        await pilot.press("slash", *"pay")
        await settle(pilot)
        rows = lines(app)
        assert len(rows) == 1 and "medium" in rows[0]
        await pilot.press("escape")
        await settle(pilot)
        assert len(lines(app)) == 3


async def test_hostile_names_are_shown_literally_and_do_nothing(store):
    store.add_trace(1, "[bold red]x[/]", start_ms=1)
    store.add_trace(2, "[@click=app.quit]boom", "[b]svc[/b]", start_ms=2)
    store.add_trace(3, "esc \x1b[31mred\x07 bell", start_ms=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        rows = lines(app)
        assert "esc ·[31mred· bell" in rows[0]
        assert "[@click=app.quit]boom" in rows[1] and "[b]svc[/b]" in rows[1]
        assert "[bold red]x[/]" in rows[2]
        await pilot.click(TraceList, offset=(40, 2))
        await settle(pilot)
        assert app.is_running


async def test_paging_through_many_traces(store):
    for t in range(1, 501):
        store.add_trace(t, f"op {t:04d}", start_ms=t, spans=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("G")
        await settle(pilot)
        trace_list = app.screen.query_one(TraceList)
        assert trace_list.cursor == 499
        assert trace_list.selected is not None and trace_list.selected.root_span_name == "op 0001"
        await pilot.press("g")
        await settle(pilot)
        assert "op 0500" in lines(app)[0]


async def test_a_late_older_trace_does_not_move_the_selection_while_paused(store):
    for t in range(1, 41):
        store.add_trace(t, f"op {t}", start_ms=t * 10, spans=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press(*["j"] * 25)  # op 15, scrolled down, paused
        trace_list = app.screen.query_one(TraceList)
        assert trace_list.selected.root_span_name == "op 15"
        line_before = next(i for i, row in enumerate(lines(app)) if row.endswith("op 15") or
                           " op 15 " in row)

        store.add_trace(99, "late but old", start_ms=155, spans=1)  # sorts in above op 15
        await settle(pilot)
        assert trace_list.selected.root_span_name == "op 15"
        assert " op 15 " in lines(app)[line_before]  # on the same screen line
        assert "late but old" in lines(app)[line_before - 1]
