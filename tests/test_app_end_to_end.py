"""The app with its own child receiver: the SDK sends spans, they appear on screen, quitting
stops the child."""

from __future__ import annotations

import os

from conftest import clean_env
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tracedesk.config import Settings
from tracedesk.receiver.child import ChildReceiver
from tracedesk.ui.app import make_app
from tracedesk.ui.run import receiver_line
from tracedesk.ui.widgets.trace_list import TraceList


async def test_spans_sent_with_the_sdk_appear_and_quitting_stops_the_receiver(tmp_path):
    settings = Settings(db_path=tmp_path / "e2e.db", grpc_port=0, http_port=0)
    child = ChildReceiver(env=clean_env(tmp_path))
    status = child.start(settings)
    assert status.mode == "started", status.message
    try:
        app = make_app(settings.db_path, receiver_line(status), poll_seconds=0.05)
        async with app.run_test(size=(120, 20)) as pilot:
            provider = TracerProvider(resource=Resource.create({"service.name": "e2e-shop"}))
            provider.add_span_processor(SimpleSpanProcessor(
                OTLPSpanExporter(endpoint=status.grpc_address, insecure=True)))
            with provider.get_tracer("e2e").start_as_current_span("GET /from-the-sdk"):
                pass
            provider.shutdown()
            for _ in range(40):
                await pilot.pause(0.1)
                trace_list = app.screen.query_one(TraceList)
                if trace_list.total and trace_list.selected is not None:
                    break
            row = trace_list.render_line(1).text
            assert "GET /from-the-sdk" in row and "e2e-shop" in row
            assert status.grpc_address in str(app.screen.query_one("#status").render())
            await pilot.press("q")
        assert not app.is_running
    finally:
        child.stop()
    assert not _alive(status.pid)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; its state in /proc tells.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
