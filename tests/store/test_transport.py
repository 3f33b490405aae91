"""store/transport.py: the one send path, and its one "library missing → load → resend" retry
(single calls, pipelined calls mixed with plain commands, and writes at a durability level)."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

import blackboard
from blackboard.board import client
from blackboard.store import functions, transport
from blackboard.store.durability import Durability


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
