"""Telemetry text is untrusted: what every layer uses to make it safe to show."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Replace control and bidi-override characters with a visible middle dot."""
    return _CONTROL.sub("·", text)
