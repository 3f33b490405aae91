"""Script calls sent in one write and packed by hiredis (board layer; imports scripts).

redis-py 8 packs commands in Python and runs each through its pipeline machinery; for the
controller's grant batches (thousands of keys) and the agents' settling calls (two dozen
arguments each) that costs more CPU than the server spends running the scripts. Here every
call is packed by hiredis's C packer, written at once on one pooled connection, and the
replies are read in order; an error reply is returned in place of its result, never raised.
A client without a connection pool (a cluster client) goes through redis-py's pipeline.
`Batcher` gathers the calls many tasks make at about the same time into such batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from blackboard.store import functions
from blackboard.store.functions import Script

__all__ = ["Batcher", "Call", "send"]

Call = tuple[Script, Sequence[Any], Sequence[Any]]


async def send(redis: Redis, calls: Sequence[Call]) -> list[Any]:
    """Run every (script, keys, args) call; results in order (a ResponseError for a call the
    server refused). Raises redis-py's connection errors and LibraryMissingError."""
    pool = getattr(redis, "connection_pool", None)
    commands = [s.command(list(k), list(a)) for s, k, a in calls]
    if pool is None:
        return await functions.pipelined(redis, commands)
    results = await _send_packed(pool, commands)
    missing = [i for i, r in enumerate(results) if functions.is_missing(r)]
    if missing:  # the server lacks the library: nothing ran for these
        await functions.load_library(redis)
        redone = await _send_packed(pool, [commands[i] for i in missing])
        for i, res in zip(missing, redone, strict=True):
            results[i] = res
    return results


async def _send_packed(pool: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    packed = b"".join(hiredis.pack_command(cmd) for cmd in commands)
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(packed, check_health=False)
        results: list[Any] = []
        for _ in commands:
            try:
                results.append(await conn.read_response())
            except ResponseError as exc:
                results.append(exc)
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
    return results


class Batcher:
    """Script calls made while a batch is in flight go out together in the next one: one
    write and one read per reply, whatever the number of tasks calling. Run `run()` as a
    task; `call()` waits for that task to send it."""

    def __init__(self, redis: Redis, limit: int = 256) -> None:
        self._redis = redis
        self._limit = limit
        self._items: list[tuple[Script, Sequence[Any], Sequence[Any], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's result; raises the server's error for this call (ResponseError)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._items.append((script, keys, args, fut))
        self._wake.set()
        res = await fut
        if isinstance(res, RedisError):
            raise res
        return res

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                batch, self._items = self._items[: self._limit], self._items[self._limit :]
                try:
                    results = await send(self._redis, [(s, k, a) for s, k, a, _ in batch])
                except Exception as exc:
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (*_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)
