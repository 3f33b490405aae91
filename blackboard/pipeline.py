"""Script calls sent in one write and packed by hiredis (board layer; imports scripts).

redis-py 8 packs commands in Python and runs each through its pipeline machinery; for the
controller's grant batches (thousands of keys) and the agents' settling calls (two dozen
arguments each) that costs more CPU than the server spends running the scripts. Here every
call is packed by hiredis's C packer, written at once on one pooled connection, and the
replies are read in order; an error reply is returned in place of its result, never raised.
A client without a connection pool (a cluster client) goes through redis-py's pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from blackboard.scripts import Script

__all__ = ["Call", "send"]

Call = tuple[Script, Sequence[Any], Sequence[Any]]


def _noscript(res: Any) -> bool:
    return isinstance(res, ResponseError) and str(res).startswith("NOSCRIPT")


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
