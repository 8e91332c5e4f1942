"""The Metrics and Metric screens, driven through Pilot over a real database."""

from __future__ import annotations

from app_support import BASE, RECEIVER, settle, widget_text
from opentelemetry.proto.metrics.v1 import metrics_pb2
from otlp_builders import kv, metrics_request

from tracedesk.demo.shop import Shop
from tracedesk.otlp import Signal, decode
from tracedesk.ui.app import make_app
from tracedesk.ui.screens.metric import MetricScreen
from tracedesk.ui.screens.metrics import MetricList, MetricsScreen, differing_first
from tracedesk.ui.screens.trace import TraceScreen
from tracedesk.ui.widgets.waterfall import Waterfall

SIZE = (160, 40)
STEP_NS = 2_000_000_000


def seed_shop(store, exports: int = 6) -> None:
    """The demo shop's traces and metrics: a few traces, then every metric, ``exports``
    times, two seconds apart."""
    shop = Shop(seed=3, repeat_ids=True)
    for n in range(exports):
        now = BASE + n * STEP_NS
        request, _, _ = shop.traces_request_for(4, now_ns=now)
        store.writer.apply(decode(Signal.TRACES, request.SerializeToString(), store.resources))
        metrics, _ = shop.metrics_request(now_ns=now)
        store.writer.apply(decode(Signal.METRICS, metrics.SerializeToString(),
                                  store.resources))
    store.writer.commit()


def add_metric(store, metric: metrics_pb2.Metric, service: str = "svc") -> None:
    body = metrics_request(metric, service=service).SerializeToString()
    store.writer.apply(decode(Signal.METRICS, body, store.resources))
    store.writer.commit()


def lines(app) -> list[str]:
    """Every row of the list as it is drawn (all fit in the first page)."""
    metric_list = app.screen.query_one(MetricList)
    width = metric_list.size.width
    return [metric_list.render_row(metric_list.cached_row(i), width).text.rstrip()
            for i in range(metric_list.total)]


async def open_metrics(pilot) -> None:
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)
    assert isinstance(pilot.app.screen, MetricsScreen)


async def open_metric(pilot, name: str) -> MetricScreen:
    await pilot.press("slash", *name, "enter")
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot, 0.5)
    screen = pilot.app.screen
    assert isinstance(screen, MetricScreen) and screen.metric == name
    return screen


def titles(screen: MetricScreen) -> list[str]:
    return [str(t.render()) for t in screen.query(".metric-title")]


async def test_list_shows_every_stream_with_its_latest_value(store):
    seed_shop(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_metrics(pilot)
        rows = lines(app)
        names = {row.split()[0] for row in rows}
        assert {"http.server.request.duration", "shop.orders.placed",
                "process.cpu.utilization", "db.client.connection.count"} <= names
        histogram = next(r for r in rows if r.startswith("http.server.request.duration"))
        assert "histogram" in histogram and "frontend" in histogram and "avg " in histogram
        assert "ms" in histogram  # the mean in the unit's terms: seconds shown as ms
        gauge = next(r for r in rows if r.startswith("process.cpu.utilization"))
        assert "gauge" in gauge and any(c in gauge for c in "▁▂▃▄▅▆▇█")
        counter = next(r for r in rows if r.startswith("shop.orders.placed"))
        assert "counter" in counter and "currency=USD" in counter
        banner = str(app.screen.query_one("#metrics-banner").render())
        assert f"{len(rows)} streams" in banner
        # Streams of one metric and service lead with the attribute that tells them apart.
        pools = [r for r in rows if r.startswith("db.client.connection.count")]
        assert pools and all(r.split()[4].startswith("db.client.connection.state=")
                             for r in pools)

        await pilot.press("slash", *"payments", "enter")  # service names match too
        await settle(pilot)
        assert lines(app) and all("payments" in r for r in lines(app))
        await pilot.press("escape")
        await settle(pilot)
        assert len(lines(app)) == len(rows)


async def test_histogram_shows_quantiles_buckets_and_opens_an_exemplars_trace(store):
    seed_shop(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_metrics(pilot)
        screen = await open_metric(pilot, "http.server.request.duration")
        first = titles(screen)[0]
        assert "observations" in first and "p95" in first
        assert all(q in first for q in ("p50", "p95", "p99"))
        buckets = widget_text(screen.query(".metric-buckets").first())
        assert "≤ " in buckets and "█" in buckets
        chart = widget_text(screen.query("Chart").first())
        assert any("\u2800" < c <= "\u28ff" for c in chart)  # a braille line was drawn

        table = screen.query_one("#exemplars")
        assert table.row_count > 1
        await pilot.press("j")  # the exemplars move with the list keys
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("k")
        assert table.cursor_row == table.row_count - 2
        await pilot.press("g")
        assert table.cursor_row == 0
        exemplar = screen._exemplars[0]
        await pilot.press("enter")
        await settle(pilot, 0.5)
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == exemplar.trace_id
        assert app.screen.query_one(Waterfall).selected_id == exemplar.span_id
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MetricsScreen)


async def test_shift_j_and_k_scroll_the_charts_a_chart_at_a_time(store):
    seed_shop(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_metrics(pilot)
        screen = await open_metric(pilot, "http.server.request.duration")
        body = screen.query_one("#metric-body")
        panels = list(screen.query(".metric-panel"))
        assert len(panels) > 2 and body.scroll_y == 0
        await pilot.press("J")
        await settle(pilot, 0.1)
        assert body.scroll_y == panels[1].virtual_region.y > 0  # the second chart on top
        await pilot.press("J")
        await settle(pilot, 0.1)
        assert body.scroll_y == panels[2].virtual_region.y
        await pilot.press("K")
        await settle(pilot, 0.1)
        assert body.scroll_y == panels[1].virtual_region.y
        assert screen.query_one("#exemplars").cursor_row == 0  # the exemplars stay put


async def test_counter_shows_its_rate(store):
    seed_shop(store)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_metrics(pilot)
        screen = await open_metric(pilot, "http.server.request.count")
        assert any("rate " in t and "/s" in t and "per second" in t for t in titles(screen))


def hostile_metric() -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name="[bold red]boom[/]\x1b[31m", unit="[i]u")
    metric.gauge.data_points.add(
        time_unix_nano=BASE, as_double=4.0,
        attributes=[kv("[link=x]k[/link]", "[reverse]v\x07")],
        exemplars=[metrics_pb2.Exemplar(time_unix_nano=BASE, as_double=4.0,
                                        trace_id=b"\x01" * 16, span_id=b"\x02" * 8)])
    return metric


async def test_hostile_names_are_shown_literally_and_a_missing_trace_is_said(store):
    add_metric(store, hostile_metric(), service="[b]svc")
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_metrics(pilot)
        (row,) = lines(app)
        assert row.startswith("[bold red]boom[/]·[31m")  # the escape is a visible dot
        assert "[link=x]k[/link]=[reverse]v·" in row and "[b]svc" in row
        await pilot.press("enter")
        await settle(pilot, 0.5)
        screen = app.screen
        assert isinstance(screen, MetricScreen)
        assert "[bold red]boom[/]" in str(screen.query_one("#metric-header").render())
        assert "[reverse]v·" in titles(screen)[0]
        await pilot.press("enter")  # the exemplar's trace was never received
        await settle(pilot)
        assert isinstance(app.screen, MetricScreen)
        assert any("is not stored" in str(n.message) for n in app._notifications)


async def test_new_points_show_up_live(store):
    gauge = metrics_pb2.Metric(name="queue.depth", unit="{item}")
    gauge.gauge.data_points.add(time_unix_nano=BASE, as_int=3)
    add_metric(store, gauge)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    MetricsScreen.MIN_RELOAD_SECONDS = 0.0
    try:
        async with app.run_test(size=SIZE) as pilot:
            await open_metrics(pilot)
            assert lines(app)[0].split()[-2:] == ["3", "▁"]
            later = metrics_pb2.Metric(name="queue.depth", unit="{item}")
            later.gauge.data_points.add(time_unix_nano=BASE + STEP_NS, as_int=9)
            add_metric(store, later)
            other = metrics_pb2.Metric(name="jobs.done", unit="1")
            other.gauge.data_points.add(time_unix_nano=BASE + STEP_NS, as_int=1)
            add_metric(store, other)
            await settle(pilot, 0.5)
            rows = lines(app)
            assert [r.split()[0] for r in rows] == ["jobs.done", "queue.depth"]
            assert "9" in rows[1].split()
    finally:
        MetricsScreen.MIN_RELOAD_SECONDS = 2.0


def test_attributes_that_differ_between_streams_come_first():
    sets = [{"pool": "a", "host": "h", "state": "idle"},
            {"pool": "a", "host": "h", "state": "used"},
            {"pool": "a", "host": "h"}]
    assert [list(a) for a in differing_first(sets)] == [
        ["state", "pool", "host"], ["state", "pool", "host"], ["pool", "host"]]
    assert differing_first(sets)[0] == sets[0]  # the same set, reordered
    one = [{"b": 1, "a": 2}]
    assert list(differing_first(one)[0]) == ["b", "a"]
    assert [list(a) for a in differing_first([{"n": 1}, {"n": 1.0}, {"n": True}])] == [
        ["n"], ["n"], ["n"]]


async def test_chart_titles_lead_with_the_attributes_that_tell_the_streams_apart(store):
    gauge = metrics_pb2.Metric(name="pool.connections", unit="{connection}")
    for state, count in (("idle", 4), ("used", 7)):
        point = gauge.gauge.data_points.add(time_unix_nano=BASE, as_int=count)
        point.attributes.extend([kv("pool", "main"), kv("host", "db-1"), kv("state", state)])
    add_metric(store, gauge)
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await open_metrics(pilot)
        screen = await open_metric(pilot, "pool.connections")
        shown = sorted(title.split("  ")[-1] for title in titles(screen))
        assert shown == ["state=idle pool=main host=db-1", "state=used pool=main host=db-1"]
