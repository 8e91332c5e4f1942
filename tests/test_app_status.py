"""The status line: where the receiver listens (or why none does), what is stored, how fast
spans arrive; and the stored data stays viewable without a receiver."""

from __future__ import annotations

from app_support import settle, widget_text

from tracedesk.receiver.child import ReceiverStatus
from tracedesk.ui.app import make_app
from tracedesk.ui.run import receiver_line
from tracedesk.ui.widgets.trace_list import TraceList

TAKEN = ("port 4317 (OTLP/gRPC) is already in use by another program; choose another "
         "with --grpc-port N (0 picks a free one)")


def status(app) -> str:
    return widget_text(app.screen.query_one("#status"))


def test_the_receiver_line_says_where_it_listens_or_why_not():
    started = receiver_line(ReceiverStatus("started", "127.0.0.1:4317", "http://127.0.0.1:4318",
                                           pid=10))
    assert started.ok and started.text == ("OTLP 127.0.0.1:4317 (gRPC) · "
                                           "http://127.0.0.1:4318 (HTTP)")
    attached = receiver_line(ReceiverStatus("attached", "127.0.0.1:4317",
                                            "http://127.0.0.1:4318", pid=77))
    assert attached.ok and attached.text.endswith("shared receiver pid 77")
    taken = receiver_line(ReceiverStatus("unavailable", message=TAKEN + "\nmore detail"))
    assert not taken.ok and taken.text == "no receiver: " + TAKEN
    assert taken.notice == TAKEN + "\nmore detail"
    viewer = receiver_line(None)
    assert not viewer.ok and "--no-receiver" in viewer.text


async def test_without_a_receiver_it_says_why_and_shows_the_stored_traces(store):
    store.add_trace(1, "GET /stored")
    line = receiver_line(ReceiverStatus("unavailable", message=TAKEN))
    app = make_app(store.path, line, poll_seconds=0.05)
    async with app.run_test(size=(160, 20), notifications=True) as pilot:
        await settle(pilot)
        line_text = str(app.screen.query_one("#status").render())  # a toast covers its end
        assert f"○ no receiver: {TAKEN}" in line_text
        assert any(TAKEN in str(n.message) for n in app._notifications)
        trace_list = app.screen.query_one(TraceList)
        assert trace_list.total == 1 and trace_list.row(0).root_span_name == "GET /stored"


async def test_the_status_line_counts_what_is_stored_and_the_ingest_rate(store):
    now = [100.0]
    store.add_trace(1, "GET /a", spans=2)
    line = receiver_line(ReceiverStatus("started", "127.0.0.1:4317", "http://127.0.0.1:4318"))
    app = make_app(store.path, line, clock=lambda: now[0], poll_seconds=0.05)
    async with app.run_test(size=(160, 20)) as pilot:
        await settle(pilot)
        shown = status(app)
        assert "● OTLP 127.0.0.1:4317 (gRPC)" in shown
        assert "1 trace · 2 spans" in shown and "spans/s" not in shown  # one sample: no rate

        now[0] += 2.0
        for t in range(2, 6):  # 4 traces of 3 spans in 2 s: 6 spans/s
            store.add_trace(t, f"GET /{t}", spans=3)
        await settle(pilot)
        assert "5 traces · 14 spans" in status(app) and "6 spans/s" in status(app)

        now[0] += 10.0  # nothing arrives: the rate falls back to 0
        await settle(pilot)
        await settle(pilot)
        assert "0 spans/s" in status(app)


async def test_an_empty_list_says_where_to_send_telemetry(store):
    line = receiver_line(ReceiverStatus("started", "127.0.0.1:4317", "http://127.0.0.1:4318",
                                        pid=10))
    app = make_app(store.path, line, poll_seconds=0.05)
    async with app.run_test(size=(160, 20)) as pilot:
        await settle(pilot)
        shown = widget_text(app.screen.query_one(TraceList))
        assert "No traces yet." in shown
        assert "127.0.0.1:4317 (OTLP/gRPC) or http://127.0.0.1:4318 (OTLP/HTTP)" in shown
        assert "run `tracedesk demo` in" in shown  # on the demo's own port: as it is
        await pilot.press("slash", *"nothing-like-this", "enter")
        await settle(pilot)
        shown = widget_text(app.screen.query_one(TraceList))
        assert "No trace matches." in shown and "No traces yet" not in shown
        await pilot.press("2")
        await settle(pilot)
        assert "No log records yet." in widget_text(app.screen.query_one("#log-list"))

        store.add_trace(1, "GET /first")
        await pilot.press("1", "escape")
        await settle(pilot)
        shown = widget_text(app.screen.query_one(TraceList))
        assert "GET /first" in shown and "No trace" not in shown


async def test_an_empty_list_without_a_receiver_says_so(store):
    app = make_app(store.path, receiver_line(None), poll_seconds=0.05)
    async with app.run_test(size=(160, 20)) as pilot:
        await settle(pilot)
        shown = widget_text(app.screen.query_one(TraceList))
        assert "No traces in this database." in shown and "--no-receiver" in shown


async def test_the_demo_hint_names_a_receiver_on_another_port(store):
    line = receiver_line(ReceiverStatus("started", "127.0.0.1:14317", "http://127.0.0.1:14318",
                                        pid=10))
    app = make_app(store.path, line, poll_seconds=0.05)
    async with app.run_test(size=(160, 20)) as pilot:
        await settle(pilot)
        shown = widget_text(app.screen.query_one(TraceList))
        assert "run `tracedesk demo --endpoint 127.0.0.1:14317` in" in shown
