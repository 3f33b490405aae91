"""store/transport.py: the one send path, and its one "library missing → load → resend" retry
(single calls, pipelined calls mixed with plain commands, and writes at a durability level)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

import blackboard
from blackboard.board import client
from blackboard.store import functions, transport
from blackboard.store.durability import Durability
from blackboard.store.server import RedisServer


async def _drop_library(board: blackboard.Board) -> None:
    r: Any = board.redis
    await r.execute_command("FUNCTION", "DELETE", f"blackboard_{functions.VERSION}")
    try:
        await r.execute_command("FCALL_RO", f"bb_{functions.VERSION}_version", 0)
    except ResponseError as exc:
        assert transport.is_missing(exc)
    else:
        raise AssertionError("the library is still loaded")


async def test_call_loads_a_missing_library_and_runs_once(board: blackboard.Board) -> None:
    await board.put("k", 1)
    await _drop_library(board)
    res = await transport.call(board.redis, functions.READ, [board.keys_.entry("k")], ["c"])
    assert res[0] == b"ok" and int(res[1]) == 1


async def test_send_mixes_calls_and_plain_commands_and_reloads_once(
    board: blackboard.Board,
) -> None:
    await board.put("k", 1)
    await _drop_library(board)
    entry = board.keys_.entry("k")
    res = await transport.send(
        board.redis, [(functions.READ, [entry], ["c"]), ("HGET", entry, "v"), ("INCR", entry)]
    )
    assert res[0][0] == b"ok" and res[1] == b"1"
    assert isinstance(res[2], ResponseError)  # a refused command, in place, not raised


async def test_send_write_at_local_reloads_and_commits(board: blackboard.Board) -> None:
    await _drop_library(board)
    prepared = board.prepare_commit([blackboard.Put("k", 5)])
    call = (functions.COMMIT, prepared.call.keys, prepared.call.args)
    [res], acks = await transport.send_write(
        board.redis, board.keys_.rev, [call], Durability.of("local", board.settings)
    )
    assert acks is None
    [entry] = await board.commit_result(prepared, res)
    assert entry.version == 1 and (await board.get("k")).value == 5  # type: ignore[union-attr]


async def test_board_batch_after_the_library_went_missing(board: blackboard.Board) -> None:
    await _drop_library(board)
    async with board.batch() as b:
        b.put("a", 1)
        b.put("b", 2)
    assert [e.version for e in b.results] == [1, 1]  # type: ignore[union-attr]


def test_wrap_redis_error_has_one_home() -> None:
    assert client.wrap_redis_error is transport.wrap_redis_error
    err = transport.wrap_redis_error(ResponseError("WRONGTYPE Operation"), "k")
    assert isinstance(err, blackboard.CorruptEntryError) and "k" in str(err)


async def test_call_resends_after_its_connection_was_killed(
    board: blackboard.Board, raw_redis: Any
) -> None:
    await board.put("k", 1)
    # every connection of the board's client is closed by the server
    killed = await raw_redis.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
    assert int(killed) >= 1
    entry = await board.put("k", 2)  # sent again under the connection's retry policy
    assert entry.version == 2 and (await board.get("k")).value == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("protocol", [2, 3])
async def test_read_group_has_redis_pys_shape(
    board: blackboard.Board, redis_server: RedisServer, protocol: int
) -> None:
    client: Any = Redis.from_url(redis_server.url, protocol=protocol)  # RESP2 and RESP3 replies
    try:
        stream = board.keys_.queue("tester")
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
        ids = [await client.xadd(stream, {"f": str(i), "g": "x"}) for i in range(3)]
        got = await transport.read_group(client, "g", "c1", {stream: ">"}, count=2)
        assert got == [(stream.encode(), [(i, {b"f": str(n).encode(), b"g": b"x"}) for n, i in
                                          enumerate(ids[:2])])]  # fmt: skip
        # an entry deleted after delivery comes back as (id, None) from the pending list
        await client.xdel(stream, ids[0])
        pending = await transport.read_group(client, "g", "c1", {stream: "0"}, count=10)
        assert pending == [(stream.encode(), [(ids[0], None), (ids[1], {b"f": b"1", b"g": b"x"})])]
        # the same (non-destructive) read of the pending list through redis-py agrees
        theirs = await client.xreadgroup("g", "c1", {stream: "0"}, count=10)
        if protocol == 3:  # redis-py's RESP3 shape: {stream: [[entries]]}
            theirs = [[name, entries[0]] for name, entries in theirs.items()]
        # redis-py gives {} for a deleted entry, read_group None (nothing to mistake for fields)
        normal = [(name, [(i, f or None) for i, f in entries]) for name, entries in theirs]
        assert normal == pending
        # the rest, then a block that times out: []
        rest = await transport.read_group(client, "g", "c1", {stream: ">"}, 10, 20)
        assert rest == [(stream.encode(), [(ids[2], {b"f": b"2", b"g": b"x"})])]
        assert await transport.read_group(client, "g", "c1", {stream: ">"}, 10, 20) == []
    finally:
        await client.aclose()


async def test_a_cancelled_blocking_read_leaves_no_reply_behind(
    board: blackboard.Board, raw_redis: Any
) -> None:
    stream = board.keys_.queue("tester")
    await raw_redis.xgroup_create(stream, "g", id="$", mkstream=True)
    await board.put("k", 7)
    task = asyncio.create_task(transport.read_group(board.redis, "g", "c", {stream: ">"}, 10, 5000))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await raw_redis.xadd(stream, {"late": "1"})  # the cancelled read would have returned it
    for _ in range(5):  # each call reads its own reply, not the abandoned read's
        got = await board.get("k")
        assert got is not None and got.value == 7


async def test_a_read_whose_connection_dies_is_sent_again(
    board: blackboard.Board, raw_redis: Any
) -> None:
    stream = board.keys_.queue("tester")
    await raw_redis.xgroup_create(stream, "g", id="$", mkstream=True)
    task = asyncio.create_task(transport.read_group(board.redis, "g", "c", {stream: ">"}, 10, 3000))
    await asyncio.sleep(0.2)  # blocked in the server now
    clients = await raw_redis.execute_command("CLIENT", "LIST")
    text = clients.decode() if isinstance(clients, bytes) else str(clients)
    blocked = [line for line in text.splitlines() if "cmd=xreadgroup" in line]
    assert len(blocked) == 1
    await raw_redis.execute_command("CLIENT", "KILL", "ID", blocked[0].split()[0].split("=")[1])
    await asyncio.sleep(0.3)  # reconnected and blocked again
    entry_id = await raw_redis.xadd(stream, {"after": "kill"})
    got = await asyncio.wait_for(task, 5)
    assert got == [(stream.encode(), [(entry_id, {b"after": b"kill"})])]
