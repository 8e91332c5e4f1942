"""Latency histograms with fixed logarithmic buckets, which add up across time slices.

The service-graph rollups (``store.graph_rollups``) keep one per edge side and time slice
instead of every duration, as Tempo's service-graph metrics are histograms. The buckets are
narrower than Tempo's default ones: eight per doubling, so a quantile read from them (the
geometric middle of its bucket, kept within the exact minimum and maximum) is within about
4.5 % of the exact one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

BUCKETS_PER_DOUBLING = 8
_SCALE = BUCKETS_PER_DOUBLING / math.log(2)


def bucket_of(ns: int) -> int:
    """The bucket holding a duration: bucket i holds ``[2**(i/8), 2**((i+1)/8))`` ns;
    durations under 1 ns share bucket 0."""
    return int(math.log(ns) * _SCALE) if ns > 1 else 0


def _middle(index: int) -> float:
    return 2 ** ((index + 0.5) / BUCKETS_PER_DOUBLING)


@dataclass(slots=True)
class LatencyHistogram:
    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: int = 0
    min: int = 0
    max: int = 0

    @classmethod
    def of(cls, durations: Collection[int]) -> LatencyHistogram:
        if not durations:
            return cls()
        log, scale = math.log, _SCALE
        buckets = Counter([int(log(ns) * scale) if ns > 1 else 0 for ns in durations])
        return cls(dict(buckets), len(durations), sum(durations), min(durations),
                   max(durations))

    def add(self, ns: int) -> None:
        index = int(math.log(ns) * _SCALE) if ns > 1 else 0
        self.counts[index] = self.counts.get(index, 0) + 1
        if not self.count or ns < self.min:
            self.min = ns
        if not self.count or ns > self.max:
            self.max = ns
        self.count += 1
        self.total += ns

    def merge(self, other: LatencyHistogram) -> None:
        if not other.count:
            return
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = other.max if not self.count else max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def quantile(self, q: float) -> float:
        """The nearest-rank quantile, as its bucket's middle within ``[min, max]``."""
        if not self.count:
            raise ValueError("no values")
        rank = max(1, math.ceil(round(q * self.count, 9)))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(max(_middle(index), self.min), self.max)
        return float(self.max)

    def to_list(self) -> list:
        """A compact JSON-ready form: ``[count, total, min, max, [index, n, index, n, ...]]``."""
        flat: list[int] = []
        for index, n in self.counts.items():
            flat += (index, n)
        # JSON integers end at 64 bits; a sum of durations near the limit does not.
        total = self.total if self.total < 2**63 else float(self.total)
        return [self.count, total, self.min, self.max, flat]

    @classmethod
    def from_list(cls, stored: list) -> LatencyHistogram:
        count, total, low, high, flat = stored
        return cls(dict(zip(flat[::2], flat[1::2], strict=True)), count, total, low, high)
