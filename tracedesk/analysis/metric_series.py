"""Stored metric points → series to chart: values, rates, histogram quantiles.

Points are one stream's (one metric, service and attribute set), oldest first. What a time
series database would do with them is done here:

* Gauges, and sums that are not monotonic (up-down counters), are shown as their values.
* Monotonic sums become a rate per second. A cumulative point counts from its start time:
  the increase is the difference with the previous point, unless the series started over
  (a new start time, or a value that went down), in which case it is the point's own value,
  over the time since its own start when that is known. A delta point is already an increase
  over ``[start, time]``.
* Histograms become per-interval bucket counts the same way (cumulative → delta), then
  quantiles estimated like Prometheus' ``histogram_quantile`` (linear interpolation inside
  the bucket; see ``span_metrics.histogram_quantile``). Exponential histograms are turned
  into explicit bounds (bucket ``i`` is ``(base**i, base**(i+1)]``, ``base = 2**(2**-scale)``)
  after bringing two points to a common scale, so the same quantile code serves both.
* Summaries carry their own quantiles.

The first cumulative point of a window has no predecessor, so it yields an interval only if
its series started inside the window (``since_ns``): otherwise its count covers time outside.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

from tracedesk.analysis.span_metrics import QUANTILES, histogram_quantile

NS_PER_S = 1_000_000_000
HISTOGRAMS = ("histogram", "exponential_histogram")

Sample = tuple[int, float]  # (time ns, value)


class MetricPoint(NamedTuple):
    """The columns of one stored data point that series need."""

    start_time_unix_nano: int
    time_unix_nano: int
    value: float | None
    count: int | None
    sum: float | None
    buckets: Any = None  # the parsed ``buckets`` JSON of histogram and summary points


def is_rate(kind: str, temporality: str | None, monotonic: bool | None) -> bool:
    """Whether a sum is shown as a rate: counters are; up-down counters are values."""
    return kind == "sum" and (bool(monotonic) or temporality == "delta")


# ------------------------------------------------------------------ gauges and sums


def values(points: Iterable[MetricPoint]) -> list[Sample]:
    return [(p.time_unix_nano, float(p.value)) for p in points if p.value is not None]


def _restarted(prev: MetricPoint, point: MetricPoint, before: float, now: float) -> bool:
    return now < before or (point.start_time_unix_nano != prev.start_time_unix_nano
                            and point.start_time_unix_nano >= prev.time_unix_nano)


def _own_seconds(point: MetricPoint) -> float | None:
    """The time a point covers from its own start, if it has one."""
    if 0 < point.start_time_unix_nano < point.time_unix_nano:
        return (point.time_unix_nano - point.start_time_unix_nano) / NS_PER_S
    return None


def _restart_seconds(prev: MetricPoint, point: MetricPoint, gap: float) -> float:
    """What a point that started over covers: from its new start time if it has one (after
    the previous point), else the time since the previous point, as Prometheus assumes."""
    if prev.time_unix_nano <= point.start_time_unix_nano < point.time_unix_nano:
        return (point.time_unix_nano - point.start_time_unix_nano) / NS_PER_S
    return gap


def rates(points: Sequence[MetricPoint], temporality: str | None, since_ns: int = 0
          ) -> list[Sample]:
    """A sum's increase per second at each point (see the module's notes)."""
    out: list[Sample] = []
    prev: MetricPoint | None = None
    for p in points:
        if p.value is None:
            continue
        if temporality == "delta":
            seconds = _own_seconds(p)
            if seconds is None and prev is not None and p.time_unix_nano > prev.time_unix_nano:
                seconds = (p.time_unix_nano - prev.time_unix_nano) / NS_PER_S
            if seconds:
                out.append((p.time_unix_nano, p.value / seconds))
        elif prev is None:
            seconds = _own_seconds(p)
            if seconds and p.start_time_unix_nano >= since_ns:
                out.append((p.time_unix_nano, p.value / seconds))
        elif p.time_unix_nano > prev.time_unix_nano:
            gap = (p.time_unix_nano - prev.time_unix_nano) / NS_PER_S
            if _restarted(prev, p, prev.value, p.value):  # type: ignore[arg-type]
                out.append((p.time_unix_nano, p.value / _restart_seconds(prev, p, gap)))
            else:
                out.append((p.time_unix_nano, (p.value - prev.value) / gap))  # type: ignore
        else:
            continue  # a repeated timestamp adds nothing
        prev = p
    return out


# ------------------------------------------------------------------------ histograms


@dataclass(frozen=True, slots=True)
class Buckets:
    """An explicit-bounds histogram: ``counts[i]`` observations in ``(bounds[i-1], bounds[i]]``
    and the last count above the last bound (+Inf)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float:
        """Prometheus' estimate; NaN without observations."""
        return histogram_quantile(q, self.bounds, list(accumulate(self.counts)))

    def combine(self, other: Buckets, sign: int = 1) -> Buckets | None:
        """The bucket-wise sum (or difference with ``sign=-1``); None if the bounds differ
        or a count would go negative."""
        if other.bounds != self.bounds or len(other.counts) != len(self.counts):
            return None
        counts = tuple(a + sign * b for a, b in zip(self.counts, other.counts, strict=True))
        return None if min(counts, default=0) < 0 else Buckets(self.bounds, counts)


def _power_of_two(exponent: float) -> float:
    try:
        return 2.0 ** exponent
    except OverflowError:  # beyond the largest double: the bound stays finite
        return sys.float_info.max


@dataclass(frozen=True, slots=True)
class ExponentialBuckets:
    """An exponential histogram's buckets by index: ``positive[i]`` holds values in
    ``(base**i, base**(i+1)]``, ``negative[i]`` their negatives, the zero bucket
    ``[-zero_threshold, zero_threshold]``."""

    scale: int
    zero_count: int
    zero_threshold: float
    positive: dict[int, int]
    negative: dict[int, int]

    @classmethod
    def from_json(cls, shape: dict[str, Any]) -> ExponentialBuckets:
        def side(name: str) -> dict[int, int]:
            part = shape.get(name) or {}
            offset = int(part.get("offset", 0))
            return {offset + i: int(c) for i, c in enumerate(part.get("counts", ())) if c}

        return cls(int(shape.get("scale", 0)), int(shape.get("zero_count", 0)),
                   float(shape.get("zero_threshold", 0.0)), side("positive"), side("negative"))

    @property
    def total(self) -> int:
        return self.zero_count + sum(self.positive.values()) + sum(self.negative.values())

    def at_scale(self, scale: int) -> ExponentialBuckets:
        """The same counts at a coarser scale: each bucket merges 2**(self.scale - scale)."""
        if scale >= self.scale:
            return self
        shift = self.scale - scale

        def merge(side: dict[int, int]) -> dict[int, int]:
            out: dict[int, int] = {}
            for index, count in side.items():
                out[index >> shift] = out.get(index >> shift, 0) + count
            return out

        return ExponentialBuckets(scale, self.zero_count, self.zero_threshold,
                                  merge(self.positive), merge(self.negative))

    def combine(self, other: ExponentialBuckets, sign: int = 1) -> ExponentialBuckets | None:
        """Sum or difference at the coarser of the two scales; None if a count goes
        negative (the series started over)."""
        scale = min(self.scale, other.scale)
        a, b = self.at_scale(scale), other.at_scale(scale)

        def add(x: dict[int, int], y: dict[int, int]) -> dict[int, int] | None:
            out = dict(x)
            for index, count in y.items():
                out[index] = out.get(index, 0) + sign * count
            if min(out.values(), default=0) < 0:
                return None
            return {i: c for i, c in out.items() if c}

        zero = a.zero_count + sign * b.zero_count
        positive, negative = add(a.positive, b.positive), add(a.negative, b.negative)
        if zero < 0 or positive is None or negative is None:
            return None
        return ExponentialBuckets(scale, zero, max(a.zero_threshold, b.zero_threshold),
                                  positive, negative)

    def buckets(self) -> Buckets:
        """Explicit bounds for the non-empty buckets, with an empty bucket below each one
        whose lower edge is not the previous bound, so interpolation starts at its edge."""
        step = 2.0 ** -self.scale
        bounds: list[float] = []
        counts: list[int] = []

        def add(lower: float, upper: float, count: int) -> None:
            if not bounds or bounds[-1] < lower:
                bounds.append(lower)
                counts.append(0)
            bounds.append(upper)
            counts.append(count)

        for index in sorted(self.negative, reverse=True):
            add(-_power_of_two((index + 1) * step), -_power_of_two(index * step),
                self.negative[index])
        if self.zero_count or not (self.positive or self.negative):
            add(-self.zero_threshold, self.zero_threshold, self.zero_count)
        for index in sorted(self.positive):
            add(_power_of_two(index * step), _power_of_two((index + 1) * step),
                self.positive[index])
        counts.append(0)  # nothing above the last bucket
        if bounds and bounds[0] == 0.0 and len(bounds) > 1 and counts[0] == 0:
            bounds, counts = bounds[1:], [counts[0] + counts[1], *counts[2:]]
        return Buckets(tuple(bounds), tuple(counts))


Shape = Buckets | ExponentialBuckets


def shape_of(kind: str, buckets: Any) -> Shape | None:
    """A point's buckets JSON as an object that can be subtracted and summed."""
    if not isinstance(buckets, dict):
        return None
    if kind == "exponential_histogram":
        return ExponentialBuckets.from_json(buckets)
    bounds, counts = buckets.get("bounds") or [], buckets.get("counts") or []
    if len(counts) != len(bounds) + 1:  # OTLP allows no counts at all
        return None
    return Buckets(tuple(float(b) for b in bounds), tuple(int(c) for c in counts))


@dataclass(frozen=True, slots=True)
class Interval:
    """The observations of one histogram between two points."""

    time_unix_nano: int
    seconds: float | None
    count: int
    sum: float | None
    shape: Shape

    @property
    def buckets(self) -> Buckets:
        shape = self.shape
        return shape if isinstance(shape, Buckets) else shape.buckets()


def _difference(point: MetricPoint, prev: MetricPoint, shape: Shape, before: Shape
                ) -> tuple[int, float | None, Shape] | None:
    if (point.start_time_unix_nano != prev.start_time_unix_nano
            and point.start_time_unix_nano >= prev.time_unix_nano):
        return None
    delta = shape.combine(before, -1)  # type: ignore[arg-type]
    count = (point.count or 0) - (prev.count or 0)
    if delta is None or count < 0:
        return None
    total = (point.sum - prev.sum) if point.sum is not None and prev.sum is not None else None
    return count, total, delta


def intervals(points: Sequence[MetricPoint], kind: str, temporality: str | None,
              since_ns: int = 0) -> list[Interval]:
    """Per-interval observations of a histogram stream (cumulative points differenced)."""
    out: list[Interval] = []
    prev: tuple[MetricPoint, Shape] | None = None
    for p in points:
        shape = shape_of(kind, p.buckets)
        if shape is None:
            continue
        own = _own_seconds(p)
        if temporality == "delta":
            gap = (p.time_unix_nano - prev[0].time_unix_nano) / NS_PER_S if prev else None
            out.append(Interval(p.time_unix_nano, own or gap or None, p.count or 0, p.sum,
                                shape))
        elif prev is None:
            if p.start_time_unix_nano >= since_ns and own:
                out.append(Interval(p.time_unix_nano, own, p.count or 0, p.sum, shape))
        elif p.time_unix_nano > prev[0].time_unix_nano:
            gap = (p.time_unix_nano - prev[0].time_unix_nano) / NS_PER_S
            diff = _difference(p, prev[0], shape, prev[1])
            if diff is None:  # started over: the point counts from its own start
                out.append(Interval(p.time_unix_nano, _restart_seconds(prev[0], p, gap),
                                    p.count or 0, p.sum, shape))
            else:
                out.append(Interval(p.time_unix_nano, gap, *diff))
        else:
            continue
        prev = (p, shape)
    return out


@dataclass(frozen=True, slots=True)
class HistogramSeries:
    intervals: list[Interval]
    distribution: Buckets | None  # every interval's observations together

    def quantile(self, q: float) -> list[Sample]:
        out = []
        for i in self.intervals:
            if i.count > 0:
                value = i.buckets.quantile(q)
                if not math.isnan(value):
                    out.append((i.time_unix_nano, value))
        return out

    def quantiles(self) -> dict[float, list[Sample]]:
        return {q: self.quantile(q) for q in QUANTILES}

    def rates(self) -> list[Sample]:
        """Observations per second."""
        return [(i.time_unix_nano, i.count / i.seconds) for i in self.intervals if i.seconds]

    def means(self) -> list[Sample]:
        return [(i.time_unix_nano, i.sum / i.count) for i in self.intervals
                if i.count > 0 and i.sum is not None]

    @property
    def count(self) -> int:
        return sum(i.count for i in self.intervals)


def histogram_series(points: Sequence[MetricPoint], kind: str, temporality: str | None,
                     since_ns: int = 0) -> HistogramSeries:
    found = intervals(points, kind, temporality, since_ns)
    total: Shape | None = None
    for interval in found:
        # Explicit bounds that changed mid-window: the newest bounds' intervals are kept.
        total = interval.shape if total is None else (
            total.combine(interval.shape) or interval.shape)  # type: ignore[arg-type]
    distribution = None
    if total is not None:
        distribution = total if isinstance(total, Buckets) else total.buckets()
    return HistogramSeries(found, distribution)


class Bar(NamedTuple):
    """One row of a bucket distribution: observations in ``(lower, upper]``; None for an
    open end (the first bucket has no lower bound, the last no upper one)."""

    lower: float | None
    upper: float | None
    count: int


def bars(shape: Buckets, max_rows: int) -> list[Bar]:
    """The distribution for display: from the first to the last non-empty bucket, with
    neighbours merged until at most ``max_rows`` remain."""
    n = len(shape.bounds)
    nonempty = [i for i, c in enumerate(shape.counts) if c]
    if not nonempty:
        return []
    rows = [Bar(shape.bounds[i - 1] if i > 0 else None, shape.bounds[i] if i < n else None,
                shape.counts[i]) for i in range(nonempty[0], nonempty[-1] + 1)]
    group = max(1, math.ceil(len(rows) / max(1, max_rows)))
    return [Bar(rows[i].lower, rows[min(i + group, len(rows)) - 1].upper,
                sum(r.count for r in rows[i:i + group])) for i in range(0, len(rows), group)]


# ------------------------------------------------------------------------- summaries


def summary_quantiles(points: Iterable[MetricPoint]) -> dict[float, list[Sample]]:
    """Each reported quantile's values over time."""
    out: dict[float, list[Sample]] = {}
    for p in points:
        shape = p.buckets if isinstance(p.buckets, dict) else {}
        for pair in shape.get("quantiles", ()):
            q, value = float(pair[0]), pair[1]
            if isinstance(value, int | float) and math.isfinite(value):
                out.setdefault(q, []).append((p.time_unix_nano, float(value)))
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- steps


def resample(samples: Iterable[Sample], start_ns: int, end_ns: int, steps: int
             ) -> list[float | None]:
    """The mean of the samples in each of ``steps`` equal steps of ``[start, end)``;
    None for a step without samples."""
    if steps <= 0 or end_ns <= start_ns:
        return []
    sums = [0.0] * steps
    counts = [0] * steps
    span = end_ns - start_ns
    for when, value in samples:
        if start_ns <= when < end_ns:
            i = (when - start_ns) * steps // span
            sums[i] += value
            counts[i] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


# ---------------------------------------------------------------- the list's overview


def means(points: Sequence[MetricPoint], temporality: str | None, since_ns: int = 0
          ) -> list[Sample]:
    """A histogram's or summary's mean observation per interval, from counts and sums alone
    (no buckets to read): cheap enough for every stream of the list."""
    out: list[Sample] = []
    prev: MetricPoint | None = None
    for p in points:
        if p.count is None or p.sum is None:
            continue
        count, total = p.count, p.sum
        if temporality != "delta":
            if prev is None:
                if p.start_time_unix_nano < since_ns:
                    count = 0  # covers time before the window
            elif p.time_unix_nano <= prev.time_unix_nano:
                continue
            elif p.count >= prev.count and not (  # type: ignore[operator]
                    p.start_time_unix_nano != prev.start_time_unix_nano
                    and p.start_time_unix_nano >= prev.time_unix_nano):
                count, total = p.count - prev.count, p.sum - prev.sum  # type: ignore[operator]
        if count > 0:
            out.append((p.time_unix_nano, total / count))
        prev = p
    return out


def trend(kind: str, temporality: str | None, monotonic: bool | None,
          points: Sequence[MetricPoint], since_ns: int = 0) -> list[Sample]:
    """What a stream's sparkline shows: values, a sum's rate, or the mean observation of a
    histogram or summary."""
    if kind in HISTOGRAMS or kind == "summary":
        return means(points, temporality, since_ns)
    if is_rate(kind, temporality, monotonic):
        return rates(points, temporality, since_ns)
    return values(points)
