"""A human's decisions on escalations, written to the board as writer ``human:<user>``
(edge layer, no textual; imports the engine: board, ops, activation, runtime, reconcile).

Every decision is a compare-and-set against what the view showed, so a stale view gets a
`ConflictError` (or `EscalationGoneError`) and never overwrites:

- an escalated activation (the controller granted version v of key K to the human role):
  the human takes the activation's claim in the role's queue (XCLAIM when another consumer
  holds it, XREADGROUP up to it when it was never delivered) and commits as the agent runtime
  does: fenced by the claim, which the same commit acknowledges, with the activation id as
  idempotency key and as causation, so the controller records the activation as done.
  approve writes the value of version v again (the human vouches for it, and the rules that
  follow the role fire on it), edit writes the human's value, reject deletes the entry (a
  tombstone; history keeps the rejected value). Each expects version v.
- a merge escalation (``sys/escalations/merge/<key>``, written by the compactor): the
  decision goes into that entry, expecting the version shown, in the shape
  `reconcile.resolve_escalation` writes; the compactor then merges it. approve takes the
  chosen proposal's value, edit the human's value, reject keeps the entry's current value.
"""

from __future__ import annotations

from typing import Any

from blackboard.board.client import Board
from blackboard.board.ops import Delete, Op, Put
from blackboard.control import steering
from blackboard.errors import ActivationClosedError, BlackboardError, IdempotencyKeyReusedError
from blackboard.store.entry import Causation, Entry
from blackboard.tui.escalations import EscalationItem

__all__ = ["EscalationGoneError", "HumanDesk"]


class EscalationGoneError(BlackboardError):
    """The escalation was decided or withdrawn since the view was drawn; reload."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: {reason}; nothing written (reload the view)")


class HumanDesk:
    """Decisions of one human (`user`) on one board."""

    def __init__(self, board: Board, user: str) -> None:
        self.user = user
        self.writer = f"human:{user}"
        self.board = board.bind(writer=self.writer)

    async def approve(self, item: EscalationItem, proposal: int = 0) -> Entry:
        """Accept the escalated value (merge: the `proposal`-th listed proposal's value)."""
        if item.kind == "merge":
            listed = item.doc.get("proposals") or []
            if not 0 <= proposal < len(listed):
                raise EscalationGoneError(item.key, f"no proposal #{proposal + 1} listed")
            return await self._decide_merge(item, listed[proposal].get("value"))
        return await self._decide_activation(item, Put(item.key, item.value, item.version))

    async def edit(self, item: EscalationItem, value: Any) -> Entry:
        """Write the human's own value instead."""
        if item.kind == "merge":
            return await self._decide_merge(item, value)
        return await self._decide_activation(item, Put(item.key, value, item.version))

    async def reject(
        self, item: EscalationItem, reason: str = "", back_to: str | None = None
    ) -> Entry:
        """Refuse the escalated value (merge: keep the entry's current value). The `reason`
        is kept on the record (`blackboard explain KEY`); `back_to` names a role that gets an
        activation on the rejected version, with who rejected it and why in its context
        (`activation.context`), to try again. Raises EscalationGoneError, ValueError."""
        if item.kind == "merge":
            if back_to:
                raise ValueError("a merge escalation cannot be sent back to a role")
            if item.current is None:
                raise EscalationGoneError(item.key, "no current value to keep; edit one instead")
            return await self._decide_merge(item, item.current.value, reason)
        done = await self._decide_activation(item, Delete(item.key, item.version))
        if item.activation is not None and (reason or back_to):
            await steering.request(
                self.board, "reject", item.activation.id, self.writer, reason, back_to
            )
        return done

    # -- merge escalations -------------------------------------------------------------------

    async def _decide_merge(self, item: EscalationItem, value: Any, reason: str = "") -> Entry:
        assert item.doc_key is not None
        doc = {**item.doc, "state": "decided", "decision": value, "decided_by": self.writer}
        if reason:
            doc["decision_reason"] = reason
        return await self.board.put(item.doc_key, doc, expect=item.doc_version)

    # -- escalated activations ---------------------------------------------------------------

    async def _decide_activation(self, item: EscalationItem, op: Op) -> Entry:
        act = item.activation
        if act is None or not act.entry_id:
            raise EscalationGoneError(item.key, "the activation has no queue entry")
        try:
            fence = await steering.take_claim(self.board, act.role, act.entry_id, self.writer)
        except ActivationClosedError as exc:
            raise EscalationGoneError(item.key, str(exc)) from None
        view = self.board.bind(causation=Causation(act.id, act.depth), fence=fence)
        try:
            return (await view.transact([op], idempotency_key=act.id))[0]
        except IdempotencyKeyReusedError:
            raise EscalationGoneError(item.key, "already decided with another value") from None
