"""Telemetry text is untrusted: make it safe and fixed-width for the screen.

Span names, attribute values and log bodies can hold terminal escape sequences and Rich or
Textual markup. Nothing here ever parses markup: text becomes Segments/Text as-is, with
control characters replaced by visible placeholders.
"""

from __future__ import annotations

from datetime import datetime

from rich.cells import cell_len, set_cell_size

from tracedesk.safe_text import clean

__all__ = ["clean", "fit", "format_clock", "plural", "reset_service_colours",
           "service_colour"]


SERVICE_COLOURS = (
    "#5fafff", "#87d787", "#ffaf5f", "#d787ff", "#5fd7d7", "#ffd75f", "#ff87af", "#afaf87",
    "#87afff", "#d7af87", "#af87d7", "#87d7af", "#d7d787", "#ff8787",
)


def fit(text: str, width: int) -> str:
    """Exactly ``width`` cells: cleaned, cut with an ellipsis, or padded."""
    if width <= 0:
        return ""
    text = clean(text)
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def plural(n: int, noun: str) -> str:
    """``n`` and the noun, singular for one: ``1 span``, ``1,204 spans``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


_assigned_colours: dict[str, str] = {}


def service_colour(service: str) -> str:
    """A colour per service, the same on every screen: palette colours are handed out in
    the order services are first shown (a hash would give a few services the same one)."""
    colour = _assigned_colours.get(service)
    if colour is None:
        colour = SERVICE_COLOURS[len(_assigned_colours) % len(SERVICE_COLOURS)]
        _assigned_colours[service] = colour
    return colour


def reset_service_colours() -> None:
    """Hand out colours from the start again (a new app, or a repeatable screenshot)."""
    _assigned_colours.clear()


def format_clock(unix_nano: int) -> str:
    """Local wall-clock time with milliseconds, e.g. ``14:03:27.120``."""
    when = datetime.fromtimestamp(unix_nano / 1e9)
    return when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
