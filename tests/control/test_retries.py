"""Retries and dead letters (issue 11) on a real server: a failed run is a new attempt of the
same activation, scheduled on the board under the role's retry policy; after the last one,
or on `blackboard.Fail`, the activation is parked as a dead letter that an operator can run
again or cancel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runners import eventually, running

import blackboard
from blackboard.control import steering
from blackboard.control.decisions import explain
from blackboard.control.policy_board import apply_policy

POLICY = """
name = "r"
[roles.worker]
breaker_failures = 100
[roles.worker.retry]
attempts = 3
base = 0.02
cap = 0.05

[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Flaky(blackboard.Agent):
    """Fails the first `fail` runs of every activation with `error`, then writes done/<n>."""

    role = "worker"

    def __init__(self, fail: int = 2, error: type[Exception] | None = None) -> None:
        self.fail = fail
        self.error = error
        self.runs: list[tuple[str, int, str]] = []  # (activation id, attempt, idempotency key)

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        self.runs.append((activation.id, activation.attempt, activation.idempotency_key))
        if activation.attempt <= self.fail:
            if self.error is blackboard.Fail:
                raise blackboard.Fail("bad input")
            if self.error is blackboard.Retry:
                raise blackboard.Retry("busy", after=0.3)
            raise RuntimeError(f"API returned 503 on attempt {activation.attempt}")
        await board.put(f"done/{activation.key[4:]}", {"attempt": activation.attempt})


async def _done(board: blackboard.Board, n: int = 1) -> bool:
    return len(await board.keys("done/*")) >= n


async def test_a_transient_failure_runs_again_as_the_next_attempt(board: blackboard.Board) -> None:
    agent = Flaky(fail=2)
    async with running(board, POLICY, [agent]):
        await board.put("job/1", {"n": 1})
        await eventually(lambda: _done(board), 15, "the third attempt")
    done = await board.get("done/1")
    assert done is not None and done.value == {"attempt": 3}
    assert [a for _, a, _ in agent.runs] == [1, 2, 3]
    assert len({(i, k) for i, _, k in agent.runs}) == 1  # one activation, one idempotency key
    assert done.causation is not None and done.causation.activation == agent.runs[0][0]
    decisions = await explain(board, "job/1")
    retrying = [d for d in decisions if d["decision"] == "retrying"]
    assert len(retrying) == 2 and "attempt 1 of 3 failed (error)" in retrying[-1]["reasons"][0]
    assert "503" in retrying[-1]["reasons"][0]
    rec = await steering.activation(board, agent.runs[0][0])
    assert rec is not None and rec["state"] == "done" and rec["attempt"] == 3


async def test_fail_parks_a_dead_letter_at_once_and_an_operator_runs_it_again(
    board: blackboard.Board,
) -> None:
    agent = Flaky(fail=1, error=blackboard.Fail)
    async with running(board, POLICY, [agent]):
        await board.put("job/1", {"n": 1})

        async def parked() -> list[dict[str, Any]]:
            return await steering.dead_letters(board, "worker")

        [letter] = await eventually(parked, 10, "a dead letter")
        assert letter["attempt"] == 1 and "Fail: bad input" in letter["error"]
        assert "failed for good (fail)" in letter["error"]
        await asyncio.sleep(0.3)
        assert len(agent.runs) == 1  # never retried by itself
        await steering.request(board, "retry", letter["id"], "human:ops", "fixed the input")
        await eventually(lambda: _done(board), 10, "the retried dead letter")
    assert [a for _, a, _ in agent.runs] == [1, 2]
    assert await steering.dead_letters(board) == []
    operator = [d for d in await explain(board, "job/1") if d["decision"] == "operator"]
    assert operator and "retry by human:ops: fixed the input" in operator[0]["reasons"][0]


async def test_attempts_run_out_then_cancel(board: blackboard.Board) -> None:
    agent = Flaky(fail=99)
    async with running(board, POLICY, [agent]):
        await board.put("job/1", {"n": 1})
        [letter] = await eventually(lambda: steering.dead_letters(board), 10, "a dead letter")
        assert "failed after 3 of 3 attempts" in letter["error"]
        assert [a for _, a, _ in agent.runs] == [1, 2, 3]
        await steering.request(board, "cancel", letter["id"], "human:ops", "not worth it")

        async def cancelled() -> bool:
            rec = await steering.activation(board, letter["id"])
            return rec is not None and rec["state"] == "cancelled"

        await eventually(cancelled, 10, "the cancel")
    assert await steering.dead_letters(board) == []
    assert len(agent.runs) == 3


async def test_retry_after_is_respected_and_survives_controller_failover(
    board: blackboard.Board,
) -> None:
    await apply_policy(board, POLICY, "r.toml")
    agent = Flaky(fail=1, error=blackboard.Retry)
    stop = asyncio.Event()
    runtime = blackboard.AgentRuntime(agent, board, name="w1")
    agent_task = asyncio.create_task(runtime.run(stop))
    first = blackboard.Controller(board, name="ctl-1")
    first_stop = asyncio.Event()
    first_task = asyncio.create_task(first.run(first_stop))
    tasks = [agent_task]
    try:
        await board.put("job/1", {"n": 1})

        async def scheduled() -> Any:
            return await board.redis.zrange(board.keys_.retry_schedule, 0, -1, withscores=True)

        [(act_id, due_ms)] = await eventually(scheduled, 10, "the retry on the board")
        failed_at = time.time()
        # the leader dies before the retry is due; the schedule lives on the board
        first_stop.set()
        await first_task
        second = blackboard.Controller(board, name="ctl-2")
        tasks.append(asyncio.create_task(second.run(stop)))
        await eventually(lambda: _done(board), 15, "the retry run by the new leader")
        assert due_ms / 1000 - failed_at >= 0.2  # Retry(after=0.3), less the time to see it
        assert [a for _, a, _ in agent.runs] == [1, 2]
        assert agent.runs[0][0] == act_id.decode()
    finally:
        stop.set()
        first_stop.set()
        await asyncio.gather(first_task, *tasks)


async def test_a_retry_outlives_the_agent_that_failed(board: blackboard.Board) -> None:
    # the agent that failed attempt 1 dies (its task is cancelled: no clean shutdown); the
    # retry is on the board, and another agent of the role runs attempt 2 later
    await apply_policy(board, POLICY, "r.toml")
    first_agent = Flaky(fail=1)
    stop = asyncio.Event()
    controller = asyncio.create_task(blackboard.Controller(board, name="ctl").run(stop))
    crashed = asyncio.create_task(blackboard.AgentRuntime(first_agent, board, name="w1").run(stop))
    tasks = [controller]
    try:
        await board.put("job/1", {"n": 1})
        await eventually(lambda: _ran(first_agent, 1), 10, "attempt 1")
        crashed.cancel()
        await asyncio.gather(crashed, return_exceptions=True)
        second_agent = Flaky(fail=0)
        tasks.append(
            asyncio.create_task(blackboard.AgentRuntime(second_agent, board, name="w2").run(stop))
        )
        await eventually(lambda: _done(board), 15, "attempt 2 by another agent")
        assert [a for _, a, _ in second_agent.runs] == [2]
        assert second_agent.runs[0][0] == first_agent.runs[0][0]
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _ran(agent: Flaky, n: int) -> bool:
    return len(agent.runs) >= n


class Echo(blackboard.Agent):
    """Fails its first run with Fail; later runs record the value they were handed."""

    role = "worker"

    def __init__(self) -> None:
        self.values: list[Any] = []

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        if activation.attempt == 1:
            raise blackboard.Fail("bad input")
        self.values.append(activation.value)
        await board.put(f"done/{activation.key[4:]}", {"attempt": activation.attempt})


async def test_a_dead_letter_whose_queue_entry_was_trimmed_runs_with_its_granted_value(
    board: blackboard.Board,
) -> None:
    agent = Echo()
    async with running(board, POLICY, [agent]):
        await board.put("job/1", {"n": 1})
        await board.put("job/1", {"n": 2})  # the activation of version 1 is for {"n": 1}
        letters = await eventually(lambda: _at_least_letters(board, 2), 10, "two dead letters")
        first = next(r for r in letters if r["version"] == 1)
        # the queue no longer holds the entry: the next run is rebuilt from the record,
        # and the agent reads the granted version's value itself
        await board.redis.xtrim(board.keys_.queue("worker"), maxlen=0)
        await steering.request(board, "retry", first["id"], "human:ops")
        await eventually(lambda: _done(board), 10, "the retried dead letter")
    assert agent.values == [{"n": 1}]


async def _at_least_letters(board: blackboard.Board, n: int) -> list[dict[str, Any]]:
    letters = await steering.dead_letters(board)
    return letters if len(letters) >= n else []
