"""Merging is deterministic: the same proposals, in any order, give the same decision
(pure, no Redis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from blackboard.compaction.merge import (
    STRATEGIES,
    Escalate,
    Merged,
    MergeRule,
    Wait,
    canonical,
    decide,
)
from blackboard.store.entry import Proposal

SCALARS = st.one_of(
    st.integers(-5, 5), st.sampled_from(["a", "b", "c"]), st.booleans(), st.floats(-3, 3)
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from("xy"), SCALARS, max_size=2),
)


@st.composite
def proposal_sets(draw: st.DrawFn) -> list[Proposal]:
    n = draw(st.integers(1, 6))
    revisions = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))
    return [
        Proposal(
            "k",
            f"p{i}",
            draw(VALUES),
            draw(st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.5, 0.9]))),
            rev,
            rev * 10,
        )
        for i, rev in enumerate(revisions)
    ]


RULES = st.sampled_from([s for s in STRATEGIES if s != "custom"]).flatmap(
    lambda s: st.builds(
        MergeRule,
        pattern=st.just("*"),
        strategy=st.just(s),
        quorum=st.integers(1, 4) if s == "majority" else st.just(1),
        min_confidence=st.sampled_from([None, 0.5]) if s == "highest-confidence" else st.none(),
        include_current=st.booleans(),
    )
)


def _key(decision: Any) -> Any:
    if isinstance(decision, Merged):
        return ("merged", canonical(decision.value))
    return (type(decision).__name__, decision.reason)


@settings(max_examples=300, deadline=None)
@given(rule=RULES, current=st.one_of(st.none(), VALUES), proposals=proposal_sets(), data=st.data())
def test_decision_does_not_depend_on_arrival_order(
    rule: MergeRule, current: Any, proposals: list[Proposal], data: st.DataObject
) -> None:
    first = decide(rule, current, proposals)
    shuffled = data.draw(st.permutations(proposals))
    again = decide(rule, current, shuffled)
    assert _key(first) == _key(again)
    assert isinstance(first, Merged | Escalate | Wait)
    if isinstance(first, Merged) and rule.strategy in (
        "last-writer-wins",
        "highest-confidence",
        "majority",
    ):
        assert any(canonical(p.value) == canonical(first.value) for p in proposals)
    if rule.strategy == "last-writer-wins":
        assert first == Merged(max(proposals, key=lambda p: p.revision).value)
