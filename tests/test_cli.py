"""`tracedesk serve` as a user runs it: start-up lines, port conflicts, signals, settings."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import clean_env, start_serve
from otlp_builders import make_span, trace_exporter, traces_request

from tracedesk.config import Settings, SettingsError, parse_duration, parse_size


def run_cli(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracedesk", *args], capture_output=True,
                          text=True, timeout=timeout, env=clean_env(tmp_path))


def test_serve_prints_where_it_listens_and_stops_cleanly_on_sigint(tmp_path):
    serve = start_serve(tmp_path)
    banner = "".join(serve.output)
    assert f"OTLP/gRPC  127.0.0.1:{serve.grpc_port}" in banner
    assert f"OTLP/HTTP  http://127.0.0.1:{serve.http_port}" in banner
    assert str(serve.db_path) in banner
    export, channel = trace_exporter(serve.grpc_target)
    export(traces_request({"svc": [make_span(7, 1)]}).SerializeToString(), timeout=10)
    channel.close()
    assert serve.stop(signal.SIGINT) == 0
    assert "stored 1 spans" in serve.output[-1]
    assert serve.query("SELECT count(*) FROM spans") == [(1,)]


@pytest.mark.parametrize("flag, label", [("--grpc-port", "OTLP/gRPC"),
                                         ("--http-port", "OTLP/HTTP")])
def test_a_taken_port_is_one_clear_line_and_exit_2(tmp_path, flag, label):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "--http-port" if flag == "--grpc-port" else "--grpc-port"
        result = run_cli(tmp_path, "serve", "--db", str(tmp_path / "t.db"), flag, str(port),
                         other, "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"port {port} ({label})" in lines[0] and flag in lines[0]


def test_a_second_receiver_on_the_same_port_is_refused(tmp_path):
    first = start_serve(tmp_path)
    result = run_cli(tmp_path, "serve", "--db", str(tmp_path / "t2.db"), "--grpc-port",
                     str(first.grpc_port), "--http-port", "0")
    assert result.returncode == 2 and "already in use" in result.stderr
    first.stop()


def test_bad_setting_values_name_their_source(tmp_path):
    result = run_cli(tmp_path, "serve", "--db", str(tmp_path / "t.db"), "--max-age", "soon")
    assert result.returncode == 2
    assert "--max-age" in result.stderr and "not a duration" in result.stderr


def test_help_lists_commands_and_flags(tmp_path):
    assert "serve" in run_cli(tmp_path, "--help").stdout
    text = run_cli(tmp_path, "serve", "--help").stdout
    for flag in ("--db", "--host", "--grpc-port", "--http-port", "--max-age", "--max-spans",
                 "--max-db-size", "TRACEDESK_DB"):
        assert flag in text


def test_settings_precedence_flags_over_env_over_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('grpc_port = 1111\nhttp_port = 2222\nmax_age = "2h"\n')
    env = {"TRACEDESK_HTTP_PORT": "3333"}
    settings = Settings.load({"max_age": "30m"}, environ=env, config_path=config)
    assert (settings.grpc_port, settings.http_port, settings.max_age) == (1111, 3333, 1800.0)
    config.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="unknown settings colour"):
        Settings.load({}, environ={}, config_path=config)
    config.unlink()
    with pytest.raises(SettingsError, match="TRACEDESK_GRPC_PORT"):
        Settings.load({}, environ={"TRACEDESK_GRPC_PORT": "70000"}, config_path=config)


def test_duration_and_size_parsing():
    assert parse_duration("90") == 90 and parse_duration("15m") == 900
    assert parse_duration("2d") == 172_800
    assert parse_size("500MB") == 500_000_000 and parse_size("2GiB") == 2 * 1024**3
    with pytest.raises(ValueError):
        parse_size("lots")


def test_the_core_never_imports_textual_or_rich():
    code = ("import sys, tracedesk.cli, tracedesk.receiver.serve, tracedesk.store.writer, "
            "tracedesk.otlp, tracedesk.store.retention; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_retention_flags_bound_what_serve_keeps(tmp_path):
    serve = start_serve(tmp_path, "--max-spans", "50")
    export, channel = trace_exporter(serve.grpc_target)
    base = time.time_ns()
    for t in range(1, 21):
        spans = [make_span(t, s, None if s == 1 else 1, start_ms=t, base_ns=base)
                 for s in range(1, 6)]
        export(traces_request({"svc": spans}).SerializeToString(), timeout=10)
    channel.close()
    deadline = time.monotonic() + 20
    while serve.query("SELECT count(*) FROM spans")[0][0] > 50:
        assert time.monotonic() < deadline, "retention did not run"
        time.sleep(0.2)
    kept = serve.query("SELECT trace_id, span_count FROM traces ORDER BY trace_id")
    assert kept and all(count == 5 for _, count in kept)  # whole traces were evicted
    # The newest traces are the ones kept.
    newest = [t.to_bytes(16, "big").hex() for t in range(21 - len(kept), 21)]
    assert [trace_id for trace_id, _ in kept] == newest
    assert serve.stop() == 0
