"""Bad input is refused before anything is written: keys, board names, values, sizes."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import blackboard
from blackboard import Apply, Delete, Put
from blackboard.store.keys import MAX_KEY_LENGTH

BAD_KEYS = [
    "",
    "a b",
    "tab\there",
    "line\nbreak",
    "é",
    "star*",
    "what?",
    "[x]",
    "{tag}",
    "back\\slash",
    "quote'",
    "/leading",
    "a//b",
    "x" * (MAX_KEY_LENGTH + 1),
]

KEY_CALLS: dict[str, Callable[[blackboard.Board, str], Awaitable[Any]]] = {
    "put": lambda b, k: b.put(k, 1),
    "get": lambda b, k: b.get(k),
    "delete": lambda b, k: b.delete(k),
    "apply": lambda b, k: b.apply(k, "add", 1),
    "update": lambda b, k: b.update(k, lambda v: 1),
    "history": lambda b, k: b.history(k),
    "transact": lambda b, k: b.transact([Put("fine", 1), Delete(k)]),
}


@pytest.mark.parametrize("call", list(KEY_CALLS))
@pytest.mark.parametrize("key", BAD_KEYS, ids=[repr(k)[:20] for k in BAD_KEYS])
async def test_bad_keys_are_refused(
    board: blackboard.Board, board_state: Any, key: str, call: str
) -> None:
    before = await board_state(board)
    with pytest.raises(blackboard.InvalidKeyError) as info:
        await KEY_CALLS[call](board, key)
    assert isinstance(info.value, ValueError) and info.value.reason
    assert await board_state(board) == before


async def test_longest_key_and_every_allowed_character(board: blackboard.Board) -> None:
    longest = "k" * MAX_KEY_LENGTH
    allowed = "AZaz09_-./:@=+,"
    await board.put(longest, 1)
    await board.put(allowed, 2)
    assert (await board.get(longest)).value == 1  # type: ignore[union-attr]
    assert await board.keys() == sorted([longest, allowed])


@pytest.mark.parametrize("pattern", ["a b", "", "{x}*", "é*"])
async def test_bad_patterns_are_refused(board: blackboard.Board, pattern: str) -> None:
    with pytest.raises(blackboard.InvalidKeyError):
        await board.keys(pattern)
    with pytest.raises(blackboard.InvalidKeyError):
        async for _ in board.watch(pattern, since=0, idle_timeout=0.1):
            pass


@pytest.mark.parametrize("name", ["", "a b", "a/b", "{x}", "é", "x" * 65, "a:b"])
async def test_bad_board_names_are_refused_before_connecting(name: str) -> None:
    with pytest.raises(blackboard.InvalidKeyError):
        # the port is closed: a board name check that connected first would fail otherwise
        async with blackboard.connect("redis://127.0.0.1:1/0", board=name or "\x00"):
            pass
    with pytest.raises(blackboard.InvalidKeyError):
        blackboard.Board(None, name, "w")  # type: ignore[arg-type]


async def test_longest_board_name_works(redis_server: blackboard.RedisServer) -> None:
    async with blackboard.connect(redis_server.url, board="B" * 64) as b:
        assert (await b.put("k", 1)).revision >= 1


@pytest.mark.parametrize("idem", ["", "x" * 201])
async def test_bad_idempotency_keys_are_refused(
    board: blackboard.Board, board_state: Any, idem: str
) -> None:
    before = await board_state(board)
    with pytest.raises(blackboard.InvalidKeyError):
        await board.put("k", 1, idempotency_key=idem)
    assert await board_state(board) == before


UNENCODABLE = [
    object(),
    {1, 2},
    2**64,
    -(2**63) - 1,
    datetime.datetime(2026, 1, 1),
    [1, [2, [object()]]],
    {"k": 1j},
]


@pytest.mark.parametrize("value", UNENCODABLE, ids=[type(v).__name__ for v in UNENCODABLE])
async def test_unencodable_values_are_refused(
    board: blackboard.Board, board_state: Any, value: Any
) -> None:
    before = await board_state(board)
    for write in (
        lambda: board.put("k", value),
        lambda: board.apply("k", "append", value),
        lambda: board.transact([Put("ok", 1), Put("k", value)]),
        lambda: board.update("k", lambda v: value),
    ):
        with pytest.raises(blackboard.InvalidValueError) as info:
            await write()
        assert info.value.key == "k" and "'k'" in str(info.value)
    assert await board_state(board) == before


async def test_oversized_values_are_refused(
    redis_server: blackboard.RedisServer, board_name: str, board_state: Any
) -> None:
    settings = blackboard.Settings(max_value_bytes=100)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        at_limit = "x" * 98  # msgpack: 2 header bytes + 98
        await b.put("fits", at_limit)
        before = await board_state(b)
        over = "x" * 99
        for write in (
            lambda: b.put("k", over),
            lambda: b.apply("k", "append", over),
            lambda: b.transact([Put("ok", 1), Apply("k", "union", [over])]),
        ):
            with pytest.raises(blackboard.InvalidValueError, match="limit of 100") as info:
                await write()
            assert info.value.key == "k"
        assert await board_state(b) == before


async def test_a_reducer_cannot_grow_a_value_past_the_limit(
    redis_server: blackboard.RedisServer, board_name: str
) -> None:
    settings = blackboard.Settings(max_value_bytes=100)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        await b.apply("l", "append", "x" * 40)
        await b.apply("l", "append", "x" * 40)  # 1 + 2 * 42 = 85 bytes
        with pytest.raises(blackboard.InvalidValueError):
            await b.apply("l", "append", "x" * 40)  # would be 127 bytes
        assert len((await b.get("l")).value) == 2  # type: ignore[union-attr]


async def test_bad_expectations_are_refused(board: blackboard.Board) -> None:
    for expect in (0, -1, True, "1", 1.0):
        with pytest.raises(ValueError, match="expect"):
            await board.put("k", 1, expect=expect)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version or at_revision"):
        await board.get("k", version=1, at_revision=1)
    assert await board.revision() == 0
