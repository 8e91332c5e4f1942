"""`?` lists every key of the screen in use, hidden ones too, and `?` again hides the list."""

from __future__ import annotations

from app_support import RECEIVER, settle, widget_text
from textual.widgets import HelpPanel

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.widgets.key_bar import KeyBar


def help_text(app) -> str:
    return widget_text(app.screen.query_one(HelpPanel))


async def test_question_mark_lists_the_keys_of_each_screen(store):
    store.add_trace(1, "GET /a", error=True)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot, 0.1)
        shown = help_text(app)
        for key, what in [("f", "Follow"), ("s", "Sort"), ("/", "Query"), ("t", "Time range"),
                          ("j", "Down"), ("G", "Last"), ("1", "Traces"), ("4", "Services"),
                          ("q", "Quit")]:
            assert f"{key} {what}" in shown, (key, what, shown)
        await pilot.press("question_mark")
        await settle(pilot, 0.1)
        assert not app.screen.query(HelpPanel)

        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen)
        await pilot.press("question_mark")
        await settle(pilot, 0.1)
        shown = help_text(app)
        # The waterfall's keys, also those the footer leaves out for lack of room.
        for key, what in [("e", "Next error"), ("E", "Previous error"), ("c", "Critical path"),
                          ("]", "Next on critical path"), ("z", "Zoom"), ("p", "Parent"),
                          ("n", "Next match"), ("y", "Copy trace id"), ("Y", "Copy span id"),
                          ("m", "RED metrics"), ("L", "Logs: span/trace"), ("esc", "Back")]:
            assert f"{key} {what}" in shown, (key, what, shown)


async def test_the_key_bar_shows_the_screens_keys_and_a_click_presses_one(store):
    store.add_trace(1, "GET /a")
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        bar = app.screen.query_one(KeyBar)
        shown = widget_text(bar)
        for hint in ("⏎ Open", "/ Query", "f Follow", "q Quit"):
            assert hint in shown, (hint, shown)
        await pilot.click(KeyBar, offset=(shown.index("⏎ Open") + 1, 0))
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen)
        shown = widget_text(app.screen.query_one(KeyBar))
        assert "e Next error" in shown and "f Follow" not in shown  # the trace's own keys
