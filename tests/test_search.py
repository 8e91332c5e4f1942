"""`tracedesk search`: the command line over a real database of the demo shop's traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from otlp_builders import make_span, traces_request

from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.query import QuerySpan, matching_spans, parse
from tracedesk.store.reader import Reader
from tracedesk.store.writer import Writer
from tracedesk.ui.screenshots import seed_demo_database


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("search") / "shop.db"
    seed_demo_database(path, traces=60)
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracedesk", "search", *args],
                          capture_output=True, text=True, timeout=60)


def reference(db: Path, text: str) -> dict[str, set[str]]:
    """Every matching trace with its matched spans, by the evaluator over all traces."""
    reader = Reader(db)
    query, out = parse(text), {}
    for trace in reader.trace_page(0, 10_000):
        spans = [QuerySpan.from_span(s, reader.resource(s.resource_id))
                 for s in reader.spans(trace.trace_id)]
        matched = matching_spans(query, spans)
        if matched:
            out[trace.trace_id] = matched
    reader.close()
    return out


def test_json_lists_the_matching_traces_with_their_matched_spans(shop_db):
    text = '{ status = error } && { resource.service.name = "payments" }'
    result = run(text, "--db", str(shop_db), "--since", "0", "--limit", "1000", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    expected = reference(shop_db, text)
    assert expected, "the demo shop has failed payments"
    assert {r["trace_id"]: set(r["matched_span_ids"]) for r in found} == expected
    first = found[0]
    assert set(first) >= {"trace_id", "root_service_name", "root_span_name", "start",
                          "start_time_unix_nano", "duration_ns", "matched_span_count"}
    assert first["matched_span_count"] == len(first["matched_span_ids"])
    starts = [r["start_time_unix_nano"] for r in found]
    assert starts == sorted(starts, reverse=True)  # newest first


def test_the_table_is_newest_first_and_limited(shop_db):
    result = run("{ }", "--db", str(shop_db), "--since", "0", "--limit", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["trace", "id", "root"]
    assert len(lines) == 6
    reader = Reader(shop_db)
    newest = [t.trace_id for t in reader.trace_page(0, 5)]
    reader.close()
    assert [line.split()[0] for line in lines[1:]] == newest


def test_by_duration_lists_the_slowest_first(shop_db):
    result = run("checkout", "--db", str(shop_db), "--since", "0", "--by-duration",
                 "--limit", "50", "--json")
    durations = [r["duration_ns"] for r in json.loads(result.stdout)]
    assert durations and durations == sorted(durations, reverse=True)


def test_since_keeps_only_recent_traces(shop_db):
    # The demo data is from a fixed day in the past: the last hour holds none of it.
    result = run("{ }", "--db", str(shop_db), "--since", "1h", "--json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])
    assert run("{ }", "--db", str(shop_db), "--since", "1h").stdout == "no matching traces\n"


def test_a_malformed_query_points_at_its_error(shop_db):
    result = run("{ duration > }", "--db", str(shop_db))
    assert result.returncode == 2
    message, query, caret = result.stderr.rstrip("\n").splitlines()
    assert message.startswith("tracedesk search: ")
    assert query == "  { duration > }"
    assert caret.index("^") == query.index("}")


def test_a_missing_database_is_one_clear_line(tmp_path):
    result = run("{ }", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 1
    assert "no database at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_hostile_names_are_printed_inert(tmp_path):
    db = tmp_path / "h.db"
    writer = Writer(db)
    span = make_span(1, 1, name="\x1b]0;pwned\x07\x1b[2Jboom")
    writer.apply(decode(Signal.TRACES, traces_request({"svc": [span]}).SerializeToString(),
                        ResourceTable()))
    writer.close()
    result = run("boom", "--db", str(db))
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "boom" in result.stdout
