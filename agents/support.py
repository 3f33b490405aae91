"""Customer support reference agents: triage -> specialist -> resolver, with escalation.

Flow (see policies/support.toml): a ticket ``ticket/<id>`` = {subject, tier, status: "new"}
is triaged into ``ticket/<id>/triage`` = {category, confidence}; a specialist answers into
``ticket/<id>/answer``; a resolver closes it in ``ticket/<id>/resolution`` and marks the
ticket resolved. A triage below the policy's confidence threshold (0.8) is escalated to a
specialist, who re-triages; a specialist's answer below it goes to a human. VIP tickets are
triaged first. `Human` simulates the person answering escalations (the TUI is the real one).
Options: see agents/_sim.py, plus `confidence` (force triage confidence) and
`answer_confidence` (force the specialist's).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sim import SimulatedAgent

import blackboard

CATEGORIES = {
    "refund": "billing",
    "invoice": "billing",
    "charge": "billing",
    "password": "account",
    "login": "account",
    "crash": "technical",
    "error": "technical",
}


def ticket_of(key: str) -> str:
    """``ticket/<id>`` for any key under it."""
    return "/".join(key.split("/")[:2])


class Triage(SimulatedAgent):
    role = "triage"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        rng = await self.work(activation)
        ticket = activation.value or {}
        subject = str(ticket.get("subject", "")).lower()
        category = next((c for word, c in CATEGORIES.items() if word in subject), "general")
        confidence = float(self.options.get("confidence", round(rng.uniform(0.55, 1.0), 3)))
        await board.put(
            f"{activation.key}/triage",
            {"category": category, "confidence": confidence, "tier": ticket.get("tier")},
        )
        await board.apply("stats/triaged", "add", 1)


class Specialist(SimulatedAgent):
    role = "specialist"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        rng = await self.work(activation)
        base = ticket_of(activation.key)
        triage = activation.value or {}
        if activation.escalated_from:
            # a low-confidence triage came up to us: triage it again, with our expertise
            await board.put(
                f"{base}/triage",
                {**triage, "confidence": 0.95, "retriaged_by": self.role},
            )
            return
        confidence = float(self.options.get("answer_confidence", round(rng.uniform(0.7, 1.0), 3)))
        answer = f"{triage.get('category', 'general')} answer #{rng.randrange(1000)}"
        await board.put(f"{base}/answer", {"answer": answer, "confidence": confidence})


class Resolver(SimulatedAgent):
    role = "resolver"
    concurrency = 8

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        base = ticket_of(activation.key)
        answer = activation.value or {}
        await board.put(f"{base}/resolution", {"status": "resolved", "by": "resolver", **answer})
        await board.update(base, lambda t: {**(t or {}), "status": "resolved"})
        await board.apply("stats/resolved", "add", 1)


class Human(SimulatedAgent):
    """Simulates the person who answers escalations (role `human`)."""

    role = "human"
    concurrency = 4

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await self.work(activation)
        base = ticket_of(activation.key)
        await board.put(
            f"{base}/resolution",
            {"status": "resolved", "by": "human", "escalated_from": activation.escalated_from},
        )
        await board.update(base, lambda t: {**(t or {}), "status": "resolved"})
        await board.apply("stats/escalated", "add", 1)
