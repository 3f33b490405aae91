"""Whether this process traces and counts, and the OpenTelemetry names the hooks use (bottom
layer; imports errors and telemetry.logs/traceparent; the OpenTelemetry API only in `enable`).

`tracer` and `meters` are None while telemetry is off: every hook tests one of them first
and returns, so an engine without the ``otel`` extra, or one that never enables it, pays a
function call per hook and imports nothing of OpenTelemetry.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from blackboard.errors import TelemetryUnavailableError
from blackboard.telemetry import logs
from blackboard.telemetry.traceparent import format_traceparent, parse_traceparent
from blackboard.version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from blackboard.telemetry.instruments import Instruments

__all__ = [
    "NULL",
    "disable",
    "enable",
    "metrics_on",
    "remote",
    "traceparent_of",
    "tracing",
    "unsampled",
]

SCOPE = "blackboard"
SYSTEM = "blackboard"
"""`messaging.system` of every messaging span."""

tracer: Tracer | None = None
meters: Instruments | None = None
api: Any = None
"""The OpenTelemetry API names the hooks use (context, trace, SpanKind...), bound by enable."""
# keyed by the provider itself (weakly): an id() can come back for a new provider once the
# old one is gone, which would hand the new provider the old one's instruments
_instruments_by_provider: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()


class Null:
    """What a hook hands back while telemetry is off: a context manager that does nothing."""

    __slots__ = ()

    def __enter__(self) -> Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def ended(self, status: str, retryable: bool = False, error: str | None = None) -> None:
        return None

    def done(self, revision: int) -> None:
        return None


NULL = Null()


def _load_api() -> Any:
    try:
        from opentelemetry import context, metrics, trace
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
        )
    except ImportError as exc:
        raise TelemetryUnavailableError(
            "OpenTelemetry is not installed: pip install 'blackboard[otel]'"
        ) from exc

    class Api:
        pass

    names = Api()
    for name, value in {
        "context": context, "metrics": metrics, "trace": trace,
        "NonRecordingSpan": NonRecordingSpan, "SpanContext": SpanContext, "SpanKind": SpanKind,
        "Status": Status, "StatusCode": StatusCode, "TraceFlags": TraceFlags,
    }.items():  # fmt: skip
        setattr(names, name, value)
    return names


def enable(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    *,
    traces: bool = True,
    metrics: bool = True,
) -> None:
    """Instrument this process through the OpenTelemetry API: spans from `tracer_provider`
    and metrics on `meter_provider` (default: the global providers, which an SDK set up by
    the application or by `setup` provides). Raises TelemetryUnavailableError without the
    OpenTelemetry API (``pip install 'blackboard[otel]'``)."""
    global tracer, meters, api
    names = _load_api()
    from blackboard.telemetry.instruments import Instruments

    api = names
    tracer = None
    if traces:
        provider = tracer_provider or names.trace.get_tracer_provider()
        tracer = provider.get_tracer(SCOPE, __version__)
    meters = None
    if metrics:
        mp = meter_provider or names.metrics.get_meter_provider()
        found = _instruments_by_provider.get(mp)
        if found is None:  # a provider refuses a second instrument of the same name
            found = Instruments(mp.get_meter(SCOPE, __version__))
            _instruments_by_provider[mp] = found
        meters = found
    logs.span_ids = _span_ids if tracer is not None else _no_ids


def disable() -> None:
    """Stop instrumenting (spans and counts already made stay with their providers)."""
    global tracer, meters
    tracer = None
    meters = None
    logs.span_ids = _no_ids


def tracing() -> bool:
    """Whether spans are being made."""
    return tracer is not None


def metrics_on() -> bool:
    """Whether metrics are being counted."""
    return meters is not None


def _no_ids() -> tuple[str, str] | None:
    return None


def _span_ids() -> tuple[str, str] | None:
    ctx = api.trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def traceparent_of(span: Span) -> str | None:
    """The traceparent that names `span` as the parent (None for an invalid span: the
    API's no-op tracer without a parent)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return format_traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags))


def unsampled(traceparent: str | None) -> bool:
    """Whether a traceparent names a parent that was not sampled: its trace is passed on
    without a span (what the SDK's default parent-based sampler decides anyway, for less)."""
    parsed = parse_traceparent(traceparent)
    return parsed is not None and not parsed[2] & 1


def remote(traceparent: str | None) -> Any:
    """An OpenTelemetry context whose parent is the span a traceparent names (None: none)."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    parent = api.SpanContext(
        parsed[0], parsed[1], is_remote=True, trace_flags=api.TraceFlags(parsed[2])
    )
    return api.trace.set_span_in_context(api.NonRecordingSpan(parent))
