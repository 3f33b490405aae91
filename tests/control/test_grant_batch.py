"""GrantBatch and grant.lua against a real server: the decision lists stay capped, newest
first, and carry their TTL; a batch without the lease is fenced."""

from __future__ import annotations

import msgpack
import pytest

import blackboard
from blackboard.control.decisions import decision
from blackboard.control.grant_batch import GrantBatch
from blackboard.errors import StaleLeaseError


def _blob(n: int) -> bytes:
    return decision("refused", key="k/1", version=n, revision=n, role="r", rule="x", reasons=[])


async def test_decision_lists_are_capped_newest_first(board: blackboard.Board) -> None:
    keys = board.keys_
    await board.redis.set(keys.controller_lease, "tok")
    for first in (1, 3):  # under the cap, then over it (the trim only runs past the cap)
        batch = GrantBatch(keys)
        for n in range(first, first + 2):
            batch.decide("k/1", _blob(n))
        await batch.write(board.redis, "tok", "controller", (3, 60_000, 0))
        raw = await board.redis.lrange(keys.decisions("k/1"), 0, -1)
        kept = [msgpack.unpackb(b)["v"] for b in raw]
        assert kept == list(range(first + 1, 0, -1))[:3]
    assert 0 < await board.redis.pttl(keys.decisions("k/1")) <= 60_000


async def test_batch_without_the_lease_is_fenced(board: blackboard.Board) -> None:
    keys = board.keys_
    await board.redis.set(keys.controller_lease, "other")
    batch = GrantBatch(keys)
    batch.decide("k/1", _blob(1))
    with pytest.raises(StaleLeaseError) as err:
        await batch.write(board.redis, "tok", "controller", (3, 60_000, 0))
    assert err.value.found == "other"
    assert await board.redis.llen(keys.decisions("k/1")) == 0
