"""`tracedesk export` and `tracedesk import` as a user runs them, over real databases.

The round trip: the demo shop's traces stored as the receiver stores them, one exported,
imported into an empty database, compared column by column; and the exported file POSTed to
a real `tracedesk serve`.
"""

from __future__ import annotations

import http.client
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import orjson
from conftest import clean_env, start_serve
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from otlp_builders import kv, logs_request, make_span, span_id, trace_id, traces_request

from tracedesk.demo.shop import Shop
from tracedesk.otlp import ResourceTable, Signal, decode
from tracedesk.otlp.batch import SPAN_COLUMNS
from tracedesk.store.reader import Reader
from tracedesk.store.schema import connect
from tracedesk.store.writer import Writer
from tracedesk.transfer.export import export_trace
from tracedesk.transfer.importer import Importer
from tracedesk.transfer.progress import Progress

PROTOBUF = "application/x-protobuf"
NOW = time.time_ns()  # recent: a receiver's retention by age keeps the rows
# Every span column but the internal raw bytes, read the same way whether deferred or not.
_COLUMNS = ", ".join(
    f"coalesce({c}, span_{c}(raw))" if c in ("attributes", "events", "links") else c
    for c in SPAN_COLUMNS if c != "raw")


def tracedesk(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracedesk", *args], capture_output=True,
                          timeout=120, env=clean_env(tmp_path))


def seed_shop(path: Path, traces: int = 6) -> None:
    """The demo shop's traces, decoded and written as the receiver does."""
    shop = Shop(seed=5, repeat_ids=True)
    writer = Writer(path)
    resources = ResourceTable()
    for n in range(traces):
        request, _, _ = shop.traces_request_for(1, now_ns=NOW - (traces - n) * 400_000_000)
        writer.apply(decode(Signal.TRACES, request.SerializeToString(), resources))
    writer.commit()
    writer.close()


def span_rows(path: Path, tid: str) -> list[tuple]:
    conn = connect(path, readonly=True)
    try:
        return conn.execute(f"SELECT {_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY span_id",
                            (tid,)).fetchall()
    finally:
        conn.close()


def resource_rows(path: Path, tid: str) -> list[tuple]:
    conn = connect(path, readonly=True)
    try:
        return conn.execute(
            "SELECT * FROM resources WHERE resource_id IN "
            "(SELECT resource_id FROM spans WHERE trace_id = ?) ORDER BY resource_id",
            (tid,)).fetchall()
    finally:
        conn.close()


def trace_row(path: Path, tid: str) -> tuple:
    conn = connect(path, readonly=True)
    try:
        # All but seq and trace_ref, which each database numbers on its own.
        return conn.execute("SELECT * FROM traces WHERE trace_id = ?", (tid,)).fetchone()[:-2]
    finally:
        conn.close()


def richest_trace(path: Path) -> str:
    """The stored trace with the most services, then the most spans."""
    conn = connect(path, readonly=True)
    try:
        return conn.execute("SELECT trace_id FROM traces ORDER BY json_array_length(services) "
                            "DESC, span_count DESC LIMIT 1").fetchone()[0]
    finally:
        conn.close()


def count_rows(path: Path, table: str) -> int:
    conn = connect(path, readonly=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


# --- round trip ------------------------------------------------------------------------


def test_export_then_import_into_an_empty_database_gives_identical_spans(tmp_path):
    src, dst, out = tmp_path / "src.db", tmp_path / "dst.db", tmp_path / "trace.json"
    seed_shop(src)
    tid = richest_trace(src)
    spans = span_rows(src, tid)
    assert len(spans) > 10 and len({row[5] for row in spans}) >= 4  # several services

    result = tracedesk(tmp_path, "export", tid[:10].upper(), "-o", str(out), "--db", str(src))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert result.stderr.decode().strip() == f"wrote trace {tid} ({len(spans)} spans) to {out}"

    result = tracedesk(tmp_path, "import", str(out), "--db", str(dst))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == (
        f"{out}: {len(spans)} spans, 0 log records, 0 metric points imported\n")
    assert b"\r" not in result.stderr  # no progress bar when stderr is not a terminal

    assert span_rows(dst, tid) == spans
    assert resource_rows(dst, tid) == resource_rows(src, tid)
    assert trace_row(dst, tid) == trace_row(src, tid)
    assert count_rows(dst, "spans") == len(spans)


def test_the_export_is_otlp_json_grouped_by_resource_and_scope(tmp_path):
    src = tmp_path / "src.db"
    seed_shop(src)
    tid = richest_trace(src)
    result = tracedesk(tmp_path, "export", tid, "--db", str(src))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert list(doc) == ["resourceSpans"]
    conn = connect(src, readonly=True)
    groups = conn.execute(
        "SELECT resource_id, count(DISTINCT scope_name || ' ' || scope_version) FROM spans "
        "WHERE trace_id = ? GROUP BY resource_id", (tid,)).fetchall()
    conn.close()
    assert len(doc["resourceSpans"]) == len(groups)
    assert sorted(len(rs["scopeSpans"]) for rs in doc["resourceSpans"]) == sorted(
        n for _, n in groups)
    for rs in doc["resourceSpans"]:
        assert {"key", "value"} <= rs["resource"]["attributes"][0].keys()
        for ss in rs["scopeSpans"]:
            assert ss["scope"]["name"]
            for span in ss["spans"]:
                assert span["traceId"] == tid and len(span["spanId"]) == 16
                assert isinstance(span["startTimeUnixNano"], str)  # int64 as a string
                assert isinstance(span["kind"], int)  # enums as numbers
                for attribute in span.get("attributes", []):
                    (kind,) = attribute["value"]
                    assert kind in ("stringValue", "intValue", "doubleValue", "boolValue",
                                    "arrayValue", "kvlistValue")
                    if kind == "intValue":
                        assert isinstance(attribute["value"][kind], str)


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    """POST an Export request to a receiver's /v1/traces."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/v1/traces", body, {"Content-Type": content_type})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_a_running_receiver_accepts_the_export_and_stores_the_same_spans(tmp_path):
    src = tmp_path / "src.db"
    seed_shop(src)
    tid = richest_trace(src)
    result = tracedesk(tmp_path, "export", tid, "--db", str(src))
    assert result.returncode == 0, result.stderr

    receiver = start_serve(tmp_path / "serve")
    try:
        status, body = post(receiver.http_url, result.stdout)
        assert status == 200, body
        assert "partialSuccess" not in json.loads(body)  # nothing rejected
        assert span_rows(receiver.db_path, tid) == span_rows(src, tid)
        assert resource_rows(receiver.db_path, tid) == resource_rows(src, tid)
    finally:
        receiver.stop()


def test_every_kind_of_value_survives_the_round_trip_even_from_deferred_rows(tmp_path):
    """Bytes (stored as base64 text), doubles without a fraction, int64 extremes, NaN,
    nested maps and arrays, empty values; events, links, trace state, flags, scopes."""
    nested = KeyValue(key="nested", value=AnyValue())
    inner = nested.value.kvlist_value.values
    inner.append(kv("b", True))
    array = KeyValue(key="inner", value=AnyValue())
    array.value.array_value.values.extend([AnyValue(int_value=-1), AnyValue(double_value=2.0),
                                           AnyValue(string_value="é")])
    inner.append(array)
    root = make_span(1, 1, name="root", base_ns=NOW, error=True, whole=1.0, big=2**63 - 1,
                     small=-(2**63), nan=math.nan, text="<b>[red]x")
    root.attributes.extend([KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xff")),
                            KeyValue(key="empty", value=AnyValue()), nested])
    root.trace_state, root.flags = "vendor=1", 0x301
    event = root.events.add(name="exception", time_unix_nano=NOW + 5,
                            dropped_attributes_count=2)
    event.attributes.append(kv("exception.type", "E"))
    link = root.links.add(trace_id=trace_id(9), span_id=span_id(9), trace_state="a=b",
                          flags=1)
    link.attributes.append(kv("why", "retry"))
    child = make_span(1, 2, 1, name="child", base_ns=NOW, start_ms=1)
    request = traces_request({"svc": [root, child]})
    request.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    request.resource_spans[0].scope_spans[0].scope.name = "lib"
    request.resource_spans[0].scope_spans[0].scope.version = "1.2"
    other = request.resource_spans[0].scope_spans.add()
    other.scope.name = "other-lib"
    other.spans.append(make_span(1, 3, 1, name="in another scope", base_ns=NOW))

    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    writer = Writer(src)
    writer.apply(decode(Signal.TRACES, request.SerializeToString(), ResourceTable(),
                        defer=True))  # rows hold their protobuf bytes, as under load
    writer.commit()
    writer.close()
    tid = trace_id(1).hex()
    reader = Reader(src)
    exported = export_trace(reader, tid)
    reader.close()
    doc = orjson.loads(exported.data)
    (rs,) = doc["resourceSpans"]
    assert rs["schemaUrl"] == "https://opentelemetry.io/schemas/1.26.0"
    assert [ss["scope"] for ss in rs["scopeSpans"]] == [{"name": "lib", "version": "1.2"},
                                                         {"name": "other-lib"}]

    path = tmp_path / "t.json"
    path.write_bytes(exported.data)
    importer = Importer(dst)
    report = importer.import_file(path)
    importer.close()
    assert report.ok and report.imported[Signal.TRACES] == 3
    assert span_rows(dst, tid) == span_rows(src, tid)
    assert resource_rows(dst, tid) == resource_rows(src, tid)
    root_row = next(row for row in span_rows(dst, tid) if row[3] == "root")
    attributes = json.loads(root_row[SPAN_COLUMNS.index("attributes")])
    assert attributes["whole"] == 1.0 and isinstance(attributes["whole"], float)
    assert attributes["raw"] == "AP8=" and attributes["nan"] == "nan"
    assert attributes["nested"] == {"b": True, "inner": [-1, 2.0, "é"]}


# --- import ------------------------------------------------------------------------------


def _json_span(sid: str, name: str) -> dict:
    return {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": sid, "name": name,
            "kind": 2, "startTimeUnixNano": str(NOW), "endTimeUnixNano": str(NOW + 1000)}


def _resource(service: str) -> dict:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


def test_a_json_lines_file_with_mixed_signals_a_broken_line_and_a_bad_id(tmp_path):
    traces = {"resourceSpans": [{"resource": _resource("web"), "scopeSpans": [{"spans": [
        _json_span("b7ad6b7169203331", "GET /"), _json_span("b7ad6b7169203332", "SELECT"),
        _json_span("not-hex!", "bad")]}]}]}
    logs = {"resourceLogs": [{"resource": _resource("web"), "scopeLogs": [{"logRecords": [
        {"timeUnixNano": str(NOW), "severityNumber": 9, "body": {"stringValue": f"m{i}"}}
        for i in range(3)]}]}]}
    metrics = {"resourceMetrics": [{"resource": _resource("web"), "scopeMetrics": [{
        "metrics": [
            {"name": "queue.depth", "gauge": {"dataPoints": [
                {"timeUnixNano": str(NOW), "asInt": "4"},
                {"timeUnixNano": str(NOW + 1), "asDouble": 5.0}]}},
            {"name": "requests", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                         "dataPoints": [{"timeUnixNano": str(NOW),
                                                         "asInt": "10"}]}}]}]}]}
    path = tmp_path / "collector.jsonl"
    path.write_bytes(b"\n".join([
        orjson.dumps(traces), orjson.dumps(logs), b'{"resourceSpans": [', b"",
        orjson.dumps(metrics), b'{"something": "else"}']) + b"\n")
    db = tmp_path / "t.db"

    result = tracedesk(tmp_path, "import", str(path), "--db", str(db))
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert lines[0] == (f"{path}: 2 spans, 3 log records, 3 metric points imported; "
                        "rejected 1 span; 2 requests unreadable")
    assert lines[1] == "  line 1: spanId 'not-hex!' is not hex"
    assert lines[2].startswith("  line 1: span 'bad': invalid ids")
    assert lines[3].startswith("  line 3: invalid JSON: ")
    assert lines[4] == ("  line 6: not an OTLP request (no resourceSpans, resourceLogs or "
                        "resourceMetrics)")
    assert len(lines) == 5
    assert (count_rows(db, "spans"), count_rows(db, "logs"),
            count_rows(db, "metric_points"), count_rows(db, "traces")) == (2, 3, 3, 1)


def test_a_pretty_printed_json_file_is_one_request(tmp_path):
    path = tmp_path / "pretty.json"
    doc = {"resourceSpans": [{"resource": _resource("api"), "scopeSpans": [{"spans": [
        _json_span("b7ad6b7169203331", "GET /")]}]}]}
    path.write_text(json.dumps(doc, indent=2))
    importer = Importer(tmp_path / "t.db")
    report = importer.import_file(path)
    importer.close()
    assert report.ok and report.imported[Signal.TRACES] == 1


def test_protobuf_files_of_every_signal_and_length_prefixed_sequences(tmp_path):
    shop = Shop(seed=3)
    spans_request, span_count, _ = shop.traces_request_for(2, now_ns=NOW)
    logs, log_count = shop.logs_request(now_ns=NOW)
    metrics, point_count = shop.metrics_request(now_ns=NOW)
    (tmp_path / "traces.bin").write_bytes(spans_request.SerializeToString())  # no suffix
    (tmp_path / "logs.pb").write_bytes(logs.SerializeToString())
    framed = b"".join(len(m).to_bytes(4, "big") + m for m in (
        metrics.SerializeToString(), logs.SerializeToString()))
    (tmp_path / "collector.binpb").write_bytes(framed)
    db = tmp_path / "t.db"

    result = tracedesk(tmp_path, "import", *(str(tmp_path / name) for name in (
        "traces.bin", "logs.pb", "collector.binpb")), "--db", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].endswith(f"traces.bin: {span_count} spans, 0 log records, "
                             "0 metric points imported")
    assert lines[1].endswith(f"logs.pb: 0 spans, {log_count} log records, "
                             "0 metric points imported")
    assert lines[2].endswith(f"collector.binpb: 0 spans, {log_count} log records, "
                             f"{point_count} metric points imported")
    assert lines[3] == (f"total: {span_count} spans, {2 * log_count} log records, "
                        f"{point_count} metric points imported from 3 files; "
                        "0 files with problems")
    assert count_rows(db, "spans") == span_count
    assert count_rows(db, "logs") == 2 * log_count
    assert count_rows(db, "metric_points") == point_count


def test_unreadable_files_are_reported_and_the_others_still_imported(tmp_path):
    good = tmp_path / "good.pb"
    good.write_bytes(logs_request(logs_pb2.LogRecord(time_unix_nano=NOW)).SerializeToString())
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello, this is not telemetry\n")
    empty = tmp_path / "empty.json"
    empty.write_text("")
    missing, folder = tmp_path / "missing.json", tmp_path / "folder"
    folder.mkdir()
    db = tmp_path / "t.db"

    result = tracedesk(tmp_path, "import", str(missing), str(folder), str(garbage), str(empty),
                       str(good), "--db", str(db))
    assert result.returncode == 1
    out = result.stdout.decode()
    assert f"{missing}: cannot read: No such file or directory\n" in out
    assert f"{folder}: cannot read: Is a directory\n" in out
    assert (f"{garbage}: 0 spans, 0 log records, 0 metric points imported; "
            "1 request unreadable\n  not an OTLP protobuf Export request") in out
    assert f"{empty}: 0 spans, 0 log records, 0 metric points imported; 1 request " in out
    assert "  the file is empty\n" in out
    assert f"{good}: 0 spans, 1 log record, 0 metric points imported\n" in out
    assert out.endswith("from 5 files; 4 files with problems\n")
    assert count_rows(db, "logs") == 1


def test_rejections_of_a_protobuf_request_are_counted_and_explained(tmp_path):
    bad = make_span(4, 1, name="zero parent")
    bad.trace_id = b"\x00" * 16
    request = traces_request({"svc": [make_span(4, 1), bad]})
    path = tmp_path / "spans.pb"
    path.write_bytes(request.SerializeToString())
    importer = Importer(tmp_path / "t.db")
    report = importer.import_file(path)
    importer.close()
    assert not report.ok
    assert report.imported[Signal.TRACES] == 1 and report.rejected[Signal.TRACES] == 1
    assert report.problems == ["span 'zero parent': all-zero trace_id or span_id"]


def test_metrics_alone_in_a_protobuf_file_are_recognised(tmp_path):
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="temp")
    metric.gauge.data_points.append(metrics_pb2.NumberDataPoint(time_unix_nano=NOW,
                                                                as_double=21.5))
    path = tmp_path / "m.binpb"
    path.write_bytes(request.SerializeToString())
    importer = Importer(tmp_path / "t.db")
    report = importer.import_file(path)
    importer.close()
    assert report.ok and report.imported[Signal.METRICS] == 1


def test_the_progress_bar_is_drawn_on_a_terminal_and_cleared(tmp_path):
    class Terminal:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = Progress(2_000_000, terminal)  # type: ignore[arg-type]
    progress.update(500_000, "big.jsonl")
    assert terminal.text.startswith("\rbig.jsonl [######")
    assert "25% 500.0 kB / 2.0 MB" in terminal.text
    progress.finish()
    assert terminal.text.endswith("\r") and terminal.text.split("\r")[-2].strip() == ""


# --- export errors -----------------------------------------------------------------------


def test_unknown_or_ambiguous_trace_ids_are_one_line_and_exit_1(tmp_path):
    db = tmp_path / "t.db"
    writer = Writer(db)
    body = traces_request({"svc": [make_span(1, 1), make_span(256, 1)]}).SerializeToString()
    writer.apply(decode(Signal.TRACES, body, ResourceTable()))
    writer.close()
    one = trace_id(1).hex()

    cases = {
        "ffff": "tracedesk: no stored trace has an id starting with ffff",
        "f" * 32: f"tracedesk: trace {'f' * 32} is not stored",
        "0000": (f"tracedesk: trace id 0000 is ambiguous: it starts {one}, "
                 f"{trace_id(256).hex()}; give more of the id"),
        "xyz": "tracedesk: 'xyz' is not a trace id (hex digits, at most 32)",
    }
    for given, message in cases.items():
        result = tracedesk(tmp_path, "export", given, "--db", str(db))
        assert result.returncode == 1, given
        assert result.stdout == b""
        assert result.stderr.decode() == message + "\n"

    missing = tmp_path / "nothing-here.db"
    result = tracedesk(tmp_path, "export", one, "--db", str(missing))
    assert result.returncode == 1 and not missing.exists()
    assert result.stderr.decode().count("\n") == 1 and "no database at" in result.stderr.decode()

    result = tracedesk(tmp_path, "export", one, "-o", str(tmp_path / "no" / "dir.json"),
                       "--db", str(db))
    assert result.returncode == 1
    assert result.stderr.decode().startswith("tracedesk: cannot write ")
    result = tracedesk(tmp_path, "export", one[:30], "--db", str(db))  # unique
    assert result.returncode == 0 and json.loads(result.stdout)["resourceSpans"]


def test_import_into_the_database_of_a_running_receiver(tmp_path):
    receiver = start_serve(tmp_path / "serve")
    try:
        first = traces_request({"api": [make_span(21, 1, base_ns=NOW)]})
        status, _ = post(receiver.http_url, first.SerializeToString(), PROTOBUF)
        assert status == 200
        path = tmp_path / "more.pb"
        path.write_bytes(traces_request({"batch": [make_span(22, 1, base_ns=NOW),
                                                   make_span(22, 2, 1, base_ns=NOW)]})
                         .SerializeToString())
        result = tracedesk(tmp_path, "import", str(path), "--db", str(receiver.db_path))
        assert result.returncode == 0, result.stdout + result.stderr
        then = traces_request({"api": [make_span(23, 1, base_ns=NOW)]})
        status, _ = post(receiver.http_url, then.SerializeToString(), PROTOBUF)
        assert status == 200  # the receiver still stores
        seqs = dict(receiver.query("SELECT trace_id, seq FROM traces"))
        assert set(seqs) == {trace_id(n).hex() for n in (21, 22, 23)}
        assert seqs[trace_id(22).hex()] > seqs[trace_id(21).hex()]  # seen as a change
        assert receiver.query("SELECT count(*) FROM spans") == [(4,)]
    finally:
        receiver.stop()

