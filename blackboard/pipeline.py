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
from redis.exceptions import NoScriptError, RedisError, ResponseError

from blackboard.scripts import Script

__all__ = ["Batcher", "Call", "send"]

Call = tuple[Script, Sequence[Any], Sequence[Any]]


def _noscript(res: Any) -> bool:
    # redis-py turns the NOSCRIPT reply into NoScriptError("No matching script...")
    return isinstance(res, NoScriptError) or (
        isinstance(res, ResponseError) and "NOSCRIPT" in str(res)
    )


async def send(redis: Redis, calls: Sequence[Call]) -> list[Any]:
    """Run every (script, keys, args) call; results in order (a ResponseError for a call the
    server refused). Raises redis-py's connection errors."""
    pool = getattr(redis, "connection_pool", None)
    if pool is None:
        async with redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                script.queue(pipe, list(keys), list(args))
            results: list[Any] = await pipe.execute(raise_on_error=False)
    else:
        results = await _send_packed(pool, [("EVALSHA", s.sha, k, a) for s, k, a in calls])
    missing = [i for i, r in enumerate(results) if _noscript(r)]
    if missing:  # the server lost its script cache: nothing ran, send the source
        again = [("EVAL", calls[i][0].source, calls[i][1], calls[i][2]) for i in missing]
        if pool is None:
            async with redis.pipeline(transaction=False) as pipe:
                for verb, src, keys, args in again:
                    pipe.execute_command(verb, src, len(keys), *keys, *args)
                redone = await pipe.execute(raise_on_error=False)
        else:
            redone = await _send_packed(pool, again)
        for i, res in zip(missing, redone, strict=True):
            results[i] = res
    return results


async def _send_packed(pool: Any, commands: list[tuple[str, str, Any, Any]]) -> list[Any]:
    packed = b"".join(
        hiredis.pack_command((verb, body, len(keys), *keys, *args))
        for verb, body, keys, args in commands
    )
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
