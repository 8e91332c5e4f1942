"""`--forward URL`: pass every accepted Export request on to an upstream OTLP endpoint.

Forwarding must never slow ingest: ``submit`` only appends the request body to a queue
bounded by bytes, and one background thread sends it on, retrying with exponential backoff
while the upstream is unreachable or busy. One thread keeps the upstream's arrival order
and one connection; it sends one request per round trip, which is plenty for one machine.

When the queue is full the *oldest* requests are dropped: everything is in the local
database anyway, and backends such as Loki and Mimir refuse samples that are too old, so
fresh data is the more useful to keep. Requests the upstream refuses for good (400, 401, a
gRPC INVALID_ARGUMENT...) are dropped too. Every drop is counted; stderr gets one line
when the upstream's state changes, never one per request.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from tracedesk.otlp import Signal
from tracedesk.receiver.upstream import Export, Refused, Retry, Upstream, open_sender

DEFAULT_QUEUE_BYTES = 64 * 1024**2
FLUSH_SECONDS = 3.0  # at shutdown, how long queued requests may still take to go out
ATTEMPT_TIMEOUT = 10.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_ELAPSED = 300.0  # give up on one request after this long (the Collector's default)


@dataclass
class ForwardStats:
    """What the forwarder did, in requests and in items (spans, log records, points)."""

    forwarded: int = 0
    forwarded_items: int = 0
    retries: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # requests, by reason
    dropped_items: int = 0
    upstream_rejected_items: int = 0  # partial_success the upstream reported
    queued_bytes: int = 0

    def summary(self, upstream: Upstream) -> str:
        dropped = sum(self.dropped.values())
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items()))
        rejected = self.upstream_rejected_items
        return (f"{self.forwarded} requests ({self.forwarded_items} items) forwarded to "
                f"{upstream}" + (f" ({rejected} items rejected there)" if rejected else "")
                + f", {self.retries} retries, {dropped} dropped"
                + (f" ({why}: {self.dropped_items} items)" if why else ""))


class Forwarder:
    """Queues accepted Export bodies and sends them to the upstream from one thread."""

    def __init__(self, upstream: Upstream, headers: list[tuple[str, str]] | None = None,
                 max_bytes: int = DEFAULT_QUEUE_BYTES, err: TextIO = sys.stderr) -> None:
        self.upstream = upstream
        self.max_bytes = max_bytes
        self.stats = ForwardStats()
        self._err = err
        self._sender = open_sender(upstream, headers or [])
        self._queue: deque[Export] = deque()
        self._cond = threading.Condition()
        self._deadline: float | None = None  # set by close(): when sending must end
        self._failing: str | None = None  # "unreachable" or "refusing" while that lasts
        self._overflowing = False
        self._thread = threading.Thread(target=self._run, name="tracedesk-forward",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, signal: Signal, body: bytes, *, json: bool, items: int) -> None:
        """Queue one stored request; never blocks on the upstream."""
        item, note = Export(signal, body, json, items), None
        with self._cond:
            if self._deadline is not None:
                self._drop(item, "after shutdown")
                return
            if len(body) > self.max_bytes:
                self._drop(item, "larger than the queue")
                return
            while self.stats.queued_bytes + len(body) > self.max_bytes:
                self._drop(self._dequeue(), "queue full")
                if not self._overflowing:
                    self._overflowing = True
                    note = (f"the queue is full ({_mib(self.max_bytes)}); dropping the oldest "
                            f"requests until {self.upstream} takes them")
            self._queue.append(item)
            self.stats.queued_bytes += len(body)
            self._cond.notify()
        if note:
            self._say(note)

    def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """Let queued requests go out for at most ``timeout`` seconds, then stop."""
        self.begin_close(timeout)
        self.join()

    def begin_close(self, timeout: float = FLUSH_SECONDS) -> None:
        with self._cond:
            if self._deadline is None:
                self._deadline = time.monotonic() + timeout
            self._cond.notify_all()

    def join(self) -> None:
        if self._thread.is_alive():
            assert self._deadline is not None
            self._thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        with self._cond:
            while self._queue:
                self._drop(self._dequeue(), "at shutdown")
        self._sender.close()

    # The sending thread.

    def _run(self) -> None:
        while (item := self._next()) is not None:
            self._deliver(item)

    def _next(self) -> Export | None:
        with self._cond:
            while not self._queue:
                if self._deadline is not None:
                    return None
                self._cond.wait()
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return None
            item = self._dequeue()
            if self._overflowing and self.stats.queued_bytes < self.max_bytes // 2:
                self._overflowing = False
            return item

    def _deliver(self, item: Export) -> None:
        started = time.monotonic()
        backoff = INITIAL_BACKOFF
        while True:
            try:
                rejected = self._sender.send(item, self._attempt_timeout())
            except Refused as exc:
                with self._cond:
                    self._drop(item, "refused")
                self._state("refusing", f"{self.upstream} refused a {item.signal.name.lower()} "
                                        f"request ({exc}); such requests are dropped, not retried")
                return
            except Retry as exc:
                self._state("unreachable", f"{self.upstream} is not taking data ({exc}); "
                                           f"retrying, queueing up to {_mib(self.max_bytes)}")
                delay = exc.delay if exc.delay is not None else backoff * random.uniform(0.8, 1.2)
                backoff = min(backoff * 2, MAX_BACKOFF)
                delay = min(delay, MAX_BACKOFF * 2)
                if time.monotonic() - started + delay > MAX_ELAPSED:
                    with self._cond:
                        first = "given up" not in self.stats.dropped
                        self._drop(item, "given up")
                    if first:
                        self._say(f"gave up on a request after {MAX_ELAPSED:g} s of retries; "
                                  f"each is retried that long, then dropped (counted)")
                    return
                if not self._sleep(delay):
                    with self._cond:
                        self._drop(item, "at shutdown")
                    return
                with self._cond:
                    self.stats.retries += 1
                continue
            with self._cond:
                self.stats.forwarded += 1
                self.stats.forwarded_items += item.items
                first_partial = rejected and not self.stats.upstream_rejected_items
                self.stats.upstream_rejected_items += rejected
                waiting = len(self._queue)
            if first_partial:
                self._say(f"{self.upstream} rejected {rejected} items of a request "
                          f"(partial success; later ones are only counted)")
            if self._failing is not None:
                self._failing = None
                self._say(f"{self.upstream} takes data again ({waiting} requests queued)")
            return

    def _attempt_timeout(self) -> float:
        if self._deadline is None:
            return ATTEMPT_TIMEOUT
        return max(0.1, min(ATTEMPT_TIMEOUT, self._deadline - time.monotonic()))

    def _sleep(self, seconds: float) -> bool:
        """Wait before a retry; False when shutdown's deadline comes first."""
        end = time.monotonic() + seconds
        with self._cond:
            while True:
                now = time.monotonic()
                if self._deadline is not None and now >= self._deadline:
                    return False
                if now >= end:
                    return True
                wake = end if self._deadline is None else min(end, self._deadline)
                self._cond.wait(wake - now)

    def _state(self, state: str, message: str) -> None:
        if self._failing != state:
            self._failing = state
            self._say(message)

    def _dequeue(self) -> Export:
        item = self._queue.popleft()
        self.stats.queued_bytes -= len(item.body)
        return item

    def _drop(self, item: Export, reason: str) -> None:
        """Count a dropped request; the caller holds the lock."""
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + 1
        self.stats.dropped_items += item.items

    def _say(self, message: str) -> None:
        # Nobody may read our stderr any more (a viewer that started us died): forward on.
        with contextlib.suppress(OSError, ValueError):
            print(f"tracedesk: forward: {message}", file=self._err, flush=True)


def _mib(size: int) -> str:
    return f"{size / 1024**2:g} MiB"
