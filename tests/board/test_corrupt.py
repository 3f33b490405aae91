"""Data at an entry's Redis key that is not a blackboard entry: CorruptEntryError naming the
key, never a decoder traceback, and nothing written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import pytest
from redis.exceptions import RedisError

import blackboard
from blackboard import ABSENT


async def _foreign_string(b: blackboard.Board) -> None:
    await b.redis.set(b.keys_.entry("k"), "not an entry")


async def _foreign_list(b: blackboard.Board) -> None:
    await b.redis.rpush(b.keys_.entry("k"), "a", "b")


async def _foreign_hash(b: blackboard.Board) -> None:
    await b.redis.hset(b.keys_.entry("k"), mapping={"owner": "someone else"})


async def _garbage_record(b: blackboard.Board) -> None:
    await b.redis.hset(b.keys_.entry("k"), mapping={"v": 1, "r": 1, "lo": 1, "x": 0, "1": "junk"})


async def _garbage_meta(b: blackboard.Board) -> None:
    record = b"1|1700000000000|p|3|\xc1\xc1\xc1" + msgpack.packb(5)
    await b.redis.hset(b.keys_.entry("k"), mapping={"v": 1, "r": 1, "lo": 1, "x": 0, "1": record})


async def _garbage_value(b: blackboard.Board) -> None:
    await b.put("k", "hello")
    record: bytes = await b.redis.hget(b.keys_.entry("k"), "1")
    good = msgpack.packb("hello")
    assert record.endswith(good)
    await b.redis.hset(b.keys_.entry("k"), "1", record[: -len(good)] + b"\xc1\xc1")


SETUPS: dict[str, Callable[[blackboard.Board], Awaitable[None]]] = {
    "foreign-string": _foreign_string,
    "foreign-list": _foreign_list,
    "foreign-hash": _foreign_hash,
    "garbage-record": _garbage_record,
    "garbage-meta": _garbage_meta,
    "garbage-value": _garbage_value,
}
FOREIGN = {"foreign-string", "foreign-list", "foreign-hash"}


def _assert_clean(err: blackboard.CorruptEntryError) -> None:
    assert err.key == "k" and "'k'" in str(err)
    # no msgpack/codec exception chained for a traceback; a wrapped Redis error is fine
    assert err.__cause__ is None or isinstance(err.__cause__, RedisError)
    ctx = err.__context__
    assert err.__suppress_context__ or ctx is None or isinstance(ctx, RedisError)


CALLS: dict[str, Callable[[blackboard.Board], Awaitable[Any]]] = {
    "get": lambda b: b.get("k"),
    "get-version": lambda b: b.get("k", version=1),
    "get-at-revision": lambda b: b.get("k", at_revision=5),
    "history": lambda b: b.history("k"),
    "put-absent": lambda b: b.put("k", 1, expect=ABSENT),
    "apply": lambda b: b.apply("k", "add", 1),
    "apply-union": lambda b: b.apply("k", "union", [1]),
    "update": lambda b: b.update("k", lambda v: 1),
}


# reducers read only the value of a record, so a record whose metadata alone is garbage is
# found by reads; a write replaces it with a good version
CASES = [
    (setup, call)
    for setup in SETUPS
    for call in CALLS
    if not (setup == "garbage-meta" and call.startswith("apply"))
]


@pytest.mark.parametrize(("setup", "call"), CASES)
async def test_corrupt_entry_is_reported_by_key(
    board: blackboard.Board, board_state: Any, setup: str, call: str
) -> None:
    await SETUPS[setup](board)
    before = await board_state(board)
    with pytest.raises(blackboard.CorruptEntryError) as info:
        await CALLS[call](board)
    _assert_clean(info.value)
    assert await board_state(board) == before


@pytest.mark.parametrize("setup", sorted(FOREIGN))
async def test_blind_writes_do_not_overwrite_foreign_data(
    board: blackboard.Board, board_state: Any, setup: str
) -> None:
    await SETUPS[setup](board)
    before = await board_state(board)
    for write in (lambda: board.put("k", 1), lambda: board.delete("k")):
        with pytest.raises(blackboard.CorruptEntryError) as info:
            await write()
        _assert_clean(info.value)
    async with board.batch() as batch:
        batch.put("k", 2)
        batch.put("other", 3)
    assert isinstance(batch.results[0], blackboard.CorruptEntryError)
    assert isinstance(batch.results[1], blackboard.Entry)
    after = await board_state(board)
    assert after[board.keys_.entry("k").encode()] == before[board.keys_.entry("k").encode()]


async def test_unbacked_log_event_is_dropped_and_counted(board: blackboard.Board) -> None:
    # junk in the log that no entry record backs (written by hand, or forged by a role user)
    await board.redis.xadd(board.keys_.log, {"junk": "1"}, id="1-1")
    await board.redis.set(board.keys_.rev, 1)
    assert [c async for c in board.watch(since=0, idle_timeout=0.2)] == []
    assert board.forged_events == 1
    e = await board.put("k", 1)  # the board goes on after it
    assert e.revision == 2
    assert [c.revision async for c in board.watch(since=0, idle_timeout=0.2)] == [2]


async def test_corrupt_value_in_the_log_names_the_key(board: blackboard.Board) -> None:
    # a backed event (the entry record of version 1 says revision 1) whose value is not msgpack
    fields = {"t": 1, "w": "x", "a": "", "n": 1, "k1": "k", "v1": 1, "o1": "p", "d1": b"\xc1"}
    await board.redis.hset(
        board.keys_.entry("k"),
        mapping={"v": 1, "r": 1, "lo": 1, "x": 0, "1": b"1|1|p|0|\xc1"},
    )
    await board.redis.xadd(board.keys_.log, fields, id="1-1")  # type: ignore[arg-type]
    await board.redis.set(board.keys_.rev, 1)
    with pytest.raises(blackboard.CorruptEntryError) as info:
        async for _ in board.watch(since=0, idle_timeout=0.2):
            pass
    _assert_clean(info.value)
