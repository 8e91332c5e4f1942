"""From a span, `m` shows its operation's and service's RED metrics around its time."""

from __future__ import annotations

from app_support import BASE, RECEIVER, settle
from otlp_builders import make_span
from textual.widgets import Sparkline

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.red import RedScreen
from tracedesk.ui.screens.trace import TraceScreen


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_a_span_is_placed_in_its_operations_distribution(store):
    # 20 calls of GET /items a minute apart, 1 ms to 20 ms; the slowest is the newest trace.
    for n in range(1, 21):
        store.add_spans({"api": [make_span(n, 1, None, name="GET /items", base_ns=BASE,
                                           start_ms=n * 60_000, duration_ms=n,
                                           error=n % 10 == 0)]})
    store.add_spans({"api": [make_span(99, 1, None, name="GET /health", base_ns=BASE,
                                       start_ms=19 * 60_000 + 30_000, duration_ms=1)]})
    app = make_app(store.path, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TraceScreen)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, RedScreen)
        assert "slower than 83.3% of the 6 calls" in text(app, "#red-verdict")  # ±5 min

        await pilot.press("w")  # ±15 minutes: calls 5..20, 15 of them faster than 20 ms
        await settle(pilot)
        verdict = text(app, "#red-verdict")
        assert "took 20ms" in verdict and "slower than 93.8%" in verdict
        assert "of the 16 calls" in verdict
        # Per second of data: the calls cover minutes 5 to 20 of the 30-minute window (its
        # later half is after the newest call), so 16 calls in 900 s.
        assert text(app, "#red-operation-rate-value") == "0.02/s  (16 calls)"
        assert "12.5%" in text(app, "#red-operation-errors-value")  # calls 10 and 20 failed
        assert text(app, "#red-operation-p50-value") == "12ms"
        assert "17 calls" in text(app, "#red-service-rate-value")  # with GET /health
        assert any(app.screen.query_one("#red-operation-rate", Sparkline).data)

        await pilot.press("w")  # ±1 hour: every call
        await settle(pilot)
        assert "slower than 95.0% of the 20 calls" in text(app, "#red-verdict")
        await pilot.press("escape")
        assert isinstance(app.screen, TraceScreen)
