"""Text charts: block sparklines for list rows, a braille line chart, bucket bars.

A braille cell holds 2×4 dots, so a chart of 60×6 cells draws 120 points at 24 heights.
One colour per cell: where lines cross, the one drawn last shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tracedesk.analysis.metric_series import Bar, Sample, resample

BLOCKS = "▁▂▃▄▅▆▇█"
# Dot bits of a braille cell by (column, row), added to U+2800.
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
DIM = Style(dim=True)
AXIS = Style(color="#6c6c6c")


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled between the values' min and max (a flat line
    sits at the bottom); a space where there is no value."""
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    top = len(BLOCKS) - 1
    if high <= low:
        return "".join(BLOCKS[0] if v is not None else " " for v in values)
    return "".join(" " if v is None else BLOCKS[round((v - low) / (high - low) * top)]
                   for v in values)


def _clock(unix_nano: int) -> str:
    return datetime.fromtimestamp(unix_nano / 1e9).strftime("%H:%M:%S")


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    samples: list[Sample]


class Chart(Widget):
    """A line chart over ``[start, end)``: value labels on the left (top is the max, bottom
    the min), the time range below."""

    DEFAULT_CSS = "Chart { height: 7; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: list[Line] = []
        self.start_ns = 0
        self.end_ns = 1
        self.label: Callable[[float], str] = lambda v: f"{v:.3g}"

    def plot(self, lines: list[Line], start_ns: int, end_ns: int,
             label: Callable[[float], str]) -> None:
        self.lines, self.start_ns, self.end_ns, self.label = lines, start_ns, end_ns, label
        self.refresh()

    def render(self) -> Text:
        return chart_text(self.lines, self.start_ns, self.end_ns, self.label,
                          self.size.width, self.size.height)


def chart_text(lines: list[Line], start_ns: int, end_ns: int, label: Callable[[float], str],
               width: int, height: int) -> Text:
    rows = max(1, height - 1)
    columns_px: dict[str, list[float | None]] = {}
    all_values = [v for line in lines for _, v in line.samples
                  if math.isfinite(v) and start_ns <= _ < end_ns]
    if not all_values:
        return Text("no points in this window", DIM)
    low, high = min(all_values), max(all_values)
    if low >= 0 and low <= (high - low) * 0.5:
        low = 0.0  # a range close to zero reads better from zero
    if high <= low:
        high = low + (abs(low) or 1.0)
    labels = (label(high), label(low))
    gutter = max(len(s) for s in labels) + 1
    cols = max(1, width - gutter)
    px, py = cols * 2, rows * 4
    for line in lines:
        columns_px[line.label] = resample(line.samples, start_ns, end_ns, px)
    cells = [[0] * cols for _ in range(rows)]
    colours: list[list[str | None]] = [[None] * cols for _ in range(rows)]
    for line in lines:
        previous: tuple[int, int] | None = None
        for x, value in enumerate(columns_px[line.label]):
            if value is None or not math.isfinite(value):
                continue  # a gap between points: bridged by the next point's line
            y = py - 1 - round((value - low) / (high - low) * (py - 1))
            y = min(py - 1, max(0, y))
            for dot_x, low_y, high_y in _segment(previous, (x, y)):
                for dot_y in range(low_y, high_y + 1):
                    row, column = dot_y // 4, dot_x // 2
                    cells[row][column] |= _DOTS[dot_x % 2][dot_y % 4]
                    colours[row][column] = line.colour
            previous = (x, y)
    text = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        tag = labels[0] if r == 0 else labels[1] if r == rows - 1 else ""
        text.append(tag.rjust(gutter - 1) + "│", AXIS)
        for c in range(cols):
            bits = cells[r][c]
            colour = colours[r][c]
            text.append(chr(0x2800 + bits) if bits else " ",
                        Style(color=colour) if colour else None)
        text.append("\n")
    left, right = _clock(start_ns), _clock(end_ns)
    axis = " " * gutter + left + right.rjust(max(0, cols - len(left)))
    text.append(axis[:width], AXIS)
    return text


def _segment(start: tuple[int, int] | None, end: tuple[int, int]
             ) -> list[tuple[int, int, int]]:
    """The dots of a line from ``start`` (exclusive) to ``end``: for each x, the span of
    y it covers, so steep lines stay connected."""
    x1, y1 = end
    if start is None:
        return [(x1, y1, y1)]
    x0, y0 = start
    out = []
    previous_y = y0
    for x in range(x0 + 1, x1 + 1):
        y = round(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        out.append((x, min(y, previous_y), max(y, previous_y)))
        previous_y = y
    return out


def bars_text(rows: list[Bar], label: Callable[[float], str], width: int,
              colour: str = "#5f87af") -> Text:
    """A bucket distribution as horizontal bars: ``≤ 250ms ██████ 1,234``."""
    text = Text(no_wrap=True, overflow="crop")
    if not rows:
        text.append("no observations in this window", DIM)
        return text
    names = [("≤ " + label(r.upper)) if r.upper is not None
             else ("> " + label(r.lower)) if r.lower is not None else "all" for r in rows]
    counts = [f"{r.count:,}" for r in rows]
    name_width = max(len(n) for n in names)
    count_width = max(len(c) for c in counts)
    room = max(1, width - name_width - count_width - 3)
    most = max(r.count for r in rows) or 1
    for i, (name, count, row) in enumerate(zip(names, counts, rows, strict=True)):
        eighths = round(row.count / most * room * 8)
        bar = "█" * (eighths // 8) + (" ▏▎▍▌▋▊▉"[eighths % 8] if eighths % 8 else "")
        text.append(name.rjust(name_width) + " ", DIM)
        text.append(bar.ljust(room), Style(color=colour))
        text.append(" " + count.rjust(count_width))
        if i < len(rows) - 1:
            text.append("\n")
    return text
