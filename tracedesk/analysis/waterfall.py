"""A trace as a waterfall: the span tree, its visible rows and the text they are drawn with.

Everything here is pure and iterative (never recursive), so a 5,000-deep chain of spans or a
parent cycle in hostile data cannot exhaust the stack or loop forever.

Text conventions:

* Tree guides are 3 cells per level below the roots: ``"│  "`` where an ancestor's vertical
  line continues, ``"   "`` where it has ended, then ``"├─ "`` or (last child) ``"└─ "``.
* Time bars use eighth blocks for sub-cell precision; see ``bar``.
* Durations read like ``850ns``, ``12.3µs``, ``4.56ms``, ``1.23s``, ``2m03s``, ``1h02m``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol

from tracedesk.analysis.critical_path import critical_path, critical_segments
from tracedesk.model import Span

__all__ = [
    "SpanTree",
    "WaterfallRow",
    "bar",
    "build_tree",
    "critical_path",
    "critical_segments",
    "event_positions",
    "flatten",
    "flatten_below",
    "format_duration",
    "ruler",
    "self_time_ns",
    "tree_prefix",
]


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class SpanTree:
    """Spans linked by parent id. Every span id is a key of ``spans``, ``children`` and
    ``descendants``; a span is either in ``roots`` or has an entry in ``parents``.

    ``children`` lists and ``roots`` are sorted by start time, then name, then span id.
    ``orphans`` holds roots whose parent was not received (or whose parent link closed a
    cycle). ``start_ns``/``end_ns`` are the earliest start and latest end over all spans
    (both 0 for an empty tree).
    """

    spans: dict[str, Span]
    children: dict[str, list[str]]
    parents: dict[str, str]
    roots: list[str]
    orphans: frozenset[str]
    descendants: dict[str, int]
    start_ns: int
    end_ns: int

    def __len__(self) -> int:
        return len(self.spans)

    def __contains__(self, span_id: object) -> bool:
        return span_id in self.spans

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def parent_of(self, span_id: str) -> str | None:
        return self.parents.get(span_id)

    def children_of(self, span_id: str) -> list[Span]:
        return [self.spans[c] for c in self.children[span_id]]

    def is_orphan(self, span_id: str) -> bool:
        return span_id in self.orphans

    def ancestors(self, span_id: str) -> list[str]:
        """Ids from the span's root down to its parent: what to expand to reveal it."""
        chain: list[str] = []
        parent = self.parents.get(span_id)
        while parent is not None:
            chain.append(parent)
            parent = self.parents.get(parent)
        chain.reverse()
        return chain


def _order_key(span: Span) -> tuple[int, str, str]:
    return (span.start_time_unix_nano, span.name, span.span_id)


def build_tree(spans: Iterable[Span]) -> SpanTree:
    """Link spans into a tree. A later span with an already-seen id replaces the earlier one.

    Spans whose parent is absent become roots flagged as orphans; building again once the
    parent has arrived puts them under it.
    """
    by_id: dict[str, Span] = {}
    for span in spans:
        by_id[span.span_id] = span

    parents: dict[str, str] = {}
    orphans: set[str] = set()
    for span_id, span in by_id.items():
        parent = span.parent_span_id
        if not parent:
            continue
        if parent in by_id and parent != span_id:
            parents[span_id] = parent
        else:
            orphans.add(span_id)
    _break_cycles(by_id, parents, orphans)

    children: dict[str, list[str]] = {span_id: [] for span_id in by_id}
    roots: list[str] = []
    for span_id in by_id:
        parent = parents.get(span_id)
        (roots if parent is None else children[parent]).append(span_id)

    def key(span_id: str) -> tuple[int, str, str]:
        return _order_key(by_id[span_id])

    roots.sort(key=key)
    for kids in children.values():
        if len(kids) > 1:
            kids.sort(key=key)

    if by_id:
        start = min(s.start_time_unix_nano for s in by_id.values())
        end = max(s.end_time_unix_nano for s in by_id.values())
    else:
        start = end = 0
    return SpanTree(by_id, children, parents, roots, frozenset(orphans),
                    _count_descendants(roots, children, parents), start, end)


def _break_cycles(spans: dict[str, Span], parents: dict[str, str], orphans: set[str]) -> None:
    """Cut every parent cycle at its earliest-starting span, which becomes an orphan root.

    The cut point depends only on the cycle's members, so the result does not depend on the
    order spans arrived in.
    """
    on_walk, done = 1, 2
    state: dict[str, int] = {}
    for first in list(parents):
        if first in state:
            continue
        walk: list[str] = []
        node: str | None = first
        while node is not None and node not in state:
            state[node] = on_walk
            walk.append(node)
            node = parents.get(node)
        if node is not None and state[node] == on_walk:
            cycle = walk[walk.index(node):]
            head = min(cycle, key=lambda span_id: _order_key(spans[span_id]))
            del parents[head]
            orphans.add(head)
        for span_id in walk:
            state[span_id] = done


def _preorder(roots: list[str], children: dict[str, list[str]]) -> Iterator[str]:
    stack = list(reversed(roots))
    while stack:
        span_id = stack.pop()
        yield span_id
        stack.extend(reversed(children[span_id]))


def _count_descendants(roots: list[str], children: dict[str, list[str]],
                       parents: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(children, 0)
    # Reversed pre-order visits every child before its parent.
    for span_id in reversed(list(_preorder(roots, children))):
        parent = parents.get(span_id)
        if parent is not None:
            counts[parent] += counts[span_id] + 1
    return counts


def self_time_ns(tree: SpanTree, span_id: str) -> int:
    """The span's duration not covered by any child (children clipped to the span; time
    covered by several overlapping children counts once). Never negative."""
    span = tree.spans[span_id]
    lo = span.start_time_unix_nano
    hi = max(span.end_time_unix_nano, lo)
    clipped = sorted(
        (max(c.start_time_unix_nano, lo), min(c.end_time_unix_nano, hi))
        for c in tree.children_of(span_id)
    )
    covered = 0
    run_start = run_end = lo
    for start, end in clipped:
        if end <= start:
            continue
        if start > run_end:
            covered += run_end - run_start
            run_start = start
        run_end = max(run_end, end)
    covered += run_end - run_start
    return max(hi - lo - covered, 0)


# --------------------------------------------------------------------------- rows


# Not frozen: a frozen dataclass costs ~2 µs to build against ~0.2 µs, and folding a
# 10,000-span trace builds every row again.
@dataclass(slots=True)
class WaterfallRow:
    """One visible line of the waterfall.

    ``guide_bits`` packs ``guides`` into an int (bit ``i`` is ``guides[i]``) so rows of very
    deep trees stay small; read ``guides`` for the tuple.
    """

    span: Span
    depth: int
    guide_bits: int
    is_last: bool
    has_children: bool
    collapsed: bool
    orphan: bool
    child_count: int  # all descendants; the ones hidden when ``collapsed``

    @property
    def span_id(self) -> str:
        return self.span.span_id

    @property
    def guides(self) -> tuple[bool, ...]:
        """One flag per level 1..depth: whether a vertical guide continues below this row in
        that level's column, i.e. whether this row's ancestor (or, for the last entry, the row
        itself) at that depth has later siblings. Empty for roots; the last entry is
        ``not is_last`` for nested rows."""
        bits = self.guide_bits
        return tuple(bool(bits >> level & 1) for level in range(self.depth))


def flatten(tree: SpanTree, collapsed: AbstractSet[str] = frozenset()) -> list[WaterfallRow]:
    """The visible rows, depth first, leaving out the descendants of collapsed spans."""
    roots = tree.roots
    # (span id, depth, guide bits, is last); pushed in reverse so pops come out in order.
    stack = [(span_id, 0, 0, i == len(roots) - 1) for i, span_id in enumerate(roots)]
    stack.reverse()
    return _walk(tree, collapsed, stack)


def flatten_below(tree: SpanTree, row: WaterfallRow,
                  collapsed: AbstractSet[str] = frozenset()) -> list[WaterfallRow]:
    """The visible rows under ``row`` (not itself), as ``flatten`` would place them there:
    unfolding one span costs its subtree, not the whole trace."""
    stack: list[tuple[str, int, int, bool]] = []
    _push_children(stack, tree.children[row.span_id], row.depth, row.guide_bits)
    return _walk(tree, collapsed, stack)


def _push_children(stack: list[tuple[str, int, int, bool]], kids: list[str], depth: int,
                   bits: int) -> None:
    child_depth = depth + 1
    stack.append((kids[-1], child_depth, bits, True))
    if len(kids) > 1:
        continuing = bits | (1 << depth)
        stack.extend([(kid, child_depth, continuing, False) for kid in kids[-2::-1]])


def _walk(tree: SpanTree, collapsed: AbstractSet[str],
          stack: list[tuple[str, int, int, bool]]) -> list[WaterfallRow]:
    spans, children, counts, orphans = tree.spans, tree.children, tree.descendants, tree.orphans
    rows: list[WaterfallRow] = []
    append = rows.append
    while stack:
        span_id, depth, bits, is_last = stack.pop()
        kids = children[span_id]
        folded = bool(kids) and span_id in collapsed
        append(WaterfallRow(spans[span_id], depth, bits, is_last, bool(kids), folded,
                            span_id in orphans, counts[span_id]))
        if kids and not folded:
            _push_children(stack, kids, depth, bits)
    return rows


class TreeRow(Protocol):
    """What ``tree_prefix`` reads: any tree drawn with the same guides."""

    @property
    def depth(self) -> int: ...
    @property
    def guide_bits(self) -> int: ...
    @property
    def is_last(self) -> bool: ...


def tree_prefix(row: TreeRow) -> str:
    """Indent guides for a row: ``""`` for roots, otherwise ``3 * depth`` cells such as
    ``"│  ├─ "`` or ``"   └─ "`` (one ``"│  "``/``"   "`` per ancestor level below the root,
    then ``"├─ "``, or ``"└─ "`` for a last child)."""
    if row.depth == 0:
        return ""
    bits = row.guide_bits
    parts = ["│  " if bits >> level & 1 else "   " for level in range(row.depth - 1)]
    parts.append("└─ " if row.is_last else "├─ ")
    return "".join(parts)


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
    whole, rest = divmod(t, unit)
    if not rest:
        return f"{whole}{suffix}"
    digits = len(str(unit)) - 1
    return f"{whole}.{str(rest).zfill(digits).rstrip('0')}{suffix}"


def _tick_labels(step: int, span_ns: int) -> list[tuple[int, str]]:
    unit, suffix = _ruler_unit(step)
    return [(t, _tick_label(t, unit, suffix)) for t in range(0, span_ns + 1, step)]


def ruler(view_start_ns: int, view_end_ns: int, width: int) -> str:
    """A time axis exactly ``width`` cells wide: labels relative to the view start (``0ms``,
    ``25ms``, ``50ms``, ...) at round steps, each starting at its tick's cell, up to six of
    them and as many as fit with a space between. A label that would run past the right edge
    is right-aligned to it, or dropped if that would touch the previous one."""
    if width <= 0:
        return ""
    span_ns = max(view_end_ns - view_start_ns, 1)
    labels = [(0, _tick_label(0, *_ruler_unit(span_ns)))]  # when no step fits the width
    for step in _nice_steps():
        if step > span_ns:
            break
        if span_ns // step + 1 > _MAX_TICKS:
            continue
        candidate = _tick_labels(step, span_ns)
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
