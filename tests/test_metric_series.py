"""Metric points → series, with values worked out by hand."""

from __future__ import annotations

import math

import pytest

from tracedesk.analysis.metric_format import format_rate, format_value
from tracedesk.analysis.metric_series import (
    Bar,
    Buckets,
    ExponentialBuckets,
    MetricPoint,
    bars,
    histogram_series,
    means,
    rates,
    resample,
    summary_quantiles,
    trend,
    values,
)

S = 1_000_000_000


def point(t: int, value: float | None = None, *, start: int = 100, count: int | None = None,
          total: float | None = None, buckets: object = None) -> MetricPoint:
    """A point at ``t`` seconds that counts from ``start`` seconds."""
    return MetricPoint(start * S, t * S, value, count, total, buckets)


def test_gauge_values_are_the_points():
    assert values([point(110, 1.5), point(120, None), point(130, -2)]) == [
        (110 * S, 1.5), (130 * S, -2.0)]


def test_cumulative_rate_with_a_reset_and_a_new_start():
    points = [point(110, 10), point(120, 30),
              point(130, 5),               # went down, same start: over the 10 s gap
              point(140, 10, start=135)]   # a new start: over its own 5 s
    assert rates(points, "cumulative") == [
        (110 * S, 1.0), (120 * S, 2.0), (130 * S, 0.5), (140 * S, 2.0)]


def test_first_cumulative_point_counts_only_if_it_started_in_the_window():
    points = [point(110, 10), point(120, 30)]
    assert rates(points, "cumulative", since_ns=105 * S) == [(120 * S, 2.0)]
    assert rates(points, "cumulative", since_ns=100 * S)[0] == (110 * S, 1.0)


def test_repeated_timestamps_add_nothing():
    assert rates([point(110, 10), point(110, 12), point(120, 22)], "cumulative") == [
        (110 * S, 1.0), (120 * S, 1.2)]


def test_delta_rate_uses_each_points_own_interval():
    points = [point(110, 20, start=100), point(120, 5, start=110),
              point(130, 6, start=0)]  # no start time: since the previous point
    assert rates(points, "delta") == [(110 * S, 2.0), (120 * S, 0.5), (130 * S, 0.6)]


def explicit(counts: list[int]) -> dict:
    return {"bounds": [1.0, 2.0, 4.0], "counts": counts}


def test_histogram_intervals_and_quantiles():
    # Interval 2: [0, 2, 2, 0] → cumulative [0, 2, 4, 4].
    # p50: rank 2 in (1, 2] → 1 + 1 × 2/2 = 2; p95: rank 3.8 in (2, 4] → 2 + 2 × 1.8/2 = 3.8.
    points = [point(110, count=2, total=2.5, buckets=explicit([1, 1, 0, 0])),
              point(120, count=6, total=12.5, buckets=explicit([1, 3, 2, 0]))]
    series = histogram_series(points, "histogram", "cumulative", since_ns=100 * S)
    first, second = series.intervals
    assert first.count == 2 and first.seconds == 10.0
    assert second.count == 4 and second.buckets.counts == (0, 2, 2, 0)
    assert series.quantile(0.5)[1] == (120 * S, 2.0)
    assert series.quantile(0.95)[1] == (120 * S, pytest.approx(3.8))
    assert series.rates() == [(110 * S, 0.2), (120 * S, 0.4)]
    assert series.means() == [(110 * S, 1.25), (120 * S, 2.5)]
    assert series.distribution == Buckets((1.0, 2.0, 4.0), (1, 3, 2, 0))


def test_histogram_reset_takes_the_point_as_it_is():
    points = [point(110, count=6, total=9.0, buckets=explicit([1, 3, 2, 0])),
              point(120, count=1, total=0.5, buckets=explicit([1, 0, 0, 0]))]
    series = histogram_series(points, "histogram", "cumulative", since_ns=200 * S)
    (interval,) = series.intervals  # the first started before the window
    assert interval.count == 1 and interval.buckets.counts == (1, 0, 0, 0)
    assert interval.seconds == 10.0  # same start: over the gap


def test_histogram_above_the_last_bound_is_the_last_bound():
    shape = Buckets((1.0, 2.0), (0, 0, 5))
    assert shape.quantile(0.5) == 2.0
    assert math.isnan(Buckets((1.0,), (0, 0)).quantile(0.5))


def test_exponential_buckets_become_bounds():
    # Scale 0: base 2; positive buckets 0 and 1 are (1, 2] and (2, 4].
    shape = ExponentialBuckets.from_json({"scale": 0, "zero_count": 0, "zero_threshold": 0.0,
                                          "positive": {"offset": 0, "counts": [2, 2]},
                                          "negative": {"offset": 0, "counts": []}})
    buckets = shape.buckets()
    assert buckets == Buckets((1.0, 2.0, 4.0), (0, 2, 2, 0))
    assert buckets.quantile(0.5) == 2.0 and buckets.quantile(0.95) == pytest.approx(3.8)


def test_exponential_scale_two_base_and_negative_and_zero_buckets():
    # Scale 2: base 2**(1/4); bucket 4 is (2**1, 2**1.25]. Negative bucket 0 is [-2**.25, -1).
    shape = ExponentialBuckets(2, 3, 0.0, {4: 1}, {0: 2}).buckets()
    # Empty buckets fill the gaps: (-1, 0) and (0, 2).
    assert shape.bounds == pytest.approx((-(2 ** 0.25), -1.0, 0.0, 0.0, 2.0, 2 ** 1.25))
    assert shape.counts == (0, 2, 0, 3, 0, 1, 0)
    assert shape.quantile(0.5) == 0.0  # the zero bucket holds the middle rank


def test_exponential_differences_at_a_common_scale():
    # Scale 1 buckets 0..3 merge pairwise at scale 0: index >> 1.
    fine = ExponentialBuckets(1, 0, 0.0, {0: 1, 1: 1, 2: 1, 3: 1, -1: 5}, {})
    assert fine.at_scale(0).positive == {0: 2, 1: 2, -1: 5}
    before = {"scale": 1, "zero_count": 0, "positive": {"offset": 0, "counts": [1]}}
    after = {"scale": 0, "zero_count": 1, "positive": {"offset": 0, "counts": [3]}}
    points = [point(110, count=1, total=1.2, buckets=before),
              point(120, count=4, total=5.0, buckets=after)]
    series = histogram_series(points, "exponential_histogram", "cumulative", 200 * S)
    (interval,) = series.intervals
    assert interval.count == 3
    assert interval.shape == ExponentialBuckets(0, 1, 0.0, {0: 2}, {})


def test_delta_histograms_sum_into_the_distribution():
    points = [point(110, count=2, total=3.0, start=100, buckets=explicit([0, 2, 0, 0])),
              point(120, count=1, total=3.0, start=110, buckets=explicit([0, 0, 1, 0]))]
    series = histogram_series(points, "histogram", "delta")
    assert series.distribution == Buckets((1.0, 2.0, 4.0), (0, 2, 1, 0))
    assert series.rates() == [(110 * S, 0.2), (120 * S, 0.1)]


def test_means_from_counts_and_sums():
    points = [point(110, count=2, total=4.0), point(120, count=6, total=16.0)]
    assert means(points, "cumulative") == [(110 * S, 2.0), (120 * S, 3.0)]
    assert means(points, "cumulative", since_ns=105 * S) == [(120 * S, 3.0)]
    assert trend("histogram", "cumulative", None, points) == means(points, "cumulative")
    assert trend("sum", "cumulative", False, [point(110, 4)]) == [(110 * S, 4.0)]


def test_summary_quantiles_over_time():
    points = [point(110, buckets={"quantiles": [[0.5, 1.0], [0.99, 9.0]]}),
              point(120, buckets={"quantiles": [[0.5, 2.0], [0.99, 8.0]]})]
    assert summary_quantiles(points) == {0.5: [(110 * S, 1.0), (120 * S, 2.0)],
                                         0.99: [(110 * S, 9.0), (120 * S, 8.0)]}


def test_resample_takes_the_mean_per_step():
    samples = [(0, 1.0), (1, 3.0), (5, 10.0), (9, 4.0), (10, 99.0)]
    assert resample(samples, 0, 10, 5) == [2.0, None, 10.0, None, 4.0]


def test_bars_from_first_to_last_nonempty_bucket_merged_to_fit():
    shape = Buckets((1.0, 2.0, 4.0, 8.0), (0, 1, 0, 2, 3))
    assert bars(shape, 10) == [Bar(1.0, 2.0, 1), Bar(2.0, 4.0, 0), Bar(4.0, 8.0, 2),
                               Bar(8.0, None, 3)]
    assert bars(shape, 2) == [Bar(1.0, 4.0, 1), Bar(4.0, None, 5)]
    assert bars(Buckets((1.0,), (0, 0)), 5) == []


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.0123, "s", "12.3ms"), (250, "ms", "250ms"), (1536, "By", "1.5 KiB"),
    (12, "{request}", "12"), (1_234_567, "USD", "1.23M USD"), (0.5, "1", "0.5"),
    (None, "s", "-"),
])
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


def test_format_rate():
    assert format_rate(2.5, "{request}") == "2.5/s"
    assert format_rate(3.0, "USD") == "3 USD/s"
