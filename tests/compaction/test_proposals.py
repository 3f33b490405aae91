"""Proposals on a real server: one per proposer, divergence index, log events, merge commit."""

from __future__ import annotations

import pytest

import blackboard
from blackboard.board import proposals as props
from blackboard.board.ops import Fence
from blackboard.compaction.merge_commit import commit_merge
from blackboard.errors import ConflictError, InvalidValueError, LeaseLostError


async def test_one_proposal_per_proposer_replaced_never_conflicting(
    board: blackboard.Board,
) -> None:
    await board.put("v/1", "draft")
    alice, bob = board.bind(writer="alice"), board.bind(writer="bob")
    a1 = await alice.propose("v/1", "fraud", 0.6)
    assert (a1.proposer, a1.base_version, a1.confidence) == ("alice", 1, 0.6)
    assert await board.divergent() == []  # one proposal disagrees with nobody
    await bob.propose("v/1", "ok")
    assert await board.divergent() == ["v/1"]
    a2 = await alice.propose("v/1", "ok", 0.9)
    assert a2.revision > a1.revision
    got = await board.proposals("v/1")
    assert [(x.proposer, x.value, x.confidence) for x in got] == [
        ("bob", "ok", None),
        ("alice", "ok", 0.9),
    ]
    assert await board.divergent() == []  # they agree now
    assert (await board.get("v/1")).value == "draft"  # type: ignore[union-attr]
    assert await props.proposed_keys(board) == [("v/1", a2.revision)]


async def test_each_proposal_is_a_commit_with_a_log_event(board: blackboard.Board) -> None:
    start = await board.revision()
    p = await board.bind(writer="det-1").propose("tx/9", {"verdict": "fraud"}, 0.75)
    assert p.revision == start + 1 == await board.revision()
    changes = [c async for c in board.watch(since=start, idle_timeout=0.05)]
    assert len(changes) == 1
    c = changes[0]
    assert (c.kind, c.key, c.version, c.writer, c.revision) == (
        "propose",
        "tx/9",
        0,
        "det-1",
        p.revision,
    )
    assert c.value == {"proposer": "det-1", "confidence": 0.75, "value": {"verdict": "fraud"}}


async def test_idempotent_retry_and_validation(board: blackboard.Board) -> None:
    first = await board.propose("k", 1, idempotency_key="once")
    again = await board.propose("k", 1, idempotency_key="once")
    assert again.revision == first.revision == await board.revision()
    with pytest.raises(blackboard.IdempotencyKeyReusedError):
        await board.propose("k", 2, idempotency_key="once")
    for bad in (1.5, -0.1, float("nan"), True, "high"):
        with pytest.raises(InvalidValueError, match="confidence"):
            await board.propose("k", 1, bad)  # type: ignore[arg-type]
    with pytest.raises(blackboard.InvalidKeyError):
        await board.propose("bad key!", 1)


async def test_fenced_proposal_is_refused_without_the_lease(board: blackboard.Board) -> None:
    lease = board.keys_.prefix + "test-lease"
    await board.redis.set(lease, "tok-1")
    fenced = board.bind(fence=Fence("eq", lease, "tok-1"))
    await fenced.propose("k", 1)
    await board.redis.set(lease, "tok-2")
    rev = await board.revision()
    with pytest.raises(LeaseLostError):
        await fenced.propose("k", 2)
    assert await board.revision() == rev


async def test_merge_commit_removes_only_the_versions_it_read(board: blackboard.Board) -> None:
    await board.bind(writer="a").propose("k", 1)
    await board.bind(writer="b").propose("k", 2)
    read = await board.proposals("k")
    await board.bind(writer="b").propose("k", 3)  # b replaces its proposal meanwhile
    rev = await board.revision()
    # b's proposal 2 is gone: a value computed from it is not written; nothing changes
    assert await commit_merge(board, "k", 0, 2, read, "test") is None
    assert await board.revision() == rev and len(await board.proposals("k")) == 2
    read = await board.proposals("k")
    await board.bind(writer="c").propose("k", 4)  # c arrives meanwhile: not in the read
    done = await commit_merge(board.bind(writer="compactor"), "k", 0, 3, read, "test")
    assert done is not None
    assert (done.version, done.merged, done.open, done.divergent) == (1, 2, 1, False)
    left = await board.proposals("k")
    assert [(x.proposer, x.value) for x in left] == [("c", 4)]
    entry = await board.get("k")
    assert entry is not None
    assert (entry.value, entry.kind, entry.writer) == (3, "merge", "compactor")
    assert await board.divergent() == []
    assert await props.proposed_keys(board) == [("k", left[0].revision)]
    raw = await board.redis.xrange(board.keys_.log, f"{done.revision}-1", f"{done.revision}-1")
    fields = raw[0][1]
    assert props.merged_proposals(fields) == [("a", read[0].revision), ("b", read[1].revision)]
    assert fields[b"s"] == b"test" and fields[b"o1"] == b"m"
    await board.bind(writer="d").propose("k", 5)
    assert await board.divergent() == ["k"]
    left = await board.proposals("k")
    # the entry moved under the merge: a conflict, nothing written
    await board.put("k", 7)
    with pytest.raises(ConflictError):
        await commit_merge(board, "k", 1, 9, left, "test")
    done = await commit_merge(board, "k", 2, 9, left, "test")
    assert done is not None and (done.open, done.divergent) == (0, False)
    assert await board.proposals("k") == [] and await board.divergent() == []
    assert await props.proposed_keys(board) == []
    revs = [c.revision async for c in board.watch(since=0, idle_timeout=0.05)]
    assert revs == list(range(1, await board.revision() + 1))  # contiguous


async def test_merge_commit_is_fenced(board: blackboard.Board) -> None:
    await board.bind(writer="a").propose("k", 1)
    lease = board.keys_.compactor_lease
    await board.redis.set(lease, "1:other")
    with pytest.raises(LeaseLostError):
        await commit_merge(
            board, "k", 0, 1, await board.proposals("k"), "t", Fence("eq", lease, "2:me")
        )
    assert len(await board.proposals("k")) == 1
