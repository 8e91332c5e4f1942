"""The one error the query language raises, with where in the text it went wrong."""

from __future__ import annotations


class QueryError(ValueError):
    """A query that cannot be parsed. ``position`` is a 0-based character offset into the
    query text, so that a UI can point at it; ``message`` says what was expected there."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at {position}")
        self.message = message
        self.position = position
