"""Running controllers and agents as tasks in a test, and polling with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import blackboard
from blackboard.control.policy_board import apply_policy


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within}s (last: {got!r})")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running(
    board: blackboard.Board,
    policy: str | None = None,
    agents: list[blackboard.Agent] = (),  # type: ignore[assignment]
    *,
    controllers: int = 1,
    settings: blackboard.Settings | None = None,
) -> AsyncIterator[list[Any]]:
    """Apply `policy`, run controllers and agent runtimes as tasks; stop them on exit."""
    if policy is not None:
        await apply_policy(board, policy, "test.toml")
    stop = asyncio.Event()
    parts: list[Any] = [
        blackboard.Controller(board, name=f"ctl-{i}", settings=settings) for i in range(controllers)
    ]
    parts += [
        blackboard.AgentRuntime(a, board, name=f"{a.role}-{i}", settings=settings)
        for i, a in enumerate(agents)
    ]
    tasks = [asyncio.create_task(p.run(stop)) for p in parts]
    try:
        yield parts
    finally:
        stop.set()
        await asyncio.gather(*tasks)
