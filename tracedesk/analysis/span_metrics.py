"""RED metrics (rate, errors, duration) from spans, as Grafana Tempo's span-metrics processor
defines them, computed over a stored time window instead of a live stream.

Tempo's definitions (``modules/generator/processor/spanmetrics``, docs "Span metrics"):

* ``traces_spanmetrics_calls_total`` counts every span, of every kind: the processor has no
  kind filter unless ``filter_policies`` are configured. (Grafana Cloud's Application
  Observability preset keeps only SERVER and CONSUMER spans.) Here ``kinds=None`` is Tempo's
  default; pass e.g. ``{SpanKind.SERVER, SpanKind.CONSUMER}`` for the other view.
* Its intrinsic dimensions are ``service``, ``span_name``, ``span_kind`` and ``status_code``;
  :func:`by_service` and :func:`by_operation` are the usual groupings, and any callable on a
  :class:`SpanSample` (e.g. ``operator.itemgetter(0, 1, 2, 5)`` to add the status) is a key.
* An error is a span whose status code is ERROR (2); UNSET and OK are not errors.
* ``traces_spanmetrics_latency`` is a histogram with Tempo's default buckets
  ``prometheus.ExponentialBuckets(0.002, 2, 14)``: 2 ms, 4 ms, ... 16.384 s, and +Inf.

What a time series database would then do with those counters is done here directly:

* A span belongs to the step its **start** time falls in (TraceQL metrics bucket spans by start
  time too); steps are ``[start, start + step)``, and the last one may be shorter when the
  window is not a whole number of steps. Rates divide by each step's own length.
* Two kinds of quantile for every interval. ``exact`` (primary): nearest-rank quantiles of
  the raw durations, always an observed duration, so "p99 = 812 ms" names a real span.
  ``estimated``: what Grafana shows for Tempo's histogram, ``histogram_quantile`` over the
  bucket counts with Prometheus' linear interpolation, useful to compare with a Tempo
  dashboard; it is coarse (a factor of two per bucket) and capped at the last finite bound.

Durations are integer nanoseconds throughout, as in the store; quantiles are nanoseconds.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter
from typing import NamedTuple

ERROR = 2  # StatusCode.ERROR
NS_PER_S = 1_000_000_000
QUANTILES = (0.5, 0.95, 0.99)
# Prometheus refuses range queries of more than 11,000 points per series; so do we.
MAX_STEPS = 11_000
# Tempo's span-metrics default: prometheus.ExponentialBuckets(0.002, 2, 14), in nanoseconds.
DEFAULT_BUCKETS_NS: tuple[int, ...] = tuple(2_000_000 << i for i in range(14))


class SpanSample(NamedTuple):
    """The columns span metrics need; one ``SELECT`` of the spans table yields these."""

    service_name: str
    name: str
    kind: int
    start_time_unix_nano: int
    duration_ns: int
    status_code: int


# Keys are plain itemgetters: called once per sample, they run in C.
by_service: Callable[[SpanSample], Hashable] = itemgetter(0)
"""Group by service name: the key is the service name."""
by_operation: Callable[[SpanSample], Hashable] = itemgetter(0, 1, 2)
"""Group by Tempo's default dimensions except status: the key is (service, span name, kind)."""


@dataclass(frozen=True, slots=True)
class Quantiles:
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class RedStats:
    """RED numbers for one interval (a step, or the whole window)."""

    calls: int
    errors: int
    seconds: float          # the interval's length
    sum_ns: int
    min_ns: int | None      # None without calls
    max_ns: int | None
    # Cumulative counts like a Prometheus histogram: le=bound for each bound, then +Inf.
    bucket_counts: tuple[int, ...]
    exact: Quantiles | None       # nearest-rank over the raw durations (primary)
    estimated: Quantiles | None   # histogram_quantile over bucket_counts (Tempo/Grafana view)

    @property
    def rate(self) -> float:
        """Calls per second."""
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float | None:
        """Fraction of calls that failed; None without calls (0/0 is not 0 %)."""
        return self.errors / self.calls if self.calls else None

    @property
    def mean_ns(self) -> float | None:
        return self.sum_ns / self.calls if self.calls else None


@dataclass(frozen=True, slots=True)
class Series:
    """One key's RED metrics over a window: a point per step, and the window's totals."""

    key: Hashable
    start_ns: int
    end_ns: int
    step_ns: int
    points: tuple[RedStats, ...]
    total: RedStats
    # Every duration in the window, ascending: what percentile_rank() compares a span with.
    durations: list[int] = field(repr=False, compare=False)

    @property
    def times(self) -> list[int]:
        """Each step's start time."""
        return [self.start_ns + i * self.step_ns for i in range(len(self.points))]

    @property
    def rates(self) -> list[float]:
        return [p.rate for p in self.points]

    @property
    def error_rates(self) -> list[float | None]:
        return [p.error_rate for p in self.points]

    def quantile(self, which: str, *, estimated: bool = False) -> list[float | None]:
        """``which`` is "p50", "p95" or "p99"; None for steps without calls."""
        out: list[float | None] = []
        for p in self.points:
            q = p.estimated if estimated else p.exact
            out.append(None if q is None else getattr(q, which))
        return out


# ---------------------------------------------------------------- quantiles


def exact_quantile(ordered: Sequence[int], q: float) -> int:
    """The nearest-rank quantile of ascending values: the smallest value with at least a
    fraction ``q`` of the values at or below it. Always one of the values."""
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")
    # round() guards against 0.07 * 100 == 7.000000000000001 picking the next rank.
    rank = math.ceil(round(q * n, 9))
    return ordered[min(max(rank, 1), n) - 1]


def histogram_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[int]) -> float:
    """Prometheus' ``histogram_quantile`` for one classic histogram.

    ``bounds`` are the finite upper bounds, ascending; ``cumulative`` has one count per bound
    (observations <= bound) and a last one for +Inf (all observations). As in Prometheus:
    NaN without observations; linear interpolation inside the bucket holding the rank, from 0
    for the first bucket; the last finite bound when the rank falls in the +Inf bucket.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(cumulative) != len(bounds) + 1 or not bounds:
        return math.nan
    total = cumulative[-1]
    if total == 0:
        return math.nan
    rank = q * total
    b = bisect_left(cumulative, rank, 0, len(bounds))  # first bucket with count >= rank
    if b == len(bounds):
        return float(bounds[-1])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start, end, count = 0.0, float(bounds[b]), cumulative[b]
    if b > 0:
        start = float(bounds[b - 1])
        count -= cumulative[b - 1]
        rank -= cumulative[b - 1]
    return start + (end - start) * (rank / count)


def percentile_rank(durations: Sequence[int], value: int, *, ordered: bool = False) -> float:
    """The percentage (0-100) of ``durations`` strictly below ``value``: "this call was
    slower than 97 % of its kind". NaN for no durations. Pass ``ordered=True`` with an
    ascending list (e.g. ``Series.durations``) to answer in O(log n)."""
    n = len(durations)
    if n == 0:
        return math.nan
    below = bisect_left(durations, value) if ordered else sum(1 for d in durations if d < value)
    return 100.0 * below / n


# ---------------------------------------------------------------- aggregation


def _cumulative(ordered: list[int], bounds: Sequence[int]) -> tuple[int, ...]:
    """Prometheus-style cumulative bucket counts (le=bound, then +Inf) of ascending values."""
    n = len(ordered)
    if n <= len(bounds):  # few values (most steps): place each value
        counts = [0] * (len(bounds) + 1)
        for d in ordered:
            counts[bisect_left(bounds, d)] += 1
        return tuple(accumulate(counts))
    return (*[bisect_right(ordered, b) for b in bounds], n)


def _interpolate(rank: float, bounds: Sequence[int], cumulative: tuple[int, ...]) -> float:
    """histogram_quantile's core for 0 < rank <= total (see histogram_quantile)."""
    b = bisect_left(cumulative, rank, 0, len(bounds))
    if b == len(bounds):
        return float(bounds[-1])
    if b == 0:
        return bounds[0] * (rank / cumulative[0]) if bounds[0] > 0 else float(bounds[0])
    below = cumulative[b - 1]
    lo = bounds[b - 1]
    return lo + (bounds[b] - lo) * ((rank - below) / (cumulative[b] - below))


def _stats(ordered: list[int], errors: int, seconds: float, bounds: Sequence[int]) -> RedStats:
    """Stats of one interval from its ascending durations (called once per key and step,
    so it avoids the general functions' checks)."""
    n = len(ordered)
    cumulative = _cumulative(ordered, bounds)
    if not n:
        return RedStats(0, errors, seconds, 0, None, None, cumulative, None, None)
    # Nearest rank ceil(q * n) in integers: p50, p95, p99 are 1/2, 19/20, 99/100.
    exact = Quantiles(ordered[(n + 1) // 2 - 1], ordered[-(-19 * n // 20) - 1],
                      ordered[-(-99 * n // 100) - 1])
    estimated = Quantiles(_interpolate(0.5 * n, bounds, cumulative),
                          _interpolate(0.95 * n, bounds, cumulative),
                          _interpolate(0.99 * n, bounds, cumulative))
    return RedStats(n, errors, seconds, sum(ordered), ordered[0], ordered[-1], cumulative,
                    exact, estimated)


def red_series(
    spans: Iterable[SpanSample],
    start_ns: int,
    end_ns: int,
    step_ns: int,
    key: Callable[[SpanSample], Hashable] = by_operation,
    *,
    kinds: Collection[int] | None = None,
    buckets_ns: Sequence[int] = DEFAULT_BUCKETS_NS,
) -> dict[Hashable, Series]:
    """RED series per key over ``[start_ns, end_ns)`` in steps of ``step_ns``.

    Spans are assigned by start time; those outside the window, or of a kind not in
    ``kinds`` (None: every kind, Tempo's default), are ignored. Keys without spans in the
    window are absent. Input order does not matter.
    """
    if step_ns <= 0:
        raise ValueError("step_ns must be positive")
    if end_ns <= start_ns:
        return {}
    bounds = tuple(sorted(buckets_ns))
    steps = -(-(end_ns - start_ns) // step_ns)
    if steps > MAX_STEPS:
        raise ValueError(f"{steps} steps: at most {MAX_STEPS} per series; use a longer step")
    durations: dict[Hashable, list[list[int] | None]] = {}
    errors: dict[Hashable, list[int]] = {}
    wanted = None if kinds is None else frozenset(kinds)
    # The hot loop: no objects per sample beyond the key, one list append, no attribute
    # lookups (samples are indexed by position).
    for s in spans:
        t = s[3]
        if t < start_ns or t >= end_ns or (wanted is not None and s[2] not in wanted):
            continue
        k = key(s)
        cells = durations.get(k)
        if cells is None:
            cells = durations[k] = [None] * steps
            errors[k] = [0] * steps
        i = (t - start_ns) // step_ns
        cell = cells[i]
        if cell is None:
            cells[i] = [s[4]]
        else:
            cell.append(s[4])
        if s[5] == ERROR:
            errors[k][i] += 1

    step_seconds = [(min(start_ns + (i + 1) * step_ns, end_ns) - start_ns - i * step_ns)
                    / NS_PER_S for i in range(steps)]
    window_seconds = (end_ns - start_ns) / NS_PER_S
    # Steps without calls share one (immutable) point per step length.
    empty = {sec: _stats([], 0, sec, bounds) for sec in set(step_seconds)}
    out: dict[Hashable, Series] = {}
    for k, cells in durations.items():
        errs = errors[k]
        points = []
        for i, cell in enumerate(cells):
            if cell is None:
                points.append(empty[step_seconds[i]])
            else:
                cell.sort()
                points.append(_stats(cell, errs[i], step_seconds[i], bounds))
        if steps == 1:
            everything = cells[0] or []
        else:
            everything = list(chain.from_iterable(c for c in cells if c is not None))
            everything.sort()  # sorted runs: timsort merges them
        total = (points[0] if steps == 1
                 else _stats(everything, sum(errs), window_seconds, bounds))
        out[k] = Series(k, start_ns, end_ns, step_ns, tuple(points), total, everything)
    return out


def red_summary(
    spans: Iterable[SpanSample],
    start_ns: int,
    end_ns: int,
    key: Callable[[SpanSample], Hashable] = by_operation,
    *,
    kinds: Collection[int] | None = None,
    buckets_ns: Sequence[int] = DEFAULT_BUCKETS_NS,
) -> dict[Hashable, RedStats]:
    """Only the window's totals per key (one step spanning the window)."""
    series = red_series(spans, start_ns, end_ns, max(end_ns - start_ns, 1), key,
                        kinds=kinds, buckets_ns=buckets_ns)
    return {k: s.total for k, s in series.items()}
