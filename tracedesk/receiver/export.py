"""What both transports do with an Export request body: decode, store, build the response."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tracedesk.otlp import PayloadError, ResourceTable, Signal, decode, response
from tracedesk.receiver.forward import Forwarder
from tracedesk.receiver.ingest import Backpressure, Ingest, StoreFailed

# A trace Export that comes this soon after the last one was answered (by any exporter) is
# part of a stream: an exporter sending again as soon as it is answered comes within a
# millisecond or so, SDKs sending at ordinary rates seconds apart.
STREAM_GAP_SECONDS = 0.05

__all__ = ["Backpressure", "ExportHandler", "PayloadError", "StoreFailed"]


@dataclass
class ReceiverStats:
    """Counters for the status line and for `bench`; updated under a lock."""

    requests: int = 0
    accepted: dict[str, int] = field(default_factory=lambda: {s.name: 0 for s in Signal})
    rejected_items: int = 0
    malformed: int = 0
    throttled: int = 0
    deferred: int = 0  # trace requests whose attribute conversion was left to the writer
    started_at: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ExportHandler:
    def __init__(self, ingest: Ingest, forwarder: Forwarder | None = None) -> None:
        self.ingest = ingest
        self.forwarder = forwarder
        self.resources = ResourceTable()
        self.stats = ReceiverStats()
        # Decoding holds the GIL, so concurrent decodes only interleave: each would finish
        # late, and the writer would get bursts. One at a time feeds it a steady stream.
        self._decode_lock = threading.Lock()
        self._in_flight = 0  # Exports between arrival and answer, under stats.lock
        self._last_traces_answered = float("-inf")

    def export(self, signal: Signal, body: bytes, *, json: bool = False) -> bytes:
        """Store one Export body; return the serialized response.

        Raises PayloadError (malformed), Backpressure (retry later) or StoreFailed.
        """
        stats = self.stats
        with stats.lock:
            defer = self._under_load(signal)
            self._in_flight += 1
        try:
            return self._export(signal, body, json=json, defer=defer)
        finally:
            with stats.lock:
                self._in_flight -= 1
                if signal is Signal.TRACES:
                    self._last_traces_answered = time.monotonic()

    def _under_load(self, signal: Signal) -> bool:
        """Whether this request finds the receiver under load: another Export of any
        signal in flight (decoding, or waiting for its commit), or spans answered just
        before (an exporter that sends again as soon as it is answered). A trace request
        then leaves the costliest part of decoding spans to the writer's idle time, which
        keeps both processes busy; spans sent now and then are converted at once. Called
        under stats.lock."""
        if self._in_flight:
            return True
        return (signal is Signal.TRACES
                and time.monotonic() - self._last_traces_answered < STREAM_GAP_SECONDS)

    def _export(self, signal: Signal, body: bytes, *, json: bool, defer: bool) -> bytes:
        stats = self.stats
        try:
            with self._decode_lock:
                batch = decode(signal, body, self.resources, json=json, defer=defer)
        except PayloadError:
            with stats.lock:
                stats.requests += 1
                stats.malformed += 1
            raise
        try:
            self.ingest.store(batch)
        except Backpressure:
            with stats.lock:
                stats.requests += 1
                stats.throttled += 1
            raise
        with stats.lock:
            stats.requests += 1
            stats.accepted[signal.name] += batch.accepted
            stats.rejected_items += batch.rejected
            stats.deferred += defer and signal is Signal.TRACES
        items = batch.accepted + batch.rejected
        if self.forwarder is not None and items:
            # Only once stored, and as received: the upstream judges the items we rejected.
            self.forwarder.submit(signal, body, json=json, items=items)
        return response(signal, batch, json=json)
