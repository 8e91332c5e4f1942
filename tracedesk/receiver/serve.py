"""The receiver's lifecycle: database lock, writer process, gRPC and HTTP servers, clean
shutdown.

Shutdown order keeps "acknowledged means stored": stop taking requests, then let the
writer commit everything already handed to it, and only then exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import TextIO

from tracedesk import __version__
from tracedesk.config import Settings
from tracedesk.receiver.auth import BearerToken
from tracedesk.receiver.export import ExportHandler, StoreFailed
from tracedesk.receiver.forward import Forwarder
from tracedesk.receiver.grpc_server import start_grpc
from tracedesk.receiver.http_server import start_http
from tracedesk.receiver.ingest import Ingest
from tracedesk.receiver.instance import ReceiverInfo, ReceiverLock, ReceiverRunning
from tracedesk.receiver.ports import PortInUse, host_port
from tracedesk.receiver.upstream import Upstream, parse_headers
from tracedesk.store.retention import RetentionLimits
from tracedesk.store.schema import SchemaError
from tracedesk.store.upgrade import upgrade

EXIT_USAGE = 2


class ForwardLoop(ValueError):
    """--forward names this receiver itself: every request would come back forever."""


class Receiver:
    """A running OTLP receiver writing to one database (and forwarding, if asked)."""

    def __init__(self, settings: Settings, err: TextIO = sys.stderr) -> None:
        self.settings = settings
        self._err = err
        self.grpc_port = 0
        self.http_port = 0
        self._grpc = None
        self._http = None
        self.ingest: Ingest | None = None
        self.handler: ExportHandler | None = None
        self.forwarder: Forwarder | None = None

    def start(self) -> None:
        """Open the database and both ports; raises PortInUse, StoreFailed or ForwardLoop."""
        s = self.settings
        limits = RetentionLimits(s.max_age, s.max_spans, s.max_db_size)
        self.ingest = Ingest(s.db_path, limits, s.max_pending)
        if s.forward:
            self.forwarder = Forwarder(Upstream.parse(s.forward),
                                       parse_headers(s.forward_headers),
                                       s.forward_queue_size, self._err)
        self.handler = ExportHandler(self.ingest, self.forwarder)
        try:
            token = BearerToken(s.token)
            self._grpc, self.grpc_port = start_grpc(self.handler, s.host, s.grpc_port,
                                                    s.max_body_size, token)
            self._http, self.http_port = start_http(self.handler, s.host, s.http_port,
                                                    s.max_body_size, token)
        except PortInUse:
            self.stop()
            raise
        if self.forwarder is not None:
            upstream = self.forwarder.upstream
            if upstream.is_receiver(s.host, (self.grpc_port, self.http_port)):
                self.stop()
                raise ForwardLoop(f"--forward {upstream} is this receiver itself; name the "
                                  f"upstream's address (a Collector, Tempo, ...)")
            self.forwarder.start()

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=2).wait()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self.forwarder is not None:
            self.forwarder.begin_close()  # what is queued goes out while the writer commits
        if self.ingest is not None:
            self.ingest.close()
        if self.forwarder is not None:
            self.forwarder.join()


def serve(settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr, *,
          stop_on_stdin_eof: bool = False) -> int:
    """Run `tracedesk serve` until SIGINT/SIGTERM (or, if asked, until stdin closes);
    return the exit code."""
    # Decoding holds the GIL for milliseconds; switching sooner lets the threads that
    # answer finished Exports run in between, which shortens every request's wait.
    sys.setswitchinterval(0.0005)
    # The lock comes first: a second receiver must not touch the database or the ports.
    lock = ReceiverLock(settings.db_path)
    try:
        lock.acquire()
    except ReceiverRunning as exc:
        print(exc.advice(), file=err)
        return EXIT_USAGE
    except OSError as exc:
        print(f"tracedesk: cannot lock {lock.path}: {exc}", file=err)
        return 1
    try:
        return _serve_locked(settings, lock, out, err, stop_on_stdin_eof)
    finally:
        # Only after the writer has committed everything may another receiver take over.
        lock.release()


def _serve_locked(settings: Settings, lock: ReceiverLock, out: TextIO, err: TextIO,
                  stop_on_stdin_eof: bool) -> int:
    upgrade(settings.db_path, err)
    receiver = Receiver(settings, err)
    try:
        receiver.start()
    except PortInUse as exc:
        print(exc.advice(), file=err)
        return EXIT_USAGE
    except ForwardLoop as exc:
        print(f"tracedesk: {exc}", file=err)
        return EXIT_USAGE
    except (StoreFailed, SchemaError, OSError) as exc:
        print(f"tracedesk: {exc}", file=err)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if stop_on_stdin_eof:
        threading.Thread(target=_stop_at_eof, args=(stop,), name="parent-watch",
                         daemon=True).start()
    host = settings.host
    # Published before "Ready." so whoever waits for that line finds the details in place.
    lock.publish(ReceiverInfo(pid=os.getpid(), host=host, grpc_port=receiver.grpc_port,
                              http_port=receiver.http_port, started_at=time.time(),
                              version=__version__))
    _say(out, f"tracedesk {__version__} receiver\n"
              f"  OTLP/gRPC  {host_port(host, receiver.grpc_port)}\n"
              f"  OTLP/HTTP  http://{host_port(host, receiver.http_port)}\n"
              f"  database   {settings.db_path}\n"
              + ("  token      required (Authorization: Bearer ...)\n" if settings.token
                 else "")
              + (f"  forward    {settings.forward}\n" if settings.forward else "") +
              "Ready. Ctrl-C stops; everything accepted is committed first.")
    while not stop.wait(0.5):
        pass
    _say(out, "stopping...")
    receiver.stop()
    assert receiver.handler is not None
    accepted = receiver.handler.stats.accepted
    _say(out, f"stopped: stored {accepted['TRACES']} spans, {accepted['LOGS']} log records, "
              f"{accepted['METRICS']} metric points")
    if receiver.forwarder is not None:
        forwarder = receiver.forwarder
        _say(out, f"forward: {forwarder.stats.summary(forwarder.upstream)}")
    return 0


def _stop_at_eof(stop: threading.Event) -> None:
    """A viewer that starts us holds our stdin open; when it dies, however abruptly (kill -9,
    a closed terminal), the pipe ends and we stop instead of running on unowned."""
    # os.read on the descriptor: a daemon thread blocked inside sys.stdin's buffered reader
    # would abort the interpreter at exit (it holds the buffer's lock).
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


def _say(out: TextIO, text: str) -> None:
    """Print and flush, surviving a reader that went away (a viewer that started us died).

    A failed print must not skip the orderly shutdown that follows it.
    """
    try:
        print(text, file=out, flush=True)
    except OSError:
        _silence(out)


def _silence(out: TextIO) -> None:
    # Point the broken stream at /dev/null so the final flush at exit does not fail too.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
