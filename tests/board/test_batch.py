"""Batch: independent commits sent in one round trip, each succeeding or failing alone."""

from __future__ import annotations

from typing import Any

import pytest

import blackboard
from blackboard import ABSENT, Put


async def test_results_per_commit_and_a_conflict_stops_nothing(board: blackboard.Board) -> None:
    await board.put("text", "t")
    async with board.batch() as b:
        b.put("a", 1, expect=ABSENT)
        b.put("a", 2, expect=ABSENT)  # conflicts with the commit queued before it
        b.apply("n", "add", 2)
        b.delete("missing")
        b.transact([Put("x", 1), Put("y", 2)])
        b.apply("text", "add", 1)  # wrong type
        b.put("a", 3, expect=1)
    r = b.results
    assert len(r) == 7
    assert isinstance(r[0], blackboard.Entry) and (r[0].version, r[0].revision) == (1, 2)
    assert isinstance(r[1], blackboard.ConflictError) and r[1].actual == 1
    assert isinstance(r[2], blackboard.Entry) and r[2].value == 2
    assert isinstance(r[3], blackboard.ConflictError) and r[3].key == "missing"
    assert isinstance(r[4], list) and [e.key for e in r[4]] == ["x", "y"]
    assert {e.revision for e in r[4]} == {4}
    assert isinstance(r[5], blackboard.InvalidValueError) and r[5].key == "text"
    assert isinstance(r[6], blackboard.Entry) and (r[6].version, r[6].value) == (2, 3)
    assert await board.revision() == 5
    assert (await board.get("a")).value == 3  # type: ignore[union-attr]
    assert await board.keys() == ["a", "n", "text", "x", "y"]


async def test_batch_replays_an_idempotency_key(board: blackboard.Board) -> None:
    async with board.batch() as b:
        b.put("k", 1, idempotency_key="once")
        b.put("k", 1, idempotency_key="once")
        b.put("k", 2, idempotency_key="once")
    first, again, other = b.results
    assert isinstance(first, blackboard.Entry) and isinstance(again, blackboard.Entry)
    assert (again.version, again.revision) == (first.version, first.revision)
    assert isinstance(other, blackboard.IdempotencyKeyReusedError)
    assert await board.revision() == 1


async def test_bad_input_is_refused_while_queueing(board: blackboard.Board) -> None:
    b = board.batch()
    with pytest.raises(blackboard.InvalidKeyError):
        b.put("bad key", 1)
    with pytest.raises(blackboard.InvalidValueError):
        b.put("k", object())
    assert await b.execute() == []
    assert await board.revision() == 0


async def test_an_exception_in_the_block_sends_nothing(board: blackboard.Board) -> None:
    with pytest.raises(RuntimeError):
        async with board.batch() as b:
            b.put("k", 1)
            raise RuntimeError("changed my mind")
    assert await board.revision() == 0


async def test_execute_twice_keeps_earlier_results(
    board: blackboard.Board, board_state: Any
) -> None:
    b = board.batch()
    b.put("k", 1)
    await b.execute()
    b.put("k", 2)
    results = await b.execute()
    assert [r.value for r in results] == [1, 2]  # type: ignore[union-attr]
    before = await board_state(board)
    assert len(await b.execute()) == 2  # nothing queued: nothing sent
    assert await board_state(board) == before
