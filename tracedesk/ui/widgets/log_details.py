"""One log record in full: level, time, service, the whole body, ids and attributes."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from tracedesk.model import LogRecord
from tracedesk.store.log_queries import severity_name
from tracedesk.ui.text import clean, format_clock, service_colour
from tracedesk.ui.widgets.detail_blocks import (
    DIM,
    SECTION,
    Block,
    KeyValues,
    attributes_block,
    id_text,
    value_text,
)
from tracedesk.ui.widgets.log_list import severity_style


def log_block(record: LogRecord, resource: dict[str, Any]) -> Block:
    level = severity_name(record.severity_number, record.severity_text)
    title = Text(overflow="fold")
    title.append(level, severity_style(level))
    title.append(f"  {format_clock(record.time_unix_nano)}  ", DIM)
    title.append(clean(record.service_name) or "(unknown service)",
                 Style(color=service_colour(record.service_name)))

    rows = KeyValues()
    severity = Text(f"{record.severity_number}")
    if record.severity_text:
        severity.append(f"  {clean(record.severity_text)}", DIM)
    rows.add_row("severity", severity)
    if record.trace_id:
        rows.add_row("trace id", id_text(record.trace_id))
        rows.add_row("span id", id_text(record.span_id))
    if record.event_name:
        rows.add_row("event", value_text(record.event_name))
    if record.scope_name:
        rows.add_row("scope", value_text(record.scope_name))

    body = Block().add(Text("Body", SECTION)).add(value_text(record.body), 2)
    return (Block().add(title).add(rows)
            .extend(body)
            .extend(attributes_block("Attributes", record.attributes))
            .extend(attributes_block("Resource attributes", resource)))



class LogDetails(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    LogDetails { padding: 0 1; }
    """

    def compose(self):
        yield Static(Text("No record selected", DIM), id="log-body")

    def show(self, record: LogRecord | None, resource: dict[str, Any]) -> None:
        body = self.query_one("#log-body", Static)
        body.update(log_block(record, resource) if record else Text("No record selected", DIM))
