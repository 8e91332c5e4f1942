"""Addresses and the one error every listener can raise: its port is taken."""

from __future__ import annotations

import socket


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PortInUse(OSError):
    def __init__(self, host: str, port: int, flag: str, what: str) -> None:
        super().__init__(f"{host_port(host, port)} is in use")
        self.host, self.port, self.flag, self.what = host, port, flag, what

    def advice(self) -> str:
        env = "TRACEDESK_" + self.flag.removeprefix("--").replace("-", "_").upper()
        return (f"tracedesk: port {self.port} ({self.what}) on {self.host} is already in use; "
                f"choose another with {self.flag} N (or {env}), or 0 for any free port")


def ensure_free(host: str, port: int, flag: str, what: str) -> None:
    """Raise PortInUse if ``port`` cannot be bound: gRPC would only log a cryptic line."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(host, port, flag, what) from None
