"""The subset of the board that fakeredis (with lupa) runs the same as a real server.

Works there: put/get, compare-and-set, versions and `at_revision`, history, delete,
transact of puts and deletes (including one key twice), keys, idempotent replay, watch.
Not there: reducers (`apply`) need `cmsgpack` and `struct` in Lua, which fakeredis lacks,
so they run against a real server only (tests/board/test_reducers.py), as do corrupt-data
error texts, ACLs and cluster behaviour (MEASURED.md).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest

import blackboard
from blackboard import ABSENT, Delete, Put


@pytest.fixture
async def fake_board() -> AsyncIterator[blackboard.Board]:
    redis = fakeredis.aioredis.FakeRedis()
    yield blackboard.Board(redis, "f" + uuid.uuid4().hex[:8], "tester")
    await redis.aclose()


async def test_put_get_and_cas(fake_board: blackboard.Board) -> None:
    b = fake_board
    e1 = await b.put("ticket/1", {"state": "new"}, expect=ABSENT)
    assert (e1.version, e1.revision) == (1, 1)
    with pytest.raises(blackboard.ConflictError) as info:
        await b.put("ticket/1", {"state": "dup"}, expect=ABSENT)
    assert (info.value.expected, info.value.actual) == ("absent", 1)
    assert info.value.current is not None and info.value.current.value == {"state": "new"}
    e2 = await b.put("ticket/1", {"state": "open"}, expect=1)
    assert (e2.version, e2.revision) == (2, 2)
    with pytest.raises(blackboard.ConflictError):
        await b.put("ticket/1", {"state": "stale"}, expect=1)
    got = await b.get("ticket/1")
    assert got is not None and (got.value, got.writer) == ({"state": "open"}, "tester")
    assert await b.revision() == 2


async def test_versions_history_and_delete(fake_board: blackboard.Board) -> None:
    b = fake_board
    for i in range(4):
        await b.put("k", i)
        await b.put("other", i)
    assert (await b.get("k", version=2)).value == 1  # type: ignore[union-attr]
    assert (await b.get("k", at_revision=4)).version == 2  # type: ignore[union-attr]
    assert await b.get("k", at_revision=0) is None
    d = await b.delete("k", expect=4)
    assert d.deleted and d.version == 5
    assert await b.get("k") is None
    assert [(e.version, e.kind) for e in await b.history("k")] == [
        (5, "delete"),
        (4, "put"),
        (3, "put"),
        (2, "put"),
        (1, "put"),
    ]
    assert await b.keys() == ["other"]


async def test_transact_all_or_nothing(fake_board: blackboard.Board) -> None:
    b = fake_board
    await b.put("a", 1)
    res = await b.transact([Put("a", 2, expect=1), Put("b", 1, expect=ABSENT), Delete("a")])
    assert [(e.key, e.version, e.revision) for e in res] == [("a", 2, 2), ("b", 1, 2), ("a", 3, 2)]
    with pytest.raises(blackboard.ConflictError) as info:
        await b.transact([Put("c", 1), Put("b", 2, expect=7)])
    assert (info.value.key, info.value.actual) == ("b", 1)
    assert await b.get("c") is None and await b.revision() == 2
    assert await b.keys() == ["b"]


async def test_idempotent_replay(fake_board: blackboard.Board) -> None:
    b = fake_board
    first = await b.put("k", 1, idempotency_key="once")
    again = await b.put("k", 1, idempotency_key="once")
    assert (again.version, again.revision) == (first.version, first.revision)
    with pytest.raises(blackboard.IdempotencyKeyReusedError):
        await b.put("k", 2, idempotency_key="once")
    assert await b.revision() == 1


async def test_watch(fake_board: blackboard.Board) -> None:
    b = fake_board
    await b.put("a", 1)
    await b.transact([Put("b", 2), Delete("a")])
    changes = [c async for c in b.watch(since=0, idle_timeout=0.1)]
    assert [(c.revision, c.key, c.kind, c.value) for c in changes] == [
        (1, "a", "put", 1),
        (2, "b", "put", 2),
        (2, "a", "delete", None),
    ]
