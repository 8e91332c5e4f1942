"""The critical path: the chain of spans whose work determined when the trace finished.

The definition follows Jaeger's and Tempo's tooling. Start at the root that ends last and walk
backwards in time from its end: the child that finished last before the current point was
blocking its parent, so it is on the path; walk into it the same way, then carry on in the
parent from that child's start, among the children that finished by then. Whatever time no
blocking child covers is the parent's own critical time.

Adjustments for real data:

* Clock skew: a child is clamped to its parent's (already clamped) interval, so one that starts
  early or ends late only counts for the part inside its parent.
* A child that is zero-length after clamping cannot block anything and is never chosen.
* Children ending at the same time: the one that started first wins, then tree order.
* Several roots (orphans whose parent was not received): each root tree is separate and the
  path is that of the root that ends last.

Iterative, so very deep traces are fine; each span is looked at a bounded number of times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracedesk.analysis.waterfall import SpanTree

Interval = tuple[int, int]


@dataclass(slots=True)
class _Frame:
    """A span being walked: its clamped start and its children as candidate blockers."""

    span_id: str
    start: int
    blockers: list[tuple[int, int, str]]  # (clamped end, clamped start, id), latest end first
    next: int = field(default=0)

    def next_blocker(self, bound: int) -> tuple[int, int, str] | None:
        """The next child that ended by ``bound`` and has some length. Children passed over
        are never reconsidered: ``bound`` only moves earlier."""
        while self.next < len(self.blockers):
            candidate = self.blockers[self.next]
            self.next += 1
            end, start, _ = candidate
            if end <= bound and end > start:
                return candidate
        return None


def _blockers(tree: SpanTree, span_id: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    clamped = []
    for child_id in tree.children[span_id]:
        child = tree.spans[child_id]
        start = min(max(child.start_time_unix_nano, lo), hi)
        end = max(min(child.end_time_unix_nano, hi), start)
        clamped.append((end, start, child_id))
    # Stable sort: among equal ends the earlier start, then the tree's order, comes first.
    clamped.sort(key=lambda item: (-item[0], item[1]))
    return clamped


def last_ending_root(tree: SpanTree) -> str | None:
    """The root whose span ends last (ties: the earlier start, then tree order)."""
    best: str | None = None
    best_key: tuple[int, int] | None = None
    for root_id in tree.roots:
        span = tree.spans[root_id]
        key = (max(span.end_time_unix_nano, span.start_time_unix_nano),
               -span.start_time_unix_nano)
        if best_key is None or key > best_key:
            best, best_key = root_id, key
    return best


def _walk(tree: SpanTree, root_id: str) -> tuple[list[str], dict[str, list[Interval]]]:
    root = tree.spans[root_id]
    lo = root.start_time_unix_nano
    hi = max(root.end_time_unix_nano, lo)
    path = [root_id]
    segments: dict[str, list[Interval]] = {root_id: []}
    stack = [_Frame(root_id, lo, _blockers(tree, root_id, lo, hi))]
    bound = hi  # the walk has explained everything from here to the root's end
    while stack:
        frame = stack[-1]
        blocker = frame.next_blocker(bound)
        if blocker is None:
            if bound > frame.start:
                segments[frame.span_id].append((frame.start, bound))
            stack.pop()
            bound = frame.start
            continue
        end, start, child_id = blocker
        if end < bound:
            segments[frame.span_id].append((end, bound))
        path.append(child_id)
        segments[child_id] = []
        stack.append(_Frame(child_id, start, _blockers(tree, child_id, start, end)))
        bound = end
    for intervals in segments.values():
        intervals.reverse()  # found latest first
    return path, segments


def critical_path(tree: SpanTree, root_id: str | None = None) -> list[str]:
    """Span ids on the critical path of ``root_id``'s tree (default: the root that ends last),
    in the order the walk reaches them: the root, then each blocking child, latest first.
    Empty for an empty tree."""
    root_id = root_id if root_id is not None else last_ending_root(tree)
    return [] if root_id is None else _walk(tree, root_id)[0]


def critical_segments(tree: SpanTree, root_id: str | None = None) -> dict[str, list[Interval]]:
    """For each span on the critical path, the ``(start, end)`` intervals (ascending) during
    which it was itself the critical span, i.e. no child of it was. A span fully covered by
    its blocking children has an empty list. Keys are in path order."""
    root_id = root_id if root_id is not None else last_ending_root(tree)
    return {} if root_id is None else _walk(tree, root_id)[1]
