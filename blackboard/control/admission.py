"""Admission: what one change makes of the rules (control layer; imports board, policy,
rules, guards, agenda, activation, grant_batch).

For each change the controller reads, the rules whose pattern, kinds and conditions match
make candidates (the highest priority per role and target); a low-confidence result of an
activation is escalated instead; consensus rules count the proposals first; then the loop
guard and dedupe admit each candidate to the agenda or refuse it. Every refusal is recorded
with its reasons. The only I/O is reading proposals for consensus and is done through the
board.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from blackboard.board.client import Board
from blackboard.control.activation import activation_id
from blackboard.control.agenda import Agenda, Candidate, OpenActivation
from blackboard.control.grant_batch import GrantBatch
from blackboard.control.guards import confidence_of, consensus, dedupe, escalation, loop_guard
from blackboard.control.policy import Policy, Rule
from blackboard.control.rules import MISSING, Match, applies, lookup, render
from blackboard.store.entry import Change

__all__ = ["Admission", "candidate"]

_VALUE_INLINE = 64 * 1024


def candidate(
    role: str, key: str, version: int, revision: int, rule: str, priority: int, depth: int,
    resource: str, deadline: float, now: float, entry_id: str, value: bytes,
    reasons: list[str], escalated_from: str = "", context: dict[str, Any] | None = None,
) -> Candidate:  # fmt: skip
    """A candidate with the id of the activation it would become."""
    return Candidate(
        activation_id(role, key, version), role, key, version, revision, rule, priority,
        depth, resource, deadline, now, entry_id, value, escalated_from, context or {}, reasons,
    )  # fmt: skip


class _Known(Container[str]):
    """The agenda as a container of ids already granted, waiting or open."""

    def __init__(self, agenda: Agenda) -> None:
        self.agenda = agenda

    def __contains__(self, activation_id: object) -> bool:
        return isinstance(activation_id, str) and self.agenda.known(activation_id)


class Admission:
    """Admits the candidates of changes under `policy` to `agenda`."""

    def __init__(self, board: Board, policy: Policy, agenda: Agenda) -> None:
        self.board = board
        self.policy = policy
        self.agenda = agenda
        self._known = _Known(agenda)

    @property
    def policy(self) -> Policy:
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy
        self._escalation: dict[str, tuple[float, str | None]] = {}

    def escalation_of(self, role: str) -> tuple[float, str | None]:
        """The confidence below which a result of `role` escalates (0: never) and the role
        it goes to (None: nowhere); computed once per role and policy."""
        found = self._escalation.get(role)
        if found is None:
            policy = self._policy
            found = (policy.threshold(role), policy.escalation_target(role))
            self._escalation[role] = found
        return found

    def escalates(self, role: str) -> bool:
        """Whether a low-confidence result of `role` is escalated somewhere."""
        threshold, target = self.escalation_of(role)
        return threshold > 0 and target is not None

    async def admit(
        self,
        batch: GrantBatch,
        entry_id: str,
        change: Change,
        raw_value: bytes,
        found: Sequence[Match],
        parent_id: str | None,
        parent: OpenActivation | None,
        now: float,
    ) -> int:
        """Turn one change into candidates on the agenda; returns how many were added.
        `found` are the rules whose pattern matches the key; `parent` the activation that
        wrote the change, if any."""
        policy = self.policy
        depth = parent.depth + 1 if parent else 0
        matches = [m for m in found if applies(m.rule, change.kind, change.value)]
        value = raw_value if len(raw_value) <= _VALUE_INLINE else b""
        cands: list[tuple[Candidate, Rule | None]] = []
        if parent is not None and change.kind in ("put", "apply", "merge"):
            conf = confidence_of(change.value, policy.escalation.field)
            threshold, target = self.escalation_of(parent.role)
            esc = escalation(conf, threshold, parent.role, target)
            if not esc.ok and target is not None:
                for m in matches:
                    reasons = [f"rule {m.rule.name} matched", f"superseded: {esc.reason}"]
                    batch.refuse(change, m.rule.role, m.rule.name, reasons, now)
                matches = []
                ctx = {"confidence": conf, "threshold": threshold, "from": parent_id}
                cand = candidate(
                    target, change.key, change.version, change.revision, "escalation",
                    parent.priority, depth, parent.resource or change.key,
                    policy.limits(target).deadline or policy.deadline, now, entry_id, value,
                    [esc.reason], parent.role, ctx,
                )  # fmt: skip
                cands.append((cand, None))
        chosen: dict[tuple[str, str], Match] = {}
        for m in matches:
            slot = (m.rule.role, m.target(change.key))
            best = chosen.get(slot)
            if best is None or m.rule.priority > best.rule.priority:
                chosen[slot] = m
        for m in matches:
            if chosen.get((m.rule.role, m.target(change.key))) is not m:
                reasons = [
                    f"rule {m.rule.name} matched",
                    "superseded by a rule of higher priority for the same role and key",
                ]
                batch.refuse(change, m.rule.role, m.rule.name, reasons, now)
        inherited = parent.priority if parent is not None else 0
        for m in chosen.values():
            made = await self._from_rule(batch, m, change, entry_id, value, depth, inherited, now)
            if made is not None:
                cands.append((made, m.rule))
        added = 0
        for cand, rule in cands:
            cand.trace, cand.changed_ms = change.trace or "", change.time_ms
            max_depth = rule.max_depth if rule and rule.max_depth is not None else policy.max_depth
            loop = loop_guard(cand.depth, max_depth)
            seen = dedupe(cand.activation_id, self._known, cand.role, cand.key, cand.version)
            cand.reasons += [loop.reason, seen.reason]
            if not (loop.ok and seen.ok):
                batch.record("refused", cand, cand.reasons, now)
                continue
            self.agenda.add(cand)
            added += 1
        return added

    async def _from_rule(
        self, batch: GrantBatch, m: Match, change: Change, entry_id: str, value: bytes,
        depth: int, parent_priority: int, now: float,
    ) -> Candidate | None:  # fmt: skip
        rule, policy = m.rule, self.policy
        role, key, version = rule.role, m.target(change.key), change.version
        conds = f" and {len(rule.when)} condition(s)" if rule.when else ""
        reasons = [f"rule {rule.name}: {change.key} matches {rule.on}{conds}"]
        ctx: dict[str, Any] = {}
        if rule.consensus is not None:
            c = rule.consensus
            result = consensus(await self._votes(m, change), c.k, c.n)
            reasons.append(result.reason)
            ctx = {"votes": result.votes, "present": result.present, "of": c.n}
            version, value = 0, b""
            if result.decided:
                ctx["consensus"] = result.agreed
            elif result.split and c.else_role:
                role = c.else_role
                ctx["split"] = True
                reasons.append(f"no consensus: to {role}")
            else:
                what = "refused" if result.split else "pending"
                batch.refuse(change, role, rule.name, reasons, now, what)
                return None
        deadline = rule.deadline or policy.limits(role).deadline or policy.deadline
        priority = rule.priority
        if parent_priority > priority:
            priority = parent_priority
            reasons.append(f"priority {priority}, inherited from its cause (rule: {rule.priority})")
        else:
            reasons.append(f"priority {priority}")
        return candidate(
            role, key, version, change.revision, rule.name, priority, depth,
            m.resource(key), deadline, now, entry_id, value, reasons, "", ctx,
        )  # fmt: skip

    async def _votes(self, m: Match, change: Change) -> list[Any]:
        """The values the proposals hold at the consensus field."""
        c = m.rule.consensus
        assert c is not None
        if c.source == "proposals":
            found = await self.board.proposals(change.key)
            return [lookup(p.value, c.field) for p in found]
        pattern = render(c.group or "", change.key, m.captures)
        out = []
        for key in await self.board.keys(pattern):
            entry = await self.board.get(key)
            out.append(MISSING if entry is None else lookup(entry.value, c.field))
        return out
