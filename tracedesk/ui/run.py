"""`tracedesk` with no command: start (or attach to) the receiver, run the app, clean up."""

from __future__ import annotations

import sys

from tracedesk.config import Settings
from tracedesk.receiver.child import ChildReceiver, ReceiverStatus
from tracedesk.store.upgrade import upgrade
from tracedesk.ui.app import ReceiverLine, make_app
from tracedesk.ui.query_history import default_history_path


def receiver_line(status: ReceiverStatus | None) -> ReceiverLine:
    if status is None:
        return ReceiverLine("viewing only (--no-receiver)", False)
    if status.mode == "unavailable":
        return ReceiverLine("no receiver: " + status.message.splitlines()[0], False,
                            notice=status.message)
    where = f"OTLP {status.grpc_address} (gRPC) · {status.http_address} (HTTP)"
    text = f"{where} · shared receiver pid {status.pid}" if status.mode == "attached" else where
    return ReceiverLine(text, True, grpc_address=status.grpc_address,
                        http_address=status.http_address)


def run_app(settings: Settings, *, start_receiver: bool = True) -> int:
    child = ChildReceiver()
    status = None
    if start_receiver:
        upgrade(settings.db_path, sys.stderr)
        print(f"starting the receiver for {settings.db_path} ...", file=sys.stderr, flush=True)
        status = child.start(settings)
    try:
        make_app(settings.db_path, receiver_line(status),
                 history_path=default_history_path()).run()
    finally:
        child.stop()
    return 0
