"""`telemetry.setup` from the standard OTEL_* variables, in a fresh process (it installs the
global providers, once per process): OTLP over HTTP to a local collector that records what
it receives; the console exporter; nothing set, nothing on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = """
from blackboard import telemetry
done = telemetry.setup("otlp-test", instance="i-1")
print("exporters", done.traces, done.metrics, telemetry.tracing(), telemetry.metrics_on())
with telemetry.span("hello", answer=42):
    telemetry.conflict("b")
done.shutdown()
"""


class Collector:
    """A loopback HTTP server that keeps each POST (path, body) and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                posts.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    try:
        yield c
    finally:
        c.server.shutdown()
        c.server.server_close()


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", SNIPPET], env={**base, **env}, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_otlp_over_http_from_the_standard_variables(collector: Collector) -> None:
    r = _run({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url})
    assert r.returncode == 0, r.stderr
    assert "exporters ['otlp'] ['otlp'] True True" in r.stdout
    traces = [b for p, b in collector.posts if p == "/v1/traces"]
    metrics = [b for p, b in collector.posts if p == "/v1/metrics"]
    assert traces and metrics, collector.posts
    req = ExportTraceServiceRequest.FromString(traces[0])
    [rs] = req.resource_spans
    resource = {a.key: a.value.string_value for a in rs.resource.attributes}
    assert resource["service.name"] == "otlp-test" and resource["service.instance.id"] == "i-1"
    [span] = [s for ss in rs.scope_spans for s in ss.spans]
    assert span.name == "hello"
    names = {
        m.name
        for b in metrics
        for rm in ExportMetricsServiceRequest.FromString(b).resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert "blackboard.commit.conflicts" in names


def test_console_spans_and_nothing_when_nothing_is_set() -> None:
    r = _run({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "named"})
    assert r.returncode == 0, r.stderr
    assert "exporters ['console'] [] True False" in r.stdout
    assert '"name": "hello"' in r.stdout and '"service.name": "named"' in r.stdout
    r = _run({})
    assert r.returncode == 0 and "exporters [] [] False False" in r.stdout, r.stderr
    r = _run({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"})
    assert r.returncode == 0 and "exporters [] [] False False" in r.stdout, r.stderr
