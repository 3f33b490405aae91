"""Durability levels: when a write counts as acknowledged (store layer; imports errors
and settings; `transport.send_write` sends writes at a level).

Redis replicates asynchronously: a primary answers a write before any replica has it, so a
failover can lose writes the primary acknowledged. A `Durability` says how much more a write
waits for before it returns:

- ``local``: the primary applied it (and wrote it to its AOF, if on, before answering);
- ``replicated``: and ``replicas`` replicas acknowledged it (``WAIT``);
- ``fsynced``: and the primary and ``replicas`` replicas fsynced it to their AOF
  (``WAITAOF 1 <replicas>``; Redis >= 7.2 or Valkey, appendonly yes on the primary).

``WAIT`` counts the replicas that reached the offset of the last write *of the connection it
runs on*, so `send` runs the write and the wait on one connection, one round trip. Neither
may run inside a script or function. A write that wrote nothing on that connection (an
idempotent replay answering ``dup``) gives a WAIT nothing to wait for; `confirm` makes one
no-op write (``INCRBY <revision key> 0``) and waits again: replication is one ordered stream,
so a replica that has it has everything the primary applied before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import hiredis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from blackboard.errors import (
    DurabilityError,
    DurabilityUnsupportedError,
    PermissionDeniedError,
)
from blackboard.settings import Settings

__all__ = [
    "LEVELS",
    "Acks",
    "Durability",
    "Level",
    "check_support",
    "confirm",
    "send",
]

Level = Literal["local", "replicated", "fsynced"]
LEVELS: tuple[str, ...] = get_args(Level)

# errors after which the board's slot may live on another node now (failover, resharding)
_MOVED = (MovedError, AskError, ClusterDownError, TryAgainError)
_CONNECTION = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
_CLUSTER_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class Durability:
    """When a write returns: `level`, the `replicas` that must confirm it above ``local``,
    and how long it waits for them (`timeout_ms`) before `DurabilityError`."""

    level: Level = "local"
    replicas: int = 1
    timeout_ms: int = 1000

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"durability must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int):
            raise ValueError(f"replicas must be an integer, not {self.replicas!r}")
        if self.replicas < 0 or (self.level == "replicated" and self.replicas < 1):
            raise ValueError(f"{self.level} durability needs replicas >= 1, not {self.replicas}")
        if isinstance(self.timeout_ms, bool) or not isinstance(self.timeout_ms, int):
            raise ValueError(f"timeout_ms must be an integer, not {self.timeout_ms!r}")
        if self.timeout_ms < 1:  # WAIT 0 would block for ever
            raise ValueError(f"timeout_ms must be >= 1, not {self.timeout_ms}")

    @classmethod
    def of(cls, spec: Durability | str | None, settings: Settings) -> Durability:
        """`spec` as a Durability: None means the settings' level, a level name takes the
        settings' replicas and timeout. Raises ValueError for an unknown level."""
        if isinstance(spec, Durability):
            return spec
        level = settings.durability if spec is None else spec
        replicas = settings.durability_replicas
        if level == "replicated":
            replicas = max(1, replicas)
        return cls(level, replicas, settings.durability_timeout_ms)  # type: ignore[arg-type]

    @property
    def is_local(self) -> bool:
        return self.level == "local"

    def command(self) -> tuple[Any, ...]:
        """The WAIT or WAITAOF command that confirms this connection's writes."""
        if self.level == "fsynced":
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    def acks(self, reply: Any) -> Acks:
        """The acknowledgements a WAIT / WAITAOF reply reports."""
        if self.level == "fsynced":
            local, replicas = reply
            return Acks(int(replicas), bool(int(local)))
        return Acks(int(reply), None)

    def check(self, acks: Acks, entries: list[Any] | None = None) -> None:
        """Raise DurabilityError (carrying `entries`) unless `acks` satisfy this level."""
        if acks.replicas >= self.replicas and acks.local is not False:
            return
        raise DurabilityError(
            self.level,
            acks.replicas,
            self.replicas,
            self.timeout_ms,
            local_fsynced=acks.local,
            entries=entries,
        )


@dataclass(frozen=True, slots=True)
class Acks:
    """What a WAIT or WAITAOF reported: replicas that confirmed, and (WAITAOF only) whether
    the primary fsynced its own AOF."""

    replicas: int
    local: bool | None = None


async def send(
    redis: Any, route_key: str, commands: Sequence[tuple[Any, ...]], durability: Durability
) -> tuple[list[Any], Acks]:
    """Run `commands`, then the durability wait, on one connection of the node that holds
    `route_key`, in one round trip. Returns the commands' results (a ResponseError in place
    of a refused one) and the acknowledgements. Raises redis-py's connection errors, and the
    wait's own error (NOPERM, WAITAOF without AOF) unchanged."""
    batch = [*commands, durability.command()]
    if hasattr(redis, "get_node_from_key"):
        raw = await _on_cluster_node(redis, route_key, batch)
    else:
        raw = await _on_pooled_connection(redis.connection_pool, batch)
    *results, reply = raw
    if isinstance(reply, BaseException):
        raise reply
    return results, durability.acks(reply)


async def confirm(redis: Any, revision_key: str, durability: Durability) -> Acks:
    """Confirm what the primary holds now, including writes made on other connections (an
    idempotent replay's first attempt): a no-op write (``INCRBY <revision_key> 0``, the
    board's revision counter, left as it is), then the wait."""
    [bumped], acks = await send(redis, revision_key, [("INCRBY", revision_key, 0)], durability)
    if isinstance(bumped, BaseException):
        raise bumped
    return acks


async def _on_pooled_connection(pool: Any, batch: list[tuple[Any, ...]]) -> list[Any]:
    """The batch packed by hiredis and written at once on one pooled connection (a Sentinel
    pool's finds the current primary when it connects), the replies read in order; sent
    again whole, under the connection's retry policy, after a dropped connection: safe,
    every write is idempotent. Costs ~60 us less client CPU than a redis-py pipeline."""
    packed = b"".join(hiredis.pack_command(cmd) for cmd in batch)
    conn = await pool.get_connection()

    async def exchange() -> list[Any]:
        await conn.send_packed_command(packed, check_health=False)
        out: list[Any] = []
        for _ in batch:
            try:
                out.append(await conn.read_response())
            except ResponseError as exc:
                out.append(exc)
        return out

    async def dropped(_error: BaseException) -> None:
        await conn.disconnect()

    try:
        results: list[Any] = await conn.retry.call_with_retry(exchange, dropped)
        return results
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


async def _on_cluster_node(redis: Any, key: str, batch: list[tuple[Any, ...]]) -> list[Any]:
    """The batch on one connection of the primary that owns `key`'s slot; the slot map is
    refreshed and the batch sent again when the node is gone or the slot moved."""
    from redis.asyncio.cluster import PipelineCommand

    last: BaseException | None = None
    for attempt in range(_CLUSTER_ATTEMPTS):
        if attempt:
            await asyncio.sleep(min(0.5, 0.05 * 2**attempt))
            try:
                await redis.nodes_manager.initialize()
            except Exception as exc:  # no node answered yet: try again after the backoff
                last = exc
                continue
        node = redis.get_node_from_key(key)
        stack = [PipelineCommand(i, *cmd) for i, cmd in enumerate(batch)]
        try:
            await node.execute_pipeline(stack)
        except _CONNECTION as exc:
            last = exc
            continue
        results = [cmd.result for cmd in stack]
        moved = next((r for r in results if isinstance(r, _MOVED + _CONNECTION)), None)
        if moved is None:
            return results
        last = moved
    assert last is not None
    raise last


async def check_support(redis: Any, route_key: str, durability: Durability) -> None:
    """Make sure the board's server can give `durability` (before anything is written).
    Raises DurabilityUnsupportedError (no WAITAOF, no AOF, a replica), PermissionDeniedError
    (the user may not run WAIT / WAITAOF), redis-py's connection errors."""
    if durability.is_local:
        return
    # nothing written on this connection yet: the wait returns at once
    probe = Durability(durability.level, 0 if durability.level == "fsynced" else 1, 1)
    try:
        await send(redis, route_key, [], probe)
    except NoPermissionError as exc:
        raise PermissionDeniedError(
            f"durability {durability.level!r} needs {probe.command()[0]}, which this Redis "
            f"user may not run (blackboard acl generate grants it): {exc}"
        ) from exc
    except ResponseError as exc:
        text = str(exc)
        if "NOPERM" in text:
            raise PermissionDeniedError(
                f"durability {durability.level!r} needs {probe.command()[0]}: {text}"
            ) from exc
        if "unknown command" in text.lower():
            why = "the server has no WAITAOF (Redis >= 7.2 or Valkey has it)"
        elif "appendonly" in text.lower():
            why = "the primary runs without AOF (appendonly yes is needed)"
        elif "replica" in text.lower():
            why = "this server is a replica (connect to the primary)"
        else:
            why = text
        raise DurabilityUnsupportedError(
            f"durability {durability.level!r} is not possible here: {why}; use "
            "BLACKBOARD_DURABILITY=replicated or local, or another server"
        ) from exc
