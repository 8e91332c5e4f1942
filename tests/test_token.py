"""`--token`: both transports require the bearer token; the SDKs and the demo send it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from conftest import clean_env, start_serve
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tracedesk.receiver.auth import BearerToken

TOKEN = "s3cret-token"


def send_span(exporter, name: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "tokened"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests.token").start_as_current_span(name):
        pass
    provider.shutdown()


def stored_names(db) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM spans")}


@pytest.fixture
def guarded(tmp_path):
    receiver = start_serve(tmp_path, "--token", TOKEN)
    yield receiver
    receiver.stop()


def test_only_requests_with_the_token_are_stored(guarded):
    assert any("token      required" in line for line in guarded.output)
    auth = {"authorization": f"Bearer {TOKEN}"}
    send_span(GrpcSpans(endpoint=guarded.grpc_target, insecure=True, headers=auth), "grpc ok")
    send_span(HttpSpans(endpoint=f"{guarded.http_url}/v1/traces", headers=auth), "http ok")
    send_span(GrpcSpans(endpoint=guarded.grpc_target, insecure=True), "grpc without")
    send_span(HttpSpans(endpoint=f"{guarded.http_url}/v1/traces",
                        headers={"authorization": "Bearer wrong"}), "http wrong")
    assert stored_names(guarded.db_path) == {"grpc ok", "http ok"}


def test_http_says_401_with_a_status_body(guarded):
    request = urllib.request.Request(
        f"{guarded.http_url}/v1/traces", data=b"{}", method="POST",
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"] == "Bearer"
    assert b'"code":16' in refused.value.read()
    request.add_header("Authorization", f"bearer {TOKEN}")  # the scheme in any case
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_the_demo_sends_the_token_or_says_it_was_refused(guarded, tmp_path):
    demo = [sys.executable, "-m", "tracedesk", "demo", "--endpoint", guarded.grpc_target,
            "--duration", "1", "--rate", "20", "--seed", "1"]
    refused = subprocess.run(demo, capture_output=True, text=True, timeout=60,
                             env=clean_env(tmp_path))
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    env = {**clean_env(tmp_path), "TRACEDESK_TOKEN": TOKEN}
    sent = subprocess.run(demo, capture_output=True, text=True, timeout=60, env=env)
    assert sent.returncode == 0, sent.stderr
    assert stored_names(guarded.db_path)


def test_the_token_check_is_exact():
    token = BearerToken("abc")
    assert token.accepts("Bearer abc") and token.accepts("bearer  abc ")
    for wrong in (None, "", "abc", "Bearer", "Bearer abcd", "Basic abc", "Bearer ab"):
        assert not token.accepts(wrong), wrong
    assert BearerToken(None).accepts(None) and not BearerToken(None).required


def test_the_apps_child_receiver_gets_the_token_in_its_environment_not_its_argv(tmp_path):
    from tracedesk.config import Settings
    from tracedesk.receiver.child import _child_env, serve_command

    settings = Settings(db_path=tmp_path / "t.db", token=TOKEN)
    assert not any(TOKEN in arg for arg in serve_command(settings))
    assert _child_env({"PATH": "/bin"}, TOKEN) == {"PATH": "/bin", "TRACEDESK_TOKEN": TOKEN}
    assert "TRACEDESK_TOKEN" not in _child_env({"TRACEDESK_TOKEN": "old"}, None)
