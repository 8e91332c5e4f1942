"""The span waterfall: a virtualized tree of spans with time bars, drawn line by line.

Layout work (tree, visible rows, critical path) lives in ``tracedesk.analysis``; this widget
keeps the user's state across reloads (cursor, collapsed spans, zoom, find) by span id, and
draws only the lines on screen, so a 10,000-span trace costs what 40 rows cost.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from tracedesk.analysis.folding import fold, unfold
from tracedesk.analysis.time_axis import ruler
from tracedesk.analysis.waterfall import (
    SpanTree,
    WaterfallRow,
    critical_path,
    critical_segments,
    flatten,
)
from tracedesk.model import StatusCode
from tracedesk.ui.text import fit
from tracedesk.ui.widgets.cursor_view import CursorView
from tracedesk.ui.widgets.strip_cache import StripCache
from tracedesk.ui.widgets.waterfall_rows import DIM, DURATION_WIDTH, RowLook, row_segments

HEADER = Style(bold=True, color="#87afd7")
CURSOR = Style(bgcolor="#264f78")


class Waterfall(CursorView):
    """Shows a ``SpanTree``; ``set_tree`` again with newer data keeps the user's place."""

    BINDINGS = [
        Binding("h,left", "collapse_or_parent", "Collapse / parent", show=False,
                id="waterfall.collapse"),
        Binding("l,right", "expand", "Expand", show=False, id="waterfall.expand"),
        Binding("space,enter", "toggle", "Fold", id="waterfall.toggle"),
        Binding("minus", "collapse_all", "Collapse all", show=False,
                id="waterfall.collapse_all"),
        Binding("plus,equals_sign", "expand_all", "Expand all", show=False,
                id="waterfall.expand_all"),
        Binding("p", "parent", "Parent", show=False, id="waterfall.parent"),
        Binding("e", "next_error", "Next error", id="waterfall.next_error"),
        Binding("E", "previous_error", "Previous error", show=False,
                id="waterfall.previous_error"),
        Binding("c", "toggle_critical", "Critical path", id="waterfall.critical"),
        Binding("right_square_bracket", "next_critical", "Next on critical path", show=False,
                id="waterfall.next_critical"),
        Binding("left_square_bracket", "previous_critical", "Previous on critical path",
                show=False, id="waterfall.previous_critical"),
        Binding("n", "next_match", "Next match", show=False, id="waterfall.next_match"),
        Binding("N", "previous_match", "Previous match", show=False,
                id="waterfall.previous_match"),
        Binding("z", "zoom", "Zoom", id="waterfall.zoom"),
    ]

    class Selected(Message):
        """The span under the cursor changed (None: the trace has no spans)."""

        def __init__(self, span_id: str | None) -> None:
            super().__init__()
            self.span_id = span_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.span_tree: SpanTree | None = None
        self.rows: list[WaterfallRow] = []
        self.collapsed: set[str] = set()
        self.zoomed: str | None = None  # span id the time axis is zoomed to
        self.show_critical = False
        self.matches: frozenset[str] = frozenset()
        # The spans that matched the trace list's query (their own column, not find's mark).
        self.query_matches: frozenset[str] = frozenset()
        self._index_of: dict[str, int] | None = None  # see _index
        self._all_rows: list[WaterfallRow] = []  # every row, nothing collapsed
        self._order: list[str] = []  # every span id in tree order, collapsed or not
        self._position: dict[str, int] = {}
        self._critical: dict[str, list[tuple[int, int]]] | None = None
        self._critical_order: list[str] | None = None
        self.log_levels: dict[str, int] = {}  # span id -> highest severity of its logs
        self._find_tree: SpanTree | None = None  # the tree _find_cache was folded from
        self._find_cache: dict[str, str] = {}
        self.strips = StripCache()  # drawn rows, valid while what _look() returns is

    # --- data -------------------------------------------------------------------------

    def set_tree(self, tree: SpanTree, select: str | None = None) -> None:
        """Show ``tree``. The selected span stays selected (or ``select`` becomes it)."""
        keep = select or self.selected_id
        self.span_tree = tree
        self.collapsed &= tree.spans.keys()
        if self.zoomed not in tree.spans:
            self.zoomed = None
        self.matches = self.matches & tree.spans.keys()
        self._all_rows = flatten(tree)
        self._order = [row.span_id for row in self._all_rows]
        self._position = {span_id: i for i, span_id in enumerate(self._order)}
        self._critical = self._critical_order = None
        self._reflow(keep)

    def _reflow(self, keep: str | None) -> None:
        """Rebuild the visible rows, keeping ``keep`` under the cursor if it is visible."""
        if self.span_tree is None:
            return
        # Nothing folded (the usual case) reuses the rows set_tree made: flattening 10k
        # spans costs ~13 ms, most of a frame.
        self._show_rows(flatten(self.span_tree, self.collapsed) if self.collapsed
                        else self._all_rows, keep)

    def _show_rows(self, rows: list[WaterfallRow], keep: str | None,
                   toggled: int | None = None) -> None:
        """Show ``rows`` with the cursor on ``keep``; ``toggled``: keep's index, a row just
        folded or unfolded (only it and the rows below it changed)."""
        self.rows = rows
        # Every row unfolded: row indexes are the tree order's positions.
        self._index_of = self._position if rows is self._all_rows else None
        self.set_line_count(len(self.rows) + 1)
        if toggled is not None:
            self.cursor = toggled
            # The header and the rows above keep their lines: folding mid-screen repaints
            # half of it. (Were the view to scroll, Textual repaints all of it.)
            self.refresh_lines(toggled + 1, self.size.height)
            return
        index = self._index.get(keep, min(self.cursor, len(self.rows) - 1)) if keep else 0
        self.cursor = max(index, 0)
        self.refresh()

    @property
    def _index(self) -> dict[str, int]:
        """Row index by span id, built when first needed after the rows changed: building
        it for 10,000 rows on every fold took ~2 ms of the key's frame."""
        if self._index_of is None:
            self._index_of = {row.span_id: i for i, row in enumerate(self.rows)}
        return self._index_of

    @property
    def selected(self) -> WaterfallRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    @property
    def selected_id(self) -> str | None:
        row = self.selected
        return row.span_id if row else None

    def select(self, span_id: str) -> bool:
        """Move to ``span_id``, expanding its ancestors. False if the trace lacks it."""
        if self.span_tree is None or span_id not in self.span_tree:
            return False
        hidden = [a for a in self.span_tree.ancestors(span_id) if a in self.collapsed]
        if hidden:
            self.collapsed.difference_update(hidden)
            self._reflow(span_id)
        else:
            self.cursor = self._index[span_id]
        return True

    def set_query_matches(self, span_ids: Iterable[str]) -> None:
        """Mark ``span_ids`` (the spans the list's query matched) in a column of their own."""
        matches = frozenset(span_ids)
        if matches != self.query_matches:
            self.query_matches = matches
            self.refresh()

    def find(self, text: str) -> int:
        """Highlight spans whose name, service or an attribute value contains ``text``
        (any case) and move to the first one at or after the cursor. Returns how many
        match."""
        needle = text.casefold()
        self.matches = frozenset(
            span_id for span_id, haystack in self._find_texts().items()
            if needle and needle in haystack)
        if self.matches and self.selected_id not in self.matches:
            self._jump(self.matches, forward=True)
        self.refresh()
        return len(self.matches)

    def _find_texts(self) -> dict[str, str]:
        """Each span's searchable text, folded once per tree (find runs per keystroke, and
        a trace may hold 10,000 spans with ten attributes each)."""
        if self._find_tree is not self.span_tree:
            spans = self.span_tree.spans if self.span_tree else {}
            self._find_tree = self.span_tree
            self._find_cache = {
                span_id: "\0".join([span.name, span.service_name,
                                     *map(str, span.attributes.values())]).casefold()
                for span_id, span in spans.items()}
        return self._find_cache

    # --- drawing ----------------------------------------------------------------------

    def _columns(self) -> tuple[int, int]:
        """Widths of the name column and the bar column."""
        width = self.size.width
        name = max(16, min(80, width * 9 // 20))
        return name, max(0, width - name - DURATION_WIDTH - 1)

    def _view(self) -> tuple[int, int]:
        assert self.span_tree is not None
        if self.zoomed is not None:
            span = self.span_tree.spans[self.zoomed]
            return span.start_time_unix_nano, max(span.end_time_unix_nano,
                                                  span.start_time_unix_nano + 1)
        return self.span_tree.start_ns, max(self.span_tree.end_ns, self.span_tree.start_ns + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self.span_tree is None or not self.rows:
            text = "loading…" if self.span_tree is None else "no spans"
            return Strip([Segment(fit(text, width), DIM)] if y == 0 else []
                         ).adjust_cell_length(width)
        name_width, bar_width = self._columns()
        view_start, view_end = self._view()
        if y == 0:
            label = "span" if self.zoomed is None else "span (zoomed: z to reset)"
            return Strip([
                Segment(fit(label, name_width) + " ", HEADER),
                Segment(f"{'duration':>{DURATION_WIDTH - 1}} ", HEADER),
                Segment(ruler(view_start, view_end, bar_width, self.span_tree.start_ns), HEADER),
            ]).adjust_cell_length(width)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.rows):
            return Strip.blank(width)
        row = self.rows[index]
        strip = self._row_strip(row, width, name_width, bar_width, view_start, view_end)
        if index == self.cursor:
            strip = strip.apply_style(CURSOR)
        return strip

    def _look(self, width: int) -> tuple:
        """Everything besides the row itself that a row's line depends on."""
        return (self.span_tree, width, self.zoomed, self.show_critical, self.matches,
                self.query_matches, self.log_levels)

    def _row_strip(self, row: WaterfallRow, width: int, name_width: int, bar_width: int,
                   view_start: int, view_end: int) -> Strip:
        """The row's line, drawn once: a jump or a fold redraws the whole view, and most
        of its rows were drawn before (rows are kept across folds, a folded one is new)."""
        self.strips.keep_for(self._look(width))
        cached = self.strips.get(row)
        if cached is not None:
            return cached
        look = RowLook(name_width, bar_width, view_start, view_end, self.matches,
                       self.query_matches, self.log_levels,
                       self._critical_segments() if self.show_critical else None)
        strip = Strip(row_segments(row, look))
        return self.strips.put(row, strip.adjust_cell_length(width))

    def set_log_levels(self, levels: dict[str, int]) -> None:
        """Mark the rows of spans that wrote logs (error-level ones stand out)."""
        if levels != self.log_levels:
            self.log_levels = levels
            self.refresh()

    def _critical_segments(self) -> dict[str, list[tuple[int, int]]]:
        if self._critical is None and self.span_tree is not None:
            self._critical = critical_segments(self.span_tree)
        return self._critical or {}

    # --- cursor -----------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def cursor_moved(self, index: int) -> None:
        self.post_message(self.Selected(self.selected_id))

    def on_click(self, event: events.Click) -> None:
        index = self.row_at(event.y)
        if index is not None:
            if index == self.cursor and event.chain == 2:
                self.action_toggle()
            self.cursor = index

    # --- folding ----------------------------------------------------------------------

    def action_toggle(self) -> None:
        """Fold or unfold the selected span. Only its own rows are removed or built: the
        rest of a 10,000-span trace is left as it is."""
        row, tree = self.selected, self.span_tree
        if row is None or not row.has_children or tree is None:
            return
        index = self.cursor
        rows = list(self.rows) if self.rows is self._all_rows else self.rows
        if row.collapsed:
            self.collapsed.discard(row.span_id)
            if not self.collapsed:  # all unfolded again: the rows made with the tree
                self._show_rows(self._all_rows, row.span_id, index)
                return
            unfold(tree, rows, index, self.collapsed)
        else:
            self.collapsed.add(row.span_id)
            fold(rows, index, self._position)
        self._show_rows(rows, row.span_id, index)

    def action_collapse_or_parent(self) -> None:
        row = self.selected
        if row is None:
            return
        if row.has_children and not row.collapsed:
            self.action_toggle()
        else:
            self.action_parent()

    def action_expand(self) -> None:
        row = self.selected
        if row is not None and row.collapsed:
            self.action_toggle()

    def action_collapse_all(self) -> None:
        if self.span_tree is None:
            return
        keep = self.selected_id
        self.collapsed = {s for s, kids in self.span_tree.children.items() if kids}
        # The cursor goes to the root holding the span it was on.
        root = (self.span_tree.ancestors(keep) or [keep])[0] if keep else None
        self._reflow(root)

    def action_expand_all(self) -> None:
        self.collapsed.clear()
        self._reflow(self.selected_id)

    # --- jumps ------------------------------------------------------------------------

    def action_parent(self) -> None:
        tree, selected = self.span_tree, self.selected_id
        parent = tree.parent_of(selected) if tree and selected else None
        if parent is not None:
            self.select(parent)

    def _jump(self, targets: Iterable[str], *, forward: bool) -> bool:
        """Select the next (or previous) span of ``targets`` in tree order, wrapping."""
        positions = sorted(self._position[t] for t in targets if t in self._position)
        if not positions:
            return False
        here = self._position.get(self.selected_id or "", -1)
        if forward:
            after = [p for p in positions if p > here]
            target = after[0] if after else positions[0]
        else:
            before = [p for p in positions if p < here]
            target = before[-1] if before else positions[-1]
        return self.select(self._order[target])

    def _errors(self) -> list[str]:
        spans = self.span_tree.spans if self.span_tree else {}
        return [s for s, span in spans.items() if span.status_code == StatusCode.ERROR]

    def action_next_error(self) -> None:
        if not self._jump(self._errors(), forward=True):
            self.notify("No error spans in this trace.", timeout=3)

    def action_previous_error(self) -> None:
        if not self._jump(self._errors(), forward=False):
            self.notify("No error spans in this trace.", timeout=3)

    def _critical_path(self) -> list[str]:
        if self._critical_order is None and self.span_tree is not None:
            self._critical_order = critical_path(self.span_tree)
        return self._critical_order or []

    def action_toggle_critical(self) -> None:
        self.show_critical = not self.show_critical
        self.refresh()

    def action_next_critical(self) -> None:
        self.show_critical = True
        self._jump(self._critical_path(), forward=True)
        self.refresh()

    def action_previous_critical(self) -> None:
        self.show_critical = True
        self._jump(self._critical_path(), forward=False)
        self.refresh()

    def action_next_match(self) -> None:
        """The next find match; with no find, the next span the list's query matched."""
        self._jump(self.matches or self.query_matches, forward=True)

    def action_previous_match(self) -> None:
        self._jump(self.matches or self.query_matches, forward=False)

    # --- zoom -------------------------------------------------------------------------

    def action_zoom(self) -> None:
        """Zoom the time axis to the selected span; on the zoomed span itself, zoom out."""
        selected = self.selected_id
        self.zoomed = None if selected == self.zoomed else selected
        self.refresh()

    def reset_zoom(self) -> bool:
        if self.zoomed is None:
            return False
        self.zoomed = None
        self.refresh()
        return True

