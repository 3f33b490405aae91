"""The invariant checks are pure functions over recorded facts: each violation kind is fed
in by hand and must be reported (and a clean run must pass)."""

from __future__ import annotations

from typing import Any

import pytest

from blackboard.scenario.facts import (
    AckFact,
    ActivationFact,
    BoardFacts,
    Facts,
    ItemFacts,
    ProcessFact,
    Version,
)
from blackboard.scenario.invariants import (
    CounterCheck,
    Expectations,
    check_acknowledged_writes,
    check_all,
    check_clean_shutdown,
    check_duplicate_effects,
    check_escalations,
    check_final_state,
    check_stuck_activations,
    completions,
    retry_account,
)

EXP = Expectations(
    final_field="status",
    final_equals="resolved",
    counters=[CounterCheck("b", ("stats/resolved", "stats/escalated"), 2)],
    escalation_role="human",
    escalation_counter=("b", "stats/escalated"),
)


def v(version: int, value: Any, t: int = 0, *, deleted: bool = False, writer: str = "w") -> Version:
    return Version(version, t or 1000 + version * 10, value, deleted, writer)


def item(index: int, final: list[Version], effects: list[Version] | None = None) -> ItemFacts:
    key = f"ticket/{index}"
    it = ItemFacts(index, "b", key, 1000, key, final, 1 if final else 0)
    res = effects if effects is not None else [v(1, {"status": "resolved"})]
    it.effects[f"b:{key}/resolution"] = (False, res)
    return it


def healthy() -> Facts:
    """Two tickets resolved once each, one through a human; every write kept."""
    new, done = {"status": "new"}, {"status": "resolved"}
    items = [item(0, [v(1, new), v(2, done, 1500)]), item(1, [v(1, new), v(2, done, 1900)])]
    acks = [
        AckFact("item", "b", "ticket/0", 1, new, v(1, new), 2, 1),
        AckFact("item", "b", "ticket/1", 1, new, v(1, new), 2, 1),
        AckFact("probe", "b", "probe/0", 1, {"n": 0}, v(1, {"n": 0}), 1, 1),
    ]
    acts = [
        ActivationFact("triage:1", "b", "triage", "ticket/0", "done"),
        ActivationFact("resolver:1", "b", "resolver", "ticket/0/answer", "done"),
        ActivationFact("triage:2", "b", "triage", "ticket/1", "done"),
        ActivationFact("human:1", "b", "human", "ticket/1/answer", "done", "specialist"),
    ]
    board = BoardFacts(
        "b",
        pending={"triage": 0},
        lag={"triage": 0},
        counters={"stats/resolved": 1, "stats/escalated": 1},
        activations=acts,
    )
    procs = [ProcessFact("controller-0", "controller", 1, [], 0)]
    return Facts(items, acks, {"b": board}, procs, items_expected=2)


def names_failing(facts: Facts) -> set[str]:
    return {r.name for r in check_all(facts, EXP) if not r.ok}


def test_a_healthy_run_passes_every_check() -> None:
    results = check_all(healthy(), EXP)
    assert [r.name for r in results] == [
        "final_state", "acknowledged_writes", "no_duplicate_effect", "no_stuck_activations",
        "escalations", "clean_shutdown",
    ]  # fmt: skip
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert completions(healthy(), EXP) == [(1500, 500), (1900, 900)]


def test_a_lost_acknowledged_write_is_reported() -> None:
    facts = healthy()
    facts.acks[2] = AckFact("probe", "b", "probe/0", 1, {"n": 0}, None, 0, 0)  # entry gone
    r = check_acknowledged_writes(facts)
    assert (
        not r.ok
        and r.count == 1
        and "probe b:probe/0 v1: acknowledged, and the entry is gone" in r.violations[0]
    )
    facts.acks[2] = AckFact("probe", "b", "probe/0", 3, {"n": 0}, None, 2, 1)  # rolled back
    assert "but the board has v2" in check_acknowledged_writes(facts).violations[0]
    facts.acks[2] = AckFact("probe", "b", "probe/0", 1, {"n": 0}, v(1, {"n": 9}), 1, 1)
    assert "differs" in check_acknowledged_writes(facts).violations[0]
    assert names_failing(facts) == {"acknowledged_writes"}


def test_a_trimmed_version_with_newer_ones_is_not_a_loss() -> None:
    facts = healthy()
    facts.acks[0] = AckFact("item", "b", "ticket/0", 1, {"status": "new"}, None, 5, 3)
    r = check_acknowledged_writes(facts)
    assert r.ok and "history trimmed" in r.summary


def test_a_double_effect_is_reported() -> None:
    facts = healthy()
    twice = [
        v(1, {"status": "resolved"}, writer="resolver-0"),
        v(2, {"status": "resolved"}, writer="resolver-1"),
    ]
    facts.items[0].effects["b:ticket/0/resolution"] = (False, twice)
    r = check_duplicate_effects(facts, EXP)
    assert not r.ok and "written 2 times" in r.violations[0] and "resolver-1" in r.violations[0]
    assert names_failing(facts) == {"no_duplicate_effect"}


def test_a_missing_effect_and_counters_that_do_not_add_up() -> None:
    facts = healthy()
    facts.items[1].effects["b:ticket/1/resolution"] = (False, [])
    facts.boards["b"].counters["stats/resolved"] = 2  # counted twice
    r = check_duplicate_effects(facts, EXP)
    assert r.count == 2
    assert "never happened" in r.violations[0]
    assert "= 3, expected 2 (duplicated effect)" in r.violations[1]
    facts.items[1].effects["b:ticket/1/resolution"] = (True, [])  # optional: fine
    facts.boards["b"].counters["stats/resolved"] = None
    r = check_duplicate_effects(facts, EXP)
    assert r.count == 1 and "(missing effect)" in r.violations[0]


def test_stuck_activations_of_every_kind_are_reported() -> None:
    facts = healthy()
    b = facts.boards["b"]
    b.open_activations = ["resolver:9"]
    b.pending["triage"] = 2
    b.lag["triage"] = 1
    b.waiting = 3
    b.activations.append(
        ActivationFact("resolver:8", "b", "resolver", "ticket/5/answer", "granted")
    )
    r = check_stuck_activations(facts)
    assert not r.ok and r.count == 5
    text = "\n".join(r.violations)
    for part in (
        "resolver:9 still open",
        "2 activation(s) of triage claimed",
        "1 activation(s) of triage granted and never delivered",
        "3 candidate(s) still waiting",
        "resolver:8 (resolver on ticket/5/answer) is granted",
    ):
        assert part in text
    assert names_failing(facts) == {"no_stuck_activations"}


def test_final_state_twice_left_or_never() -> None:
    new, done = {"status": "new"}, {"status": "resolved"}
    facts = healthy()
    facts.items[0].final_history = [v(1, new), v(2, done), v(3, new), v(4, done)]
    facts.items[1].final_history = [v(1, new), v(2, done), v(3, {"status": "reopened"})]
    r = check_final_state(facts, EXP)
    assert r.count == 2
    assert "reached its final state 2 times (v2, v4)" in r.violations[0]
    assert "left its final state (ticket/1 is now v3)" in r.violations[1]
    facts.items[0].final_history = [v(1, new)]
    r = check_final_state(facts, EXP)
    assert "never reached its final state" in r.violations[0] and "lost" in r.violations[0]


def test_a_failed_item_is_accounted_only_when_allowed() -> None:
    facts = healthy()
    facts.items[0].final_history = [v(1, {"status": "new"})]
    facts.boards["b"].activations.append(
        ActivationFact("specialist:3", "b", "specialist", "ticket/0/triage", "failed", error="boom")
    )
    r = check_final_state(facts, EXP)
    assert not r.ok and "ended in a dead letter: specialist:3 (boom)" in r.violations[0]
    allowed = Expectations("status", "resolved", allowed_failures=1)
    r = check_final_state(facts, allowed)
    assert r.ok and "1 ended in a dead letter, not lost (allowed 1)" in r.summary


def test_retries_and_dead_letters_are_counted_per_role_and_apart() -> None:
    facts = healthy()
    acts = facts.boards["b"].activations
    # ticket/0 was triaged on the third attempt and resolved: retried, not failed
    acts[0] = ActivationFact("triage:1", "b", "triage", "ticket/0", "done", attempt=3)
    # ticket/2 never got its answer: the specialist failed after 5 attempts (a dead letter)
    facts.items.append(item(2, [v(1, {"status": "new"})], effects=[]))
    facts.items_expected = 3
    acts += [
        ActivationFact("triage:3", "b", "triage", "ticket/2", "done", attempt=2),
        ActivationFact("specialist:9", "b", "specialist", "ticket/2/triage", "failed",
                       error="failed after 5 of 5 attempts", attempt=5),
    ]  # fmt: skip
    exp = Expectations("status", "resolved", allowed_failures=1)
    account = retry_account(facts, exp)
    assert account.retries == {"specialist": 4, "triage": 3}
    assert account.retried_activations == 3
    assert account.dead_letters == {"specialist": 1}
    assert account.retried_items == 1 and account.failed_items == 1
    assert account.as_dict()["dead_letters"] == {
        "total": 1, "by_role": {"specialist": 1}, "items": 1,
    }  # fmt: skip
    r = check_final_state(facts, exp)
    assert r.ok, r.violations  # the dead letter is accounted, not lost
    assert "1 done after retries" in r.summary and "1 ended in a dead letter, not lost" in r.summary
    # retried activations that ended are not stuck; a retry still scheduled at the end is
    assert check_stuck_activations(facts).ok
    acts.append(ActivationFact("resolver:4", "b", "resolver", "ticket/1/answer", "retrying"))
    [stuck] = check_stuck_activations(facts).violations
    assert "resolver:4 (resolver on ticket/1/answer) is retrying" in stuck


def test_a_cancelled_activation_is_neither_stuck_nor_lost() -> None:
    facts = healthy()
    facts.items[0].final_history = [v(1, {"status": "new"})]
    facts.boards["b"].activations.append(
        ActivationFact("resolver:5", "b", "resolver", "ticket/0/answer", "cancelled")
    )
    r = check_final_state(facts, Expectations("status", "resolved", allowed_failures=1))
    assert r.ok and "1 cancelled, not lost (allowed 1)" in r.summary
    assert check_stuck_activations(facts).ok


def test_missing_acknowledged_items_are_reported() -> None:
    facts = healthy()
    facts.items_expected = 3
    assert "only 2 of 3 acknowledged items" in check_final_state(facts, EXP).violations[-1]


def test_escalations_must_finish_and_match_their_counter() -> None:
    facts = healthy()
    acts = facts.boards["b"].activations
    acts[3] = ActivationFact("human:1", "b", "human", "ticket/1/answer", "failed", "specialist")
    acts.append(ActivationFact("human:2", "b", "human", "ticket/7/answer", "granted"))
    r = check_escalations(facts, EXP)
    assert r.count == 3
    assert "escalation human:1 on ticket/1/answer is failed" in r.violations[0]
    assert "human:2 on ticket/7/answer is granted" in r.violations[1]
    assert "counter b:stats/escalated = 1, but 2 activation(s) went to human" in r.violations[2]


@pytest.mark.parametrize(
    ("proc", "expected"),
    [
        (
            ProcessFact("triage-0", "agent", 2, ["exited with code 1 on its own"], 0),
            "triage-0: exited with code 1",
        ),
        (ProcessFact("controller-0", "controller", 1, [], -9), "exit code -9 on the final SIGTERM"),
        (ProcessFact("resolver-0", "agent", 2, [], 0, [1]), "exit code 1 when stopped by a fault"),
    ],
)
def test_crashes_and_unclean_stops_are_reported(proc: ProcessFact, expected: str) -> None:
    facts = healthy()
    facts.processes.append(proc)
    r = check_clean_shutdown(facts)
    assert not r.ok and expected in r.violations[0]


def test_violations_are_counted_in_full_and_listed_up_to_a_limit() -> None:
    facts = healthy()
    facts.acks = [AckFact("probe", "b", f"probe/{n}", 1, {}, None, 0, 0) for n in range(50)]
    r = check_acknowledged_writes(facts)
    assert r.count == 50 and len(r.violations) == 20 and r.summary.startswith("50 of 50")


def test_disabled_checks_are_not_run() -> None:
    exp = Expectations("status", "resolved", enabled=frozenset({"final_state"}))
    assert [r.name for r in check_all(healthy(), exp)] == ["final_state"]
