"""Merge strategies: pure functions from (current value, open proposals) to a decision.

Compaction layer, pure: imports entry, errors and keys only, and does no I/O.
A ``custom`` rule only *names* its function (`FUNCTION_NAME`: letters, digits, ``_ . -``);
the compactor maps the name to code through its own allow-list (merge_functions.py) and
hands the function to `decide()`. Nothing a policy says is ever imported.

A policy document names strategies in ``[[merge]]`` tables, validated by `MergeRule`; the
first rule whose pattern matches an entry key applies. `decide()` sorts the proposals by
revision first, so the same proposals give the same decision in any order (deterministic),
and returns one of `Merged(value)`, `Escalate(reason)` (a human decides) or `Wait(reason)`
(not decidable yet, e.g. a quorum not reached). Values are compared by a canonical form in
which dict key order does not matter, ``1 == 1.0``, and ``True != 1``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blackboard.errors import InvalidKeyError, MergePolicyError
from blackboard.store.entry import Proposal
from blackboard.store.keys import check_pattern

__all__ = [
    "COMBINING",
    "FUNCTION_NAME",
    "STRATEGIES",
    "CustomFunction",
    "Decision",
    "Escalate",
    "MergeRule",
    "Merged",
    "Wait",
    "canonical",
    "decide",
    "find_rule",
    "rules_from_document",
]

Strategy = Literal[
    "last-writer-wins",
    "highest-confidence",
    "majority",
    "set-union",
    "counter-sum",
    "max",
    "min",
    "custom",
    "escalate",
]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]
COMBINING = frozenset({"set-union", "counter-sum", "max", "min"})
"""Strategies that combine every proposal (so agreeing proposals are merged too)."""
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
"""What a custom rule's `function` may be: a plain name, never an import path."""


@dataclass(frozen=True, slots=True)
class Merged:
    """Write `value` as the entry's next version and close the proposals."""

    value: Any


@dataclass(frozen=True, slots=True)
class Escalate:
    """No strategy decides: a human must (see docs/compactor.md, escalations)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Not decidable yet (e.g. fewer votes than the quorum); look again on a new proposal."""

    reason: str


Decision = Merged | Escalate | Wait
CustomFunction = Callable[[Any, Sequence[Proposal]], Any]


class MergeRule(BaseModel):
    """One ``[[merge]]`` table of a policy: which strategy reconciles which keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(description="glob over entry keys, e.g. 'verdict/*'")
    strategy: Strategy = Field(description="how open proposals become the entry's value")
    quorum: int = Field(1, ge=1, description="majority: proposals needed before a vote counts")
    min_confidence: float | None = Field(
        None, ge=0, le=1, description="highest-confidence: a lower best escalates"
    )
    function: str | None = Field(
        None,
        description="custom: the name of a function on the compactor's allow-list "
        "(letters, digits, _ . -), e.g. 'longest_summary'",
    )
    include_current: bool = Field(
        True, description="set-union, counter-sum, max, min: fold the current value in"
    )
    settle: Literal["divergent", "all"] | None = Field(
        None,
        description="which entries with open proposals to reconcile: 'divergent' (default for "
        "strategies that choose one proposal) or 'all' (default for those that combine)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MergeRule:
        try:
            check_pattern(self.pattern)
        except InvalidKeyError as exc:
            raise ValueError(exc.reason) from None
        if self.strategy == "custom":
            if not self.function:
                raise ValueError(
                    "strategy 'custom' needs function = '<name>', a name on the compactor's "
                    "allow-list of merge functions"
                )
            if not FUNCTION_NAME.fullmatch(self.function):
                raise ValueError(
                    f"function {self.function!r} is not a plain name (letters, digits, _ . -): "
                    "a policy names a merge function, it never gives an import path; the "
                    "compactor maps names to code (--merge-function, "
                    "BLACKBOARD_MERGE_FUNCTIONS, entry points 'blackboard.merge_functions')"
                )
        elif self.function is not None:
            raise ValueError("'function' is only for strategy 'custom'")
        if self.quorum != 1 and self.strategy != "majority":
            raise ValueError("'quorum' is only for strategy 'majority'")
        if self.min_confidence is not None and self.strategy != "highest-confidence":
            raise ValueError("'min_confidence' is only for strategy 'highest-confidence'")
        return self

    @property
    def settles(self) -> Literal["divergent", "all"]:
        """The effective `settle`."""
        if self.settle is not None:
            return self.settle
        return "all" if self.strategy in COMBINING else "divergent"

    def matches(self, key: str) -> bool:
        return fnmatchcase(key, self.pattern)


def rules_from_document(document: Mapping[str, Any]) -> tuple[MergeRule, ...]:
    """The merge rules of a policy document (its ``merge`` list of tables; none is fine).
    Raises MergePolicyError naming the table and field at fault."""
    tables = document.get("merge", [])
    if not isinstance(tables, list):
        raise MergePolicyError("'merge' must be a list of [[merge]] tables")
    rules = []
    for i, table in enumerate(tables, 1):
        if not isinstance(table, Mapping):
            raise MergePolicyError(f"[[merge]] table #{i} is not a table")
        try:
            rules.append(MergeRule.model_validate(table))
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'table'}: {e['msg']}" for e in exc.errors()
            )
            raise MergePolicyError(
                f"[[merge]] table #{i} (pattern {table.get('pattern')!r}): {problems}"
            ) from None
    return tuple(rules)


def find_rule(rules: Sequence[MergeRule], key: str) -> MergeRule | None:
    """The first rule whose pattern matches `key`, or None."""
    for rule in rules:
        if rule.matches(key):
            return rule
    return None


def canonical(value: Any) -> Any:
    """A hashable form of a msgpack value in which equal values are equal."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str | bytes):
        return ("s" if isinstance(value, str) else "y", value)
    if isinstance(value, list | tuple):
        return ("l", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        items = [(canonical(k), canonical(v)) for k, v in value.items()]
        return ("d", tuple(sorted(items, key=repr)))
    return ("o", repr(value))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def decide(
    rule: MergeRule,
    current: Any,
    proposals: Sequence[Proposal],
    function: CustomFunction | None = None,
) -> Decision:
    """The decision of `rule` on the open `proposals` of an entry whose value is `current`
    (None when absent or deleted). `function` is the custom function the compactor's
    allow-list resolved `rule.function` to (strategy 'custom'; None escalates). Never
    raises for bad values: they escalate."""
    ordered = sorted(proposals, key=lambda p: (p.revision, p.proposer))
    if not ordered:
        return Wait("no open proposals")
    strategy = rule.strategy
    if strategy == "last-writer-wins":
        return Merged(ordered[-1].value)
    if strategy == "highest-confidence":
        # no confidence ranks lowest; of equal confidence the latest wins (max() keeps the
        # first of equals, and the list is walked newest first)
        best = max(reversed(ordered), key=lambda p: -1.0 if p.confidence is None else p.confidence)
        if rule.min_confidence is not None and (
            best.confidence is None or best.confidence < rule.min_confidence
        ):
            return Escalate(
                f"best confidence {best.confidence} (by {best.proposer}) is below "
                f"{rule.min_confidence}"
            )
        return Merged(best.value)
    if strategy == "majority":
        return _majority(rule, ordered)
    if strategy == "escalate":
        return Escalate("the policy sends these proposals to a human")
    if strategy == "custom":
        return _custom(rule, current, ordered, function)
    return _combine(rule, current, ordered)


def _majority(rule: MergeRule, ordered: list[Proposal]) -> Decision:
    if len(ordered) < rule.quorum:
        return Wait(f"{len(ordered)} of the {rule.quorum} proposals the quorum needs")
    votes: dict[Any, list[Proposal]] = {}
    for p in ordered:
        votes.setdefault(canonical(p.value), []).append(p)
    ranked = sorted(votes.values(), key=len, reverse=True)
    if len(ranked) > 1 and len(ranked[0]) == len(ranked[1]):
        tied = sum(1 for group in ranked if len(group) == len(ranked[0]))
        return Escalate(f"a tie: {tied} values have {len(ranked[0])} votes each")
    return Merged(ranked[0][-1].value)


def _custom(
    rule: MergeRule, current: Any, ordered: list[Proposal], function: CustomFunction | None
) -> Decision:
    if function is None:
        return Escalate(f"custom merge function {rule.function!r} is not loaded")
    try:
        result = function(current, tuple(ordered))
    except Exception as exc:  # a failing user function escalates with its reason
        return Escalate(f"custom merge function {rule.function!r} raised {exc!r}")
    if isinstance(result, Merged | Escalate | Wait):
        return result
    return Merged(result)


def _combine(rule: MergeRule, current: Any, ordered: list[Proposal]) -> Decision:
    strategy = rule.strategy
    values = [p.value for p in ordered]
    whose = [p.proposer for p in ordered]
    if rule.include_current and current is not None:
        values.insert(0, current)
        whose.insert(0, "the current value")
    if strategy == "set-union":
        out: list[Any] = []
        seen: set[Any] = set()
        for value, who in zip(values, whose, strict=True):
            if not isinstance(value, list):
                return Escalate(f"set-union needs lists; {who} has {type(value).__name__}")
            for item in value:
                c = canonical(item)
                if c not in seen:
                    seen.add(c)
                    out.append(item)
        return Merged(out)
    for value, who in zip(values, whose, strict=True):
        if strategy == "counter-sum" and not _number(value):
            return Escalate(f"counter-sum needs numbers; {who} has {type(value).__name__}")
        if strategy in ("max", "min") and not (_number(value) or isinstance(value, str)):
            return Escalate(f"{strategy} needs numbers or strings; {who} has {value!r}")
    if strategy == "counter-sum":
        return Merged(sum(values))
    if len({isinstance(v, str) for v in values}) > 1:
        return Escalate(f"{strategy} cannot compare numbers with strings")
    return Merged(max(values) if strategy == "max" else min(values))
