"""Span metrics (RED) against hand-computed expectations, following Tempo's definitions."""

from __future__ import annotations

import math
import random
from itertools import pairwise
from operator import itemgetter

import pytest

from tracedesk.analysis.span_metrics import (
    DEFAULT_BUCKETS_NS,
    Quantiles,
    SpanSample,
    by_operation,
    by_service,
    exact_quantile,
    histogram_quantile,
    percentile_rank,
    red_series,
    red_summary,
)
from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.store.reader import Reader
from tracedesk.store.writer import Writer

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S
GET = ("a", "GET /x", 2)


def triple(q: Quantiles | None) -> tuple[float, float, float]:
    assert q is not None
    return (q.p50, q.p95, q.p99)


def sample(t: int, duration: int, status: int = 0, key: tuple = GET) -> SpanSample:
    service, name, kind = key
    return SpanSample(service, name, kind, t, duration, status)


# Two 2 s steps. Step 0: 1 ms OK, 3 ms ERROR, 5 ms UNSET; step 1 (the first sample exactly on
# the step boundary): 2 ms ERROR (exactly on the 2 ms bucket bound), 20 s (past every bound).
# Outside the window: one just before it and one exactly at its end.
SAMPLES = [
    sample(T0, 1 * MS),
    sample(T0 + S // 2, 3 * MS, 2),
    sample(T0 + 2 * S - 1, 5 * MS, 0),
    sample(T0 + 2 * S, 2 * MS, 2),
    sample(T0 + 3 * S, 20 * S, 1),
    sample(T0 - 1, 7 * MS),
    sample(T0 + 4 * S, 7 * MS),
    sample(T0 + S, 0, 0, ("a", "SELECT", 3)),  # zero-duration span of another operation
    sample(T0 + S, 9 * MS, 2, ("b", "GET /y", 2)),
]


# ---------------------------------------------------------------- building blocks


def test_default_buckets_are_tempos_exponential_buckets():
    # prometheus.ExponentialBuckets(0.002, 2, 14)
    assert len(DEFAULT_BUCKETS_NS) == 14
    assert DEFAULT_BUCKETS_NS[0] == 2 * MS
    assert DEFAULT_BUCKETS_NS[-1] == 16_384 * MS
    assert all(b == 2 * a for a, b in pairwise(DEFAULT_BUCKETS_NS))


def test_histogram_quantile_interpolates_like_prometheus():
    bounds = (1.0, 2.0, 4.0)
    cumulative = (1, 3, 4, 4)  # one in (0,1], two in (1,2], one in (2,4], none above
    # rank 2 falls in (1,2] holding 2: 1 + 1 * (2-1)/2
    assert histogram_quantile(0.5, bounds, cumulative) == 1.5
    # rank 3.96 falls in (2,4] holding 1: 2 + 2 * 0.96
    assert histogram_quantile(0.99, bounds, cumulative) == pytest.approx(3.92)
    # the first bucket starts at 0
    assert histogram_quantile(0.5, bounds, (4, 4, 4, 4)) == 0.5
    # a rank in the +Inf bucket answers the highest finite bound
    assert histogram_quantile(0.5, bounds, (0, 0, 0, 5)) == 4.0
    assert histogram_quantile(1.0, bounds, (1, 1, 1, 2)) == 4.0


def test_histogram_quantile_edge_cases():
    bounds = (1.0, 2.0)
    assert math.isnan(histogram_quantile(0.5, bounds, (0, 0, 0)))
    assert histogram_quantile(-0.1, bounds, (1, 1, 1)) == -math.inf
    assert histogram_quantile(1.1, bounds, (1, 1, 1)) == math.inf
    assert math.isnan(histogram_quantile(math.nan, bounds, (1, 1, 1)))
    assert math.isnan(histogram_quantile(0.5, bounds, (1, 1)))  # no +Inf count
    assert histogram_quantile(0.5, (0.0, 2.0), (3, 3, 3)) == 0.0  # a first bound <= 0


def test_exact_quantile_is_nearest_rank():
    ten = list(range(1, 11))
    assert [exact_quantile(ten, q) for q in (0.5, 0.95, 0.99)] == [5, 10, 10]
    hundred = list(range(1, 101))
    assert [exact_quantile(hundred, q) for q in (0.5, 0.95, 0.99)] == [50, 95, 99]
    assert exact_quantile(hundred, 0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floats
    assert exact_quantile([42], 0.99) == 42
    assert exact_quantile([3, 5], 0.0) == 3
    with pytest.raises(ValueError):
        exact_quantile([], 0.5)


def test_percentile_rank():
    values = [40, 10, 30, 20]
    assert percentile_rank(values, 30) == 50.0   # 10 and 20 are faster
    assert percentile_rank(values, 5) == 0.0
    assert percentile_rank(values, 41) == 100.0
    assert percentile_rank([10, 10, 10], 10) == 0.0  # equal is not slower
    assert percentile_rank(sorted(values), 30, ordered=True) == 50.0
    assert math.isnan(percentile_rank([], 1))


# ---------------------------------------------------------------- red_series


def test_red_series_by_operation_hand_computed():
    series = red_series(SAMPLES, T0, T0 + 4 * S, 2 * S, by_operation)
    assert set(series) == {GET, ("a", "SELECT", 3), ("b", "GET /y", 2)}
    get = series[GET]
    assert get.times == [T0, T0 + 2 * S]
    first, second = get.points

    assert (first.calls, first.errors, first.seconds) == (3, 1, 2.0)
    assert first.rate == 1.5
    assert first.error_rate == pytest.approx(1 / 3)
    assert (first.min_ns, first.max_ns, first.sum_ns) == (1 * MS, 5 * MS, 9 * MS)
    assert first.bucket_counts == (1, 2, *[3] * 12, 3)
    # nearest rank of [1, 3, 5] ms: ceil(1.5) = 2nd, ceil(2.85) = 3rd, ceil(2.97) = 3rd
    assert first.exact == Quantiles(3 * MS, 5 * MS, 5 * MS)
    # histogram: rank 1.5 in (2, 4] ms -> 2 + 2 * 0.5; ranks 2.85, 2.97 in (4, 8] ms
    assert triple(first.estimated) == pytest.approx((3 * MS, 7.4 * MS, 7.88 * MS))

    assert (second.calls, second.errors, second.rate, second.error_rate) == (2, 1, 1.0, 0.5)
    assert second.bucket_counts == (*[1] * 14, 2)  # 2 ms is in le=0.002; 20 s only in +Inf
    assert second.exact == Quantiles(2 * MS, 20 * S, 20 * S)
    # rank 1 in the first bucket -> its bound; ranks 1.9, 1.98 in +Inf -> the last bound
    assert second.estimated == Quantiles(2 * MS, 16_384 * MS, 16_384 * MS)

    total = get.total
    assert (total.calls, total.errors, total.seconds) == (5, 2, 4.0)
    assert total.rate == 1.25 and total.error_rate == 0.4
    assert total.exact == Quantiles(3 * MS, 20 * S, 20 * S)  # 3rd, 5th, 5th of five
    assert total.mean_ns == (1 + 3 + 5 + 2) * MS / 5 + 4 * S
    assert get.durations == [1 * MS, 2 * MS, 3 * MS, 5 * MS, 20 * S]
    assert get.rates == [1.5, 1.0]
    assert get.error_rates == [pytest.approx(1 / 3), 0.5]
    assert get.quantile("p50") == [3 * MS, 2 * MS]
    assert get.quantile("p99", estimated=True) == [pytest.approx(7.88 * MS), 16_384 * MS]


def test_empty_steps_and_zero_durations():
    series = red_series(SAMPLES, T0, T0 + 4 * S, 2 * S, by_operation)
    select = series["a", "SELECT", 3]
    zero, empty = select.points
    assert (zero.calls, zero.exact) == (1, Quantiles(0, 0, 0))
    # Prometheus interpolates inside the first bucket, so a 0 ns span estimates as 1 ms.
    assert triple(zero.estimated) == pytest.approx((1 * MS, 1.9 * MS, 1.98 * MS))
    assert (empty.calls, empty.rate, empty.error_rate, empty.exact, empty.estimated) == (
        0, 0.0, None, None, None)
    assert empty.mean_ns is None and empty.bucket_counts == (0,) * 15
    assert select.quantile("p95") == [0, None]


def test_group_by_service_and_custom_keys():
    series = red_series(SAMPLES, T0, T0 + 4 * S, 2 * S, by_service)
    assert set(series) == {"a", "b"}
    assert series["a"].total.calls == 6 and series["a"].total.errors == 2
    assert [p.calls for p in series["a"].points] == [4, 2]
    by_status = red_series(SAMPLES, T0, T0 + 4 * S, 4 * S, itemgetter(0, 5))
    assert {k: s.total.calls for k, s in by_status.items()} == {
        ("a", 0): 3, ("a", 1): 1, ("a", 2): 2, ("b", 2): 1}


def test_kinds_filter_and_unknown_kinds():
    odd = [*SAMPLES, sample(T0, 1 * MS, 0, ("a", "weird", 42))]
    every = red_series(odd, T0, T0 + 4 * S, 4 * S, by_service)
    assert every["a"].total.calls == 7  # Tempo counts every kind, unknown numbers too
    servers = red_series(odd, T0, T0 + 4 * S, 4 * S, by_service, kinds={2})
    assert servers["a"].total.calls == 5 and servers["b"].total.calls == 1
    assert red_series(odd, T0, T0 + 4 * S, 4 * S, by_service, kinds=()) == {}


def test_partial_last_step_rates_by_its_own_length():
    spans = [sample(T0 + 4 * S, 1 * MS), sample(T0 + 4 * S + S // 2, 1 * MS)]
    [series] = red_series(spans, T0, T0 + 5 * S, 2 * S).values()
    assert [p.seconds for p in series.points] == [2.0, 2.0, 1.0]
    assert series.rates == [0.0, 0.0, 2.0]
    assert series.total.rate == 0.4


def test_window_edges_and_degenerate_input():
    assert red_series([], T0, T0 + S, S) == {}
    assert red_series(SAMPLES, T0, T0, S) == {}
    assert red_series(SAMPLES, T0 + S, T0, S) == {}
    with pytest.raises(ValueError):
        red_series(SAMPLES, T0, T0 + S, 0)
    with pytest.raises(ValueError, match="11000"):
        red_series(SAMPLES, T0, T0 + 11_001 * S, S)
    assert len(red_series(SAMPLES, T0, T0 + 11_000 * S, S)[GET].points) == 11_000
    only_start = red_series([sample(T0, 7 * MS)], T0, T0 + 1, 1)
    assert only_start[GET].total.calls == 1
    assert red_series([sample(T0 + 1, 7 * MS)], T0, T0 + 1, 1) == {}


def test_single_span():
    [series] = red_series([sample(T0, 7 * MS, 2)], T0, T0 + 10 * S, 10 * S).values()
    total = series.total
    assert (total.calls, total.errors, total.error_rate, total.rate) == (1, 1, 1.0, 0.1)
    assert total.exact == Quantiles(7 * MS, 7 * MS, 7 * MS)
    # rank 0.5 in (4, 8] ms: 4 + 4 * 0.5
    assert triple(total.estimated) == pytest.approx((6 * MS, 7.8 * MS, 7.96 * MS))
    assert series.points == (total,)


def test_input_order_does_not_matter_and_custom_buckets():
    shuffled = SAMPLES[:]
    random.Random(3).shuffle(shuffled)
    assert red_series(shuffled, T0, T0 + 4 * S, S) == red_series(SAMPLES, T0, T0 + 4 * S, S)
    series = red_series(SAMPLES, T0, T0 + 4 * S, 4 * S, buckets_ns=(10 * MS, 1 * MS))
    assert series[GET].total.bucket_counts == (1, 4, 5)  # bounds are sorted: 1 ms, 10 ms


def test_red_summary_is_the_window_total():
    summary = red_summary(SAMPLES, T0, T0 + 4 * S, by_service)
    series = red_series(SAMPLES, T0, T0 + 4 * S, S, by_service)
    for key, stats in summary.items():
        expected = series[key].total
        assert (stats.calls, stats.errors, stats.exact, stats.seconds) == (
            expected.calls, expected.errors, expected.exact, expected.seconds)


def test_percentile_rank_within_a_series():
    [series] = red_series(SAMPLES[:5], T0, T0 + 4 * S, S).values()
    assert percentile_rank(series.durations, 5 * MS, ordered=True) == 60.0


# ---------------------------------------------------------------- the reader


def test_reader_span_samples_from_the_demo(tmp_path):
    now = 1_800_000_000 * S
    request, span_count, _ = Shop(seed=1, repeat_ids=True).traces_request_for(
        40, now_ns=now, spread_ns=30 * S)
    writer = Writer(tmp_path / "demo.db")
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable()))
    writer.close()
    reader = Reader(tmp_path / "demo.db")
    try:
        everything = reader.span_samples(0, 2 * now)
        assert len(everything) == span_count
        assert all(type(s) is SpanSample for s in everything)
        frontend = reader.span_samples(0, 2 * now, service="frontend")
        assert frontend and {s.service_name for s in frontend} == {"frontend"}
        roots = reader.span_samples(0, 2 * now, service="frontend", kind=2)
        assert {(s.name, s.kind) for s in roots} <= {(s.name, 2) for s in frontend}
        named = reader.span_samples(0, 2 * now, name=roots[0].name)
        assert {s.name for s in named} == {roots[0].name}
        assert reader.span_samples(0, 1) == []
        start = min(s.start_time_unix_nano for s in everything)
        assert len(reader.span_samples(start + 1, 2 * now)) < span_count
        totals = red_summary(everything, start, now + 1, by_service)
        assert totals["frontend"].calls == len(frontend)
        assert sum(t.errors for t in totals.values()) == sum(
            s.status_code == 2 for s in everything)
    finally:
        reader.close()
