"""Properties of the agenda under random arrivals, outcomes and clock steps (pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from blackboard.control.agenda import Agenda, Candidate
from blackboard.control.policy import parse_policy

POLICY = parse_policy(
    """
aging = 0.5
[roles.a]
max_pending = 3
breaker_failures = 2
breaker_cooldown = 1.0
[roles.b]
max_pending = 2
rate = 5.0
burst = 2
"""
)

step = st.one_of(
    st.tuples(st.just("add"), st.sampled_from("ab"), st.integers(0, 9), st.integers(0, 4)),
    st.tuples(st.just("finish"), st.booleans(), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("tick"), st.floats(0.0, 2.0), st.just(0), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=80))
def test_bounds_hold_and_nothing_is_lost_or_granted_twice(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    agenda = Agenda(POLICY)
    now, n = 0.0, 0
    added: set[str] = set()
    granted: list[str] = []
    open_ids: list[str] = []
    for kind, x, y, z in steps:
        if kind == "add":
            n += 1
            cid = f"{x}:{n}"
            agenda.add(Candidate(cid, x, f"k{n}", 1, n, "r", z, 0, f"res{y}", 30.0, now))
            added.add(cid)
        elif kind == "finish" and open_ids:
            agenda.finished(open_ids.pop(y % len(open_ids)), x, now)
        elif kind == "tick":
            now += x
        for c in agenda.dispatch(now):
            granted.append(c.activation_id)
            open_ids.append(c.activation_id)
        # invariants after every step
        assert agenda.pending["a"] <= 3 and agenda.pending["b"] <= 2
        resources = [agenda.open[i].resource for i in agenda.open]
        assert len(resources) == len(set(resources))  # one in flight per resource
        assert len(granted) == len(set(granted))  # never granted twice
        assert agenda.waiting + len(granted) == len(added)  # nothing dropped
    # when every activation finishes well and time passes, everything is granted
    for _ in range(len(added) + 5):
        now += 2.0
        while open_ids:
            agenda.finished(open_ids.pop(), True, now)
        for c in agenda.dispatch(now):
            granted.append(c.activation_id)
            open_ids.append(c.activation_id)
    assert set(granted) == added
