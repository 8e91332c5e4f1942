"""OTLP/HTTP: ``POST /v1/traces|logs|metrics`` with protobuf or JSON bodies.

Status codes follow the OTLP spec and the Collector: 400 with a ``google.rpc.Status`` for
malformed data, 405, 415, 413 when the body (after decompression) is over the limit,
503 + Retry-After under back-pressure. Responses use the request's encoding.
"""

from __future__ import annotations

import errno
import re
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from tracedesk.otlp import Signal
from tracedesk.receiver.auth import UNAUTHENTICATED, BearerToken
from tracedesk.receiver.export import Backpressure, ExportHandler, PayloadError, StoreFailed
from tracedesk.receiver.ingest import RETRY_AFTER_SECONDS
from tracedesk.receiver.ports import PortInUse

PATHS = {"/v1/traces": Signal.TRACES, "/v1/logs": Signal.LOGS, "/v1/metrics": Signal.METRICS}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
GRPC_INVALID_ARGUMENT = 3
GRPC_UNAVAILABLE = 14
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_UNAUTHENTICATED = 16
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
LINGER_BYTES = 256 * 1024**2  # at most this much of a refused body is read and dropped
LINGER_SECONDS = 2.0


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


def rpc_status(code: int, message: str, *, json: bool) -> bytes:
    """A ``google.rpc.Status`` (code, message) in JSON or protobuf wire format."""
    if json:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding, refusing output over ``limit`` bytes (gzip bombs)."""
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise BadBody(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadBody(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise BodyTooLarge(f"body is over {limit} bytes once decompressed")
    if not inflater.eof:
        raise BadBody(f"body is not valid {encoding}: the stream is truncated")
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tracedesk"
    timeout = 60  # seconds a client may idle mid-request
    export: ExportHandler
    max_body: int
    token: BearerToken
    _unread = 0  # bytes of a refused body the client may still be sending

    def log_message(self, format: str, *args: object) -> None:
        pass  # the receiver stays quiet per request; the status line shows rates

    def _reply(self, status: int, body: bytes, content_type: str,
               extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: int, message: str, json: bool,
               extra: dict[str, str] | None = None) -> None:
        self._reply(status, rpc_status(code, message, json=json), JSON if json else PROTOBUF,
                    extra)

    def _framing_error(self, message: str) -> BadBody:
        """The body's end is unknown, so the connection cannot carry another request."""
        self.close_connection = True
        return BadBody(message)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise self._framing_error("missing Content-Length (or chunked Transfer-Encoding)")
        digits = length_text.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise self._framing_error(f"bad Content-Length {length_text!r}")
        length = int(digits)
        if length > self.max_body:
            self._unread = length
            raise BodyTooLarge(f"body of {length} bytes is over the {self.max_body} byte limit")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise self._framing_error("malformed chunked body")
            size = int(size_text, 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > self.max_body:
                raise BodyTooLarge(f"body is over the {self.max_body} byte limit")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def do_POST(self) -> None:
        signal = PATHS.get(self.path.split("?", 1)[0])
        if signal is None:
            self.close_connection = True
            self._reply(404, b"not found: OTLP/HTTP paths are /v1/traces, /v1/logs, /v1/metrics",
                        "text/plain")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        json = content_type == JSON
        if content_type != PROTOBUF and not json:
            self.close_connection = True
            self._reply(415, f"unsupported Content-Type {content_type!r}: use {PROTOBUF} or "
                        f"{JSON}".encode(), "text/plain")
            return
        if not self.token.accepts(self.headers.get("Authorization")):
            self.close_connection = True  # the body is left unread
            self._error(401, GRPC_UNAUTHENTICATED, UNAUTHENTICATED, json,
                        {"WWW-Authenticate": "Bearer"})
            return
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            body = decompress(self._read_body(), encoding, self.max_body)
            result = self.export.export(signal, body, json=json)
        except BodyTooLarge as exc:
            self.close_connection = True
            self._error(413, GRPC_RESOURCE_EXHAUSTED, str(exc), json)
            self._linger()
        except (BadBody, PayloadError) as exc:
            self._error(400, GRPC_INVALID_ARGUMENT, str(exc), json)
        except (Backpressure, StoreFailed) as exc:
            self._error(503, GRPC_UNAVAILABLE, f"busy: {exc}", json,
                        {"Retry-After": str(RETRY_AFTER_SECONDS)})
        else:
            self._reply(200, result, JSON if json else PROTOBUF)

    def _linger(self) -> None:
        """Let a client still sending a refused body read the reply. Closing with its body
        unread makes the kernel reset the connection, and the reset can destroy the reply
        before the client reads it; so stop writing, then read and drop what comes, within
        bounds."""
        unread, self._unread = min(self._unread, LINGER_BYTES), 0
        if not unread:
            return
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS)
            while unread > 0:
                chunk = self.rfile.read1(min(unread, 1 << 16))
                if not chunk:
                    break
                unread -= len(chunk)
        except OSError:
            pass  # the client went away or stalled: nothing more to do for it

    def _not_allowed(self) -> None:
        self.close_connection = True
        if self.path.split("?", 1)[0] in PATHS:
            self._reply(405, b"method not allowed: use POST", "text/plain", {"Allow": "POST"})
        else:
            self._reply(404, b"not found", "text/plain")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_http(handler: ExportHandler, host: str, port: int, max_body: int,
               token: BearerToken | None = None) -> tuple[ThreadingHTTPServer, int]:
    """Start the HTTP server in a background thread; return it and its port."""
    request_handler = type("OtlpHttpHandler", (_Handler,), {
        "export": handler, "max_body": max_body, "token": token or BearerToken(None)})
    server_class = _Server
    if ":" in host:
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), request_handler)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(host, port, "--http-port", "OTLP/HTTP") from None
        raise
    thread = threading.Thread(target=server.serve_forever, name="otlp-http", daemon=True)
    thread.start()
    return server, server.server_address[1]

