"""The Services screen over demo data: the graph's calls, and from a call to its traces."""

from __future__ import annotations

from app_support import RECEIVER, settle
from textual.widgets import DataTable

from tracedesk.ui.app import make_app
from tracedesk.ui.screens.services import ServicesScreen
from tracedesk.ui.screens.traces import TracesScreen
from tracedesk.ui.screenshots import seed_demo_database


def table_rows(app) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [" | ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]


async def test_the_demo_shops_calls_are_drawn_and_lead_to_traces(tmp_path):
    db = tmp_path / "demo.db"
    seed_demo_database(db, traces=40)
    app = make_app(db, RECEIVER, poll_seconds=0.05)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot, 0.5)
        assert isinstance(app.screen, ServicesScreen)
        rows = table_rows(app)
        assert rows[0].startswith("user")
        calls = [r.split(" | ")[0] for r in rows]
        assert "└─ frontend" in calls[1]
        assert any("checkout" in c for c in calls) and any("payments" in c for c in calls)
        assert any("postgres" in c and "database" in r for c, r in zip(calls, rows, strict=True))
        assert any("⇢ shipping" in c for c in calls)  # through the queue
        frontend = rows[1].split(" | ")
        assert float(frontend[2]) > 0 and int(frontend[6].replace(",", "")) >= 40

        await pilot.press("t")  # the flat table of edges
        assert any(r.startswith("checkout → payments") for r in table_rows(app))

        table = app.screen.query_one(DataTable)
        index = next(i for i, r in enumerate(table_rows(app))
                     if r.startswith("checkout → payments"))
        table.move_cursor(row=index)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TracesScreen)
        assert app.screen.filter.text == "payments"
