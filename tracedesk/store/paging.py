"""Pages of long ordered lists: read from whichever end is nearer.

``LIMIT n OFFSET k`` walks past k entries, so the last page of 100,000 traces cost tens of
milliseconds while the first cost nothing. Knowing the total, a page past the middle is read
in the reverse order from the other end instead, so no page walks past more than half.
"""

from __future__ import annotations


def nearer_end(offset: int, limit: int, total: int | None) -> tuple[bool, int, int]:
    """(read reversed, offset, limit) for rows ``[offset, offset + limit)`` of ``total``."""
    if total is None or offset <= total // 2:
        return False, offset, limit
    limit = max(0, min(limit, total - offset))
    return True, max(0, total - offset - limit), limit


def reversed_order(order_by: str) -> str:
    """``"a DESC, b DESC"`` becomes ``"a ASC, b ASC"`` (every term must name its direction)."""
    terms = [term.strip() for term in order_by.split(",")]
    flipped = {"DESC": "ASC", "ASC": "DESC"}
    return ", ".join(f"{column} {flipped[direction]}"
                     for column, direction in (term.rsplit(" ", 1) for term in terms))
