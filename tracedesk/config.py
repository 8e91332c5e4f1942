"""Settings: one typed object, read from flags, then environment, then a config file.

Precedence is flags > environment (``TRACEDESK_*``) > ``config.toml`` in the user config
directory (or the file named by ``TRACEDESK_CONFIG``) > defaults.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "tracedesk"


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "tracedesk.db"


def default_config_path() -> Path:
    override = os.environ.get("TRACEDESK_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
}


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``90``, ``30s``, ``15m``, ``24h``, ``7d``, ``2w``; ``0`` means no limit."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    return float(m.group(1)) * _DURATION_UNITS.get(m.group(2) or "s", 1)


def parse_size(text: str | int) -> int:
    """Bytes from ``1000000``, ``500MB``, ``2GiB``; ``0`` means no limit."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 500MB, 2GB)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def parse_count(text: str | int) -> int:
    """A count, allowing ``2000000``, ``2_000_000``, ``2M`` or ``500k``."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)\s*", text.lower().replace("_", ""))
    if not m:
        raise ValueError(f"not a count: {text!r} (use e.g. 500000 or 2M)")
    scale = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}[m.group(2)]
    return int(float(m.group(1)) * scale)


def _port(text: str | int) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"not a port: {text!r} (0-65535; 0 picks a free port)")
    return port


def _forward_url(text: str) -> str | None:
    """An upstream URL, normalized; empty means none (to override the config file)."""
    if not text.strip():
        return None
    from tracedesk.receiver.upstream import Upstream

    return str(Upstream.parse(text))


def _forward_headers(text: str) -> str | None:
    from tracedesk.receiver.upstream import parse_headers

    return text.strip() if parse_headers(text) else None


DEFAULT_GRPC_PORT = 4317
# Where `tracedesk demo` sends unless told otherwise: a receiver on the default port.
DEMO_ENDPOINT = f"localhost:{DEFAULT_GRPC_PORT}"


@dataclass
class Settings:
    """Everything that tunes tracedesk. Field metadata names the env var and the parser."""

    db_path: Path = field(
        default_factory=default_db_path,
        metadata={"env": "TRACEDESK_DB", "parse": Path,
                  "help": "SQLite database file"},
    )
    host: str = field(
        default="127.0.0.1",
        metadata={"env": "TRACEDESK_HOST", "parse": str,
                  "help": "address the receiver binds (0.0.0.0 exposes it to the network)"},
    )
    grpc_port: int = field(
        default=DEFAULT_GRPC_PORT,
        metadata={"env": "TRACEDESK_GRPC_PORT", "parse": _port,
                  "help": "OTLP/gRPC port (0 = any free port)"},
    )
    http_port: int = field(
        default=4318,
        metadata={"env": "TRACEDESK_HTTP_PORT", "parse": _port,
                  "help": "OTLP/HTTP port (0 = any free port)"},
    )
    max_age: float = field(
        default=3 * 86400.0,
        metadata={"env": "TRACEDESK_MAX_AGE", "parse": parse_duration,
                  "help": "drop telemetry older than this (e.g. 24h, 7d; 0 = keep)"},
    )
    max_spans: int = field(
        default=5_000_000,
        metadata={"env": "TRACEDESK_MAX_SPANS", "parse": parse_count,
                  "help": "keep at most this many spans (oldest traces go first; 0 = no limit)"},
    )
    max_db_size: int = field(
        default=4 * 1024**3,
        metadata={"env": "TRACEDESK_MAX_DB_SIZE", "parse": parse_size,
                  "help": "keep the database under this size (e.g. 500MB, 4GiB; 0 = no limit)"},
    )
    max_body_size: int = field(
        default=32 * 1024**2,
        metadata={"env": "TRACEDESK_MAX_BODY_SIZE", "parse": parse_size,
                  "help": "largest accepted request, measured after decompression"},
    )
    token: str | None = field(
        default=None,
        metadata={"env": "TRACEDESK_TOKEN", "parse": str,
                  "help": "require 'Authorization: Bearer TOKEN' on every OTLP request"},
    )
    max_pending: int = field(
        default=100_000,
        metadata={"env": "TRACEDESK_MAX_PENDING", "parse": parse_count,
                  "help": "records accepted but not yet committed before the receiver "
                          "answers 503/UNAVAILABLE"},
    )
    forward: str | None = field(
        default=None,
        metadata={"env": "TRACEDESK_FORWARD", "parse": _forward_url,
                  "help": "also send everything received to this OTLP endpoint: "
                          "http(s)://HOST:PORT[/PREFIX] (OTLP/HTTP) or grpc(s)://HOST:PORT"},
    )
    forward_headers: str | None = field(
        default=None,
        metadata={"env": "TRACEDESK_FORWARD_HEADERS", "parse": _forward_headers,
                  "help": "headers for the --forward upstream: 'name=value,name2=value2' "
                          "(as OTEL_EXPORTER_OTLP_HEADERS)"},
    )
    forward_queue_size: int = field(
        default=64 * 1024**2,
        metadata={"env": "TRACEDESK_FORWARD_QUEUE_SIZE", "parse": parse_size,
                  "help": "requests waiting for the --forward upstream are kept up to this "
                          "size; the oldest are dropped beyond it"},
    )

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None,
             environ: dict[str, str] | None = None,
             config_path: Path | None = None) -> Settings:
        """Resolve settings: ``overrides`` (flags, None = unset) > environment > file."""
        environ = os.environ if environ is None else environ
        config_path = config_path or default_config_path()
        from_file = _read_config_file(config_path)
        values: dict[str, Any] = {}
        for f in fields(cls):
            parse = f.metadata["parse"]
            raw: Any = None
            source = ""
            if overrides and overrides.get(f.name) is not None:
                raw, source = overrides[f.name], "--" + f.name.replace("_", "-")
            elif f.metadata["env"] in environ:
                raw, source = environ[f.metadata["env"]], f.metadata["env"]
            elif f.name in from_file:
                raw, source = from_file[f.name], f"{config_path} ({f.name})"
            if raw is None:
                continue
            try:
                values[f.name] = parse(raw)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{source}: {exc}") from None
        return cls(**values)


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names where it came from."""


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"{path}: unknown settings {', '.join(unknown)}")
    return data
