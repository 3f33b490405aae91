"""Policy documents: parsing, validation and the line an error points at (no Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blackboard import PolicyError, parse_policy
from blackboard.control.policy import check_role

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
name = "t"
[escalation]
threshold = 0.8

[roles.triage]
max_pending = 5
escalate_to = "specialist"

[[rule]]
name = "a"
on = "ticket/*"
role = "triage"
priority = 3
[rule.when]
status = "new"
"customer.tier" = { in = ["vip", "gold"] }
score = { ge = 1, lt = 10 }

[[merge]]
pattern = "verdict/*"
strategy = "majority"
quorum = 3
"""


def test_reference_policies_validate() -> None:
    for name in ("support", "fraud"):
        policy = parse_policy((ROOT / "policies" / f"{name}.toml").read_text(), name)
        assert policy.name == name and policy.rules


def test_good_document() -> None:
    p = parse_policy(GOOD)
    rule = p.rules[0]
    assert (rule.name, rule.role, rule.priority) == ("a", "triage", 3)
    assert [c.path for c in rule.when] == ["status", "customer.tier", "score"]
    assert p.limits("triage").max_pending == 5
    assert p.limits("other").max_pending == 1000  # defaults for roles not named
    assert p.escalation_target("triage") == "specialist"
    assert p.escalation_target("specialist") == "human"
    assert p.escalation_target("human") is None
    assert p.threshold("triage") == 0.8
    # the compactor's tables are kept as they are, unvalidated
    assert p.merge == [{"pattern": "verdict/*", "strategy": "majority", "quorum": 3}]


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (("max_pending = 5", 'max_pending = "many"'), 7, "roles.triage.max_pending"),
        (("priority = 3", "priority = "), 14, "Invalid value"),
        (('role = "triage"', 'role = "no spaces"'), 13, "rule.0.role"),
        (("{ ge = 1, lt = 10 }", "{ like = 1 }"), None, "unknown operator 'like'"),
        (('name = "t"', 'name = "t"\nsurprise = 1'), 3, "surprise: Extra inputs"),
        (("threshold = 0.8", "threshold = -1"), 4, "escalation.threshold"),
    ],
)
def test_invalid_documents_name_line_and_reason(
    change: tuple[str, str], line: int | None, reason: str
) -> None:
    source = GOOD.replace(*change)
    with pytest.raises(PolicyError) as info:
        parse_policy(source, "p.toml")
    err = info.value
    assert reason in err.reason, err.reason
    if line is not None:
        assert err.line == line, (err.line, str(err))
    assert str(err).startswith("invalid policy p.toml")


def test_semantic_checks() -> None:
    twice = GOOD + '\n[[rule]]\nname = "a"\non = "x/*"\nrole = "r"\n'
    with pytest.raises(PolicyError, match="two rules are named 'a'"):
        parse_policy(twice)
    loop = GOOD + '\n[roles.specialist]\nescalate_to = "triage"\n'
    with pytest.raises(PolicyError, match="escalation loops"):
        parse_policy(loop)
    bad_consensus = (
        '[[rule]]\nname = "c"\non = "t/*/v"\nrole = "agg"\n[rule.consensus]\nk = 3\nn = 2\n'
    )
    with pytest.raises(PolicyError, match="k=3 is more than n=2"):
        parse_policy(bad_consensus)
    no_group = '[[rule]]\nname = "c"\non = "t/*/v"\nrole = "agg"\n[rule.consensus]\nk = 1\nn = 2\n'
    with pytest.raises(PolicyError, match="needs group"):
        parse_policy(no_group)
    with pytest.raises(PolicyError, match="template"):
        parse_policy('[[rule]]\nname = "c"\non = "t/*"\nrole = "r"\nresource = "{nope}"\n')


def test_role_names() -> None:
    assert check_role("fraud-geo.v2") == "fraud-geo.v2"
    for bad in ("", "a b", "x" * 65, "a/b"):
        with pytest.raises(ValueError):
            check_role(bad)


def test_only_escalating_roles_escalate() -> None:
    # a role downstream of the escalation chain that copies a confidence never escalates
    p = parse_policy((ROOT / "policies/support.toml").read_text())
    assert p.threshold("triage") == 0.8 and p.threshold("specialist") == 0.8
    assert p.threshold("resolver") == 0.0 and p.threshold("human") == 0.0
    # with no role declaring escalation, the global threshold covers every role
    rule = '[[rule]]\nname = "r"\non = "a/*"\nrole = "x"\n'
    bare = parse_policy("[escalation]\nthreshold = 0.5\n" + rule)
    assert bare.threshold("x") == 0.5
    listed = parse_policy('[escalation]\nthreshold = 0.5\nroles = ["y"]\n')
    assert listed.threshold("x") == 0.0 and listed.threshold("y") == 0.5
