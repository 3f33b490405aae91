"""Hierarchical reference agents: team boards report upwards to a parent board (used by
scenarios/teams.toml with policies/teams-team.toml and policies/teams-hq.toml).

On each team board a `worker` does a task (``task/<n>`` -> ``task/<n>/result``, the task
marked done) and a `bridge` posts a summary of the result to the parent board:
``report/<team>/<n>`` plus ``rollup/<team>`` += 1, one transaction on the parent board whose
idempotency key is derived from the bridge's activation id. Boards are never written
atomically together, so the bridge writes upwards first and then commits
``task/<n>/reported`` on its own board: if it dies in between, the activation is redone and
the upward write, retried with the same idempotency key, applies once. On the parent board a
`director` accepts each report into ``ledger/<team>/<n>``.
Options: see agents/_sim.py, plus for Bridge `parent` (the parent board's name) and `team`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import SimulatedAgent

import blackboard


class Worker(SimulatedAgent):
    role = "worker"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        rng = await self.work(activation)
        task = activation.value or {}
        points = rng.randint(1, 5)
        await board.put(f"{activation.key}/result", {"title": task.get("title"), "points": points})
        await board.update(activation.key, lambda t: {**(t or {}), "status": "done"})


class Bridge(SimulatedAgent):
    """Posts each team result upwards to the parent board."""

    role = "bridge"
    concurrency = 8

    async def setup(self, board: Any) -> None:
        parent = str(self.options.get("parent", "hq"))
        self.team = str(self.options.get("team", board.name))
        # the same connection, another board: a cross-board write is its own commit
        self.parent = blackboard.Board(board.redis, parent, board.writer, board.settings)

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        n = activation.key.split("/")[1]
        result = activation.value or {}
        await self.parent.transact(
            [
                blackboard.Put(f"report/{self.team}/{n}", {"team": self.team, **result}),
                blackboard.Apply(f"rollup/{self.team}", "add", 1),
            ],
            idempotency_key=f"{activation.id}:up",
        )
        await board.put(f"task/{n}/reported", {"parent": self.parent.name})


class Director(SimulatedAgent):
    """On the parent board: accepts every team report into the ledger."""

    role = "director"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        _, team, n = activation.key.split("/")
        report = activation.value or {}
        await board.put(f"ledger/{team}/{n}", {"accepted": True, "points": report.get("points")})
        await board.apply("stats/accepted", "add", 1)
