"""Read-only queries over metric points, for the Metrics and Metric screens.

A stream is one metric's points from one service with one attribute set. Grouping every
stored point by stream reads the whole table (about 190 ms for 100k points), so the Metrics
screen does it once and then keeps a :class:`StreamCache` up to date by reading only the
rows added since (a range on the primary key). One metric's points come from the
``metric_points_by_name`` index: about 40 ms for 15k points of one histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from tracedesk.analysis.metric_series import MetricPoint
from tracedesk.store.reader import Reader

KEY = "name, type, unit, service_name, attributes"
POINT = "start_time_unix_nano, time_unix_nano, value, count, sum"


class StreamKey(NamedTuple):
    name: str
    type: str
    unit: str
    service_name: str
    attributes: str  # JSON text as stored: equal attribute sets store equal text


@dataclass(slots=True)
class Stream:
    """One stream: what the list shows about it, and its points in the window (no buckets)."""

    key: StreamKey
    description: str
    temporality: str | None
    monotonic: bool | None
    stored: int  # points stored, in or out of the window
    latest: MetricPoint
    points: list[MetricPoint] = field(default_factory=list)

    @property
    def attributes(self) -> dict[str, Any]:
        return orjson.loads(self.key.attributes)


def _monotonic(value: int | None) -> bool | None:
    return None if value is None else bool(value)


@dataclass
class StreamCache:
    """Every stream with its points of the last ``window_ns`` of data (up to the newest
    point stored), read in full once and then a few new rows at a time."""

    window_ns: int
    streams: dict[StreamKey, Stream] = field(default_factory=dict)
    newest_ns: int = 0
    _first_id: int = 0  # the oldest and newest point ids read
    _last_id: int = 0

    @property
    def since_ns(self) -> int:
        return self.newest_ns - self.window_ns

    def update(self, reader: Reader) -> None:
        """Catch up with the database: read new rows, or everything again after rows were
        deleted (retention, clearing) or on the first call."""
        conn = reader.conn
        # Two statements: SQLite answers a lone min() or max() from the index end.
        first_id = conn.execute("SELECT coalesce(min(point_id), 0) FROM metric_points"
                                ).fetchone()[0]
        last_id = conn.execute("SELECT coalesce(max(point_id), 0) FROM metric_points"
                               ).fetchone()[0]
        # Deletions (retention, clearing) take the oldest ids or all: both move these ends.
        if not self._last_id or first_id != self._first_id or last_id < self._last_id:
            self._load(reader, first_id, last_id)
            return
        added = conn.execute(
            f"SELECT {KEY}, {POINT}, description, temporality, is_monotonic FROM metric_points "
            "WHERE point_id > ? AND point_id <= ?", (self._last_id, last_id)).fetchall()
        self._last_id = last_id
        for row in added:
            key, point = StreamKey(*row[:5]), MetricPoint(*row[5:10])
            stream = self.streams.get(key)
            if stream is None:
                stream = self.streams[key] = Stream(key, row[10], row[11],
                                                    _monotonic(row[12]), 0, point)
            stream.stored += 1
            if point.time_unix_nano >= stream.latest.time_unix_nano:
                stream.latest = point
            late = bool(stream.points) and point.time_unix_nano < stream.points[-1].time_unix_nano
            stream.points.append(point)
            if late:
                stream.points.sort(key=lambda p: p.time_unix_nano)
            self.newest_ns = max(self.newest_ns, point.time_unix_nano)
        since = self.since_ns
        for stream in self.streams.values():
            if stream.points and stream.points[0].time_unix_nano < since:
                stream.points = [p for p in stream.points if p.time_unix_nano >= since]

    def _load(self, reader: Reader, first_id: int, last_id: int) -> None:
        conn = reader.conn
        self.streams.clear()
        self._first_id, self._last_id = first_id, last_id
        # max() makes SQLite take the other bare columns from the newest point's row.
        for row in conn.execute(
                f"SELECT {KEY}, {POINT}, max(time_unix_nano), description, temporality, "
                f"is_monotonic, count(*) FROM metric_points WHERE point_id <= ? GROUP BY {KEY}",
                (last_id,)):
            key = StreamKey(*row[:5])
            self.streams[key] = Stream(key, row[11], row[12], _monotonic(row[13]), row[14],
                                       MetricPoint(*row[5:10]))
        self.newest_ns = max((s.latest.time_unix_nano for s in self.streams.values()),
                             default=0)
        for row in conn.execute(
                f"SELECT {KEY}, {POINT} FROM metric_points WHERE time_unix_nano >= ? "
                "AND point_id <= ? ORDER BY time_unix_nano", (self.since_ns, last_id)):
            stream = self.streams.get(StreamKey(*row[:5]))
            if stream is not None:
                stream.points.append(MetricPoint(*row[5:]))


@dataclass(frozen=True, slots=True)
class StreamPoints:
    """One stream of a metric, with its points' buckets parsed (for the Metric screen)."""

    key: StreamKey
    description: str
    temporality: str | None
    monotonic: bool | None
    points: list[MetricPoint]

    @property
    def attributes(self) -> dict[str, Any]:
        return orjson.loads(self.key.attributes)


def newest_point(reader: Reader, name: str) -> int | None:
    """The time of a metric's newest point (from the index: no scan)."""
    return reader.conn.execute("SELECT max(time_unix_nano) FROM metric_points WHERE name = ?",
                               (name,)).fetchone()[0]


def metric_streams(reader: Reader, name: str, since_ns: int, until_ns: int,
                   steps: int | None = None) -> list[StreamPoints]:
    """A metric's streams with their points in ``[since, until]``, oldest first, ordered by
    service then attribute set.

    With ``steps``, a cumulative stream keeps only its newest point of each of that many
    steps: differences between them are the same, and a chart has no room for more (for
    an hour of a histogram, 15k points and 250 ms become a few thousand and 60 ms). Delta
    points each hold their own interval, so they all stay."""
    loads = orjson.loads
    by_key: dict[StreamKey, StreamPoints] = {}
    sql = (f"SELECT {KEY}, {POINT}, buckets, description, temporality, is_monotonic"
           "{} FROM metric_points WHERE name = ?1 AND time_unix_nano >= ?2 "
           "AND time_unix_nano <= ?3{} ORDER BY time_unix_nano, point_id")
    if steps:
        # max() makes SQLite take the other bare columns from each group's newest row.
        step = f"(time_unix_nano - ?2) * {int(steps)} / {max(1, until_ns - since_ns + 1)}"
        sql = sql.format(", max(time_unix_nano)", f" GROUP BY {KEY}, CASE WHEN temporality "
                         f"= 'delta' THEN -point_id ELSE {step} END")
    else:
        sql = sql.format("", "")
    rows = reader.conn.execute(sql, (name, since_ns, until_ns))
    for row in rows:
        key = StreamKey(*row[:5])
        stream = by_key.get(key)
        if stream is None:
            stream = by_key[key] = StreamPoints(key, row[11], row[12], _monotonic(row[13]), [])
        stream.points.append(MetricPoint(*row[5:10], loads(row[10]) if row[10] else None))
    return [by_key[k] for k in sorted(by_key, key=lambda k: (k.service_name, k.type,
                                                             k.attributes))]


@dataclass(frozen=True, slots=True)
class Exemplar:
    time_unix_nano: int
    value: float | None
    trace_id: str
    span_id: str
    service_name: str
    attributes: dict[str, Any]  # the point's attribute set
    filtered_attributes: dict[str, Any]  # the exemplar's own


def exemplars(reader: Reader, name: str, since_ns: int, limit: int = 500) -> list[Exemplar]:
    """A metric's exemplars recorded in the window, newest first."""
    out: list[Exemplar] = []
    rows = reader.conn.execute(
        "SELECT service_name, attributes, exemplars FROM metric_points WHERE name = ? "
        "AND time_unix_nano >= ? AND exemplars != '[]'", (name, since_ns))
    for service, attributes, found in rows:
        point_attributes = orjson.loads(attributes)
        for e in orjson.loads(found):
            if not isinstance(e, dict):
                continue
            value = e.get("value")
            out.append(Exemplar(
                int(e.get("time_unix_nano") or 0),
                float(value) if isinstance(value, int | float) else None,
                str(e.get("trace_id", "")), str(e.get("span_id", "")), service,
                point_attributes, e.get("attributes") or {}))
    # The same measurement can be reported by several cumulative points: keep it once.
    unique = {(e.time_unix_nano, e.trace_id, e.span_id, e.value, e.service_name): e
              for e in out}
    return sorted(unique.values(), key=lambda e: e.time_unix_nano, reverse=True)[:limit]
