"""The agenda: priority with aging, one activation per resource, backpressure, breaker and
rate limits deciding what to grant (pure; fake clock)."""

from __future__ import annotations

import itertools

from blackboard.control.agenda import Agenda, Candidate
from blackboard.control.guards import BreakerState
from blackboard.control.policy import Policy, parse_policy

_ids = itertools.count()


def cand(
    role: str = "r", priority: int = 0, since: float = 0.0, resource: str | None = None
) -> Candidate:
    n = next(_ids)
    return Candidate(
        f"{role}:{n}", role, f"k/{n}", 1, n, "rule", priority, 0, resource or f"k/{n}", 30.0, since
    )


def policy(text: str = "") -> Policy:
    return parse_policy(text)


def test_higher_priority_first_fifo_within() -> None:
    a = Agenda(policy("aging = 0\n[roles.r]\nmax_pending = 1"))
    low1, high, low2 = cand(priority=1), cand(priority=9), cand(priority=1)
    for c in (low1, high, low2):
        a.add(c)
    assert a.dispatch(0.0) == [high]
    a.finished(high.activation_id, True, 1.0)
    assert a.dispatch(1.0) == [low1]
    a.finished(low1.activation_id, True, 2.0)
    assert a.dispatch(2.0) == [low2]


def test_aging_keeps_a_low_priority_from_starving() -> None:
    a = Agenda(policy("aging = 1.0\n[roles.r]\nmax_pending = 1"))
    old = cand(priority=0, since=0.0)
    a.add(old)
    blocker = cand(priority=100, since=0.0)
    a.add(blocker)
    assert a.dispatch(0.0) == [blocker]
    now = 0.0
    granted = []
    # a steady stream of priority-5 candidates keeps arriving; the old one still gets through
    for step in range(1, 20):
        now = float(step)
        a.add(cand(priority=5, since=now))
        a.finished(granted[-1].activation_id if granted else blocker.activation_id, True, now)
        granted += a.dispatch(now)
        if old in granted:
            break
    assert old in granted
    assert now <= 7.0  # it passed priority 5 after waiting ~5 s at 1 point/s


def test_one_activation_in_flight_per_resource() -> None:
    a = Agenda(policy())
    first, second = cand(resource="ticket/1"), cand(resource="ticket/1")
    other = cand(resource="ticket/2")
    for c in (first, second, other):
        a.add(c)
    assert a.dispatch(0.0) == [first, other]
    assert "in flight" in second.waiting
    assert a.dispatch(0.5) == []
    a.finished(first.activation_id, True, 1.0)
    assert a.dispatch(1.0) == [second]


def test_backpressure_bounds_pending_and_nothing_is_dropped() -> None:
    a = Agenda(policy("[roles.r]\nmax_pending = 3"))
    cands = [cand() for _ in range(10)]
    for c in cands:
        a.add(c)
    granted = a.dispatch(0.0)
    assert len(granted) == 3 and a.pending["r"] == 3 and a.waiting == 7
    assert "backpressure" in a.held["r"]
    reported = a.newly_waiting()
    assert reported == cands[3:] and "backpressure" in reported[0].waiting
    assert a.newly_waiting() == []  # each is reported once
    done = list(granted)
    t = 0.0
    while a.waiting:
        t += 1
        a.finished(done.pop(0).activation_id, True, t)
        more = a.dispatch(t)
        assert a.pending["r"] <= 3
        done += more
        granted += more
    assert sorted(c.activation_id for c in granted) == sorted(c.activation_id for c in cands)


def test_breaker_holds_a_role_then_lets_a_trial_through() -> None:
    a = Agenda(policy("[roles.r]\nbreaker_failures = 2\nbreaker_cooldown = 5"))
    first = [cand(), cand()]
    for c in first:
        a.add(c)
    assert a.dispatch(0.0) == first
    a.finished(first[0].activation_id, False, 1.0)
    _, changed = a.finished(first[1].activation_id, False, 1.0)
    assert changed and a.breaker("r").state is BreakerState.OPEN
    waiting = [cand(), cand()]
    for c in waiting:
        a.add(c)
    assert a.dispatch(2.0) == []
    assert "breaker open" in a.held["r"]
    assert a.next_due(2.0) == 6.0
    assert a.dispatch(6.0) == [waiting[0]]  # half-open: one trial
    assert a.dispatch(6.5) == []
    _, changed = a.finished(waiting[0].activation_id, True, 7.0)
    assert changed and a.breaker("r").state is BreakerState.CLOSED
    assert a.dispatch(7.0) == [waiting[1]]


def test_rate_limit_spreads_grants_over_time() -> None:
    a = Agenda(policy("[roles.r]\nrate = 2.0\nburst = 1"))
    cands = [cand() for _ in range(3)]
    for c in cands:
        a.add(c)
    assert a.dispatch(0.0) == cands[:1]
    assert a.next_due(0.0) == 0.5
    assert a.dispatch(0.2) == []
    assert a.dispatch(0.5) == cands[1:2]
    assert a.dispatch(1.0) == cands[2:]


def test_restore_and_revert_account_for_open_activations() -> None:
    from blackboard.control.agenda import OpenActivation

    a = Agenda(policy("[roles.r]\nmax_pending = 1"))
    a.restore("r:old", OpenActivation("r", "k/x", 0, 0, 0.0))
    assert a.known("r:old") and a.pending["r"] == 1
    c = cand(resource="k/x")
    a.add(c)
    assert a.dispatch(0.0) == []
    a.finished("r:old", True, 1.0)
    assert a.dispatch(1.0) == [c]
    a.revert(c.activation_id)  # the board said it was granted before
    assert a.pending["r"] == 0 and "k/x" not in a.busy
