"""Deterministic simulated work for the reference agents: seeded latency and failures.

Every draw is seeded by (seed, activation id), so the same activation gives the same result
in whichever process runs it, and a takeover after a crash redoes exactly the same work.
Failure draws also take the delivery attempt, so a retried activation may succeed.

Options (``blackboard agent run ... -o KEY=VALUE``):
  seed          int, default 0
  latency       mean seconds of simulated work (exponential), default 0
  failure_rate  chance an activation fails, default 0
  fail_first    this process fails its first N activations (to trip a breaker), default 0
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import blackboard


class SimulatedAgent(blackboard.Agent):
    """Base of the reference agents: `await self.work(activation)` sleeps and may fail."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seed = int(options.get("seed", 0))
        self.latency = float(options.get("latency", 0.0))
        self.failure_rate = float(options.get("failure_rate", 0.0))
        self.fail_first = int(options.get("fail_first", 0))
        self.handled = 0

    def rng(self, activation: blackboard.Activation) -> random.Random:
        return random.Random(f"{self.seed}:{activation.id}")

    async def work(self, activation: blackboard.Activation) -> random.Random:
        """Simulate the work; raises RuntimeError for a simulated failure."""
        self.handled += 1
        rng = self.rng(activation)
        if self.latency > 0:
            await asyncio.sleep(rng.expovariate(1 / self.latency))
        if self.handled <= self.fail_first:
            raise RuntimeError(f"simulated failure {self.handled} of {self.fail_first}")
        fail = random.Random(f"{self.seed}:{activation.id}:{activation.attempt}:fail")
        if fail.random() < self.failure_rate:
            raise RuntimeError("simulated failure")
        return rng
