"""Metric values as short text, by their unit (times, bytes, percentages, counts)."""

from __future__ import annotations

import math

from tracedesk.safe_text import clean


def _compact(value: float) -> str:
    """Three significant digits with an SI suffix: ``950``, ``12.3k``, ``4.5M``."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit * 0.9995:
            return f"{value / limit:.3g}{suffix}"
    if magnitude >= 0.001:
        return f"{value:.3g}"
    return f"{value:.2e}"


_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
_BYTES = {"By": 1, "KiBy": 1024, "MiBy": 1024**2, "GiBy": 1024**3}


def format_value(value: float | None, unit: str) -> str:
    """A value with its unit, short: times as durations, bytes in binary multiples,
    ``1`` as a plain number and ``{annotations}`` dropped (they name things, not units)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit in _SECONDS:
        return _duration(value * _SECONDS[unit])
    if unit in _BYTES:
        return _bytes(value * _BYTES[unit])
    if unit == "%":
        return f"{_compact(value)}%"
    number = _compact(value)
    if not unit or unit == "1" or (unit.startswith("{") and unit.endswith("}")):
        return number
    return f"{number} {clean(unit)}"  # the unit is telemetry too


def format_rate(value: float | None, unit: str) -> str:
    """A rate per second: ``12.3/s``, ``4.5 USD/s``."""
    if value is None or math.isnan(value):
        return "-"
    text = format_value(value, unit if unit not in _SECONDS else "")
    return f"{text}/s"


def _duration(seconds: float) -> str:
    magnitude = abs(seconds)
    for limit, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if magnitude >= limit * 0.9995 or (suffix == "µs" and magnitude > 0):
            if suffix == "s" and magnitude >= 100 * 60:
                return f"{seconds / 3600:.3g}h"
            return f"{seconds / limit:.3g}{suffix}"
    return "0s"


def _bytes(value: float) -> str:
    for limit, suffix in ((1024**4, "TiB"), (1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if abs(value) >= limit:
            return f"{value / limit:.3g} {suffix}"
    return f"{value:.3g} B"
