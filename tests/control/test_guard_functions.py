"""Each guard as a pure function or state machine, on a fake clock (no Redis, no sleeps)."""

from __future__ import annotations

from blackboard.control.guards import (
    Breaker,
    BreakerState,
    TokenBucket,
    aged_priority,
    aging_key,
    backpressure,
    confidence_of,
    consensus,
    dedupe,
    escalation,
    loop_guard,
    resource_free,
)
from blackboard.control.rules import MISSING


def test_dedupe_and_loop_guard() -> None:
    assert dedupe("a", {"b"}, "r", "k", 1).ok
    refused = dedupe("a", {"a"}, "r", "k", 1)
    assert not refused.ok and not refused.wait and "(r, k, v1)" in refused.reason
    assert loop_guard(8, 8).ok
    deep = loop_guard(9, 8)
    assert not deep.ok and not deep.wait and "depth 9 > 8" in deep.reason


def test_backpressure_and_resource_wait_never_refuse() -> None:
    assert backpressure(4, 5).ok
    full = backpressure(5, 5)
    assert not full.ok and full.wait
    assert resource_free("t/1", {"t/2"}).ok
    busy = resource_free("t/1", {"t/1"})
    assert not busy.ok and busy.wait


def test_escalation() -> None:
    assert confidence_of({"confidence": 0.5}, "confidence") == 0.5
    assert confidence_of({"confidence": True}, "confidence") is None
    assert confidence_of({"x": {"c": 1}}, "x.c") == 1.0
    assert confidence_of("text", "confidence") is None
    low = escalation(0.6, 0.8, "triage", "specialist")
    assert not low.ok and "to specialist" in low.reason
    assert escalation(0.8, 0.8, "triage", "specialist").ok
    assert escalation(None, 0.8, "triage", "specialist").ok  # no confidence: no escalation
    assert escalation(0.1, 0.0, "triage", "specialist").ok  # threshold 0: off
    assert escalation(0.1, 0.8, "human", None).ok  # nobody above a human


def test_consensus() -> None:
    agreed = consensus(["fraud", "ok", "fraud"], 2, 3)
    assert agreed.decided and agreed.agreed == "fraud" and agreed.votes == 2
    waiting = consensus(["fraud", MISSING], 2, 3)
    assert not waiting.decided and not waiting.split and waiting.present == 1
    split = consensus(["fraud", "ok", "review"], 2, 3)
    assert split.split and not split.decided
    # structured values compare by content; the first value to reach k wins
    same = consensus([{"v": [1, 2]}, {"v": [1, 2]}], 2, 2)
    assert same.agreed == {"v": [1, 2]}


def test_token_bucket_on_a_fake_clock() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, now=100.0)
    for _ in range(2):
        assert bucket.check(100.0).ok
        bucket.take(100.0)
    spent = bucket.check(100.0)
    assert not spent.ok and spent.wait
    assert bucket.next_at(100.0) == 100.5
    assert bucket.check(100.5).ok


def test_breaker_opens_half_opens_and_closes() -> None:
    b = Breaker(failures=3, cooldown=10.0)
    for i in range(2):
        assert not b.record(f"a{i}", False, now=0.0)
    assert b.check(0.0).ok
    assert b.record("a2", False, now=1.0)  # third failure in a row: open
    assert b.state is BreakerState.OPEN
    held = b.check(5.0)
    assert not held.ok and held.wait and "open" in held.reason
    assert b.next_at() == 11.0
    trial = b.check(11.0)
    assert trial.ok and b.state is BreakerState.HALF_OPEN
    b.granted("t1")
    assert not b.check(11.5).ok  # one trial at a time
    assert not b.record("late", True, now=11.6)  # an older activation does not decide
    assert b.record("t1", False, now=12.0)  # the trial failed: open again
    assert b.state is BreakerState.OPEN and b.next_at() == 22.0
    assert b.check(22.0).ok
    b.granted("t2")
    assert b.record("t2", True, now=23.0)
    assert b.state is BreakerState.CLOSED and b.check(23.0).ok


def test_breaker_state_round_trips_and_a_half_open_one_cools_down_again() -> None:
    b = Breaker(3, 10.0)
    b.state, b.opened_at, b.streak = BreakerState.HALF_OPEN, 5.0, 3
    c = Breaker(3, 10.0)
    c.load(b.dump())
    assert c.state is BreakerState.OPEN and c.streak == 3


def test_aging_orders_like_aged_priority() -> None:
    # a priority-1 candidate waiting since t=0 passes a priority-10 one arriving at t=20
    aging = 0.5
    old, new = (1, 0.0), (10, 20.0)
    assert aged_priority(*old, now=20.0, aging=aging) > aged_priority(*new, now=20.0, aging=aging)
    assert aging_key(*old, aging) < aging_key(*new, aging)
    assert aging_key(10, 0.0, aging) < aging_key(1, 0.0, aging)
