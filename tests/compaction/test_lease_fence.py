"""The compactor's lease fence, one check (check_lease_fence in preamble.lua) for every
function it guards: merge, trim_log, trim_history, trim_stream and sweep_activations. A
stale 'eq' token is refused and nothing is written; a fence mode those functions do not take
('claim', 'lease', anything else) is refused too, never ignored; the holder's token passes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import blackboard
from blackboard.board.ops import Fence
from blackboard.board.retention import HistorySweep, Retention, trim_log
from blackboard.compaction.activation_sweep import ActivationSweep
from blackboard.compaction.merge_commit import commit_merge

OFF: dict[str, Any] = {
    "log_max_events": None,
    "log_max_age": None,
    "history_max_age": None,
    "activation_max_age": None,
}
HOLDER = "1:compactor-a"
NOW = int(time.time() * 1000)

# run one fenced function (after _setup) under `fence`; returns how much it removed or merged
Run = Callable[[blackboard.Board, Fence], Awaitable[int]]


async def _merge(board: blackboard.Board, fence: Fence) -> int:
    done = await commit_merge(board, "k", 0, 1, await board.proposals("k"), "t", fence)
    assert done is not None
    return done.merged


async def _trim_log(board: blackboard.Board, fence: Fence) -> int:
    retention = Retention(**{**OFF, "log_max_events": 1})
    return (await trim_log(board, retention, NOW, fence)).removed


async def _trim_history(board: blackboard.Board, fence: Fence) -> int:
    sweep = HistorySweep(board, Retention(**{**OFF, "history_max_versions": 1}))
    return (await sweep.step(NOW, fence)).removed


async def _sweep_activations(board: blackboard.Board, fence: Fence) -> int:
    cleared = await ActivationSweep()(board, 5_000, fence)
    trimmed = 2 - await board.redis.xlen(board.keys_.queue("triage"))
    return cleared + trimmed


RUNS: dict[str, Run] = {
    "merge": _merge,
    "trim_log": _trim_log,
    "trim_history": _trim_history,
    "sweep_activations+trim_stream": _sweep_activations,
}


async def _setup(board: blackboard.Board) -> str:
    for i in range(3):
        await board.put("h", i)
    await board.bind(writer="a").propose("k", 1)
    await board.bind(writer="b").propose("k", 2)
    r, k = board.redis, board.keys_
    await r.hset(k.activation("a1"), mapping={"s": "done", "t": 1_000})  # finished, old
    queue = k.queue("triage")
    for ms in (1000, 2000):
        await r.xadd(queue, {"a": "x"}, id=f"{ms}-0")
    await r.xgroup_create(queue, "agents", id="0")
    await r.xreadgroup("agents", "agent-1", {queue: ">"})
    await r.xack(queue, "agents", "1000-0", "2000-0")  # 1000-0 may go, 2000-0 stays
    await r.set(k.compactor_lease, HOLDER)
    return k.compactor_lease


@pytest.mark.parametrize("name", list(RUNS))
async def test_a_stale_token_is_refused_and_nothing_is_written(
    board: blackboard.Board, board_state: Any, name: str
) -> None:
    lease = await _setup(board)
    before = await board_state(board)
    with pytest.raises(blackboard.LeaseLostError, match="lease is held by 1:compactor-a"):
        await RUNS[name](board, Fence("eq", lease, "0:compactor-old"))
    assert await board_state(board) == before
    assert await RUNS[name](board, Fence("eq", lease, HOLDER)) > 0  # the holder's token writes


@pytest.mark.parametrize("name", list(RUNS))
@pytest.mark.parametrize("mode", ["claim", "lease", "bogus"])
async def test_a_fence_mode_other_than_eq_is_refused_not_ignored(
    board: blackboard.Board, board_state: Any, name: str, mode: str
) -> None:
    lease = await _setup(board)
    before = await board_state(board)
    # the lease key holds the token, so a check that ignored the mode would let it through
    fence = Fence(mode, lease, HOLDER, "agent-1", "agents")  # type: ignore[arg-type]
    with pytest.raises(blackboard.LeaseLostError, match=f"unknown fence mode {mode} "):
        await RUNS[name](board, fence)
    assert await board_state(board) == before


# the functions that commit or trim, and steps each must take through preamble.lua only
SHARED_STEPS: dict[str, str] = {
    "'lease is held by '": "check_fence / check_lease_fence",
    "redis.call('TIME')": "now_ms",
    "'XADD', log_key": "append_event / take_revision",
    "redis.call('INCRBY'": "take_revision",
    "'HSET', key, 'v'": "write_version",
    "local function value_of": "proposal_value",
}


@pytest.mark.parametrize(
    "name",
    ["commit", "merge", "propose", "trim_log", "trim_history", "trim_stream", "sweep_activations"],
)
def test_shared_steps_are_written_once_in_the_preamble(name: str) -> None:
    from importlib import resources

    lua = resources.files("blackboard.store").joinpath("lua")
    text = lua.joinpath(f"{name}.lua").read_text()
    preamble = lua.joinpath("preamble.lua").read_text()
    for step, helper in SHARED_STEPS.items():
        assert step not in text, f"{name}.lua repeats {step!r}: call {helper} in preamble.lua"
        assert step in preamble or step.startswith("local function"), step
