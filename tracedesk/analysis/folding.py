"""Folding one span of a waterfall's visible rows in place.

Flattening a 10,000-span trace again costs ~13 ms, most of a frame; these touch only the
folded span's own rows, so a fold costs its subtree.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace

from tracedesk.analysis.waterfall import SpanTree, WaterfallRow, flatten_below


def fold(rows: list[WaterfallRow], index: int, position: Mapping[str, int]) -> None:
    """Hide the descendants of ``rows[index]`` and mark it collapsed.

    ``position``: each span's index in the tree order of the whole, unfolded trace. The
    visible rows are in that order, and the subtree ends at its last descendant's
    position, so where it ends is found by bisection, not by walking its rows."""
    row = rows[index]
    last = position[row.span_id] + row.child_count
    end = bisect_right(rows, last, index + 1, key=lambda r: position[r.span.span_id])
    del rows[index + 1:end]
    rows[index] = replace(row, collapsed=True)


def unfold(tree: SpanTree, rows: list[WaterfallRow], index: int,
           collapsed: AbstractSet[str]) -> None:
    """Show the rows under ``rows[index]`` as ``flatten(tree, collapsed)`` would; the spans
    in ``collapsed`` (which must not hold this one) stay folded."""
    rows[index] = opened = replace(rows[index], collapsed=False)
    rows[index + 1:index + 1] = flatten_below(tree, opened, collapsed)
