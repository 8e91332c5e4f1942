"""The bottom line of every screen: the keys shown for what has focus, drawn as one line.

Textual's ``Footer`` rebuilds a widget per key each time the bindings may have changed (a
screen shown, a focus change): five or six times when a trace opens, ~15 widgets each, which
took the CPU from the worker reading the trace. This draws the same hints as one ``Text``,
redrawn only when they change; a click on a key presses it.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

KEY = "bold #ffa62b"
DESCRIPTION = "#e0e0e0"
DISABLED = "#6c6c6c"
GAP = "  "


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $panel;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._hints: list[tuple[str, str, str, bool]] = []  # (key, shown as, description, on)
        self._text = Text()
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is not self.screen:
            return
        hints = self._current_hints()
        if hints != self._hints:
            self._hints = hints
            self._text, self._spans = self._draw(hints)
            self.refresh()

    def _current_hints(self) -> list[tuple[str, str, str, bool]]:
        app, seen = self.app, set()
        hints = []
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            # One hint per action: "j,down" binds two keys to one thing.
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                hints.append((binding.key, app.get_key_display(binding), binding.description,
                              enabled))
        palette = self.screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)
        if app.ENABLE_COMMAND_PALETTE and palette is not None and not palette.binding.show:
            hints.append((palette.binding.key, app.get_key_display(palette.binding),
                          "palette", palette.enabled))
        return hints

    @staticmethod
    def _draw(hints: list[tuple[str, str, str, bool]]
              ) -> tuple[Text, list[tuple[int, int, str]]]:
        text = Text(no_wrap=True, overflow="ellipsis")
        spans = []
        for key, shown, description, enabled in hints:
            start = len(text)
            text.append(f" {shown} ", style=KEY if enabled else DISABLED)
            text.append(description, style=DESCRIPTION if enabled else DISABLED)
            spans.append((start, len(text), key))
            text.append(GAP)
        return text, spans

    def render(self) -> Text:
        return self._text

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
