"""`tracedesk bench-app` end to end in a tiny configuration: well-formed figures, no timing
assertions (the figures depend on the machine)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from conftest import clean_env

EXPECTED = {
    "start → first frame (list header), subprocess in a pty",
    "traces screen ready (first page drawn), in-process",
    "trace list: j/k (scrolled down)",
    "trace list: G/g until its rows are read and drawn",
    "open the big trace (enter → waterfall drawn)",
    "waterfall: space (fold / unfold the root)",
    "trace list j/k while 5,000 spans/s arrive",
}


def test_bench_app_reports_a_median_and_p95_for_every_target(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tracedesk", "bench-app", "--traces", "2000",
         "--trace-spans", "500", "--runs", "1", "--presses", "2", "--load-seconds", "1",
         "--keep", str(tmp_path / "data"), "--json"],
        capture_output=True, text=True, timeout=120, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data"]["big_trace_spans"] == 500
    assert report["data"]["traces"] >= 2000
    targets = {t["target"]: t for t in report["targets"]}
    assert targets.keys() >= EXPECTED
    for t in targets.values():
        assert t["samples_ms"], t["target"]
        assert math.isfinite(t["median_ms"]) and math.isfinite(t["p95_ms"])
        assert 0 < t["median_ms"] <= t["p95_ms"]
        assert t["limit_ms"] > 0 and isinstance(t["passed"], bool)
    assert report["load"]["sent_spans_per_second"] > 0
    assert list((tmp_path / "data").glob("*.db"))  # kept for the next run
