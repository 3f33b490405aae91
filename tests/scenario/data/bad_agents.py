"""Agents that break the rules on purpose, to prove the scenario checker notices."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "agents"))

from support import Resolver  # agents/support.py

import blackboard


class DoubleResolver(Resolver):
    """Resolves like the reference resolver, then counts the resolution a second time with a
    direct write that bypasses the runtime's activation commit."""

    async def setup(self, board: Any) -> None:
        self.direct = board  # the process's own board, not the activation's staged view

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await super().handle(activation, board)
        await self.direct.apply("stats/resolved", "add", 1)
