"""Snapshots on a real server: export formats, import into an empty board, log replay."""

from __future__ import annotations

from typing import Any

import pytest

import blackboard
from blackboard.board.restore import replay, restore, state_of
from blackboard.board.snapshot import dumps, loads, take_snapshot
from blackboard.compaction.merge_commit import commit_merge
from blackboard.errors import BoardNotEmptyError, SnapshotError


def other(board: blackboard.Board, suffix: str) -> blackboard.Board:
    return blackboard.Board(board.redis, board.name + suffix, "importer")


async def fill(board: blackboard.Board) -> None:
    await board.put("ticket/1", {"title": "printer", "tags": ["hw"]})
    await board.put("ticket/1", {"title": "printer on fire", "tags": ["hw", "urgent"]})
    await board.put("raw", {"blob": b"\x00\xff", 7: "int key", "big": 2**64 - 1})
    await board.apply("count", "add", 5)
    await board.put("gone", 1)
    await board.delete("gone")
    await board.bind(writer="a").propose("verdict/1", "fraud", 0.9)
    await board.bind(writer="b").propose("verdict/1", {"x": b"\x01"})
    await board.bind(writer="c").propose("agreed", 1)


async def live_state(board: blackboard.Board) -> Any:
    return state_of(await take_snapshot(board))


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_export_import_keeps_versions_revisions_and_proposals(
    board: blackboard.Board, fmt: str
) -> None:
    await fill(board)
    doc = await take_snapshot(board, history=True)
    assert doc["revision"] == await board.revision() == 9
    data = dumps(doc, fmt)
    copy = other(board, "-" + fmt)
    restored = await restore(copy, loads(data))
    assert (restored.revision, restored.entries, restored.proposals) == (9, 4, 3)
    assert await live_state(copy) == state_of(doc) == await live_state(board)
    assert [(e.version, e.revision) for e in await copy.history("ticket/1")] == [(2, 2), (1, 1)]
    raw = await copy.get("raw")
    assert raw is not None and raw.value == {"blob": b"\x00\xff", 7: "int key", "big": 2**64 - 1}
    assert await copy.keys() == ["count", "raw", "ticket/1"]  # the tombstone is not live
    assert await copy.divergent() == ["verdict/1"]
    props = await copy.proposals("verdict/1")
    assert [(p.proposer, p.value, p.confidence) for p in props] == [
        ("a", "fraud", 0.9),
        ("b", {"x": b"\x01"}, None),
    ]
    # versions go on, the revision counter goes on, and the log stays contiguous
    assert (await copy.put("gone", 2)).version == 3
    assert (await copy.put("ticket/1", "x", expect=2)).revision == 11
    revs = [c.revision async for c in copy.watch(since=9, idle_timeout=0.05)]
    assert revs == [10, 11]
    with pytest.raises(blackboard.HistoryTrimmedError):
        async for _ in copy.watch(since=5, idle_timeout=0.05):
            pass


async def test_compact_snapshot_holds_current_versions_only(board: blackboard.Board) -> None:
    await fill(board)
    doc = await take_snapshot(board)
    assert all(len(e["versions"]) == 1 for e in doc["entries"])
    copy = other(board, "-c")
    await restore(copy, doc)
    assert [e.version for e in await copy.history("ticket/1")] == [2]
    with pytest.raises(blackboard.HistoryTrimmedError):
        await copy.get("ticket/1", version=1)


async def test_import_refuses_a_board_that_holds_anything(board: blackboard.Board) -> None:
    await board.put("k", 1)
    doc = await take_snapshot(board)
    with pytest.raises(BoardNotEmptyError, match="not empty"):
        await restore(board, doc)
    target = other(board, "-p")
    await target.bind(writer="x").propose("only-a-proposal", 1)
    with pytest.raises(BoardNotEmptyError):
        await restore(target, doc)


async def test_bad_documents_are_refused_before_writing(board: blackboard.Board) -> None:
    for data in (b"", b"{not json", b'{"format": "other"}', b"\x93\x01\x02\x03"):
        with pytest.raises(SnapshotError):
            loads(data)
    doc = await take_snapshot(board)
    broken = {**doc, "entries": [{"key": "k", "versions": [{"version": 1, "revision": 99}]}]}
    with pytest.raises(SnapshotError, match="revision"):
        await restore(other(board, "-b"), broken)
    assert await other(board, "-b").revision() == 0


async def test_snapshot_plus_log_replay_equals_the_live_board(board: blackboard.Board) -> None:
    await fill(board)
    doc = await take_snapshot(board)
    await board.put("ticket/1", "later")
    await board.delete("count")
    await board.bind(writer="b").propose("verdict/1", "ok")
    await commit_merge(board, "verdict/1", 0, "ok", await board.proposals("verdict/1"), "t")
    await board.bind(writer="d").propose("verdict/1", "late")
    events = await board.redis.xrange(board.keys_.log, f"{doc['revision'] + 1}-1", "+")
    assert replay(state_of(doc), events) == await live_state(board)
