"""Refresh the SVG screenshots in ``screenshots/``: ``python -m tracedesk.ui.screenshots``.

The data is the demo shop's, generated with a fixed seed and clock and stored through the
real decoder and writer, so the pictures only change when the app or the demo does. The
tests render the same scenes and compare them with the files, so a visible change to the
app fails until the screenshots are refreshed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerState

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.writer import Writer
from tracedesk.ui.app import ReceiverLine, make_app
from tracedesk.ui.widgets.log_list import LogList
from tracedesk.ui.widgets.paged_list import PAGE_SIZE
from tracedesk.ui.widgets.trace_list import TraceList

# 2026-03-02 14:05:00 UTC: a fixed moment, so times on screen do not change between runs.
FROZEN_NOW_NS = 1_772_460_300_000_000_000
RECEIVER = ReceiverLine("receiver 127.0.0.1:4317 (gRPC) · 127.0.0.1:4318 (HTTP)", True)


def seed_demo_database(path: Path, traces: int = 120, seed: int = 42) -> None:
    shop = Shop(seed=seed, repeat_ids=True)
    writer = Writer(path)
    resources = ResourceTable()
    step = 400_000_000  # a trace every 0.4 s
    for n in range(traces):
        now = FROZEN_NOW_NS - (traces - n) * step
        request, _, _ = shop.traces_request_for(1, now_ns=now)
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), resources))
        logs, _ = shop.logs_request(now_ns=now)
        writer.apply(decode(Signal.LOGS, logs.SerializeToString(), resources))
        if n % 10 == 9:
            metrics, _ = shop.metrics_request(now_ns=now)
            writer.apply(decode(Signal.METRICS, metrics.SerializeToString(), resources))
    writer.commit()
    writer.close()


SETTLE_TRIES = 40
SETTLE_STEP_SECONDS = 0.05


def _busy(app: App) -> bool:
    return any(worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
               for worker in app.workers)


async def _settle(pilot: Pilot) -> None:
    """Wait until the screen is finished: no worker is pending or running, and two exports
    of the screen a moment apart are identical.

    A fixed pause is not enough on a loaded machine: results drawn after their worker ends
    (a table measures its columns when idle, details wait for a short timer) could be
    caught half done. Gives up after ``SETTLE_TRIES`` steps, so a screen that never stops
    changing fails its comparison instead of hanging."""
    app = pilot.app
    previous: str | None = None
    for _ in range(SETTLE_TRIES):
        await app.workers.wait_for_complete()
        await pilot.pause(SETTLE_STEP_SECONDS)
        if _busy(app):
            previous = None
            continue
        current = app.export_screenshot()
        if current == previous:
            return
        previous = current


async def _open_largest_failed_trace(pilot: Pilot) -> None:
    """From the list, open the trace with errors and the most spans, at its first error."""
    trace_list = pilot.app.screen.query_one(TraceList)
    rows = [trace_list.row(i) for i in range(trace_list.total)]
    failed = [(row.span_count, -i) for i, row in enumerate(rows) if row and row.error_count]
    trace_list.cursor = -max(failed)[1]
    await pilot.press("enter")
    await _settle(pilot)
    await pilot.press("e")
    await _settle(pilot)


async def _critical_path(pilot: Pilot) -> None:
    await _open_largest_failed_trace(pilot)
    await pilot.press("g", "c")
    await _settle(pilot)


async def _logs_with_details(pilot: Pilot) -> None:
    """The Logs screen, on the newest warning or worse, with its details open."""
    await pilot.press("2")
    await _settle(pilot)
    log_list = pilot.app.screen.query_one(LogList)
    rows = [log_list.row(i) for i in range(min(log_list.total, PAGE_SIZE))]
    log_list.cursor = next((i for i, r in enumerate(rows) if r and r.severity_number >= 13), 0)
    await pilot.press("space")
    await _settle(pilot)


async def _red_metrics(pilot: Pilot) -> None:
    """RED metrics of the slowest payment call's operation and service."""
    await _open_largest_failed_trace(pilot)
    await pilot.press("m")
    await _settle(pilot)
    await pilot.press("w", "w", "w")  # ±1 minute: the demo data spans less than that
    await _settle(pilot)


async def _services(pilot: Pilot) -> None:
    await pilot.press("4")
    await _settle(pilot)


async def _histogram_metric(pilot: Pilot) -> None:
    """The Metrics screen filtered to the HTTP server durations, the first stream opened."""
    await pilot.press("3")
    await _settle(pilot)
    await pilot.press("slash", *"http.server.request.duration", "enter")
    await _settle(pilot)
    await pilot.press("enter")
    await _settle(pilot)


@dataclass(frozen=True)
class Scene:
    name: str
    size: tuple[int, int]
    steps: Callable[[Pilot], Awaitable[None]]
    caption: str


async def _query(pilot: Pilot) -> None:
    """A query applied to the list, its first trace opened with the matching spans marked."""
    await pilot.press("slash", *"{ status = error } && { kind = client }", "enter")
    await _settle(pilot)
    await pilot.press("enter")
    await _settle(pilot)


async def _nothing(pilot: Pilot) -> None:
    return None


SCENES = (
    Scene("traces", (140, 36), _nothing, "The Traces screen"),
    Scene("trace", (180, 45), _open_largest_failed_trace,
          "A trace's waterfall at its first error, with the span's details"),
    Scene("query", (180, 40), _query,
          "A trace opened from a queried list: the spans that matched marked with ●"),
    Scene("critical-path", (130, 40), _critical_path,
          "The critical path highlighted (c); details below on narrower terminals"),
    Scene("red", (120, 30), _red_metrics,
          "RED metrics of a span's operation and service (m), from the stored spans"),
    Scene("services", (130, 34), _services, "The service graph as a call tree (4)"),
    Scene("logs", (140, 36), _logs_with_details,
          "The Logs screen with a record's details (space)"),
    Scene("metrics", (140, 40), _histogram_metric,
          "A histogram metric: p50/p95/p99 per stream, bucket distribution, exemplars"),
)


async def render_scene(db_path: Path, scene: Scene) -> str:
    """The scene as SVG text, exactly as ``main`` writes it."""
    app = make_app(db_path, RECEIVER, clock=lambda: 0.0)
    async with app.run_test(size=scene.size) as pilot:
        await _settle(pilot)
        await scene.steps(pilot)
        return app.export_screenshot(title=f"tracedesk · {scene.name}")


def frozen_timezone() -> None:
    """Times on screen are local: shoot in UTC so every machine draws the same."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("screenshots"),
                        help="folder for the SVG files [default screenshots]")
    args = parser.parse_args(argv)
    frozen_timezone()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tracedesk-shots-") as tmp:
        db_path = Path(tmp) / "demo.db"
        seed_demo_database(db_path)
        for scene in SCENES:
            path = args.out / f"{scene.name}.svg"
            path.write_text(asyncio.run(render_scene(db_path, scene)), encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
