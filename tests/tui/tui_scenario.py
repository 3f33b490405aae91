"""A live support scenario in one process for the TUI tests: the policy of
policies/support.toml, a real controller and real agent runtimes running the reference
agents of agents/support.py, so escalations reach the human role the way they do in a
deployment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from tests_paths import AGENTS, POLICY

import blackboard
from blackboard.control.controller import Controller
from blackboard.control.policy_board import apply_policy
from blackboard.runtime.agent import load_agent
from blackboard.runtime.agent_runtime import AgentRuntime

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], wait: float = 15.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy (returned), or fail after `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        got = await probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def support_scenario(
    board: blackboard.Board,
    *,
    agents: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[list[AgentRuntime]]:
    """Apply the support policy, run a controller and the given agents (class name ->
    options; default: Triage and Specialist with low confidence, so that a ticket's answer
    is escalated to the human role) until the block exits."""
    if agents is None:
        agents = {"Triage": {"confidence": 0.5}, "Specialist": {"answer_confidence": 0.5}}
    await apply_policy(board, POLICY.read_text(), str(POLICY))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(Controller(board, name="controller-t").run(stop))]
    runtimes = []
    for name, options in agents.items():
        cls = load_agent(f"{AGENTS}:{name}")
        settings = board.settings.model_copy(update={"shutdown_grace": 0.2})
        rt = AgentRuntime(cls(**options), board, name=f"{cls.role}-t", settings=settings)
        runtimes.append(rt)
        tasks.append(asyncio.create_task(rt.run(stop)))
    try:
        yield runtimes
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


def ticket(subject: str = "refund for my order", tier: str = "basic") -> dict[str, str]:
    return {"subject": subject, "tier": tier, "status": "new"}
