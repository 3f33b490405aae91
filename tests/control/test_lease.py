"""The one lease (store/lease.py, lease.lua) that the controller and the compactor hold:
acquire, renew, release and expiry against a real server; a stale token's fenced writes
refused; the controller's renewal timed by an injected clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fake_clock import FakeClock
from redis.asyncio import Redis
from runners import eventually

import blackboard
from blackboard.board.ops import Fence
from blackboard.compaction.compactor import Compactor
from blackboard.control.grant_batch import GrantBatch
from blackboard.errors import BoardUnavailableError, LeaseLostError, StaleLeaseError
from blackboard.store.lease import Lease


def controller_lease(board: blackboard.Board, holder: str, ttl: float = 5.0) -> Lease:
    k = board.keys_
    return Lease(board.redis, k.controller_lease, k.controller_epoch, holder, ttl)


async def test_acquire_renew_release_hand_over_under_a_new_epoch(board: blackboard.Board) -> None:
    a, b = controller_lease(board, "a"), controller_lease(board, "b")
    assert not a.held and a.epoch == 0
    assert await a.acquire() and a.held and a.token == "1:a" and a.epoch == 1
    assert await a.acquire() and a.token == "1:a"  # acquiring a held lease keeps its token
    assert not await b.acquire() and not b.held and b.current == "1:a"
    assert await b.holder_token() == "1:a"
    assert await a.renew()
    assert not await b.renew()  # never held: nothing to renew
    await a.release()
    assert not a.held and await board.redis.get(a.key) is None
    assert await b.acquire() and b.token == "2:b" and b.epoch == 2
    assert not await a.renew() and not a.held


async def test_a_lease_runs_out_on_the_server_and_its_old_holder_cannot_renew(
    board: blackboard.Board,
) -> None:
    a, b = controller_lease(board, "a", ttl=0.1), controller_lease(board, "b", ttl=0.1)
    assert await a.acquire()
    await eventually(b.acquire, within=5, what="the lease running out")
    assert b.token == "2:b"
    assert not await a.renew()
    assert not a.held and a.current == "2:b"
    # the same holder name comes back: it gets a new epoch, never its old token
    await b.release()
    assert await a.acquire() and a.token == "3:a"


async def test_the_compactor_and_the_controller_leases_are_separate(
    board: blackboard.Board,
) -> None:
    ctl = controller_lease(board, "same")
    compactor = Compactor(board, name="same", rules=[])
    assert await ctl.acquire() and await compactor.lease.acquire()
    assert compactor.lease.key == board.keys_.compactor_lease != ctl.key
    assert compactor.fence == Fence("eq", board.keys_.compactor_lease, "1:same")
    await compactor.lease.release()
    assert await board.redis.get(ctl.key) == b"1:same"


async def test_a_stale_tokens_fenced_write_is_refused(board: blackboard.Board) -> None:
    k = board.keys_
    old = Lease(board.redis, k.compactor_lease, k.compactor_epoch, "old", 5.0)
    new = Lease(board.redis, k.compactor_lease, k.compactor_epoch, "new", 5.0)
    assert await old.acquire()
    stale = Fence("eq", old.key, old.held_token())
    await board.bind(fence=stale).put("fenced/a", 1)  # held: written
    await old.release()
    assert await new.acquire()
    rev = await board.revision()
    with pytest.raises(LeaseLostError):
        await board.bind(fence=stale).put("fenced/a", 2)
    assert await board.revision() == rev
    assert (await board.get("fenced/a")).value == 1  # type: ignore[union-attr]
    await board.bind(fence=Fence("eq", new.key, new.held_token())).put("fenced/a", 3)
    assert (await board.get("fenced/a")).value == 3  # type: ignore[union-attr]


async def test_a_stale_token_in_a_grant_batch_raises_stale_lease_error(
    board: blackboard.Board,
) -> None:
    a, b = controller_lease(board, "a", ttl=0.1), controller_lease(board, "b")
    assert await a.acquire()
    stale = a.token
    await eventually(b.acquire, within=5, what="the lease running out")
    batch = GrantBatch(board.keys_)
    batch.state("probe", "a")
    with pytest.raises(StaleLeaseError) as refused:
        await batch.write(board.redis, stale, "controller", (10, 60_000, 60_000))
    err = refused.value
    assert isinstance(err, LeaseLostError)
    assert (err.key, err.found) == (board.keys_.controller_lease, "2:b")
    assert await board.redis.hget(board.keys_.controller_state, "probe") is None


async def test_held_token_refuses_when_not_held(board: blackboard.Board) -> None:
    lease = controller_lease(board, "a")
    with pytest.raises(LeaseLostError) as lost:
        lease.held_token()
    assert lost.value.fence == board.keys_.controller_lease
    compactor = Compactor(board, name="c", rules=[])
    with pytest.raises(LeaseLostError):
        _ = compactor.fence


async def test_bad_ttl_and_an_unreachable_server_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        Lease(Redis(), "k", "e", "a", 0)
    redis = Redis(port=1, socket_connect_timeout=1)  # nothing listens on port 1
    try:
        with pytest.raises(BoardUnavailableError, match="lease acquire on 'k' failed"):
            await Lease(redis, "k", "e", "a", 1.0).acquire()
    finally:
        await redis.aclose()


async def test_the_controller_renews_its_lease_when_the_fake_time_passes_not_before(
    board: blackboard.Board,
) -> None:
    clock = FakeClock()
    settings = board.settings.model_copy(update={"controller_lease": 3.0})
    ctl = blackboard.Controller(
        board, name="timed", settings=settings, monotonic=clock.monotonic, sleep=clock.sleep
    )
    renewals: list[float] = []
    renew = ctl.lease.renew

    async def counted() -> bool:
        renewals.append(clock.now)
        return await renew()

    ctl.lease.renew = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    try:
        await asyncio.wait_for(ctl.leading.wait(), 10)
        await eventually(lambda: _true(clock.sleeping), what="the renewal loop sleeping")
        [(due, _)] = clock.sleeping
        assert due == pytest.approx(clock.now + 1.0)  # every controller_lease / 3
        clock.advance(0.99)
        await asyncio.sleep(0.1)  # real time passes; fake time is short of the renewal
        assert renewals == [] and ctl.leading.is_set()
        clock.advance(0.02)
        await eventually(lambda: _true(renewals), what="a renewal")
        assert renewals == [pytest.approx(101.01)]
        await eventually(lambda: _true(clock.sleeping), what="the next sleep")
        await asyncio.sleep(0.1)
        assert len(renewals) == 1  # one renewal per period, however much real time passes
        # Redis is down now (as the lease sees it): the leader keeps leading until the fake
        # time shows that the lease has run out, then steps down (and cannot lead again)
        failing: list[float] = []

        async def unavailable() -> bool:
            failing.append(clock.now)
            raise BoardUnavailableError("down")

        ctl.lease.renew = unavailable  # type: ignore[method-assign]
        ctl.lease.acquire = unavailable  # type: ignore[method-assign]
        clock.advance(1.0)
        await eventually(lambda: _true(failing), what="a failed renewal")
        await eventually(lambda: _true(clock.sleeping), what="the next sleep")
        assert ctl.leading.is_set()
        clock.advance(1.0)  # 2 s since the last renewal: under the 3 s TTL
        await eventually(lambda: _true(failing[1:]), what="a second failed renewal")
        await eventually(lambda: _true(clock.sleeping), what="the next sleep")
        await asyncio.sleep(0.1)
        assert ctl.leading.is_set()
        clock.advance(1.5)  # 3.5 s: the lease has run out by now
        await eventually(lambda: _true(not ctl.leading.is_set()), what="stepping down")
    finally:
        stop.set()
        clock.advance(10.0)
        await asyncio.wait_for(task, 10)


async def _true(value: Any) -> bool:
    return bool(value)
