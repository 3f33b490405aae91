"""watch(): the change log read in revision order, filtered, resumable, bounded by retention."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import blackboard
from blackboard import Put


def _facts(changes: list[blackboard.Change]) -> list[tuple[Any, ...]]:
    return [(c.revision, c.key, c.version, c.kind, c.value) for c in changes]


async def _collect(
    board: blackboard.Board, n: int, pattern: str = "*", since: int | None = 0
) -> list[blackboard.Change]:
    out: list[blackboard.Change] = []
    async with asyncio.timeout(10):
        async for change in board.watch(pattern, since=since):
            out.append(change)
            if len(out) == n:
                break
    return out


async def _wait_until_blocked_in_xread(board: blackboard.Board) -> None:
    """Until a connection of this server sits in XREAD: the watcher has fixed its start."""
    async with asyncio.timeout(10):
        while True:
            clients: Any = await board.redis.client_list()
            if any(c.get("cmd") == "xread" and "b" in c.get("flags", "") for c in clients):
                return
            await asyncio.sleep(0.01)


async def test_changes_carry_what_was_written(board: blackboard.Board) -> None:
    await board.put("a", {"x": 1})
    await board.apply("n", "add", 2)
    await board.transact([Put("a", [1, 2]), Put("b", None)])
    await board.delete("a")
    changes = await _collect(board, 5)
    assert _facts(changes) == [
        (1, "a", 1, "put", {"x": 1}),
        (2, "n", 1, "apply", 2),
        (3, "a", 2, "put", [1, 2]),
        (3, "b", 1, "put", None),
        (4, "a", 3, "delete", None),
    ]
    assert {c.writer for c in changes} == {"tester"}
    assert changes[-1].deleted and not changes[0].deleted
    assert all(c.time_ms > 0 for c in changes)


async def test_pattern_filters_changes(board: blackboard.Board) -> None:
    await board.transact([Put("ticket/1", 1), Put("user/a", 1), Put("ticket/2", 2)])
    await board.put("user/b", 1)
    await board.put("ticket/10", 3)
    await board.put("tickets", 3)
    changes = await _collect(board, 3, "ticket/*")
    assert [(c.revision, c.key) for c in changes] == [
        (1, "ticket/1"),
        (1, "ticket/2"),
        (3, "ticket/10"),
    ]
    only = [c async for c in board.watch("user/?", since=0, idle_timeout=0.1)]
    assert [c.key for c in only] == ["user/a", "user/b"]


async def test_since_none_sees_only_new_changes(board: blackboard.Board) -> None:
    for i in range(3):
        await board.put("old", i)
    task = asyncio.create_task(_collect(board, 2, since=None))
    await _wait_until_blocked_in_xread(board)
    await board.put("new", 1)
    await board.delete("old")
    changes = await task
    assert _facts(changes) == [(4, "new", 1, "put", 1), (5, "old", 4, "delete", None)]


async def test_since_resumes_after_a_revision(board: blackboard.Board) -> None:
    for i in range(6):
        await board.put(f"k{i % 2}", i)
    changes = await _collect(board, 2, since=4)
    assert [(c.revision, c.key, c.value) for c in changes] == [(5, "k0", 4), (6, "k1", 5)]
    assert [c async for c in board.watch(since=6, idle_timeout=0.1)] == []


async def test_history_trimmed_when_since_is_older_than_the_log(board: blackboard.Board) -> None:
    for i in range(10):
        await board.put("k", i)
    await board.redis.xtrim(board.keys_.log, maxlen=3, approximate=False)
    for since in (0, 3, 6):
        with pytest.raises(blackboard.HistoryTrimmedError) as info:
            await _collect(board, 1, since=since)
        assert (info.value.asked, info.value.oldest) == (since + 1, 8)
    assert [c.revision for c in await _collect(board, 3, since=7)] == [8, 9, 10]


async def test_idle_timeout_stops_a_quiet_watch(board: blackboard.Board) -> None:
    await board.put("k", 1)
    started = time.monotonic()
    seen = [c async for c in board.watch(since=0, idle_timeout=0.3)]
    elapsed = time.monotonic() - started
    assert [c.key for c in seen] == ["k"]
    assert 0.25 <= elapsed < 3


async def test_idle_timeout_restarts_with_each_change(board: blackboard.Board) -> None:
    async def writer() -> None:
        for i in range(4):
            await asyncio.sleep(0.15)
            await board.put("k", i)

    task = asyncio.create_task(writer())
    seen = [c.value async for c in board.watch(since=0, idle_timeout=0.5)]
    await task
    assert seen == [0, 1, 2, 3]
