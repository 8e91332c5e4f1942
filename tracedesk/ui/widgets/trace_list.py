"""The trace list: one row per trace (start, root service and span, duration with a bar
relative to the slowest trace on screen, span count, errors, services)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tracedesk.analysis.time_axis import format_duration
from tracedesk.model import TraceSummary
from tracedesk.ui.text import fit, format_clock, service_colour
from tracedesk.ui.widgets.paged_list import HEADER, PagedList, PageFetcher

DIM = Style(dim=True)
ERROR = Style(color="#ff5f5f", bold=True)
BAR = Style(color="#5f87af")
NAME_ROOM, SERVICES_ROOM = 44, 48


class TraceList(PagedList[TraceSummary]):
    def __init__(self, fetch_page: PageFetcher, *, id: str | None = None) -> None:
        super().__init__(fetch_page, id=id)
        self._slowest = 1
        self._slowest_key: tuple = ()

    @staticmethod
    def _columns(width: int) -> tuple[int, int, int]:
        """Widths of the flexible columns: service, root name, services."""
        rest = max(10, width - (12 + 1 + 8 + 1 + 10 + 1 + 6 + 2 + 3))
        service = min(18, rest // 4)
        # Root span names take up to NAME_ROOM first; then the services list grows.
        services = min(SERVICES_ROOM, max(rest // 4, rest - service - NAME_ROOM))
        return service, rest - service - services, services

    def render_header(self, width: int) -> Strip:
        service, name, services = self._columns(width)
        return Strip([Segment(
            f"{'start':<12} {fit('service', service)} {fit('root span', name)} "
            f"{'duration':>8} {'':10} {'spans':>6} {'':2}{fit('services', services)}", HEADER)])

    def row_look(self, width: int) -> tuple:
        return width, self._slowest_visible()

    def render_row(self, t: TraceSummary, width: int) -> Strip:
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
        return Strip(segments)

    def _slowest_visible(self) -> int:
        """The longest duration among the rows on screen: bars are relative to it."""
        key = (self.scroll_offset.y, self.size.height, self.generation, len(self._pages))
        if key != self._slowest_key:
            top = self.scroll_offset.y
            bottom = min(self.total, top + self.size.height)
            rows = (self.cached_row(i) for i in range(top, bottom))
            self._slowest = max((r.duration_ns for r in rows if r is not None), default=1) or 1
            self._slowest_key = key
        return self._slowest

    @staticmethod
    def _bar(duration: int, width: int, slowest: int) -> str:
        eighths = round(width * 8 * duration / slowest)
        full, part = divmod(max(eighths, 1), 8)
        return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)[:width]
