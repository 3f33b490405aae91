"""apply(): reducers that run inside the server (add, max, min, append, union)."""

from __future__ import annotations

import uuid
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blackboard
from blackboard import Apply


async def test_add(board: blackboard.Board) -> None:
    e = await board.apply("n", "add", 5)
    assert (e.version, e.value, e.kind) == (1, 5, "apply")
    assert (await board.apply("n", "add", -7)).value == -2
    assert (await board.apply("n", "add", 0.5)).value == -1.5
    got = await board.get("n")
    assert got is not None and (got.version, got.value, got.kind) == (3, -1.5, "apply")


async def test_max_and_min(board: blackboard.Board) -> None:
    assert (await board.apply("hi", "max", 3)).value == 3
    assert (await board.apply("hi", "max", 7)).value == 7
    assert (await board.apply("hi", "max", 5)).value == 7
    assert (await board.apply("lo", "min", 3)).value == 3
    assert (await board.apply("lo", "min", -1.5)).value == -1.5
    assert (await board.apply("lo", "min", 0)).value == -1.5
    assert [e.value for e in await board.history("hi")] == [7, 7, 3]
    # the kept value keeps its type: max(2.0, 1) is the float 2.0
    await board.put("f", 2.0)
    kept = await board.apply("f", "max", 1)
    assert kept.value == 2.0 and isinstance(kept.value, float)
    assert isinstance((await board.get("f")).value, float)  # type: ignore[union-attr]


async def test_append(board: blackboard.Board) -> None:
    assert (await board.apply("l", "append", "a")).value == ["a"]
    assert (await board.apply("l", "append", {"x": [1]})).value == ["a", {"x": [1]}]
    assert (await board.apply("l", "append", None)).value == ["a", {"x": [1]}, None]
    assert (await board.apply("l", "append", [])).value == ["a", {"x": [1]}, None, []]
    assert (await board.get("l")).value == ["a", {"x": [1]}, None, []]  # type: ignore[union-attr]


async def test_union(board: blackboard.Board) -> None:
    assert (await board.apply("s", "union", [1, 1, 2])).value == [1, 2]
    assert (await board.apply("s", "union", [2, 3, "x"])).value == [1, 2, 3, "x"]
    assert (await board.apply("s", "union", [])).value == [1, 2, 3, "x"]
    assert (await board.get("s")).value == [1, 2, 3, "x"]  # type: ignore[union-attr]


async def test_reducers_start_from_nothing_on_deleted_or_none(board: blackboard.Board) -> None:
    await board.put("n", 41)
    await board.delete("n")
    assert (await board.apply("n", "add", 1)).value == 1
    await board.put("l", None)
    assert (await board.apply("l", "append", 1)).value == [1]
    await board.put("u", None)
    assert (await board.apply("u", "union", [1])).value == [1]


async def test_a_long_list_crosses_the_header_sizes(board: blackboard.Board) -> None:
    await board.put("l", list(range(14)))
    for i in range(14, 18):  # 15 and 16 items: fixarray -> array16
        await board.apply("l", "append", i)
    await board.put("big", list(range(65_534)))
    await board.apply("big", "append", "x")
    last = await board.apply("big", "append", "y")  # 65536 items: array16 -> array32
    assert (await board.get("l")).value == list(range(18))  # type: ignore[union-attr]
    assert last.value == [*range(65_534), "x", "y"]
    assert (await board.get("big")).value == last.value  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("stored", "op", "arg"),
    [
        ("text", "add", 1),
        (1, "add", "x"),
        ([1], "add", 1),
        ({"a": 1}, "add", 1),
        ([1], "max", 1),
        (1, "min", "x"),
        ("text", "min", 1),
        (1, "append", 2),
        ("text", "append", 2),
        ({"a": 1}, "append", 2),
        ({}, "append", 2),
        ([1], "union", 2),
        ({"a": 1}, "union", [1]),
        ([[1]], "union", [1]),
        ([1], "union", [[2]]),
        ([1], "union", [{"a": 1}]),
        (b"bytes", "max", 1),
        (1, "add", b"bytes"),
        (2**60, "add", 1),
        (1, "add", 2**60),
        (2**53, "add", 1),
        (2**64 - 1, "max", 1),
        (-(2**63), "min", 1),
    ],
)
async def test_wrong_types_are_refused_and_write_nothing(
    board: blackboard.Board, board_state: Any, stored: Any, op: Any, arg: Any
) -> None:
    await board.put("k", stored)
    before = await board_state(board)
    with pytest.raises(blackboard.InvalidValueError) as info:
        await board.apply("k", op, arg)
    assert info.value.key == "k" and "'k'" in str(info.value)
    assert await board_state(board) == before
    assert (await board.get("k")).value == stored  # type: ignore[union-attr]


async def test_unknown_reducer(board: blackboard.Board, board_state: Any) -> None:
    before = await board_state(board)
    with pytest.raises(blackboard.InvalidValueError, match="unknown reducer") as info:
        await board.apply("k", "multiply", 2)  # type: ignore[arg-type]
    assert info.value.key == "k"
    with pytest.raises(blackboard.InvalidValueError):
        await board.transact([Apply("k", "concat", [1])])  # type: ignore[arg-type]
    assert await board_state(board) == before


async def test_add_keeps_floats_floats(board: blackboard.Board) -> None:
    assert (await board.apply("f", "add", 1.5)).value == 1.5
    three = await board.apply("f", "add", 1.5)
    assert three.value == 3.0 and isinstance(three.value, float)
    assert isinstance((await board.get("f")).value, float)  # type: ignore[union-attr]
    assert (await board.apply("i", "add", 2**53 - 1)).value == 2**53 - 1
    with pytest.raises(blackboard.InvalidValueError, match="2\\*\\*53"):
        await board.apply("i", "add", 1)  # a Lua number would round it


numbers = st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.none() | numbers,
    steps=st.lists(st.tuples(st.sampled_from(["add", "max", "min"]), numbers), max_size=5),
)
async def test_number_reducers_match_python(
    redis_server: blackboard.RedisServer, start: float | None, steps: list[tuple[Any, float]]
) -> None:
    async with blackboard.connect(redis_server.url, board="t" + uuid.uuid4().hex[:10]) as b:
        if start is not None:
            await b.put("n", start)
        expected = start
        for op, arg in steps:
            if op == "add":
                expected = (0 if expected is None else expected) + arg
            elif op == "max":
                expected = arg if expected is None or arg > expected else expected
            else:
                expected = arg if expected is None or arg < expected else expected
            e = await b.apply("n", op, arg)
            assert msgpack.packb(e.value) == msgpack.packb(expected)
        got = await b.get("n")
        assert msgpack.packb(None if got is None else got.value) == msgpack.packb(expected)


# -- every list item survives a reducer exactly as the client encoded it ----------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.binary(max_size=5)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.none() | st.lists(values, max_size=6),
    items=st.lists(values, min_size=1, max_size=4),
)
async def test_append_keeps_every_item_exactly(
    redis_server: blackboard.RedisServer, start: list[Any] | None, items: list[Any]
) -> None:
    async with blackboard.connect(redis_server.url, board="t" + uuid.uuid4().hex[:10]) as b:
        expected = list(start or [])
        if start is not None:
            await b.put("l", start)
        for item in items:
            expected.append(item)
            assert (await b.apply("l", "append", item)).value == expected
        got = await b.get("l")
        assert got is not None and got.value == expected
        assert msgpack.packb([*(start or []), *items]) == msgpack.packb(got.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.none() | st.lists(scalars, max_size=6),
    args=st.lists(st.lists(scalars, max_size=5), min_size=1, max_size=3),
)
async def test_union_adds_each_new_item_once(
    redis_server: blackboard.RedisServer, start: list[Any] | None, args: list[list[Any]]
) -> None:
    async with blackboard.connect(redis_server.url, board="t" + uuid.uuid4().hex[:10]) as b:
        if start is not None:
            await b.put("s", start)
        expected = list(start or [])
        seen = {msgpack.packb(x) for x in expected}  # items compare by their encoding
        for arg in args:
            for x in arg:
                if msgpack.packb(x) not in seen:
                    seen.add(msgpack.packb(x))
                    expected.append(x)
            e = await b.apply("s", "union", arg)
            assert msgpack.packb(e.value) == msgpack.packb(expected)
        got = await b.get("s")
        assert got is not None and msgpack.packb(got.value) == msgpack.packb(expected)
