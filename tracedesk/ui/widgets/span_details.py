"""The span-details panel: everything stored about one span, in labelled sections.

Every string shown here comes from telemetry and is untrusted: it is appended to Text objects
as plain text (never parsed as markup) after control characters are made visible. Each section
is one Static whose renderable is rebuilt on ``show``; the widgets themselves are mounted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tracedesk.analysis.time_axis import format_duration
from tracedesk.model import LogRecord, Span, SpanKind, StatusCode
from tracedesk.store.log_queries import severity_name
from tracedesk.ui.text import clean, format_clock, service_colour
from tracedesk.ui.widgets.detail_blocks import (
    DIM,
    KEY,
    MAX_VALUE_CHARS,
    SECTION,
    Block,
    KeyValues,
    as_dict,
    attributes_block,
    clean_block,
    id_text,
    none_text,
    value_text,
)

ERROR = Style(color="#ff5f5f", bold=True)
ERROR_TEXT = Style(color="#ff5f5f")
STATUS_STYLES = {StatusCode.UNSET: DIM, StatusCode.OK: Style(color="#87d787", bold=True),
                 StatusCode.ERROR: ERROR}

KEY_WIDTH = 11  # the longest overview key, "descendants"
EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace")


@dataclass(frozen=True, slots=True)
class SpanContext:
    """What the panel needs to know about a span's place in its trace."""

    trace_start_ns: int  # the trace's earliest start, for "+12.3ms" offsets
    self_time_ns: int
    resource: dict[str, Any]  # the span's resource attributes ({} if unknown)
    parent_name: str | None  # None for a root
    orphan: bool  # has a parent id but the parent was not received
    descendant_count: int
    # Log records to list, each with the name of the span that wrote it, oldest first.
    logs: tuple[tuple[LogRecord, str], ...] = ()
    logs_of_trace: bool = False  # the whole trace's records, not only this span's


# --- text helpers (pure) ------------------------------------------------------------------


def kind_text(kind: int) -> Text:
    try:
        return Text(SpanKind(kind).name.lower())
    except ValueError:
        return Text.assemble(str(kind), (" (unknown kind)", DIM))


def offset_text(ns: int) -> str:
    return format_duration(ns) if ns < 0 else "+" + format_duration(ns)


def overview_block(span: Span, context: SpanContext) -> Block:
    title = Text(overflow="fold")
    title.append(clean(span.name) or "(no name)", Style(bold=True))
    title.append("  ")
    title.append(clean(span.service_name) or "(unknown service)",
                 Style(color=service_colour(span.service_name)))

    rows = KeyValues(KEY_WIDTH)
    rows.add_row("kind", kind_text(span.kind))
    status = Text(overflow="fold")
    try:
        code = StatusCode(span.status_code)
        status.append(code.name, STATUS_STYLES[code])
    except ValueError:
        status.append(f"{span.status_code} (unknown status)", DIM)
    if span.status_message:
        status.append("  ")
        status.append(clean_block(span.status_message[:MAX_VALUE_CHARS]),
                      ERROR_TEXT if span.status_code == StatusCode.ERROR else None)
    rows.add_row("status", status)
    rows.add_row("duration", Text(format_duration(span.duration_ns)))
    rows.add_row("self time", Text(format_duration(context.self_time_ns)))
    start = Text(offset_text(span.start_time_unix_nano - context.trace_start_ns))
    start.append(f"  at {format_clock(span.start_time_unix_nano)}", DIM)
    rows.add_row("start", start)
    rows.add_row("descendants", Text(f"{context.descendant_count:,}"))
    rows.add_row("trace id", id_text(span.trace_id))
    rows.add_row("span id", id_text(span.span_id))
    rows.add_row("parent", _parent_text(span, context))
    if span.trace_state:
        rows.add_row("trace state", value_text(span.trace_state))
    scope = Text(overflow="fold")
    if span.scope_name or span.scope_version:
        scope.append(clean(span.scope_name) or "(unnamed)")
        if span.scope_version:
            scope.append(f"  {clean(span.scope_version)}", DIM)
    else:
        scope.append("none", DIM)
    rows.add_row("scope", scope)
    return Block().add(title).add(rows)


def _parent_text(span: Span, context: SpanContext) -> Text:
    if not span.parent_span_id:
        return Text("root", DIM)
    text = id_text(span.parent_span_id)
    if context.orphan:
        text.append("  (not received)", Style(dim=True, italic=True))
    elif context.parent_name is not None:
        text.append("  ")
        text.append(clean(context.parent_name))
    return text


EVENT_INDENT = 2 + 9 + 2  # section indent, the offset column, a gap: the name's column


def events_block(span: Span) -> Block:
    events = [e for e in span.events if isinstance(e, dict)]
    block = Block().add(Text(f"Events ({len(events)})", SECTION))
    if not events:
        return block.add(none_text(), 2)
    for event in events:
        _add_event(block, event, span.start_time_unix_nano)
    return block


def _add_event(block: Block, event: dict[str, Any], span_start: int) -> None:
    name = str(event.get("name", ""))
    attributes = as_dict(event.get("attributes"))
    is_exception = name == "exception"
    head = Text(overflow="fold")
    when = event.get("time_unix_nano")
    stamp = offset_text(when - span_start) if isinstance(when, int) else "?"
    head.append(f"{stamp:>9}  ", KEY)
    head.append(clean(name) or "(no name)", ERROR if is_exception else Style(bold=True))
    dropped = event.get("dropped_attributes_count")
    if dropped:
        head.append(f"  ({dropped} attributes dropped)", DIM)
    block.add(head, 2)
    if is_exception:
        _add_exception(block, attributes)
        attributes = {k: v for k, v in attributes.items() if k not in EXCEPTION_KEYS}
    if attributes:
        rows = KeyValues()
        for key in sorted(attributes, key=str):
            rows.add_row(Text(clean(str(key)), KEY), value_text(attributes[key]))
        block.add(rows, EVENT_INDENT)


def _add_exception(block: Block, attributes: dict[str, Any]) -> None:
    """Type and message on one prominent line, then the whole stack trace."""
    summary = Text(overflow="fold")
    if "exception.type" in attributes:
        summary.append_text(value_text(attributes["exception.type"], ERROR))
    if "exception.message" in attributes:
        if summary:
            summary.append(": ", ERROR_TEXT)
        summary.append_text(value_text(attributes["exception.message"], ERROR_TEXT))
    if summary:
        block.add(summary, EVENT_INDENT)
    if "exception.stacktrace" in attributes:
        block.add(value_text(attributes["exception.stacktrace"]), EVENT_INDENT)


def link_prompt(link: dict[str, Any]) -> Text:
    text = Text(overflow="fold")
    text.append("trace ", KEY)
    text.append_text(id_text(link.get("trace_id")))
    text.append("\nspan  ", KEY)
    text.append_text(id_text(link.get("span_id")))
    if link.get("trace_state"):
        text.append("\nstate ", KEY)
        text.append_text(value_text(link["trace_state"]))
    attributes = as_dict(link.get("attributes"))
    for key in sorted(attributes, key=str):
        text.append("\n  ")
        text.append(clean(str(key)), KEY)
        text.append(" = ", DIM)
        text.append_text(value_text(attributes[key]))
    return text


# --- the widget ---------------------------------------------------------------------------


def logs_block(context: SpanContext, span_start: int) -> Block:
    """The span's (or the trace's) log records: offset from the span's (trace's) start, level,
    body, and for the whole trace the span that wrote each."""
    scope = "trace" if context.logs_of_trace else "span"
    title = Text(f"Logs of this {scope} ({len(context.logs)})", SECTION)
    title.append("  L: " + ("this span only" if context.logs_of_trace else "whole trace"), DIM)
    block = Block().add(title)
    if not context.logs:
        return block.add(none_text(), 2)
    start = context.trace_start_ns if context.logs_of_trace else span_start
    rows = KeyValues()  # a long body wraps under itself, not under the time
    for record, span_name in context.logs:
        level = severity_name(record.severity_number, record.severity_text)
        key = Text(f"{offset_text(record.time_unix_nano - start):>9}  ", KEY)
        key.append(f"{level:<5}", LEVEL_STYLES.get(level))
        body = value_text(record.body)
        if context.logs_of_trace and span_name:
            body.append(f"  ← {clean(span_name)}", DIM)
        rows.add_row(key, body)
    return block.add(rows, 2)


LEVEL_STYLES = {"WARN": Style(color="#ffd75f", bold=True), "ERROR": ERROR, "FATAL": ERROR,
                "DEBUG": DIM, "TRACE": DIM}


class SpanDetails(VerticalScroll):
    """Details of the selected span; ``show`` is cheap enough to call on every cursor move."""

    DEFAULT_CSS = """
    SpanDetails {
        height: 1fr;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    SpanDetails > Static {
        height: auto;
        margin-bottom: 1;
    }
    SpanDetails > .span-details--placeholder {
        display: none;
        color: $text-muted;
    }
    SpanDetails.-empty > .span-details--placeholder {
        display: block;
    }
    SpanDetails.-empty > .span-details--section,
    SpanDetails.-empty > .span-details--links,
    SpanDetails.-no-links > .span-details--links {
        display: none;
    }
    SpanDetails > .span-details--links-title {
        margin-bottom: 0;
    }
    SpanDetails > .span-details--links {
        border: none;
        padding: 0;
        margin: 0 0 1 2;
        max-height: 20;
        &:focus {
            border: none;
        }
    }
    """

    BINDINGS = [
        Binding("j", "scroll_down", "Scroll down", show=False, id="span_details.down"),
        Binding("k", "scroll_up", "Scroll up", show=False, id="span_details.up"),
    ]

    class LinkChosen(Message):
        """The user chose a link: open ``trace_id`` at ``span_id`` (ids exactly as stored)."""

        def __init__(self, trace_id: str, span_id: str) -> None:
            super().__init__()
            self.trace_id = trace_id
            self.span_id = span_id

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        section = "span-details--section"
        self._placeholder = Static(Text("No span selected", DIM),
                                   classes="span-details--placeholder")
        self._overview = Static(classes=f"{section} span-details--overview")
        self._attributes = Static(classes=f"{section} span-details--attributes")
        self._resource = Static(classes=f"{section} span-details--resource")
        self._events = Static(classes=f"{section} span-details--events")
        self._logs = Static(classes=f"{section} span-details--logs")
        self._links_title = Static(classes=f"{section} span-details--links-title")
        self._links = OptionList(classes="span-details--links")
        self._link_ids: list[tuple[str, str]] = []
        self._shown: tuple[Span | None, SpanContext | None] = (None, None)
        self.add_class("-empty", "-no-links")

    def compose(self) -> ComposeResult:
        yield self._placeholder
        yield self._overview
        yield self._attributes
        yield self._resource
        yield self._events
        yield self._logs
        yield self._links_title
        yield self._links

    @property
    def span(self) -> Span | None:
        """The span on show, if any."""
        return self._shown[0]

    def show(self, span: Span | None, context: SpanContext | None) -> None:
        """Show ``span`` (None: the "no span selected" placeholder)."""
        previous, previous_context = self._shown
        if span is previous and context == previous_context:
            return  # the cursor landed on the span already shown
        self._shown = (span, context)
        self.set_class(span is None, "-empty")
        if span is None:
            self._set_links([])
            return
        if context is None:
            context = SpanContext(span.start_time_unix_nano, span.duration_ns, {},
                                  None, False, 0)
        self._overview.update(overview_block(span, context))
        self._attributes.update(attributes_block("Span attributes", span.attributes))
        self._resource.update(
            attributes_block("Resource attributes", context.resource))
        self._events.update(events_block(span))
        self._logs.update(logs_block(context, span.start_time_unix_nano))
        links = [link for link in span.links if isinstance(link, dict)]
        title = Text(f"Links ({len(links)})", SECTION)
        if not links:
            title.append("\n  ")
            title.append_text(none_text())
        self._links_title.update(title)
        self._set_links(links)
        if previous is None or (previous.trace_id, previous.span_id) != (span.trace_id,
                                                                         span.span_id):
            self.scroll_home(animate=False)

    def _set_links(self, links: list[dict[str, Any]]) -> None:
        self.set_class(not links, "-no-links")
        if not links and self._links.has_focus:
            self.focus()  # the list is about to be hidden: keep the keyboard in the panel
        if not links and not self._link_ids:
            return  # nothing to clear: skip touching the list on the common no-link span
        # The ids go out exactly as stored; only what is drawn is cleaned.
        self._link_ids = [(str(link.get("trace_id") or ""), str(link.get("span_id") or ""))
                          for link in links]
        self._links.clear_options()
        options: list[Option | None] = []
        for link in links:
            options += [Option(link_prompt(link)), None]  # None: a divider between links
        self._links.add_options(options[:-1])
        if links:
            self._links.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list is not self._links:
            return
        event.stop()
        if 0 <= event.option_index < len(self._link_ids):
            self.post_message(self.LinkChosen(*self._link_ids[event.option_index]))
