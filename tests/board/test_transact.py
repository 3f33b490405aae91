"""transact(): several operations as one commit with one revision, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

import blackboard
from blackboard import ABSENT, ANY, Apply, Delete, Put


async def test_mixed_operations_share_one_revision(board: blackboard.Board) -> None:
    await board.put("a", 1)
    await board.put("b", "x")
    res = await board.transact(
        [Put("a", 2, expect=1), Delete("b", expect=1), Apply("n", "add", 5), Put("c", [1], ABSENT)]
    )
    assert [(e.key, e.version, e.revision, e.kind, e.value, e.deleted) for e in res] == [
        ("a", 2, 3, "put", 2, False),
        ("b", 2, 3, "delete", None, True),
        ("n", 1, 3, "apply", 5, False),
        ("c", 1, 3, "put", [1], False),
    ]
    assert await board.revision() == 3
    assert await board.keys() == ["a", "c", "n"]
    changes = [c async for c in board.watch(since=2, idle_timeout=0.1)]
    assert [(c.revision, c.key, c.version, c.kind, c.value) for c in changes] == [
        (3, "a", 2, "put", 2),
        (3, "b", 2, "delete", None),
        (3, "n", 1, "apply", 5),
        (3, "c", 1, "put", [1]),
    ]


async def test_same_key_twice_sees_its_own_earlier_operation(board: blackboard.Board) -> None:
    await board.put("k", 10)
    res = await board.transact([Put("k", 20, expect=1), Apply("k", "add", 1)])
    assert [(e.version, e.value) for e in res] == [(2, 20), (3, 21)]
    res = await board.transact([Apply("k", "add", 1), Apply("k", "add", 2)])
    assert [(e.version, e.value) for e in res] == [(4, 22), (5, 24)]
    res = await board.transact([Delete("k", expect=5), Put("k", "back", expect=ABSENT)])
    assert [(e.version, e.deleted) for e in res] == [(6, True), (7, False)]
    assert await board.keys() == ["k"]
    res = await board.transact([Put("k", 1, expect=7), Delete("k", expect=8)])
    assert [(e.version, e.deleted) for e in res] == [(8, False), (9, True)]
    assert await board.keys() == [] and await board.get("k") is None
    # a reducer after a delete in the same commit starts from nothing
    res = await board.transact([Put("j", [9]), Delete("j"), Apply("j", "append", 1)])
    assert [e.version for e in res] == [1, 2, 3] and res[2].value == [1]
    assert (await board.get("j")).value == [1]  # type: ignore[union-attr]
    hist = await board.history("k")
    assert [(e.version, e.kind, e.value) for e in hist] == [
        (9, "delete", None),
        (8, "put", 1),
        (7, "put", "back"),
        (6, "delete", None),
        (5, "apply", 24),
        (4, "apply", 22),
        (3, "apply", 21),
        (2, "put", 20),
        (1, "put", 10),
    ]
    assert {e.revision for e in hist[:2]} == {await board.revision() - 1}


async def test_expectation_against_an_earlier_operation_in_the_commit(
    board: blackboard.Board, board_state: Any
) -> None:
    before = await board_state(board)
    with pytest.raises(blackboard.ConflictError) as info:
        await board.transact([Put("k", 1, expect=ABSENT), Put("k", 2, expect=ABSENT)])
    assert (info.value.key, info.value.expected, info.value.actual) == ("k", "absent", 1)
    assert await board_state(board) == before
    res = await board.transact([Put("k", 1, expect=ABSENT), Put("k", 2, expect=1)])
    assert [e.version for e in res] == [1, 2]


async def test_conflict_error_fields(board: blackboard.Board) -> None:
    await board.put("a", "a1")
    await board.put("b", {"v": 1})
    await board.put("b", {"v": 2})
    await board.put("gone", 1)
    await board.delete("gone")
    with pytest.raises(blackboard.ConflictError) as info:
        await board.transact([Put("a", "a2", expect=1), Put("b", {"v": 3}, expect=ABSENT)])
    err = info.value
    assert (err.key, err.expected, err.actual) == ("b", "absent", 2)
    assert err.current is not None
    assert (err.current.key, err.current.version, err.current.value) == ("b", 2, {"v": 2})
    assert "b" in str(err)

    with pytest.raises(blackboard.ConflictError) as info:
        await board.transact([Put("b", 0, expect=1)])
    assert (info.value.expected, info.value.actual) == (1, 2)

    with pytest.raises(blackboard.ConflictError) as info:
        await board.transact([Delete("nothing")])
    assert (info.value.key, info.value.expected, info.value.actual) == ("nothing", "any", 0)
    assert info.value.current is None

    with pytest.raises(blackboard.ConflictError) as info:
        await board.transact([Delete("gone", expect=ANY)])
    assert (info.value.key, info.value.actual) == ("gone", 2)
    assert info.value.current is not None and info.value.current.deleted
    assert info.value.current.value is None


@pytest.mark.parametrize(
    "last",
    [
        Put("a", "late", expect=1),
        Put("a", "late", expect=ABSENT),
        Put("new", "late", expect=3),
        Delete("new"),
        Delete("b", expect=1),
    ],
    ids=["stale-version", "not-absent", "absent-with-version", "delete-absent", "delete-stale"],
)
async def test_last_op_conflicting_leaves_everything_untouched(
    board: blackboard.Board, board_state: Any, last: Any
) -> None:
    await board.put("a", 1)
    await board.put("a", 2)
    await board.put("b", [1])
    await board.put("b", [1, 2])
    before = await board_state(board)
    ops = [Put("a", 3, expect=2), Delete("b", expect=2), Apply("n", "add", 1), Put("c", 1), last]
    with pytest.raises(blackboard.ConflictError) as info:
        await board.transact(ops, idempotency_key="all-or-nothing")
    assert info.value.key == last.key
    assert await board_state(board) == before
    assert await board.revision() == 4
    # the failed commit left no idempotency record: the key is still free
    fixed = await board.transact(ops[:-1], idempotency_key="all-or-nothing")
    assert {e.revision for e in fixed} == {5}


async def test_badop_in_a_later_operation_writes_nothing(
    board: blackboard.Board, board_state: Any
) -> None:
    await board.put("text", "not a number")
    before = await board_state(board)
    with pytest.raises(blackboard.InvalidValueError) as info:
        await board.transact([Put("a", 1), Apply("n", "add", 1), Apply("text", "add", 1)])
    assert info.value.key == "text"
    assert await board_state(board) == before


async def test_empty_and_oversized_transactions_are_refused(
    redis_server: blackboard.RedisServer, board_name: str
) -> None:
    settings = blackboard.Settings(max_ops=3)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        with pytest.raises(ValueError):
            await b.transact([])
        with pytest.raises(ValueError, match="max_ops"):
            await b.transact([Put(f"k{i}", i) for i in range(4)])
        assert len(await b.transact([Put(f"k{i}", i) for i in range(3)])) == 3
        assert await b.revision() == 1
