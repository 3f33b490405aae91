"""Micro-benchmark: the controller's parse of one change-log event, before and after
board/events.py (issue 16). A script, not part of the package.

"before" is the controller's inline parse as it was (header fields, then per operation the
key, and kind, value and version only for keys some rule looks at); "after" is
`parse_log_event` followed by the same per-operation work. Run:

    .venv/bin/python scripts/bench_events.py
"""

from __future__ import annotations

import timeit
from typing import Any

from blackboard.board.events import decode_value, parse_log_event
from blackboard.store import codec
from blackboard.store.codec import KINDS
from blackboard.store.entry import Change


def event(n: int) -> dict[bytes, bytes]:
    fields = {b"w": b"agent-1", b"t": b"1700000000000", b"a": b"act-42", b"n": str(n).encode()}
    for i in range(1, n + 1):
        fields[b"k%d" % i] = b"ticket/%d" % i
        fields[b"v%d" % i] = b"3"
        fields[b"o%d" % i] = b"p"
        fields[b"d%d" % i] = codec.encode_value("k", {"status": "open", "n": i}, 1 << 20)
    return fields


def matches(key: str) -> bool:  # a rule looks at odd tickets only
    return key[-1] in "13579"


def before(entry_id: str, fields: dict[bytes, bytes]) -> list[Any]:
    revision = int(entry_id.split("-", 1)[0])
    n = int(fields[b"n"])
    _parent = fields.get(b"a", b"").decode() or None
    writer = fields[b"w"].decode()
    ts = int(fields[b"t"])
    trace = fields[b"tp"].decode("ascii", "replace") if b"tp" in fields else None
    out = []
    for i in range(1, n + 1):
        s = str(i).encode()
        key = fields[b"k" + s].decode()
        if not matches(key):
            continue
        kind = KINDS[fields[b"o" + s]]
        raw = fields[b"d" + s]
        value = decode_value(key, kind, raw, None)
        out.append(
            Change(revision, key, int(fields[b"v" + s]), kind, value, writer, ts, trace=trace)
        )
    return out


def after(entry_id: str, fields: dict[bytes, bytes]) -> list[Any]:
    ev = parse_log_event(entry_id, fields)
    _parent = ev.activation
    out = []
    for op in ev.ops:
        if not matches(op.key):
            continue
        out.append(ev.change(op, decode_value(op.key, op.kind, op.data, None)))
    return out


def main() -> None:
    for n in (1, 4, 16):
        fields = event(n)
        assert [c.key for c in before("7-1", fields)] == [c.key for c in after("7-1", fields)]
        number = 200_000 // n
        for name, fn in (("before", before), ("after", after)):
            best = min(timeit.repeat(lambda f=fn, e=fields: f("7-1", e), number=number, repeat=5))
            print(f"{n:>2} ops  {name:<6} {best / number * 1e6:7.2f} us/event")


if __name__ == "__main__":
    main()
