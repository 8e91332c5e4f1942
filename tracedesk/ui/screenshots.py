"""Refresh the SVG screenshots in ``screenshots/``: ``python -m tracedesk.ui.screenshots``.

The data is the demo shop's, generated with a fixed seed and clock and stored through the
real decoder and writer, so the pictures only change when the app or the demo does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.writer import Writer
from tracedesk.ui.app import ReceiverLine, make_app

# 2026-03-02 14:05:00 UTC: a fixed moment, so times on screen do not change between runs.
FROZEN_NOW_NS = 1_772_460_300_000_000_000
SIZE = (140, 36)


def seed_demo_database(path: Path, traces: int = 120, seed: int = 42) -> None:
    shop = Shop(seed=seed)
    writer = Writer(path)
    resources = ResourceTable()
    step = 400_000_000  # a trace every 0.4 s
    for n in range(traces):
        now = FROZEN_NOW_NS - (traces - n) * step
        request, _, _ = shop.traces_request_for(1, now_ns=now)
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), resources))
    writer.commit()
    writer.close()


async def _shoot(db_path: Path, out: Path) -> list[Path]:
    receiver = ReceiverLine("receiver 127.0.0.1:4317 (gRPC) · 127.0.0.1:4318 (HTTP)", True)
    app = make_app(db_path, receiver, clock=lambda: 0.0)
    saved = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        saved.append(Path(app.save_screenshot("traces.svg", str(out))))
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("screenshots"),
                        help="folder for the SVG files [default screenshots]")
    args = parser.parse_args(argv)
    os.environ["TZ"] = "UTC"
    time.tzset()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tracedesk-shots-") as tmp:
        db_path = Path(tmp) / "demo.db"
        seed_demo_database(db_path)
        for path in asyncio.run(_shoot(db_path, args.out)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
