"""Screens whose reload is costly (a graph, charts): recomputed at most every few seconds."""

from __future__ import annotations

import time

from textual.screen import Screen


class ThrottledScreen(Screen):
    """``reload`` (called on every commit) runs ``recompute`` at most once per
    ``MIN_RELOAD_SECONDS``; a reload in between is done once, when the interval is over."""

    MIN_RELOAD_SECONDS = 2.0

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._loaded_at = float("-inf")
        self._pending = False

    def recompute(self) -> None:
        """Start reading and computing (in a worker)."""
        raise NotImplementedError

    def reload_seconds(self) -> float:
        """The least time between two recomputes."""
        return self.MIN_RELOAD_SECONDS

    def reload(self, *, force: bool = False) -> None:
        wait = self._loaded_at + self.reload_seconds() - time.monotonic()
        if force or wait <= 0:
            self._loaded_at = time.monotonic()
            self.recompute()
        elif not self._pending:
            self._pending = True
            self.set_timer(wait, self._deferred)

    def _deferred(self) -> None:
        self._pending = False
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()
