"""OTLP/gRPC: the three collector services' Export methods.

Requests arrive as raw bytes (no generated servicer classes): decoding happens in
``ExportHandler`` so that malformed protobuf gets a clear INVALID_ARGUMENT, and the
response is built once. ``grpc-encoding: gzip`` is handled by gRPC itself.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from tracedesk.otlp import Signal
from tracedesk.receiver.auth import UNAUTHENTICATED, BearerToken
from tracedesk.receiver.export import Backpressure, ExportHandler, PayloadError, StoreFailed
from tracedesk.receiver.ports import PortInUse, ensure_free, host_port

METHODS = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export": Signal.TRACES,
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export": Signal.LOGS,
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export": Signal.METRICS,
}
WORKERS = 32


class _OtlpHandler(grpc.GenericRpcHandler):
    def __init__(self, handler: ExportHandler, token: BearerToken) -> None:
        self._handler = handler
        self._token = token
        self._methods = {
            name: grpc.unary_unary_rpc_method_handler(self._method(signal))
            for name, signal in METHODS.items()
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails):  # type: ignore[override]
        return self._methods.get(handler_call_details.method)

    def _method(self, signal: Signal):
        export, token = self._handler.export, self._token

        def handle(body: bytes, context: grpc.ServicerContext) -> bytes:
            if token.required and not token.accepts(_authorization(context)):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)
            try:
                return export(signal, body)
            except PayloadError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except Backpressure as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"busy: {exc}")
            except StoreFailed as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise AssertionError("unreachable")  # abort() raises

        return handle


def _authorization(context: grpc.ServicerContext) -> str | None:
    return next((value for key, value in context.invocation_metadata()
                 if key == "authorization"), None)  # type: ignore[misc]


def start_grpc(handler: ExportHandler, host: str, port: int, max_message_bytes: int,
               token: BearerToken | None = None) -> tuple[grpc.Server, int]:
    """Start the gRPC server; return it and the port it listens on."""
    ensure_free(host, port, "--grpc-port", "OTLP/gRPC")
    server = grpc.server(
        ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="otlp-grpc"),
        handlers=[_OtlpHandler(handler, token or BearerToken(None))],
        options=[
            # Without this, a second receiver could silently share the port with the first.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
        maximum_concurrent_rpcs=WORKERS * 8,
    )
    try:
        bound = server.add_insecure_port(host_port(host, port))
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise PortInUse(host, port, "--grpc-port", "OTLP/gRPC")
    server.start()
    return server, bound
