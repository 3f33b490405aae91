"""Fraud reference agents: detectors propose verdicts, an aggregator acts on consensus.

Flow (see policies/fraud.toml): a transaction ``txn/<id>`` = {amount, country, home,
card_age_days, recent} is examined by three detector roles; each proposes a verdict
("fraud", "ok" or "review") for ``txn/<id>/verdict`` with `board.propose` (one proposal per
detector). The controller grants the aggregator an activation on ``txn/<id>`` only when 2 of
the 3 proposals agree; when all three disagree a human gets it instead. The aggregator
writes ``txn/<id>/decision`` and blocks the card on fraud. Deterministic: each detector's
rule plus seeded noise (option `noise`, the chance a detector flips to "review").
Options: see agents/_sim.py, plus `noise` (default 0.1).
"""

from __future__ import annotations

import abc
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import SimulatedAgent

import blackboard


class _Detector(SimulatedAgent):
    concurrency = 8

    @abc.abstractmethod
    def verdict(self, txn: dict[str, Any]) -> tuple[str, float]:
        """(verdict, confidence) for a transaction; each detector has its own rule."""

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        rng = await self.work(activation)
        txn = activation.value if isinstance(activation.value, dict) else {}
        verdict, confidence = self.verdict(txn)
        if rng.random() < float(self.options.get("noise", 0.1)):
            verdict, confidence = "review", 0.5
        await board.propose(
            f"{activation.key}/verdict",
            {"verdict": verdict, "detector": self.role},
            confidence,
        )


class AmountDetector(_Detector):
    role = "fraud-amount"

    def verdict(self, txn: dict[str, Any]) -> tuple[str, float]:
        amount = float(txn.get("amount", 0))
        if amount >= 5000:
            return "fraud", 0.9
        return ("review", 0.6) if amount >= 1000 else ("ok", 0.9)


class GeoDetector(_Detector):
    role = "fraud-geo"

    def verdict(self, txn: dict[str, Any]) -> tuple[str, float]:
        abroad = txn.get("country") != txn.get("home", txn.get("country"))
        return ("fraud", 0.8) if abroad else ("ok", 0.85)


class VelocityDetector(_Detector):
    role = "fraud-velocity"

    def verdict(self, txn: dict[str, Any]) -> tuple[str, float]:
        recent = int(txn.get("recent", 0))
        new_card = int(txn.get("card_age_days", 365)) < 7
        if recent >= 5 or (new_card and recent >= 2):
            return "fraud", 0.85
        return "ok", 0.8


class Aggregator(SimulatedAgent):
    """Acts on the consensus the controller found (activation.context)."""

    role = "fraud-aggregator"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        verdict = activation.context.get("consensus")
        votes = activation.context.get("votes")
        await board.put(
            f"{activation.key}/decision",
            {"verdict": verdict, "votes": votes, "of": activation.context.get("of")},
        )
        if verdict == "fraud":
            await board.apply("stats/blocked", "add", 1)
        await board.apply("stats/decided", "add", 1)


class Human(SimulatedAgent):
    """Simulates the analyst who decides split verdicts (role `human`)."""

    role = "human"
    concurrency = 4

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        await board.put(f"{activation.key}/decision", {"verdict": "review", "by": "human"})
        await board.apply("stats/escalated", "add", 1)
