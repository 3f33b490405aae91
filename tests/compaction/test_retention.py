"""Retention on a real server: log and history windows, consumer groups, fake clock."""

from __future__ import annotations

import time
from typing import Any

import pytest

import blackboard
from blackboard.board.ops import Fence
from blackboard.board.retention import HistorySweep, Retention, trim_log
from blackboard.compaction.compactor import Compactor
from blackboard.errors import HistoryTrimmedError

OFF: dict[str, Any] = {
    "log_max_events": None,
    "log_max_age": None,
    "history_max_age": None,
    "activation_max_age": None,
}


async def log_revisions(board: blackboard.Board) -> list[int]:
    return [int(i.split(b"-")[0]) for i, _ in await board.redis.xrange(board.keys_.log)]


async def test_log_count_window_never_passes_a_consumer_group(board: blackboard.Board) -> None:
    for i in range(20):
        await board.put(f"k{i % 3}", i)
    log = board.keys_.log
    await board.redis.xgroup_create(log, "controller", id="0")
    await board.redis.xreadgroup("controller", "c1", {log: ">"}, count=8)  # 1..8 delivered
    await board.redis.xack(log, "controller", "1-1", "2-1", "3-1")  # 4..8 still pending
    now = int(time.time() * 1000)
    res = await trim_log(board, Retention(**{**OFF, "log_max_events": 5}), now)
    assert (res.removed, res.oldest, res.held_by) == (3, 4, "controller")
    assert await log_revisions(board) == list(range(4, 21))
    await board.redis.xack(log, "controller", *[f"{i}-1" for i in range(4, 9)])
    res = await trim_log(board, Retention(**{**OFF, "log_max_events": 5}), now)
    assert (res.oldest, res.held_by) == (9, "controller")  # 9.. not delivered yet
    await board.redis.xreadgroup("controller", "c1", {log: ">"})
    await board.redis.xack(log, "controller", *[f"{i}-1" for i in range(9, 21)])
    res = await trim_log(board, Retention(**{**OFF, "log_max_events": 5}), now)
    assert (res.oldest, res.held_by) == (16, "")
    assert await log_revisions(board) == list(range(16, 21))


async def test_log_age_window_with_a_fake_clock_and_batches(board: blackboard.Board) -> None:
    for i in range(30):
        await board.put("k", i)
    now = int(time.time() * 1000)
    keep_all = await trim_log(board, Retention(**{**OFF, "log_max_age": 3600}), now)
    assert keep_all.removed == 0
    later = now + 7200 * 1000  # two hours on: everything is older than the hour kept
    res = await trim_log(board, Retention(**{**OFF, "log_max_age": 3600, "batch": 7}), later)
    assert res.removed == 30 and await log_revisions(board) == []
    # the revision counter goes on, so watchers see the gap as trimming, never a skip
    with pytest.raises(HistoryTrimmedError):
        async for _ in board.watch(since=3, idle_timeout=0.05):
            pass
    e = await board.put("k", "after")
    assert e.revision == 31 and await log_revisions(board) == [31]


async def test_trim_is_fenced(board: blackboard.Board) -> None:
    await board.put("k", 1)
    lease = board.keys_.compactor_lease
    await board.redis.set(lease, "1:someone")
    with pytest.raises(blackboard.LeaseLostError):
        await trim_log(
            board, Retention(**{**OFF, "log_max_events": 1}), 0, Fence("eq", lease, "2:me")
        )


async def test_history_window_by_count_and_age(board: blackboard.Board) -> None:
    for i in range(10):
        await board.put("a", i)
    for i in range(3):
        await board.put("b", i)
    await board.delete("b")
    now = int(time.time() * 1000)
    sweep = HistorySweep(board, Retention(**{**OFF, "history_max_versions": 4}))
    res = await sweep.step(now)
    assert res.removed == 6 + 0 and res.sweep_done
    assert [e.version for e in await board.history("a")] == [10, 9, 8, 7]
    with pytest.raises(HistoryTrimmedError):
        await board.get("a", version=6)
    with pytest.raises(HistoryTrimmedError):
        await board.get("a", at_revision=2)
    assert (await board.get("a", version=7)).value == 6  # type: ignore[union-attr]
    aged = HistorySweep(board, Retention(**{**OFF, "history_max_age": 60}))
    res = await aged.step(now + 3600 * 1000)
    assert res.removed == 3 + 3  # a: 7..9; b: 1..3, its tombstone stays
    assert [e.version for e in await board.history("a")] == [10]
    hb = await board.history("b")
    assert [(e.version, e.deleted) for e in hb] == [(4, True)]
    assert (await board.put("b", "again")).version == 5  # versions never restart


async def test_compactor_runs_retention_and_the_activation_hook(board: blackboard.Board) -> None:
    for i in range(12):
        await board.put("k", i)
    calls: list[int] = []

    async def sweep(b: blackboard.Board, cutoff_ms: int, fence: Fence | None) -> int:
        assert fence is not None and fence.redis_key == b.keys_.compactor_lease
        calls.append(cutoff_ms)
        return 2 if len(calls) == 1 else 0

    lines: list[str] = []
    clock = [1_000_000.0]
    c = Compactor(
        board,
        rules=(),
        retention=Retention(log_max_events=5, log_max_age=None, history_max_versions=3),
        report=lines.append,
        clock=lambda: clock[0],
        activation_sweeper=sweep,
    )
    stats = await c.run(until_idle=True)
    assert (stats.log_trimmed, stats.history_trimmed, stats.activations_cleared) == (7, 9, 2)
    assert calls[0] == int((1_000_000.0 - 3600) * 1000)
    assert any(line.startswith("log: trimmed 7 events") for line in lines)
    # not due again until `every` seconds pass on the injected clock
    await board.put("k", "x")
    assert await c.step() is False
    clock[0] += 5.0
    assert await c.step() is True


async def test_finished_activations_and_role_queues_are_cleared_after_the_window(
    board: blackboard.Board,
) -> None:
    from blackboard.compaction.activation_sweep import ActivationSweep

    k, r = board.keys_, board.redis
    old, recent = 1_000, 9_000
    await r.hset(k.activation("a1"), mapping={"s": "done", "t": old})
    await r.hset(k.activation("a2"), mapping={"s": "failed", "t": recent})
    await r.hset(k.activation("a3"), mapping={"s": "granted"})
    await r.hset(k.activation("a4"), mapping={"s": "done", "t": old})
    await r.hset(k.open_activations, mapping={"a3": b"x", "a4": b"x"})
    queue = k.queue("triage")
    for ms in (1000, 2000, 3000, 4000):
        await r.xadd(queue, {"a": "x"}, id=f"{ms}-0")
    await r.xgroup_create(queue, "agents", id="0")
    await r.xreadgroup("agents", "agent-1", {queue: ">"}, count=3)
    await r.xack(queue, "agents", "1000-0", "2000-0")  # 3000-0 is claimed, 4000-0 not read
    unread = k.queue("nobody")
    await r.xadd(unread, {"a": "x"}, id="1000-0")
    sweep = ActivationSweep()
    assert await sweep(board, 5_000, None) == 1
    assert await r.exists(k.activation("a1")) == 0
    for kept in ("a2", "a3", "a4"):
        assert await r.exists(k.activation(kept)) == 1
    assert [i for i, _ in await r.xrange(queue)] == [b"3000-0", b"4000-0"]
    assert await r.xlen(unread) == 1  # no consumer group: nobody read it, nothing goes


async def test_until_idle_sweeps_all_of_the_history_not_one_slice(board: blackboard.Board) -> None:
    for i in range(12):
        await board.put(f"k{i}", 1)
        await board.put(f"k{i}", 2)
    retention = Retention(**{**OFF, "history_max_versions": 1, "scan": 2})
    stats = await Compactor(board, rules=(), retention=retention).run(until_idle=True)
    assert stats.history_trimmed == 12
    for i in range(12):
        assert [e.version for e in await board.history(f"k{i}")] == [2]


async def test_activation_sweeps_are_spaced_out(board: blackboard.Board) -> None:
    from blackboard.compaction.activation_sweep import ActivationSweep

    k, r = board.keys_, board.redis
    sweep = ActivationSweep(every=60)
    assert await sweep(board, 100_000, None) == 0
    await r.hset(k.activation("a1"), mapping={"s": "done", "t": 1})
    assert await sweep(board, 130_000, None) == 0  # 30 s later: not yet
    assert await sweep(board, 160_000, None) == 1
