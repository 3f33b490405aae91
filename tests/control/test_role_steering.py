"""Operators steer roles (issue 15) on a real server: pause, drain and resume a role, open
and reset its breaker by hand; the controller applies each command from the board's command
stream, keeps the state on the board (so a new leader carries on), and answers on the
record of the role."""

from __future__ import annotations

import asyncio
from typing import Any

from runners import eventually, running

import blackboard
from blackboard.control import steering
from blackboard.control.decisions import explain

POLICY = """
name = "steer"
[roles.worker]
breaker_failures = 100

[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Gated(blackboard.Agent):
    """Starts every activation at once, finishes it when `gate` is open: writes done/<n>."""

    role = "worker"
    concurrency = 16

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started: list[str] = []

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        self.started.append(activation.key)
        await self.gate.wait()
        await board.put(f"done/{activation.key[4:]}", {"by": activation.id})


async def ask(
    board: blackboard.Board, command: str, role: str = "worker", **kw: Any
) -> tuple[bool, str]:
    """Send a role command as human:ops; (applied, what the controller answered)."""
    cmd_id = await steering.request_role(board, command, role, "human:ops", **kw)
    found = await steering.wait_outcome(board, steering.role_key(role), cmd_id, 10)
    assert found is not None, f"no answer to {command} {role}"
    said, result = found["reasons"]
    assert said.startswith(f"{command} {role} by human:ops")
    return not result.startswith("refused"), result


async def done(board: blackboard.Board, n: int) -> bool:
    return len(await board.keys("done/*")) >= n


async def _true(value: bool) -> bool:
    return value


async def test_pause_holds_new_work_while_running_work_finishes_then_resume(
    board: blackboard.Board,
) -> None:
    agent = Gated()
    async with running(board, POLICY, [agent]):
        for n in (1, 2):
            await board.put(f"job/{n}", {"n": n})
        await eventually(lambda: _true(len(agent.started) == 2), 10, "two running")
        ok, said = await ask(board, "pause", reason="deploy")
        assert ok and said.startswith("paused (was running)")
        for n in (3, 4):
            await board.put(f"job/{n}", {"n": n})

        async def held() -> bool:
            return any(
                d["decision"] == "waiting"
                and "waiting: paused by human:ops: deploy" in d["reasons"][-1]
                for d in await explain(board, "job/3")
            )

        await eventually(held, 10, "job/3 waiting, paused")
        agent.gate.set()  # what runs finishes
        await eventually(lambda: done(board, 2), 10, "the running two")
        await asyncio.sleep(0.5)
        assert sorted(agent.started) == ["job/1", "job/2"]  # nothing new started
        roles = await steering.roles(board)
        assert roles["worker"]["mode"] == "paused" and roles["worker"]["by"] == "human:ops"
        assert await ask(board, "pause") == (True, "already paused by human:ops")
        ok, said = await ask(board, "resume", reason="deployed")
        assert ok and said == "resumed (was paused)"
        await eventually(lambda: done(board, 4), 10, "all four")
    assert sorted(agent.started) == ["job/1", "job/2", "job/3", "job/4"]  # each once
    granted = [d for d in await explain(board, "job/3") if d["decision"] == "granted"]
    assert any("paused by human:ops" in r for r in granted[0]["reasons"])
    record = await board.get("sys/roles/worker")
    assert record is not None and record.writer == "human:ops"
    assert record.value["mode"] == "running" and record.value["reason"] == "deployed"
    history = await board.history("sys/roles/worker")
    assert [e.value["mode"] for e in history] == ["running", "paused"]  # newest first


async def test_drain_reports_drained_when_nothing_is_in_flight(board: blackboard.Board) -> None:
    agent = Gated()
    async with running(board, POLICY, [agent]):
        await board.put("job/1", {"n": 1})
        await eventually(lambda: _true(len(agent.started) == 1), 10, "one running")
        ok, said = await ask(board, "drain", reason="before deploy")
        assert ok and said.startswith("draining (was running)")
        roles = await steering.roles(board)
        assert roles["worker"]["mode"] == "draining" and not roles["worker"]["drained"]
        agent.gate.set()

        async def drained() -> bool:
            return bool((await steering.roles(board))["worker"]["drained"])

        await eventually(drained, 10, "drained")
        decisions = await explain(board, "sys/roles/worker")
        assert decisions[0]["decision"] == "drained"
        assert decisions[0]["reasons"] == ["drained: nothing in flight"]
        record = await board.get("sys/roles/worker")
        assert record is not None and record.value["drained"] is True
        assert await ask(board, "drain") == (True, "already draining by human:ops")
        ok, said = await ask(board, "resume")
        assert ok


async def test_a_stale_expectation_and_an_unknown_role_are_refused(
    board: blackboard.Board,
) -> None:
    async with running(board, POLICY, [Gated()]):
        ok, said = await ask(board, "pause", expect=0)
        assert ok
        ok, said = await ask(board, "resume", expect=0)  # the view showed version 0
        assert not ok and "conflict: worker is at steering version 1" in said
        assert "paused by human:ops" in said
        assert (await steering.roles(board))["worker"]["mode"] == "paused"
        ok, said = await ask(board, "pause", role="nobody")
        assert not ok and "no role 'nobody' in the policy" in said
        ok, said = await ask(board, "resume", expect=1)
        assert ok


async def test_steering_survives_a_controller_failover(board: blackboard.Board) -> None:
    agent = Gated()
    agent.gate.set()
    async with running(board, POLICY, [agent]):
        await board.put("job/1", {"n": 1})
        await eventually(lambda: done(board, 1), 10, "job 1")
        assert (await ask(board, "pause", reason="incident"))[0]
        assert (await ask(board, "breaker-open", reason="API down"))[0]
    # the leader is gone; a new one reads the steering from the board
    async with running(board, None, [agent]):
        await board.put("job/2", {"n": 2})

        async def held() -> list[str]:
            return [
                d["reasons"][-1]
                for d in await explain(board, "job/2")
                if d["decision"] == "waiting"
            ]

        [why] = await eventually(held, 10, "job/2 waiting")
        assert why == "waiting: paused by human:ops: incident"
        roles = await steering.roles(board)
        assert roles["worker"]["breaker"] == "open"
        assert roles["worker"]["breaker_held"] == "opened by human:ops: API down"
        ok, said = await ask(board, "resume")
        assert ok
        await asyncio.sleep(1.5)
        assert not await board.get("done/2")  # the breaker, open by hand, still holds it
        ok, said = await ask(board, "breaker-reset", reason="API back")
        assert ok and said == "breaker closed (was held open)"
        await eventually(lambda: done(board, 2), 10, "job 2")
    assert agent.started == ["job/1", "job/2"]


async def test_a_breaker_opened_by_hand_stays_open_until_reset(board: blackboard.Board) -> None:
    agent = Gated()
    agent.gate.set()
    policy = POLICY.replace(
        "breaker_failures = 100", "breaker_failures = 1\nbreaker_cooldown = 0.1"
    )
    async with running(board, policy, [agent]):
        ok, said = await ask(board, "breaker-open", reason="vendor outage")
        assert ok and said == "breaker open until reset by hand"
        await board.put("job/1", {"n": 1})

        async def held() -> list[str]:
            return [
                d["reasons"][-1]
                for d in await explain(board, "job/1")
                if d["decision"] == "waiting"
            ]

        [why] = await eventually(held, 10, "job/1 waiting")
        assert why == "waiting: breaker opened by human:ops: vendor outage"
        await asyncio.sleep(0.5)  # far past the cool-down: no half-open trial
        assert agent.started == []
        ok, said = await ask(board, "breaker-open")
        assert said == "breaker already opened by human:ops: vendor outage"
        ok, said = await ask(board, "breaker-reset")
        assert ok
        await eventually(lambda: done(board, 1), 10, "job 1")
        ok, said = await ask(board, "breaker-reset")
        assert said == "breaker already closed"
