"""Fixtures of the observability tests: spans kept in memory, metrics read on demand, and the
control tests' runners (in-process controllers and agents)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control"))

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from blackboard import telemetry


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, into memory (not the global provider)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.enable(provider, metrics=False)
    try:
        yield exporter
    finally:
        telemetry.disable()
        provider.shutdown()


@pytest.fixture
def metrics() -> Iterator[InMemoryMetricReader]:
    """Metrics on for the test, read with ``reader.get_metrics_data()``."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.enable(meter_provider=provider, traces=False)
    try:
        yield reader
    finally:
        telemetry.disable()
        provider.shutdown()
