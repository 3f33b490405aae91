"""The agenda: candidates waiting for an activation and the guard state that decides when
each may go (pure: no I/O; `now` is passed in, in seconds).

The controller adds admitted candidates and asks `dispatch(now)` which to grant. Per role,
candidates wait in a heap ordered by aged priority (higher first; waiting raises it, so no
priority starves); a role stops granting while its breaker is open, its pending bound is
reached or its rate is spent, and a candidate whose resource has an activation in flight is
parked until that activation finishes. Nothing is dropped. Imports guards and policy only.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from blackboard.control.guards import (
    Breaker,
    BreakerState,
    TokenBucket,
    aging_key,
    backpressure,
    resource_free,
)
from blackboard.control.policy import Policy

__all__ = ["Agenda", "Candidate", "OpenActivation"]

_SEEN_LIMIT = 200_000


@dataclass(slots=True)
class Candidate:
    """A role that may act on a key version, with what the rule and admission guards said.

    `since` is when it started waiting (the agenda's clock); `event_id` the log event that
    raised it (acknowledged once its last candidate is granted); `value` the msgpack value
    passed along to the agent; `waiting` why it waits when its resource is busy (a role-wide
    reason is in `Agenda.held`)."""

    activation_id: str
    role: str
    key: str
    version: int
    revision: int
    rule: str
    priority: int
    depth: int
    resource: str
    deadline: float
    since: float
    event_id: str = ""
    value: bytes = b""
    escalated_from: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    waiting: str = ""
    trace: str = ""  # traceparent of the span that wrote the change (telemetry)
    changed_ms: int = 0  # when the change was committed (server clock), for its latency


@dataclass(slots=True)
class OpenActivation:
    """An activation granted and not finished yet."""

    role: str
    resource: str
    depth: int
    priority: int
    granted_at: float


class Agenda:
    """Waiting candidates, open activations and per-role guard state of one controller."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.open: dict[str, OpenActivation] = {}
        self.pending: dict[str, int] = defaultdict(int)
        self.busy: dict[str, int] = defaultdict(int)
        self.breakers: dict[str, Breaker] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self._heaps: dict[str, list[tuple[float, int, Candidate]]] = defaultdict(list)
        self._parked: dict[str, deque[Candidate]] = defaultdict(deque)
        self._waiting_ids: set[str] = set()
        self._seen: dict[str, None] = {}
        self._seq = 0
        self._fresh: list[Candidate] = []
        self.held: dict[str, str] = {}
        """Why each role's waiting candidates are held (breaker, backpressure, rate)."""
        self.paused: dict[str, str] = {}
        """Roles an operator paused or is draining, with why ("paused by <actor>: ..."):
        nothing new is granted to them (role_steering.py keeps this)."""

    # -- state ----------------------------------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        """Switch policy; breakers keep their state, limits and rates follow the new one."""
        self.policy = policy
        for role, breaker in self.breakers.items():
            limits = policy.limits(role)
            breaker.failures, breaker.cooldown = limits.breaker_failures, limits.breaker_cooldown
        self.buckets.clear()

    def breaker(self, role: str) -> Breaker:
        b = self.breakers.get(role)
        if b is None:
            limits = self.policy.limits(role)
            b = self.breakers[role] = Breaker(limits.breaker_failures, limits.breaker_cooldown)
        return b

    def _bucket(self, role: str, now: float) -> TokenBucket | None:
        limits = self.policy.limits(role)
        if limits.rate is None:
            return None
        b = self.buckets.get(role)
        if b is None:
            b = self.buckets[role] = TokenBucket(limits.rate, limits.burst, now)
        return b

    def restore(self, activation_id: str, act: OpenActivation) -> None:
        """Account for an activation granted by an earlier leader and not finished."""
        if activation_id in self.open:
            return
        self.open[activation_id] = act
        self.pending[act.role] += 1
        self.busy[act.resource] += 1
        self.seen(activation_id)

    def seen(self, activation_id: str) -> None:
        self._seen[activation_id] = None
        if len(self._seen) > _SEEN_LIMIT:
            for old in list(self._seen)[: _SEEN_LIMIT // 4]:
                del self._seen[old]

    def known(self, activation_id: str) -> bool:
        """Granted recently, waiting or open: a new candidate with this id is a duplicate."""
        return (
            activation_id in self._seen
            or activation_id in self._waiting_ids
            or activation_id in self.open
        )

    @property
    def waiting(self) -> int:
        return len(self._waiting_ids)

    def waiting_by_role(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for heap in self._heaps.values():
            for _, _, c in heap:
                out[c.role] += 1
        for parked in self._parked.values():
            for c in parked:
                out[c.role] += 1
        return dict(out)

    def waiting_list(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` waiting candidates for the published status, each with the guard
        that holds it now (`why`)."""
        found: list[tuple[Candidate, str]] = []
        for role, heap in self._heaps.items():
            why = self.held.get(role) or "behind candidates of higher priority"
            found += [(c, why) for _, _, c in heap[: max(0, limit - len(found))]]
        for parked in self._parked.values():
            found += [(c, c.waiting) for c in list(parked)[: max(0, limit - len(found))]]
        return [
            {"a": c.activation_id, "role": c.role, "k": c.key, "v": c.version, "rule": c.rule,
             "p": c.priority, "since": c.since, "why": why}
            for c, why in found
        ]  # fmt: skip

    # -- flow -----------------------------------------------------------------------------

    def add(self, cand: Candidate) -> None:
        """Queue an admitted candidate (dedupe is the caller's admission guard)."""
        self._waiting_ids.add(cand.activation_id)
        self._fresh.append(cand)
        self._push(cand)

    def _push(self, cand: Candidate) -> None:
        self._seq += 1
        heapq.heappush(
            self._heaps[cand.role],
            (aging_key(cand.priority, cand.since, self.policy.aging), self._seq, cand),
        )

    def dispatch(self, now: float) -> list[Candidate]:
        """Candidates to grant now, in grant order; the rest keep waiting with `waiting`
        set to the reason."""
        out: list[Candidate] = []
        for role, heap in self._heaps.items():
            if not heap:
                continue
            if role in self.paused:
                self.held[role] = self.paused[role]
                continue
            limits = self.policy.limits(role)
            breaker = self.breaker(role)
            bucket = self._bucket(role, now)
            while heap:
                gate = breaker.check(now)
                gate_reasons: list[str] = []
                if gate.ok:
                    pressure = backpressure(self.pending[role], limits.max_pending)
                    gate_reasons = [gate.reason, pressure.reason]
                    gate = pressure
                if gate.ok and bucket is not None:
                    gate = bucket.check(now)
                    gate_reasons.append(gate.reason)
                if not gate.ok:
                    self.held[role] = gate.reason
                    break
                self.held.pop(role, None)
                _, _, cand = heapq.heappop(heap)
                free = resource_free(cand.resource, self.busy)
                if not free.ok:
                    cand.waiting = free.reason
                    self._parked[cand.resource].append(cand)
                    continue
                gate_reasons.append(free.reason)
                waited = now - cand.since
                if waited >= 0.001:
                    why = cand.waiting or self.held.get(role) or "behind others"
                    gate_reasons.append(f"waited {waited * 1000:.0f} ms ({why})")
                cand.reasons.extend(gate_reasons)
                self._waiting_ids.discard(cand.activation_id)
                self.open[cand.activation_id] = OpenActivation(
                    role, cand.resource, cand.depth, cand.priority, now
                )
                self.pending[role] += 1
                self.busy[cand.resource] += 1
                self.seen(cand.activation_id)
                breaker.granted(cand.activation_id)
                if bucket is not None:
                    bucket.take(now)
                out.append(cand)
        return out

    def newly_waiting(self) -> list[Candidate]:
        """Candidates added since the last call that still wait, each with the reason
        (`waiting`) it waits for; each is reported once."""
        out = [c for c in self._fresh if c.activation_id in self._waiting_ids]
        self._fresh.clear()
        for c in out:
            if not c.waiting:
                c.waiting = self.held.get(c.role, "behind candidates of higher priority")
        return out

    def finished(
        self, activation_id: str, ok: bool, now: float
    ) -> tuple[OpenActivation | None, bool]:
        """An activation finished; frees its resource and pending slot and feeds the role's
        breaker. Returns the activation (None when unknown) and whether the breaker changed."""
        act = self.open.pop(activation_id, None)
        if act is None:
            return None, False
        self._release(act)
        changed = self.breaker(act.role).record(activation_id, ok, now)
        return act, changed

    def attempt_failed(self, activation_id: str, now: float) -> bool:
        """A run of an open activation failed and will run again: it counts against its
        role's breaker, and the activation stays open (its resource stays held, its pending
        slot taken). True when the breaker changed."""
        act = self.open.get(activation_id)
        if act is None:
            return False
        return self.breaker(act.role).record(activation_id, False, now)

    def retry_gate(self, activation_id: str, now: float) -> float | None:
        """None when the next run of a retrying activation may start now (it takes a rate
        token, and the breaker's trial when half-open); else the time to look again."""
        act = self.open[activation_id]
        if act.role in self.paused:  # a paused role starts nothing, retries included
            return now + 0.5
        breaker = self.breaker(act.role)
        if not breaker.check(now).ok:
            return breaker.next_at() or now + 0.5
        bucket = self._bucket(act.role, now)
        if bucket is not None:
            if not bucket.check(now).ok:
                return bucket.next_at(now)
            bucket.take(now)
        if breaker.state is BreakerState.HALF_OPEN:
            breaker.granted(activation_id)
        return None

    def revert(self, activation_id: str) -> None:
        """Undo a grant the board refused as a duplicate (granted by an earlier leader)."""
        act = self.open.pop(activation_id, None)
        if act is not None:
            self._release(act)
            b = self.breaker(act.role)
            if b.trial == activation_id:
                b.trial = None

    def _release(self, act: OpenActivation) -> None:
        self.pending[act.role] = max(0, self.pending[act.role] - 1)
        n = self.busy[act.resource] - 1
        if n <= 0:
            self.busy.pop(act.resource, None)
            parked = self._parked.pop(act.resource, None)
            for cand in parked or ():
                self._push(cand)
        else:
            self.busy[act.resource] = n

    def next_due(self, now: float) -> float | None:
        """The earliest time a waiting candidate may become grantable by time alone (breaker
        cool-down, rate refill); None when only a finishing activation can free one."""
        due: float | None = None
        for role, heap in self._heaps.items():
            if not heap or role in self.paused:  # only a command resumes a paused role
                continue
            at = self.breaker(role).next_at()
            bucket = self.buckets.get(role)
            if bucket is not None:
                t = bucket.next_at(now)
                at = t if at is None else max(at, t)
            if at is not None and at > now and (due is None or at < due):
                due = at
        return due

    def status(self) -> dict[str, Any]:
        roles = set(self.pending) | set(self.breakers) | set(self._heaps)
        waiting = self.waiting_by_role()
        return {
            role: {
                "pending": self.pending.get(role, 0),
                "waiting": waiting.get(role, 0),
                "breaker": self.breaker(role).state.value,
            }
            for role in sorted(roles)
        }
