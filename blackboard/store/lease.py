"""A leader lease with a fencing epoch (board layer; imports scripts, keys, errors).

Whoever holds the lease holds a token ``<epoch>:<holder>``; every write the leader makes is
fenced by that token inside its script, so a leader that lost the lease (it paused, its
network failed, another took over after the TTL) has its writes rejected even if it does
not know yet. The TTL is kept by the server, so no clocks need to agree.
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from blackboard.errors import BlackboardError, BoardUnavailableError
from blackboard.store import functions

__all__ = ["LeaderLease"]


class LeaderLease:
    """One contender for the lease at `key` (epoch counter at `epoch_key`)."""

    def __init__(self, redis: Redis, key: str, epoch_key: str, holder: str, ttl: float) -> None:
        self.redis = redis
        self.key = key
        self.epoch_key = epoch_key
        self.holder = holder
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = ""
        self.current = ""

    @property
    def epoch(self) -> int:
        return int(self.token.split(":", 1)[0]) if self.token else 0

    async def _call(self, op: str) -> tuple[bool, str]:
        try:
            res: Any = await functions.LEASE(
                self.redis, [self.key, self.epoch_key], [op, self.holder, self.ttl_ms, self.token]
            )
        except RedisError as exc:
            raise BoardUnavailableError(f"lease {op} failed: {exc}") from exc
        other = res[1].decode() if isinstance(res[1], bytes) else str(res[1])
        return bool(int(res[0])), other

    async def acquire(self) -> bool:
        """Take the lease if free (or keep it if held); True when this contender leads."""
        ok, token = await self._call("acquire")
        self.token = token if ok else ""
        self.current = token
        return ok

    async def renew(self) -> bool:
        """Extend a held lease; False (and the token dropped) when it was lost."""
        if not self.token:
            return False
        ok, _ = await self._call("renew")
        if not ok:
            self.token = ""
        return ok

    async def release(self) -> None:
        """Give the lease up at once so that a standby takes over without waiting."""
        if self.token:
            with contextlib.suppress(BlackboardError):
                await self._call("release")
            self.token = ""

    async def holder_token(self) -> str:
        """The token of whoever holds the lease now ('' when nobody does)."""
        try:
            raw = await self.redis.get(self.key)
        except RedisError as exc:
            raise BoardUnavailableError(f"reading the lease failed: {exc}") from exc
        return raw.decode() if isinstance(raw, bytes) else (raw or "")
