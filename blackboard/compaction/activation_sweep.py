"""Clearing finished activations after the retention window (compaction layer).

Imports the board layer (Board, scripts, keys through the board) and retention's SCAN step;
nothing above. The compactor calls an `ActivationSweep` as its default activation sweeper.

Activation records (``act:<id>``, written by the controller) whose state is ``done`` or
``failed``, that are out of the open-activations hash and finished before the cutoff, are
deleted (``sweep_activations.lua``). Role queues (``q:<role>``) are trimmed to the same
window, but never past an entry their consumer group has not been delivered or still has
pending (``trim_stream.lua``). Both walk the board with an incremental SCAN, a slice per
pass, and are fenced by the compactor's lease.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.ops import Fence
from blackboard.board.retention import scan_step
from blackboard.errors import LeaseLostError
from blackboard.store import functions

__all__ = ["ActivationSweep"]


def _checked(res: object, fence: Fence | None) -> list[object]:
    assert isinstance(res, list)
    if res[0] == b"fenced":
        raise LeaseLostError(fence.redis_key if fence else "?", bytes(res[1]).decode())
    return res


class ActivationSweep:
    """``await sweep(board, cutoff_ms, fence)``: clear a slice of finished activations and
    trim the role queues; returns the number of activation records deleted.

    Activations live for minutes to hours, so a sweep runs only when the cutoff has moved
    `every` seconds since the last one: the SCANs it needs walk the board's whole keyspace."""

    def __init__(self, scan: int = 2000, every: float = 60.0) -> None:
        self.scan = scan
        self.every_ms = int(every * 1000)
        self._cursor = 0
        self._last: int | None = None

    async def __call__(self, board: Board, cutoff_ms: int, fence: Fence | None) -> int:
        if self._last is not None and cutoff_ms - self._last < self.every_ms:
            return 0
        self._last = cutoff_ms
        k = board.keys_
        fence_key = fence.redis_key if fence else k.rev
        fence_args = [fence.mode, fence.token] if fence else ["", ""]
        act_prefix = k.activation("")
        cleared = visited = 0
        try:
            while visited < self.scan:
                self._cursor, found = await scan_step(board, self._cursor, act_prefix + "*", 1000)
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in found]
                visited += len(names)
                for i in range(0, len(names), 200):
                    chunk = names[i : i + 200]
                    ids = [n[len(act_prefix) :] for n in chunk]
                    res = await functions.SWEEP_ACTIVATIONS(
                        board.redis,
                        [fence_key, k.open_activations, *chunk],
                        [*fence_args, cutoff_ms, *ids],
                    )
                    cleared += int(_checked(res, fence)[1])  # type: ignore[call-overload]
                if self._cursor == 0:
                    break
            queue_prefix = k.queue("")
            cursor = 0
            while True:
                cursor, found = await scan_step(board, cursor, queue_prefix + "*", 1000)
                for name in found:
                    queue = name.decode() if isinstance(name, bytes) else str(name)
                    res = await functions.TRIM_STREAM(
                        board.redis, [queue, fence_key], [*fence_args, cutoff_ms]
                    )
                    _checked(res, fence)
                if cursor == 0:
                    break
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        return cleared
