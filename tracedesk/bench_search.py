"""`tracedesk bench-search`: how long queries take to return their first page.

Builds (or reuses, with ``--keep``) a database of the demo shop's traces through the real
decoder and writer, then times TraceQL queries of each kind the search targets name
(service, name, status, duration, attribute equality, regex) as the app and
``tracedesk search`` run them: the newest 20 matching traces, the median of several runs.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.query import parse
from tracedesk.query.sql import TraceQuery
from tracedesk.store.reader import Reader
from tracedesk.store.writer import Writer

PAGE = 20
STEP_NS = 20_000_000  # a trace every 20 ms of simulated time
TARGETS_MS = {"service": 50, "name": 50, "status": 50, "duration": 50,
              "attribute equality": 300, "regex": 1000}


def build(path: Path, spans: int, say) -> int:
    """Store about ``spans`` spans of the demo shop; the number stored."""
    shop, resources, writer = Shop(seed=11), ResourceTable(), Writer(path)
    now = time.time_ns() - spans // 10 * STEP_NS
    stored = 0
    while stored < spans:
        request, count, _ = shop.traces_request_for(50, now_ns=now, spread_ns=50 * STEP_NS)
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), resources))
        stored += count
        now += 50 * STEP_NS
        if stored % 50_000 < count:
            writer.commit()
            say(f"\r  stored {stored:,} of {spans:,} spans")
    writer.commit()
    writer.close()
    say("\n")
    return stored


def index_all(path: Path, say) -> float:
    """Bring the attribute index up to date, as the receiver's writer does when idle;
    the seconds it took (0 when it was)."""
    writer, started, done = Writer(path), time.perf_counter(), 0
    while (added := writer.index_some(20_000)):
        writer.commit()
        done += added
        say(f"\r  indexed the attributes of {done:,} spans")
    writer.close()
    if done:
        say("\n")
    return time.perf_counter() - started


def _rare_attribute(reader: Reader) -> tuple[str, str]:
    """An order id from the middle of the data: one order's few spans carry it."""
    row = reader.conn.execute(
        "SELECT json_extract(attributes, '$.\"app.order.id\"') FROM spans "
        "WHERE rowid >= (SELECT max(rowid) / 2 FROM spans) "
        "AND json_type(attributes, '$.\"app.order.id\"') = 'text' LIMIT 1").fetchone()
    return "app.order.id", row[0]


def queries(reader: Reader) -> dict[str, str]:
    key, value = _rare_attribute(reader)
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    return {
        "service": '{ resource.service.name = "payments" }',
        "name": '{ name = "ChargeService.authorize" }',
        "status": "{ status = error }",
        "duration": "{ duration > 500ms }",
        "attribute equality": f'{{ span."{key}" = "{quoted}" }}',
        "regex": f'{{ span."{key}" =~ "{quoted[:-2]}.*" }}',  # as rare, and no index
    }


def time_query(reader: Reader, text: str, runs: int) -> tuple[float, int]:
    where = TraceQuery(parse(text))
    times, found = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        found = len(reader.trace_page(0, PAGE, where=where))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), found


def run_bench_search(spans: int, runs: int, keep: Path | None, as_json: bool) -> int:
    say = (lambda text: print(text, end="", file=sys.stderr, flush=True)) if not as_json \
        else (lambda text: None)
    with tempfile.TemporaryDirectory(prefix="tracedesk-search-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"search-{spans}.db"
        if not path.exists():
            say(f"building {path} ...\n")
            build(path.with_suffix(".part"), spans, say)
            path.with_suffix(".part").rename(path)
        indexing = index_all(path, say)
        reader = Reader(path)
        stored = reader.conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        results = {}
        for kind, text in queries(reader).items():
            time_query(reader, text, 1)  # warm the page cache, as a second search would be
            median, found = time_query(reader, text, runs)
            results[kind] = {"query": text, "median_ms": round(median, 2), "traces": found,
                             "target_ms": TARGETS_MS[kind]}
        reader.close()
    if as_json:
        print(json.dumps({"spans": stored, "indexing_seconds": round(indexing, 1),
                          "results": results}, indent=2))
        return 0
    print(f"tracedesk bench-search: first page ({PAGE} newest traces) over {stored:,} spans, "
          f"median of {runs} runs" + (f" (attribute index built in {indexing:.1f} s)"
                                      if indexing else ""))
    for kind, r in results.items():
        verdict = "ok" if r["median_ms"] <= r["target_ms"] else "OVER"
        print(f"  {kind:20s} {r['median_ms']:9.1f} ms  (target {r['target_ms']} ms, {verdict}; "
              f"{r['traces']} traces)  {r['query']}")
    return 0
