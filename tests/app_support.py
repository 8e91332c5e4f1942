"""What the app tests share: a store written the way the receiver writes, and waiting."""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_builders import kv, logs_request, make_span, span_id, trace_id, traces_request

from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.writer import Writer
from tracedesk.ui.app import ReceiverLine

BASE = time.time_ns()
RECEIVER = ReceiverLine("receiver 127.0.0.1:4317 (gRPC)", True)


class Store:
    """Writes traces the way the receiver does, into the file the app reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = Writer(path)
        self.resources = ResourceTable()

    def add_spans(self, spans_by_service: dict[str, list[trace_pb2.Span]]) -> None:
        body = traces_request(spans_by_service).SerializeToString()
        self.writer.apply(decode(Signal.TRACES, body, self.resources))
        self.writer.commit()

    def add_log(self, body: str, *, service: str = "svc", severity: int = 9,
                at_ms: int = 0, trace: int | None = None, span: int | None = None,
                **attributes: str | int) -> None:
        """One log record at BASE + ``at_ms``; ``trace``/``span`` tie it to a span."""
        record = logs_pb2.LogRecord(time_unix_nano=BASE + at_ms * 1_000_000,
                                    severity_number=severity, attributes=[
                                        kv(k, v) for k, v in attributes.items()])
        record.body.string_value = body
        if trace is not None:
            record.trace_id = trace_id(trace)
            record.span_id = span_id(span or 1)
        body_bytes = logs_request(record, service=service).SerializeToString()
        self.writer.apply(decode(Signal.LOGS, body_bytes, self.resources))
        self.writer.commit()

    def add_trace(self, tid: int, name: str, service: str = "svc", *, start_ms: int = 0,
                  duration_ms: int = 10, spans: int = 2, error: bool = False) -> None:
        rows = [make_span(tid, 1, None, name=name, start_ms=start_ms, duration_ms=duration_ms,
                          base_ns=BASE, error=error)]
        rows += [make_span(tid, s, 1, name=f"child {s}", start_ms=start_ms, base_ns=BASE)
                 for s in range(2, spans + 1)]
        self.add_spans({service: rows})


# Row 200 of a list of PAGED_TRACES: the first row of the list's second page, which is
# neither the first page nor the last (both read ahead), so it is read only when shown.
PAGED_TRACES = 500
SECOND_PAGE_ROW = " op 0300 "


def add_paged_traces(store: Store) -> None:
    """PAGED_TRACES one-span traces, "op 0001" the oldest: newest first, row 200 is op 0300."""
    for t in range(1, PAGED_TRACES + 1):
        store.add_trace(t, f"op {t:04d}", start_ms=t, spans=1)


async def page_into_second_page(pilot) -> None:
    """Page down screenful by screenful until the list (20 lines high) shows row 200."""
    for _ in range(14):
        await pilot.press("pagedown")


async def settle(pilot, seconds: float = 0.3) -> None:
    """Let polls fire and every worker finish, then let their results be drawn."""
    await pilot.pause(seconds)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.05)


def widget_text(widget) -> str:
    """What the user sees in ``widget``'s part of the screen, as plain text lines.

    Reads the screen's composited output (what the terminal would show), so it tests the
    drawing, not the widget's data."""
    region = widget.region
    strips = widget.screen._compositor.render_strips()  # the frame as the terminal gets it
    return "\n".join(strips[y].crop(region.x, region.right).text.rstrip()
                     for y in range(region.y, region.bottom))
