"""A virtual list of lines under a one-line header, with a cursor row moved by keys.

The lists (traces, logs, metrics) and the waterfall draw their lines themselves (Line API);
this is what they share: the cursor, its keys, repainting only the two lines it moves
between, and keeping it on screen.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.reactive import reactive
from textual.scroll_view import ScrollView


class CursorView(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="cursor.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="cursor.up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False,
                id="cursor.page_down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="cursor.page_up"),
        Binding("g,home", "first", "First", show=False, id="cursor.first"),
        Binding("G,end", "last", "Last", show=False, id="cursor.last"),
    ]

    cursor: reactive[int] = reactive(0, repaint=False, always_update=True)

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def cursor_moved(self, index: int) -> None:
        """Called after the cursor moved to ``index`` (to tell the screen)."""

    def watch_cursor(self, old: int, new: int) -> None:
        # Content lines (the header is line 0): refresh_line subtracts the scroll offset
        # itself, so subtracting it here too repainted the wrong lines once scrolled.
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        visible = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.cursor_moved(new)

    def _move(self, delta: int) -> None:
        if self.row_count:
            self.cursor = max(0, min(self.row_count - 1, self.cursor + delta))

    def action_cursor_down(self) -> None:
        self._move(1)

    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_page_down(self) -> None:
        self._move(max(1, self.size.height - 2))

    def action_page_up(self) -> None:
        self._move(-max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._move(-self.row_count)

    def action_last(self) -> None:
        self._move(self.row_count)

    def row_at(self, y: int) -> int | None:
        """The row index drawn at line ``y`` of the widget (None for the header or below)."""
        index = self.scroll_offset.y + y - 1
        return index if y >= 1 and 0 <= index < self.row_count else None
