"""Retention: bound the change log and per-key history to a window (board layer).

Imports the board layer (Board, scripts, keys via the board) and nothing above it. Every
trim is a Lua script fenced by the compactor's lease, and each call removes a bounded batch
so that a long backlog never blocks the server for long:

- the change log (``trim_log.lua``): events older than the window (count and age, whichever
  is stricter) go, but never one that a consumer group has not been delivered yet or still
  has pending, so the controller never misses a change;
- per-key history (``trim_history.lua``): versions behind the window go, the current version
  (a tombstone too) always stays, so versions never restart. Entries are visited by an
  incremental SCAN whose cursor survives between passes;
- finished activations: through an `ActivationSweeper` hook, because the activation records
  belong to the controller and agent runtime;
- idempotency records need nothing: they expire by their TTL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.ops import Fence
from blackboard.errors import LeaseLostError
from blackboard.store import functions

__all__ = [
    "ActivationSweeper",
    "HistorySweep",
    "HistoryTrim",
    "LogTrim",
    "Retention",
    "scan_step",
    "trim_log",
]

ActivationSweeper = Callable[[Board, int, Fence | None], Awaitable[int]]
"""``await sweep(board, cutoff_ms, fence)``: clear finished activations that finished before
`cutoff_ms`; returns how many it cleared."""


class Retention(BaseModel):
    """The retention window. None switches a limit off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log_max_events: int | None = Field(100_000, ge=1, description="change-log events kept")
    log_max_age: float | None = Field(3600.0, gt=0, description="seconds of change log kept")
    history_max_versions: int | None = Field(
        None, ge=1, description="versions kept per entry (the commit keeps history_keep anyway)"
    )
    history_max_age: float | None = Field(
        3600.0, gt=0, description="seconds of per-key history kept (the current version stays)"
    )
    activation_max_age: float | None = Field(
        3600.0, gt=0, description="seconds a finished activation is kept"
    )
    every: float = Field(5.0, gt=0, description="seconds between retention passes")
    batch: int = Field(10_000, ge=1, description="most events or versions one script removes")
    scan: int = Field(2_000, ge=1, description="entries visited per history pass")

    @property
    def enabled(self) -> bool:
        return any(
            x is not None
            for x in (
                self.log_max_events,
                self.log_max_age,
                self.history_max_versions,
                self.history_max_age,
                self.activation_max_age,
            )
        )


@dataclass(frozen=True, slots=True)
class LogTrim:
    """Events removed, the oldest revision the log now holds (0: empty), and the consumer
    group that held the trim back ('' when none did)."""

    removed: int
    oldest: int
    held_by: str


@dataclass(frozen=True, slots=True)
class HistoryTrim:
    """Versions removed, entries changed, entries visited, and whether a full sweep of the
    board ended in this pass."""

    removed: int
    entries: int
    visited: int
    sweep_done: bool


def _fence_args(fence: Fence | None) -> list[str]:
    return [fence.mode, fence.token] if fence else ["", ""]


def _check(res: Any, fence: Fence | None) -> Any:
    if res[0] == b"fenced":
        raise LeaseLostError(fence.redis_key if fence else "?", res[1].decode())
    return res


async def trim_log(
    board: Board, retention: Retention, now_ms: int, fence: Fence | None = None
) -> LogTrim:
    """Trim the change log to the window. Raises LeaseLostError, BoardUnavailableError."""
    max_events = retention.log_max_events or 0
    cutoff = int(now_ms - retention.log_max_age * 1000) if retention.log_max_age else 0
    keys = [board.keys_.log, fence.redis_key if fence else board.keys_.rev]
    total, oldest, held_by = 0, 0, ""
    while True:
        args = [*_fence_args(fence), max_events, max(cutoff, 0), retention.batch]
        try:
            res = _check(await functions.TRIM_LOG(board.redis, keys, args), fence)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        removed, oldest, held_by = int(res[1]), int(res[2]), res[3].decode()
        total += removed
        if removed < retention.batch:
            return LogTrim(total, oldest, held_by)


async def scan_step(board: Board, cursor: int, pattern: str, count: int) -> tuple[int, list[Any]]:
    """One SCAN step over the board's keys matching `pattern`; in a cluster, on the node
    that holds the board (one hash tag). Raises redis errors unchanged."""
    redis: Any = board.redis
    args = ("SCAN", cursor, "MATCH", pattern, "COUNT", count)
    if hasattr(redis, "get_node_from_key"):
        node = redis.get_node_from_key(board.keys_.rev)
        cursors, keys = await redis.execute_command(*args, target_nodes=node)
        # redis-py's cluster SCAN answers ({node name: cursor}, keys)
        cursor = next(iter(cursors.values())) if isinstance(cursors, dict) else cursors
        return int(cursor), list(keys)
    reply = await redis.execute_command(*args)
    return int(reply[0]), list(reply[1])


class HistorySweep:
    """Walks every entry hash of a board with SCAN, a slice per pass, trimming history."""

    def __init__(self, board: Board, retention: Retention) -> None:
        self.board = board
        self.retention = retention
        self._cursor = 0
        self._pattern = board.keys_.entry_pattern("*")

    async def step(self, now_ms: int, fence: Fence | None = None) -> HistoryTrim:
        """Visit up to `retention.scan` entries from where the last step stopped.
        Raises LeaseLostError, BoardUnavailableError."""
        r = self.retention
        keep = r.history_max_versions or 0
        cutoff = int(now_ms - r.history_max_age * 1000) if r.history_max_age else 0
        if not keep and not cutoff:
            return HistoryTrim(0, 0, 0, True)
        keep = keep or (1 << 40)  # no count limit: only the age cuts
        fence_key = fence.redis_key if fence else self.board.keys_.rev
        removed = entries = visited = 0
        done = False
        try:
            while visited < r.scan:
                cursor, found = await scan_step(
                    self.board, self._cursor, self._pattern, min(1000, r.scan)
                )
                self._cursor = int(cursor)
                names = [k.decode() if isinstance(k, bytes) else k for k in found]
                for i in range(0, len(names), 200):
                    chunk = names[i : i + 200]
                    args = [*_fence_args(fence), keep, max(cutoff, 0), r.batch]
                    res = await functions.TRIM_HISTORY(self.board.redis, [fence_key, *chunk], args)
                    _check(res, fence)
                    removed += int(res[1])
                    entries += int(res[2])
                visited += len(names)
                if self._cursor == 0:
                    done = True
                    break
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        return HistoryTrim(removed, entries, visited, done)
