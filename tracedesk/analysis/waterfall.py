"""A trace as a waterfall: the span tree and its visible rows (the time axis a row is
drawn against is in ``time_axis``).

Everything here is pure and iterative (never recursive), so a 5,000-deep chain of spans or a
parent cycle in hostile data cannot exhaust the stack or loop forever.

Tree guides are 3 cells per level below the roots: ``"│  "`` where an ancestor's vertical
line continues, ``"   "`` where it has ended, then ``"├─ "`` or (last child) ``"└─ "``.
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
    "build_tree",
    "critical_path",
    "critical_segments",
    "flatten",
    "flatten_below",
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
