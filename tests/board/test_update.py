"""update(): read-modify-write with conflict retries, a bound, and an injected sleep."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

import blackboard
from blackboard.board.client import backoff_delay


async def test_sync_and_async_functions(board: blackboard.Board) -> None:
    e = await board.update("n", lambda v: (v or 0) + 1)
    assert (e.version, e.value, e.kind) == (1, 1, "put")

    async def double(v: int) -> int:
        await asyncio.sleep(0)
        return v * 2

    e = await board.update("n", double)
    assert (e.version, e.value) == (2, 2)
    got = await board.get("n")
    assert got is not None and (got.version, got.value) == (2, 2)


async def test_absent_and_deleted_keys_give_none(board: blackboard.Board) -> None:
    seen: list[Any] = []
    e = await board.update("k", lambda v: seen.append(v) or "new")
    await board.delete("k")
    e = await board.update("k", lambda v: seen.append(v) or "again")
    assert seen == [None, None]
    assert (e.version, e.value) == (3, "again")
    assert await board.keys() == ["k"]


async def test_a_conflict_is_retried_on_the_new_value(board: blackboard.Board) -> None:
    other = board.bind(writer="other")
    await board.put("k", 1)
    calls: list[int] = []

    async def fn(v: int) -> int:
        calls.append(v)
        if len(calls) == 1:
            await other.put("k", 100)  # lands between our read and our write
        return v + 1

    e = await board.update("k", fn)
    assert calls == [1, 100]
    assert (e.version, e.value, e.writer) == (3, 101, board.writer)
    assert [h.value for h in await board.history("k")] == [101, 100, 1]


async def test_a_conflict_with_a_delete_is_retried(board: blackboard.Board) -> None:
    other = board.bind(writer="other")
    await board.put("k", 1)
    calls: list[Any] = []

    async def fn(v: Any) -> int:
        calls.append(v)
        if len(calls) == 1:
            await other.delete("k")
        return 7

    e = await board.update("k", fn)
    assert calls == [1, None] and (e.version, e.value) == (3, 7)


async def test_retry_exhausted_after_one_attempt(board: blackboard.Board, board_state: Any) -> None:
    other = board.bind(writer="other")

    async def always_conflicts(v: Any) -> int:
        await other.put("k", (v or 0) + 100)
        return 0

    with pytest.raises(blackboard.RetryExhaustedError) as info:
        await board.update("k", always_conflicts, attempts=1)
    err = info.value
    assert isinstance(err, blackboard.ConflictError)
    assert (err.key, err.attempts, err.actual) == ("k", 1, 1)
    assert "1" in str(err) and "'k'" in str(err)
    assert [e.writer for e in await board.history("k")] == ["other"]


async def test_backoff_sleeps_through_the_injected_sleep(board: blackboard.Board) -> None:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    settings = blackboard.Settings(backoff_base=0.5, backoff_cap=30.0)
    me = blackboard.Board(
        board.redis, board.name, "me", settings, sleep=fake_sleep, rng=random.Random(7)
    )
    other = board.bind(writer="other")
    calls = 0

    async def always_conflicts(v: Any) -> int:
        nonlocal calls
        calls += 1
        await other.put("k", calls)
        return -1

    started = time.monotonic()
    with pytest.raises(blackboard.RetryExhaustedError) as info:
        await me.update("k", always_conflicts, attempts=6)
    assert time.monotonic() - started < 5  # the backoff never really slept
    assert info.value.attempts == 6 and calls == 6
    assert 1 <= len(delays) < 6
    assert all(0 <= d <= 30.0 for d in delays)
    assert [e.writer for e in await board.history("k")] == ["other"] * 6


async def test_bound_views_share_schemas_and_write_as_their_writer(
    board: blackboard.Board,
) -> None:
    view = board.bind(writer="agent-7")
    e = await view.update("k", lambda v: 1)
    assert e.writer == "agent-7"
    assert (await board.get("k")).writer == "agent-7"  # type: ignore[union-attr]


def test_backoff_delay_is_bounded_full_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(0, 80):
        for _ in range(20):
            d = backoff_delay(attempt, 0.001, 0.05, rng)
            assert 0 <= d <= min(0.05, 0.001 * 2**attempt)


async def test_views_share_one_idempotency_key_generator_and_keep_their_own_settings(
    board: blackboard.Board,
) -> None:
    a = board.bind(writer="a")
    b = board.bind(writer="b", causation=blackboard.Causation("act-1"))
    keys = [v.auto_idempotency_key() for v in (board, a, b, a, board)]
    assert len(set(keys)) == 5  # no view can replay another's generated key
    # writes through each view land as its own writer; the parent is untouched
    await a.put("x", 1)
    await b.put("x", 2)
    await board.put("x", 3)
    assert [e.writer for e in await board.history("x")] == ["tester", "b", "a"]
    assert (board.writer, board.causation, a.causation) == ("tester", None, None)
    assert b.causation == blackboard.Causation("act-1")
