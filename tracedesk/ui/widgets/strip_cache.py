"""Lines drawn before, kept so that a jump, a page or a fold redraws only new rows.

Rows are keyed by identity, not equality: a reload brings new row objects, which are drawn
again, and comparing identities costs nothing against comparing ten fields per row.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.strip import Strip

MAX_CACHED_STRIPS = 2000


class StripCache:
    """Strips by (row object, key); ``key`` says how the row was drawn (width, scale)."""

    def __init__(self, limit: int = MAX_CACHED_STRIPS) -> None:
        self.limit = limit
        self._strips: dict[tuple[int, Hashable], tuple[object, Strip]] = {}
        self._look: tuple = ()

    def keep_for(self, look: tuple) -> None:
        """Drop every strip unless each part of ``look`` is the object it was last time.

        For what a line depends on besides its row that cannot be a key (sets, dicts):
        compared by identity, so their owner must replace them, never change them."""
        if len(look) != len(self._look) or any(
                a is not b for a, b in zip(look, self._look, strict=True)):
            self._strips.clear()
            self._look = look

    def get(self, row: object, key: Hashable = ()) -> Strip | None:
        cached = self._strips.get((id(row), key))
        # The id of a row that is gone may be another row's now: check it is the same.
        return cached[1] if cached is not None and cached[0] is row else None

    def put(self, row: object, strip: Strip, key: Hashable = ()) -> Strip:
        if len(self._strips) >= self.limit:
            self._strips.clear()  # cheaper than ordering by use, and rare: 50 screenfuls
        self._strips[(id(row), key)] = (row, strip)
        return strip

    def clear(self) -> None:
        self._strips.clear()
