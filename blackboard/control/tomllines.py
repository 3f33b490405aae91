"""Which line of a TOML document a validation error points at, for policy and scenario files
(control layer: pure, imports nothing of the package); and `decode_utf8`, which turns a file's
bytes into its text or says on which line the first byte that is not UTF-8 sits.
TOML parsers keep no positions, so this re-reads the text: it gives every table
header and ``key =`` line its path, arrays of tables numbered the way pydantic numbers them
(``[[boards.agent]]`` under the second ``[[boards]]`` is ``("boards", 1, "agent", n)``), and
returns the line whose path is the longest prefix of the error's location.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["NotUtf8Error", "decode_utf8", "locate", "paths"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*="""
)
_PART = re.compile(r""""[^"]*"|'[^']*'|[A-Za-z0-9_\-]+""")


class NotUtf8Error(ValueError):
    """A file is not UTF-8 text (the only encoding TOML allows); `line` holds the first bad
    byte and `reason` says which."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


def decode_utf8(data: bytes) -> str:
    """`data` as text; raises NotUtf8Error naming the line and column of the first byte that
    is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        reason = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} (TOML is UTF-8)"
        raise NotUtf8Error(line, reason) from None


def _parts(dotted: str) -> list[str]:
    return [p[1:-1] if p[:1] in "\"'" else p for p in _PART.findall(dotted)]


def paths(source: str) -> list[tuple[int, tuple[Any, ...]]]:
    """(line number, path) of every table header and key line of `source`."""
    out: list[tuple[int, tuple[Any, ...]]] = []
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    depth = 0  # open brackets of a multi-line array or inline table
    for no, line in enumerate(source.splitlines(), 1):
        code = _strip_comment(line)
        if depth == 0:
            h = _HEADER.match(line)
            if h:
                names = _parts(h.group(2))
                resolved: tuple[Any, ...] = ()
                for n in names[:-1]:
                    resolved = (*resolved, n)
                    if resolved in counts:
                        resolved = (*resolved, counts[resolved] - 1)
                last = (*resolved, names[-1])
                if h.group(1) == "[[":
                    counts[last] = counts.get(last, 0) + 1
                    table = (*last, counts[last] - 1)
                else:
                    table = last
                out.append((no, table))
                continue
            k = _KEY.match(line)
            if k:
                out.append((no, (*table, *_parts(k.group(1)))))
        depth = max(
            0, depth + code.count("[") + code.count("{") - code.count("]") - code.count("}")
        )
    return out


def _strip_comment(line: str) -> str:
    # drop strings first so brackets and '#' inside them do not count
    line = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', '""', line)
    return line.split("#", 1)[0]


def locate(source: str, loc: tuple[Any, ...]) -> int | None:
    """The line (1-based) that location `loc` points at, or the line of its nearest
    enclosing table or key; None when nothing matches."""
    parts = [str(p) for p in loc if p != "__root__"]
    best: int | None = None
    best_len = -1
    for no, path in paths(source):
        n = 0
        while n < len(path) and n < len(parts) and str(path[n]) == parts[n]:
            n += 1
        if n == len(path) and n > best_len:
            best, best_len = no, n
    return best
