"""The span-details panel, driven in a small real app through Pilot."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.content import Content
from textual.geometry import Region
from textual.widgets import OptionList, Static

from tracedesk.model import Span, SpanKind, StatusCode
from tracedesk.ui.widgets.detail_blocks import clean_block, value_text
from tracedesk.ui.widgets.span_details import SpanContext, SpanDetails

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
PARENT = "00f067aa0ba902b7"


def make_span(**overrides: Any) -> Span:
    fields: dict[str, Any] = dict(
        trace_id=TRACE, span_id=SPAN, parent_span_id=PARENT, name="GET /cart",
        kind=SpanKind.SERVER, service_name="frontend",
        start_time_unix_nano=T0 + 12 * MS, end_time_unix_nano=T0 + 57 * MS,
        status_code=StatusCode.OK, attributes={"http.method": "GET", "http.status_code": 200},
        scope_name="opentelemetry.instrumentation.flask", scope_version="0.48b0",
    )
    fields.update(overrides)
    return Span(**fields)


def make_context(**overrides: Any) -> SpanContext:
    fields: dict[str, Any] = dict(
        trace_start_ns=T0, self_time_ns=7 * MS,
        resource={"service.name": "frontend", "host.name": "web-1"},
        parent_name="checkout", orphan=False, descendant_count=4,
    )
    fields.update(overrides)
    return SpanContext(**fields)


class PanelApp(App[None]):
    """Just the panel, plus a control Static that does parse markup."""

    def __init__(self, span: Span | None, context: SpanContext | None) -> None:
        super().__init__()
        self.initial = (span, context)
        self.chosen: list[tuple[str, str]] = []
        self.actions: list[str] = []

    def compose(self) -> ComposeResult:
        yield SpanDetails()

    def on_mount(self) -> None:
        self.query_one(SpanDetails).show(*self.initial)

    def on_span_details_link_chosen(self, message: SpanDetails.LinkChosen) -> None:
        self.chosen.append((message.trace_id, message.span_id))

    def action_record(self, what: str) -> None:
        self.actions.append(what)


def rendered(widget: Static | OptionList) -> str:
    """The widget's lines as drawn on screen (the whole widget, wherever it is scrolled)."""
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(line.text.rstrip() for line in lines)


def colour_of(widget: Static, word: str) -> str | None:
    """The colour ``word`` is drawn in (it must be drawn as one segment)."""
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    for line in lines:
        for segment in line:
            if segment.text.strip() == word and segment.style and segment.style.color:
                return segment.style.color.name
    return None


def section(app: App, name: str) -> str:
    return rendered(app.query_one(f".span-details--{name}", Static))


def panel_text(app: App) -> str:
    names = ("overview", "attributes", "resource", "events", "links-title")
    return "\n".join(section(app, name) for name in names)


async def test_sections_show_the_span_in_order() -> None:
    span = make_span(events=[{"time_unix_nano": T0 + 15 * MS, "name": "cache miss",
                              "attributes": {"cache.key": "cart:42"}}])
    app = PanelApp(span, make_context())
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.pause()
        overview = section(app, "overview")
        assert overview.splitlines()[0].startswith("GET /cart  frontend")
        for expected in ("kind         server", "status       OK", "duration     45ms",
                         "self time    7ms", "start        +12ms", "descendants  4",
                         f"trace id     {TRACE}", f"span id      {SPAN}",
                         f"parent       {PARENT}  checkout",
                         "scope        opentelemetry.instrumentation.flask  0.48b0"):
            assert expected in overview, expected
        attributes = section(app, "attributes")
        assert attributes.splitlines()[0] == "Span attributes"
        # Sorted keys, aligned values; non-strings as JSON.
        assert attributes.splitlines()[1:] == ["  http.method       GET",
                                               "  http.status_code  200"]
        resource = section(app, "resource")
        assert "Resource attributes" in resource and "host.name     web-1" in resource
        events = section(app, "events")
        assert events.splitlines()[0] == "Events (1)"
        assert "+3ms  cache miss" in events and "cache.key  cart:42" in events
        assert "Links (0)" in section(app, "links-title")
        text = panel_text(app)
        order = ["GET /cart", "kind", "status", "duration", "self time", "start", "trace id",
                 "scope", "Span attributes", "Resource attributes", "Events (1)", "Links (0)"]
        positions = [text.index(label) for label in order]
        assert positions == sorted(positions)


async def test_empty_groups_say_none_and_placeholder_without_span() -> None:
    span = make_span(attributes={}, scope_name="", scope_version="", parent_span_id="")
    app = PanelApp(span, make_context(resource={}, parent_name=None))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert section(app, "attributes").splitlines() == ["Span attributes", "  none"]
        assert section(app, "resource").splitlines() == ["Resource attributes", "  none"]
        assert section(app, "events").splitlines() == ["Events (0)", "  none"]
        assert section(app, "links-title").splitlines() == ["Links (0)", "  none"]
        overview = section(app, "overview")
        assert "parent       root" in overview and "scope        none" in overview
        assert not app.query_one(".span-details--links", OptionList).display

        panel = app.query_one(SpanDetails)
        panel.show(None, None)
        await pilot.pause()
        assert rendered(app.query_one(".span-details--placeholder", Static)) == \
            "No span selected"
        assert not app.query_one(".span-details--overview", Static).display
        assert panel.span is None


async def test_kind_status_and_parent_variants() -> None:
    span = make_span(kind=9, status_code=StatusCode.ERROR, status_message="card declined")
    app = PanelApp(span, make_context(parent_name=None, orphan=True))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        overview = section(app, "overview")
        assert "kind         9 (unknown kind)" in overview
        assert "status       ERROR  card declined" in overview
        assert f"parent       {PARENT}  (not received)" in overview
        overview_widget = app.query_one(".span-details--overview", Static)
        assert colour_of(overview_widget, "ERROR") == colour_of(overview_widget,
                                                                 "card declined") == "#ff5f5f"

        panel = app.query_one(SpanDetails)
        panel.show(make_span(kind=0, status_code=0, trace_id="", span_id="zz\x1b"),
                   make_context())
        await pilot.pause()
        overview = section(app, "overview")
        assert "kind         unspecified" in overview and "status       UNSET" in overview
        assert "trace id     (empty)" in overview and "span id      zz·" in overview


async def test_hostile_text_is_shown_literally_and_never_acts() -> None:
    span = make_span(
        name="[@click=app.record('name')]boom",
        service_name="[bold red]x[/]",
        attributes={"[@click=app.quit]key": "[link=http://evil]\x1b[31mred\x1b[0m",
                    "multi": "line one\nline\ttwo\r\n\x07bell"},
        events=[{"time_unix_nano": T0 + 13 * MS, "name": "[@click=app.record('event')]ev",
                 "attributes": {"x": "[b]y[/b]"}}],
        links=[{"trace_id": "[@click=app.record('link')]t", "span_id": "\x1b[2J"}],
    )
    app = PanelApp(span, make_context(resource={"r": "\u202eevil"}))
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        text = panel_text(app)
        assert "[@click=app.record('name')]boom  [bold red]x[/]" in text
        assert "[@click=app.quit]key  [link=http://evil]·[31mred·[0m" in text
        # Line breaks in a value are kept (aligned under the value column), tabs expanded.
        pad = " " * len("[@click=app.quit]key  ")
        assert f"  multi{pad[5:]}line one\n  {pad}line    two\n  {pad}·bell" in text
        assert "r  ·evil" in text
        assert "[@click=app.record('event')]ev" in text and "x  [b]y[/b]" in text
        assert "\x1b" not in text and "\u202e" not in text
        links = rendered(app.query_one(".span-details--links", OptionList))
        assert "trace [@click=app.record('link')]t" in links and "span  ·[2J" in links

        # Clicking the hostile text does nothing...
        overview = app.query_one(".span-details--overview", Static)
        await pilot.click(overview, offset=(3, 0))
        await pilot.click(".span-details--attributes", offset=(5, 1))
        await pilot.click(".span-details--events", offset=(15, 1))
        await pilot.pause()
        assert app.is_running and app.actions == []

        # ...while the same text parsed as markup would have acted: the check can fail.
        control = Static(Content.from_markup(span.name))
        await app.mount(control, before=0)
        await pilot.pause()
        await pilot.click(control, offset=(1, 0))
        await pilot.pause()
        assert app.actions == ["name"]


async def test_exception_event_shows_type_message_and_full_stacktrace() -> None:
    frames = [f'  File "/srv/app/module_{i}.py", line {i}, in handler_{i}' for i in range(120)]
    stacktrace = "Traceback (most recent call last):\n" + "\n".join(frames) + \
        "\nValueError: card declined"
    span = make_span(events=[
        {"time_unix_nano": T0 + 12 * MS + 2_500_000, "name": "exception",
         "attributes": {"exception.type": "ValueError", "exception.message": "card declined",
                        "exception.stacktrace": stacktrace, "exception.escaped": False},
         "dropped_attributes_count": 2},
    ])
    app = PanelApp(span, make_context())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        events = section(app, "events").splitlines()
        assert events[1].strip() == "+2.5ms  exception  (2 attributes dropped)"
        assert colour_of(app.query_one(".span-details--events", Static), "exception") == \
            "#ff5f5f"
        assert events[2].strip() == "ValueError: card declined"
        assert events[3].strip() == "Traceback (most recent call last):"
        for i in (0, 60, 119):
            assert f"{frames[i].strip()}" in "\n".join(events)
        assert events[-2].strip() == "ValueError: card declined"
        assert events[-1].strip() == "exception.escaped  false"
        assert sum("exception.stacktrace" in line for line in events) == 0
        # The panel scrolls by keyboard to reach the end of a long trace.
        panel = app.query_one(SpanDetails)
        panel.focus()
        await pilot.press("end")
        await pilot.pause()
        assert panel.scroll_y > 0


async def test_enter_or_click_on_a_link_posts_link_chosen() -> None:
    links = [
        {"trace_id": "11" * 16, "span_id": "aa" * 8, "attributes": {"reason": "retry of"}},
        {"trace_id": "22" * 16, "span_id": "bb" * 8, "trace_state": "vendor=1"},
    ]
    app = PanelApp(make_span(links=links), make_context())
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        assert section(app, "links-title") == "Links (2)"
        option_list = app.query_one(".span-details--links", OptionList)
        shown = rendered(option_list)
        assert f"trace {'11' * 16}" in shown and "reason = retry of" in shown
        assert "state vendor=1" in shown

        # Keyboard: the panel first, tab reaches the links, enter chooses one.
        assert app.focused is app.query_one(SpanDetails)
        await pilot.press("tab")
        assert app.focused is option_list
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.chosen == [("22" * 16, "bb" * 8)]

        await pilot.click(option_list, offset=(2, 0))
        await pilot.pause()
        assert app.chosen[-1] == ("11" * 16, "aa" * 8)

        # A new span replaces the links; choosing goes by the new list.
        app.query_one(SpanDetails).show(
            make_span(span_id="cc" * 8, links=[{"trace_id": "33" * 16, "span_id": ""}]),
            make_context())
        await pilot.pause()
        option_list.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.chosen[-1] == ("33" * 16, "")

        # A span without links hides the list; the keyboard stays in the panel.
        app.query_one(SpanDetails).show(make_span(span_id="dd" * 8), make_context())
        await pilot.pause()
        assert not option_list.display and app.focused is app.query_one(SpanDetails)


async def test_many_attributes_and_long_values_wrap() -> None:
    attributes = {f"attr.{i:03d}": i for i in range(150)}
    attributes["db.statement"] = "SELECT " + ", ".join(f"column_{i}" for i in range(40))
    attributes["tags"] = ["a", "b", {"nested": True}]
    app = PanelApp(make_span(attributes=attributes), make_context())
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        lines = section(app, "attributes").splitlines()
        assert len(lines) > 152  # every attribute, plus wrapped lines of the statement
        assert all(len(line) <= 78 for line in lines)
        text = "\n".join(lines)
        assert "column_0," in text and "column_39" in text
        assert 'tags          ["a","b",{"nested":true}]' in text
        assert lines[1].strip() == "attr.000      0" and "attr.149      149" in text


def test_value_helpers() -> None:
    assert clean_block("a\r\nb\tc\x1b") == "a\nb   c·"
    assert value_text(2**70).plain == str(2**70)
    assert value_text(1.5).plain == "1.5"
    long = value_text("x" * 200_000).plain
    assert long.endswith("(100,000 more characters)") and long.startswith("x" * 1000)


async def test_a_long_log_body_wraps_under_itself() -> None:
    from tracedesk.model import LogRecord

    body = "payment provider timed out " * 6
    record = LogRecord(1, T0 + 20 * MS, T0 + 20 * MS, 17, "ERROR", body.strip(), {}, TRACE,
                       SPAN, "frontend", 0, "", "")
    app = PanelApp(make_span(), make_context(logs=((record, "GET /cart"),)))
    async with app.run_test(size=(70, 60)) as pilot:
        await pilot.pause()
        lines = section(app, "logs").splitlines()
        assert lines[0].startswith("Logs of this span (1)")
        first = lines[1]
        assert first.lstrip().startswith("+8ms  ERROR  payment provider")
        column = first.index("payment")
        wrapped = lines[2:]
        assert wrapped, lines  # the body is longer than the panel is wide
        for line in wrapped:
            assert line[:column].strip() == "" and line[column] != " ", (lines, line)
