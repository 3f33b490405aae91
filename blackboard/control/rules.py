"""Matching changes against a policy's rules: key patterns, templates and conditions (pure).

A rule's pattern is compiled once to a regular expression in which ``*`` matches within one
``/`` segment and ``**`` across segments; each wildcard is a capture, so templates such as
``ticket/{1}`` name the resource or the target of an activation (the compiler lives in
patterns.py, shared with the policy's validation). Conditions compare values with fixed
operators; nothing from a policy is ever evaluated as code. Imports policy and patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from blackboard.control.patterns import compile_pattern, path_index
from blackboard.control.policy import Condition, Policy, Rule

__all__ = [
    "Match",
    "RuleIndex",
    "applies",
    "compile_pattern",
    "compile_rules",
    "condition_holds",
    "lookup",
    "match_rules",
    "render",
    "rules_for_key",
]

MISSING: Any = object()


_TEMPLATE_RE = re.compile(r"\{(key|\d+)\}")


def render(template: str, key: str, captures: tuple[str, ...]) -> str:
    """Fill ``{key}`` and ``{1}``.. in `template`; a missing capture renders empty."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "key":
            return key
        n = int(name)
        return captures[n - 1] if 0 < n <= len(captures) else ""

    return _TEMPLATE_RE.sub(sub, template)


def lookup(value: Any, path: str) -> Any:
    """The item at a dotted `path` inside `value` ('' = value itself), or MISSING. Works on
    dicts, lists (numeric parts) and objects with attributes (pydantic models)."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, list | tuple):
            index = path_index(part)
            if index is None or index >= len(value):
                return MISSING
            value = value[index]
        elif hasattr(value, "__dict__") and not isinstance(value, type) and hasattr(value, part):
            value = getattr(value, part)
        else:
            return MISSING
    return value


def _comparable(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    num = int | float
    return (isinstance(a, num) and isinstance(b, num)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def condition_holds(cond: Condition, value: Any) -> bool:
    """Whether every operator of `cond` holds for `value`."""
    item = lookup(value, cond.path)
    present = item is not MISSING
    for op in cond.given:
        if op == "exists":
            if (present and item is not None) != cond.exists:
                return False
        elif not present:
            if op not in ("ne", "not_in"):
                return False
        elif op == "eq":
            if item != cond.eq or isinstance(item, bool) != isinstance(cond.eq, bool):
                return False
        elif op == "ne":
            if item == cond.ne and isinstance(item, bool) == isinstance(cond.ne, bool):
                return False
        elif op == "in":
            if item not in (cond.in_ or []):
                return False
        elif op == "not_in":
            if item in (cond.not_in or []):
                return False
        else:
            bound = getattr(cond, op)
            if not _comparable(item, bound):
                return False
            if op == "lt" and not item < bound:
                return False
            if op == "le" and not item <= bound:
                return False
            if op == "gt" and not item > bound:
                return False
            if op == "ge" and not item >= bound:
                return False
    return True


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched a change, with what its pattern captured."""

    rule: Rule
    captures: tuple[str, ...]

    def resource(self, key: str) -> str:
        return render(self.rule.resource, key, self.captures)

    def target(self, key: str) -> str:
        return key if self.rule.target is None else render(self.rule.target, key, self.captures)


def compile_rules(policy: Policy) -> list[tuple[Rule, re.Pattern[str]]]:
    """Each rule with its compiled pattern, in document order."""
    return [(rule, compile_pattern(rule.on)) for rule in policy.rules]


def rules_for_key(compiled: list[tuple[Rule, re.Pattern[str]]], key: str) -> list[Match]:
    """The rules whose pattern matches `key` (kinds and conditions not checked yet)."""
    out = []
    for rule, pattern in compiled:
        m = pattern.fullmatch(key)
        if m is not None:
            out.append(Match(rule, m.groups()))
    return out


class RuleIndex:
    """A policy's compiled rules with the matches of the keys seen lately. Which patterns a
    key matches depends on the key and the rules only, so a key is matched once while it
    stays in the cache (at most `size` keys, the oldest out first); kinds and conditions are
    checked per change. A new policy gets a new index."""

    __slots__ = ("_cache", "_size", "compiled")

    def __init__(self, compiled: list[tuple[Rule, re.Pattern[str]]], size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"RuleIndex size must be at least 1, got {size}")
        self.compiled = compiled
        self._size = size
        self._cache: dict[str, tuple[Match, ...]] = {}

    def __len__(self) -> int:
        """How many keys are cached."""
        return len(self._cache)

    def match(self, key: str) -> tuple[Match, ...]:
        """The rules whose pattern matches `key`, in document order (see `rules_for_key`)."""
        found = self._cache.get(key)
        if found is None:
            found = tuple(rules_for_key(self.compiled, key))
            if len(self._cache) >= self._size:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = found
        return found


def applies(rule: Rule, kind: str, value: Any) -> bool:
    """Whether a change of `kind` with `value` meets the rule's kinds and conditions."""
    return kind in rule.kinds and all(condition_holds(c, value) for c in rule.when)


def match_rules(policy: Policy, key: str, kind: str, value: Any) -> list[Match]:
    """The rules of `policy` that a change of `kind` to `key` with `value` meets, in
    document order."""
    return [m for m in rules_for_key(compile_rules(policy), key) if applies(m.rule, kind, value)]
