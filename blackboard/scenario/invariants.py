"""The invariants a scenario run checks, as pure functions over `Facts` (no I/O; imports
scenario.facts only).

- final_state: every item reached its final state exactly once (an item whose chain ended
  in a dead letter, an activation that failed after its last attempt, is *failed*, visible
  and accounted, at most `allowed_failures` of them; one with neither is *lost*);
- acknowledged_writes: every write the runner saw acknowledged is still on the board;
- no_duplicate_effect: effects keyed per item were written once, counters add up;
- no_stuck_activations: nothing open, claimed, undelivered or waiting at the end;
- escalations: every activation granted to the human role finished, and matches its counter;
- clean_shutdown: no process died on its own, and each stopped with exit code 0 on SIGTERM.

`retry_account` counts, for the report, the retries per role (runs that failed and ran
again) apart from the dead letters and the items that ended as one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blackboard.scenario.facts import Facts, ItemFacts, Version

__all__ = [
    "CounterCheck",
    "Expectations",
    "InvariantResult",
    "RetryAccount",
    "check_acknowledged_writes",
    "check_all",
    "check_clean_shutdown",
    "check_duplicate_effects",
    "check_escalations",
    "check_final_state",
    "check_stuck_activations",
    "completions",
    "item_index",
    "lookup",
    "retry_account",
]

_MISSING = object()
SHOWN = 20
"""violations listed per invariant (the count is always exact)"""


@dataclass(slots=True)
class InvariantResult:
    name: str
    ok: bool
    summary: str
    violations: list[str] = field(default_factory=list)
    count: int = 0
    """how many violations in all (the list keeps the first SHOWN)"""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "summary": self.summary,
            "violations": self.violations,
            "count": self.count,
        }


@dataclass(frozen=True, slots=True)
class CounterCheck:
    board: str
    keys: tuple[str, ...]
    equals: int


@dataclass(slots=True)
class Expectations:
    """What the scenario asks for, resolved to plain values."""

    final_field: str | None = None
    final_equals: Any = None
    allowed_failures: int = 0
    counters: list[CounterCheck] = field(default_factory=list)
    escalation_role: str = "human"
    escalation_counter: tuple[str, str] | None = None  # (board, key)
    enabled: frozenset[str] = frozenset(
        {
            "final_state",
            "acknowledged_writes",
            "no_duplicate_effect",
            "no_stuck_activations",
            "escalations",
            "clean_shutdown",
        }
    )


def lookup(value: Any, path: str) -> Any:
    """The value at dotted `path` ('' = the whole value); a private sentinel when absent."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _is_final(v: Version, fld: str | None, equals: Any) -> bool:
    if v.deleted:
        return False
    return fld is None or lookup(v.value, fld) == equals


def _transitions(item: ItemFacts, fld: str | None, equals: Any) -> list[Version]:
    """The versions at which the item entered its final state."""
    out = []
    before = False
    for v in item.final_history:
        now = _is_final(v, fld, equals)
        if now and not before:
            out.append(v)
        before = now
    return out


def _result(name: str, bad: list[str], total: int, what: str, extra: str = "") -> InvariantResult:
    ok = not bad
    summary = f"{total} {what} checked" + (f", {extra}" if extra else "")
    if not ok:
        summary = f"{len(bad)} of {total} {what} violate it" + (f"; {extra}" if extra else "")
    return InvariantResult(name, ok, summary, bad[:SHOWN], len(bad))


def item_index(where: dict[tuple[str, str], int], board: str, key: str) -> int | None:
    """The item an activation on `key` works for: the one whose key (in `where`, (board,
    item key) -> index) is `key` or the longest prefix of it that ends at a '/'."""
    parts = key.split("/")
    for n in range(len(parts), 0, -1):
        idx = where.get((board, "/".join(parts[:n])))
        if idx is not None:
            return idx
    return None


_UNSUCCESSFUL = {"failed": "dead letter", "cancelled": "cancelled"}
"""activation states that end without success, as the checks name them"""


def _by_item(facts: Facts) -> dict[int, list[str]]:
    """Activations that ended without success (dead letters, cancelled) per item: those on
    the item's key or a key under it."""
    where: dict[tuple[str, str], int] = {(i.board, i.key): i.index for i in facts.items}
    out: dict[int, list[str]] = {}
    for b in facts.boards.values():
        for a in b.activations:
            how = _UNSUCCESSFUL.get(a.state)
            idx = None if how is None else item_index(where, a.board, a.key)
            if idx is not None:
                out.setdefault(idx, []).append(f"a {how}: {a.id} ({a.error or 'failed'})")
    return out


@dataclass(slots=True)
class RetryAccount:
    """Retries and dead letters of a run, per role (``board/role`` with several boards)."""

    retries: dict[str, int] = field(default_factory=dict)
    """runs that failed and ran (or will run) again"""
    retried_activations: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    """activations that failed after their last attempt (or raised Fail)"""
    retried_items: int = 0
    """items that reached their final state with at least one retry on the way"""
    failed_items: int = 0
    """items that never reached their final state and ended in a dead letter"""

    def as_dict(self) -> dict[str, Any]:
        """The report's ``retries`` and ``dead_letters``."""
        return {
            "retries": {
                "total": sum(self.retries.values()),
                "by_role": dict(self.retries),
                "activations": self.retried_activations,
                "items": self.retried_items,
            },
            "dead_letters": {
                "total": sum(self.dead_letters.values()),
                "by_role": dict(self.dead_letters),
                "items": self.failed_items,
            },
        }


def retry_account(facts: Facts, exp: Expectations) -> RetryAccount:
    """Count retries and dead letters per role, and the items they touched."""
    out = RetryAccount()
    where: dict[tuple[str, str], int] = {(i.board, i.key): i.index for i in facts.items}
    retried: set[int] = set()
    dead: set[int] = set()
    several = len(facts.boards) > 1
    for b in facts.boards.values():
        for a in b.activations:
            role = f"{b.name}/{a.role}" if several else a.role
            if a.retries:
                out.retries[role] = out.retries.get(role, 0) + a.retries
                out.retried_activations += 1
            if a.state == "failed":
                out.dead_letters[role] = out.dead_letters.get(role, 0) + 1
            if a.retries or a.state == "failed":
                idx = item_index(where, a.board, a.key)
                if idx is not None and a.retries:
                    retried.add(idx)
                if idx is not None and a.state == "failed":
                    dead.add(idx)
    for item in facts.items:
        if _transitions(item, exp.final_field, exp.final_equals):
            out.retried_items += item.index in retried
        else:
            out.failed_items += item.index in dead
    out.retries = dict(sorted(out.retries.items()))
    out.dead_letters = dict(sorted(out.dead_letters.items()))
    return out


def check_final_state(facts: Facts, exp: Expectations) -> InvariantResult:
    """Every item reached its final state exactly once and stayed there."""
    failed = _by_item(facts)
    bad: list[str] = []
    failures: list[str] = []
    for item in facts.items:
        entered = _transitions(item, exp.final_field, exp.final_equals)
        last = item.final_history[-1] if item.final_history else None
        where = f"item {item.index} ({item.board}:{item.key})"
        if len(entered) > 1:
            vs = ", ".join(f"v{v.version}" for v in entered)
            bad.append(f"{where}: reached its final state {len(entered)} times ({vs})")
        elif len(entered) == 1 and (
            last is None or not _is_final(last, exp.final_field, exp.final_equals)
        ):
            now = last.version if last else 0
            bad.append(f"{where}: left its final state ({item.final_key} is now v{now})")
        elif not entered:
            if item.index in failed:
                failures.append(f"{where}: ended in {failed[item.index][0]}")
            else:
                bad.append(
                    f"{where}: never reached its final state ({item.final_key}) and no "
                    "activation ended as a dead letter: lost"
                )
    notes = []
    retried = retry_account(facts, exp).retried_items
    if retried:
        notes.append(f"{retried} done after retries")
    if failures:
        dead = sum(1 for f in failures if ": ended in a dead letter" in f)
        kinds = [f"{dead} ended in a dead letter"] if dead else []
        kinds += [f"{len(failures) - dead} cancelled"] if dead < len(failures) else []
        allowed = exp.allowed_failures
        notes.append(f"{' and '.join(kinds)}, not lost (allowed {allowed})")
        if len(failures) > exp.allowed_failures:
            bad = failures + bad
    if len(facts.items) < facts.items_expected:
        bad.append(
            f"only {len(facts.items)} of {facts.items_expected} acknowledged items were found"
        )
    return _result("final_state", bad, len(facts.items), "items", ", ".join(notes))


def check_acknowledged_writes(facts: Facts) -> InvariantResult:
    """Every acknowledged write is on the board with the value acknowledged (or, when its
    version's history was trimmed, the entry went on to newer versions)."""
    bad: list[str] = []
    trimmed = 0
    for a in facts.acks:
        where = f"{a.kind} {a.board}:{a.key} v{a.version}"
        if a.stored is None:
            if a.current_version == 0:
                bad.append(f"{where}: acknowledged, and the entry is gone")
            elif a.oldest_retained > a.version and a.current_version > a.version:
                trimmed += 1
            else:
                bad.append(f"{where}: acknowledged, but the board has v{a.current_version}")
        elif a.stored.deleted or a.stored.value != a.value:
            bad.append(f"{where}: stored value {a.stored.value!r} differs from {a.value!r}")
    extra = f"{trimmed} only by version (history trimmed)" if trimmed else ""
    return _result("acknowledged_writes", bad, len(facts.acks), "acknowledged writes", extra)


def check_duplicate_effects(facts: Facts, exp: Expectations) -> InvariantResult:
    """Effects keyed per item happened once (one write); counters sum to what they should."""
    bad: list[str] = []
    checked = 0
    for item in facts.items:
        for key, (optional, versions) in item.effects.items():
            checked += 1
            writes = versions[-1].version if versions else 0
            if writes > 1:
                who = ", ".join(f"v{v.version} by {v.writer}" for v in versions[-3:])
                bad.append(f"item {item.index}: effect {key} written {writes} times ({who})")
            elif writes == 0 and not optional:
                bad.append(f"item {item.index}: effect {key} never happened")
    for c in exp.counters:
        checked += 1
        values = facts.boards[c.board].counters if c.board in facts.boards else {}
        total: float = 0
        for key in c.keys:
            v = values.get(key)
            total += v if isinstance(v, int | float) and not isinstance(v, bool) else 0
        if total != c.equals:
            what = "duplicated" if total > c.equals else "missing"
            bad.append(
                f"counter {' + '.join(c.keys)} on {c.board} = {total}, expected {c.equals} "
                f"({what} effect)"
            )
    return _result("no_duplicate_effect", bad, checked, "effects and counters")


def check_stuck_activations(facts: Facts) -> InvariantResult:
    """No activation open, claimed, granted-but-undelivered or waiting at the end."""
    bad: list[str] = []
    total = 0
    for b in facts.boards.values():
        total += len(b.activations)
        for act_id in b.open_activations[:SHOWN]:
            bad.append(f"{b.name}: activation {act_id} still open")
        if len(b.open_activations) > SHOWN:
            bad += [f"{b.name}: ..."] * (len(b.open_activations) - SHOWN)
        for role, n in sorted(b.pending.items()):
            if n:
                bad.append(f"{b.name}: {n} activation(s) of {role} claimed and never settled")
        for role, n in sorted(b.lag.items()):
            if n:
                bad.append(f"{b.name}: {n} activation(s) of {role} granted and never delivered")
        if b.waiting:
            bad.append(f"{b.name}: {b.waiting} candidate(s) still waiting on the agenda")
        open_ids = set(b.open_activations)
        for a in b.activations:
            if a.state not in ("done", "failed", "cancelled") and a.id not in open_ids:
                bad.append(f"{b.name}: activation {a.id} ({a.role} on {a.key}) is {a.state}")
    return _result("no_stuck_activations", bad, total, "activations")


def check_escalations(facts: Facts, exp: Expectations) -> InvariantResult:
    """Every activation granted to the human role finished; the human counter agrees."""
    bad: list[str] = []
    human = [
        a for b in facts.boards.values() for a in b.activations if a.role == exp.escalation_role
    ]
    for a in human:
        if a.state != "done":
            bad.append(f"{a.board}: escalation {a.id} on {a.key} is {a.state}")
    escalated = sum(1 for b in facts.boards.values() for a in b.activations if a.escalated_from)
    if exp.escalation_counter is not None:
        board, key = exp.escalation_counter
        value = facts.boards[board].counters.get(key) if board in facts.boards else None
        count = value if isinstance(value, int) else 0
        if count != len(human):
            bad.append(
                f"counter {board}:{key} = {count}, but {len(human)} activation(s) went to "
                f"{exp.escalation_role}"
            )
    extra = f"{escalated} escalated by low confidence, {len(human)} to {exp.escalation_role}"
    return _result("escalations", bad, len(human), "human escalations", extra)


def check_clean_shutdown(facts: Facts) -> InvariantResult:
    """No process exited unless a fault or the final stop made it; SIGTERM gave exit 0."""
    bad: list[str] = []
    for p in facts.processes:
        bad += [f"{p.name}: {c}" for c in p.crashes]
        if p.stop_code not in (None, 0):
            bad.append(f"{p.name}: exit code {p.stop_code} on the final SIGTERM")
        bad += [f"{p.name}: exit code {c} when stopped by a fault" for c in p.fault_stops if c]
    return _result("clean_shutdown", bad, len(facts.processes), "processes")


def check_all(facts: Facts, exp: Expectations) -> list[InvariantResult]:
    """Every enabled invariant, in a fixed order."""
    checks: dict[str, Callable[[], InvariantResult]] = {
        "final_state": lambda: check_final_state(facts, exp),
        "acknowledged_writes": lambda: check_acknowledged_writes(facts),
        "no_duplicate_effect": lambda: check_duplicate_effects(facts, exp),
        "no_stuck_activations": lambda: check_stuck_activations(facts),
        "escalations": lambda: check_escalations(facts, exp),
        "clean_shutdown": lambda: check_clean_shutdown(facts),
    }
    return [check() for name, check in checks.items() if name in exp.enabled]


def completions(facts: Facts, exp: Expectations) -> list[tuple[int, int]]:
    """(time done, latency) in ms for every item that reached its final state: from the
    item's creation to the first version of its final entry that was final."""
    out = []
    for item in facts.items:
        entered = _transitions(item, exp.final_field, exp.final_equals)
        if entered and item.created_ms is not None:
            done = entered[0].time_ms
            out.append((done, max(0, done - item.created_ms)))
    out.sort()
    return out
