"""The compactor against a real server: merging by policy, escalation, lease, fencing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import blackboard
from blackboard.board.proposals import merged_proposals
from blackboard.board.retention import Retention
from blackboard.compaction.compactor import POLICY_KEY, Compactor
from blackboard.compaction.merge import MergeRule, rules_from_document
from blackboard.compaction.reconcile import escalation_key, resolve_escalation

NO_RETENTION = Retention(
    log_max_events=None, log_max_age=None, history_max_age=None, activation_max_age=None
)


def rules(*tables: dict[str, Any]) -> tuple[MergeRule, ...]:
    return rules_from_document({"merge": list(tables)})


def compactor(
    board: blackboard.Board, *tables: dict[str, Any], **kw: Any
) -> tuple[Compactor, list[str]]:
    lines: list[str] = []
    kw.setdefault("retention", NO_RETENTION)
    kw.setdefault("rules", rules(*tables) if tables else None)
    return Compactor(board, name="compactor-1", report=lines.append, **kw), lines


async def propose_all(board: blackboard.Board, key: str, values: dict[str, Any]) -> None:
    for who, value in values.items():
        await board.bind(writer=who).propose(key, value)


async def test_merges_divergent_entries_by_the_rule_for_their_key(board: blackboard.Board) -> None:
    await propose_all(board, "title/1", {"a": "Printer", "b": "printer on fire"})
    await propose_all(board, "votes/1", {"a": "yes", "b": "no", "c": "yes"})
    await propose_all(board, "free/1", {"a": 1, "b": 2})
    c, lines = compactor(
        board,
        {"pattern": "title/*", "strategy": "last-writer-wins"},
        {"pattern": "votes/*", "strategy": "majority", "quorum": 3},
    )
    stats = await c.run(until_idle=True)
    assert stats.merged == 2
    assert (await board.get("title/1")).value == "printer on fire"  # type: ignore[union-attr]
    votes = await board.get("votes/1")
    assert votes is not None and votes.value == "yes" and votes.kind == "merge"
    assert votes.writer == "compactor-1"
    assert await board.proposals("votes/1") == []
    assert await board.divergent() == ["free/1"]  # no rule: left alone, and said so
    assert any("free/1" in line and "no merge rule" in line for line in lines)
    raw = await board.redis.xrange(board.keys_.log, f"{votes.revision}-1", f"{votes.revision}-1")
    assert sorted(p for p, _ in merged_proposals(raw[0][1])) == ["a", "b", "c"]
    assert await board.redis.get(board.keys_.compactor_lease) is None  # released at the end


async def test_rules_come_from_the_stored_policy_and_reload(board: blackboard.Board) -> None:
    await propose_all(board, "n/1", {"a": 3, "b": 5})
    c, lines = compactor(board)
    await c.run(until_idle=True)
    assert await board.divergent() == ["n/1"]
    await board.put(POLICY_KEY, {"name": "p", "merge": [{"pattern": "n/*", "strategy": "max"}]})
    await c.run(until_idle=True)
    assert (await board.get("n/1")).value == 5  # type: ignore[union-attr]
    await board.put(POLICY_KEY, {"merge": [{"pattern": "n/*", "strategy": "nope"}]})
    await propose_all(board, "n/1", {"a": 1, "b": 2})
    await c.run(until_idle=True)  # a bad policy is reported; the earlier rules stay
    assert any("keeping the earlier rules" in line for line in lines)
    assert (await board.get("n/1")).value == 5  # type: ignore[union-attr]


async def test_combining_rules_settle_agreeing_proposals_too(board: blackboard.Board) -> None:
    await board.put("hits", 10)
    await propose_all(board, "hits", {"a": 1, "b": 1})  # equal values: not divergent
    c, _ = compactor(board, {"pattern": "hits", "strategy": "counter-sum"})
    await c.run(until_idle=True)
    assert (await board.get("hits")).value == 12  # type: ignore[union-attr]
    c2, _ = compactor(board, {"pattern": "*", "strategy": "last-writer-wins"})
    await propose_all(board, "same", {"a": 1, "b": 1})
    await c2.run(until_idle=True)
    assert await board.get("same") is None  # agreeing proposals wait for consensus
    assert len(await board.proposals("same")) == 2


async def test_tie_escalates_to_a_human_who_decides(board: blackboard.Board) -> None:
    await propose_all(board, "tx/1", {"d1": "fraud", "d2": "ok"})
    c, lines = compactor(board, {"pattern": "tx/*", "strategy": "majority"})
    assert (await c.run(until_idle=True)).escalated == 1
    esc = await board.get(escalation_key("tx/1"))
    assert esc is not None and esc.value["state"] == "open" and "tie" in esc.value["reason"]
    assert [p["proposer"] for p in esc.value["proposals"]] == ["d1", "d2"]
    assert (await c.run(until_idle=True)).escalated == 0  # not escalated twice
    await board.bind(writer="d3").propose("tx/1", "review")  # a new proposal meanwhile
    await c.run(until_idle=True)  # still a tie: the escalation now lists all three
    esc = await board.get(escalation_key("tx/1"))
    assert esc is not None and len(esc.value["proposals"]) == 3
    await resolve_escalation(board.bind(writer="human:ann"), "tx/1", "fraud")
    await board.bind(writer="d4").propose("tx/1", "late")  # after the decision: stays open
    stats = await c.run(until_idle=True)
    assert stats.resolved == 1
    entry = await board.get("tx/1")
    assert entry is not None and entry.value == "fraud"
    assert [p.proposer for p in await board.proposals("tx/1")] == ["d4"]
    assert await board.get(escalation_key("tx/1")) is None
    assert any("human decision by human:ann" in line for line in lines)


async def test_one_compactor_at_a_time_and_takeover_after_a_crash(
    board: blackboard.Board,
) -> None:
    first, _ = compactor(board, {"pattern": "*", "strategy": "last-writer-wins"}, lease_ttl=0.3)
    lines2: list[str] = []
    second = Compactor(
        board,
        name="compactor-2",
        rules=rules({"pattern": "*", "strategy": "last-writer-wins"}),
        retention=NO_RETENTION,
        report=lines2.append,
        lease_ttl=0.3,
    )
    assert await first.step() is False  # holds the lease, nothing to do
    await propose_all(board, "k", {"a": 1, "b": 2})
    assert await second.step() is False  # standby: does nothing
    assert any("standby" in line for line in lines2)
    assert await board.divergent() == ["k"]
    # `first` crashes (never releases); `second` takes over once the lease runs out
    deadline = time.monotonic() + 10
    while not await second.step():
        assert time.monotonic() < deadline, "the lease never expired"
        await asyncio.sleep(0.05)
    assert (await board.get("k")).value == 2  # type: ignore[union-attr]
    assert second.lease.held and second.lease.token.endswith(":compactor-2")
    # the crashed one comes back: its token is stale, so it writes nothing
    await propose_all(board, "j", {"a": 1, "b": 2})
    first.lease.token = "1:compactor-1"
    assert await first.step() is False
    assert await board.divergent() == ["j"]


async def test_a_deposed_compactor_writes_nothing(board: blackboard.Board) -> None:
    c, _ = compactor(board, {"pattern": "*", "strategy": "last-writer-wins"})
    await c.step()
    await propose_all(board, "k", {"a": 1, "b": 2})
    await board.redis.set(board.keys_.compactor_lease, "99:usurper")  # e.g. a long pause
    rev = await board.revision()
    assert await c.step() is False
    assert await board.revision() == rev and await board.divergent() == ["k"]
    assert not c.lease.held and c.lease.current == "99:usurper"


async def test_sigterm_style_stop_releases_the_lease(board: blackboard.Board) -> None:
    c, _ = compactor(board, interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop=stop))
    deadline = time.monotonic() + 10
    while await board.redis.get(board.keys_.compactor_lease) is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    stop.set()
    stats = await asyncio.wait_for(task, 10)
    assert stats.leases == 1
    assert await board.redis.get(board.keys_.compactor_lease) is None
