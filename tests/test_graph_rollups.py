"""Service-graph rollups: counts per time slice that add up to the graph of any window.

Pure checks of the histograms and the sliced counts against the exact graph, then the
stored rollups: written by the real writer (and its process, in quiet moments), forgotten
when spans that change them arrive, evicted and cleared with the spans.
"""

from __future__ import annotations

import random
import sqlite3
import time

import orjson
import pytest

from tracedesk.analysis.graph_counts import GraphCounts, sliced_graph_counts
from tracedesk.analysis.latency_histogram import LatencyHistogram
from tracedesk.analysis.service_graph import GraphSpan, ServiceGraph, service_graph
from tracedesk.analysis.span_metrics import exact_quantile
from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.receiver.export import ExportHandler
from tracedesk.receiver.ingest import Ingest
from tracedesk.store import graph_rollups
from tracedesk.store.clear import clear_all
from tracedesk.store.graph_rollups import (
    CLOSE_MARGIN_NS,
    PAIRING_MARGIN_NS,
    SLICE_NS,
    closed_range,
    slice_of,
    stale_slices,
    window_counts,
)
from tracedesk.store.reader import Reader, graph_spans
from tracedesk.store.retention import Retention, RetentionLimits
from tracedesk.store.writer import Writer

S = 10**9
NOW = 1_800_000_000 * S  # a multiple of the slice length
ACCURACY = 0.045  # the histograms' relative error bound


def test_histogram_quantiles_are_within_their_bucket_of_the_exact_ones():
    rng = random.Random(5)
    values = [max(1, int(rng.lognormvariate(16, 1.5))) for _ in range(5000)]
    histogram = LatencyHistogram.of(values)
    ordered = sorted(values)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        exact = exact_quantile(ordered, q)
        assert histogram.quantile(q) == pytest.approx(exact, rel=ACCURACY)
    assert (histogram.count, histogram.total) == (len(values), sum(values))
    assert (histogram.min, histogram.max) == (ordered[0], ordered[-1])
    # One value: its quantiles are that value, not its bucket's middle.
    assert LatencyHistogram.of([123_456]).quantile(0.95) == 123_456


def test_histograms_add_up_and_survive_storage():
    rng = random.Random(6)
    values = [rng.randrange(0, 10**10) for _ in range(1000)]
    whole = LatencyHistogram.of(values)
    halves = LatencyHistogram.of(values[:400])
    halves.merge(LatencyHistogram.of(values[400:]))
    one_by_one = LatencyHistogram()
    for value in values:
        one_by_one.add(value)
    assert halves == whole == one_by_one
    assert LatencyHistogram.from_list(whole.to_list()) == whole
    empty = LatencyHistogram()
    empty.merge(LatencyHistogram())
    assert empty.count == 0
    with pytest.raises(ValueError):
        empty.quantile(0.5)


def _shop_database(path, minutes: int, seed: int = 2) -> None:
    """Demo-shop traces spread over the ``minutes`` before NOW, stored by the writer."""
    request, _, _ = Shop(seed=seed, repeat_ids=True).traces_request_for(
        40 * minutes, now_ns=NOW, spread_ns=minutes * 60 * S)
    writer = Writer(path)
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
    writer.close()


def _same_graph(estimated: ServiceGraph, exact: ServiceGraph) -> None:
    """Equal counts, nodes and rates; latencies equal in count, min and max, and within the
    histograms' accuracy in mean and quantiles."""
    assert estimated.nodes == exact.nodes
    assert (estimated.unpaired_clients, estimated.unpaired_servers) == (
        exact.unpaired_clients, exact.unpaired_servers)
    assert [(e.client, e.server, e.connection_type, e.requests, e.errors) for e in
            estimated.edges] == [(e.client, e.server, e.connection_type, e.requests, e.errors)
                                 for e in exact.edges]
    for mine, theirs in zip(estimated.edges, exact.edges, strict=True):
        assert mine.rate == pytest.approx(theirs.rate)
        for side in ("server_latency", "client_latency", "messaging_latency"):
            a, b = getattr(mine, side), getattr(theirs, side)
            assert (a is None) == (b is None), side
            if a is None or b is None:
                continue
            assert (a.count, a.min_ns, a.max_ns) == (b.count, b.min_ns, b.max_ns)
            assert a.mean_ns == pytest.approx(b.mean_ns)
            for q in ("p50", "p95", "p99"):
                assert getattr(a, q) == pytest.approx(getattr(b, q), rel=ACCURACY), (side, q)


def test_slices_paired_apart_add_up_to_the_graph_of_their_window(tmp_path):
    _shop_database(tmp_path / "shop.db", minutes=4)
    reader = Reader(tmp_path / "shop.db")
    start, end = NOW - 4 * 60 * S, NOW - 10 * S + 1  # the last slice is cut short
    spans = reader.graph_spans(start - PAIRING_MARGIN_NS, end + PAIRING_MARGIN_NS)
    reader.close()
    exact = service_graph(spans, start, end)
    assert len(exact.edges) > 10

    shuffled = random.Random(1).sample(spans, len(spans))  # pairing ignores arrival order
    slices = sliced_graph_counts(shuffled, start, end, SLICE_NS)
    assert sorted(slices) == list(range(start, end, SLICE_NS))
    total = GraphCounts()
    for counts in slices.values():
        total.merge(GraphCounts.from_json(counts.to_json()))  # as stored and read back
    _same_graph(total.graph(start, end), exact)
    assert total.spans == sum(start <= s.start_time_unix_nano < end for s in spans)
    assert total.first_start_ns == min(s.start_time_unix_nano for s in spans
                                       if s.start_time_unix_nano >= start)
    with pytest.raises(ValueError):
        sliced_graph_counts(spans, start + 1, end, SLICE_NS)


def test_the_writer_stores_closed_slices_and_windows_read_them(tmp_path):
    path = tmp_path / "shop.db"
    _shop_database(path, minutes=6)
    writer = Writer(path)
    stale = stale_slices(writer.conn)
    newest = writer.conn.execute("SELECT max(start_time_unix_nano) FROM traces").fetchone()[0]
    # Every slice that ends a close margin before the newest trace, back to the horizon.
    assert stale and stale[-1] + SLICE_NS <= newest - CLOSE_MARGIN_NS
    assert newest - CLOSE_MARGIN_NS - stale[-1] < 2 * SLICE_NS
    rounds = 0
    while writer.roll_up(6):
        rounds += 1
    assert rounds == -(-len(stale) // 6)
    assert stale_slices(writer.conn) == []
    stored = writer.conn.execute("SELECT count(*) FROM graph_rollups").fetchone()[0]
    assert stored == len(stale)

    end = newest + 1
    start = end - end % SLICE_NS - 5 * 60 * S
    exact = service_graph(graph_spans(writer.conn, start - PAIRING_MARGIN_NS,
                                      end + PAIRING_MARGIN_NS), start, end)
    from_rollups = window_counts(writer.conn, start, end)
    _same_graph(from_rollups.graph(start, end), exact)
    # Without rollups the same window is paired from its spans alone, to the same graph.
    writer.conn.execute("DELETE FROM graph_rollups")
    _same_graph(window_counts(writer.conn, start, end).graph(start, end), exact)
    with pytest.raises(ValueError):
        window_counts(writer.conn, start + 1, end)
    writer.close()


def _errors(conn: sqlite3.Connection, start: int, end: int) -> int:
    return sum(e.errors for e in window_counts(conn, start, end).graph(start, end).edges)


def test_spans_sent_again_forget_the_slices_they_change(tmp_path):
    path = tmp_path / "shop.db"
    _shop_database(path, minutes=3)
    writer = Writer(path)
    while writer.roll_up(100):
        pass
    start, end = closed_range(writer.conn)
    before = _errors(writer.conn, start, end)
    slices = writer.conn.execute("SELECT count(*) FROM graph_rollups").fetchone()[0]

    # One old trace's spans come again, all failed now (a re-sent span replaces its copy).
    request, _, _ = Shop(seed=2, repeat_ids=True).traces_request_for(
        120, now_ns=NOW, spread_ns=3 * 60 * S)
    old = [rs for rs in request.resource_spans
           if rs.scope_spans[0].spans[0].start_time_unix_nano < end - 60 * S][:1]
    assert old
    del request.resource_spans[:]
    request.resource_spans.extend(old)
    for s in request.resource_spans[0].scope_spans[0].spans:
        s.status.code = 2
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
    writer.commit()
    remaining = writer.conn.execute("SELECT count(*) FROM graph_rollups").fetchone()[0]
    assert 0 < remaining < slices  # only the slices around those spans were forgotten
    after = _errors(writer.conn, start, end)  # paired from spans where forgotten
    assert after > before
    while writer.roll_up(100):
        pass
    assert writer.conn.execute("SELECT count(*) FROM graph_rollups").fetchone()[0] == slices
    assert _errors(writer.conn, start, end) == after
    writer.close()


def test_evicted_traces_take_their_slices_and_clearing_takes_all(tmp_path):
    path = tmp_path / "shop.db"
    _shop_database(path, minutes=3)
    writer = Writer(path)
    while writer.roll_up(100):
        pass
    traces = "SELECT trace_id, start_time_unix_nano, end_time_unix_nano FROM traces"
    before = set(writer.conn.execute(traces))
    total = writer.conn.execute("SELECT sum(span_count) FROM traces").fetchone()[0]
    Retention(writer.conn, RetentionLimits(max_spans=total // 2)).run_chunk()
    evicted = before - set(writer.conn.execute(traces))
    assert evicted
    first = min(t[1] for t in evicted) - PAIRING_MARGIN_NS
    last = max(t[2] for t in evicted) + PAIRING_MARGIN_NS
    kept = [row[0] for row in writer.conn.execute("SELECT slice_start FROM graph_rollups")]
    # No rollup remains that could have paired an evicted span; those after them stay.
    assert not [at for at in kept if at + SLICE_NS > first and at <= last]
    assert max(kept) > last
    writer.close()
    clear_all(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM graph_rollups").fetchone()[0] == 0


def test_the_writer_process_rolls_up_once_data_pauses(tmp_path):
    request, spans, _ = Shop(seed=4).traces_request_for(200, spread_ns=3 * 60 * S)
    ingest = Ingest(tmp_path / "live.db", RetentionLimits(), max_pending=100_000)
    try:
        ExportHandler(ingest).export(Signal.TRACES, request.SerializeToString())
        assert ingest.committed_records == spans
        reader = Reader(tmp_path / "live.db")
        deadline = time.monotonic() + 20
        while stale_slices(reader.conn) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stale_slices(reader.conn) == []
        start, end = closed_range(reader.conn)
        assert end - start > 60 * S  # there was something to roll up
        assert reader.conn.execute("SELECT count(*) FROM graph_rollups").fetchone()[0] == (
            end - start) // SLICE_NS
        reader.close()
    finally:
        ingest.close()


def test_a_database_without_the_rollups_table_is_paired_from_spans(tmp_path):
    """As when an older schema is opened read-only."""
    path = tmp_path / "shop.db"
    _shop_database(path, minutes=2)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE graph_rollups")
    reader = Reader(path)
    start = NOW - 2 * 60 * S
    exact = service_graph(graph_spans(reader.conn, start - PAIRING_MARGIN_NS,
                                      NOW + PAIRING_MARGIN_NS), start, NOW)
    _same_graph(window_counts(reader.conn, start, NOW).graph(start, NOW), exact)
    reader.close()


def test_slices_whose_pairing_reads_too_many_rows_are_paired_when_shown(tmp_path,
                                                                        monkeypatch):
    writer = Writer(tmp_path / "shop.db")
    shop = Shop(seed=3, repeat_ids=True)
    for i in range(18):  # three minutes, a batch per 10 s as exporters send them
        request, _, _ = shop.traces_request_for(8, now_ns=NOW - (17 - i) * SLICE_NS,
                                                spread_ns=SLICE_NS)
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
        writer.commit()
    rows = writer.conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    # A small database is read as one range of rows: one row fewer makes it too dense.
    monkeypatch.setattr(graph_rollups, "MAX_SCANNED_ROWS", rows - 1)
    while writer.roll_up(6):
        pass
    assert stale_slices(writer.conn) == []
    dense = [at for (at,) in writer.conn.execute(
        "SELECT slice_start FROM graph_rollups WHERE counts = x''")]
    first_span = writer.conn.execute("SELECT min(start_time_unix_nano) FROM spans").fetchone()[0]
    # The slices near the data; the empty hour before it is rolled up as usual.
    assert dense and min(dense) >= first_span - PAIRING_MARGIN_NS - 2 * SLICE_NS
    start, end = closed_range(writer.conn)
    exact = service_graph(graph_spans(writer.conn, start - PAIRING_MARGIN_NS,
                                      end + PAIRING_MARGIN_NS), start, end)
    assert exact.edges
    _same_graph(window_counts(writer.conn, start, end).graph(start, end), exact)
    # With room for the rows, a slice forgotten by new spans is rolled up again properly.
    monkeypatch.setattr(graph_rollups, "MAX_SCANNED_ROWS", rows * 10)
    writer.conn.execute("DELETE FROM graph_rollups WHERE counts = x''")
    while writer.roll_up(6):
        pass
    assert not writer.conn.execute(
        "SELECT count(*) FROM graph_rollups WHERE counts = x''").fetchone()[0]
    _same_graph(window_counts(writer.conn, start, end).graph(start, end), exact)
    writer.close()


def _graph_span(trace: str, sid: str, parent: str, service: str, kind: int, start: int,
                links: tuple = ()) -> GraphSpan:
    return GraphSpan(trace, sid, parent, service, kind, start, 10**6, 0, links=links or None)


def test_a_slice_counts_the_same_paired_alone_or_with_its_neighbours(tmp_path):
    """What lets a forgotten slice be paired again on its own: nothing further than the
    pairing margin from a slice changes it."""
    P = NOW - 10 * 60 * S
    far = [  # a producer, and a consumer in its own trace linked to it 34 s later
        _graph_span("t1", "root", "", "shop", 2, P + S),
        _graph_span("t1", "send", "root", "shop", 4, P + S + 1000),
        _graph_span("t2", "recv", "", "mailer", 5, P + 35 * S, links=(("t1", "send"),)),
    ]
    _shop_database(tmp_path / "shop.db", minutes=2)
    reader = Reader(tmp_path / "shop.db")
    shop = reader.graph_spans(0, 2**63 - 1)
    reader.close()
    for spans, start in ((far, P), (shop, slice_of(NOW - 2 * 60 * S))):
        end = start + 6 * SLICE_NS
        together = sliced_graph_counts(spans, start, end, SLICE_NS,
                                       max_gap_ns=PAIRING_MARGIN_NS)
        for at, counts in together.items():
            near = [s for s in spans if at - PAIRING_MARGIN_NS <= s.start_time_unix_nano
                    < at + SLICE_NS + PAIRING_MARGIN_NS]
            alone = sliced_graph_counts(near, at, at + SLICE_NS, SLICE_NS,
                                        max_gap_ns=PAIRING_MARGIN_NS)[at]
            assert alone.to_json() == counts.to_json(), at
    # The producer and its consumer were too far apart to pair: no queue edge anywhere.
    counts = sliced_graph_counts(far, P, P + 6 * SLICE_NS, SLICE_NS,
                                 max_gap_ns=PAIRING_MARGIN_NS)
    keys = {key for c in counts.values() for key in c.edges}
    assert ("user", "mailer", "virtual_node") in keys
    assert not any(key[2] == "messaging_system" for key in keys)


def test_a_span_sent_again_with_another_start_forgets_where_it_was(tmp_path):
    path = tmp_path / "moved.db"
    writer = Writer(path)
    request, _, _ = Shop(seed=8, repeat_ids=True).traces_request_for(
        30, now_ns=NOW, spread_ns=3 * 60 * S)
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
    writer.commit()
    while writer.roll_up(100):
        pass
    start, end = closed_range(writer.conn)
    # The oldest trace comes again, every span moved a minute later (a corrected clock).
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans
             for span in ss.spans]
    oldest = min(spans, key=lambda span: span.start_time_unix_nano).trace_id
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            kept = [span for span in ss.spans if span.trace_id == oldest]
            del ss.spans[:]
            ss.spans.extend(kept)
            for span in ss.spans:
                span.start_time_unix_nano += 60 * S
                span.end_time_unix_nano += 60 * S
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
    writer.commit()
    exact = service_graph(graph_spans(writer.conn, start - PAIRING_MARGIN_NS,
                                      end + PAIRING_MARGIN_NS), start, end)
    _same_graph(window_counts(writer.conn, start, end).graph(start, end), exact)
    writer.close()


def test_durations_near_the_64_bit_limit_are_stored():
    big = 2**63 - 1
    histogram = LatencyHistogram.of([big, big, big])
    stored = LatencyHistogram.from_list(orjson.loads(orjson.dumps(histogram.to_list())))
    assert (stored.count, stored.max) == (3, big)
    assert stored.quantile(0.5) == pytest.approx(big, rel=ACCURACY)
