"""The agent runtime's heartbeat runs on the injected `sleep` and clock: it beats when the
(fake) time passes, and not before (real server, no controller)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
from fake_clock import FakeClock

import blackboard
from blackboard.runtime.agent_runtime import AgentRuntime

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "control")]  # the test runners
from runners import eventually  # noqa: E402


class Idle(blackboard.Agent):
    role = "idle"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        raise AssertionError("no activation is granted in this test")


async def test_the_heartbeat_beats_when_the_fake_time_passes_not_before(
    board: blackboard.Board,
) -> None:
    clock = FakeClock()
    settings = board.settings.model_copy(update={"agent_heartbeat": 2.0, "claim_lease": 30.0})
    rt = AgentRuntime(
        Idle(), board, name="idle-1", settings=settings,
        clock=clock.monotonic, monotonic=clock.monotonic, sleep=clock.sleep,
    )  # fmt: skip

    async def beat_ms() -> int:
        raw: Any = await board.redis.hget(board.keys_.agents, "idle-1")
        return int(msgpack.unpackb(raw)["beat_ms"]) if raw else 0

    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))
    try:
        await eventually(lambda: _is(beat_ms(), 100_000), what="the first beat")
        await eventually(lambda: _true(clock.sleeping), what="the heartbeat sleeping")
        assert [due for due, _ in clock.sleeping] == [102.0]  # every agent_heartbeat seconds
        clock.advance(1.99)
        started = time.monotonic()
        await asyncio.sleep(0.2)  # real time passes; fake time is short of the beat
        assert await beat_ms() == 100_000 and time.monotonic() - started >= 0.2
        clock.advance(0.02)
        await eventually(lambda: _is(beat_ms(), int(clock.now * 1000)), what="the second beat")
        await eventually(lambda: _true(clock.sleeping), what="the next sleep")
        assert [due for due, _ in clock.sleeping] == [clock.now + 2.0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await board.redis.hget(board.keys_.agents, "idle-1") is None  # deregistered


async def _is(got: Any, want: int) -> bool:
    return bool(await got == want)


async def _true(value: Any) -> bool:
    return bool(value)
