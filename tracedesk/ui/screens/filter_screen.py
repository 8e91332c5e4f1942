"""Screens with a quick-filter line: hidden until `/`, applied as it is typed."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static


class FilterScreen(Screen):
    """Compose ``filter_row`` and say what ``apply_filter`` does and where focus returns.

    With ``FILTER_AS_YOU_TYPE`` False the line is applied on enter only (``submit_filter``).
    """

    FILTER_AS_YOU_TYPE = True

    def filter_target(self) -> Widget:
        """The widget that has the keyboard when the filter line does not."""
        raise NotImplementedError

    def filter_row(self, placeholder: str, *, label: str = "filter",
                   field: Input | None = None) -> ComposeResult:
        """The filter line (hidden until used): compose it above the list. ``field`` is the
        input to use (it must have the id ``filter``), a plain ``Input`` by default."""
        with Horizontal(id="filter-row"):
            yield Static(label, id="filter-label")
            yield field or Input(placeholder=placeholder, id="filter")

    def submit_filter(self, text: str) -> bool:
        """Enter in the line (when not filtering as you type): apply ``text``. False keeps
        the line open (the text did not make a filter)."""
        self.apply_filter(text)
        return True

    def filter_edited(self, text: str) -> None:
        """The line's text changed (when not filtering as you type)."""

    def apply_filter(self, text: str) -> None:
        """Show the rows matching ``text`` (typed into the filter line)."""
        raise NotImplementedError

    def action_focus_filter(self) -> None:
        # Focus now, not on the next refresh: keys typed right after "/" must land in it.
        self.query_one("#filter-row").display = True
        self.app.set_focus(self.query_one("#filter", Input))

    def show_filter(self, text: str) -> None:
        """Fill the filter line with ``text`` and show the rows it matches."""
        self.query_one("#filter", Input).value = text
        self.query_one("#filter-row").set_class(bool(text.strip()), "visible")
        self.apply_filter(text.strip())
        self.filter_target().focus()

    def clear_filter(self) -> None:
        self.show_filter("")
        self.query_one("#filter-row").styles.clear_rule("display")

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self.FILTER_AS_YOU_TYPE:
            self.query_one("#filter-row").set_class(bool(event.value.strip()), "visible")
            self.apply_filter(event.value.strip())
        else:
            self.filter_edited(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not self.FILTER_AS_YOU_TYPE:
            if not self.submit_filter(event.value.strip()):
                return
            self.query_one("#filter-row").set_class(bool(event.value.strip()), "visible")
        if not event.value.strip():
            self.query_one("#filter-row").styles.clear_rule("display")
        self.filter_target().focus()
