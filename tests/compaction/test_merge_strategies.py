"""Merge strategies and merge rules: pure functions, no Redis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from blackboard.compaction.merge import (
    Escalate,
    Merged,
    MergeRule,
    Wait,
    canonical,
    decide,
    find_rule,
    rules_from_document,
)
from blackboard.compaction.merge_functions import MergeFunctions
from blackboard.errors import MergePolicyError
from blackboard.store.entry import Proposal


def p(proposer: str, value: Any, revision: int, confidence: float | None = None) -> Proposal:
    return Proposal("k", proposer, value, confidence, revision, 1000 + revision)


def rule(strategy: str, **kw: Any) -> MergeRule:
    return MergeRule.model_validate({"pattern": "*", "strategy": strategy, **kw})


def test_last_writer_wins_takes_the_latest_revision() -> None:
    props = [p("b", "late", 9), p("a", "early", 3), p("c", "mid", 5)]
    assert decide(rule("last-writer-wins"), "old", props) == Merged("late")


def test_highest_confidence_and_its_ties_and_threshold() -> None:
    props = [p("a", "x", 1, 0.9), p("b", "y", 2, 0.95), p("c", "z", 3, None)]
    assert decide(rule("highest-confidence"), None, props) == Merged("y")
    tie = [p("a", "first", 1, 0.7), p("b", "second", 2, 0.7)]
    assert decide(rule("highest-confidence"), None, tie) == Merged("second")
    low = decide(rule("highest-confidence", min_confidence=0.99), None, props)
    assert isinstance(low, Escalate) and "0.95" in low.reason
    unknown = decide(rule("highest-confidence", min_confidence=0.5), None, [p("a", 1, 1)])
    assert isinstance(unknown, Escalate)


def test_majority_with_quorum_and_tie() -> None:
    votes = [p("a", "fraud", 1), p("b", "ok", 2), p("c", "fraud", 3)]
    assert decide(rule("majority", quorum=3), None, votes) == Merged("fraud")
    assert isinstance(decide(rule("majority", quorum=4), None, votes), Wait)
    tie = decide(rule("majority"), None, [p("a", "x", 1), p("b", "y", 2)])
    assert isinstance(tie, Escalate) and "tie" in tie.reason
    # dict key order and int/float do not split a vote; bool is not a number
    same = [p("a", {"v": 1, "w": 2}, 1), p("b", {"w": 2.0, "v": 1}, 2), p("c", True, 3)]
    assert decide(rule("majority"), None, same) == Merged({"w": 2.0, "v": 1})


def test_combining_strategies_fold_in_the_current_value() -> None:
    props = [p("a", [1, 2], 1), p("b", [2, 3, {"x": 1}], 2)]
    assert decide(rule("set-union"), [0, 1], props) == Merged([0, 1, 2, 3, {"x": 1}])
    assert decide(rule("set-union", include_current=False), [0], props) == Merged(
        [1, 2, 3, {"x": 1}]
    )
    nums = [p("a", 2, 1), p("b", 5, 2), p("c", -1, 3)]
    assert decide(rule("counter-sum"), 10, nums) == Merged(16)
    assert decide(rule("counter-sum"), None, nums) == Merged(6)
    assert decide(rule("max"), 3, nums) == Merged(5)
    assert decide(rule("max"), 30, nums) == Merged(30)
    assert decide(rule("min", include_current=False), -9, nums) == Merged(-1)
    assert decide(rule("max"), None, [p("a", "apple", 1), p("b", "pear", 2)]) == Merged("pear")


def test_bad_values_escalate_instead_of_raising() -> None:
    assert isinstance(decide(rule("set-union"), None, [p("a", 5, 1)]), Escalate)
    assert isinstance(decide(rule("counter-sum"), None, [p("a", "1", 1)]), Escalate)
    assert isinstance(decide(rule("counter-sum"), None, [p("a", True, 1)]), Escalate)
    assert isinstance(decide(rule("max"), None, [p("a", 1, 1), p("b", "2", 2)]), Escalate)
    assert isinstance(decide(rule("max"), None, [p("a", [1], 1)]), Escalate)
    assert isinstance(decide(rule("counter-sum"), "text", [p("a", 1, 1)]), Escalate)


def test_escalate_and_no_proposals() -> None:
    assert isinstance(decide(rule("escalate"), None, [p("a", 1, 1)]), Escalate)
    assert isinstance(decide(rule("last-writer-wins"), None, []), Wait)


def longest(current: Any, proposals: Sequence[Proposal]) -> Any:
    return max((pr.value for pr in proposals), key=len)


def needs_two(current: Any, proposals: Sequence[Proposal]) -> Any:
    if len(proposals) < 2:
        return Wait("one more")
    raise RuntimeError("boom")


def test_custom_function_by_name_through_the_allow_list() -> None:
    allowed = MergeFunctions({"longest": f"{__name__}:longest", "needs_two": needs_two})
    r = rule("custom", function="longest")
    fn = allowed.resolve(r.function or "")
    assert decide(r, None, [p("a", "ab", 1), p("b", "abc", 2)], fn) == Merged("abc")
    r2 = rule("custom", function="needs_two")
    fn2 = allowed.resolve(r2.function or "")
    assert isinstance(decide(r2, None, [p("a", 1, 1)], fn2), Wait)
    raised = decide(r2, None, [p("a", 1, 1), p("b", 2, 2)], fn2)
    assert isinstance(raised, Escalate) and "boom" in raised.reason
    assert isinstance(decide(r2, None, [p("a", 1, 1)]), Escalate)  # not resolved: escalates
    with pytest.raises(MergePolicyError, match="not on the compactor's allow-list"):
        allowed.resolve("other")
    broken = MergeFunctions({"gone": "no_such_module_xyz:f", "missing": f"{__name__}:missing"})
    with pytest.raises(MergePolicyError, match="cannot be loaded"):
        broken.resolve("gone")
    with pytest.raises(MergePolicyError, match="cannot be loaded"):
        broken.resolve("missing")


def test_rules_validate_and_match_first() -> None:
    rules = rules_from_document(
        {
            "rule": [{"ignored": "by the compactor"}],
            "merge": [
                {"pattern": "votes/*", "strategy": "majority", "quorum": 3},
                {"pattern": "*", "strategy": "last-writer-wins"},
            ],
        }
    )
    assert find_rule(rules, "votes/1") is rules[0]
    assert find_rule(rules, "other") is rules[1]
    assert find_rule(rules[:1], "other") is None
    assert rules[0].settles == "divergent"
    assert rule("counter-sum").settles == "all"
    assert rule("counter-sum", settle="divergent").settles == "divergent"
    assert rules_from_document({}) == ()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"pattern": "*", "strategy": "coin-flip"}, "strategy"),
        ({"pattern": "*", "strategy": "custom"}, "needs function"),
        ({"pattern": "*", "strategy": "custom", "function": "pkg.mod:fn"}, "not a plain name"),
        ({"pattern": "*", "strategy": "max", "function": "fn"}, "only for strategy 'custom'"),
        ({"pattern": "*", "strategy": "max", "quorum": 2}, "only for strategy 'majority'"),
        ({"pattern": "*", "strategy": "majority", "quorum": 0}, "quorum"),
        ({"pattern": "bad key!", "strategy": "max"}, "pattern"),
        ({"pattern": "*", "strategy": "max", "typo": 1}, "typo"),
        ({"pattern": "*", "strategy": "max", "min_confidence": 0.5}, "min_confidence"),
    ],
)
def test_invalid_rules_name_the_table(table: dict[str, Any], message: str) -> None:
    with pytest.raises(MergePolicyError) as info:
        rules_from_document({"merge": [{"pattern": "ok", "strategy": "max"}, table]})
    assert "table #2" in str(info.value) and message in str(info.value)


def test_canonical_equalities() -> None:
    assert canonical({"a": [1, 2.0]}) == canonical({"a": [1.0, 2]})
    assert canonical(True) != canonical(1)
    assert canonical(b"x") != canonical("x")
