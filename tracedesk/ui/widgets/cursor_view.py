"""A virtual list of lines under a one-line header, with a cursor row moved by keys.

The lists (traces, logs, metrics) and the waterfall draw their lines themselves (Line API);
this is what they share: the cursor, its keys, repainting only the two lines it moves
between, keeping it on screen, and a scrollbar that is cheap to redraw.
"""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget


class StripScrollBar(ScrollBar):
    """Textual's vertical scrollbar, drawn straight to strips.

    Textual draws a scrollbar as a Rich renderable turned into lines and then styles it
    line by line: ~1 ms whenever the view scrolls, a sixth of such a frame. The bar is
    the same (Textual's own ``render_bar``, with its click and drag targets), made once
    per thumb position and size.
    """

    def __init__(self, vertical: bool = True, name: str | None = None, *,
                 thickness: int = 1) -> None:
        super().__init__(vertical, name, thickness=thickness)
        self._strips: list[Strip] = []
        self._strips_key: tuple = ()

    def render_lines(self, crop: Region) -> list[Strip]:
        bar = self.render()
        if not self.vertical or not isinstance(bar, ScrollBarRender):
            return super().render_lines(crop)
        filters = self.get_line_filters()
        width, height = self.size
        key = (width, height, bar.virtual_size, bar.window_size, bar.position, bar.style,
               tuple(filters))
        if key != self._strips_key:
            # As ScrollBarRender.__rich_console__ does, without a console.
            style = bar.style if isinstance(bar.style, Style) else Style.parse(bar.style)
            segments = bar.render_bar(
                size=height, virtual_size=bar.virtual_size, window_size=bar.window_size,
                position=bar.position, thickness=width, vertical=True,
                back_color=style.bgcolor or Color.parse("#555555"),
                bar_color=style.color or Color.parse("bright_magenta")).segments
            background = self.background_colors[1]
            base = self.visual_style.rich_style  # what Textual's drawing lays beneath
            strips = []
            for text, segment_style, _ in segments:
                strip = Strip([Segment(text, base + segment_style)], width)
                for line_filter in filters:
                    strip = strip.apply_filter(line_filter, background)
                strips.append(strip)
            self._strips, self._strips_key = strips, key
        strips = self._strips[crop.y:crop.bottom]
        if crop.x or crop.width != width:
            strips = [strip.crop(crop.x, crop.right) for strip in strips]
        return strips


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
    def vertical_scrollbar(self) -> ScrollBar:
        # Textual's own property (8.2), making a StripScrollBar instead of a ScrollBar.
        if self._vertical_scrollbar is None:
            self._vertical_scrollbar = bar = StripScrollBar(
                vertical=True, name="vertical", thickness=self.scrollbar_size_vertical)
            bar.display = False
            self.app._start_widget(self, bar)
        return self._vertical_scrollbar

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def cursor_moved(self, index: int) -> None:
        """Called after the cursor moved to ``index`` (to tell the screen)."""

    def key_moved(self) -> None:
        """Called after a key moved the cursor (and the view with it)."""

    def set_line_count(self, lines: int) -> None:
        """Make the content ``lines`` tall (the header included).

        Setting ``virtual_size`` lays the whole screen out again (it is a layout reactive),
        which turns a fold or a reload into a full-screen frame. These views' own size
        never depends on their content (they are ``1fr`` tall), so unless the scrollbar
        comes or goes, only the scroll range and the scrollbar are updated.
        """
        size = Size(self.size.width, lines)
        if size == self.virtual_size:
            return
        height = self.container_size.height
        if (not self.is_mounted or not height or self.styles.overflow_y != "auto"
                or (lines > height) != self.show_vertical_scrollbar):
            self.virtual_size = size
            return
        self.set_reactive(Widget.virtual_size, size)
        # What a layout would do for this widget (Textual's ScrollView._size_updated):
        # resize the scrollbar's thumb and keep the scroll offset in range.
        self._scroll_update(size)

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
            self.key_moved()

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
