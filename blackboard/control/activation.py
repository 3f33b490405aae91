"""Activations: what a grant carries from the controller to an agent (no I/O).

The controller writes one queue entry per grant on the role's stream and an activation
record beside it; an agent turns the queue entry back into an `Activation`. An activation's
id is derived from (role, key, version), so the same candidate always gets the same id: the
record's existence is the dedupe that outlives any controller, and the id is the
idempotency key of the agent's commit. Imports codec and errors only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgpack

from blackboard.errors import CorruptEntryError
from blackboard.store import codec

__all__ = [
    "GROUP",
    "RELEASED",
    "Activation",
    "activation_id",
    "grant_fields",
    "parse_record",
]

GROUP = "agents"
"""The consumer group of every role queue; each agent is one consumer."""
RELEASED = "~released"
"""The consumer that holds claims released by a stopping agent, until another takes them."""


def activation_id(role: str, key: str, version: int) -> str:
    """The id of the activation of `role` on version `version` of `key`."""
    digest = hashlib.blake2b(f"{role}\0{key}\0{version}".encode(), digest_size=8).hexdigest()
    return f"{role}:{digest}"


_packb = msgpack.Packer(use_bin_type=True).pack  # reused: one Packer, not one per call


def _pack(obj: Any) -> bytes:
    return bytes(_packb(obj))


@dataclass(frozen=True, slots=True)
class Activation:
    """One grant of work to a role: act on `key` at `version` (whose value was `value`).

    `depth` counts the activations in its causal chain; `escalated_from` names the role whose
    low-confidence result this one re-examines; `context` holds what the controller adds
    (e.g. the consensus reached). `attempt` counts runs of this activation: 1, then one more
    per retry the role's retry policy schedules after a transient failure (docs/agents.md);
    `delivery` counts deliveries of this attempt (more than 1 after a takeover). The
    `idempotency_key` is the same across attempts and takeovers: the board commit uses it, and
    handlers pass it to external APIs so that a rerun does not charge or send twice.
    """

    id: str
    role: str
    key: str
    version: int
    revision: int = 0
    rule: str = ""
    priority: int = 0
    depth: int = 0
    deadline: float = 30.0
    value: Any = None
    escalated_from: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    entry_id: str = ""
    attempt: int = 1
    granted_ms: int = 0
    delivery: int = 1
    value_carried: bool = True  # False: re-queued without the value (the runtime reads it)
    trace: str = ""  # W3C traceparent of the grant's span (blackboard.telemetry), or ""

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts and takeovers: give it to external APIs (see the class)."""
        return self.id

    @classmethod
    def from_entry(
        cls, role: str, entry_id: str, fields: dict[bytes, bytes], delivery: int = 1
    ) -> Activation:
        """Read a queue entry; raises CorruptEntryError when it is not a grant."""
        try:
            key = fields[b"k"].decode()
            raw = fields.get(b"x", b"")
            extra = fields.get(b"c", b"")
            return cls(
                id=fields[b"i"].decode(),
                role=role,
                key=key,
                version=int(fields[b"v"]),
                revision=int(fields.get(b"r", 0)),
                rule=fields.get(b"u", b"").decode(),
                priority=int(fields.get(b"p", 0)),
                depth=int(fields.get(b"d", 0)),
                deadline=float(fields.get(b"l", 30)),
                value=codec.decode_value(key, raw) if raw else None,
                escalated_from=fields.get(b"e", b"").decode() or None,
                context=msgpack.unpackb(extra, raw=False) if extra else {},
                entry_id=entry_id,
                attempt=int(fields.get(b"n", 1)),
                granted_ms=int(float(fields.get(b"g", 0))),
                delivery=delivery,
                value_carried=b"X" not in fields,
                trace=fields.get(b"tp", b"").decode(),
            )
        except CorruptEntryError:
            raise
        except Exception as exc:
            raise CorruptEntryError(f"activation {entry_id}", f"malformed ({exc!r})") from None


def grant_fields(
    act: Activation, value_bytes: bytes, reasons: list[str], granted_at: float | None = None
) -> tuple[list[Any], list[Any]]:
    """The queue entry fields and the record fields of a grant (flat field/value lists).
    The grant time is kept in ms with µs decimals when `granted_at` (seconds) is given."""
    granted = f"{granted_at * 1000:.3f}" if granted_at is not None else str(act.granted_ms)
    queue: list[Any] = [
        "i", act.id, "k", act.key, "v", act.version, "r", act.revision, "u", act.rule,
        "p", act.priority, "d", act.depth, "l", repr(act.deadline), "g", granted,
    ]  # fmt: skip
    if value_bytes:
        queue += ["x", value_bytes]
    if act.escalated_from:
        queue += ["e", act.escalated_from]
    if act.context:
        queue += ["c", _pack(act.context)]
    if act.trace:
        queue += ["tp", act.trace]
    record = [*queue[:18], "role", act.role, "s", "granted", "y", _pack(reasons)]
    if act.escalated_from:
        record += ["e", act.escalated_from]
    if act.context:
        record += ["c", _pack(act.context)]
    if act.trace:
        record += ["tp", act.trace]
    return queue, record


def parse_record(activation_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
    """An activation record as a plain dict (for explain and the CLI)."""

    def s(k: bytes, default: str = "") -> str:
        return raw.get(k, default.encode()).decode(errors="replace")

    why = raw.get(b"y")
    ctx = raw.get(b"c")
    return {
        "id": activation_id,
        "role": s(b"role"),
        "key": s(b"k"),
        "version": int(raw.get(b"v", 0)),
        "revision": int(raw.get(b"r", 0)),
        "rule": s(b"u"),
        "priority": int(raw.get(b"p", 0)),
        "depth": int(raw.get(b"d", 0)),
        "state": s(b"s"),
        "why": msgpack.unpackb(why, raw=False) if why else [],
        "context": msgpack.unpackb(ctx, raw=False) if ctx else {},
        "escalated_from": s(b"e") or None,
        "granted_ms": int(float(raw.get(b"g", 0))),
        "ended_ms": int(raw.get(b"t", 0)),
        "agent": s(b"a") or None,
        "error": s(b"o") or None,
        "claim": s(b"q") or None,
        "trace": s(b"tp") or None,
    }
