"""Structured logs: one JSON object per line with what an operator filters on (bottom layer;
imports telemetry.traceparent only).

`configure_logging(level, "json", role=..., agent=...)` sets the root handler. Each line
carries the time, level, logger and message, the process's own fields (its role, agent or
controller name, board), and where known the activation's: ``activation``, ``key``,
``attempt`` and ``trace_id``/``span_id``. Those come from `LOG_CONTEXT`, which the agent
runtime sets for the task that runs an activation (so lines logged by a handler get them
too, threads included), from ``extra=`` fields of the record, and from the current span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import IO, Any

import orjson

__all__ = ["FIELDS", "LOG_CONTEXT", "JsonFormatter", "configure_logging", "structured"]

LOG_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar(
    "blackboard_log_context", default=None
)
"""Fields added to every structured log line of the current task (set per activation)."""

FIELDS = ("role", "agent", "activation", "key", "version", "attempt", "trace_id", "span_id")
"""Record attributes (``extra=``) copied into a JSON line when present."""

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

_structured = False


def _no_span() -> tuple[str, str] | None:
    return None


span_ids: Callable[[], tuple[str, str] | None] = _no_span
"""The current span's (trace id, span id) in hex; replaced while tracing is on."""


def structured() -> bool:
    """Whether JSON logs are on (the runtime then fills `LOG_CONTEXT`)."""
    return _structured


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `static` fields are added to every line."""

    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.static = {k: v for k, v in (static or {}).items() if v is not None}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(self.static)
        ctx = LOG_CONTEXT.get()
        if ctx:
            doc.update(ctx)
        attrs = record.__dict__
        for name in FIELDS:
            if name in attrs:
                doc[name] = attrs[name]
        ids = span_ids()
        if ids is not None:
            doc["trace_id"], doc["span_id"] = ids
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(
    level: str = "info", fmt: str = "text", *, stream: IO[str] | None = None, **static: Any
) -> None:
    """Log to `stream` (default stderr) at `level` as ``text`` (a line per record) or
    ``json`` (with `static` fields on every line). Replaces the root logger's handlers.
    Raises ValueError for an unknown level or format."""
    global _structured
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}: use text or json")
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(static))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=number, handlers=[handler], force=True)
    _structured = fmt == "json"
