"""The query line's input: recalls recent queries with up/down."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

from tracedesk.ui.query_history import MAX_ENTRIES


class QueryInput(Input):
    """An ``Input`` with a history of applied queries (oldest first), shared by reference."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous query", show=False, id="query.previous"),
        Binding("down", "history(1)", "Next query", show=False, id="query.next"),
    ]

    def __init__(self, *, history: list[str] | None = None, **kwargs) -> None:
        kwargs.setdefault("select_on_focus", False)  # `/` then typing edits the query
        super().__init__(**kwargs)
        self.history: list[str] = history if history is not None else []
        self._recalled: int | None = None  # index into history while recalling
        self._draft = ""  # what was typed before recalling

    def remember(self, text: str) -> None:
        """An applied query: the newest entry (moved there if it was already in)."""
        self._recalled = None
        if not text:
            return
        if text in self.history:
            self.history.remove(text)
        self.history.append(text)
        del self.history[:-MAX_ENTRIES]

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._recalled is None:
            if step > 0:
                return
            self._draft = self.value
            index = len(self.history) - 1
        else:
            index = self._recalled + step
        if index < 0:
            index = 0
        if index >= len(self.history):
            self._recalled = None
            self.value = self._draft
        else:
            self._recalled = index
            self.value = self.history[index]
        self.cursor_position = len(self.value)
