"""Setting up a process's OpenTelemetry SDK the way users already run it (bottom layer;
imports errors and telemetry.state; the SDK and exporters only inside `setup`).

`setup(service, metrics_port=...)` reads the standard ``OTEL_*`` variables: spans and metrics
go over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal endpoint) is set or
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` name ``otlp``; ``console`` prints spans
as one JSON object per line on stdout (and metrics periodically); ``prometheus`` in
``OTEL_METRICS_EXPORTER`` or a `metrics_port` serves a scrape endpoint
(``OTEL_EXPORTER_PROMETHEUS_HOST``, default localhost). Nothing set, nothing done: the
instrumentation stays off and costs nothing. ``OTEL_SDK_DISABLED=true`` turns it all off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blackboard.errors import TelemetryUnavailableError
from blackboard.telemetry import state

__all__ = ["TelemetrySetup", "setup"]

log = logging.getLogger("blackboard.telemetry")

_SIGNALS = {"traces": ("otlp", "console"), "metrics": ("otlp", "console", "prometheus")}


@dataclass
class TelemetrySetup:
    """What `setup` turned on: exporters per signal and the scrape URL, if any."""

    traces: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    metrics_url: str | None = None
    providers: list[Any] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.traces or self.metrics)

    def shutdown(self) -> None:
        """Flush and stop the providers (also done at interpreter exit)."""
        for provider in self.providers:
            provider.shutdown()


def _exporters(signal: str, env: Mapping[str, str]) -> list[str]:
    explicit = env.get(f"OTEL_{signal.upper()}_EXPORTER")
    if explicit is not None:
        names = [n.strip().lower() for n in explicit.split(",") if n.strip()]
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    ):
        names = ["otlp"]
    else:
        names = []
    known = [n for n in names if n in _SIGNALS[signal]]
    for n in names:
        if n not in known and n != "none":
            log.warning("OTEL_%s_EXPORTER: %r is not supported here, ignored", signal.upper(), n)
    return [] if "none" in names else known


def _protocol(signal: str, env: Mapping[str, str]) -> str:
    return (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )


def _span_exporter(signal_protocol: str) -> Any:
    if signal_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _metric_exporter(signal_protocol: str) -> Any:
    if signal_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter()


def _one_line(span: Any) -> str:
    return str(span.to_json(indent=None)) + "\n"


def setup(
    service: str,
    *,
    metrics_port: int | None = None,
    instance: str | None = None,
    env: Mapping[str, str] | None = None,
) -> TelemetrySetup:
    """Configure the OpenTelemetry SDK of this process from ``OTEL_*`` (`env`, default the
    environment) and `metrics_port` (0: any free port), install it as the global providers
    and enable blackboard's instrumentation. `service` names the process unless
    ``OTEL_SERVICE_NAME`` does. Raises TelemetryUnavailableError when a metrics port is
    asked for without the SDK (with only ``OTEL_*`` set it logs a warning and stays off),
    OSError when the port cannot be bound."""
    env = os.environ if env is None else env
    done = TelemetrySetup()
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return done
    traces = _exporters("traces", env)
    metrics = _exporters("metrics", env)
    if metrics_port is not None and "prometheus" not in metrics:
        metrics.append("prometheus")
    if not traces and not metrics:
        return done
    try:
        from opentelemetry import metrics as otel_metrics
        from opentelemetry import trace as otel_trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        if metrics_port is not None:
            raise TelemetryUnavailableError(
                "--metrics-port needs the OpenTelemetry SDK: pip install 'blackboard[otel]'"
            ) from None
        log.warning("OTEL_* is set but the OpenTelemetry SDK is missing: telemetry stays off")
        return done
    attributes: dict[str, Any] = {}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service
    if instance:
        attributes["service.instance.id"] = instance
    resource = Resource.create(attributes)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    if traces:
        tracer_provider = TracerProvider(resource=resource)
        for name in traces:
            tracer_provider.add_span_processor(_span_processor(name, env))
        otel_trace.set_tracer_provider(tracer_provider)
        done.traces = traces
        done.providers.append(tracer_provider)
    if metrics:
        readers = []
        for name in metrics:
            if name == "prometheus":
                reader, done.metrics_url = _prometheus(metrics_port, env)
                readers.append(reader)
            else:
                readers.append(_periodic_reader(name, env))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers, **_exemplars(env))
        otel_metrics.set_meter_provider(meter_provider)
        done.metrics = metrics
        done.providers.append(meter_provider)
    # its own providers, also when the application had set global ones already (the globals
    # are set once per process: user code then gets the application's)
    state.enable(tracer_provider, meter_provider, traces=bool(traces), metrics=bool(metrics))
    return done


def _exemplars(env: Mapping[str, str]) -> dict[str, Any]:
    """No exemplars unless OTEL_METRICS_EXEMPLAR_FILTER asks: the SDK's default samples one
    per histogram record inside a span (~2 µs each), and the Prometheus text format does
    not carry them."""
    if env.get("OTEL_METRICS_EXEMPLAR_FILTER"):
        return {}
    try:
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter
    except ImportError:  # an SDK without exemplars
        return {}
    return {"exemplar_filter": AlwaysOffExemplarFilter()}


def _span_processor(name: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    if name == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter(formatter=_one_line))
    return BatchSpanProcessor(_span_exporter(_protocol("traces", env)))


def _periodic_reader(name: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    if name == "console":
        return PeriodicExportingMetricReader(ConsoleMetricExporter())
    return PeriodicExportingMetricReader(_metric_exporter(_protocol("metrics", env)))


def _prometheus(port: int | None, env: Mapping[str, str]) -> tuple[Any, str]:
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server
    except ImportError:
        raise TelemetryUnavailableError(
            "a Prometheus endpoint needs opentelemetry-exporter-prometheus: "
            "pip install 'blackboard[otel]'"
        ) from None
    host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or "localhost"
    if port is None:
        port = int(env.get("OTEL_EXPORTER_PROMETHEUS_PORT") or 9464)
    server, _thread = start_http_server(port, addr=host)
    bound = server.server_port
    return PrometheusMetricReader(), f"http://{host}:{bound}/metrics"
