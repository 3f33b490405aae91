"""A lease with a fencing token, for any single-holder role: the controller's leader lease and
the compactor's lease (store layer; imports functions and errors).

Whoever holds the lease holds a token ``<epoch>:<holder>`` (``lua/lease.lua``); the epoch
counts up once per new holder, so a process that restarts under the same name still gets a
token its earlier life never held. Every write the holder makes is fenced by that token
inside its script (the controller's ``grant.lua``; a fence of mode 'eq' for the compactor's
merges and trims), so a holder that lost the lease (it paused, its network failed, another
took over after the TTL) has its writes refused even if it does not know yet. The TTL is kept
by the server, so no clocks need to agree.
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, RedisError

from blackboard.errors import (
    BlackboardError,
    BoardUnavailableError,
    LeaseLostError,
    PermissionDeniedError,
)
from blackboard.store import functions

__all__ = ["Lease"]


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw or "")


class Lease:
    """One contender `holder` for the lease at `key` (epoch counter at `epoch_key`).

    `token` is this contender's fencing token while it holds the lease ('' when it does
    not); `current` is the token of the holder the last call saw ('' when nobody held it).
    Raises BoardUnavailableError when Redis fails, PermissionDeniedError when the ACL user
    may not touch the lease keys."""

    def __init__(self, redis: Redis, key: str, epoch_key: str, holder: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl!r}")
        self.redis = redis
        self.key = key
        self.epoch_key = epoch_key
        self.holder = holder
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = ""
        self.current = ""

    @property
    def held(self) -> bool:
        """Whether this contender holds the lease, as far as it knows."""
        return bool(self.token)

    @property
    def epoch(self) -> int:
        """The epoch of the held token (0 when not held)."""
        return int(self.token.split(":", 1)[0]) if self.token else 0

    def held_token(self) -> str:
        """The fencing token to guard a write with; LeaseLostError when not held."""
        if not self.token:
            raise LeaseLostError(self.key, f"not held by {self.holder}")
        return self.token

    async def _call(self, op: str) -> tuple[bool, str]:
        try:
            res: Any = await functions.LEASE(
                self.redis, [self.key, self.epoch_key], [op, self.holder, self.ttl_ms, self.token]
            )
        except NoPermissionError as exc:
            raise PermissionDeniedError(f"lease {op} on {self.key!r}: {exc}") from exc
        except RedisError as exc:
            raise BoardUnavailableError(f"lease {op} on {self.key!r} failed: {exc}") from exc
        return bool(int(res[0])), _text(res[1])

    async def acquire(self) -> bool:
        """Take the lease if free, or extend it if held; True when this contender holds it
        afterwards. A contender whose token was lost takes a fresh one when the lease is free."""
        ok, token = await self._call("acquire")
        self.token = token if ok else ""
        self.current = token
        return ok

    async def renew(self) -> bool:
        """Extend a held lease; False (and the token dropped) when it was lost."""
        if not self.token:
            return False
        ok, current = await self._call("renew")
        if not ok:
            self.token = ""
            self.current = current
        return ok

    async def release(self) -> None:
        """Give the lease up at once so that a standby takes over without waiting; a failure
        is ignored (the lease then runs out by itself)."""
        if self.token:
            with contextlib.suppress(BlackboardError):
                await self._call("release")
            self.token = ""

    async def holder_token(self) -> str:
        """The token of whoever holds the lease now ('' when nobody does)."""
        try:
            raw = await self.redis.get(self.key)
        except RedisError as exc:
            raise BoardUnavailableError(f"reading the lease {self.key!r} failed: {exc}") from exc
        return _text(raw)
