"""How to talk to an upstream OTLP endpoint: its URL, and one sender per transport.

A sender sends one Export request and says how it went: it returns (the upstream took it),
raises ``Retry`` (unreachable or busy: try again later) or ``Refused`` (it will never take
this request). Retry policy, queueing and counting are the forwarder's (``forward.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import ssl
import time
import zlib
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import grpc
import orjson
from google.protobuf.message import DecodeError

from tracedesk import __version__
from tracedesk.otlp import Signal
from tracedesk.otlp.json_input import JsonPayloadError, parse_json
from tracedesk.receiver.ports import host_port

# gRPC's own reconnect attempts must come no rarer than the forwarder's retries, or a
# recovered upstream would wait out gRPC's backoff (up to two minutes).
RECONNECT_MIN_MS = 500
RECONNECT_MAX_MS = 30_000
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
# The OTLP spec's retryable codes; RESOURCE_EXHAUSTED only when the server sends RetryInfo
# (without it, it means "too large", which no retry cures).
RETRYABLE_GRPC = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})
GRPC_METHODS = {
    Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    Signal.LOGS: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
_SCHEMES = {"http": ("http", False, 80), "https": ("http", True, 443),
            "grpc": ("grpc", False, 4317), "grpcs": ("grpc", True, 443)}
_SIGNAL_PATHS = ("/v1/traces", "/v1/logs", "/v1/metrics")
_HEADER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class Upstream:
    """Where to forward: OTLP/HTTP (``http(s)://host:port/prefix``) or gRPC (``grpc(s)://``)."""

    transport: Literal["http", "grpc"]
    secure: bool
    host: str
    port: int
    path: str = ""  # HTTP only: the prefix before /v1/<signal>, without a trailing slash

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """Raises ValueError with a one-line message fit for the user."""
        usage = "use http://HOST:PORT, https://HOST[/PREFIX] or grpc://HOST:PORT (grpcs:// for TLS)"
        parts = urlsplit(text.strip())
        if parts.scheme.lower() not in _SCHEMES or not parts.netloc:
            raise ValueError(f"{text!r} is not an upstream URL: {usage}")
        transport, secure, default_port = _SCHEMES[parts.scheme.lower()]
        if not parts.hostname:
            raise ValueError(f"{text!r} names no host: {usage}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"{text!r}: put credentials in --forward-headers, not in the URL")
        if parts.query or parts.fragment:
            raise ValueError(f"{text!r}: an upstream URL takes no ?query or #fragment")
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError(f"{text!r} has a bad port: {usage}") from None
        path = parts.path.rstrip("/")
        if transport == "grpc" and path:
            raise ValueError(f"{text!r}: a gRPC URL has no path (grpc://HOST:PORT)")
        # A signal's own endpoint (copied from an SDK's setting) means the prefix before it:
        # each signal then goes to its own path next to it.
        for suffix in _SIGNAL_PATHS:
            if path.endswith(suffix):
                path = path.removesuffix(suffix)
        return cls(transport, secure, parts.hostname, port, path)

    def __str__(self) -> str:
        scheme = ("https" if self.secure else "http") if self.transport == "http" else \
                 ("grpcs" if self.secure else "grpc")
        return f"{scheme}://{host_port(self.host, self.port)}{self.path}"

    def is_receiver(self, host: str, ports: tuple[int, ...]) -> bool:
        """Whether this is the receiver listening on ``host`` and ``ports``: a loop."""
        if self.port not in ports:
            return False
        if self.host in ("localhost", host):
            return True
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return address.is_loopback or (host in ("0.0.0.0", "::") and address.is_unspecified)


def parse_headers(text: str | None) -> list[tuple[str, str]]:
    """``key=value,key2=value2`` (as in OTEL_EXPORTER_OTLP_HEADERS, values %-encoded)."""
    headers: list[tuple[str, str]] = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = unquote(key).strip().lower(), unquote(value).strip()
        if not sep or not key or not set(key) <= _HEADER_NAME_CHARS:
            raise ValueError(f"{item.strip()[:40]!r} is not a header: use name=value,name2=value2")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"the value of header {key!r} holds a line break")
        headers.append((key, value))
    return headers


@dataclass
class Export:
    """One accepted Export request, as received (``json``: its body is OTLP/JSON)."""

    signal: Signal
    body: bytes
    json: bool
    items: int


class Retry(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay  # what the upstream asked for (Retry-After, RetryInfo)


class Refused(Exception):
    pass


class Sender(Protocol):
    def send(self, export: Export, timeout: float) -> int:
        """Send one request; return how many items the upstream rejected (partial success).

        Raises Retry or Refused."""

    def close(self) -> None: ...


def open_sender(upstream: Upstream, headers: list[tuple[str, str]]) -> Sender:
    return (HttpSender if upstream.transport == "http" else GrpcSender)(upstream, headers)


class HttpSender:
    """OTLP/HTTP POSTs on one kept-alive connection, gzip-compressed."""

    def __init__(self, upstream: Upstream, headers: list[tuple[str, str]]) -> None:
        self._upstream = upstream
        self._headers = {"User-Agent": f"tracedesk/{__version__}", **dict(headers)}
        self._conn: http.client.HTTPConnection | None = None
        self._context = ssl.create_default_context() if upstream.secure else None

    def send(self, item: Export, timeout: float) -> int:
        """Send one request; return the items the upstream rejected (partial success)."""
        content_type = "application/json" if item.json else "application/x-protobuf"
        headers = {**self._headers, "Content-Type": content_type, "Content-Encoding": "gzip"}
        payload = _gzip(item.body)
        path = f"{self._upstream.path}/v1/{item.signal.name.lower()}"
        # A kept-alive connection the server has closed meanwhile fails at once: one more
        # try on a new connection before calling the upstream unreachable.
        for attempt in range(2):
            reused = self._conn is not None
            try:
                conn = self._connection(timeout)
                conn.request("POST", path, payload, headers)
                answer = conn.getresponse()
                body = answer.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # Not after a timeout: the server may be working on it, and a second copy
                # would only add to its load.
                if not reused or attempt or isinstance(exc, TimeoutError):
                    raise Retry(_short(str(exc) or type(exc).__name__)) from None
        if answer.will_close:
            self.close()
        status = answer.status
        if 200 <= status < 300:
            return _rejected(item.signal, body, json=item.json)
        message = f"HTTP {status}{_http_message(body, answer.getheader('Content-Type', ''))}"
        if status in RETRYABLE_HTTP:
            raise Retry(message, _retry_after(answer.getheader("Retry-After")))
        if 300 <= status < 400:
            message += f", redirected to {answer.getheader('Location')}: forward there instead"
        raise Refused(message)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            up = self._upstream
            if self._context is not None:
                self._conn = http.client.HTTPSConnection(up.host, up.port, timeout=timeout,
                                                         context=self._context)
            else:
                self._conn = http.client.HTTPConnection(up.host, up.port, timeout=timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class GrpcSender:
    """OTLP/gRPC with the bytes as they are: a unary call without (de)serializers."""

    def __init__(self, upstream: Upstream, headers: list[tuple[str, str]]) -> None:
        target = host_port(upstream.host, upstream.port)
        options = [("grpc.initial_reconnect_backoff_ms", RECONNECT_MIN_MS),
                   ("grpc.min_reconnect_backoff_ms", RECONNECT_MIN_MS),
                   ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
                   ("grpc.primary_user_agent", f"tracedesk/{__version__}")]
        if upstream.secure:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(),
                                                options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._calls = {signal: self._channel.unary_unary(method)
                       for signal, method in GRPC_METHODS.items()}
        self._metadata = tuple(headers)

    def send(self, item: Export, timeout: float) -> int:
        body = _to_protobuf(item.signal, item.body) if item.json else item.body
        try:
            answer = self._calls[item.signal](body, timeout=timeout, metadata=self._metadata,
                                              compression=grpc.Compression.Gzip)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
            message = _short(f"{code.name}: {exc.details()}")  # type: ignore[attr-defined]
            delay = _retry_info(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
            if code in RETRYABLE_GRPC or (code is grpc.StatusCode.RESOURCE_EXHAUSTED
                                          and delay is not None):
                raise Retry(message, delay) from None
            raise Refused(message) from None
        return _rejected(item.signal, answer, json=False)

    def close(self) -> None:
        self._channel.close()


def _to_protobuf(signal: Signal, body: bytes) -> bytes:
    """An OTLP/JSON body (hex ids) as the protobuf request a gRPC upstream needs."""
    request = signal.value.request()
    try:
        parse_json(body, request)
    except JsonPayloadError as exc:  # it was decoded once already, so this is unexpected
        raise Refused(f"cannot convert OTLP/JSON to protobuf: {exc}") from None
    return request.SerializeToString()


def _rejected(signal: Signal, body: bytes, *, json: bool) -> int:
    """How many items an Export response's partial_success says were rejected."""
    if not body:
        return 0
    response = signal.value.response()
    try:
        if json:
            parse_json(body, response)
        else:
            response.ParseFromString(body)
    except (DecodeError, JsonPayloadError):
        return 0  # an odd response still means success
    return int(getattr(response.partial_success, signal.value.partial))


def _gzip(body: bytes) -> bytes:
    # Level 1: most of the saving for little of the cost, on the receiver's own CPU.
    compressor = zlib.compressobj(1, wbits=31)
    return compressor.compress(body) + compressor.flush()


def _short(text: str) -> str:
    """A message fit for one log line: gRPC's and servers' can run long."""
    text = " ".join(text.split())
    return text if len(text) < 120 else text[:117] + "..."


def _http_message(body: bytes, content_type: str) -> str:
    """The message of an error response (a google.rpc.Status, or text), for the log."""
    text = ""
    if "json" in content_type:
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            text = str(orjson.loads(body).get("message", ""))
    elif "protobuf" in content_type:
        text = next((v.decode(errors="replace") for n, v in _fields(body) if n == 2
                     and isinstance(v, bytes)), "")
    else:
        text = body[:200].decode(errors="replace").strip()
    return f": {_short(text)}" if text.strip() else ""


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _retry_info(metadata: tuple) -> float | None:
    """The delay of a google.rpc.RetryInfo in a gRPC error's status details, if any."""
    details = next((v for k, v in metadata if k == "grpc-status-details-bin"), None)
    if not isinstance(details, bytes):
        return None
    for number, any_ in _fields(details):
        if number != 3 or not isinstance(any_, bytes):
            continue
        parts = dict(_fields(any_))
        if parts.get(1) != b"type.googleapis.com/google.rpc.RetryInfo":
            continue
        duration = dict(_fields(dict(_fields(parts.get(2, b""))).get(1, b"")))
        seconds, nanos = duration.get(1, 0), duration.get(2, 0)
        if isinstance(seconds, int) and isinstance(nanos, int):
            return seconds + nanos / 1e9
    return None


def _fields(data: object) -> list[tuple[int, int | bytes]]:
    """A protobuf message's top-level fields (varints and length-delimited only): just
    enough to read google.rpc.Status without depending on googleapis-common-protos."""
    if not isinstance(data, bytes):
        return []
    out: list[tuple[int, int | bytes]] = []
    i = 0
    try:
        while i < len(data):
            key, i = _varint(data, i)
            if key & 7 == 0:
                value, i = _varint(data, i)
                out.append((key >> 3, value))
            elif key & 7 == 2:
                size, i = _varint(data, i)
                out.append((key >> 3, data[i:i + size]))
                i += size
            else:
                break  # a field kind these messages do not use
    except IndexError:
        pass
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i
