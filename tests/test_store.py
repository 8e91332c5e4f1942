"""The writer and retention against a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing

import pytest
from old_schema import database_at_version
from opentelemetry.proto.logs.v1 import logs_pb2
from otlp_builders import logs_request, make_span, traces_request

from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.log_queries import LogFilter, log_count, log_page
from tracedesk.store.paging import nearer_end
from tracedesk.store.reader import (
    SPAN_OF_TRACE,
    SPANS_OF_TRACE,
    Reader,
    TraceFilter,
    TraceOrder,
)
from tracedesk.store.retention import Retention, RetentionLimits
from tracedesk.store.schema import SCHEMA_VERSION, SchemaError, connect
from tracedesk.store.writer import STORED_SPANS, Writer

BASE = time.time_ns()


@pytest.fixture
def writer(tmp_path):
    w = Writer(tmp_path / "store.db")
    yield w
    w.close()


def write(writer: Writer, spans_by_service) -> None:
    body = traces_request(spans_by_service).SerializeToString()
    writer.apply(decode(Signal.TRACES, body, ResourceTable()))
    writer.commit()


def trace_row(writer: Writer, tid: int) -> dict:
    writer.conn.row_factory = sqlite3.Row
    try:
        row = writer.conn.execute("SELECT * FROM traces WHERE trace_id = ?",
                                  (tid.to_bytes(16, "big").hex(),)).fetchone()
    finally:
        writer.conn.row_factory = None
    return dict(row)


def test_new_database_has_schema_version_and_wal(writer):
    assert writer.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert writer.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_out_of_order_spans_keep_the_trace_row_correct(writer):
    # Children arrive first, from two services, over several requests; the root comes last.
    write(writer, {"checkout": [make_span(1, 3, 2, name="db query", start_ms=20, duration_ms=5,
                                         base_ns=BASE)]})
    row = trace_row(writer, 1)
    assert (row["has_root"], row["root_span_name"], row["span_count"]) == (0, "db query", 1)
    seq_after_first = row["seq"]

    write(writer, {"payments": [make_span(1, 2, 1, name="charge", start_ms=10, duration_ms=50,
                                          error=True, base_ns=BASE)]})
    row = trace_row(writer, 1)
    assert row["has_root"] == 0 and row["root_span_name"] == "charge"  # earliest stands in
    assert row["error_count"] == 1 and row["span_count"] == 2

    write(writer, {"frontend": [make_span(1, 1, None, name="GET /checkout", start_ms=0,
                                          duration_ms=100, base_ns=BASE)]})
    row = trace_row(writer, 1)
    assert row["has_root"] == 1
    assert (row["root_service_name"], row["root_span_name"]) == ("frontend", "GET /checkout")
    assert row["root_span_id"] == (1).to_bytes(8, "big").hex()
    assert row["start_time_unix_nano"] == BASE
    assert row["end_time_unix_nano"] == BASE + 100_000_000
    assert row["duration_ns"] == 100_000_000
    assert (row["span_count"], row["error_count"]) == (3, 1)
    assert sorted(json.loads(row["services"])) == ["checkout", "frontend", "payments"]
    assert row["seq"] > seq_after_first


def test_a_late_span_extends_the_trace_end(writer):
    write(writer, {"a": [make_span(2, 1, None, start_ms=0, duration_ms=10, base_ns=BASE)]})
    write(writer, {"b": [make_span(2, 2, 1, start_ms=5, duration_ms=500, base_ns=BASE)]})
    row = trace_row(writer, 2)
    assert row["duration_ns"] == 505_000_000 and row["root_service_name"] == "a"


def test_resent_spans_replace_and_are_not_counted_twice(writer):
    spans = {"svc": [make_span(3, 1, None, base_ns=BASE), make_span(3, 2, 1, base_ns=BASE)]}
    write(writer, spans)
    write(writer, spans)
    # The same span again, now marked as an error: the new version wins.
    write(writer, {"svc": [make_span(3, 2, 1, error=True, base_ns=BASE)]})
    assert writer.conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 2
    row = trace_row(writer, 3)
    assert (row["span_count"], row["error_count"]) == (2, 1)


def test_duplicate_span_inside_one_request_is_stored_once(writer):
    write(writer, {"svc": [make_span(4, 1, None, base_ns=BASE),
                           make_span(4, 1, None, name="again", base_ns=BASE)]})
    assert writer.conn.execute("SELECT name FROM spans").fetchall() == [("again",)]
    assert trace_row(writer, 4)["span_count"] == 1


def test_resources_are_stored_once(writer):
    write(writer, {"svc": [make_span(5, 1, None, base_ns=BASE)]})
    write(writer, {"svc": [make_span(6, 1, None, base_ns=BASE)]})
    rows = writer.conn.execute("SELECT service_name, attributes FROM resources").fetchall()
    assert rows == [("svc", '{"service.name":"svc"}')]


def test_a_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE notes (x)").connection.commit()
    with pytest.raises(SchemaError, match="not a tracedesk database"):
        connect(path)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "newer.db"
    connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaError, match="Upgrade tracedesk"):
        connect(path)


def _fill(writer: Writer, traces: int, spans_per_trace: int, start_ns: int, step_ns: int):
    tid = 1000
    for t in range(traces):
        tid += 1
        spans = [make_span(tid, 1, None, base_ns=start_ns + t * step_ns)]
        spans += [make_span(tid, i, 1, base_ns=start_ns + t * step_ns)
                  for i in range(2, spans_per_trace + 1)]
        write(writer, {"svc": spans})


def _run_until_done(retention: Retention) -> None:
    for _ in range(1000):
        if not retention.run_chunk():
            return
    raise AssertionError("retention did not finish")


def test_retention_by_age_evicts_old_traces_and_their_logs(writer):
    now = time.time()
    day = 86_400 * 10**9
    old_start = int((now - 10 * 86_400) * 1e9)
    _fill(writer, traces=3, spans_per_trace=2, start_ns=old_start, step_ns=day)  # 10, 9, 8 days
    _fill_recent = make_span(42, 1, None, base_ns=int(now * 1e9))
    write(writer, {"svc": [_fill_recent]})
    writer.conn.execute(
        "INSERT INTO logs (time_unix_nano, observed_time_unix_nano, severity_number, "
        "severity_text, body, attributes, trace_id, span_id, service_name, resource_id, "
        "scope_name, event_name, flags) VALUES (?, 0, 9, 'INFO', '\"x\"', '{}', '', '', 's', 0, "
        "'', '', 0)", (old_start,))
    retention = Retention(writer.conn, RetentionLimits(max_age_seconds=8.5 * 86_400),
                          clock=lambda: now)
    _run_until_done(retention)
    remaining = [r[0] for r in writer.conn.execute(
        "SELECT start_time_unix_nano FROM traces ORDER BY 1")]
    assert remaining == [old_start + 2 * day, int(now * 1e9)]
    assert writer.conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 3
    assert writer.conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 0


def test_retention_by_span_count_evicts_oldest_whole_traces(writer):
    _fill(writer, traces=40, spans_per_trace=5, start_ns=BASE, step_ns=1_000_000)
    retention = Retention(writer.conn, RetentionLimits(max_spans=100))
    _run_until_done(retention)
    spans = writer.conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    assert spans <= 100
    counts = writer.conn.execute(
        "SELECT t.span_count, (SELECT count(*) FROM spans s WHERE s.trace_id = t.trace_id) "
        "FROM traces t").fetchall()
    assert all(a == b == 5 for a, b in counts)  # only whole traces were removed
    oldest_kept = writer.conn.execute("SELECT min(start_time_unix_nano) FROM traces").fetchone()
    assert oldest_kept[0] == BASE + (40 - len(counts)) * 1_000_000


def test_retention_by_size_shrinks_the_database(writer):
    _fill(writer, traces=300, spans_per_trace=10, start_ns=BASE, step_ns=1_000_000)
    retention = Retention(writer.conn, RetentionLimits(max_db_bytes=1))
    used_before = retention.used_bytes()
    retention = Retention(writer.conn, RetentionLimits(max_db_bytes=used_before // 2))
    _run_until_done(retention)
    assert retention.used_bytes() <= used_before // 2
    kept = writer.conn.execute("SELECT count(*) FROM traces").fetchone()[0]
    assert 0 < kept < 300


def test_a_version_1_database_gains_the_duration_index(tmp_path):
    path = tmp_path / "v1.db"
    database_at_version(path, 1)
    with closing(sqlite3.connect(path, isolation_level=None)) as old:
        old.execute("INSERT INTO traces VALUES ('ab', 1, 5, 4, 's', 'n', 'cd', 1, 1, 0, '[]', 1)")
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT trace_id FROM traces "
                        "ORDER BY duration_ns DESC LIMIT 10").fetchall()
    assert "traces_by_duration" in str(plan)
    assert conn.execute("SELECT trace_id, duration_ns FROM traces").fetchall() == [("ab", 4)]
    conn.close()


def test_pages_past_the_middle_read_from_the_other_end_give_the_same_rows(tmp_path):
    """trace_page and log_page with the list's total: the same rows as a plain OFFSET read."""
    writer = Writer(tmp_path / "p.db")
    resources = ResourceTable()
    base = 1_700_000_000_000_000_000
    # Many equal start times, so ties are part of the order being checked.
    spans = [make_span(t, 1, None, base_ns=base, start_ms=t // 3, duration_ms=t % 7 + 1)
             for t in range(1, 1001)]
    records = [logs_pb2.LogRecord(time_unix_nano=base + (n // 4) * 1000, severity_number=9)
               for n in range(600)]
    writer.apply(decode(Signal.TRACES, traces_request({"svc": spans}).SerializeToString(),
                        resources))
    writer.apply(decode(Signal.LOGS, logs_request(*records).SerializeToString(), resources))
    writer.commit()
    reader = Reader(tmp_path / "p.db")
    for order in TraceOrder:
        plain = reader.trace_page(0, 1000, order)
        for offset in (0, 450, 500, 501, 790, 990, 999):
            page = reader.trace_page(offset, 37, order, TraceFilter(), 1000)
            assert page == plain[offset:offset + 37]
    total = log_count(reader)
    plain_logs = log_page(reader, 0, total)
    for offset in (0, 299, 300, 301, 570, 599):
        assert log_page(reader, offset, 40, LogFilter(), total) == plain_logs[offset:offset + 40]
    assert nearer_end(990, 37, 1000) == (True, 0, 10)
    assert nearer_end(10, 37, 1000) == (False, 10, 37)


def _shop_request(seed: int = 7):
    from tracedesk.demo.shop import Shop

    request, _ = Shop(seed=seed).traces_request(300)
    return request.SerializeToString()


def test_deferred_spans_read_the_same_and_are_converted_in_place(tmp_path):
    """A batch stored deferred (attributes, events, links in the span's bytes) reads the
    same as one converted at once, before and after the writer converts it."""
    body = _shop_request()
    now, later = Writer(tmp_path / "now.db"), Writer(tmp_path / "later.db")
    now.apply(decode(Signal.TRACES, body, ResourceTable()))
    now.commit()
    later.apply(decode(Signal.TRACES, body, ResourceTable(), defer=True))
    later.commit()
    assert later.has_deferred and not now.has_deferred
    pending = later.conn.execute("SELECT count(*) FROM spans WHERE raw IS NOT NULL").fetchone()
    assert pending[0] == now.conn.execute("SELECT count(*) FROM spans").fetchone()[0]

    def read(path):
        reader = Reader(path)
        trace_ids = [t.trace_id for t in reader.trace_page(0, 1000)]
        spans = [reader.spans(t) for t in trace_ids]
        graph = sorted(reader.graph_spans(0, 2**63 - 1))
        reader.close()
        return spans, graph

    expected = read(tmp_path / "now.db")
    assert any(s.attributes for trace in expected[0] for s in trace)
    assert any(g.links for g in expected[1])
    assert read(tmp_path / "later.db") == expected

    converted = 0
    while later.has_deferred:
        converted += later.convert_deferred(100)
        later.commit()
    assert converted == pending[0]
    columns = "SELECT trace_id, span_id, attributes, events, links, raw FROM spans ORDER BY 1, 2"
    assert later.conn.execute(columns).fetchall() == now.conn.execute(columns).fetchall()
    assert read(tmp_path / "later.db") == expected
    later.close()
    now.close()
    # A writer reopened on a database with spans still deferred knows it has work.
    pending_db = Writer(tmp_path / "pending.db")
    pending_db.apply(decode(Signal.TRACES, body, ResourceTable(), defer=True))
    pending_db.close()
    assert Writer(tmp_path / "pending.db").has_deferred


def test_a_version_2_database_keeps_its_spans_and_can_defer(tmp_path):
    path = tmp_path / "v2.db"
    database_at_version(path, 2)
    with closing(sqlite3.connect(path, isolation_level=None)) as old:
        old.execute("INSERT INTO spans VALUES ('ab', 'cd', '', 'GET /', 2, 'web', 1, 5, 4, 0, "
                    "'', '{\"k\":1}', '[]', '[]', 9, 'scope', '1', '', 0)")
    writer = Writer(path)
    assert writer.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert writer.conn.execute("SELECT name, attributes, raw FROM spans").fetchall() == [
        ("GET /", '{"k":1}', None)]
    # It has no traces row (written by hand): its trace number is none of the writer's.
    assert writer.conn.execute("SELECT trace_ref FROM spans").fetchall() == [(0,)]
    writer.close()


def test_a_converted_span_sent_again_deferred_is_converted_again(writer):
    span = make_span(5, 1, name="last", base_ns=BASE, colour="blue")
    body = traces_request({"svc": [span]}).SerializeToString()
    writer.apply(decode(Signal.TRACES, body, ResourceTable()))
    writer.apply(decode(Signal.TRACES, body, ResourceTable(), defer=True))  # replaces it
    writer.commit()
    assert writer.conn.execute("SELECT attributes FROM spans").fetchall() == [(None,)]
    assert writer.convert_deferred(10) == 1
    writer.commit()
    assert not writer.has_deferred
    assert writer.conn.execute("SELECT attributes, raw FROM spans").fetchall() == [
        ('{"colour":"blue"}', None)]


def test_sequence_numbers_continue_above_another_writers(tmp_path):
    """Two writers on one file (the receiver and `tracedesk import`): each change gets a
    sequence number above every stored one, so "seq > last seen" finds it."""
    first, second = Writer(tmp_path / "s.db"), Writer(tmp_path / "s.db")
    for n, writer in enumerate((first, second, second, first), start=1):
        write(writer, {"svc": [make_span(n, 1, base_ns=BASE)]})
    seqs = [trace_row(first, n)["seq"] for n in range(1, 5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    # Nor do two traces share a number, which their spans are found by.
    refs = [trace_row(first, n)["trace_ref"] for n in range(1, 5)]
    assert refs == sorted(refs) and len(set(refs)) == 4
    assert [len(Reader(tmp_path / "s.db").spans(trace_id_hex(n))) for n in range(1, 5)] == [1] * 4
    first.close()
    second.close()


def _indexed(writer: Writer, word: str) -> list[int]:
    return [r[0] for r in writer.conn.execute(
        "SELECT rowid FROM span_words WHERE span_words MATCH ?", (f'"{word}"',))]


def test_the_attribute_index_follows_replaced_evicted_and_cleared_spans(tmp_path):
    from tracedesk.store.clear import clear_all

    writer = Writer(tmp_path / "w.db")
    write(writer, {"svc": [make_span(1, 1, base_ns=BASE, colour="amber")]})
    write(writer, {"svc": [make_span(2, 1, base_ns=BASE + 10**9, colour="teal")]})
    assert writer.index_some(10) == 2 and not writer.has_unindexed
    writer.commit()
    assert len(_indexed(writer, "amber")) == 1
    # Re-sent with another value: the old words leave the index, the new ones join it.
    write(writer, {"svc": [make_span(1, 1, base_ns=BASE, colour="crimson")]})
    assert writer.index_some(10) == 1
    writer.commit()
    assert (_indexed(writer, "amber"), len(_indexed(writer, "crimson"))) == ([], 1)
    # Evicted with their traces.
    retention = Retention(writer.conn, RetentionLimits(max_spans=1))
    _run_until_done(retention)
    left = {json.loads(a)["colour"] for (a,) in writer.conn.execute(
        "SELECT attributes FROM spans")}
    assert len(left) < 2
    for colour in ("crimson", "teal"):
        assert len(_indexed(writer, colour)) == (colour in left)
    # Every span went: rowids start again below what the index had covered, and the new
    # span is indexed all the same.
    covered = writer.conn.execute("SELECT indexed_to FROM span_words_progress").fetchone()[0]
    write(writer, {"svc": [make_span(3, 1, base_ns=BASE + 2 * 10**9, colour="olive")]})
    assert writer.conn.execute("SELECT max(rowid) FROM spans").fetchone()[0] <= covered
    assert writer.index_some(10) == 1
    writer.commit()
    assert len(_indexed(writer, "olive")) == 1
    writer.close()
    clear_all(tmp_path / "w.db")
    reopened = Writer(tmp_path / "w.db")
    assert _indexed(reopened, "olive") == []
    assert reopened.conn.execute("SELECT indexed_to FROM span_words_progress").fetchone() == (0,)
    reopened.close()


def trace_id_hex(n: int) -> str:
    return n.to_bytes(16, "big").hex()


def test_a_version_5_database_numbers_its_traces_and_keeps_its_span_rowids(tmp_path):
    path = tmp_path / "v5.db"
    database_at_version(path, 5)
    # Spans as schema 5 stored them, the unique index beside them, with a gap in the
    # rowids (an evicted trace): the attribute index and the blocks refer to these rowids.
    conn = sqlite3.connect(path, isolation_level=None)
    for seq, (tid, rowids) in enumerate(((7, (1, 2)), (3, (5, 6, 9))), start=1):
        trace_id = trace_id_hex(tid)
        conn.execute("INSERT INTO traces VALUES (?, 0, 1, 1, 'svc', 'root', ?, 1, ?, 0, "
                     "'[\"svc\"]', ?)", (trace_id, f"{rowids[0]:016x}", len(rowids), seq))
        for rowid in rowids:
            parent = "" if rowid == rowids[0] else f"{rowids[0]:016x}"
            conn.execute("INSERT INTO spans (rowid, trace_id, span_id, parent_span_id, name, "
                         "kind, service_name, start_time_unix_nano, end_time_unix_nano, "
                         "duration_ns, status_code, status_message, attributes, events, links, "
                         "resource_id, scope_name, scope_version, trace_state, flags) VALUES "
                         "(?, ?, ?, ?, ?, 1, 'svc', ?, ?, 1, 0, '', '{}', '[]', '[]', 1, '', "
                         "'', '', 0)", (rowid, trace_id, f"{rowid:016x}", parent,
                                        f"span{rowid}", rowid, rowid + 1))
    conn.close()

    writer = Writer(path)
    c = writer.conn
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # Traces are numbered in the order they changed; each span carries its trace's number.
    assert c.execute("SELECT trace_id, trace_ref FROM traces ORDER BY seq").fetchall() == [
        (trace_id_hex(7), 1), (trace_id_hex(3), 2)]
    assert c.execute("SELECT rowid, name, trace_ref FROM spans ORDER BY rowid").fetchall() == [
        (1, "span1", 1), (2, "span2", 1), (5, "span5", 2), (6, "span6", 2), (9, "span9", 2)]
    # A new trace is numbered above them; a span sent again still replaces its copy.
    write(writer, {"svc": [make_span(11, 1, base_ns=BASE)]})
    assert trace_row(writer, 11)["trace_ref"] == 3
    writer.close()
    reader = Reader(path)
    assert [s.name for s in reader.spans(trace_id_hex(3))] == ["span5", "span6", "span9"]
    assert reader.span(trace_id_hex(7), f"{2:016x}").name == "span2"
    reader.close()


def test_a_version_6_database_keeps_its_traces_stored_in_arrival_order(tmp_path):
    path = tmp_path / "v6.db"
    database_at_version(path, 6)
    conn = sqlite3.connect(path, isolation_level=None)
    # Refs in arrival order, trace ids in another order (ids are random).
    for ref, tid in ((1, 9), (2, 4), (3, 6)):
        trace_id = trace_id_hex(tid)
        conn.execute("INSERT INTO traces VALUES (?, ?, ?, 1, 'svc', 'root', ?, 1, 1, 0, "
                     "'[\"svc\"]', ?, ?)", (trace_id, ref, ref + 1, f"{tid:016x}", ref, ref))
        conn.execute("INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, "
                     "service_name, start_time_unix_nano, end_time_unix_nano, duration_ns, "
                     "status_code, status_message, attributes, events, links, resource_id, "
                     "scope_name, scope_version, trace_state, flags, trace_ref) VALUES "
                     "(?, ?, '', 'root', 2, 'svc', ?, ?, 1, 0, '', '{}', '[]', '[]', 1, '', "
                     "'', '', 0, ?)", (trace_id, f"{tid:016x}", ref, ref + 1, ref))
    conn.close()

    writer = Writer(path)
    c = writer.conn
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # The trace's number is its rowid: rows lie in arrival order, and new ones are appended.
    assert c.execute("SELECT rowid, trace_id FROM traces ORDER BY rowid").fetchall() == [
        (1, trace_id_hex(9)), (2, trace_id_hex(4)), (3, trace_id_hex(6))]
    write(writer, {"svc": [make_span(2, 1, base_ns=BASE)]})
    assert trace_row(writer, 2)["trace_ref"] == 4
    # A late span still updates its trace's row, found by trace id.
    write(writer, {"svc": [make_span(4, 2, 4, base_ns=BASE)]})
    assert trace_row(writer, 4)["span_count"] == 2
    assert c.execute("SELECT count(*) FROM traces").fetchone()[0] == 4
    for sql, index in (("SELECT trace_ref FROM traces WHERE trace_id = 'x'", "trace_id"),
                       ("SELECT * FROM traces ORDER BY start_time_unix_nano DESC LIMIT 5",
                        "traces_by_start"),
                       ("SELECT * FROM traces ORDER BY duration_ns DESC LIMIT 5",
                        "traces_by_duration"),
                       ("SELECT * FROM traces WHERE seq > 3", "traces_by_seq")):
        plan = " ".join(row[-1] for row in c.execute("EXPLAIN QUERY PLAN " + sql))
        assert index in plan, (sql, plan)
    writer.close()


def test_the_spans_of_a_trace_are_read_through_the_trace_number_index(writer):
    """Finding a trace's spans reads its entries of spans_by_trace, not the whole table."""
    for sql, args in ((SPANS_OF_TRACE, ("a",)), (SPAN_OF_TRACE, ("a", "b")),
                      (STORED_SPANS, ("[]",))):
        plan = " ".join(row[-1] for row in writer.conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "INDEX spans_by_trace (trace_ref=?" in plan, plan
