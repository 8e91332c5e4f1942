"""`tracedesk bench-views` end to end in a tiny configuration: well-formed figures, no timing
assertions (the figures depend on the machine)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from conftest import clean_env

EXPECTED = {
    "services screen ready (4 → graph table drawn)": 500,
    "RED panel ready (m on a span → its figures drawn)": 500,
    "logs screen opens (2 → first page of rows drawn)": 300,
    "log list: pagedown/pageup a screenful, rows read before": 16,
    "log list: pagedown onto unread rows, until drawn": 16,
    "log list: G/g (frame, rows may be placeholders)": 16,
    "log list: G/g until its rows are read and drawn": 16,
}


def test_bench_views_reports_a_median_and_p95_for_every_target(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tracedesk", "bench-views", "--spans", "3000", "--logs", "3000",
         "--runs", "1", "--presses", "2", "--keep", str(tmp_path / "data"), "--json"],
        capture_output=True, text=True, timeout=120, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data"]["spans"] >= 3000 and report["data"]["logs"] >= 3000
    assert 50 <= report["data"]["span_minutes"] <= 60  # the last hour, evenly
    targets = {t["target"]: t for t in report["targets"]}
    assert {name: t["limit_ms"] for name, t in targets.items()} == EXPECTED
    for t in targets.values():
        assert t["samples_ms"], t["target"]
        assert math.isfinite(t["median_ms"]) and math.isfinite(t["p95_ms"])
        assert 0 < t["median_ms"] <= t["p95_ms"]
        assert isinstance(t["passed"], bool)
    for screen in ("services", "red", "logs open"):
        assert report["breakdown_ms"][screen]["db read"] >= 0
    assert report["notes"]["services: spans read for the graph"] > 0
    assert report["notes"]["RED: calls of the operation in the window"] > 0
    assert list((tmp_path / "data").glob("bench-views-*.db"))  # kept for the next run
