"""Deterministic simulated work for the reference agents: seeded latency and failures.

Every draw is seeded by (seed, activation id), so the same activation gives the same result
in whichever process runs it, and a takeover after a crash redoes exactly the same work.

Two kinds of failure, as real agents meet them (docs/agents.md):

- transient (`failure_rate`): `blackboard.Retry`, which the controller runs again as the next
  attempt under the role's retry policy. The draw takes (activation, attempt), so each attempt
  fails independently and a retry may succeed; a takeover of the same attempt draws the same.
- permanent (`permanent_failure_rate`): `blackboard.Fail`, parked as a dead letter at once.
  The draw takes the activation only: bad input stays bad, so an operator's retry of the dead
  letter fails again.

Options (``blackboard agent run ... -o KEY=VALUE``):
  seed                    int, default 0
  latency                 mean seconds of simulated work (exponential), default 0
  failure_rate            chance an attempt fails transiently (Retry), default 0
  permanent_failure_rate  chance an activation fails for good (Fail), default 0
  fail_first              this process fails its first N runs with an ordinary exception
                          (retried like any error; to trip a breaker), default 0
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
        self.permanent_failure_rate = float(options.get("permanent_failure_rate", 0.0))
        self.fail_first = int(options.get("fail_first", 0))
        self.handled = 0

    def rng(self, activation: blackboard.Activation) -> random.Random:
        return random.Random(f"{self.seed}:{activation.id}")

    def fails_for_good(self, activation: blackboard.Activation) -> bool:
        """Whether this activation fails permanently (the same answer on every attempt)."""
        draw = random.Random(f"{self.seed}:{activation.id}:permanent").random()
        return draw < self.permanent_failure_rate

    def fails_this_attempt(self, activation: blackboard.Activation) -> bool:
        """Whether this attempt of the activation fails transiently."""
        draw = random.Random(f"{self.seed}:{activation.id}:{activation.attempt}:fail").random()
        return draw < self.failure_rate

    async def work(self, activation: blackboard.Activation) -> random.Random:
        """Simulate the work. Raises blackboard.Fail (permanent), blackboard.Retry (transient)
        or RuntimeError (`fail_first`) for a simulated failure."""
        self.handled += 1
        rng = self.rng(activation)
        if self.latency > 0:
            await asyncio.sleep(rng.expovariate(1 / self.latency))
        if self.handled <= self.fail_first:
            raise RuntimeError(f"simulated failure {self.handled} of {self.fail_first}")
        if self.fails_for_good(activation):
            raise blackboard.Fail("simulated failure (permanent)")
        if self.fails_this_attempt(activation):
            raise blackboard.Retry(f"simulated failure (transient, attempt {activation.attempt})")
        return rng
