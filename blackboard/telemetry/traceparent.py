"""W3C trace context in text: the ``traceparent`` an entry's causation and an activation carry
across processes (pure: no I/O, no OpenTelemetry; imports nothing of the package).

``00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>``; only version 00 is written.
Parsing is strict, because the text comes from the board, which a hostile role may write:
anything else is treated as no trace context at all.
"""

from __future__ import annotations

import re

__all__ = ["format_traceparent", "parse_traceparent", "trace_id_of"]

_PATTERN = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """The traceparent of a span context (ids as integers, flags 1 = sampled)."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def parse_traceparent(text: str | bytes | None) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a well-formed version 00 traceparent, else None."""
    if not text:
        return None
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    m = _PATTERN.fullmatch(text)
    if m is None or m.group(1) == _ZERO_TRACE or m.group(2) == _ZERO_SPAN:
        return None
    return int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16)


def trace_id_of(text: str | bytes | None) -> str | None:
    """The trace id (32 hex digits) of a traceparent, or None when it is not one."""
    parsed = parse_traceparent(text)
    return None if parsed is None else f"{parsed[0]:032x}"
