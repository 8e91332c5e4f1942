"""The optional bearer token (`--token`) that guards both OTLP transports."""

from __future__ import annotations

import hmac

UNAUTHENTICATED = "missing or wrong bearer token: send 'Authorization: Bearer <token>' " \
                  "(the receiver was started with --token)"


class BearerToken:
    """Checks an ``Authorization`` header value; with no token every request passes."""

    def __init__(self, token: str | None) -> None:
        self._expected = token.encode() if token else None

    @property
    def required(self) -> bool:
        return self._expected is not None

    def accepts(self, header: str | None) -> bool:
        if self._expected is None:
            return True
        scheme, _, value = (header or "").strip().partition(" ")
        # Constant time: the comparison must not tell a guesser how much was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self._expected)
