"""Contention reference agent: every job bumps one of a few hot counters with a
compare-and-set read-modify-write (used by scenarios/hot-keys.toml, policies/hot-keys.toml).

Flow: a job ``job/<n>`` = {"status": "new"} is granted to role `counter`; the activation
reads ``hot/<n % keys>``, stages its value + 1 expecting the version it read, marks the job
``job/<n>/counted`` and adds 1 to ``stats/counted``; all of it commits together. Many
processes do this at once on the same few keys, so commits conflict and the runtime runs the
handler again on fresh values. No update may be lost and none counted twice: the hot
counters must sum to the number of jobs. Options: see agents/_sim.py, plus `keys` (how many
hot counters, default 4).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import SimulatedAgent

import blackboard


class HotCounter(SimulatedAgent):
    role = "counter"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        n = int(activation.key.split("/")[1])
        hot = f"hot/{n % int(self.options.get('keys', 4))}"
        await board.update(hot, lambda v: (v or 0) + 1)  # CAS: a conflict reruns the handler
        await board.put(f"{activation.key}/counted", {"into": hot, "by": board.writer})
        await board.apply("stats/counted", "add", 1)
