"""The controller's guards: pure functions and small state machines, no I/O, no clock of
their own (every function that depends on time takes `now`, in seconds).

Admission guards run once per candidate: dedupe, loop depth, escalation, consensus. Dispatch
guards run each time a waiting candidate might go: circuit breaker, backpressure, rate limit
(per role) and one activation in flight per resource; they make a candidate wait, never drop
it. Priority orders the waiting, with aging so that lower priorities are not starved.
Each guard answers with a `Verdict` whose `reason` is what `blackboard explain` prints.
Imports rules (for value lookup) only.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Container, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from blackboard.control.rules import MISSING, lookup

__all__ = [
    "Breaker",
    "BreakerState",
    "ConsensusResult",
    "TokenBucket",
    "Verdict",
    "aged_priority",
    "backpressure",
    "confidence_of",
    "consensus",
    "dedupe",
    "escalation",
    "loop_guard",
    "resource_free",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """`ok` lets the candidate through; otherwise it waits (`wait`) or is refused."""

    ok: bool
    reason: str
    wait: bool = False


def dedupe(activation_id: str, seen: Container[str], role: str, key: str, version: int) -> Verdict:
    """One activation per (role, key, version): refuse one whose id was granted before."""
    if activation_id in seen:
        return Verdict(False, f"dedupe: ({role}, {key}, v{version}) was granted already")
    return Verdict(True, f"dedupe: first for ({role}, {key}, v{version})")


def loop_guard(depth: int, max_depth: int) -> Verdict:
    """Refuse a candidate whose causal depth (activations in its causal chain) is too deep."""
    if depth > max_depth:
        return Verdict(False, f"loop guard: causal depth {depth} > {max_depth}")
    return Verdict(True, f"loop guard: depth {depth} <= {max_depth}")


def confidence_of(value: Any, field: str) -> float | None:
    """The number at `field` of a value, or None when there is none."""
    found = lookup(value, field)
    if found is MISSING or isinstance(found, bool) or not isinstance(found, int | float):
        return None
    return float(found)


def escalation(
    confidence: float | None, threshold: float, role: str, target: str | None
) -> Verdict:
    """A result of `role` with `confidence` below `threshold` escalates to `target`:
    ok=False means "escalate" (the reason says where), ok=True means proceed normally."""
    if confidence is None or threshold <= 0 or target is None:
        return Verdict(True, "escalation: not applicable")
    if confidence < threshold:
        return Verdict(
            False,
            f"escalation: {role} wrote confidence {confidence:g} < {threshold:g}: to {target}",
        )
    return Verdict(True, f"escalation: confidence {confidence:g} >= {threshold:g}")


@dataclass(frozen=True, slots=True)
class ConsensusResult:
    """`agreed` holds the value k proposals agree on; `split` is True when all n are in
    and no k agree; neither means more proposals are needed."""

    agreed: Any
    votes: int
    present: int
    split: bool
    reason: str

    @property
    def decided(self) -> bool:
        return self.votes > 0


def _hashable(v: Any) -> Hashable:
    if isinstance(v, dict):
        return tuple(sorted((str(k), _hashable(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(_hashable(x) for x in v)
    return v  # type: ignore[no-any-return]


def consensus(votes: Sequence[Any], k: int, n: int) -> ConsensusResult:
    """Whether `k` of the `n` expected proposals agree (equal values; MISSING ones do not
    vote). Ties among values with k votes go to the value that reached k first."""
    present = [v for v in votes if v is not MISSING]
    counts: Counter[Hashable] = Counter()
    first: dict[Hashable, Any] = {}
    for v in present:
        h = _hashable(v)
        counts[h] += 1
        first.setdefault(h, v)
        if counts[h] >= k:
            return ConsensusResult(
                first[h], counts[h], len(present), False, f"consensus: {k} of {n} agree on {v!r}"
            )
    best = max(counts.values(), default=0)
    if len(present) >= n:
        return ConsensusResult(
            None, 0, len(present), True, f"consensus: all {len(present)} in, best {best} < {k}"
        )
    return ConsensusResult(
        None, 0, len(present), False, f"consensus: {len(present)} of {n} in, best {best} < {k}"
    )


def backpressure(pending: int, bound: int) -> Verdict:
    """At most `bound` activations of a role granted and unfinished; the rest wait."""
    if pending >= bound:
        return Verdict(False, f"backpressure: {pending} pending >= bound {bound}", wait=True)
    return Verdict(True, f"backpressure: {pending} pending < {bound}")


def resource_free(resource: str, busy: Container[str]) -> Verdict:
    """One activation in flight per resource; the next waits for it to finish."""
    if resource in busy:
        return Verdict(False, f"resource {resource} has an activation in flight", wait=True)
    return Verdict(True, f"resource {resource} free")


def aged_priority(priority: int, since: float, now: float, aging: float) -> float:
    """Effective priority of a candidate waiting since `since`: it gains `aging` points a
    second, so a low priority eventually passes a steady stream of higher ones."""
    return priority + max(0.0, now - since) * aging


def aging_key(priority: int, since: float, aging: float) -> float:
    """A sort key equivalent to -aged_priority at every `now` (the order does not change
    with time, so a heap can keep it)."""
    return -(priority - since * aging)


class TokenBucket:
    """Rate limit: `rate` grants a second on average, bursts up to `burst`."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int | None, now: float) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, int(rate)))
        self.tokens = self.burst
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def check(self, now: float) -> Verdict:
        self._refill(now)
        if self.tokens >= 1:
            return Verdict(True, f"rate: {self.tokens:.1f} of {self.burst:g} tokens")
        return Verdict(False, f"rate limit {self.rate:g}/s reached", wait=True)

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def next_at(self, now: float) -> float:
        """When the next token is there."""
        self._refill(now)
        return now if self.tokens >= 1 else now + (1 - self.tokens) / self.rate


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Breaker:
    """Circuit breaker of one role: opens after `failures` consecutive failed activations,
    lets one trial through after `cooldown` seconds (half-open), closes when it succeeds and
    opens again when it fails. An operator may open it by hand (`hold`): it then stays open,
    whatever the outcomes, until `reset`."""

    __slots__ = ("cooldown", "failures", "held", "opened_at", "state", "streak", "trial")

    def __init__(self, failures: int, cooldown: float) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.state = BreakerState.CLOSED
        self.streak = 0
        self.opened_at = 0.0
        self.trial: str | None = None
        self.held = ""
        """Why it was opened by hand ("opened by <actor>: <reason>"); "" when it was not."""

    def hold(self, why: str, now: float) -> None:
        """Open by hand and stay open until `reset`."""
        self.state = BreakerState.OPEN
        self.opened_at = now
        self.trial = None
        self.held = why

    def reset(self) -> None:
        """Close by hand: forget the failure streak and any trial."""
        self.state = BreakerState.CLOSED
        self.streak = 0
        self.trial = None
        self.held = ""

    def check(self, now: float) -> Verdict:
        if self.state is BreakerState.CLOSED:
            return Verdict(True, "breaker closed")
        if self.held:
            return Verdict(False, f"breaker {self.held}", wait=True)
        if self.state is BreakerState.OPEN:
            if now < self.opened_at + self.cooldown:
                until = self.opened_at + self.cooldown - now
                return Verdict(False, f"breaker open ({until:.1f}s to half-open)", wait=True)
            self.state = BreakerState.HALF_OPEN
        if self.trial is not None:
            return Verdict(False, "breaker half-open: trial in flight", wait=True)
        return Verdict(True, "breaker half-open: trial")

    def granted(self, activation_id: str) -> None:
        if self.state is BreakerState.HALF_OPEN and self.trial is None:
            self.trial = activation_id

    def record(self, activation_id: str, ok: bool, now: float) -> bool:
        """Count an outcome; True when the state changed."""
        before = self.state
        if self.trial is not None and activation_id != self.trial:
            return False  # outcomes of activations granted before the breaker opened
        self.trial = None
        if self.held:  # open by hand: outcomes do not close it
            return False
        if ok:
            self.streak = 0
            self.state = BreakerState.CLOSED
        else:
            self.streak += 1
            if before is BreakerState.HALF_OPEN or self.streak >= self.failures:
                self.state = BreakerState.OPEN
                self.opened_at = now
        return self.state is not before

    def next_at(self) -> float | None:
        """When an open breaker turns half-open (None when closed or held open by hand)."""
        if self.state is not BreakerState.OPEN or self.held:
            return None
        return self.opened_at + self.cooldown

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state.value, "streak": self.streak, "opened_at": self.opened_at,
        }  # fmt: skip
        if self.held:
            out["held"] = self.held
        return out

    def load(self, data: dict[str, Any]) -> None:
        self.state = BreakerState(data.get("state", "closed"))
        self.streak = int(data.get("streak", 0))
        self.opened_at = float(data.get("opened_at", 0.0))
        self.held = str(data.get("held") or "")
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN  # the trial's fate is unknown: cool down again
