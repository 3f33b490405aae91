"""The controller against a real server, in-process: grants and why, refusals, policy
reloads, restarts and a deposed leader."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ResponseError
from runners import eventually, running

import blackboard
from blackboard.control.activation import activation_id
from blackboard.control.decisions import explain, read_activation
from blackboard.control.policy_board import POLICY_KEY, apply_policy

POLICY = """
name = "t"
max_depth = 3
[[rule]]
name = "work"
on = "job/*"
role = "worker"
priority = 5
[rule.when]
state = "new"

[[rule]]
name = "echo"
on = "echo/*"
role = "echoer"
"""


class Worker(blackboard.Agent):
    role = "worker"
    concurrency = 4

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.put(f"done/{activation.key[4:]}", {"of": activation.key})


class Echoer(blackboard.Agent):
    """Writes the next echo/<n>: an endless causal chain the loop guard must stop."""

    role = "echoer"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        n = int(activation.key.split("/")[1])
        await board.put(f"echo/{n + 1}", {"n": n + 1})


async def _done(board: blackboard.Board, n: int) -> bool:
    return len(await board.keys("done/*")) >= n


async def test_grant_records_why_and_explain_prints_it(board: blackboard.Board) -> None:
    async with running(board, POLICY, [Worker()]):
        await board.put("job/1", {"state": "new"})
        await board.put("job/2", {"state": "old"})
        await eventually(lambda: _done(board, 1), what="job/1 done")
        act_id = activation_id("worker", "job/1", 1)
        record = await eventually(
            lambda: _state(board, act_id, "done"), what="the activation record says done"
        )
    assert record["agent"] == "worker-0" and record["rule"] == "work"
    why = " | ".join(record["why"])
    for part in ("rule work", "priority 5", "loop guard", "dedupe", "backpressure", "breaker"):
        assert part in why
    [decision] = await explain(board, "job/1")
    assert decision["decision"] == "granted" and decision["activation"]["state"] == "done"
    assert await explain(board, "job/2") == []  # no rule matched: nothing to explain
    assert (await board.get("done/1")).causation.activation == act_id  # type: ignore[union-attr]


async def _state(board: blackboard.Board, act_id: str, state: str) -> dict[str, Any] | None:
    rec = await read_activation(board, act_id)
    return rec if rec and rec["state"] == state else None


async def test_loop_guard_refuses_a_runaway_chain(board: blackboard.Board) -> None:
    async with running(board, POLICY, [Echoer()]):
        await board.put("echo/0", {"n": 0})
        refusals = await eventually(lambda: explain(board, "echo/4"), what="a decision on echo/4")
    assert refusals[0]["decision"] == "refused"
    assert any("causal depth 4 > 3" in r for r in refusals[0]["reasons"])
    assert await board.get("echo/5") is None


async def test_policy_reload_and_an_invalid_policy_keeps_the_running_one(
    board: blackboard.Board,
) -> None:
    async with running(board, POLICY, [Worker()]):
        await apply_policy(board, POLICY.replace('state = "new"', 'state = "fresh"'), "v2.toml")
        await board.put(POLICY_KEY, {"source": "this is [not toml", "file": "junk"})
        await board.put("job/9", {"state": "fresh"})
        await eventually(lambda: _done(board, 1), what="job/9 done under policy v2")
        decisions = await explain(board, POLICY_KEY)
    assert decisions[0]["decision"] == "refused"
    assert "running one stays" in decisions[0]["reasons"][0]


async def test_a_restarted_controller_resumes_exactly(board: blackboard.Board) -> None:
    await apply_policy(board, POLICY, "t.toml")
    async with running(board, None, [Worker()]):
        for i in range(5):
            await board.put(f"job/{i}", {"state": "new"})
        await eventually(lambda: _done(board, 5), what="first five")
    for i in range(5, 10):
        await board.put(f"job/{i}", {"state": "new"})
    async with running(board, None, [Worker()]):
        await eventually(lambda: _done(board, 10), what="the next five")
    queued: Any = await board.redis.xlen(board.keys_.queue("worker"))
    assert queued == 10  # each change granted exactly once across the restart


async def test_finished_activations_leave_the_queue_and_expire(board: blackboard.Board) -> None:
    settings = board.settings.model_copy(update={"activation_ttl": 60})
    async with running(board, POLICY, [Worker()], settings=settings):
        for start in range(0, 400, 100):
            async with board.batch() as batch:
                for i in range(start, start + 100):
                    batch.put(f"job/{i}", {"state": "new"})
        await eventually(lambda: _done(board, 400), what="400 jobs done")
        queue = board.keys_.queue("worker")

        async def trimmed() -> bool:
            return bool(await board.redis.xlen(queue) < 400)

        await eventually(trimmed, 5, "the role queue trimmed below the open activations")
    ttl: Any = await board.redis.pttl(board.keys_.activation(activation_id("worker", "job/0", 1)))
    assert 0 < ttl <= 60_000


async def test_a_deposed_leaders_writes_are_rejected(board: blackboard.Board) -> None:
    await apply_policy(board, POLICY, "t.toml")
    settings = board.settings.model_copy(update={"controller_lease": 0.5})
    async with running(board, None, settings=settings) as (ctl,):
        await eventually(lambda: _leading(ctl), what="leadership")
        await board.put("job/a", {"state": "new"})
        await eventually(lambda: board.redis.xlen(board.keys_.queue("worker")))
        # another controller takes the lease (as after a pause longer than the lease)
        await board.redis.set(board.keys_.controller_lease, "999:usurper")
        await board.put("job/b", {"state": "new"})
        await eventually(lambda: _not_leading(ctl), what="the old leader to notice")
        queued: Any = await board.redis.xlen(board.keys_.queue("worker"))
        assert queued == 1  # job/b was not granted by the deposed leader
        await board.redis.delete(board.keys_.controller_lease)
        await eventually(lambda: _leading(ctl), what="leadership again, new epoch")
        assert ctl.lease.epoch == 2
        await eventually(lambda: _queued(board, 2), what="job/b granted by the new epoch")
    queued = await board.redis.xlen(board.keys_.queue("worker"))
    assert queued == 2


async def _leading(ctl: blackboard.Controller) -> bool:
    return ctl.leading.is_set()


async def _not_leading(ctl: blackboard.Controller) -> bool:
    return not ctl.leading.is_set()


async def _queued(board: blackboard.Board, n: int) -> bool:
    got: Any = await board.redis.xlen(board.keys_.queue("worker"))
    return bool(got >= n)


async def test_stale_fencing_token_is_rejected_by_the_grant_script(
    board: blackboard.Board,
) -> None:
    from blackboard.store.lease import Lease

    k = board.keys_
    first = Lease(board.redis, k.controller_lease, k.controller_epoch, "a", ttl=5)
    second = Lease(board.redis, k.controller_lease, k.controller_epoch, "b", ttl=5)
    assert await first.acquire() and first.epoch == 1
    assert not await second.acquire() and second.current == first.token
    assert await first.renew()
    await first.release()
    assert await second.acquire() and second.epoch == 2
    assert not await first.renew()
    from blackboard.store import functions

    res = await functions.GRANT(
        board.redis,
        [k.controller_lease, k.log, k.outcomes, k.open_activations, k.controller_state],
        ["1:a", "controller", 10, 1000, b"\x90", b"\x90", b"\x90"],
    )
    assert res[0] == b"fenced" and res[1] == b"2:b"


async def test_events_a_deposed_leader_read_are_settled_by_the_sweep(
    board: blackboard.Board,
) -> None:
    from blackboard.control.controller import CONSUMER, GROUP

    await apply_policy(board, POLICY, "t.toml")
    ctl = blackboard.Controller(board, name="leader")
    assert await ctl.lease.acquire()
    await ctl._start_leading()
    await ctl._replay()
    # a deposed leader wakes up late and reads a change into the group's pending list (its
    # write would then fail on the epoch): the leader's own reads will never return it
    stolen = await board.put("job/s", {"state": "new"})
    got: Any = await board.redis.xreadgroup(GROUP, CONSUMER, {board.keys_.log: ">"}, count=10)
    assert f"{stolen.revision}-1".encode() in [entry[0] for entry in got[0][1]]
    await asyncio.sleep(0.6)  # the sweep leaves events younger than 0.5 s to their reader
    await ctl._sweep()
    assert await _queued(board, 1)
    [decision] = await explain(board, "job/s")
    assert decision["decision"] == "granted"
    pending: Any = await board.redis.xpending(board.keys_.log, GROUP)
    assert pending["pending"] == 0
    await ctl.lease.release()


async def test_script_calls_survive_a_flushed_script_cache(board: blackboard.Board) -> None:
    from blackboard.store import functions, transport

    k = board.keys_
    await board.redis.script_flush()
    [res] = await transport.send(
        board.redis,
        [(functions.LEASE, [k.controller_lease, k.controller_epoch], ["acquire", "x", 1000, ""])],
    )
    assert res[0] == 1 and res[1] == b"1:x"
    batcher = transport.Batcher(board.redis)
    task = asyncio.create_task(batcher.run())
    try:
        await board.redis.script_flush()
        got = await asyncio.gather(
            *(
                batcher.call(
                    functions.LEASE,
                    [k.controller_lease, k.controller_epoch],
                    ["renew", "x", 1000, "1:x"],
                )
                for _ in range(3)
            )
        )
        assert [g[0] for g in got] == [1, 1, 1]
        with pytest.raises(ResponseError):
            fixed = [k.controller_lease, k.log, k.outcomes, k.open_activations, k.controller_state]
            # a held token, then ops that are not msgpack: the script fails, the call raises
            await batcher.call(functions.GRANT, fixed, ["1:x", "g", 1, 1, b"\xc1", b"", b"", 0])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Tally(blackboard.Agent):
    role = "tally"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.put(f"{activation.key}/result", activation.context)


async def test_consensus_over_ordinary_entries(board: blackboard.Board) -> None:
    policy = """
[[rule]]
name = "tally"
on = "vote/*/*"
role = "tally"
target = "poll/{1}"
[rule.consensus]
source = "entries"
group = "vote/{1}/*"
k = 2
n = 3
field = "choice"
"""
    async with running(board, policy, [Tally()]):
        await board.put("vote/x/ann", {"choice": "yes"})
        await board.put("vote/x/bob", {"choice": "no"})
        await board.put("vote/x/cat", {"choice": "yes"})

        async def result() -> Any:
            e = await board.get("poll/x/result")
            return e.value if e else None

        got = await eventually(result, what="the tally")
    assert got == {"votes": 2, "present": 3, "of": 3, "consensus": "yes"}
    decisions = await explain(board, "poll/x")
    granted = [d for d in decisions if d["decision"] == "granted"]
    assert len(granted) == 1 and granted[0]["version"] == 0  # one per poll, whatever comes later
    assert any("consensus: 2 of 3 agree on 'yes'" in r for r in granted[0]["reasons"])
