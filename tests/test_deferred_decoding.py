"""A busy receiver leaves span attribute conversion to the writer's idle time.

A request that finds another in flight, or that follows the last one at once, stores its
spans' attributes, events and links as the span's protobuf bytes, and the writer process
converts them as soon as no batch waits. Real receiver side, real writer process, real
SQLite file.
"""

from __future__ import annotations

import threading
import time

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.receiver.export import STREAM_GAP_SECONDS, ExportHandler
from tracedesk.receiver.ingest import Ingest
from tracedesk.store.reader import Reader
from tracedesk.store.retention import RetentionLimits

ROWS = "SELECT trace_id, span_id, attributes, events, links FROM spans ORDER BY 1, 2"


def _wait_until_converted(db_path) -> list[tuple]:
    reader = Reader(db_path)
    deadline = time.monotonic() + 20
    while reader.conn.execute("SELECT count(*) FROM spans WHERE raw IS NOT NULL"
                              ).fetchone()[0] and time.monotonic() < deadline:
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
