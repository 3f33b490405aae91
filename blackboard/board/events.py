"""Change-log events as typed values: the one parser of a log stream entry (board layer; no
I/O; imports codec, entry, errors and schema).

Every commit appends one stream event with id ``<revision>-1`` (see lua/commit.lua): fields
``w`` (writer), ``t`` (time, ms), ``a`` (activation, optional), ``tp`` (traceparent,
optional), ``n`` (number of operations) and per operation i ``k<i>`` (entry key), ``v<i>``
(version), ``o<i>`` (kind code) and ``d<i>`` (encoded value); a merge event also carries
``s`` (strategy) and ``mp`` (the merged proposals). `parse_log_event` reads one into a
`LogEvent` and is used by the watcher, the controller and the snapshot replay; values stay
encoded until `decode_value` (the controller decodes only what a rule looks at).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import msgpack

from blackboard.board.schema import SchemaRegistry
from blackboard.errors import CorruptEntryError
from blackboard.store import codec
from blackboard.store.entry import Change

__all__ = ["EventOp", "LogEvent", "decode_value", "merged_proposals", "parse_log_event"]

_KINDS = codec.KINDS
# field names of the first operations, built once (the controller parses every event)
_PRE = 64
_NAMES = [(b"k%d" % i, b"v%d" % i, b"o%d" % i, b"d%d" % i) for i in range(1, _PRE + 1)]


class EventOp(NamedTuple):
    """One operation of a log event; `data` is the encoded value (b'' for a delete)."""

    key: str
    version: int
    kind: str
    data: bytes


_op = partial(tuple.__new__, EventOp)  # EventOp from a 4-tuple, without __new__'s call


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build (once per event)
class LogEvent:
    """One change-log event: a commit of one or more operations (treat it as read-only)."""

    id: str
    revision: int
    writer: str
    time_ms: int
    activation: str | None
    trace: str | None
    ops: tuple[EventOp, ...]
    fields: Mapping[bytes, bytes]

    @property
    def merged(self) -> list[tuple[str, int]]:
        """The (proposer, revision) pairs a merge event closed ([] for other events).
        Raises CorruptEntryError for a malformed list."""
        try:
            return merged_proposals(self.fields)
        except Exception as exc:
            raise CorruptEntryError(f"log event {self.id}", f"malformed 'mp' ({exc!r})") from None

    def change(self, op: EventOp, value: Any) -> Change:
        """The Change an operation of this event makes, with its decoded `value`."""
        return Change(
            self.revision,
            op.key,
            op.version,
            op.kind,
            value,
            self.writer,
            self.time_ms,
            self.activation,
            self.trace,
        )


def parse_log_event(event_id: bytes | str, fields: Mapping[bytes, bytes]) -> LogEvent:
    """The event with stream id `event_id` and `fields`. Raises CorruptEntryError naming the
    event and what is wrong with it (a missing field, a bad number, an unknown kind)."""
    kinds = _KINDS
    eid = event_id if isinstance(event_id, str) else event_id.decode(errors="replace")
    try:
        n = int(fields[b"n"])
        if n < 0:
            raise ValueError(f"{n} operations")
        names = _NAMES[:n] if n <= _PRE else [_names(i) for i in range(1, n + 1)]
        ops = tuple(
            [
                _op((fields[k].decode(), int(fields[v]), kinds[fields[o]], fields[d]))
                for k, v, o, d in names
            ]
        )
        activation = fields.get(b"a")
        trace = fields.get(b"tp")
        return LogEvent(
            eid,
            int(eid.split("-", 1)[0]),
            fields[b"w"].decode(),
            int(fields[b"t"]),
            (activation.decode() or None) if activation else None,
            trace.decode("ascii", "replace") if trace is not None else None,
            ops,
            fields,
        )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, AttributeError) as exc:
        raise CorruptEntryError(f"log event {eid}", f"malformed ({exc!r})") from None


def merged_proposals(fields: Mapping[bytes, bytes]) -> list[tuple[str, int]]:
    """The (proposer, revision) pairs a merge event's fields list ([] for other events)."""
    raw = fields.get(b"mp")
    if not raw:
        return []
    return [(str(p), int(r)) for p, r in msgpack.unpackb(raw, raw=False)]


def _names(i: int) -> tuple[bytes, bytes, bytes, bytes]:
    return (b"k%d" % i, b"v%d" % i, b"o%d" % i, b"d%d" % i)


def decode_value(key: str, kind: str, data: bytes, schemas: SchemaRegistry | None) -> Any:
    """An operation's value: None for a delete; a proposal's {"proposer", "confidence",
    "value"} as stored (no schema applies); else decoded and loaded through the schema bound
    to `key`, if any. Raises CorruptEntryError, ValidationError."""
    if kind == "delete" or not data:
        return None
    value = codec.decode_value(key, data)
    if kind != "propose" and schemas:
        binding = schemas.find(key)
        if binding is not None:
            value = SchemaRegistry.load(key, binding, value)
    return value
