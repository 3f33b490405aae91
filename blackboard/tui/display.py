"""How board data reads on screen: ages, value previews, JSON text and diffs (no I/O).

Pure functions over engine dataclasses and plain values, shared by the views and tested
without a terminal. Imports the engine's entry module and the standard library only.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from typing import Any

from blackboard.store.entry import Change

__all__ = [
    "age",
    "change_text",
    "clock_time",
    "compact",
    "diff_lines",
    "pretty",
    "preview",
]


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex() if len(obj) <= 32 else f"<{len(obj)} bytes>"
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj, key=repr) if isinstance(obj, set | frozenset) else list(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return repr(obj)


def pretty(value: Any) -> str:
    """A value as indented JSON (sorted keys, so two versions diff line by line)."""
    return json.dumps(value, indent=2, sort_keys=True, default=_default, ensure_ascii=False)


def compact(value: Any) -> str:
    """A value as one line of JSON."""
    return json.dumps(value, separators=(",", ":"), default=_default, ensure_ascii=False)


def preview(value: Any, width: int = 60, *, deleted: bool = False) -> str:
    """A value on one line, cut to `width` characters with an ellipsis."""
    if deleted:
        return "(deleted)"
    text = compact(value)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def age(ms: float) -> str:
    """A duration in milliseconds, short: 850ms, 12s, 5m, 3h, 2d."""
    if ms < 0:
        ms = 0
    if ms < 1000:
        return f"{int(ms)}ms"
    s = ms / 1000
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400:
        return f"{int(s // 3600)}h"
    return f"{int(s // 86400)}d"


def clock_time(time_ms: int) -> str:
    """Wall-clock time of a board timestamp, UTC, HH:MM:SS."""
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%H:%M:%S")


def diff_lines(old: Any, new: Any, old_name: str, new_name: str) -> list[str]:
    """A unified diff of two values' pretty JSON; [] when they are equal."""
    a = pretty(old).splitlines()
    b = pretty(new).splitlines()
    return list(difflib.unified_diff(a, b, old_name, new_name, lineterm="", n=3))


def change_text(c: Change) -> str:
    """Everything searchable in a change, lower-cased: key, kind, writer, value."""
    value = "" if c.deleted else compact(c.value)
    text = f"{c.revision} {c.key} v{c.version} {c.kind} {c.writer} {c.activation or ''} {value}"
    return text.lower()
