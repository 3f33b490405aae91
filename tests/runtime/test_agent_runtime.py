"""The agent runtime through the public harness: claim-fenced commits, deadlines, sync
handlers, conflicts, poison activations, release on stop (real server, no controller)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import blackboard
from blackboard.board.ops import Apply, Fence, Put
from blackboard.control.activation import GROUP, RELEASED


class Counter(blackboard.Agent):
    """Adds one to stats/n and writes a result, both in the activation's one commit."""

    role = "counter"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.gate: asyncio.Event | None = options.get("gate")
        self.started = asyncio.Event()
        self.runs = 0

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        self.runs += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        await board.apply("stats/n", "add", 1)
        await board.put(f"out/{activation.key}", {"seen": activation.value})


async def test_harness_runs_an_activation_and_commits_once(board: blackboard.Board) -> None:
    await board.put("in/1", {"x": 1})
    async with blackboard.AgentHarness(Counter(), board) as h:
        outcome = await h.activate("in/1")
    assert outcome.status == "ok" and outcome.error is None
    assert [e.key for e in outcome.written] == ["stats/n", "out/in/1"]
    out = await board.get("out/in/1")
    assert out is not None and out.value == {"seen": {"x": 1}}
    assert out.causation is not None and out.causation.activation == outcome.activation.id
    assert out.writer == "harness"
    # the commit's idempotency key is the activation id: the same commit again (as a
    # takeover after a crash would send it) applies nothing; another request is refused
    act = outcome.activation
    view = h.runtime.board.bind(causation=blackboard.Causation(act.id, act.depth))
    ops = [Apply("stats/n", "add", 1), Put("out/in/1", {"seen": {"x": 1}})]
    again = await view.transact(ops, act.id)
    assert [e.version for e in again] == [e.version for e in outcome.written]
    assert (await board.get("stats/n")).value == 1  # type: ignore[union-attr]
    with pytest.raises(blackboard.IdempotencyKeyReusedError):
        await view.transact([Put("out/in/1", "other")], act.id)


async def test_a_stale_claims_write_is_rejected(board: blackboard.Board) -> None:
    await board.put("in/1", 1)
    gate = asyncio.Event()
    agent = Counter(gate=gate)
    async with blackboard.AgentHarness(agent, board, name="slow") as h:
        run = asyncio.create_task(h.activate("in/1"))
        await asyncio.wait_for(agent.started.wait(), 5)
        queue = board.keys_.queue("counter")
        pending: Any = await board.redis.xpending_range(queue, GROUP, "-", "+", 1)
        entry_id = pending[0]["message_id"]
        # another agent takes the claim over (as XAUTOCLAIM does after the lease)
        await board.redis.xclaim(queue, GROUP, "rescuer", 0, [entry_id], justid=True)
        gate.set()
        outcome = await run
    assert outcome.status == "lost" and "taken over by rescuer" in (outcome.error or "")
    assert await board.get("out/in/1") is None and await board.get("stats/n") is None
    # the same through the public API: a write fenced by a claim that is not ours
    stale = board.bind(fence=Fence("claim", queue, entry_id.decode(), "slow", GROUP))
    with pytest.raises(blackboard.LeaseLostError, match="taken over by rescuer"):
        await stale.put("out/in/1", "late")
    assert await board.get("out/in/1") is None


class Slow(blackboard.Agent):
    role = "slow"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.put("before", 1)
        await asyncio.sleep(30)


class SyncLate(blackboard.Agent):
    role = "synclate"

    def handle(self, activation: blackboard.Activation, board: Any) -> None:
        import time

        time.sleep(0.3)
        try:
            board.put("after-deadline", 1)
        except blackboard.ActivationClosedError:
            board.closed_seen = True  # type: ignore[attr-defined]


async def test_deadline_fails_the_activation_and_drops_its_writes(
    board: blackboard.Board,
) -> None:
    async with blackboard.AgentHarness(Slow(), board) as h:
        outcome = await h.activate("k", value=None, deadline=0.1)
    assert outcome.status == "failed" and "DeadlineExceededError" in (outcome.error or "")
    assert await board.get("before") is None
    async with blackboard.AgentHarness(SyncLate(), board) as h:
        outcome = await h.activate("k", value=None, deadline=0.05)
        assert outcome.status == "failed"
        await asyncio.sleep(0.5)  # let the abandoned thread reach its late write
    assert await board.get("after-deadline") is None


class SyncReader(blackboard.Agent):
    role = "syncreader"

    def handle(self, activation: blackboard.Activation, board: Any) -> None:
        current = board.get(activation.key)
        board.put(activation.key + "/copy", current.value * 2)
        board.update("total", lambda v: (v or 0) + current.value)


async def test_sync_handlers_run_in_a_thread_with_a_blocking_board(
    board: blackboard.Board,
) -> None:
    await board.put("n", 21)
    async with blackboard.AgentHarness(SyncReader(), board) as h:
        outcome = await h.activate("n")
    assert outcome.status == "ok", outcome.error
    assert (await board.get("n/copy")).value == 42  # type: ignore[union-attr]
    assert (await board.get("total")).value == 21  # type: ignore[union-attr]


class Incrementer(blackboard.Agent):
    role = "inc"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.runs = 0
        self.board: blackboard.Board = options["board"]

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        self.runs += 1
        await board.update("count", lambda v: (v or 0) + 1)
        if self.runs == 1:  # someone else writes in between: our commit must conflict
            await self.board.put("count", 100)


async def test_a_conflicting_commit_runs_the_handler_again(board: blackboard.Board) -> None:
    await board.put("count", 1)
    agent = Incrementer(board=board)
    async with blackboard.AgentHarness(agent, board) as h:
        outcome = await h.activate("count")
    assert outcome.status == "ok" and agent.runs == 2
    assert (await board.get("count")).value == 101  # type: ignore[union-attr]


async def _grant(board: blackboard.Board, role: str, key: str, value: Any) -> str:
    """Queue an activation as the controller would; returns its queue entry id."""
    from blackboard.control.activation import Activation, activation_id, grant_fields
    from blackboard.runtime.agent_runtime import ensure_group
    from blackboard.store.codec import encode_value

    act = Activation(activation_id(role, key, 1), role, key, 1)
    fields, _ = grant_fields(act, encode_value(key, value, 1 << 20), [])
    queue = board.keys_.queue(role)
    await ensure_group(board.redis, queue, GROUP)
    entry_id = await board.redis.xadd(queue, dict(zip(fields[::2], fields[1::2], strict=True)))
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def test_a_poison_activation_fails_without_running(board: blackboard.Board) -> None:
    settings = board.settings.model_copy(update={"max_deliveries": 2, "claim_lease": 0.05})
    entry_id = await _grant(board, "counter", "in/p", 1)
    queue = board.keys_.queue("counter")
    await board.redis.xreadgroup(GROUP, "ghost", {queue: ">"}, count=1)
    # delivered (and crashed on) five times already
    await board.redis.xclaim(queue, GROUP, "ghost", 0, [entry_id], retrycount=5)
    await asyncio.sleep(0.06)  # older than the claim lease: another agent may take it
    agent = Counter()
    runtime = blackboard.AgentRuntime(agent, board, name="p", settings=settings)
    await runtime.run(asyncio.Event(), idle_exit=0.3)
    assert agent.runs == 0 and runtime.stats["failed"] == 1
    [(_, report)] = await board.redis.xrange(board.keys_.outcomes)
    assert report[b"o"] == b"failed" and b"gave up after" in report[b"e"]
    assert not await board.redis.xpending_range(queue, GROUP, "-", "+", 5)


async def test_stop_releases_in_flight_work_for_another_agent(board: blackboard.Board) -> None:
    settings = board.settings.model_copy(update={"shutdown_grace": 0.1, "claim_lease": 30})
    await board.put("in/2", 2)
    await _grant(board, "counter", "in/2", 2)
    queue = board.keys_.queue("counter")
    first = Counter(gate=asyncio.Event())
    stop = asyncio.Event()
    runtime = blackboard.AgentRuntime(first, board, name="leaving", settings=settings)
    task = asyncio.create_task(runtime.run(stop))
    await asyncio.wait_for(first.started.wait(), 5)
    stop.set()
    await task
    assert runtime.stats["released"] == 1
    pending: Any = await board.redis.xpending_range(queue, GROUP, "-", "+", 5)
    assert [p["consumer"] for p in pending] == [RELEASED.encode()]
    assert await board.redis.hget(board.keys_.agents, "leaving") is None  # deregistered
    # another agent takes the released claim at once, without waiting for the 30 s lease
    second = blackboard.AgentRuntime(Counter(), board, name="next", settings=settings)
    await second.run(asyncio.Event(), idle_exit=0.3)
    assert (await board.get("out/in/2")) is not None
    assert (await board.get("stats/n")).value == 1  # type: ignore[union-attr]
    assert not await board.redis.xpending_range(queue, GROUP, "-", "+", 5)


async def test_an_expired_claim_is_refused_before_anyone_takes_it_over(
    board: blackboard.Board,
) -> None:
    # the harness does not renew claims: a handler slower than the claim lease loses it
    settings = board.settings.model_copy(update={"claim_lease": 0.2})
    gate = asyncio.Event()
    agent = Counter(gate=gate)
    await board.put("in/1", 1)
    async with blackboard.AgentHarness(agent, board, settings=settings) as h:
        run = asyncio.create_task(h.activate("in/1"))
        await asyncio.wait_for(agent.started.wait(), 5)
        await asyncio.sleep(0.3)
        gate.set()
        outcome = await run
    assert outcome.status == "lost" and "expired" in (outcome.error or "")
    assert await board.get("out/in/1") is None
    queue = board.keys_.queue("counter")
    [pending] = await board.redis.xpending_range(queue, GROUP, "-", "+", 5)
    assert pending["consumer"] == b"harness"  # still pending: another agent will take it over
    entry_id = pending["message_id"].decode()
    stale = board.bind(fence=Fence("lease", queue, f"{entry_id}@100", "harness", GROUP))
    with pytest.raises(blackboard.LeaseLostError, match="expired"):
        await stale.put("out/in/1", "late")
