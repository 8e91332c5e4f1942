"""The Trace screen (waterfall and span details), driven through Pilot over a real database."""

from __future__ import annotations

from itertools import pairwise

from app_support import BASE, RECEIVER, settle, widget_text
from otlp_builders import kv, make_span, span_id, trace_id
from textual.scrollbar import ScrollBar

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.widgets.span_details import SpanDetails
from tracedesk.ui.widgets.waterfall import Waterfall

SIZE = (130, 30)  # narrow enough that the details sit below the waterfall


def checkout_trace(tid: int = 1, *, start_ms: int = 0) -> dict[str, list]:
    """frontend GET /checkout → checkout place-order → (payments charge ✖, inventory reserve)."""
    root = make_span(tid, 1, None, name="GET /checkout", start_ms=start_ms, duration_ms=100,
                     base_ns=BASE)
    place = make_span(tid, 2, 1, name="place-order", start_ms=start_ms + 5, duration_ms=90,
                      base_ns=BASE, **{"order.id": "A-17"})
    charge = make_span(tid, 3, 2, name="charge card", start_ms=start_ms + 10, duration_ms=60,
                       base_ns=BASE, error=True)
    event = charge.events.add()
    event.name = "exception"
    event.time_unix_nano = BASE + (start_ms + 30) * 1_000_000
    event.attributes.append(kv("exception.type", "CardDeclined"))
    reserve = make_span(tid, 4, 2, name="reserve stock", start_ms=start_ms + 72, duration_ms=20,
                        base_ns=BASE)
    return {"frontend": [root], "checkout": [place], "payments": [charge],
            "inventory": [reserve]}


def rows(app) -> list[str]:
    """The waterfall as the user sees it, one string per span row (header excluded)."""
    waterfall = app.screen.query_one(Waterfall)
    return [waterfall.render_line(y).text.rstrip()
            for y in range(1, min(len(waterfall.rows), waterfall.size.height - 1) + 1)]


def selected_name(app) -> str:
    row = app.screen.query_one(Waterfall).selected
    assert row is not None
    return row.span.name


async def open_first_trace(pilot) -> None:
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, TraceScreen)


async def test_enter_opens_the_waterfall_with_tree_bars_and_details(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(170, 50)) as pilot:  # wide: details beside the waterfall
        await open_first_trace(pilot)
        shown = rows(app)
        assert [line.split("  ")[0] for line in shown][:1] == ["▾ frontend GET /checkout"]
        assert "├─ ▸" not in shown[1] and "└─ ▾ checkout place-order" in shown[1]
        assert "├─   payments charge card" in shown[2]
        assert "└─   inventory reserve stock" in shown[3]
        assert "100ms" in shown[0] and "█" in shown[0]
        assert "◆" in shown[2]  # the exception event on its bar
        header = str(app.screen.query_one("#trace-header").render())
        assert trace_id(1).hex() in header and "4 spans" in header
        assert "✖ 1 error" in header and "1 errors" not in header  # one, not "1 errors"

        await pilot.press("j")
        await settle(pilot, 0.1)
        shown = widget_text(app.screen.query_one(SpanDetails))
        assert "place-order" in shown and "A-17" in shown

        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, TraceScreen)


async def test_collapse_and_expand_keep_the_cursor_on_the_span(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        await pilot.press("j", "space")
        assert len(rows(app)) == 2 and "+2" in rows(app)[1] and "▸" in rows(app)[1]
        assert selected_name(app) == "place-order"
        await pilot.press("space")
        assert len(rows(app)) == 4
        await pilot.press("j", "minus")  # collapse all: only the root is left, selected
        assert len(rows(app)) == 1 and selected_name(app) == "GET /checkout"
        await pilot.press("plus")
        assert len(rows(app)) == 4
        await pilot.press("G", "h")  # left on a leaf goes to its parent
        assert selected_name(app) == "place-order"
        await pilot.press("h")  # left on an expanded span folds it
        assert len(rows(app)) == 2
        await pilot.press("l")
        assert len(rows(app)) == 4


async def test_late_spans_appear_keeping_cursor_and_folds(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        await pilot.press("j", "j", "j")  # reserve stock
        assert selected_name(app) == "reserve stock"
        late_child = make_span(1, 5, 4, name="UPDATE stock", start_ms=75, duration_ms=5,
                               base_ns=BASE)
        late_root_sibling = make_span(1, 6, 1, name="audit", start_ms=1, duration_ms=2,
                                      base_ns=BASE)
        store.add_spans({"inventory": [late_child], "frontend": [late_root_sibling]})
        await settle(pilot)
        names = [row.span.name for row in app.screen.query_one(Waterfall).rows]
        assert names == ["GET /checkout", "audit", "place-order", "charge card",
                         "reserve stock", "UPDATE stock"]
        assert selected_name(app) == "reserve stock"
        assert "6 spans" in str(app.screen.query_one("#trace-header").render())

        await pilot.press("k", "k", "space")  # fold place-order, then more spans arrive
        store.add_spans({"inventory": [make_span(1, 7, 4, name="commit", start_ms=85,
                                                 duration_ms=1, base_ns=BASE)]})
        await settle(pilot)
        waterfall = app.screen.query_one(Waterfall)
        assert [row.span.name for row in waterfall.rows] == ["GET /checkout", "audit",
                                                             "place-order"]
        assert selected_name(app) == "place-order" and "+4" in rows(app)[2]


async def test_jumps_errors_parent_critical_path_find_and_zoom(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        await pilot.press("e")
        assert selected_name(app) == "charge card"
        await pilot.press("p")
        assert selected_name(app) == "place-order"

        await pilot.press("g", "right_square_bracket")
        waterfall = app.screen.query_one(Waterfall)
        assert waterfall.show_critical
        # The root waited for place-order, which waited for reserve stock, which could only
        # start once charge card had failed: all on the path, visited in tree order.
        assert selected_name(app) == "place-order"
        await pilot.press("right_square_bracket")
        assert selected_name(app) == "charge card"
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert selected_name(app) == "GET /checkout"  # wrapped around

        await pilot.press("g", "space")  # fold everything under the root, then find
        await pilot.press("slash", *"charge", "enter")
        assert selected_name(app) == "charge card"  # found inside a folded subtree
        assert "find 1" in str(app.screen.query_one("#find-label").render())

        await pilot.press("z")
        header = app.screen.query_one(Waterfall).render_line(0).text
        assert "zoomed" in header
        assert waterfall.zoomed == span_id(3).hex()
        # The ruler says where in the trace the view is: charge card runs from 10 to 70 ms
        # in, so its round ticks are 20, 40 and 60 ms (not 0 ms at the zoomed start).
        words = header.split()
        assert words[words.index("duration") + 1:] == ["20ms", "40ms", "60ms"]
        # The zoomed span fills the bar column; its parent overflows both edges.
        await pilot.press("escape")  # clears the find first
        assert waterfall.zoomed is not None and not waterfall.matches
        await pilot.press("escape")  # then the zoom
        assert waterfall.zoomed is None
        await pilot.press("escape")  # then leaves
        assert not isinstance(app.screen, TraceScreen)


async def test_find_matches_attribute_values_too(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        await pilot.press("slash", *"a-17", "enter")  # place-order's order.id, any case
        assert selected_name(app) == "place-order"
        assert app.screen.query_one(Waterfall).matches == {span_id(2).hex()}


async def test_copy_ids_to_the_clipboard(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        await pilot.press("y")
        assert app.clipboard == trace_id(1).hex()
        await pilot.press("j", "Y")
        assert app.clipboard == span_id(2).hex()


async def test_orphans_and_hostile_names_are_shown_literally(store):
    root = make_span(9, 1, None, name="[@click=app.quit]boom", base_ns=BASE, duration_ms=50)
    orphan = make_span(9, 2, 77, name="[bold red]x[/] \x1b[31mred", base_ns=BASE,
                       start_ms=5)
    store.add_spans({"[b]svc[/b]": [root, orphan]})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        shown = rows(app)
        assert "[b]svc[/b] [@click=app.quit]boom" in shown[0]
        assert "⤒ " in shown[1] and "[bold red]x[/] ·[31mred" in shown[1]
        await pilot.click(Waterfall, offset=(20, 1))
        await pilot.click(Waterfall, offset=(20, 1), times=2)
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, TraceScreen)


async def test_links_open_the_linked_trace_at_the_span(store):
    target = make_span(2, 5, None, name="consume order", base_ns=BASE, start_ms=200)
    store.add_spans({"worker": [target]})
    source = make_span(1, 1, None, name="publish order", base_ns=BASE)
    link = source.links.add()
    link.trace_id, link.span_id = trace_id(2), span_id(5)
    missing = source.links.add()
    missing.trace_id, missing.span_id = trace_id(404), span_id(1)
    store.add_spans({"frontend": [source]})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter")  # the older trace: the link's source
        await settle(pilot)
        assert selected_name(app) == "publish order"
        await pilot.press("tab")
        await settle(pilot, 0.1)
        details = app.screen.query_one(SpanDetails)
        assert app.focused is details or details in app.focused.ancestors
        while "OptionList" not in type(app.focused).__mro__.__repr__():
            await pilot.press("tab")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == trace_id(2).hex()
        assert selected_name(app) == "consume order"

        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.trace_id == trace_id(1).hex()
        await pilot.press("tab")
        while "OptionList" not in type(app.focused).__mro__.__repr__():
            await pilot.press("tab")
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.screen.trace_id == trace_id(1).hex()
        assert any("not stored" in str(n.message) for n in app._notifications)


async def test_the_number_key_goes_back_to_the_list_from_linked_traces(store):
    store.add_spans(checkout_trace(1))
    store.add_spans(checkout_trace(2, start_ms=500))
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        app.push_screen(TraceScreen(trace_id(1).hex()))
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        assert len(app.screen_stack) == 1 and not isinstance(app.screen, TraceScreen)


async def test_spans_logs_are_marked_listed_and_arrive_live(store):
    store.add_spans(checkout_trace())
    store.add_log("card declined by issuer", service="payments", severity=17, at_ms=31,
                  trace=1, span=3)
    store.add_log("reserving 2 items", service="inventory", at_ms=73, trace=1, span=4)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(170, 60)) as pilot:
        await open_first_trace(pilot)
        marked = [row for row in rows(app) if "≡" in row]
        assert len(marked) == 2 and "charge card" in marked[0] and "reserve stock" in marked[1]

        await pilot.press("e")  # charge card
        await settle(pilot, 0.1)
        shown = widget_text(app.screen.query_one(SpanDetails))
        assert "Logs of this span (1)" in shown and "card declined by issuer" in shown
        assert "reserving 2 items" not in shown

        await pilot.press("L")
        await settle(pilot, 0.1)
        shown = widget_text(app.screen.query_one(SpanDetails))
        assert "Logs of this trace (2)" in shown
        assert "+73ms  INFO   reserving 2 items  ← reserve stock" in shown  # from trace start

        store.add_log("late retry note", service="payments", at_ms=40, trace=1, span=3)
        await settle(pilot)
        shown = widget_text(app.screen.query_one(SpanDetails))
        assert "Logs of this trace (3)" in shown and "late retry note" in shown


async def test_a_long_attribute_key_stays_on_one_line_when_the_panel_has_room(store):
    key = "messaging.destination.partition.id"  # 34 characters: real, and common
    store.add_spans({"shipping": [make_span(1, 1, None, name="process orders", base_ns=BASE,
                                            **{key: 3, "messaging.system": "kafka"})]})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(160, 45)) as pilot:  # details beside the waterfall
        await open_first_trace(pilot)
        shown = widget_text(app.screen.query_one(SpanDetails)).splitlines()
        line = next(text for text in shown if "messaging.destination" in text)
        assert line.lstrip("│ ").split() == [key, "3"], shown
        kafka = next(text for text in shown if "messaging.system" in text)
        assert kafka.index("kafka") == line.index("3")  # the values share one column


async def test_a_trace_opened_from_a_query_marks_the_spans_that_matched(store):
    store.add_spans(checkout_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *'{ span.order.id = "A-17" } || { status = error }',
                          "enter")
        await open_first_trace(pilot)
        shown = rows(app)
        marked = [name for name in ("GET /checkout", "place-order", "charge card",
                                    "reserve stock")
                  if "●" in next(line for line in shown if name in line)]
        assert marked == ["place-order", "charge card"]
        header = widget_text(app.screen.query_one("#trace-header"))
        assert "● 2 matched" in header
        assert app.screen.query_one(Waterfall).query_matches == {span_id(2).hex(),
                                                                 span_id(3).hex()}

        assert selected_name(app) == "GET /checkout"
        await pilot.press("n")
        assert selected_name(app) == "place-order"
        await pilot.press("n")
        assert selected_name(app) == "charge card"
        await pilot.press("N")
        assert selected_name(app) == "place-order"

        await pilot.press("escape")  # back to the list; clear the query; open again
        await settle(pilot)
        await pilot.press("escape")
        await open_first_trace(pilot)
        assert not any("●" in line for line in rows(app))
        assert "matched" not in widget_text(app.screen.query_one("#trace-header"))


def batch_trace(stages: int = 3, steps: int = 40) -> dict[str, list]:
    """batch → stage 1..3 → step s.01..s.40: taller than the screen."""
    spans = [make_span(1, 1, None, name="batch", duration_ms=stages * 300, base_ns=BASE)]
    for s in range(1, stages + 1):
        stage = len(spans) + 1
        spans.append(make_span(1, stage, 1, name=f"stage {s}", start_ms=(s - 1) * 300,
                               duration_ms=300, base_ns=BASE))
        spans += [make_span(1, stage + c, stage, name=f"step {s}.{c:02d}",
                            start_ms=(s - 1) * 300 + c * 5, duration_ms=5, base_ns=BASE)
                  for c in range(1, steps + 1)]
    return {"batch": spans}


def screen_rows(app) -> list[str]:
    """The waterfall's span rows as composited on the screen (what the terminal shows)."""
    return widget_text(app.screen.query_one(Waterfall)).splitlines()[1:]


async def test_folds_and_jumps_redraw_the_rows_and_the_scroll_range(store):
    store.add_spans(batch_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        waterfall = app.screen.query_one(Waterfall)
        height = waterfall.size.height
        await pilot.press("j", "space")  # fold stage 1: the rows below move up
        await pilot.pause()
        shown = screen_rows(app)
        assert "stage 1" in shown[1] and "+40" in shown[1]
        assert "stage 2" in shown[2] and "step 2.01" in shown[3]
        await pilot.press("G")  # the scroll range is the folded one
        await pilot.pause()
        assert selected_name(app) == "step 3.40" and len(waterfall.rows) == 84
        assert waterfall.scroll_offset.y == waterfall.max_scroll_y == 85 - height
        assert waterfall.vertical_scrollbar.window_virtual_size == 85  # the thumb's size
        assert "step 3.40" in screen_rows(app)[-1]
        await pilot.press("g", "j", "space")  # unfold: its rows are drawn again
        await pilot.pause()
        shown = screen_rows(app)
        assert "stage 1" in shown[1] and "+40" not in shown[1] and "step 1.01" in shown[2]
        await pilot.press("G")
        await pilot.pause()
        assert waterfall.max_scroll_y == 125 - height and "step 3.40" in screen_rows(app)[-1]

        await pilot.press("g", "j", "space", "j", "space")  # fold stage 1, then stage 2
        await pilot.pause()
        shown = screen_rows(app)
        assert "batch" in shown[0] and "stage 1" in shown[1] and "+40" in shown[1]
        assert "stage 2" in shown[2] and "+40" in shown[2] and "stage 3" in shown[3]
        await pilot.press("plus", "G", "p", "space")  # fold stage 3 from the bottom
        await pilot.pause()
        shown = screen_rows(app)  # the view scrolled back: the tree ends sooner
        assert "stage 3" in shown[-1] and "+40" in shown[-1] and "step 2.40" in shown[-2]
        assert waterfall.scroll_offset.y == waterfall.max_scroll_y == 85 - height

        await pilot.press("plus", "g", "space")  # fold the root: one row, no scrollbar
        await pilot.pause()
        shown = screen_rows(app)
        assert "+123" in shown[0] and not any(line.strip() for line in shown[1:])
        assert not waterfall.show_vertical_scrollbar
        await pilot.press("space", "G")
        await pilot.pause()
        assert waterfall.show_vertical_scrollbar and "step 3.40" in screen_rows(app)[-1]


async def test_the_scrollbar_is_drawn_as_textual_draws_it(store):
    store.add_spans(batch_trace())
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        bar = app.screen.query_one(Waterfall).vertical_scrollbar
        for keys in [(), ("pagedown",), ("pagedown", "j"), ("G",), ("g", "j", "space")]:
            await pilot.press(*keys)
            await pilot.pause()
            crop = bar.size.region
            ours = bar.render_lines(crop)
            bar._styles_cache.clear()
            bar._dirty_regions.add(crop)
            assert [list(strip) for strip in ours] == [
                list(strip) for strip in ScrollBar.render_lines(bar, crop)]


async def test_rows_drawn_again_from_the_cache_are_as_drawn_afresh(store):
    store.add_spans(checkout_trace())
    store.add_log("declined", service="payments", severity=17, trace=1, span=3)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_first_trace(pilot)
        waterfall = app.screen.query_one(Waterfall)

        def drawn() -> list[list]:
            return [list(waterfall.render_line(y)) for y in range(1, 6)]

        seen = []
        # Each step changes how rows look without changing the rows themselves.
        for keys in [(), ("j", "j", "z"), ("c",), ("slash", *"stock", "enter"), ("escape",),
                     ("g", "space"), ("space",), ("escape",), ("c",)]:
            await pilot.press(*keys)
            await settle(pilot, 0.05)
            cached = drawn()
            waterfall.strips.clear()
            assert cached == drawn(), keys
            seen.append(cached)
        assert all(a != b for a, b in pairwise(seen))  # each step changed the drawing
