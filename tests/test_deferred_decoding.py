"""A busy receiver leaves span attribute conversion to the writer's idle time.

The receiver process decodes one request at a time; a request that finds another being
decoded stores its spans' attributes, events and links as the span's protobuf bytes, and
the writer process converts them as soon as no batch waits. Real receiver side, real
writer process, real SQLite file.
"""

from __future__ import annotations

import threading
import time

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.receiver.export import ExportHandler
from tracedesk.receiver.ingest import Ingest
from tracedesk.store.reader import Reader
from tracedesk.store.retention import RetentionLimits

ROWS = "SELECT trace_id, span_id, attributes, events, links FROM spans ORDER BY 1, 2"


def test_a_request_that_waits_to_be_decoded_is_stored_deferred_then_converted(tmp_path):
    request, spans = Shop(seed=3).traces_request(400)
    body = request.SerializeToString()
    ingest = Ingest(tmp_path / "busy.db", RetentionLimits(), max_pending=100_000)
    handler = ExportHandler(ingest)
    try:
        handler._decode_lock.acquire()  # another request is being decoded
        sent = threading.Thread(target=handler.export, args=(Signal.TRACES, body))
        sent.start()
        time.sleep(0.2)
        handler._decode_lock.release()
        sent.join(30)
        assert not sent.is_alive()
        assert handler.stats.deferred == 1
        assert ingest.committed_records == spans

        reader = Reader(tmp_path / "busy.db")
        deadline = time.monotonic() + 20
        while reader.conn.execute("SELECT count(*) FROM spans WHERE raw IS NOT NULL"
                                  ).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        stored = reader.conn.execute(ROWS).fetchall()
        reader.close()
    finally:
        ingest.close()

    # What a quiet receiver would have stored, converted at once.
    from tracedesk.store.writer import Writer

    quiet = Writer(tmp_path / "quiet.db")
    quiet.apply(decode(Signal.TRACES, body, ResourceTable()))
    quiet.commit()
    assert stored == quiet.conn.execute(ROWS).fetchall()
    assert len(stored) == spans
    quiet.close()


def test_an_uncontended_request_is_converted_at_once(tmp_path):
    request, _ = Shop(seed=4).traces_request(50)
    ingest = Ingest(tmp_path / "quiet.db", RetentionLimits(), max_pending=100_000)
    handler = ExportHandler(ingest)
    try:
        handler.export(Signal.TRACES, request.SerializeToString())
        reader = Reader(tmp_path / "quiet.db")
        # Acknowledged means stored, with its JSON columns: no conversion to wait for.
        assert reader.conn.execute(
            "SELECT count(*) FROM spans WHERE raw IS NOT NULL OR attributes IS NULL"
        ).fetchone() == (0,)
        reader.close()
    finally:
        ingest.close()
    assert handler.stats.deferred == 0
