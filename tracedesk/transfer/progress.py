"""A one-line progress bar for a terminal: bytes read of the total, redrawn with ``\\r``."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.1
BAR_CELLS = 24


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


class Progress:
    """Draws only when ``stream`` is a terminal; ``finish`` clears the line."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._drawn_at = 0.0
        self._width = 0

    def update(self, done: int, label: str) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        fraction = min(done / self.total, 1.0)
        filled = int(fraction * BAR_CELLS)
        bar = "#" * filled + "-" * (BAR_CELLS - filled)
        tail = f" [{bar}] {fraction:4.0%} {format_bytes(done)} / {format_bytes(self.total)}"
        room = max(shutil.get_terminal_size().columns - len(tail) - 1, 8)
        name = label if len(label) <= room else "…" + label[-(room - 1):]
        line = name + tail
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
