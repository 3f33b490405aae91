"""What the controller decided and why: decision records and `explain` (control layer;
imports board, keys, activation).

Every grant, refusal, wait and pending consensus is pushed, newest first, onto the decision
list of the entry it is about (``why:<key>``, capped); a grant's full reasons also stay in
its activation record. `explain(board, key)` reads both, so ``blackboard explain KEY`` tells
which rules matched, which guards let the candidate through or held it, and how each
activation ended.
"""

from __future__ import annotations

from typing import Any

import msgpack
from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.control.activation import parse_record
from blackboard.store.keys import check_key

__all__ = ["controller_status", "decision", "explain", "read_activation"]

_packb = msgpack.Packer(use_bin_type=True).pack  # reused: one Packer, not one per record


def decision(
    what: str,
    *,
    key: str,
    version: int,
    revision: int,
    role: str,
    rule: str,
    reasons: list[str],
    activation: str = "",
    time_ms: int = 0,
    command: str = "",
) -> bytes:
    """One decision record: `what` is granted, refused, waiting, pending, retrying, failed,
    operator or drained; `command` is the id of the operator's command it answers."""
    record: dict[str, Any] = {
        "d": what,
        "k": key,
        "v": version,
        "r": revision,
        "role": role,
        "rule": rule,
        "why": reasons,
        "a": activation,
        "t": time_ms,
    }
    if command:
        record["c"] = command
    return bytes(_packb(record))


async def read_activation(board: Board, activation_id: str) -> dict[str, Any] | None:
    """An activation record as a dict, or None."""
    try:
        raw: Any = await board.redis.hgetall(board.keys_.activation(activation_id))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return parse_record(activation_id, raw) if raw else None


async def explain(board: Board, key: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The controller's decisions about `key`, newest first; each granted one carries the
    current state of its activation under "activation"."""
    check_key(key)
    try:
        raw: Any = await board.redis.lrange(board.keys_.decisions(key), 0, limit - 1)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out = []
    for blob in raw:
        d = msgpack.unpackb(blob, raw=False)
        item = {
            "decision": d["d"],
            "key": d["k"],
            "version": d["v"],
            "revision": d["r"],
            "role": d["role"],
            "rule": d["rule"],
            "reasons": d["why"],
            "activation_id": d["a"] or None,
            "time_ms": d["t"],
        }
        if d.get("c"):
            item["command"] = d["c"]
        if d["d"] == "granted" and d["a"]:
            item["activation"] = await read_activation(board, d["a"])
        out.append(item)
    return out


async def controller_status(board: Board) -> dict[str, Any] | None:
    """The last status the leading controller published (roles, pending, waiting, breakers),
    or None when no controller has led on this board."""
    try:
        raw = await board.redis.hget(board.keys_.controller_state, "status")
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return None if raw is None else dict(msgpack.unpackb(raw, raw=False))
