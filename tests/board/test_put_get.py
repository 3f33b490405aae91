"""Basic reads and compare-and-set writes against a real server."""

from __future__ import annotations

import pytest

import blackboard
from blackboard import ABSENT, ANY


async def test_create_only_then_cas(board: blackboard.Board) -> None:
    e1 = await board.put("ticket/1", {"state": "new"}, expect=ABSENT)
    assert (e1.version, e1.revision) == (1, 1)
    with pytest.raises(blackboard.ConflictError) as info:
        await board.put("ticket/1", {"state": "dup"}, expect=ABSENT)
    assert (info.value.key, info.value.expected, info.value.actual) == ("ticket/1", "absent", 1)
    e2 = await board.put("ticket/1", {"state": "open"}, expect=1)
    assert e2.version == 2 and e2.revision == 2
    with pytest.raises(blackboard.ConflictError) as info:
        await board.put("ticket/1", {"state": "stale"}, expect=1)
    assert info.value.expected == 1 and info.value.actual == 2
    assert info.value.current is not None and info.value.current.value == {"state": "open"}
    got = await board.get("ticket/1")
    assert got is not None and got.value == {"state": "open"} and got.writer == "tester"


async def test_conflict_writes_nothing(board: blackboard.Board) -> None:
    await board.put("a", 1)
    rev = await board.revision()
    with pytest.raises(blackboard.ConflictError):
        await board.put("a", 2, expect=5)
    assert await board.revision() == rev
    assert (await board.get("a")).value == 1  # type: ignore[union-attr]


async def test_versions_and_revisions(board: blackboard.Board) -> None:
    for i in range(5):
        await board.put("k", i)
        await board.put("other", i)
    assert (await board.get("k", version=3)).value == 2  # type: ignore[union-attr]
    at = await board.get("k", at_revision=6)  # k v3 was written at revision 5
    assert at is not None and at.version == 3
    assert await board.get("k", at_revision=0) is None
    assert await board.get("k", version=99) is None
    hist = await board.history("k")
    assert [e.version for e in hist] == [5, 4, 3, 2, 1]
    assert [e.value for e in hist] == [4, 3, 2, 1, 0]


async def test_delete_is_a_versioned_tombstone(board: blackboard.Board) -> None:
    await board.put("x", "a")
    d = await board.delete("x", expect=1)
    assert d.deleted and d.version == 2
    assert await board.get("x") is None
    assert await board.keys() == []
    with pytest.raises(blackboard.ConflictError):
        await board.delete("x")
    # deleting the tombstone's version again conflicts too, instead of a second tombstone
    with pytest.raises(blackboard.ConflictError) as info:
        await board.delete("x", expect=2)
    assert info.value.actual == 2
    assert [e.version for e in await board.history("x")] == [2, 1]
    again = await board.put("x", "b", expect=ABSENT)
    assert again.version == 3
    assert await board.keys() == ["x"]
    assert [e.kind for e in await board.history("x")] == ["put", "delete", "put"]
    assert (await board.get("x", version=1)).value == "a"  # type: ignore[union-attr]


async def test_history_is_bounded(redis_server: blackboard.RedisServer, board_name: str) -> None:
    settings = blackboard.Settings(history_keep=3)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        for i in range(10):
            await b.put("k", i)
        assert [e.version for e in await b.history("k")] == [10, 9, 8]
        with pytest.raises(blackboard.HistoryTrimmedError) as info:
            await b.get("k", version=2)
        assert info.value.oldest == 8
        assert (await b.get("k", version=8)).value == 7  # type: ignore[union-attr]


async def test_keys_patterns(board: blackboard.Board) -> None:
    for k in ["ticket/1", "ticket/2", "ticket/10", "user/a", "tick"]:
        await board.put(k, 1)
    assert await board.keys("ticket/*") == ["ticket/1", "ticket/10", "ticket/2"]
    assert await board.keys("*/1*") == ["ticket/1", "ticket/10"]
    assert await board.keys("tick") == ["tick"]
    assert await board.keys("nothing") == []
    assert await board.keys(limit=2) == ["tick", "ticket/1"]


async def test_expect_any_is_blind(board: blackboard.Board) -> None:
    await board.put("k", 1, expect=ANY)
    assert (await board.put("k", 2)).version == 2


async def test_bad_expect_is_refused(board: blackboard.Board) -> None:
    with pytest.raises(ValueError, match="expect"):
        await board.put("k", 1, expect=0)
