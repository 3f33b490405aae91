"""An operator's actions from the TUI, written to the board as ``human:<user>`` (edge layer,
no textual; imports the engine: board, steering, errors).

Every action is a board write on the record with actor, time and reason, and none
overwrites what the screen did not show:

- role steering (pause, drain, resume, breaker open / reset) and activation commands (retry,
  cancel) are requests on the board's command stream (`blackboard.control.steering`); the leading
  controller applies them and answers on the record, and `Outcome` carries that answer.
  A role command carries the steering version the screen showed: the controller refuses it
  if another operator steered the role since.
- an ordinary entry is edited or deleted with compare-and-set on the version the screen
  showed: a stale screen gets a `ConflictError` and writes nothing; so is a policy rollback
  (the previous valid policy written again as the new version of ``sys/policy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blackboard.board.client import Board
from blackboard.control import steering
from blackboard.control.policy_board import rollback_policy
from blackboard.store.entry import ABSENT, Entry

__all__ = ["ANSWER_WAIT", "OperatorDesk", "Outcome"]

ANSWER_WAIT = 10.0
"""Seconds to wait for the controller's answer to a command."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The controller's answer: `applied` False when it refused (or did not answer: then
    `answered` is False too); `text` says what happened, as the record does."""

    applied: bool
    answered: bool
    text: str


class OperatorDesk:
    """Actions of one operator (`user`) on one board."""

    def __init__(self, board: Board, user: str, wait: float = ANSWER_WAIT) -> None:
        self.user = user
        self.actor = f"human:{user}"
        self.board = board.bind(writer=self.actor)
        self.wait = wait

    async def steer_role(
        self, command: str, role: str, reason: str = "", expect: int | None = None
    ) -> Outcome:
        """Pause, drain, resume, breaker-open or breaker-reset `role`, expecting its steering
        record at version `expect`."""
        cmd_id = await steering.request_role(self.board, command, role, self.actor, reason, expect)
        return await self._answer(steering.role_key(role), cmd_id, f"{command} {role}")

    async def activation(
        self, command: str, activation_id: str, key: str, reason: str = ""
    ) -> Outcome:
        """Retry or cancel an activation about entry `key` (the dead-letter commands)."""
        cmd_id = await steering.request(self.board, command, activation_id, self.actor, reason)
        return await self._answer(key, cmd_id, f"{command} {activation_id}")

    async def _answer(self, key: str, cmd_id: str, asked: str) -> Outcome:
        found = await steering.wait_outcome(self.board, key, cmd_id, self.wait)
        if found is None:
            return Outcome(
                False, False,
                f"{asked}: no controller answered within {self.wait:g}s; the request stays "
                "queued and is applied when a controller leads",
            )  # fmt: skip
        result = str(found["reasons"][-1])
        return Outcome(not result.startswith("refused"), True, f"{asked}: {result}")

    async def put(self, key: str, value: Any, shown: Entry | None) -> Entry:
        """Write `value` to `key` if it is still at the version the screen showed (`shown`;
        None or a tombstone: absent). Raises ConflictError, ValidationError."""
        expect = ABSENT if shown is None or shown.deleted else shown.version
        return await self.board.put(key, value, expect=expect)

    async def delete(self, key: str, shown: Entry) -> Entry:
        """Delete `key` (a tombstone) if it is still at version `shown`. Raises
        ConflictError."""
        return await self.board.delete(key, expect=shown.version)

    async def rollback_policy(self, shown: int) -> Entry:
        """Put the previous valid policy back in force, if version `shown` is still in force.
        Raises ConflictError, PolicyError (no earlier valid policy)."""
        return await rollback_policy(self.board, expect=shown)
