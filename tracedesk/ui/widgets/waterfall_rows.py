"""Drawing one waterfall row: the name cell (guides, fold marker, service, name, marks) and
the time bar (with event marks and the critical-path highlight), as Rich segments.

Pure functions of the row and what the widget shows around it, so the widget keeps the
state and this module keeps the look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tracedesk.analysis.time_axis import bar, event_positions, format_duration
from tracedesk.analysis.waterfall import WaterfallRow, tree_prefix
from tracedesk.model import StatusCode
from tracedesk.store.log_queries import severity_floor
from tracedesk.ui.text import clean, fit, service_colour

DURATION_WIDTH = 9
EXPANDED, COLLAPSED, LEAF = "▾ ", "▸ ", "  "
ORPHAN = "⤒ "  # the span's parent has not arrived
EVENT_MARK = "◆"
LOG_MARK = "≡"  # the span wrote log records
QUERY_MARK = "●"  # the span matched the query the trace list was filtered by
ERROR_SEVERITY = severity_floor("ERROR")

DIM = Style(dim=True)
ERROR = Style(color="#ff5f5f", bold=True)
MATCH = Style(bgcolor="#5f5f00")
CRITICAL = Style(color="#ffaf00", bold=True)
OFF_PATH = Style(color="#4e4e4e")
EVENT = Style(color="#ffffff", bold=True)
EXCEPTION_EVENT = Style(color="#ff5f5f", bold=True)
LOG_ERROR = Style(color="#ff5f5f", bold=True)
QUERY_MATCH = Style(color="#d787ff", bold=True)


@dataclass(frozen=True)
class RowLook:
    """What a row's line depends on besides the row: the view and the widget's marks."""

    name_width: int
    bar_width: int
    view_start: int
    view_end: int
    matches: frozenset[str]  # spans found by name
    query_matches: frozenset[str]  # spans that matched the trace list's query
    log_levels: dict[str, int]  # span id -> highest severity of its logs
    critical: dict[str, list[tuple[int, int]]] | None  # None: no critical-path highlight


def row_segments(row: WaterfallRow, look: RowLook) -> list[Segment]:
    """The whole line: name cell, duration, bar. Every segment costs again in each later
    step of a frame, so neighbours of one style are joined and nothing empty is sent."""
    duration = format_duration(row.span.duration_ns).rjust(DURATION_WIDTH - 1) + " "
    cells = name_cell(row, look)
    if cells[-1].style is None:  # the gap before the duration: one segment with it
        cells[-1] = Segment(cells[-1].text + duration)
    else:
        cells.append(Segment(duration))
    return [*cells, *bar_cells(row, look)]


def name_cell(row: WaterfallRow, look: RowLook) -> list[Segment]:
    """The name column, its marks and the gap before the duration."""
    level = look.log_levels.get(row.span_id)
    marks = 2 if look.query_matches else 1
    segments = name_segments(row, look.name_width - marks, row.span_id in look.matches)
    if look.query_matches:
        segments.append(Segment(QUERY_MARK, QUERY_MATCH) if row.span_id in look.query_matches
                        else Segment(" "))
    if level is None:
        segments.append(Segment("  "))
    else:
        segments.append(Segment(LOG_MARK, LOG_ERROR if level >= ERROR_SEVERITY else DIM))
        segments.append(Segment(" "))
    return segments


def name_segments(row: WaterfallRow, width: int, found: bool) -> list[Segment]:
    """Exactly ``width`` cells: guides, fold marker, service and name."""
    span = row.span
    prefix = tree_prefix(row)
    if len(prefix) > width // 2:  # very deep trees: keep the innermost levels
        prefix = "…" + prefix[len(prefix) - width // 2 + 1:]
    marker = COLLAPSED if row.collapsed else EXPANDED if row.has_children else LEAF
    lead = prefix + marker + (ORPHAN if row.orphan else "")  # one cell a character
    hidden = f" +{row.child_count}" if row.collapsed else ""
    room = width - len(lead) - len(hidden)
    if room < 0:  # too narrow for the guides: cut them
        return list(Strip([Segment(lead + hidden, DIM)]).adjust_cell_length(width))
    name_style = ERROR if span.status_code == StatusCode.ERROR else None
    if found:
        name_style = (name_style or Style()) + MATCH
    service = clean(span.service_name)
    name = clean(span.name)
    service_room = min(len(service) + 1, max(0, room - min(len(name), room // 2)))
    segments = [
        Segment(lead, DIM),
        Segment(fit(service, service_room), Style(color=service_colour(span.service_name))),
        Segment(fit(name, room - service_room), name_style),
    ]
    if hidden:
        segments.append(Segment(hidden, DIM))
    return segments


def bar_cells(row: WaterfallRow, look: RowLook) -> list[Segment]:
    """The span's time bar across the view, with its events marked on it."""
    width, view_start, view_end = look.bar_width, look.view_start, look.view_end
    if width <= 0:
        return []
    span = row.span
    error = span.status_code == StatusCode.ERROR
    base = Style(color="#ff5f5f" if error else service_colour(span.service_name))
    cells = list(bar(span.start_time_unix_nano, span.end_time_unix_nano, view_start,
                     view_end, width))
    styles: list[Style | None] = [base] * width
    if look.critical is not None:
        hot = critical_cells(look.critical.get(span.span_id, ()), view_start, view_end, width)
        styles = [CRITICAL if i in hot else OFF_PATH for i in range(width)]
    thrown = [e for e in span.events if e.get("name") == "exception"]
    exceptions = set(event_positions(thrown, view_start, view_end, width))
    for pos in event_positions(span.events, view_start, view_end, width):
        cells[pos] = EVENT_MARK
        styles[pos] = EXCEPTION_EVENT if pos in exceptions else EVENT
    # One segment per run of equal style, not per cell: every later step (styles,
    # filters, terminal output) costs per segment, and a bar is mostly one run.
    return [Segment("".join(char for char, _ in run), style)
            for style, run in groupby(zip(cells, styles, strict=True), key=itemgetter(1))]


def critical_cells(segments: Sequence[tuple[int, int]], view_start: int, view_end: int,
                   width: int) -> set[int]:
    """The bar cells covered by a span's stretches on the critical path."""
    span_ns = max(view_end - view_start, 1)
    cells: set[int] = set()
    for start, end in segments:
        lo = max(0, (start - view_start) * width // span_ns)
        hi = min(width, -((view_start - end) * width // span_ns))
        cells.update(range(lo, max(hi, lo + 1)))
    return cells
