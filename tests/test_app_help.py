"""`?` lists every key of the screen in use, hidden ones too, and `?` again hides the list."""

from __future__ import annotations

from app_support import RECEIVER, settle, widget_text
from textual.widgets import HelpPanel

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.trace import TraceScreen


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
