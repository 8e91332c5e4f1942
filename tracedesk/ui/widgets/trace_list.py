"""The trace list: a virtualized ScrollView that draws only the rows on screen.

Rows are fetched a page at a time in a worker thread and kept in a small cache; a row
whose page has not arrived yet is drawn as a placeholder and repainted when it does.
Moving the cursor repaints two lines, not the widget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracedesk.analysis.waterfall import format_duration
from tracedesk.model import TraceSummary
from tracedesk.ui.text import fit, format_clock, service_colour

PAGE_SIZE = 200
MAX_PAGES = 30

DIM = Style(dim=True)
ERROR = Style(color="#ff5f5f", bold=True)
BAR = Style(color="#5f87af")
CURSOR = Style(bgcolor="#264f78")
HEADER = Style(bold=True, color="#87afd7")

PageFetcher = Callable[[int, int], None]  # (page index, generation) -> requests a page


class TraceList(ScrollView, can_focus=True):
    """Shows ``total`` traces; pages come from the owner through ``set_page``."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="trace_list.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="trace_list.up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False,
                id="trace_list.page_down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="trace_list.page_up"),
        Binding("g,home", "first", "First", show=False, id="trace_list.first"),
        Binding("G,end", "last", "Last", show=False, id="trace_list.last"),
    ]

    cursor: reactive[int] = reactive(0, repaint=False, always_update=True)

    class CursorMoved(Message):
        """The user moved away from the top (or back to it)."""

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
        self._pages: OrderedDict[int, list[TraceSummary]] = OrderedDict()
        self._requested: set[int] = set()
        self._slowest = 1
        self._slowest_key: tuple = ()

    # --- data -------------------------------------------------------------------------

    def reset(self, total: int, generation: int) -> None:
        """New data: forget cached pages, show ``total`` rows."""
        self.total = total
        self.generation = generation
        self._pages.clear()
        self._requested.clear()
        self.virtual_size = Size(self.size.width, total + 1)
        if self.cursor >= total:  # the list shrank under the cursor
            self.cursor = max(0, total - 1)
        self.refresh()

    def set_page(self, page: int, generation: int, rows: list[TraceSummary]) -> None:
        if generation != self.generation:
            return  # an answer to an older question
        self._requested.discard(page)
        self._pages[page] = rows
        if len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        self.refresh()

    def row(self, index: int) -> TraceSummary | None:
        """The row at ``index``, or None while its page is being fetched."""
        page = index // PAGE_SIZE
        if page not in self._pages and 0 <= index < self.total and page not in self._requested:
            self._requested.add(page)
            # Not during rendering: ask once the current refresh is done.
            self.call_later(self._fetch_page, page, self.generation)
        return self._cached_row(index)

    @property
    def selected(self) -> TraceSummary | None:
        return self.row(self.cursor)

    # --- drawing ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return Strip([Segment(self._header(width), HEADER)]).adjust_cell_length(width)
        index = self.scroll_offset.y + y - 1
        if index >= self.total:
            return Strip.blank(width)
        trace = self.row(index)
        strip = self._placeholder(width) if trace is None else self._line(trace, width)
        if index == self.cursor:
            strip = strip.apply_style(CURSOR)
        return strip

    @staticmethod
    def _columns(width: int) -> tuple[int, int, int]:
        """Widths of the flexible columns: service, root name, services."""
        rest = max(10, width - (12 + 1 + 8 + 1 + 10 + 1 + 6 + 2 + 3))
        service = min(18, rest // 4)
        services = min(30, rest // 4)
        return service, rest - service - services, services

    def _header(self, width: int) -> str:
        service, name, services = self._columns(width)
        return (f"{'start':<12} {fit('service', service)} {fit('root span', name)} "
                f"{'duration':>8} {'':10} {'spans':>6} {'':2}{fit('services', services)}")

    def _placeholder(self, width: int) -> Strip:
        return Strip([Segment(fit("  …", width), DIM)])

    def _line(self, t: TraceSummary, width: int) -> Strip:
        service, name, services = self._columns(width)
        slowest = self._slowest_visible()
        colour = Style(color=service_colour(t.root_service_name))
        root_name = t.root_span_name if t.has_root else f"{t.root_span_name} (root missing)"
        segments = [
            Segment(fit(format_clock(t.start_time_unix_nano), 12) + " ", DIM),
            Segment(fit(t.root_service_name, service) + " ", colour),
            Segment(fit(root_name, name) + " ", None if t.has_root else DIM),
            Segment(f"{format_duration(t.duration_ns):>8} "),
            Segment(self._bar(t.duration_ns, 10, slowest) + " ", BAR),
            Segment(f"{t.span_count:>6} "),
            Segment("✖ " if t.error_count else "  ", ERROR),
            Segment(fit(", ".join(t.services), services), DIM),
        ]
        return Strip(segments).adjust_cell_length(width)

    def _slowest_visible(self) -> int:
        """The longest duration among the rows on screen: bars are relative to it."""
        key = (self.scroll_offset.y, self.size.height, self.generation, len(self._pages))
        if key != self._slowest_key:
            top = self.scroll_offset.y
            bottom = min(self.total, top + self.size.height)
            rows = (self._cached_row(i) for i in range(top, bottom))
            self._slowest = max((r.duration_ns for r in rows if r is not None), default=1) or 1
            self._slowest_key = key
        return self._slowest

    def _cached_row(self, index: int) -> TraceSummary | None:
        page = self._pages.get(index // PAGE_SIZE)
        offset = index % PAGE_SIZE
        return page[offset] if page is not None and offset < len(page) else None

    @staticmethod
    def _bar(duration: int, width: int, slowest: int) -> str:
        eighths = round(width * 8 * duration / slowest)
        full, part = divmod(max(eighths, 1), 8)
        return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)[:width]

    # --- cursor -----------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old - self.scroll_offset.y + 1)
        self.refresh_line(new - self.scroll_offset.y + 1)
        self._scroll_cursor_into_view()
        self.post_message(self.CursorMoved(new))

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    def _move(self, delta: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, self.cursor + delta))

    def action_cursor_down(self) -> None:
        self._move(1)

    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_page_down(self) -> None:
        self._move(max(1, self.size.height - 2))

    def action_page_up(self) -> None:
        self._move(-max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._move(-self.total)

    def action_last(self) -> None:
        self._move(self.total)

    def on_click(self, event: events.Click) -> None:
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < self.total and event.y >= 1:
            if index == self.cursor and event.chain == 2:
                self.post_message(self.Chosen())
            self.cursor = index
