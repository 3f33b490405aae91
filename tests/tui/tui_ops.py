"""An operator's scene for the TUI tests: a small policy with one role, an agent whose
activations end in each state an operator acts on, and the scene itself (a dead letter, a
scheduled retry, one running, one waiting on a paused role)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tui_scenario import eventually

import blackboard
from blackboard.control import steering
from blackboard.control.policy_board import apply_policy

POLICY = """
name = "ops"
[roles.worker.retry]
attempts = 3
base = 0.05

[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Picky(blackboard.Agent):
    """job/1 fails for good on its first attempt, job/2 asks for a retry in a minute, job/3
    runs until `gate` opens; the rest (and the later attempts) write done/<n>."""

    role = "worker"
    concurrency = 8

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.runs: list[tuple[str, int]] = []

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        n = activation.key.split("/")[1]
        self.runs.append((n, activation.attempt))
        if n == "1" and activation.attempt == 1:
            raise blackboard.Fail("bad input")
        if n == "2" and activation.attempt == 1:
            raise blackboard.Retry("busy", after=60)
        if n == "3":
            await self.gate.wait()
        await board.put(f"done/{n}", {"attempt": activation.attempt})


@asynccontextmanager
async def ops_system(board: blackboard.Board, agent: Picky) -> AsyncIterator[None]:
    await apply_policy(board, POLICY, "ops.toml")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(blackboard.Controller(board, name="ctl-ops").run(stop)),
        asyncio.create_task(blackboard.AgentRuntime(agent, board, name="worker-1").run(stop)),
    ]
    try:
        yield
    finally:
        agent.gate.set()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def ops_scene(board: blackboard.Board) -> None:
    """job/1 a dead letter, job/2 retrying in a minute, job/3 running, and role worker paused
    by human:bob with job/4 waiting."""
    for n in (1, 2, 3):
        await board.put(f"job/{n}", {"n": n})
    await eventually(lambda: steering.dead_letters(board), what="the dead letter")
    await eventually(lambda: steering.retrying(board), what="the scheduled retry")
    cmd = await steering.request_role(board, "pause", "worker", "human:bob", "hold on")
    assert await steering.wait_outcome(board, "sys/roles/worker", cmd, 10)
    await board.put("job/4", {"n": 4})
