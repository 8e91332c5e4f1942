"""The benchmark's spans: the demo shop's traces enriched to the spec's realistic shape."""

from __future__ import annotations

import random

import orjson

from tracedesk.bench import enrich
from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable
from tracedesk.otlp.traces import decode_traces


def _requests(seed: int, enriched: bool, count: int = 8) -> list:
    shop, rng = Shop(seed=seed), random.Random(seed)
    out = []
    for _ in range(count):
        request, _ = shop.traces_request(512)
        if enriched:
            enrich(request, rng)
        out.append(request)
    return out


def _spans(requests: list) -> list:
    return [s for r in requests for rs in r.resource_spans for ss in rs.scope_spans
            for s in ss.spans]


def test_bench_spans_carry_about_ten_attributes_and_one_event():
    spans = _spans(_requests(seed=3, enriched=True))
    attributes = sum(len(s.attributes) for s in spans) / len(spans)
    events = sum(len(s.events) for s in spans) / len(spans)
    assert 9.5 <= attributes <= 10.5
    assert 0.8 <= events <= 1.2
    services = {kv.value.string_value for r in _requests(seed=3, enriched=True, count=1)
                for rs in r.resource_spans for kv in rs.resource.attributes
                if kv.key == "service.name"}
    assert len(services) >= 4
    assert all(e.time_unix_nano >= s.start_time_unix_nano for s in spans for e in s.events)


def test_enrichment_leaves_the_demo_alone():
    plain = _spans(_requests(seed=3, enriched=False))
    assert sum(len(s.attributes) for s in plain) / len(plain) < 9.5
    assert sum(len(s.events) for s in plain) / len(plain) < 0.2
    assert all(kv.key != "thread.id" for s in plain for kv in s.attributes)


def test_every_added_attribute_and_event_is_stored():
    request = _requests(seed=4, enriched=True, count=1)[0]
    batch = decode_traces(request, ResourceTable())
    spans = _spans([request])
    assert len(batch.spans) == len(spans)
    for row, span in zip(batch.spans, spans, strict=True):
        attributes, events = orjson.loads(row[11]), orjson.loads(row[12])
        assert len(attributes) == len(span.attributes) and "thread.id" in attributes
        assert [e["name"] for e in events] == [e.name for e in span.events]
