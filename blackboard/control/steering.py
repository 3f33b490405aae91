"""Operators' requests to the controller, their outcomes, and what operators look at: the
dead letters, the scheduled retries and the roles' steering (control layer; imports board,
keys, activation, decisions, policy, role_steering).

An operator (the CLI or a human in the TUI) never rewrites the controller's state: it appends
a command to the board's command stream, which only admins and humans may write (acl.py):
`retry` or `cancel` an activation, `pause`, `drain` or `resume` a role, `breaker-open` or
`breaker-reset` a role's breaker. The leader applies each in order, under its lease, and
answers with an ``operator`` decision carrying the command's id, on the entry the activation
is about or on the role's record ``sys/roles/<role>`` (`blackboard explain`); `wait_outcome`
reads that answer. The dead letters are the activations that failed after their last attempt
(or raised `blackboard.Fail`), listed newest first.

A human who decides an escalated activation settles it as its agent would: `take_claim`
makes the activation's queue entry pending for the human (claiming it from whoever holds
it, or reading the queue up to it) and returns the claim fence the decision is committed
under.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack
from redis.exceptions import RedisError, ResponseError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.ops import Fence
from blackboard.control.activation import GROUP, parse_record
from blackboard.control.decisions import controller_status, explain
from blackboard.control.policy import check_role
from blackboard.control.role_steering import ROLE_COMMANDS, RoleState, role_key
from blackboard.errors import ActivationClosedError

__all__ = [
    "COMMANDS",
    "ROLE_COMMANDS",
    "activation",
    "dead_letters",
    "outcome",
    "queue_id_after",
    "request",
    "request_role",
    "retrying",
    "role_key",
    "roles",
    "take_claim",
    "wait_outcome",
]

COMMANDS = ("retry", "cancel", "reject")


async def request(
    board: Board, command: str, activation_id: str, actor: str, reason: str = "",
    back_to: str | None = None,
) -> str:  # fmt: skip
    """Ask the controller to `retry` (run again now: a dead letter or a scheduled retry) or
    `cancel` (a scheduled retry or a dead letter) an activation, or record a human's
    `reject` of an escalated activation with its reason (and, with `back_to`, grant that
    role an activation on the rejected version, carrying who rejected it and why); returns
    the command's id. Raises ValueError for an unknown command, PermissionDeniedError for a
    role user."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}: use {' or '.join(COMMANDS)}")
    fields = {"c": command, "a": activation_id, "w": actor, "why": reason[:500]}
    if back_to:
        fields["to"] = back_to
    try:
        cmd_id: Any = await board.redis.xadd(board.keys_.controller_commands, fields)  # type: ignore[arg-type]
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return cmd_id.decode() if isinstance(cmd_id, bytes) else str(cmd_id)


async def request_role(
    board: Board,
    command: str,
    role: str,
    actor: str,
    reason: str = "",
    expect: int | None = None,
) -> str:
    """Ask the controller to `pause` a role (grant it nothing new; what runs finishes),
    `drain` it (the same, and report when nothing of it is in flight), `resume` it, or open
    (`breaker-open`, until reset) or close (`breaker-reset`) its breaker by hand; returns the
    command's id (`wait_outcome` reads the answer on ``sys/roles/<role>``). With `expect`,
    the controller refuses it unless the role's steering record is at that version.
    Raises ValueError for an unknown command or role name, PermissionDeniedError for a role
    user."""
    if command not in ROLE_COMMANDS:
        raise ValueError(f"unknown command {command!r}: use {', '.join(ROLE_COMMANDS)}")
    check_role(role)
    fields = {"c": command, "r": role, "w": actor, "why": reason[:500]}
    if expect is not None:
        fields["e"] = str(expect)
    try:
        cmd_id: Any = await board.redis.xadd(board.keys_.controller_commands, fields)  # type: ignore[arg-type]
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return cmd_id.decode() if isinstance(cmd_id, bytes) else str(cmd_id)


async def outcome(board: Board, key: str, command_id: str) -> dict[str, Any] | None:
    """The controller's answer to command `command_id` about `key` (an activation's entry,
    or ``sys/roles/<role>``): an explain() item whose reasons are [what was asked, what
    happened]; what happened starts with "refused" when nothing changed. None: no answer
    yet."""
    for item in await explain(board, key, limit=50):
        if item.get("command") == command_id:
            return item
    return None


async def wait_outcome(
    board: Board, key: str, command_id: str, within: float, poll: float = 0.1
) -> dict[str, Any] | None:
    """`outcome`, polled until it is there or `within` seconds have passed (None)."""
    deadline = time.monotonic() + within
    while True:
        found = await outcome(board, key, command_id)
        if found is not None or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(poll)


async def roles(board: Board) -> dict[str, dict[str, Any]]:
    """Every role the controller knows of or an operator steered: its steering record
    (mode, by, reason, time_ms, version, drained), its breaker (state, held: why it was
    opened by hand) and, from the leader's last status, pending, waiting, in_flight and
    retrying. A role never steered reads as running at version 0."""
    try:
        raw: Any = await board.redis.hgetall(board.keys_.controller_state)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out: dict[str, dict[str, Any]] = {}

    def role(name: str) -> dict[str, Any]:
        if name not in out:
            out[name] = {
                **RoleState(name).to_dict(), "drained": False, "breaker": "closed",
                "breaker_held": "", "pending": 0, "waiting": 0, "in_flight": 0, "retrying": 0,
            }  # fmt: skip
        return out[name]

    for field, blob in raw.items():
        name = field.decode(errors="replace") if isinstance(field, bytes) else str(field)
        if not name.startswith(("steer:", "breaker:")):
            continue
        try:
            data = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        except Exception:
            continue
        if not isinstance(data, dict):
            continue
        if name.startswith("steer:"):
            role(name[6:]).update(RoleState.from_dict(name[6:], data).to_dict())
            role(name[6:])["drained"] = bool(data.get("drained_ms"))
        elif name.startswith("breaker:"):
            r = role(name[8:])
            r["breaker"] = str(data.get("state", "closed"))
            r["breaker_held"] = str(data.get("held") or "")
    status = await controller_status(board)
    for name, info in ((status or {}).get("roles") or {}).items():
        if isinstance(info, dict):
            r = role(str(name))
            for k in ("pending", "waiting"):
                r[k] = int(info.get(k, 0) or 0)
            r["breaker"] = str(info.get("breaker", r["breaker"]))
    steered = (status or {}).get("steering") or {}
    for name, r in out.items():
        info = steered.get(name)
        if isinstance(info, dict):
            r["in_flight"] = int(info.get("in_flight", 0) or 0)
            r["retrying"] = int(info.get("retrying", 0) or 0)
        else:  # the leader counts these for steered roles only
            r["in_flight"] = r["pending"]
    return dict(sorted(out.items()))


async def retrying(
    board: Board, role: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """The activations waiting for their next attempt, soonest first (optionally of one
    `role`), each an activation record with `attempt` and `due_ms`."""
    try:
        ids: Any = await board.redis.zrange(board.keys_.retry_schedule, 0, limit - 1)
        async with board.redis.pipeline(transaction=False) as pipe:
            for raw_id in ids:
                pipe.hgetall(board.keys_.activation(_s(raw_id)))
            records: list[Any] = await pipe.execute() if ids else []
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out: list[dict[str, Any]] = []
    for raw_id, raw in zip(ids, records, strict=True):
        if not raw:
            continue
        rec = _record(_s(raw_id), raw)
        if rec["state"] == "retrying" and (not role or rec["role"] == role):
            out.append(rec)
    return out


def _s(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _record(activation_id: str, raw: Any) -> dict[str, Any]:
    rec = parse_record(activation_id, raw)
    rec["attempt"] = int(raw.get(b"n", 1))
    rec["due_ms"] = int(raw.get(b"due", 0)) if rec["state"] == "retrying" else None
    return rec


async def activation(board: Board, activation_id: str) -> dict[str, Any] | None:
    """An activation's record (parse_record) with its attempt and next due time, or None."""
    try:
        raw: Any = await board.redis.hgetall(board.keys_.activation(activation_id))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return _record(activation_id, raw) if raw else None


async def dead_letters(
    board: Board, role: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The activations that failed for good, newest first (optionally of one `role`)."""
    try:
        ids: Any = await board.redis.zrevrange(board.keys_.dead_letters, 0, -1)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out: list[dict[str, Any]] = []
    for raw_id in ids:
        act_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        rec = await activation(board, act_id)
        if rec is None or rec["state"] != "failed" or (role and rec["role"] != role):
            continue
        out.append(rec)
        if len(out) >= limit:
            break
    return out


async def take_claim(board: Board, role: str, entry_id: str, consumer: str) -> Fence:
    """Make entry `entry_id` of `role`'s queue pending for `consumer` (a human deciding an
    escalated activation): claim it from the agent that holds it, or, never delivered, read
    the queue up to it (the earlier entries it reads stay pending for `consumer`). Returns
    the claim fence to commit the decision under. Raises ActivationClosedError when the
    entry was acknowledged (settled) already or is no longer queued,
    BoardUnavailableError."""
    queue = board.keys_.queue(role)
    redis: Any = board.redis
    try:
        try:
            await redis.xgroup_create(queue, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        fence = Fence("claim", queue, entry_id, consumer, GROUP)
        pending: Any = await redis.xpending_range(queue, GROUP, min=entry_id, max=entry_id, count=1)
        if pending:
            if _s(pending[0]["consumer"]) != consumer:
                await redis.xclaim(queue, GROUP, consumer, 0, [entry_id], justid=True)
            return fence
        last = ""
        for g in await redis.xinfo_groups(queue):
            if _s(g.get("name", b"")) == GROUP:
                last = _s(g.get("last-delivered-id", b""))
        if last and not queue_id_after(entry_id, last):
            raise ActivationClosedError("the activation was settled already")
        while True:  # never delivered: read the queue up to it
            reply: Any = await redis.xreadgroup(GROUP, consumer, {queue: ">"}, count=100)
            if not reply or not reply[0][1]:
                raise ActivationClosedError("the activation is no longer queued")
            ids = [_s(i) for i, _ in reply[0][1]]
            if entry_id in ids:
                return fence
            if queue_id_after(ids[-1], entry_id):
                raise ActivationClosedError("the activation is no longer queued")
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc


def queue_id_after(a: str, b: str) -> bool:
    """Queue (stream) entry id `a` is later than `b`."""

    def parts(x: str) -> tuple[int, int]:
        ms, _, seq = x.partition("-")
        return int(ms or 0), int(seq or 0)

    return parts(a) > parts(b)
