"""Telemetry: OpenTelemetry traces and metrics, structured logs (bottom layer: imports errors
only; the OpenTelemetry API is imported once telemetry is enabled, never before).

Off by default and then free: no OpenTelemetry import, each hook a call that returns at
once. `setup` turns it on from the standard ``OTEL_*`` variables and a metrics port (what
``blackboard controller|compactor|agent run --metrics-port`` call); an application that
sets up the SDK itself calls `enable`. Handlers may open child spans with `span` (or the
OpenTelemetry API directly). Span and metric names are listed in docs/observability.md.

    state.py        on or off: `enable`, `disable`, the tracer and the instruments
    commits.py      the board's hooks: commit spans, the traceparent a commit records
    activations.py  controller, agent and compactor hooks: grant and run spans, counts
    instruments.py  the metric instruments on one meter
    exporters.py    `setup`: SDK, OTLP, console and Prometheus exporters from OTEL_*
    logs.py         `configure_logging`: text or one JSON object per line
    traceparent.py  the W3C traceparent text the board carries
"""

from __future__ import annotations

from blackboard.telemetry.activations import (
    activation,
    compacted,
    controller_status,
    granted,
    handler,
    refused,
    trimmed,
)
from blackboard.telemetry.commits import (
    commit_span,
    conflict,
    current_trace,
    end_commits,
    forged,
    replayed,
    span,
    start_commit,
)
from blackboard.telemetry.exporters import TelemetrySetup, setup
from blackboard.telemetry.logs import configure_logging
from blackboard.telemetry.state import disable, enable, metrics_on, tracing
from blackboard.telemetry.traceparent import format_traceparent, parse_traceparent

__all__ = [
    "TelemetrySetup",
    "activation",
    "commit_span",
    "compacted",
    "configure_logging",
    "conflict",
    "controller_status",
    "current_trace",
    "disable",
    "enable",
    "end_commits",
    "forged",
    "format_traceparent",
    "granted",
    "handler",
    "metrics_on",
    "parse_traceparent",
    "refused",
    "replayed",
    "setup",
    "span",
    "start_commit",
    "tracing",
    "trimmed",
]
