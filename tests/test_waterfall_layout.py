"""Waterfall computations on hand-built traces: tree, rows, critical path, bars and labels."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracedesk.analysis.critical_path import last_ending_root
from tracedesk.analysis.folding import fold, unfold
from tracedesk.analysis.time_axis import bar, event_positions, format_duration, ruler
from tracedesk.analysis.waterfall import (
    SpanTree,
    build_tree,
    critical_path,
    critical_segments,
    flatten,
    flatten_below,
    self_time_ns,
    tree_prefix,
)
from tracedesk.model import Span, StatusCode

MS = 1_000_000


def span(span_id: str, parent: str = "", start: int = 0, end: int = 10, *,
         name: str | None = None, events: list[dict] | None = None) -> Span:
    return Span(trace_id="t1", span_id=span_id, parent_span_id=parent, name=name or span_id,
                kind=1, service_name="svc", start_time_unix_nano=start,
                end_time_unix_nano=end, status_code=StatusCode.UNSET, events=events or [])


def ids(tree: SpanTree, collapsed: frozenset[str] = frozenset()) -> list[str]:
    return [row.span_id for row in flatten(tree, collapsed)]


def chain(n: int) -> list[Span]:
    return [span(f"s{i}", f"s{i - 1}" if i else "", i, 2 * n - i) for i in range(n)]


# --------------------------------------------------------------------------- tree


def test_orphans_become_roots_until_their_parent_arrives() -> None:
    early = [span("root", "", 0, 100), span("child", "late", 20, 30),
             span("grandchild", "child", 22, 28)]
    tree = build_tree(early)
    assert tree.roots == ["root", "child"]
    assert tree.orphans == {"child"}
    assert [(r.span_id, r.depth, r.orphan) for r in flatten(tree)] == [
        ("root", 0, False), ("child", 0, True), ("grandchild", 1, False)]

    tree = build_tree([*early, span("late", "root", 10, 40)])
    assert tree.roots == ["root"]
    assert not tree.orphans
    assert tree.parent_of("child") == "late"
    assert [(r.span_id, r.depth) for r in flatten(tree)] == [
        ("root", 0), ("late", 1), ("child", 2), ("grandchild", 3)]
    assert tree.ancestors("grandchild") == ["root", "late", "child"]


def test_several_roots_sorted_by_start_and_children_by_start_name_id() -> None:
    tree = build_tree([span("r2", "", 50, 60), span("r1", "", 0, 40),
                       span("c", "r1", 5, 6, name="b"), span("a", "r1", 5, 6, name="b"),
                       span("z", "r1", 5, 6, name="a"), span("early", "r1", 1, 2)])
    assert tree.roots == ["r1", "r2"]
    assert tree.children["r1"] == ["early", "z", "a", "c"]
    assert (tree.start_ns, tree.end_ns) == (0, 60)
    assert not tree.orphans


def test_empty_trace() -> None:
    tree = build_tree([])
    assert len(tree) == 0
    assert (tree.start_ns, tree.end_ns) == (0, 0)
    assert flatten(tree) == []
    assert critical_path(tree) == []
    assert critical_segments(tree) == {}


def test_duplicate_span_ids_last_wins() -> None:
    tree = build_tree([span("a", "", 0, 10, name="first"), span("b", "a", 1, 2),
                       span("a", "", 0, 20, name="second")])
    assert len(tree) == 2
    assert tree.spans["a"].name == "second"
    assert tree.end_ns == 20
    assert ids(tree) == ["a", "b"]


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_parent_cycle_is_cut_at_its_earliest_span(order: list[int]) -> None:
    spans = [span("a", "c", 10, 20), span("b", "a", 12, 18), span("c", "b", 14, 16),
             span("tail", "c", 15, 16)]
    tree = build_tree([spans[i] for i in order])
    assert tree.roots == ["a"]
    assert tree.orphans == {"a"}
    assert ids(tree) == ["a", "b", "c", "tail"]
    assert tree.ancestors("tail") == ["a", "b", "c"]
    assert critical_path(tree) == ["a", "b", "c", "tail"]


def test_self_parent_is_an_orphan_root() -> None:
    tree = build_tree([span("a", "a", 0, 10), span("b", "a", 2, 4)])
    assert tree.roots == ["a"]
    assert tree.orphans == {"a"}
    assert ids(tree) == ["a", "b"]


def test_clock_skewed_child_still_nests() -> None:
    tree = build_tree([span("p", "", 100, 200), span("c", "p", 90, 150)])
    assert tree.roots == ["p"]
    assert tree.start_ns == 90
    assert [(r.span_id, r.depth) for r in flatten(tree)] == [("p", 0), ("c", 1)]


def test_zero_length_spans() -> None:
    tree = build_tree([span("p", "", 0, 0), span("c", "p", 0, 0)])
    assert ids(tree) == ["p", "c"]
    assert self_time_ns(tree, "p") == 0
    assert critical_path(tree) == ["p"]
    assert critical_segments(tree) == {"p": []}


def test_deep_chain_has_no_recursion_limit() -> None:
    n = 5_000
    tree = build_tree(chain(n))
    rows = flatten(tree)
    assert len(rows) == n
    assert rows[-1].depth == n - 1
    assert rows[0].child_count == n - 1
    assert tree_prefix(rows[-1]) == "   " * (n - 2) + "└─ "
    assert rows[-1].guides == (False,) * (n - 1)
    assert len(tree.ancestors(f"s{n - 1}")) == n - 1
    assert len(critical_path(tree)) == n
    assert ids(tree, frozenset({"s1"})) == ["s0", "s1"]


def test_flatten_ten_thousand_spans() -> None:
    spans = [span("root", "", 0, 10_000_000)]
    for i in range(100):
        spans.append(span(f"g{i}", "root", i * 1000, i * 1000 + 900))
        spans.extend(span(f"g{i}.{j}", f"g{i}", i * 1000 + j, i * 1000 + j + 5)
                     for j in range(99))
    tree = build_tree(spans[:10_000])
    assert len(flatten(tree)) == 10_000


_IDS = [f"s{i}" for i in range(12)]
_spans = st.lists(
    st.builds(span, st.sampled_from(_IDS), st.sampled_from(["", "gone", *_IDS]),
              st.integers(0, 100), st.integers(0, 100)),
    max_size=30)


@given(_spans)
def test_any_parent_links_give_a_consistent_tree(spans: list[Span]) -> None:
    tree = build_tree(spans)
    rows = flatten(tree)
    assert sorted(r.span_id for r in rows) == sorted(tree.spans)
    position = {r.span_id: i for i, r in enumerate(rows)}
    for row in rows:
        parent = tree.parent_of(row.span_id)
        assert (parent is None) == (row.depth == 0)
        if parent is not None:
            assert position[parent] < position[row.span_id]
            assert rows[position[parent]].depth == row.depth - 1
        assert len(tree_prefix(row)) == 3 * row.depth


@given(_spans)
def test_critical_segments_tile_the_root(spans: list[Span]) -> None:
    tree = build_tree(spans)
    path = critical_path(tree)
    if not path:
        assert not spans
        return
    assert path[0] in tree.roots
    for i, child in enumerate(path[1:], 1):
        assert tree.parent_of(child) in path[:i]  # each blocker hangs off the path so far
    root = tree.spans[path[0]]
    intervals = sorted(i for found in critical_segments(tree).values() for i in found)
    covered = root.start_time_unix_nano
    for start, end in intervals:
        assert start == covered < end
        covered = end
    assert covered == max(root.end_time_unix_nano, root.start_time_unix_nano)


# --------------------------------------------------------------------------- rows


def small_tree() -> SpanTree:
    return build_tree([
        span("root", "", 0, 100),
        span("a", "root", 10, 50), span("a1", "a", 11, 20), span("a2", "a", 21, 40),
        span("a2x", "a2", 22, 30),
        span("b", "root", 60, 90), span("b1", "b", 61, 80),
    ])


def test_guides_and_prefixes() -> None:
    rows = flatten(small_tree())
    assert [(r.span_id, tree_prefix(r), r.guides, r.is_last) for r in rows] == [
        ("root", "", (), True),
        ("a", "├─ ", (True,), False),
        ("a1", "│  ├─ ", (True, True), False),
        ("a2", "│  └─ ", (True, False), True),
        ("a2x", "│     └─ ", (True, False, False), True),
        ("b", "└─ ", (False,), True),
        ("b1", "   └─ ", (False, False), True),
    ]
    assert [r.has_children for r in rows] == [True, True, False, True, False, True, False]


def test_several_roots_are_siblings_without_guides() -> None:
    tree = build_tree([span("r1", "", 0, 10), span("c", "r1", 1, 2), span("r2", "x", 5, 9)])
    rows = flatten(tree)
    assert [(r.span_id, tree_prefix(r), r.is_last, r.orphan) for r in rows] == [
        ("r1", "", False, False), ("c", "└─ ", True, False), ("r2", "", True, True)]


def test_collapse_hides_descendants_and_counts_them() -> None:
    tree = small_tree()
    rows = flatten(tree, {"a", "b1"})
    assert [r.span_id for r in rows] == ["root", "a", "b", "b1"]
    by_id = {r.span_id: r for r in rows}
    assert by_id["a"].collapsed
    assert by_id["a"].child_count == 3
    assert by_id["root"].child_count == 6
    assert not by_id["root"].collapsed
    assert not by_id["b1"].collapsed  # a leaf has nothing to hide
    assert by_id["b1"].child_count == 0
    assert tree_prefix(by_id["b"]) == "└─ "
    assert ids(tree, {"root"}) == ["root"]


# --------------------------------------------------------------------------- critical path


def test_critical_path_sequential_children() -> None:
    tree = build_tree([span("p", "", 0, 100), span("a", "p", 0, 30), span("b", "p", 30, 60),
                       span("c", "p", 60, 95)])
    assert critical_path(tree) == ["p", "c", "b", "a"]
    assert critical_segments(tree) == {
        "p": [(95, 100)], "c": [(60, 95)], "b": [(30, 60)], "a": [(0, 30)]}


def test_critical_path_parallel_children() -> None:
    # b runs alongside c and finishes after c started, so it never blocked p.
    tree = build_tree([span("p", "", 0, 100), span("a", "p", 10, 60), span("b", "p", 10, 80),
                       span("c", "p", 70, 90), span("c1", "c", 72, 85)])
    assert critical_path(tree) == ["p", "c", "c1", "a"]
    assert critical_segments(tree) == {
        "p": [(0, 10), (60, 70), (90, 100)], "c": [(70, 72), (85, 90)], "c1": [(72, 85)],
        "a": [(10, 60)]}


def test_critical_path_equal_ends_prefers_the_longer_child() -> None:
    tree = build_tree([span("p", "", 0, 100), span("short", "p", 50, 90),
                       span("long", "p", 20, 90)])
    assert critical_path(tree) == ["p", "long"]


def test_critical_path_child_outliving_its_parent_is_clamped() -> None:
    tree = build_tree([span("p", "", 0, 100), span("a", "p", 10, 40), span("late", "p", 50, 150)])
    assert critical_path(tree) == ["p", "late", "a"]
    assert critical_segments(tree) == {
        "p": [(0, 10), (40, 50)], "late": [(50, 100)], "a": [(10, 40)]}


def test_critical_path_child_starting_before_its_parent_is_clamped() -> None:
    tree = build_tree([span("p", "", 100, 200), span("early", "p", 50, 140),
                       span("b", "p", 140, 190), span("outside", "p", 10, 60)])
    assert critical_path(tree) == ["p", "b", "early"]
    assert critical_segments(tree) == {"p": [(190, 200)], "b": [(140, 190)],
                                       "early": [(100, 140)]}


def test_critical_path_skips_zero_length_children() -> None:
    tree = build_tree([span("p", "", 0, 100), span("a", "p", 10, 50), span("z", "p", 50, 50),
                       span("z2", "p", 99, 99)])
    assert critical_path(tree) == ["p", "a"]
    assert critical_segments(tree) == {"p": [(0, 10), (50, 100)], "a": [(10, 50)]}


def test_critical_path_follows_the_root_tree_that_ends_last() -> None:
    tree = build_tree([span("r1", "", 0, 50), span("r1c", "r1", 10, 40),
                       span("orphan", "missing", 20, 80), span("oc", "orphan", 30, 70)])
    assert last_ending_root(tree) == "orphan"
    assert critical_path(tree) == ["orphan", "oc"]
    assert critical_path(tree, "r1") == ["r1", "r1c"]
    assert critical_segments(tree) == {"orphan": [(20, 30), (70, 80)], "oc": [(30, 70)]}


# --------------------------------------------------------------------------- self time


def test_self_time_with_overlapping_children() -> None:
    tree = build_tree([span("p", "", 0, 100), span("a", "p", 10, 40), span("b", "p", 30, 60),
                       span("c", "p", 70, 80), span("inner", "a", 15, 20)])
    assert self_time_ns(tree, "p") == 100 - 50 - 10
    assert self_time_ns(tree, "a") == 25
    assert self_time_ns(tree, "c") == 10


def test_self_time_clips_children_and_is_never_negative() -> None:
    tree = build_tree([span("p", "", 100, 200), span("a", "p", 50, 150), span("b", "p", 120, 300),
                       span("bad", "", 10, 5)])
    assert self_time_ns(tree, "p") == 0
    assert self_time_ns(tree, "bad") == 0


# --------------------------------------------------------------------------- bars


@pytest.mark.parametrize(("start", "end", "expected"), [
    (0, 1000, "██████████"),
    (250, 525, "  ▐██▎    "),  # cells 2.5 to 5.25
    (0, 525, "█████▎    "),
    (200, 500, "  ███     "),
    (225, 500, "  ▐██     "),  # a quarter-cell left edge rounds to the half block
    (275, 500, "  ▕██     "),  # three quarters missing: the thin right mark
    (212, 500, "  ███     "),  # one eighth missing: rounds to full
    (100, 187, " ▉        "),
    (100, 112, " ▏        "),
    (120, 150, " ▌        "),  # a floating sub-cell span: nearest glyph
    (150, 190, " ▐        "),
])
def test_bar_eighths(start: int, end: int, expected: str) -> None:
    assert bar(start, end, 0, 1000, 10) == expected


@pytest.mark.parametrize(("start", "end", "expected"), [
    (500, 500, "     ▏    "),
    (540, 540, "     ▏    "),
    (560, 560, "     ▕    "),
    (570, 570, "     ▕    "),
    (1000, 1000, "         ▕"),
    (0, 0, "▏         "),
    (500, 501, "     ▏    "),  # shorter than an eighth: still a mark
])
def test_bar_zero_length_shows_a_mark(start: int, end: int, expected: str) -> None:
    assert bar(start, end, 0, 1000, 10) == expected


def test_bar_clipping_and_outside_markers() -> None:
    assert bar(-500, 250, 0, 1000, 10) == "██▌       "
    assert bar(750, 5000, 0, 1000, 10) == "       ▐██"
    assert bar(-500, 5000, 0, 1000, 10) == "██████████"
    assert bar(-500, -100, 0, 1000, 10) == "◂         "
    assert bar(1100, 1200, 0, 1000, 10) == "         ▸"
    assert bar(1100, 1200, 0, 1000, 10, edge_markers=False) == " " * 10
    # A zoomed view: 1,000,000 + [250, 525] of a 1,000 ns view.
    assert bar(1_000_250, 1_000_525, 1_000_000, 1_001_000, 10) == "  ▐██▎    "


def test_bar_degenerate_inputs() -> None:
    assert bar(0, 10, 0, 10, 0) == ""
    assert len(bar(5, 5, 5, 5, 8)) == 8
    assert bar(500, 400, 0, 1000, 10) == "     ▏    "  # end before start: a point


def test_event_positions() -> None:
    s = span("s", "", 0, 1000, events=[
        {"time_unix_nano": 0, "name": "a", "attributes": {}},
        {"time_unix_nano": 999, "name": "b", "attributes": {}},
        {"time_unix_nano": 1000, "name": "c", "attributes": {}},
        {"time_unix_nano": 510, "name": "d", "attributes": {}},
        {"time_unix_nano": 550, "name": "e", "attributes": {}},
        {"time_unix_nano": 2000, "name": "outside", "attributes": {}},
        {"name": "no time", "attributes": {}},
    ])
    assert event_positions(s.events, 0, 1000, 10) == [0, 5, 9]
    assert event_positions(s.events, 500, 600, 10) == [1, 5]
    assert event_positions(s.events, 0, 1000, 0) == []


# --------------------------------------------------------------------------- ruler


def test_ruler_labels_and_width() -> None:
    assert ruler(0, 100 * MS, 80) == (
        "0ms             20ms            40ms            60ms            80ms       100ms")
    assert ruler(0, 100 * MS, 40) == "0ms     20ms    40ms    60ms    80ms    "
    # Labels are relative to the view start.
    assert ruler(5_000 * MS, 5_100 * MS, 40) == ruler(0, 100 * MS, 40)
    assert ruler(0, 7_300_000, 60) == (
        "0ms             2ms              4ms             6ms        ")
    assert ruler(0, 10_000, 50).split() == ["0µs", "2µs", "4µs", "6µs", "8µs", "10µs"]
    assert ruler(0, 250, 60).split() == ["0ns", "50ns", "100ns", "150ns", "200ns", "250ns"]
    assert ruler(0, 3_000_000_000, 20) == "0s     1s    2s   3s"


def test_ruler_fractional_steps() -> None:
    assert ruler(0, 10 * MS, 60).split() == ["0ms", "2ms", "4ms", "6ms", "8ms", "10ms"]
    assert ruler(0, 12 * MS, 60).split() == ["0ms", "2.5ms", "5ms", "7.5ms", "10ms"]


@pytest.mark.parametrize("width", [0, 1, 2, 3, 7, 13, 33, 120])
@pytest.mark.parametrize("span_ns", [0, 1, 999, 12_345, 87 * MS, 3_600_000 * MS])
def test_ruler_is_exactly_width_cells(width: int, span_ns: int) -> None:
    text = ruler(1_000, 1_000 + span_ns, width)
    assert len(text) == width
    if width >= 4:
        assert text.startswith("0")
    ticks = text.split()
    assert len(ticks) <= 6


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("ns", "expected"), [
    (0, "0ns"),
    (850, "850ns"),
    (999, "999ns"),
    (1_000, "1µs"),
    (12_345, "12.3µs"),
    (123_456, "123µs"),
    (999_999, "1ms"),  # rounding carries into the next unit
    (4_560_000, "4.56ms"),
    (4_555_000, "4.56ms"),  # halves round up
    (4_500_000, "4.5ms"),
    (45_600_000, "45.6ms"),
    (1_230_000_000, "1.23s"),
    (59_999_000_000, "1m00s"),
    (123_000_000_000, "2m03s"),
    (3_720_000_000_000, "1h02m"),
    (-2_000, "-2µs"),
])
def test_format_duration(ns: int, expected: str) -> None:
    assert format_duration(ns) == expected


def test_unfolding_one_span_gives_the_rows_a_full_flatten_would():
    """flatten_below(row) == the rows flatten() puts under that row, at every span."""
    rng = random.Random(7)
    spans = [span("s0", "", 0, 100)]
    for n in range(1, 300):  # a random tree: every span's parent came before it
        spans.append(span(f"s{n}", f"s{rng.randrange(n)}", n, n + 5))
    tree = build_tree(spans)
    folded = {f"s{n}" for n in range(1, 300, 7)}
    full = flatten(tree, folded)
    for index, row in enumerate(full):
        if row.has_children and not row.collapsed:
            below = flatten_below(tree, row, folded)
            assert below == full[index + 1:index + 1 + len(below)]
            after = full[index + 1 + len(below):]
            assert not after or after[0].depth <= row.depth


def test_folding_in_place_gives_the_rows_a_full_flatten_would():
    """Any sequence of folds and unfolds of visible spans leaves the rows flatten() makes
    for the spans folded at that point."""
    rng = random.Random(11)
    spans = [span("s0", "", 0, 100), span("r1", "", 50, 60)]  # two roots
    for n in range(1, 200):
        spans.append(span(f"s{n}", f"s{rng.randrange(n)}", n, n + 5))
    tree = build_tree(spans)
    position = {row.span_id: i for i, row in enumerate(flatten(tree))}
    collapsed: set[str] = set()
    rows = flatten(tree)
    for _ in range(300):
        index = rng.choice([i for i, row in enumerate(rows) if row.has_children])
        row = rows[index]
        if row.collapsed:
            collapsed.discard(row.span_id)
            unfold(tree, rows, index, collapsed)
        else:
            collapsed.add(row.span_id)
            fold(rows, index, position)
        assert rows == flatten(tree, collapsed)


def test_a_zoomed_ruler_counts_from_the_trace_start() -> None:
    # Zoomed to 120-180 ms of a trace: the labels say where in the trace the view is.
    assert ruler(120 * MS, 180 * MS, 60, origin_ns=0).split() == [
        "120ms", "140ms", "160ms", "180ms"]
    assert ruler(125 * MS, 185 * MS, 60, origin_ns=5 * MS) == ruler(120 * MS, 180 * MS, 60,
                                                                  origin_ns=0)
    assert ruler(10 * MS, 110 * MS, 40, origin_ns=10 * MS) == ruler(0, 100 * MS, 40)
    # A view that begins between ticks: the first label sits at its tick, not at cell 0.
    line = ruler(103 * MS, 203 * MS, 40, origin_ns=0)
    assert line.startswith("       ") and line.split()[0] == "120ms"
    # Far into a trace with a fine step, the labels use the larger unit.
    assert ruler(1_200 * MS, 1_200 * MS + 300_000, 40, origin_ns=0).split()[:2] == [
        "1.2s", "1.2001s"]
    assert ruler(-10 * MS, 90 * MS, 40, origin_ns=0).split()[0] == "0ms"  # before the start
