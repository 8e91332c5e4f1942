"""The log list: time, level, service, a trace marker and the body, one record per line."""

from __future__ import annotations

from typing import Any

import orjson
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tracedesk.model import LogRecord
from tracedesk.store.log_queries import severity_name
from tracedesk.ui.text import fit, format_clock, service_colour
from tracedesk.ui.widgets.paged_list import HEADER, PagedList

SEVERITY_STYLES = {
    "TRACE": Style(dim=True),
    "DEBUG": Style(color="#87afd7"),
    "INFO": Style(color="#87d787"),
    "WARN": Style(color="#ffd75f", bold=True),
    "ERROR": Style(color="#ff5f5f", bold=True),
    "FATAL": Style(color="#ffffff", bgcolor="#af0000", bold=True),
}
TRACE_MARK = "↗"  # the record belongs to a trace: enter opens it
DIM = Style(dim=True)
SERVICE_WIDTH = 16


def severity_style(name: str) -> Style | None:
    return SEVERITY_STYLES.get(name)


def one_line(body: Any, width: int) -> str:
    """At most ``width`` characters of a body on one line: strings as they are (line breaks
    shown as ⏎), others as JSON. Cut first: a body can be megabytes, drawn on every line."""
    if isinstance(body, str):
        text = body[:width + 1]
    else:
        try:
            text = orjson.dumps(body).decode()[:width + 1]
        except TypeError:  # integers beyond 64 bits
            text = repr(body)[:width + 1]
    return text.replace("\r\n", "⏎").replace("\n", "⏎")


class LogList(PagedList[LogRecord]):
    def render_header(self, width: int) -> Strip:
        return Strip([Segment(f"{'time':<12} {'level':<5} {fit('service', SERVICE_WIDTH)}   "
                              "body", HEADER)])

    def render_row(self, record: LogRecord, width: int) -> Strip:
        level = severity_name(record.severity_number, record.severity_text)
        body_width = max(0, width - (12 + 1 + 5 + 1 + SERVICE_WIDTH + 1 + 2))
        return Strip([
            Segment(format_clock(record.time_unix_nano) + " ", DIM),
            Segment(fit(level, 5), severity_style(level)),
            Segment(" "),
            Segment(fit(record.service_name, SERVICE_WIDTH) + " ",
                    Style(color=service_colour(record.service_name))),
            Segment(TRACE_MARK + " " if record.trace_id else "  ", DIM),
            Segment(fit(one_line(record.body, body_width), body_width)),
        ])
