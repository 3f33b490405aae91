"""Agents for the process tests, loaded by path (``tests/control/process_agents.py:Slow``)."""

from __future__ import annotations

import asyncio
from typing import Any

import blackboard


class Slow(blackboard.Agent):
    """Works `delay` seconds, then counts its effect and writes a result, in one commit."""

    role = "slow"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await asyncio.sleep(float(self.options.get("delay", 0)))
        await board.apply("stats/effects", "add", 1)
        await board.put(f"result/{activation.key.split('/', 1)[1]}", {"by": board.writer})


class Flaky(blackboard.Agent):
    """Fails its first `fail_first` activations, then succeeds."""

    role = "flaky"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.runs = 0

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        self.runs += 1
        if self.runs <= int(self.options.get("fail_first", 0)):
            raise RuntimeError(f"failure {self.runs}")
        await board.put(f"result/{activation.key.split('/', 1)[1]}", {"run": self.runs})
