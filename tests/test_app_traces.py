"""The Traces screen, driven through Pilot over a real database written by the real writer."""

from __future__ import annotations

from app_support import (
    BASE,
    RECEIVER,
    SECOND_PAGE_ROW,
    add_paged_traces,
    page_into_second_page,
    settle,
    widget_text,
)
from otlp_builders import make_span

from tracedesk.ui.app import make_app
from tracedesk.ui.widgets import paged_list
from tracedesk.ui.widgets.query_input import QueryInput
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

        await pilot.press("slash", *"pay", "enter")  # plain words: names and services
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
    add_paged_traces(store)
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


async def test_the_last_screenful_is_read_ahead_so_G_draws_rows_at_once(store):
    for t in range(1, 411):  # the last screenful straddles the 2nd and 3rd pages of 200
        store.add_trace(t, f"op {t:04d}", start_ms=t, spans=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        with app.data._lock:  # no page could be read now
            await pilot.press("G")
            await pilot.pause(0.1)
            shown = lines(app)
        assert len(shown) > 10 and not any(row.strip() == "…" for row in shown)
        assert " op 0001 " in shown[-1] and f" op {len(shown):04d} " in shown[0]


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


async def test_a_key_pressed_while_a_reload_reads_is_not_undone_by_it(store):
    for t in range(1, 41):
        store.add_trace(t, f"op {t}", start_ms=t * 10, spans=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press(*["j"] * 25)  # op 15, paused
        trace_list = app.screen.query_one(TraceList)
        assert trace_list.selected.root_span_name == "op 15"
        with app.data._lock:  # the reload the new trace starts waits for its read
            store.add_trace(99, "late but old", start_ms=145, spans=1)  # between 15 and 14
            await pilot.pause(0.3)
            await pilot.press("j")
            assert trace_list.selected.root_span_name == "op 14"
        await settle(pilot)
        assert trace_list.selected.root_span_name == "op 14"  # not the row now in its place


def order_trace(store, tid: int, name: str, order_id: str, *, start_ms: int = 0,
                status: int = 200) -> None:
    """A checkout trace whose child span carries ``order.id`` and a status code."""
    root = make_span(tid, 1, None, name=name, start_ms=start_ms, base_ns=BASE)
    child = make_span(tid, 2, 1, name="place-order", start_ms=start_ms, base_ns=BASE,
                      **{"order.id": order_id, "http.response.status_code": status})
    store.add_spans({"frontend": [root], "checkout": [child]})


async def test_a_query_filters_the_list_and_new_matches_appear(store):
    order_trace(store, 1, "GET /a", "A-1", start_ms=1)
    order_trace(store, 2, "GET /b", "B-2", start_ms=2, status=503)
    store.add_trace(3, "GET /health", "frontend", start_ms=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        assert len(lines(app)) == 3
        await pilot.press("slash", *'{ resource.service.name = "checkout" }')
        await settle(pilot)
        assert len(lines(app)) == 3  # typing alone does not apply it
        await pilot.press("enter")
        await settle(pilot)
        rows = lines(app)
        assert len(rows) == 2 and "GET /b" in rows[0] and "GET /a" in rows[1]
        assert 'query: { resource.service.name = "checkout" }' in banner(app)
        assert "2 matching" in banner(app)
        assert app.screen.query_one(TraceList).has_focus

        order_trace(store, 4, "GET /c", "C-3", start_ms=4)  # matches: shown, following
        store.add_trace(5, "GET /other", "frontend", start_ms=5)  # does not
        await settle(pilot)
        rows = lines(app)
        assert len(rows) == 3 and "GET /c" in rows[0]

        # TraceQL spansets joined by && and ||, by duration as before
        await pilot.press("slash", "ctrl+a", "ctrl+k",
                          *'{ span.order.id = "A-1" } || { span.http.response.status_code'
                           ' >= 500 && name = "place-order" }', "enter")
        await settle(pilot)
        assert [row.split()[2] for row in lines(app)] == ["GET", "GET"]
        assert "GET /b" in lines(app)[0] and "GET /a" in lines(app)[1]
        await pilot.press("s")
        await settle(pilot)
        assert len(lines(app)) == 2 and "slowest first" in banner(app)

        # an empty query clears the filter
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")
        await settle(pilot)
        assert len(lines(app)) == 5 and "query" not in banner(app)


async def test_a_malformed_query_is_shown_in_place_and_escape_keeps_the_old_one(store):
    order_trace(store, 1, "GET /a", "A-1", start_ms=1)
    store.add_trace(2, "GET /health", "frontend", start_ms=2)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"health", "enter")
        await settle(pilot)
        assert len(lines(app)) == 1

        await pilot.press("slash", "ctrl+a", "ctrl+k", *"{ name = }", "enter")
        await settle(pilot)
        field = app.screen.query_one(QueryInput)
        assert field.has_focus and field.value == "{ name = }"  # the line stays open
        error = app.screen.query_one("#query-error")
        assert error.display
        shown = widget_text(error).splitlines()
        # the caret sits right under the offending place: the label (8 cells) + 9
        assert shown[0].index("^") == field.region.x + 9
        assert "expected a value after '='" in shown[0]
        assert error.region.y == field.region.y + 1  # right under the line
        assert len(lines(app)) == 1 and "query: health" in banner(app)

        await pilot.press("escape")  # closes the line, the active query unchanged
        await settle(pilot)
        assert not error.display and field.value == "health"
        assert app.screen.query_one(TraceList).has_focus
        assert len(lines(app)) == 1 and "query: health" in banner(app)

        await pilot.press("slash", *" x", "enter")  # a fixed query applies
        await settle(pilot)
        assert not error.display and lines(app) == [] and "query: health x" in banner(app)
        await pilot.press("escape")  # from the list: clears the query
        await settle(pilot)
        assert len(lines(app)) == 2 and "query" not in banner(app)


async def test_query_text_is_shown_literally(store):
    store.add_trace(1, "GET /a", start_ms=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *'{ name = "[bold]x[/]" }', "enter")
        await settle(pilot)
        assert 'query: { name = "[bold]x[/]" }' in banner(app)
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"{ [b]", "enter")
        await settle(pilot)
        assert app.screen.query_one("#query-error").display


async def test_up_and_down_recall_recent_queries_which_outlive_the_app(store, tmp_path):
    store.add_trace(1, "GET /a", "frontend", start_ms=1)
    store.add_trace(2, "charge", "payments", start_ms=2)
    history = tmp_path / "data" / "query-history.json"
    app = make_app(store.path, RECEIVER, poll_seconds=0.05, history_path=history)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"charge", "enter")
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"{ }", "enter")
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"{ name =", "enter")  # not kept
        await settle(pilot)
        field = app.screen.query_one(QueryInput)
        await pilot.press("ctrl+a", "ctrl+k", *"draft", "up")
        assert field.value == "{ }"
        await pilot.press("up")
        assert field.value == "charge"
        await pilot.press("up")  # the oldest stays
        assert field.value == "charge"
        await pilot.press("down")
        assert field.value == "{ }"
        await pilot.press("down")
        assert field.value == "draft"
        await pilot.press("up", "enter")  # a recalled query applies like a typed one
        await settle(pilot)
        assert "query: { }" in banner(app) and len(lines(app)) == 2

    app = make_app(store.path, RECEIVER, poll_seconds=0.05, history_path=history)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "up")
        assert app.screen.query_one(QueryInput).value == "{ }"
        await pilot.press("up")
        assert app.screen.query_one(QueryInput).value == "charge"


async def test_t_cycles_the_time_range_and_since_types_one(store):
    minute = 60_000
    store.add_trace(1, "two hours ago", start_ms=-120 * minute)
    store.add_trace(2, "ten minutes ago", start_ms=-10 * minute)
    store.add_trace(3, "just now", start_ms=0)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        assert len(lines(app)) == 3 and "last" not in banner(app)
        seen = []
        for _ in range(6):
            await pilot.press("t")
            await settle(pilot)
            seen.append(([*banner(app).split(" · "), ""][1], len(lines(app))))
        assert seen == [("last 5m", 1), ("last 15m", 2), ("last 1h", 2), ("last 6h", 3),
                        ("last 24h", 3), ("", 3)]  # and back to all

        await pilot.press("slash", *"since:30m ago", "enter")  # a typed range with a query
        await settle(pilot)
        rows = lines(app)
        assert len(rows) == 1 and "ten minutes ago" in rows[0]
        assert "last 30m" in banner(app) and "query: ago" in banner(app)
        await pilot.press("t")  # on to the next longer preset
        await settle(pilot)
        assert "last 1h" in banner(app) and len(lines(app)) == 1

        await pilot.press("slash", "ctrl+a", "ctrl+k", *"since:3h", "enter")  # a range alone
        await settle(pilot)
        assert len(lines(app)) == 3 and "last 3h" in banner(app) and "query" not in banner(app)

        await pilot.press("slash", "ctrl+a", "ctrl+k", *"since:soon {}", "enter")
        await settle(pilot)
        error = app.screen.query_one("#query-error")
        assert error.display
        field = app.screen.query_one(QueryInput)
        shown = widget_text(error).splitlines()[0]
        assert shown.index("^") == field.region.x + len("since:") and "duration" in shown


async def suggestion(pilot, field) -> str:
    await settle(pilot, 0.1)
    return field._suggestion


async def test_attribute_names_and_values_are_completed_from_the_store(store):
    order_trace(store, 1, "GET /a", "A-1", start_ms=1)
    order_trace(store, 2, "GET /b", "B-2", start_ms=2)
    order_trace(store, 3, "GET /c", "B-2", start_ms=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        field = app.screen.query_one(QueryInput)
        await pilot.press("slash", *"{ span.ord")
        assert await suggestion(pilot, field) == "{ span.order.id"
        await pilot.press("right")  # accepts it
        assert field.value == "{ span.order.id"
        await pilot.press(*" = ")
        assert await suggestion(pilot, field) == '{ span.order.id = "B-2"'  # most frequent
        await pilot.press(*'"A')
        assert await suggestion(pilot, field) == '{ span.order.id = "A-1"'
        await pilot.press("right", *" && resource.service.name = ")
        assert (await suggestion(pilot, field)).endswith('resource.service.name = "checkout"')
        await pilot.press("ctrl+a", "ctrl+k", *"{ sta")
        assert await suggestion(pilot, field) == "{ status"
        await pilot.press("right", *" = e")
        assert await suggestion(pilot, field) == "{ status = error"
        await pilot.press("ctrl+a", "ctrl+k", *"plain wor")
        assert await suggestion(pilot, field) == ""


async def test_a_queried_list_pauses_counts_new_matches_and_keeps_up_with_bursts(store):
    for t in range(1, 6):
        order_trace(store, t, f"op {t}", f"A-{t}", start_ms=t)
    store.add_trace(6, "health", "frontend", start_ms=6)
    app = make_app(store.path, RECEIVER, poll_seconds=0.01)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"{ span.order.id =~ `A-.*` }", "enter")
        await settle(pilot)
        assert len(lines(app)) == 5
        await pilot.press("j", "j")
        before = lines(app)
        order_trace(store, 10, "op new", "A-10", start_ms=50)
        store.add_trace(11, "health again", "frontend", start_ms=60)
        await settle(pilot)
        assert lines(app) == before and "+1 new traces" in banner(app)
        assert app.screen.query_one(TraceList).selected.root_span_name == "op 3"

        await pilot.press("f")
        for t in range(20, 60):  # a burst of commits, each a reload
            order_trace(store, t, f"burst {t}", f"A-{t}", start_ms=100 + t)
            await pilot.pause(0)
        await settle(pilot, 0.5)
        assert "burst 59" in lines(app)[0] and "46 matching" in banner(app)


def placeholders(text: str) -> int:
    """How many rows of a drawn list are still waiting for their page."""
    return sum(line.strip() == "…" for line in text.splitlines())


async def test_paging_onto_rows_not_read_yet_draws_them_in_its_first_frame(store, monkeypatch):
    monkeypatch.setattr(paged_list, "HOLD_SECONDS", 5.0)  # however slow the machine
    add_paged_traces(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        trace_list = app.screen.query_one(TraceList)
        frames: list[str] = []
        display = app._display

        def recording(screen, renderable) -> None:
            display(screen, renderable)
            frames.append(widget_text(trace_list))

        app._display = recording
        await page_into_second_page(pilot)
        await settle(pilot)
        assert trace_list.scroll_offset.y + trace_list.size.height > 200  # page 1 shown
        assert frames and not any(placeholders(frame) for frame in frames)
        assert SECOND_PAGE_ROW in widget_text(trace_list)


async def test_a_key_waits_for_its_rows_only_briefly(store):
    add_paged_traces(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        trace_list = app.screen.query_one(TraceList)
        with app.data._lock:  # the page cannot be read: the frame goes out without it
            await page_into_second_page(pilot)
            await pilot.pause(0.2)
            assert placeholders(widget_text(trace_list)) > 0
            assert not app._batch_count  # frames are not held any more
        await settle(pilot)
        assert not placeholders(widget_text(trace_list))
        assert SECOND_PAGE_ROW in widget_text(trace_list)


async def test_rows_drawn_again_from_the_cache_are_as_drawn_afresh(store):
    for t in range(1, 61):  # the slowest trace on screen, which scales the bars, varies
        store.add_trace(t, f"op {t:02d}", start_ms=t, duration_ms=t * 10, spans=1)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        trace_list = app.screen.query_one(TraceList)
        # Rows seen again on a screen whose slowest trace differs: their bars do too.
        for keys in [(), ("pagedown", "pagedown"), ("G",), ("pageup", "pageup"), ("g",),
                     ("s",)]:
            await pilot.press(*keys)
            await settle(pilot, 0.05)
            cached = [list(trace_list.render_line(y)) for y in range(trace_list.size.height)]
            trace_list.strips.clear()
            fresh = [list(trace_list.render_line(y)) for y in range(trace_list.size.height)]
            assert cached == fresh, keys


async def test_a_wide_list_shows_every_service_of_a_trace(store):
    services = ("checkout", "frontend", "inventory", "payments")
    store.add_spans({name: [make_span(1, n, None if n == 1 else 1, name=f"op {n}",
                                      base_ns=BASE)]
                     for n, name in enumerate(services, start=1)})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(160, 20)) as pilot:
        await settle(pilot)
        assert lines(app)[0].endswith(", ".join(services))


async def test_a_page_of_an_unfiltered_list_is_read_at_once_and_a_queried_one_by_a_worker(
        store):
    """A worker's thread start and its answer's way back cost more than reading a page near
    either end of the unfiltered list; a query's page may take long, so it goes to a worker."""
    add_paged_traces(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        screen, trace_list = app.screen, app.screen.query_one(TraceList)
        assert trace_list.cached_row(200) is None  # only the ends were read ahead
        screen.request_page(1, trace_list.generation)
        row = trace_list.cached_row(200)
        assert row is not None and row.root_span_name == SECOND_PAGE_ROW.strip()

        await pilot.press("slash", *"op", "enter")  # every one of them matches
        await settle(pilot)
        assert trace_list.total == 500 and trace_list.cached_row(200) is None
        screen.request_page(1, trace_list.generation)
        assert trace_list.cached_row(200) is None  # asked of a worker
        await settle(pilot)
        row = trace_list.cached_row(200)
        assert row is not None and row.root_span_name == SECOND_PAGE_ROW.strip()
