"""The status line: where the receiver listens, what is stored, how fast it arrives."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tracedesk.ui.text import plural


def status_text(receiver: str, receiver_ok: bool, traces: int, spans: int,
                spans_per_second: float | None) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("● " if receiver_ok else "○ ", "green" if receiver_ok else "yellow")
    text.append(receiver)
    text.append("  │  ", "dim")
    text.append(f"{plural(traces, 'trace')} · {plural(spans, 'span')}")
    if spans_per_second is not None:
        text.append("  │  ", "dim")
        text.append(f"{spans_per_second:,.0f} spans/s")
    return text


class StatusBar(Static):
    """Every screen has one; the app updates them all and a new one starts from the last."""

    def on_mount(self) -> None:
        last = getattr(self.app, "status", None)
        if isinstance(last, Text):
            self.update(last)
