"""Policy validation refuses at apply time what would otherwise fail inside the controller:
rule patterns the regex engine rejects, value paths with digits that are not list indexes,
files that are not UTF-8 (pure; no Redis)."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blackboard import PolicyError, parse_policy
from blackboard.control.patterns import check_path, compile_pattern
from blackboard.control.policy import decode_policy
from blackboard.control.rules import MISSING, lookup, match_rules

RULE = """\
name = "t"

[[rule]]
name = "r"
on = "{on}"
role = "triage"
"""


def error_of(source: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(source, "p.toml")
    return info.value


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("ticket/[z-a]", "bad character range z-a"),
        ("ticket/[]x", "unterminated character set"),
        ("ticket/[a--b]", "possible set difference"),
    ],
)
def test_a_pattern_the_controller_cannot_compile_is_refused_with_its_line(
    pattern: str, reason: str
) -> None:
    err = error_of(RULE.format(on=pattern))
    assert err.line == 5, str(err)
    assert str(err).startswith("invalid policy p.toml:5: rule.0.on: pattern")
    assert reason in str(err)


def test_a_nested_bracket_is_a_literal_as_in_a_glob() -> None:
    policy = parse_policy(RULE.format(on="ticket/[[x]"))
    assert [m.rule.name for m in match_rules(policy, "ticket/[", "put", {})] == ["r"]
    assert [m.rule.name for m in match_rules(policy, "ticket/x", "put", {})] == ["r"]


@pytest.mark.parametrize(
    ("when", "line"),
    [
        ('"tags.²" = 1', 9),
        ('"items.٣" = { exists = true }', 9),
        ('"a..b" = 1', 9),
        ('"tags." = 1', 9),
    ],
)
def test_a_path_with_an_unusable_part_is_refused(when: str, line: int) -> None:
    source = RULE.format(on="ticket/*") + f"[rule.when]\nstatus = 1\n{when}\n"
    err = error_of(source)
    assert err.line == line, str(err)
    assert "path" in err.reason


def test_paths_of_consensus_and_escalation_are_checked_too() -> None:
    source = RULE.format(on="txn/*") + (
        '[rule.consensus]\nk = 1\nn = 2\nsource = "proposals"\nfield = "votes.²"\n'
    )
    assert "votes.²" in error_of(source).reason
    err = error_of('[escalation]\nfield = "score.¹"\n')
    assert err.line == 2 and "score.¹" in err.reason


def test_lookup_never_reads_a_non_ascii_digit_as_an_index() -> None:
    assert lookup({"tags": ["a", "b"]}, "tags.1") == "b"
    assert lookup({"tags": ["a", "b"]}, "tags.²") is MISSING
    assert lookup({"tags": {"²": 5}}, "tags.²") == 5
    assert check_path("") == "" and check_path("a.0.b") == "a.0.b"


def test_a_file_that_is_not_utf8_names_its_line() -> None:
    data = b'name = "t"\n\n# caf\xe9\n'
    with pytest.raises(PolicyError) as info:
        decode_policy(data, "p.toml")
    assert info.value.line == 3
    assert str(info.value) == (
        "invalid policy p.toml:3: not UTF-8 text: byte 0xe9 at column 6 (TOML is UTF-8)"
    )
    assert decode_policy('name = "é"'.encode(), "p.toml") == 'name = "é"'


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab/*?[]-z.", min_size=1, max_size=12))
def test_every_pattern_policy_accepts_compiles_in_the_controller(pattern: str) -> None:
    source = RULE.format(on=pattern)
    try:
        parse_policy(source)
    except PolicyError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_pattern(pattern).fullmatch("a/b")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_every_path_policy_accepts_is_safe_to_look_up(path: str) -> None:
    source = RULE.format(on="k/*") + "[rule.when]\n" + f"{_toml_key(path)} = 1\n"
    try:
        policy = parse_policy(source)
    except PolicyError:
        return
    value = {"a": [1, {"b": 2}], path: 3}
    match_rules(policy, "k/x", "put", value)  # never raises


def _toml_key(text: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in text)
    return f'"{escaped}"'
