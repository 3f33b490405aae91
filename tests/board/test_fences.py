"""Fences on commits and proposals, one mechanism (preamble.lua) for both, on a real server:
a write whose claim or lease is no longer held is refused and nothing is written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import blackboard
from blackboard import Fence

GROUP = "agents"


async def _claim(board: blackboard.Board, consumer: str) -> tuple[str, str]:
    """A stream entry pending for `consumer`: (stream key, entry id)."""
    stream = board.keys_.prefix + "test-queue"
    r: Any = board.redis
    await r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    entry_id = (await r.xadd(stream, {"a": "1"})).decode()
    await r.xreadgroup(GROUP, consumer, {stream: ">"}, count=1)
    return stream, entry_id


async def _write(view: blackboard.Board, how: str) -> None:
    if how == "put":
        await view.put("k", 1)
    else:
        await view.propose("k", 1, confidence=0.9)


@pytest.mark.parametrize("how", ["put", "propose"])
async def test_lease_fence_refuses_an_expired_or_taken_claim(
    board: blackboard.Board, how: str
) -> None:
    stream, entry_id = await _claim(board, "agent-a")
    held = board.bind(fence=Fence("lease", stream, f"{entry_id}@60000", "agent-a", GROUP))
    await _write(held, how)  # held and fresh: accepted
    if how == "put":  # a put acknowledges the claim; take a new one for the next checks
        stream2 = stream
        entry_id = (await board.redis.xadd(stream2, {"a": "2"})).decode()
        await board.redis.xreadgroup(GROUP, "agent-a", {stream2: ">"}, count=1)
    rev = await board.revision()
    await asyncio.sleep(0.02)
    expired = board.bind(fence=Fence("lease", stream, f"{entry_id}@1", "agent-a", GROUP))
    with pytest.raises(blackboard.LeaseLostError, match="expired"):
        await _write(expired, how)
    other = board.bind(fence=Fence("lease", stream, f"{entry_id}@60000", "agent-b", GROUP))
    with pytest.raises(blackboard.LeaseLostError, match="taken over"):
        await _write(other, how)
    assert await board.revision() == rev  # nothing was written


@pytest.mark.parametrize("how", ["put", "propose"])
async def test_unknown_fence_mode_is_refused_not_ignored(
    board: blackboard.Board, how: str
) -> None:
    view = board.bind(fence=Fence("bogus", board.keys_.rev, "t"))  # type: ignore[arg-type]
    with pytest.raises(blackboard.LeaseLostError, match="unknown fence mode"):
        await _write(view, how)
    assert await board.revision() == 0
