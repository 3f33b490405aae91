"""Rule patterns, templates and conditions (pure; no Redis)."""

from __future__ import annotations

import pytest

from blackboard.control.policy import Condition, parse_policy
from blackboard.control.rules import (
    MISSING,
    RuleIndex,
    compile_pattern,
    compile_rules,
    condition_holds,
    lookup,
    match_rules,
    render,
    rules_for_key,
)


@pytest.mark.parametrize(
    ("pattern", "key", "groups"),
    [
        ("ticket/*", "ticket/1", ("1",)),
        ("ticket/*", "ticket/1/triage", None),
        ("ticket/**", "ticket/1/triage", ("1/triage",)),
        ("ticket/*/triage", "ticket/7/triage", ("7",)),
        ("t?/x", "t1/x", ("1",)),
        ("t?/x", "t/x", None),
        ("txn/[0-9]*", "txn/42", ("4", "2")),
        ("a.b+c/*", "a.b+c/z", ("z",)),
        ("a.b+c/*", "aXb+c/z", None),
    ],
)
def test_patterns(pattern: str, key: str, groups: tuple[str, ...] | None) -> None:
    m = compile_pattern(pattern).fullmatch(key)
    assert (m.groups() if m else None) == groups


def test_render() -> None:
    assert render("ticket/{1}", "ticket/7/triage", ("7",)) == "ticket/7"
    assert render("{key}#{2}", "k", ("a",)) == "k#"


def test_lookup() -> None:
    v = {"a": {"b": [10, {"c": 3}]}}
    assert lookup(v, "a.b.1.c") == 3
    assert lookup(v, "") is v
    assert lookup(v, "a.x") is MISSING
    assert lookup(v, "a.b.9") is MISSING
    assert lookup(5, "a") is MISSING


def _c(path: str, **ops: object) -> Condition:
    names = {"in_": "in"}
    return Condition.model_validate(
        {
            "path": path,
            **{names.get(k, k): v for k, v in ops.items()},
            "given": {names.get(k, k) for k in ops},
        }
    )


@pytest.mark.parametrize(
    ("cond", "value", "holds"),
    [
        (_c("s", eq="new"), {"s": "new"}, True),
        (_c("s", eq="new"), {"s": "old"}, False),
        (_c("s", eq="new"), {}, False),
        (_c("s", ne="new"), {}, True),
        (_c("n", eq=1), {"n": True}, False),  # a bool is not the number 1
        (_c("s", eq=None), {"s": None}, True),
        (_c("t", in_=["vip", "gold"]), {"t": "gold"}, True),
        (_c("t", not_in=["vip"]), {"t": "gold"}, True),
        (_c("t", not_in=["vip"]), {}, True),
        (_c("c", lt=0.8), {"c": 0.5}, True),
        (_c("c", lt=0.8), {"c": "0.5"}, False),  # no comparison across types
        (_c("c", ge=1, lt=10), {"c": 10}, False),
        (_c("c", ge=1, lt=10), {"c": 1}, True),
        (_c("c", gt="m"), {"c": "z"}, True),
        (_c("a", exists=True), {"a": 0}, True),
        (_c("a", exists=True), {"a": None}, False),
        (_c("a", exists=False), {}, True),
        (_c("", eq=3), 3, True),
    ],
)
def test_conditions(cond: Condition, value: object, holds: bool) -> None:
    assert condition_holds(cond, value) is holds


def test_match_rules_kinds_and_conditions() -> None:
    policy = parse_policy(
        """
[[rule]]
name = "new"
on = "ticket/*"
role = "triage"
[rule.when]
status = "new"

[[rule]]
name = "any-delete"
on = "ticket/**"
role = "audit"
kinds = ["delete"]
"""
    )
    names = [m.rule.name for m in match_rules(policy, "ticket/1", "put", {"status": "new"})]
    assert names == ["new"]
    assert match_rules(policy, "ticket/1", "put", {"status": "open"}) == []
    deleted = match_rules(policy, "ticket/1/x", "delete", None)
    assert [m.rule.name for m in deleted] == ["any-delete"]
    assert deleted[0].resource("ticket/1/x") == "ticket/1/x"


def test_rule_index_matches_like_rules_for_key_and_stays_bounded() -> None:
    policy = parse_policy(
        '[[rule]]\nname = "a"\non = "t/*"\nrole = "x"\n'
        '[[rule]]\nname = "b"\non = "t/**"\nrole = "y"\n'
    )
    compiled = compile_rules(policy)
    index = RuleIndex(compiled, size=2)
    for key in ("t/1", "t/1/2", "u/1", "t/1", "t/3", "t/1/2"):
        assert index.match(key) == tuple(rules_for_key(compiled, key))
        assert index.match(key) is index.match(key)  # the second look is the cached one
    assert [m.rule.name for m in index.match("t/9")] == ["a", "b"]
    assert [m.captures for m in index.match("t/9/8")] == [("9/8",)]
    assert len(index) <= 2
    with pytest.raises(ValueError, match="at least 1"):
        RuleIndex(compiled, size=0)
