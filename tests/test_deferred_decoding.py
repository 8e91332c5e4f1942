"""A busy receiver leaves span attribute conversion to the writer's idle time.

A request that finds another in flight, or that follows the last one at once, stores its
spans' attributes, events and links as the span's protobuf bytes, and the writer process
converts them as soon as no batch waits. Real receiver side, real writer process, real
SQLite file.
"""

from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from otlp_builders import logs_request

from tracedesk.demo.shop import Shop
from tracedesk.otlp import PayloadError, ResourceTable, Signal, decode
from tracedesk.receiver.export import STREAM_GAP_SECONDS, ExportHandler
from tracedesk.receiver.ingest import Ingest
from tracedesk.store.reader import Reader
from tracedesk.store.retention import RetentionLimits
from tracedesk.store.writer_process import QUIET_SECONDS

ROWS = "SELECT trace_id, span_id, attributes, events, links FROM spans ORDER BY 1, 2"
LOG_BODY = logs_request(logs_pb2.LogRecord(time_unix_nano=1, body=AnyValue(string_value="hi"))
                        ).SerializeToString()


def _waiting(reader: Reader) -> int:
    return reader.conn.execute("SELECT count(*) FROM spans WHERE raw IS NOT NULL").fetchone()[0]


def _wait_until_converted(db_path) -> list[tuple]:
    reader = Reader(db_path)
    deadline = time.monotonic() + 20
    while _waiting(reader):
        assert time.monotonic() < deadline, "the writer did not convert the deferred spans"
        time.sleep(0.05)
    stored = reader.conn.execute(ROWS).fetchall()
    reader.close()
    return stored


def _stored_at_once(db_path, bodies: list[bytes]) -> list[tuple]:
    """What a quiet receiver would have stored, converted at once."""
    from tracedesk.store.writer import Writer

    quiet = Writer(db_path)
    resources = ResourceTable()
    for body in bodies:
        quiet.apply(decode(Signal.TRACES, body, resources))
    quiet.commit()
    rows = quiet.conn.execute(ROWS).fetchall()
    quiet.close()
    return rows


def test_a_request_that_arrives_while_another_is_in_flight_is_stored_deferred(tmp_path):
    shop = Shop(seed=3)
    (first, first_spans), (second, second_spans) = (shop.traces_request(400) for _ in "12")
    bodies = [first.SerializeToString(), second.SerializeToString()]
    ingest = Ingest(tmp_path / "busy.db", RetentionLimits(), max_pending=100_000)
    handler = ExportHandler(ingest)
    try:
        handler._decode_lock.acquire()  # hold the first request in flight
        sent = [threading.Thread(target=handler.export, args=(Signal.TRACES, body))
                for body in bodies]
        for thread in sent:
            thread.start()
            time.sleep(0.2)
        handler._decode_lock.release()
        for thread in sent:
            thread.join(30)
            assert not thread.is_alive()
        assert handler.stats.deferred == 1  # the first found the receiver idle
        assert ingest.committed_records == first_spans + second_spans
        stored = _wait_until_converted(tmp_path / "busy.db")
    finally:
        ingest.close()
    assert stored == _stored_at_once(tmp_path / "quiet.db", bodies)
    assert len(stored) == first_spans + second_spans


def test_requests_sent_back_to_back_are_stored_deferred(tmp_path):
    """One exporter that sends again as soon as it is answered keeps the receiver busy."""
    shop = Shop(seed=5)
    bodies = [shop.traces_request(200)[0].SerializeToString() for _ in range(3)]
    ingest = Ingest(tmp_path / "stream.db", RetentionLimits(), max_pending=100_000)
    handler = ExportHandler(ingest)
    try:
        for body in bodies:
            handler.export(Signal.TRACES, body)
        assert handler.stats.deferred == 2  # all but the first
        stored = _wait_until_converted(tmp_path / "stream.db")
    finally:
        ingest.close()
    assert stored == _stored_at_once(tmp_path / "quiet.db", bodies)


def test_requests_sent_now_and_then_are_converted_at_once(tmp_path):
    shop = Shop(seed=4)
    ingest = Ingest(tmp_path / "quiet.db", RetentionLimits(), max_pending=100_000)
    handler = ExportHandler(ingest)
    try:
        for n in range(2):
            if n:
                time.sleep(STREAM_GAP_SECONDS + 0.1)
            handler.export(Signal.TRACES, shop.traces_request(50)[0].SerializeToString())
        reader = Reader(tmp_path / "quiet.db")
        # Acknowledged means stored, with its JSON columns: no conversion to wait for.
        assert reader.conn.execute(
            "SELECT count(*) FROM spans WHERE raw IS NOT NULL OR attributes IS NULL"
        ).fetchone() == (0,)
        reader.close()
    finally:
        ingest.close()
    assert handler.stats.deferred == 0


def test_logs_and_failed_requests_do_not_make_spans_wait(tmp_path):
    """Only trace exports sent back to back are a stream; a request that failed leaves
    nothing in flight behind it."""
    ingest = Ingest(tmp_path / "mixed.db", RetentionLimits(), max_pending=100_000)
    handler = ExportHandler(ingest)
    shop = Shop(seed=8)
    try:
        with pytest.raises(PayloadError):
            handler.export(Signal.LOGS, b"\xff\xff not protobuf")
        handler.export(Signal.LOGS, LOG_BODY)
        handler.export(Signal.TRACES, shop.traces_request(50)[0].SerializeToString())
    finally:
        ingest.close()
    assert handler.stats.deferred == 0
    assert handler._in_flight == 0


def test_deferred_spans_are_converted_while_data_never_pauses(tmp_path):
    """A steady trickle of batches, closer together than the writer's quiet moment, still
    leaves it time to convert deferred spans now and then."""
    ingest = Ingest(tmp_path / "trickle.db", RetentionLimits(), max_pending=100_000)
    resources = ResourceTable()
    body = Shop(seed=9).traces_request(600)[0].SerializeToString()
    try:
        ingest.store(decode(Signal.TRACES, body, resources, defer=True))
        reader = Reader(tmp_path / "trickle.db")
        assert _waiting(reader) > 0
        deadline = time.monotonic() + 30
        while _waiting(reader):
            assert time.monotonic() < deadline, "the trickle starved the deferred spans"
            ingest.store(decode(Signal.LOGS, LOG_BODY, resources))
            time.sleep(QUIET_SECONDS / 4)
        reader.close()
    finally:
        ingest.close()
