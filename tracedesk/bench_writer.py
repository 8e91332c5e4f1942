"""`tracedesk bench-writer`: what the writer alone costs per span, and where, at a size.

``tracedesk bench`` measures ingest end to end, where the receiver's decoding, the
writer and the senders share the processor. This isolates the writer as the writer
process drives it (group commits, the background checkpoint): it stores ``--stored``
spans of the shop that ``bench`` sends, then times ``--spans`` more, run after run, and
splits the time by SQL statement. Costs that grow with the file (random index inserts,
pages written per commit) show up here first.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracedesk.bench import enrich
from tracedesk.demo.shop import Shop
from tracedesk.otlp import DecodedBatch, ResourceTable, Signal, decode
from tracedesk.store.checkpoint import Checkpointer
from tracedesk.store.writer import Writer

BATCH_SPANS = 512
COMMIT_EVERY = 40  # batches per transaction: about what a group commit takes under load


class _TimedConnection:
    """The writer's connection, timing each statement by its first words."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.seconds: Counter[str] = Counter()

    @staticmethod
    def _label(sql: str) -> str:
        return " ".join(sql.split()[:3])

    def _timed(self, method: Any, sql: str, args: tuple) -> Any:
        started = time.perf_counter()
        try:
            return method(sql, *args)
        finally:
            self.seconds[self._label(sql)] += time.perf_counter() - started

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.execute, sql, args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.executemany, sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _batches(shop: Shop, rng: random.Random, resources: ResourceTable, spans: int,
             defer: bool) -> Iterator[DecodedBatch]:
    made = 0
    while made < spans:
        request, _ = shop.traces_request(BATCH_SPANS)
        enrich(request, rng)
        batch = decode(Signal.TRACES, request.SerializeToString(), resources, defer=defer)
        made += len(batch.spans)
        yield batch


def _write(writer: Writer, checkpointer: Checkpointer, batches: list[DecodedBatch]) -> int:
    stored = 0
    for n, batch in enumerate(batches, start=1):
        writer.apply(batch)
        stored += len(batch.spans)
        if n % COMMIT_EVERY == 0 or n == len(batches):
            writer.commit()
            checkpointer.catch_up()  # as the writer process does after each commit
    return stored


def bench_writer(path: Path, stored: int, spans: int, runs: int, defer: bool,
                 say: Any) -> dict[str, Any]:
    shop, rng, resources = Shop(seed=7), random.Random(7), ResourceTable()
    writer = Writer(path)
    checkpointer = Checkpointer(path, writer.conn)
    try:
        filled = 0
        while filled < stored:
            chunk = list(_batches(shop, rng, resources, min(100_000, stored - filled), defer))
            filled += _write(writer, checkpointer, chunk)
            say(f"\r  stored {filled:,} of {stored:,} spans")
        if stored:
            say("\n")
        samples, split = [], Counter()
        for run in range(runs):
            batches = list(_batches(shop, rng, resources, spans, defer))  # not timed
            timed = _TimedConnection(writer.conn)
            writer.conn = timed  # type: ignore[assignment]
            started = time.perf_counter()
            written = _write(writer, checkpointer, batches)
            elapsed = time.perf_counter() - started
            writer.conn = timed._conn
            samples.append(elapsed * 1e6 / written)
            for label, seconds in timed.seconds.items():
                split[label] += seconds * 1e6 / written / runs
            say(f"  run {run + 1}: {samples[-1]:.1f} µs/span\n")
    finally:
        checkpointer.close()
        writer.close()
    # What no statement accounts for: the writer's own Python (rows, ids, summaries).
    python_us = statistics.mean(samples) - sum(split.values())
    return {"stored_before": stored, "spans_per_run": spans, "runs": runs,
            "deferred": defer, "us_per_span_median": round(statistics.median(samples), 2),
            "us_per_span": [round(s, 2) for s in samples],
            "split_us_per_span": {k: round(v, 2) for k, v in split.most_common()},
            "python_us_per_span": round(python_us, 2)}


def run_bench_writer(stored: int, spans: int, runs: int, eager: bool, as_json: bool) -> int:
    def say(text: str) -> None:
        if not as_json:
            print(text, end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tracedesk-bench-writer-") as tmp:
        say(f"writer alone: {stored:,} spans stored first, then {runs} run(s) of "
            f"{spans:,} ({'converted' if eager else 'deferred'} as the receiver decodes "
            "them)\n")
        result = bench_writer(Path(tmp) / "writer.db", stored, spans, runs, not eager, say)
    if as_json:
        print(json.dumps(result))
        return 0
    print(f"median: {result['us_per_span_median']} µs/span "
          f"({1e6 / result['us_per_span_median']:,.0f} spans/s on one core)")
    print("where it goes (µs/span, mean of the runs):")
    for label, us in result["split_us_per_span"].items():
        if us >= 0.05:
            print(f"  {us:7.2f}  {label}")
    print(f"  {result['python_us_per_span']:7.2f}  (the writer's own Python, between them)")
    return 0
