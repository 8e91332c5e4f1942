"""`tracedesk bench-writer` measures the real writer at a size and splits its time."""

from __future__ import annotations

import json
import sqlite3
import statistics

from tracedesk.bench_writer import bench_writer, run_bench_writer
from tracedesk.cli import main


def test_the_writer_is_timed_after_the_stored_spans_and_split_by_statement(tmp_path):
    path = tmp_path / "writer.db"
    result = bench_writer(path, stored=3000, spans=2000, runs=2, defer=True,
                          say=lambda text: None)
    with sqlite3.connect(path) as conn:
        stored, deferred = conn.execute("SELECT count(*), count(raw) FROM spans").fetchone()
    assert stored >= 3000 + 2 * 2000 and deferred == stored  # every span, kept deferred
    assert len(result["us_per_span"]) == 2 and result["us_per_span_median"] > 0
    split = result["split_us_per_span"]
    assert {"INSERT INTO spans", "INSERT INTO traces", "COMMIT"} <= split.keys()
    # The statements run inside the timed stretch: together no longer than it.
    assert 0 < sum(split.values()) <= statistics.mean(result["us_per_span"])
    assert result["python_us_per_span"] >= 0


def test_the_command_prints_json(capsys):
    assert main(["bench-writer", "--stored", "0", "--spans", "1000", "--runs", "1",
                 "--eager", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["deferred"] is False and result["stored_before"] == 0
    assert result["split_us_per_span"]["INSERT INTO spans"] > 0


def test_the_report_names_where_the_time_goes(capsys):
    assert run_bench_writer(stored=0, spans=1000, runs=1, eager=False, as_json=False) == 0
    out = capsys.readouterr().out
    assert "µs/span" in out and "INSERT INTO spans" in out and "writer's own Python" in out
