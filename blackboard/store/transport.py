"""The one way function calls are sent to Redis (store layer; imports durability and errors).

Every call of the library's functions goes through `send` (several calls, one round trip),
`call` (one call) or `send_write` (calls followed by the durability wait on the same
connection), and so through the one "library missing → load it → send again" path: a
"function not found" reply means nothing ran, so loading the library and resending is safe.

redis-py 8 packs commands in Python and runs each through its pipeline machinery; for the
controller's grant batches (thousands of keys) and the agents' settling calls (two dozen
arguments each) that costs more CPU than the server spends running the functions. Here the
calls are packed by hiredis's C packer, written at once on one pooled connection, and the
replies read in order; an error reply is returned in place of its result, never raised. A
client without a connection pool (a cluster client) goes through redis-py's pipeline.
`Batcher` gathers the calls many tasks make at about the same time into such batches.
`wrap_redis_error` turns redis-py's errors into the blackboard's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import hiredis
from redis.asyncio import Redis
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from blackboard.errors import (
    BlackboardError,
    BoardUnavailableError,
    CorruptEntryError,
    LibraryMissingError,
    PermissionDeniedError,
)
from blackboard.store import durability as durability_
from blackboard.store.durability import Acks, Durability

__all__ = [
    "Batcher",
    "Call",
    "Function",
    "Library",
    "call",
    "is_missing",
    "load_library",
    "read_group",
    "send",
    "send_write",
    "wrap_redis_error",
]


@dataclass(frozen=True, slots=True)
class Library:
    """A functions library: its version and the text given to ``FUNCTION LOAD``."""

    version: str
    text: str


class Function(Protocol):
    """One function of a library (`functions.Script`)."""

    @property
    def library(self) -> Library: ...

    def command(self, keys: list[str], args: list[Any]) -> tuple[Any, ...]: ...


# (function, keys, args), or a plain command tuple such as ("HGETALL", key)
Call = tuple[Function, Sequence[Any], Sequence[Any]] | tuple[Any, ...]


def wrap_redis_error(exc: RedisError, key: str | None = None) -> BlackboardError:
    """The blackboard error for a redis-py error (callers `raise ... from exc`)."""
    if isinstance(exc, NoPermissionError) or "NOPERM" in str(exc):
        return PermissionDeniedError(f"Redis refused {key or 'the command'}: {exc}")
    if isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc):
        return CorruptEntryError(key or "?", "a Redis key of another type is in the way")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return BoardUnavailableError(f"Redis is unreachable: {exc}")
    return BoardUnavailableError(f"Redis error: {exc}")


def is_missing(reply: Any) -> bool:
    """Whether a reply says the server lacks the function (nothing ran)."""
    return isinstance(reply, ResponseError) and "function not found" in str(reply).lower()


async def load_library(redis: Any, library: Library) -> None:
    """FUNCTION LOAD `library` on the server (every primary of a cluster), replacing a copy
    of the same version. Raises LibraryMissingError when this user may not load code."""
    try:
        if hasattr(redis, "get_primaries"):  # a cluster client: each primary has its own
            for node in redis.get_primaries():
                await redis.execute_command(
                    "FUNCTION", "LOAD", "REPLACE", library.text, target_nodes=node
                )
        else:
            await redis.execute_command("FUNCTION", "LOAD", "REPLACE", library.text)
    except NoPermissionError as exc:
        raise LibraryMissingError(library.version, "this user may not load it") from exc
    except ResponseError as exc:
        if "NOPERM" in str(exc):
            raise LibraryMissingError(library.version, "this user may not load it") from exc
        raise


def _commands(calls: Sequence[Call]) -> tuple[list[tuple[Any, ...]], Library | None]:
    commands: list[tuple[Any, ...]] = []
    library: Library | None = None
    for c in calls:
        head = c[0] if c else None
        if isinstance(head, str | bytes) or head is None:
            commands.append(tuple(c))
        else:
            fn: Function = head
            commands.append(fn.command(list(c[1]), list(c[2])))
            library = library or fn.library
    return commands, library


async def _with_library(
    redis: Any,
    commands: list[tuple[Any, ...]],
    library: Library | None,
    run: Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]],
) -> tuple[list[Any], bool]:
    """`run(commands)`, and once more for those that met a missing library after loading
    it (the one retry path); the results in order and whether any were sent again."""
    results = await run(commands)
    missing = [i for i, r in enumerate(results) if is_missing(r)] if library else []
    if missing:
        assert library is not None
        await load_library(redis, library)
        redone = await run([commands[i] for i in missing])
        for i, res in zip(missing, redone, strict=True):
            results[i] = res
    return results, bool(missing)


async def send(redis: Redis, calls: Sequence[Call], library: Library | None = None) -> list[Any]:
    """Run every call in one round trip; results in order (a ResponseError for a call the
    server refused). `library`: the one to load for plain FCALL tuples (default: that of
    the first function call). Raises redis-py's connection errors and LibraryMissingError."""
    commands, found = _commands(calls)
    pool = getattr(redis, "connection_pool", None)

    async def run(cmds: list[tuple[Any, ...]]) -> list[Any]:
        if pool is None:
            return await _pipelined(redis, cmds)
        return await _send_packed(pool, cmds)

    results, _ = await _with_library(redis, commands, library or found, run)
    return results


async def call(redis: Any, fn: Function, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """Run one function call; its result. Raises redis errors unchanged (callers wrap them)
    and LibraryMissingError when the server lacks the library and this user may not load it."""
    command = fn.command(list(keys), list(args))
    pool = getattr(redis, "connection_pool", None)
    lean = pool is not None and not getattr(redis, "single_connection_client", False)

    async def run(cmds: list[tuple[Any, ...]]) -> list[Any]:
        if lean:
            return await _send_packed(pool, cmds, resend=True)
        try:
            return [await redis.execute_command(*cmds[0])]
        except ResponseError as exc:
            if not is_missing(exc):
                raise
            return [exc]

    [res], _ = await _with_library(redis, [command], fn.library, run)
    if isinstance(res, RedisError):
        raise res
    return res


async def send_write(
    redis: Any, revision_key: str, calls: Sequence[Call], durability: Durability
) -> tuple[list[Any], Acks | None]:
    """Write-function calls on the board whose revision counter is `revision_key`, and at a
    level above 'local' the durability wait on the same connection (durability.send): the
    results (a ResponseError in place of a refused call) and the acknowledgements (None at
    'local'). When a call was sent again, or a reply is an idempotent replay (``{'dup',
    ...}``: it wrote nothing on this connection, and its first attempt may have been made on
    another one), `durability.confirm` waits again. Raises as `send`, and the wait's error."""
    if durability.is_local:
        return await send(redis, calls), None
    commands, library = _commands(calls)
    acks: list[Acks] = []

    async def run(cmds: list[tuple[Any, ...]]) -> list[Any]:
        results, got = await durability_.send(redis, revision_key, cmds, durability)
        acks.append(got)
        return results

    results, resent = await _with_library(redis, commands, library, run)
    if resent or any(_replayed(r) for r in results):
        return results, await durability_.confirm(redis, revision_key, durability)
    return results, acks[0]


def _replayed(res: Any) -> bool:
    return isinstance(res, list) and bool(res) and res[0] == b"dup"


async def _pipelined(redis: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for cmd in commands:
            pipe.execute_command(*cmd)
        return list(await pipe.execute(raise_on_error=False))


async def _send_packed(
    pool: Any, commands: list[tuple[Any, ...]], *, resend: bool = False
) -> list[Any]:
    """The commands packed by hiredis, written at once on one pooled connection, and their
    replies read raw, in order (an error reply in place of its result, not raised): none of
    redis-py's per-command machinery. With `resend`, under the connection's retry policy as
    redis-py's own command path runs it (a connection or timeout error: disconnect, back
    off, send again; safe for the write functions, whose idempotency keys make a resend a
    replay): single calls and group reads. Any other exit, a cancelled wait included,
    disconnects, so no reply is left behind for the connection's next user."""
    packed = b"".join(hiredis.pack_command(cmd) for cmd in commands)
    conn = await pool.get_connection()

    async def once() -> list[Any]:
        await conn.send_packed_command(packed, check_health=False)
        results: list[Any] = []
        for _ in commands:
            try:
                results.append(await conn.read_response())
            except ResponseError as exc:
                results.append(exc)
        return results

    async def fail(_error: BaseException) -> None:
        await conn.disconnect()

    try:
        return await (conn.retry.call_with_retry(once, fail) if resend else once())
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


# one stream's entries as XREADGROUP returns them: (stream, [(entry id, fields or None)])
StreamEntries = tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]


async def read_group(
    redis: Any,
    group: str,
    consumer: str,
    streams: dict[str, str],
    count: int,
    block_ms: int | None = None,
) -> list[StreamEntries]:
    """XREADGROUP GROUP `group` `consumer` COUNT `count` [BLOCK `block_ms`] STREAMS ...:
    each stream with entries, in redis-py's RESP2 shape whatever the protocol (names and ids
    as bytes, fields as a dict), except that an entry deleted since it was delivered has
    None for fields (redis-py: an empty dict); [] when the block times out. Sent
    as `call` sends a function call (packed, under the connection's retry policy): the
    agents' and the controller's reads are one per wake-up, so redis-py's per-command
    machinery and reply conversion would cost more than the read. Raises redis errors."""
    pool = getattr(redis, "connection_pool", None)
    if pool is None or getattr(redis, "single_connection_client", False):
        reply: Any = await redis.xreadgroup(group, consumer, streams, count=count, block=block_ms)
        return [(_b(name), list(entries)) for name, entries in reply or []]
    command: list[Any] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
    if block_ms is not None:
        command += ["BLOCK", block_ms]
    command += ["STREAMS", *streams, *streams.values()]
    [raw] = await _send_packed(pool, [tuple(command)], resend=True)
    if isinstance(raw, RedisError):
        raise raw
    out: list[StreamEntries] = []
    for name, entries in raw.items() if isinstance(raw, dict) else raw or []:
        out.append(
            (
                name,
                [
                    (eid, None if flat is None else dict(zip(flat[::2], flat[1::2], strict=True)))
                    for eid, flat in entries
                ],
            )
        )
    return out


def _b(x: Any) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class Batcher:
    """Function calls made while a batch is in flight go out together in the next one: one
    write and one read per reply, whatever the number of tasks calling. Run `run()` as a
    task; `call()` waits for that task to send it."""

    def __init__(self, redis: Redis, limit: int = 256) -> None:
        self._redis = redis
        self._limit = limit
        self._items: list[tuple[Function, Sequence[Any], Sequence[Any], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()

    async def call(self, fn: Function, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The function's result; raises the server's error for this call (ResponseError)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._items.append((fn, keys, args, fut))
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
