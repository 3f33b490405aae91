"""Agents of the observability process tests, loaded by path
(``tests/observability/traced_agents.py:Triage``): a triage step and a resolver, each
opening a child span of its own."""

from __future__ import annotations

import logging
from typing import Any

import blackboard
from blackboard import telemetry

log = logging.getLogger("traced_agents")

POLICY = """
name = "traced"
[[rule]]
name = "triage"
on = "ticket/*"
role = "triage"
[[rule]]
name = "resolve"
on = "triaged/*"
role = "resolver"
"""


class Triage(blackboard.Agent):
    role = "triage"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        with telemetry.span("classify", model="rules"):
            category = "billing"
        log.info("classified %s as %s", activation.key, category)
        await board.put(f"triaged/{activation.key[7:]}", {"category": category})


class Resolver(blackboard.Agent):
    """A sync handler: it runs in a thread, in the activation's context."""

    role = "resolver"

    def handle(self, activation: blackboard.Activation, board: Any) -> None:
        with telemetry.span("lookup"):
            board.put(f"resolved/{activation.key[8:]}", {"ok": True})
