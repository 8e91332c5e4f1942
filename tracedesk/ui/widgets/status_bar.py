"""The status line: where the receiver listens, what is stored, how fast it arrives."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    def show(self, receiver: str, receiver_ok: bool, traces: int, spans: int,
             spans_per_second: float | None) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("● " if receiver_ok else "○ ", "green" if receiver_ok else "yellow")
        text.append(receiver)
        text.append("  │  ", "dim")
        text.append(f"{traces:,} traces · {spans:,} spans")
        if spans_per_second is not None:
            text.append("  │  ", "dim")
            text.append(f"{spans_per_second:,.0f} spans/s")
        self.update(text)
