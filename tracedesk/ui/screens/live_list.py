"""What the live list screens (traces, logs) share: reloading on new data, follow mode.

Following, the newest row is at the top with the cursor on it. Once the user moves away, the
list stays still: rows newer than the one that was at the top are left out ("+N new") and
the selected row keeps its line even when late, older rows sort in above it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from rich.text import Text
from textual import on, work
from textual.widget import Widget
from textual.widgets import Static

from tracedesk.config import DEFAULT_GRPC_PORT
from tracedesk.store.reader import Reader
from tracedesk.ui.screens.filter_screen import FilterScreen
from tracedesk.ui.text import clean
from tracedesk.ui.widgets.paged_list import PAGE_SIZE, PagedList

if TYPE_CHECKING:
    from tracedesk.ui.app import ReceiverLine

T = TypeVar("T")
SEARCH_ROWS = 50  # how far from where it should be a reload looks for the selected row


# Pages this close to an end skip few index entries: 50,000 log rows cost about 4 ms.
QUICK_PAGE_SKIP = 50_000


class ListSource(Protocol[T]):
    """One question a list asks (its order and filter fixed), answered by a Reader."""

    def count(self, reader: Reader) -> int: ...

    def page(self, reader: Reader, offset: int, limit: int, total: int | None = None
             ) -> list[T]:
        """Rows ``[offset, offset + limit)``; ``total`` (when known) lets deep pages be read
        from the nearer end."""
        ...

    def position(self, reader: Reader, item: T) -> int:
        """How many rows come before ``item`` (which need not be stored any more)."""
        ...

    def refreshed(self, reader: Reader, item: T) -> T | None:
        """The item as stored now (it may have changed, or be gone)."""
        ...

    def key(self, item: T) -> Hashable:
        """What identifies the item across reloads (its values may change)."""
        ...

    def quick(self) -> bool:
        """Whether any page within ``QUICK_PAGE_SKIP`` rows of either end reads in a few
        milliseconds (an index gives the order, no filter skips rows)."""
        ...


def nothing_received(receiver: ReceiverLine, what: str) -> tuple[str, ...]:
    """Where to send telemetry, for a list that has none of ``what`` yet."""
    if receiver.grpc_address is None or receiver.http_address is None:
        return (f"No {what} in this database.", f"Not receiving: {receiver.text}.")
    return (f"No {what} yet.", "",
            f"Point an OpenTelemetry SDK, Collector or Alloy at {receiver.grpc_address} "
            f"(OTLP/gRPC) or {receiver.http_address} (OTLP/HTTP),",
            f"e.g. OTEL_EXPORTER_OTLP_ENDPOINT={receiver.http_address} "
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf,",
            f"or run `{demo_command(receiver.grpc_address)}` in another terminal to see a "
            "sample shop.")


def demo_command(grpc_address: str) -> str:
    """``tracedesk demo``, pointed at this receiver when it is not on the demo's default."""
    if grpc_address.rsplit(":", 1)[-1] == str(DEFAULT_GRPC_PORT):  # the demo's default
        return "tracedesk demo"
    return f"tracedesk demo --endpoint {grpc_address}"


@dataclass(frozen=True)
class _Snapshot(Generic[T]):
    generation: int
    total: int
    hidden_new: int
    pages: dict[int, list[T]]  # the pages on screen, the first and the last
    moved_by: int  # how far the row selected when the reload began has moved (paused)


class LiveListScreen(FilterScreen, Generic[T]):
    """A screen around one ``PagedList``; subclasses say what it reads and how to label it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.following = True
        self.hidden_new = 0  # rows newer than the anchor, kept out of view while paused
        self._anchor: T | None = None  # the top row when the user left follow mode
        self._generation = 0
        self._banner: str | None = None

    # --- for subclasses -----------------------------------------------------------------

    @property
    def live_list(self) -> PagedList[T]:
        raise NotImplementedError

    def filter_target(self) -> Widget:
        return self.live_list

    def source(self) -> ListSource[T]:
        raise NotImplementedError

    def can_follow(self) -> bool:
        """Whether the current order puts the newest first (so there is something to follow)."""
        return True

    def empty_hint(self) -> tuple[str, ...]:
        """What the list says when it has no rows (a blank line comes first)."""
        return ()

    def nothing_received(self, what: str) -> tuple[str, ...]:
        """The hint of a list that is empty because nothing was received yet."""
        return nothing_received(self.app.receiver, what)

    def update_banner(self) -> None:
        """Show the list's state (following, filter, "+N new"): see ``show_banner``."""

    def show_banner(self, parts: list[str]) -> None:
        """The line above the list. Unchanged text is not set again: an update lays the
        screen out anew, which a reload on every commit would pay for nothing."""
        text = " · ".join(parts)
        if text != self._banner:
            self._banner = text
            banner = self.query_one("#list-banner", Static)
            banner.update(Text(clean(text)))  # filters hold typed text: never markup
            banner.set_class(bool(self.hidden_new), "has-new")

    # --- data -------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.reload()  # while another screen was on top, this one did not follow new data

    def reload(self, *, keep_selection: bool = True) -> None:
        """Re-read after new data or a change of order/filter (in a worker). While paused,
        the selected row stays selected unless ``keep_selection`` is False."""
        self._generation += 1
        following = self.following or not self.can_follow()
        anchor = None if following else self._anchor
        keep = self.live_list.selected if keep_selection and not self.following else None
        self._load(self._generation, self.source(), anchor, keep, self.live_list.cursor,
                   self._pages_to_keep(), self.live_list.size.height)

    @work(thread=True, exclusive=True, group="live-list", exit_on_error=False)
    def _load(self, generation: int, source: ListSource[T], anchor: T | None,
              keep: T | None, kept_at: int, wanted: set[int], height: int) -> None:
        def query(reader: Reader) -> _Snapshot[T]:
            total = source.count(reader)
            hidden = source.position(reader, anchor) if anchor is not None else 0
            shown = total - hidden
            # Read with the count the pages the user sees (and the two ends), so a reload
            # never shows placeholders where rows were, and G finds its rows ready.
            # The last screenful can straddle two pages.
            ends = {0, max(0, shown - 1) // PAGE_SIZE, max(0, shown - height) // PAGE_SIZE}
            pages = {page: source.page(reader, hidden + page * PAGE_SIZE, PAGE_SIZE, total)
                     for page in wanted | ends if page * PAGE_SIZE < max(shown, 1)}
            now = source.refreshed(reader, keep) if keep is not None else None
            moved = source.position(reader, now) - hidden - kept_at if now is not None else 0
            return _Snapshot(generation, total, hidden, pages, moved)

        snapshot = self.app.data.read(query)
        self.app.call_from_thread(self._show, snapshot)

    def _show(self, snap: _Snapshot[T]) -> None:
        if snap.generation != self._generation:
            return
        live_list = self.live_list
        selected = live_list.cached_row(live_list.cursor)  # keys may have moved it meanwhile
        self.hidden_new = snap.hidden_new
        live_list.reset(snap.total - snap.hidden_new, snap.generation, self.empty_hint())
        for page, rows in snap.pages.items():
            live_list.set_page(page, snap.generation, rows)
        if self.following:
            live_list.cursor = 0
        else:
            moved = snap.moved_by
            if selected is not None:
                moved = self._moved(selected, live_list.cursor + moved, moved)
            if moved:
                # Rows sorted in above the selection: shift the view and the cursor with
                # them, so the same row stays on the same line.
                live_list.scroll_to(y=live_list.scroll_offset.y + moved, animate=False)
                live_list.cursor = max(0, min(live_list.total - 1, live_list.cursor + moved))
        self.update_banner()

    def _moved(self, selected: T, near: int, moved: int) -> int:
        """How far ``selected`` moved, found by key in the new pages around ``near``. The
        reload measured its selection when it began; a key pressed since then selected
        another row, which late rows may have passed differently."""
        live_list = self.live_list
        source, cursor = self.source(), live_list.cursor
        key = source.key(selected)
        for index in sorted(range(max(0, near - SEARCH_ROWS), near + SEARCH_ROWS + 1),
                            key=lambda i: abs(i - near)):
            row = live_list.cached_row(index)
            if row is not None and source.key(row) == key:
                return index - cursor
        return moved

    def _pages_to_keep(self) -> set[int]:
        """The pages of the rows on screen (the view may shift by a few rows)."""
        live_list = self.live_list
        top = max(0, live_list.scroll_offset.y - 5)
        bottom = live_list.scroll_offset.y + live_list.size.height + 5
        return set(range(top // PAGE_SIZE, bottom // PAGE_SIZE + 1))

    def request_page(self, page: int, generation: int) -> None:
        """Given to the list widget: it asks for pages as they scroll into view. A quick
        page is read at once on the event loop: a worker thread's start and its answer's
        way back cost more than the read, and the frame the key holds waits for both."""
        source, hidden = self.source(), self.hidden_new
        total = self.live_list.total + hidden
        offset = hidden + page * PAGE_SIZE
        if source.quick() and min(offset, total - offset) <= QUICK_PAGE_SKIP:
            done, rows = self.app.data.read_now(
                lambda reader: source.page(reader, offset, PAGE_SIZE, total))
            if done:
                self.live_list.set_page(page, generation, rows or [])
                return
        self._fetch_page(page, generation, source, hidden, total)

    @work(thread=True, group="live-list-pages", exit_on_error=False)
    def _fetch_page(self, page: int, generation: int, source: ListSource[T],
                    hidden: int, total: int) -> None:
        rows = self.app.data.read(
            lambda reader: source.page(reader, hidden + page * PAGE_SIZE, PAGE_SIZE, total))
        self.app.call_from_thread(self.live_list.set_page, page, generation, rows)

    # --- follow mode ------------------------------------------------------------------

    @on(PagedList.CursorMoved)
    def _cursor_moved(self, event: PagedList.CursorMoved) -> None:
        if event.index > 0:
            self.pause_following()

    def pause_following(self) -> None:
        """Keep the list still: newer rows are counted ("+N new"), not shown."""
        if not self.can_follow() or not self.following:
            return
        self.following = False
        self._anchor = self.live_list.row(0)
        self.update_banner()

    def follow(self) -> None:
        """Follow again: newest at the top, cursor on it."""
        self.following = True
        self._anchor = None
        self.reload(keep_selection=False)
