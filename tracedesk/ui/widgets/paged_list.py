"""A virtualized list over a database query: draws only the rows on screen.

Rows are fetched a page at a time by the owner (in a worker thread) and kept in a small
cache; a row whose page has not arrived yet is drawn as a placeholder and repainted when it
does. A key that moves the view onto rows not read yet holds the frame briefly for them,
so a jump shows rows at once rather than placeholders first. Moving the cursor repaints
two lines, not the widget. Subclasses draw the header and one row; everything else
(paging, cursor, keys, mouse) is here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
from typing import Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer

from tracedesk.ui.text import fit
from tracedesk.ui.widgets.cursor_view import CursorView
from tracedesk.ui.widgets.strip_cache import StripCache

PAGE_SIZE = 200
MAX_PAGES = 30
# The longest a key's frame waits for the pages it shows (a page reads in 1–3 ms). Without
# the wait, the rows came in a second frame, which Textual's 60 fps pacing sends 17–33 ms
# after the first.
HOLD_SECONDS = 0.02

DIM = Style(dim=True)
CURSOR = Style(bgcolor="#264f78")
HEADER = Style(bold=True, color="#87afd7")

T = TypeVar("T")
PageFetcher = Callable[[int, int], None]  # (page index, generation) -> requests a page


class PagedList(CursorView, Generic[T]):
    """Shows ``total`` rows; pages come from the owner through ``set_page``."""

    class CursorMoved(Message):
        """The cursor moved (to ``index``)."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Chosen(Message):
        """The row under the cursor was double-clicked."""

    def __init__(self, fetch_page: PageFetcher, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._fetch_page = fetch_page
        self.total = 0
        self.generation = 0
        self._pages: OrderedDict[int, list[T]] = OrderedDict()
        self._requested: set[int] = set()
        self.empty_lines: tuple[str, ...] = ()  # what an empty list says, under its header
        self._hold: ExitStack | None = None  # frames held until ``_awaited`` pages arrive
        self._hold_timer: Timer | None = None
        self._awaited: set[int] = set()
        self.strips = StripCache()  # G/g and paging redraw every line

    # --- for subclasses -----------------------------------------------------------------

    def render_header(self, width: int) -> Strip:
        raise NotImplementedError

    def render_row(self, item: T, width: int) -> Strip:
        raise NotImplementedError

    def row_look(self, width: int) -> tuple:
        """Everything besides the item that ``render_row`` draws from (a drawn row is kept
        for each look: bars scaled to the rows on screen differ at the top and the end)."""
        return (width,)

    # --- data -------------------------------------------------------------------------

    def reset(self, total: int, generation: int, empty_lines: tuple[str, ...] = ()) -> None:
        """New data: forget cached pages, show ``total`` rows (or ``empty_lines``)."""
        self.empty_lines = empty_lines
        self.total = total
        self.generation = generation
        self._pages.clear()
        self._requested.clear()
        self.strips.clear()
        self._release()  # the pages held for belong to the old data
        self.set_line_count(total + 1)
        if self.cursor >= total:  # the list shrank under the cursor
            self.cursor = max(0, total - 1)
        self.refresh()

    def set_page(self, page: int, generation: int, rows: list[T]) -> None:
        if generation != self.generation:
            return  # an answer to an older question
        self._requested.discard(page)
        self._pages[page] = rows
        if len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        self.refresh()
        self._awaited.discard(page)
        if not self._awaited:
            self._release()

    def key_moved(self) -> None:
        """Ask now for the pages of the rows the key brought on screen (not once its frame
        is drawn) and hold frames until they come, at most ``HOLD_SECONDS``."""
        top = self.scroll_offset.y
        bottom = min(self.total, top + max(1, self.size.height - 1))
        missing = {page for page in range(top // PAGE_SIZE, (bottom - 1) // PAGE_SIZE + 1)
                   if page not in self._pages} if bottom > top else set()
        for page in missing - self._requested:
            self._requested.add(page)
            self._fetch_page(page, self.generation)
        missing -= self._pages.keys()  # an owner may serve a page at once (from memory)
        if missing:
            self._awaited |= missing
            if self._hold is None:
                self._hold = ExitStack()
                self._hold.enter_context(self.app.batch_update())
                # The app's timer: it still fires if this widget goes away meanwhile.
                self._hold_timer = self.app.set_timer(HOLD_SECONDS, self._release)

    def _release(self) -> None:
        """Let frames go out again (the pages came, the wait ran out, or the data changed)."""
        self._awaited.clear()
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None
        if self._hold is not None:
            hold, self._hold = self._hold, None
            hold.close()
            if self.app.screen_stack:
                self.app.screen.check_idle()  # what was held back is drawn at once

    def on_unmount(self) -> None:
        self._release()

    def row(self, index: int) -> T | None:
        """The row at ``index``, or None while its page is being fetched."""
        page = index // PAGE_SIZE
        if page not in self._pages and 0 <= index < self.total and page not in self._requested:
            self._requested.add(page)
            # Not during rendering: ask once the current refresh is done.
            self.call_later(self._fetch_page, page, self.generation)
        return self.cached_row(index)

    def cached_row(self, index: int) -> T | None:
        page = self._pages.get(index // PAGE_SIZE)
        offset = index % PAGE_SIZE
        return page[offset] if page is not None and offset < len(page) else None

    @property
    def selected(self) -> T | None:
        return self.row(self.cursor)

    # --- drawing ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self.render_header(width).adjust_cell_length(width)
        index = self.scroll_offset.y + y - 1
        if index >= self.total:
            if self.total == 0 and 0 < y - 1 < len(self.empty_lines) + 1:
                return Strip([Segment(fit("  " + self.empty_lines[y - 2], width), DIM)])
            return Strip.blank(width)
        item = self.row(index)
        strip = (Strip([Segment(fit("  …", width), DIM)]) if item is None
                 else self._row_strip(item, width))
        if index == self.cursor:
            strip = strip.apply_style(CURSOR)
        return strip

    def _row_strip(self, item: T, width: int) -> Strip:
        look = self.row_look(width)
        strip = self.strips.get(item, look)
        if strip is None:
            strip = self.strips.put(item, self.render_row(item, width).adjust_cell_length(width),
                                    look)
        return strip

    # --- cursor -----------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return self.total

    def cursor_moved(self, index: int) -> None:
        self.post_message(self.CursorMoved(index))

    def on_click(self, event: events.Click) -> None:
        index = self.row_at(event.y)
        if index is not None:
            if index == self.cursor and event.chain == 2:
                self.post_message(self.Chosen())
            self.cursor = index
