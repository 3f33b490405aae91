"""One batch of controller decisions for `grant.lua` (control layer; imports pipeline,
scripts, keys, activation, agenda, decisions, entry).

The controller builds a `GrantBatch` per read of the log: grants, refusals and other
decisions, finished activations, breaker changes, queue trims, and the log and outcome
events the batch settles. `write` sends it as one fenced script call: all of it or nothing.
"""

from __future__ import annotations

from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.exceptions import RedisError

from blackboard import telemetry
from blackboard.board.client import wrap_redis_error
from blackboard.control.activation import Activation, grant_fields
from blackboard.control.agenda import Candidate
from blackboard.control.decisions import decision
from blackboard.errors import StaleLeaseError
from blackboard.store import functions, transport
from blackboard.store.durability import Durability
from blackboard.store.entry import Change
from blackboard.store.keys import BoardKeys

__all__ = ["GrantBatch"]


# one Packer each, reused (msgpack.packb builds a new one per call; the controller is one task)
_packb = msgpack.Packer(use_bin_type=True).pack
_packb_raw = msgpack.Packer(use_bin_type=False).pack


def pack(obj: Any) -> bytes:
    return bytes(_packb(obj))


def _pack_for_lua(obj: Any) -> bytes:
    # Redis's cmsgpack reads no bin type: bytes go as msgpack raw strings
    return bytes(_packb_raw(obj))


class GrantBatch:
    """Operations and acknowledgements for one grant.lua call."""

    def __init__(self, keys: BoardKeys) -> None:
        self.k = keys
        self.ops: list[list[Any]] = []
        self.keys: list[str] = []
        self.log_acks: list[str] = []
        self.outcome_acks: list[str] = []
        self.granted: list[Candidate] = []
        self.requeued: list[str] = []  # activation ids of the 'q' ops, in order
        self.requeued_ids: list[bytes] = []  # their new queue entry ids, after write()

    def __bool__(self) -> bool:
        return bool(self.ops or self.log_acks or self.outcome_acks)

    def only_settles(self) -> bool:
        """Nothing but finished activations and acknowledgements (no grant, no decision)."""
        return bool(self) and all(op[0] == "d" for op in self.ops)

    def grant(self, cand: Candidate, now: float) -> None:
        """Queue an activation for `cand`, with its record, open entry and decision."""
        now_ms = int(now * 1000)
        act = Activation(
            cand.activation_id, cand.role, cand.key, cand.version, cand.revision, cand.rule,
            cand.priority, cand.depth, cand.deadline, None, cand.escalated_from or None,
            cand.context, granted_ms=now_ms, trace=telemetry.granted(cand, now),
        )  # fmt: skip
        queue, record = grant_fields(act, cand.value, cand.reasons, now)
        opened = pack([cand.role, cand.resource, cand.depth, cand.priority, now])
        granted = decision(
            "granted", key=cand.key, version=cand.version, revision=cand.revision,
            role=cand.role, rule=cand.rule, reasons=cand.reasons,
            activation=cand.activation_id, time_ms=now_ms,
        )  # fmt: skip
        record += ["res", cand.resource]  # to open it again as a retried dead letter
        self.ops.append(["g", cand.activation_id, queue, record, opened, granted])
        self.keys += [
            self.k.queue(cand.role),
            self.k.activation(cand.activation_id),
            self.k.decisions(cand.key),
        ]
        self.granted.append(cand)

    def finish(
        self, act_id: str, ok: bool, error: str, agent: str, now: float,
        attempt: int | None = None, state: str | None = None,
    ) -> None:  # fmt: skip
        state = state or ("done" if ok else "failed")
        fields: list[Any] = ["s", state, "t", int(now * 1000), "a", agent, "o", error]
        if attempt is not None:
            fields += ["n", attempt]
        self.ops.append(["d", act_id, fields])
        self.keys.append(self.k.activation(act_id))

    def retry_later(
        self, act_id: str, key: str, due_ms: int, attempt: int, error: str, blob: bytes
    ) -> None:
        """Schedule the next run (`attempt`) of an open activation at `due_ms`."""
        self.ops.append(["y", act_id, due_ms, attempt, error[:1000], blob])
        self.keys += [self.k.activation(act_id), self.k.retry_schedule, self.k.decisions(key)]

    def requeue(self, act_id: str, role: str, attempt: int | None = None) -> None:
        """Queue the next run of an open activation now (reported in `requeued`); `attempt`
        sets its number (default: the one its record holds)."""
        self.ops.append(["q", act_id] if attempt is None else ["q", act_id, attempt])
        self.keys += [self.k.queue(role), self.k.activation(act_id), self.k.retry_schedule]
        self.requeued.append(act_id)

    def dead_letter(self, act_id: str, now: float) -> None:
        self.ops.append(["x", act_id, int(now * 1000)])
        self.keys.append(self.k.dead_letters)

    def forget(self, act_id: str) -> None:
        """Take an activation off the retry schedule and the dead letters."""
        self.ops.append(["z", act_id])
        self.keys += [self.k.retry_schedule, self.k.dead_letters]

    def reopen(self, act_id: str, opened: list[Any]) -> None:
        self.ops.append(["o", act_id, pack(opened)])

    def decide(self, key: str, blob: bytes) -> None:
        """A decision about an entry (already encoded)."""
        self.ops.append(["r", blob])
        self.keys.append(self.k.decisions(key))

    def state(self, field: str, value: Any) -> None:
        """Set a field of the controller state hash (breakers, status)."""
        self.ops.append(["s", field, pack(value)])

    def trim(self, role: str, min_id: str) -> None:
        self.ops.append(["t", min_id])
        self.keys.append(self.k.queue(role))

    def record(self, what: str, cand: Candidate, reasons: list[str], now: float) -> None:
        """A decision about a candidate (refused, waiting)."""
        telemetry.refused(what, cand.role, cand.rule, cand.key, reasons, cand.trace)
        self.ops.append([
            "r",
            decision(
                what, key=cand.key, version=cand.version, revision=cand.revision,
                role=cand.role, rule=cand.rule, reasons=reasons,
                activation=cand.activation_id, time_ms=int(now * 1000),
            ),
        ])  # fmt: skip
        self.keys.append(self.k.decisions(cand.key))

    def refuse(
        self, change: Change, role: str, rule: str, reasons: list[str], now: float,
        what: str = "refused",
    ) -> None:  # fmt: skip
        """A decision about a change that made no candidate (refused, pending)."""
        telemetry.refused(what, role, rule, change.key, reasons, change.trace or "")
        self.ops.append([
            "r",
            decision(
                what, key=change.key, version=change.version, revision=change.revision,
                role=role, rule=rule, reasons=reasons, time_ms=int(now * 1000),
            ),
        ])  # fmt: skip
        self.keys.append(self.k.decisions(change.key))

    async def write(
        self, redis: Redis, token: str, group: str, args: tuple[int, int, int],
        durability: Durability | None = None,
    ) -> list[bytes]:  # fmt: skip
        """Send the batch; returns the queue entry id of each grant (b'' for one the board
        refused as granted before). `args`: decisions kept, their TTL ms, record TTL ms.
        `durability`: the board's level (a WAIT on the same connection above 'local').
        Raises StaleLeaseError (the lease is held by another token: nothing written),
        BoardUnavailableError (DurabilityError: written, not confirmed)."""
        k = self.k
        fixed = [k.controller_lease, k.log, k.outcomes, k.open_activations, k.controller_state]
        kept, decisions_ttl, record_ttl = args
        argv = [
            token, group, kept, decisions_ttl, _pack_for_lua(self.ops),
            _pack_for_lua(self.log_acks), _pack_for_lua(self.outcome_acks), record_ttl,
        ]  # fmt: skip
        acks = None
        try:
            if durability is None or durability.is_local:
                [res] = await transport.send(redis, [(functions.GRANT, fixed + self.keys, argv)])
            else:
                call = (functions.GRANT, fixed + self.keys, argv)
                [res], acks = await transport.send_write(redis, k.rev, [call], durability)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if isinstance(res, RedisError):
            raise wrap_redis_error(res)
        if res[0] == b"fenced":
            raise StaleLeaseError(k.controller_lease, res[1].decode())
        if acks is not None and durability is not None:
            durability.check(acks)
        self.requeued_ids = list(res[2]) if len(res) > 2 else []
        return list(res[1])
