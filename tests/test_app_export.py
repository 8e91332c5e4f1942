"""`x` on the Trace screen writes the open trace as OTLP JSON into the current directory."""

from __future__ import annotations

import json

from app_support import BASE, RECEIVER, settle, widget_text
from otlp_builders import make_span, trace_id
from textual.widgets import HelpPanel

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.trace import TraceScreen


async def test_x_exports_the_open_trace_and_says_where(store, tmp_path, monkeypatch):
    store.add_spans({
        "frontend": [make_span(7, 1, None, name="GET /cart", duration_ms=40, base_ns=BASE)],
        "cart": [make_span(7, 2, 1, name="load cart", start_ms=2, base_ns=BASE,
                           **{"cart.items": 3})],
    })
    tid = trace_id(7).hex()
    out = tmp_path / "work"
    out.mkdir()
    monkeypatch.chdir(out)
    target = out / f"trace-{tid[:16]}.json"
    target.write_text("an older export")  # overwritten

    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(130, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen)
        await pilot.press("x")
        await settle(pilot)
        messages = [str(n.message) for n in app._notifications]
        assert f"Exported 2 spans to {target}" in messages

    doc = json.loads(target.read_text())
    services = {kv["value"]["stringValue"] for rs in doc["resourceSpans"]
                for kv in rs["resource"]["attributes"] if kv["key"] == "service.name"}
    assert services == {"frontend", "cart"}
    names = {span["name"] for rs in doc["resourceSpans"] for ss in rs["scopeSpans"]
             for span in ss["spans"]}
    assert names == {"GET /cart", "load cart"}
    assert all(span["traceId"] == tid for rs in doc["resourceSpans"] for ss in rs["scopeSpans"]
               for span in ss["spans"])


async def test_a_failed_export_is_an_error_notification(store, tmp_path, monkeypatch):
    store.add_spans({"svc": [make_span(8, 1, None, name="op", base_ns=BASE)]})
    tid = trace_id(8).hex()
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"trace-{tid[:16]}.json").mkdir()  # a directory stands where the file goes

    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(130, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and "Export failed: cannot write" in str(errors[0].message)


async def test_question_mark_lists_the_export_key_with_the_others(store):
    store.add_trace(1, "GET /a", error=True)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(160, 50)) as pilot:  # the size test_app_help uses
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot, 0.1)
        shown = widget_text(app.screen.query_one(HelpPanel))
        for entry in ("x Export OTLP JSON", "e Next error", "esc Back", "L Logs: span/trace"):
            assert entry in shown, (entry, shown)
