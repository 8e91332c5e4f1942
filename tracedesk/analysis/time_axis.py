"""The time axis of a waterfall, as text: bars, event marks, the ruler and durations.

* Time bars use eighth blocks for sub-cell precision; see ``bar``.
* Durations read like ``850ns``, ``12.3µs``, ``4.56ms``, ``1.23s``, ``2m03s``, ``1h02m``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# --------------------------------------------------------------------------- bars

FULL = "█"
THIN_LEFT = "▏"
THIN_RIGHT = "▕"
BEFORE_VIEW = "◂"
AFTER_VIEW = "▸"

# Glyphs available for one cell, as the eighths [from, to) of the cell each one fills. Left
# edges have every eighth (U+258F..U+2588); right-aligned fills only exist as one eighth and a
# half in widely available fonts, so a bar's left edge is rounded to the nearest of those.
_GLYPHS: tuple[tuple[str, int, int], ...] = (
    *((chr(0x2590 - k), 0, k) for k in range(1, 9)),
    (THIN_RIGHT, 7, 8),
    ("▐", 4, 8),
)


def _best_glyph(lo: int, hi: int) -> str:
    """The glyph whose filled part differs least from eighths [lo, hi) of a cell; ties go to
    the one whose middle is nearest, then to the smaller one (bars never look longer)."""
    def error(glyph: tuple[str, int, int]) -> tuple[int, int, int]:
        _, g_lo, g_hi = glyph
        overlap = max(0, min(hi, g_hi) - max(lo, g_lo))
        return ((hi - lo) + (g_hi - g_lo) - 2 * overlap, abs((g_lo + g_hi) - (lo + hi)),
                g_hi - g_lo)

    return min(_GLYPHS, key=error)[0]


_CELL_GLYPH = {(lo, hi): _best_glyph(lo, hi) for lo in range(8) for hi in range(lo + 1, 9)}


def _to_eighths(t: int, view_start: int, span_ns: int, width: int) -> int:
    """Time ``t`` (inside the view) as a position in eighths of a cell, rounded to nearest."""
    scaled = (t - view_start) * width * 8
    return (2 * scaled + span_ns) // (2 * span_ns)


def bar(start_ns: int, end_ns: int, view_start_ns: int, view_end_ns: int, width: int,
        *, edge_markers: bool = True) -> str:
    """A ``width``-cell time bar for ``[start_ns, end_ns]`` within the view.

    Positions are rounded to eighths of a cell. The bar's right edge uses the left-aligned
    eighth blocks ``▏▎▍▌▋▊▉``; its left edge can only be approximated with common glyphs, so
    it is the nearest of ``▕`` (thin), ``▐`` (half) or ``█``. A zero-length or very short span
    still shows as a thin mark, ``▏`` or ``▕`` whichever side of its cell it is on. The span is
    clipped to the view; one entirely outside is blank except, with ``edge_markers``, ``◂`` in
    the first cell or ``▸`` in the last pointing towards it.
    """
    if width <= 0:
        return ""
    view_end_ns = max(view_end_ns, view_start_ns + 1)
    end_ns = max(end_ns, start_ns)
    if end_ns < view_start_ns:
        return (BEFORE_VIEW if edge_markers else " ") + " " * (width - 1)
    if start_ns > view_end_ns:
        return " " * (width - 1) + (AFTER_VIEW if edge_markers else " ")

    span_ns = view_end_ns - view_start_ns
    lo = _to_eighths(max(start_ns, view_start_ns), view_start_ns, span_ns, width)
    hi = _to_eighths(min(end_ns, view_end_ns), view_start_ns, span_ns, width)
    cells = [" "] * width
    if lo == hi:
        _mark(cells, lo)
    else:
        for cell in range(lo // 8, (hi - 1) // 8 + 1):
            base = cell * 8
            cells[cell] = _CELL_GLYPH[(max(lo - base, 0), min(hi - base, 8))]
    return "".join(cells)


def _mark(cells: list[str], eighths: int) -> None:
    cell, offset = divmod(eighths, 8)
    if cell >= len(cells):  # exactly at the view's right edge
        cells[-1] = THIN_RIGHT
    else:
        cells[cell] = THIN_LEFT if offset < 4 else THIN_RIGHT


def event_positions(events: Iterable[dict], view_start: int, view_end: int,
                    width: int) -> list[int]:
    """Sorted, distinct cell indices of ``events`` (a span's, or some of them) inside the
    view (events outside the view, or without an integer ``time_unix_nano``, are left out)."""
    if width <= 0:
        return []
    span_ns = max(view_end - view_start, 1)
    cells = set()
    for event in events:
        t = event.get("time_unix_nano")
        if isinstance(t, int) and view_start <= t <= view_end:
            cells.add(min((t - view_start) * width // span_ns, width - 1))
    return sorted(cells)


# --------------------------------------------------------------------------- ruler

_MAX_TICKS = 6
_RULER_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs"), (1, "ns"))


def _nice_steps() -> Iterator[int]:
    """1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, ... nanoseconds."""
    yield from (1, 2, 5)
    scale = 1
    while True:
        for mantissa in (10, 20, 25, 50):
            yield mantissa * scale
        scale *= 10


def _ruler_unit(step: int) -> tuple[int, str]:
    return next((size, name) for size, name in _RULER_UNITS if step >= size)


def _tick_label(t: int, unit: int, suffix: str) -> str:
    if t < 0:  # before the origin (a child that starts before its parent's trace start)
        return "-" + _tick_label(-t, unit, suffix)
    whole, rest = divmod(t, unit)
    if not rest:
        return f"{whole}{suffix}"
    digits = len(str(unit)) - 1
    return f"{whole}.{str(rest).zfill(digits).rstrip('0')}{suffix}"


def _tick_labels(step: int, span_ns: int, offset: int = 0) -> list[tuple[int, str]]:
    """(position in the view, label) of each multiple of ``step`` from the origin in view;
    the view starts ``offset`` after the origin."""
    # Far from the origin, the unit of the largest tick: "1.2001s", not "1200100µs".
    unit, suffix = _ruler_unit(step if not offset else max(step, abs(offset) + span_ns))
    first = -(-offset // step) * step
    return [(tick - offset, _tick_label(tick, unit, suffix))
            for tick in range(first, offset + span_ns + 1, step)]


def ruler(view_start_ns: int, view_end_ns: int, width: int,
          origin_ns: int | None = None) -> str:
    """A time axis exactly ``width`` cells wide: labels at round steps (``0ms``, ``25ms``,
    ``50ms``, ...) counted from ``origin_ns`` (the view start by default; a zoomed view keeps
    the trace's start, so its labels say where in the trace it is), each starting at its
    tick's cell, up to six of them and as many as fit with a space between. A label that
    would run past the right edge is right-aligned to it, or dropped if that would touch the
    previous one."""
    if width <= 0:
        return ""
    span_ns = max(view_end_ns - view_start_ns, 1)
    offset = view_start_ns - (view_start_ns if origin_ns is None else origin_ns)
    labels = [(0, _tick_label(offset, *_ruler_unit(span_ns)))]  # when no step fits the width
    for step in _nice_steps():
        if step > span_ns:
            break
        if span_ns // step + 1 > _MAX_TICKS:
            continue
        candidate = _tick_labels(step, span_ns, offset)
        if not candidate:
            continue
        widest = max(len(text) for _, text in candidate)
        if step * width >= (widest + 1) * span_ns:  # cells between ticks fit the widest label
            labels = candidate
            break
    return _place_labels(labels, span_ns, width)


def _place_labels(labels: list[tuple[int, str]], span_ns: int, width: int) -> str:
    cells = [" "] * width
    free_from = 0  # first cell a label may start in (one space after the previous label)
    for t, text in labels:
        col = (2 * t * width + span_ns) // (2 * span_ns)
        col = min(col, width - len(text))
        if col < free_from:
            continue
        cells[col:col + len(text)] = text
        free_from = col + len(text) + 1
    return "".join(cells)


# --------------------------------------------------------------------------- durations


def _div_round(numerator: int, denominator: int) -> int:
    """Non-negative integer division rounding halves up."""
    return (2 * numerator + denominator) // (2 * denominator)


def _three_digits(ns: int, unit: int) -> tuple[int, str]:
    """``ns / unit`` rounded to three significant digits, as (the rounded value's whole part,
    its text without trailing zeros)."""
    whole = ns // unit
    decimals = 2 if whole < 10 else 1 if whole < 100 else 0
    scaled = _div_round(ns * 10**decimals, unit)
    if not decimals:
        return scaled, str(scaled)
    integer, fraction = divmod(scaled, 10**decimals)
    fraction_text = str(fraction).zfill(decimals).rstrip("0")
    text = f"{integer}.{fraction_text}" if fraction_text else str(integer)
    return scaled // 10**decimals, text


def format_duration(ns: int) -> str:
    """A short human duration: ``850ns``, ``12.3µs``, ``4.56ms``, ``1.23s``, ``2m03s``,
    ``1h02m``. Three significant digits, trailing zeros dropped (``5ms``, ``4.5ms``)."""
    ns = int(ns)
    if ns < 0:
        return "-" + format_duration(-ns)
    if ns < 1_000:
        return f"{ns}ns"
    for unit, suffix, limit in ((1_000, "µs", 1000), (1_000_000, "ms", 1000),
                                (1_000_000_000, "s", 60)):
        # Rounding can carry into the next unit: 999.9µs is 1ms, 59.999s is 1m00s.
        value, text = _three_digits(ns, unit)
        if value < limit:
            return text + suffix
    seconds = _div_round(ns, 1_000_000_000)
    if seconds < 3600:
        minutes, seconds = divmod(seconds, 60)
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(_div_round(ns, 60_000_000_000), 60)
    return f"{hours}h{minutes:02d}m"
