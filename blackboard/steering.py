"""Operators' requests to the controller and the dead-letter list (control layer; imports
board, keys, activation).

An operator (the CLI or a human in the TUI) never rewrites the controller's state: it appends
a command (retry, cancel) to the board's command stream, which only admins and humans may
write (acl.py), and the leader applies it in order, under its lease, with the actor and
reason on the record (`blackboard explain`). The dead letters are the activations that failed
after their last attempt (or raised `blackboard.Fail`), listed newest first.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from blackboard.activation import parse_record
from blackboard.board import Board, wrap_redis_error

__all__ = ["COMMANDS", "activation", "dead_letters", "request"]

COMMANDS = ("retry", "cancel")


async def request(
    board: Board, command: str, activation_id: str, actor: str, reason: str = ""
) -> str:
    """Ask the controller to `retry` (run again now: a dead letter or a scheduled retry) or
    `cancel` (a scheduled retry or a dead letter) an activation; returns the command's id.
    Raises ValueError for an unknown command, PermissionDeniedError for a role user."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}: use {' or '.join(COMMANDS)}")
    fields = {"c": command, "a": activation_id, "w": actor, "why": reason[:500]}
    try:
        cmd_id: Any = await board.redis.xadd(board.keys_.controller_commands, fields)  # type: ignore[arg-type]
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return cmd_id.decode() if isinstance(cmd_id, bytes) else str(cmd_id)


async def activation(board: Board, activation_id: str) -> dict[str, Any] | None:
    """An activation's record (parse_record) with its attempt and next due time, or None."""
    try:
        raw: Any = await board.redis.hgetall(board.keys_.activation(activation_id))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    if not raw:
        return None
    rec = parse_record(activation_id, raw)
    rec["attempt"] = int(raw.get(b"n", 1))
    rec["due_ms"] = int(raw.get(b"due", 0)) if rec["state"] == "retrying" else None
    return rec


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
