"""Telemetry options of the long-running commands (controller, compactor, agent run) and the
one call that starts logging, traces and metrics from them (edge layer; imports telemetry).

``--log-format json`` prints one JSON object per line; ``--metrics-port`` serves a Prometheus
scrape endpoint; the standard ``OTEL_*`` variables turn on OTLP export (docs/observability.md).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blackboard.cli.context import err, fail
from blackboard.errors import TelemetryUnavailableError
from blackboard.telemetry import configure_logging, setup

__all__ = ["LogFormatOpt", "MetricsPortOpt", "start_telemetry"]

LogFormatOpt = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="text, or json: one object per line with role, activation, key, attempt and "
        "trace id where known.",
    ),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics on this port (0: any free one) of "
        "OTEL_EXPORTER_PROMETHEUS_HOST (default localhost). Needs blackboard[otel].",
    ),
]


def start_telemetry(
    service: str,
    *,
    level: str,
    fmt: str,
    metrics_port: int | None,
    instance: str | None = None,
    **fields: Any,
) -> None:
    """Configure logging (`fields` on every JSON line) and OpenTelemetry for this process;
    a bad level or format exits 2, as does a metrics port without the SDK; a port that
    cannot be bound exits 1. Prints the scrape URL on stderr."""
    try:
        configure_logging(level, fmt, **fields)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        done = setup(service, metrics_port=metrics_port, instance=instance)
    except TelemetryUnavailableError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"--metrics-port {metrics_port}: {exc.strerror or exc}")
    if done.metrics_url:
        err.print(f"metrics: {done.metrics_url}", highlight=False, markup=False)
