"""A DataTable that moves with the same keys as the lists: vim keys, pages, first and last."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class KeyTable(DataTable):
    """For the small tables (service graph edges, exemplars): ``j`` ``k`` ``g`` ``G``
    ``ctrl+f`` ``ctrl+b`` as in the trace list and the waterfall."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="table.up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("g,home", "scroll_top", "First", show=False, id="table.first"),
        Binding("G,end", "scroll_bottom", "Last", show=False, id="table.last"),
    ]

    def _update_dimensions(self, new_rows) -> None:  # type: ignore[no-untyped-def]
        super()._update_dimensions(new_rows)
        # Textual measures new rows' columns when idle, but keys its row caches by an update
        # count that the measuring leaves alone: rows drawn before it (a refresh in between)
        # kept their old, too narrow columns until something else changed.
        self._update_count += 1
        self.refresh()
