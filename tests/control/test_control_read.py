"""The control plane's read API (`blackboard.control.read`) on a real server: each reader
returns what the real controller and agent runtimes wrote, and a record that does not decode
is a CorruptEntryError naming it, not a crash."""

from __future__ import annotations

import os
from typing import Any

import msgpack
import pytest
from runners import eventually, running

import blackboard
from blackboard.control import read, steering
from blackboard.errors import ActivationClosedError, CorruptEntryError
from blackboard.runtime.testing import lose_entry
from blackboard.store import deploy

POLICY = """
name = "r"
[roles.worker]
breaker_failures = 100
[roles.worker.retry]
attempts = 1

[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Worker(blackboard.Agent):
    """Writes done/<n> for job/<n>; fails for good on a job whose value says so."""

    role = "worker"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        job = await board.get(activation.key)
        if job.value.get("fail"):
            raise blackboard.Fail("bad input")
        await board.put(f"done/{activation.key[4:]}", {"ok": True})


async def test_heartbeats_and_lease_holder_as_the_runtime_and_controller_wrote_them(
    board: blackboard.Board,
) -> None:
    assert await read.heartbeats(board) == {}
    assert await read.lease_holder(board) is None
    async with running(board, POLICY, [Worker()]):
        beat = await eventually(lambda: read.heartbeat(board, "worker-0"), what="heartbeat")
        assert beat.role == "worker" and beat.pid == os.getpid() and beat.concurrency >= 1
        holder = await eventually(lambda: read.lease_holder(board), what="leader")
        assert holder.endswith(":ctl-0")
        await board.put("job/1", {"n": 1})
        await eventually(lambda: board.get("done/1"), what="job done")

        async def counted() -> read.Heartbeat | None:
            hb = (await read.heartbeats(board)).get("worker-0")
            return hb if hb is not None and hb.done >= 1 else None

        hb = await eventually(counted, what="done counted in the heartbeat")
        assert hb.failed == 0 and hb.record["role"] == "worker"
        assert await read.agent_names(board) == {"worker-0"}
    assert await read.heartbeat(board, "nobody") is None


async def test_open_activations_and_queue_counts_of_a_grant_nobody_took(
    board: blackboard.Board,
) -> None:
    async with running(board, POLICY):  # a controller, no agent
        await board.put("job/1", {"n": 1})
        ids = await eventually(lambda: read.open_activation_ids(board), what="a grant")
        # no agent made the consumer group yet: nothing was delivered, nothing counted
        assert await read.queue_counts(board, "worker") == read.QueueCounts()
        records = await read.activation_records(board, [*ids, "gone"])
        rec = records[ids[0]]
        assert rec is not None and records["gone"] is None
        assert (rec.role, rec.key, rec.version, rec.rule, rec.attempt) == (
            "worker",
            "job/1",
            1,
            "work",
            1,
        )
        # a human takes the queued activation's claim: it is delivered, pending for them
        assert rec.claim is not None
        fence = await steering.take_claim(board, "worker", rec.claim, "alice")
        assert (fence.mode, fence.token, fence.consumer) == ("claim", rec.claim, "alice")
        assert await read.queue_counts(board, "worker") == read.QueueCounts(queued=0, claimed=1)
        opened = (await read.ControlReader(board).open_activations())[0]
        assert (opened.state, opened.consumer) == ("claimed", "alice")
    assert await read.queue_counts(board, "nobody") == read.QueueCounts()


async def test_a_dead_letter_reads_back_with_its_record(board: blackboard.Board) -> None:
    async with running(board, POLICY, [Worker()]):
        await board.put("job/1", {"fail": True})
        ids = await eventually(lambda: read.dead_letter_ids(board), what="a dead letter")
    (rec,) = (await read.activation_records(board, ids)).values()
    assert rec is not None
    assert (rec.key, rec.state, rec.attempt) == ("job/1", "failed", 1)
    assert rec.error is not None and "bad input" in rec.error
    assert [a.id for a in await read.all_activations(board)] == ids


async def test_entries_index_decisions_and_log_tail(board: blackboard.Board) -> None:
    await board.put("a/1", 1)
    await board.put("a/2", {"x": 2})
    await board.put("b/1", "three")
    await board.delete("a/1")
    assert await read.index_count(board) == 2
    assert await read.index_count(board, "a/") == 1
    assert await read.index_rank(board, "b/") == 1
    assert await read.index_keys(board, 0, 10) == ["a/2", "b/1"]
    found = await read.current_entries(board, ["a/2", "b/1", "a/1", "none"])
    a2, b1 = found["a/2"], found["b/1"]
    assert isinstance(a2, blackboard.Entry) and a2.value == {"x": 2} and a2.version == 1
    assert isinstance(b1, blackboard.Entry) and b1.value == "three"
    a1 = found["a/1"]
    assert isinstance(a1, blackboard.Entry) and a1.deleted and a1.version == 2
    assert found["none"] is None
    tail = await read.log_tail(board, 10)
    assert [(c.key, c.revision) for c in tail] == [("a/1", 1), ("a/2", 2), ("b/1", 3), ("a/1", 4)]
    assert [c.key for c in await read.log_tail(board, 2, before=4)] == ["a/2", "b/1"]
    assert await read.log_tail(board, 10, before=1) == []
    history = (await read.retained_histories(board, ["a/1", "none"]))["a/1"]
    assert history.oldest == 1
    assert [(v.entry.version, v.value, v.entry.deleted) for v in history.versions] == [
        (1, 1, False),
        (2, None, True),
    ]
    assert (await read.retained_histories(board, ["none"]))["none"] == read.RetainedHistory()


async def test_decisions_are_what_the_controller_recorded(board: blackboard.Board) -> None:
    async with running(board, POLICY):
        await board.put("job/1", {"n": 1})
        blobs = await eventually(lambda: read.decision_records(board, "job/1"), what="decision")
    decisions = await read.ControlReader(board).decisions(["job/1"])
    assert len(blobs) == len(decisions) >= 1
    granted = decisions[-1]
    assert (granted.what, granted.key, granted.role, granted.rule) == (
        "granted",
        "job/1",
        "worker",
        "work",
    )


async def test_a_corrupt_heartbeat_is_named_or_skipped(board: blackboard.Board) -> None:
    ok = msgpack.packb({"role": "worker", "pid": 1, "beat_ms": 5}, use_bin_type=True)
    await board.redis.hset(board.keys_.agents, mapping={"good": ok, "torn": b"\xc1"})
    with pytest.raises(CorruptEntryError, match=r"heartbeat of agent torn.*not msgpack"):
        await read.heartbeats(board)
    skipped = await read.heartbeats(board, on_corrupt="skip")
    assert list(skipped) == ["good"] and skipped["good"].beat_ms == 5
    await board.redis.hset(
        board.keys_.agents, "norole", msgpack.packb({"pid": 2}, use_bin_type=True)
    )
    with pytest.raises(CorruptEntryError, match="expected a role name, found None"):
        await read.heartbeat(board, "norole")
    await board.redis.hset(
        board.keys_.agents,
        "badpid",
        msgpack.packb({"role": "w", "pid": "x"}, use_bin_type=True),
    )
    with pytest.raises(CorruptEntryError, match="expected an integer pid, found 'x'"):
        await read.heartbeat(board, "badpid")
    # the views keep drawing: the TUI's agents and `top` leave such records out
    agents = await read.ControlReader(board).agents()
    assert [a.name for a in agents] == ["good"]


async def test_a_corrupt_activation_or_entry_is_named(board: blackboard.Board) -> None:
    await board.redis.hset(
        board.keys_.activation("a1"), mapping={"role": "w", "k": "job/1", "v": "not-a-number"}
    )
    with pytest.raises(CorruptEntryError, match="activation a1"):
        await read.activation_records(board, ["a1"])
    with pytest.raises(CorruptEntryError, match="activation a1"):
        await read.all_activations(board)
    await board.put("fine", 1)
    await board.redis.hset(board.keys_.entry("broken"), mapping={"v": "1", "1": b"garbage"})
    found = await read.current_entries(board, ["broken", "fine"])
    assert isinstance(found["broken"], CorruptEntryError) and found["broken"].key == "broken"
    fine = found["fine"]
    assert isinstance(fine, blackboard.Entry) and fine.value == 1
    with pytest.raises(CorruptEntryError, match="broken"):
        await read.retained_histories(board, ["broken"])


async def test_take_claim_refuses_a_settled_activation(board: blackboard.Board) -> None:
    async with running(board, POLICY, [Worker()]):
        await board.put("job/1", {"n": 1})
        await eventually(lambda: board.get("done/1"), what="job done")
    (rec,) = await read.all_activations(board)  # no compactor here: nothing sweeps it
    assert rec.state == "done" and rec.claim
    with pytest.raises(ActivationClosedError, match="settled already"):
        await steering.take_claim(board, "worker", rec.claim or "", "alice")


async def test_lose_entry_deletes_behind_the_board(board: blackboard.Board) -> None:
    await board.put("k", 1)
    assert await lose_entry(board, "k") is True
    assert await board.get("k") is None
    assert await lose_entry(board, "k") is False


async def test_board_limits_are_set_for_a_valid_board_only(
    board: blackboard.Board, raw_redis: Any
) -> None:
    await deploy.set_board_limits(raw_redis, board.name, max_value_bytes=64)
    with pytest.raises(blackboard.BlackboardError):
        await board.put("big", "x" * 200)
    with pytest.raises(ValueError, match="at least 1, found 0"):
        await deploy.set_board_limits(raw_redis, board.name, max_value_bytes=0)
    with pytest.raises(blackboard.InvalidKeyError):
        await deploy.set_board_limits(raw_redis, "", max_value_bytes=64)
