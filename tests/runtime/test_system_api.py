"""`blackboard.System`: a controller, agents and a compactor in one process, on a real server;
`blackboard.apply_policy` public."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import blackboard

POLICY = """
name = "sys"
[roles.stamp.retry]
attempts = 3
base = 0.01
cap = 0.02

[[rule]]
name = "stamp"
on = "job/*"
role = "stamp"

[[rule]]
name = "check"
on = "stamped/*"
role = "check"
"""


class Stamp(blackboard.Agent):
    """Stamps a job; fails the first `fail` attempts of each."""

    role = "stamp"

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts: list[int] = []

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        self.attempts.append(activation.attempt)
        if activation.attempt <= self.fail:
            raise blackboard.Retry("not yet")
        await board.put(f"stamped/{activation.key[4:]}", {"n": activation.value["n"]})


class Check(blackboard.Agent):
    """A sync handler downstream: counts what was stamped."""

    role = "check"

    def handle(self, activation: blackboard.Activation, board: Any) -> None:
        board.apply("stats/checked", "add", 1)


async def test_a_chain_runs_to_idle_and_every_part_stops_on_exit(board: blackboard.Board) -> None:
    system = blackboard.System(board, policy=POLICY, agents=[Stamp(), Check()])
    async with system:
        assert system.policy_entry is not None and system.policy_entry.version == 1
        for i in range(5):
            await board.put(f"job/{i}", {"n": i})
        await system.until_idle(within=20)
        assert await system.busy() == []
        assert (await board.get("stats/checked")).value == 5  # type: ignore[union-attr]
        assert len(await board.keys("stamped/*")) == 5
        tasks = list(system._tasks)
        assert await board.redis.hlen(board.keys_.agents) == 2
    assert all(t.done() for t in tasks)
    assert await board.redis.hlen(board.keys_.agents) == 0  # every runtime deregistered
    assert await board.redis.get(board.keys_.controller_lease) is None  # lease released


async def test_until_idle_waits_through_scheduled_retries(board: blackboard.Board) -> None:
    stamp = Stamp(fail=2)
    async with blackboard.System(board, policy=POLICY, agents=[stamp, Check()]) as system:
        await board.put("job/1", {"n": 1})
        await system.until_idle(within=20)
        assert stamp.attempts == [1, 2, 3]
        assert (await board.get("stats/checked")).value == 1  # type: ignore[union-attr]


async def test_policy_from_a_file_and_applying_the_same_again_writes_nothing(
    board: blackboard.Board, tmp_path: Path
) -> None:
    file = tmp_path / "sys.toml"
    file.write_text(POLICY)
    async with blackboard.System(board, policy=file, agents=[Stamp(), Check()]) as system:
        await board.put("job/1", {"n": 1})
        await system.until_idle(within=20)
    entry, written = await blackboard.apply_policy(board, POLICY, "again.toml")
    assert not written and entry.version == 1 and entry.value["file"] == str(file)


async def test_an_invalid_policy_starts_nothing(board: blackboard.Board) -> None:
    system = blackboard.System(board, policy=POLICY + "\nsurprise = 1\n", agents=[Stamp()])
    with pytest.raises(blackboard.PolicyError) as info:
        async with system:
            pass
    assert "surprise" in info.value.reason and info.value.line is not None
    assert system._tasks == [] and await board.get("sys/policy") is None


async def test_until_idle_names_what_is_still_open(board: blackboard.Board) -> None:
    # nobody runs role check: the stamped job's activation stays open
    async with blackboard.System(board, policy=POLICY, agents=[Stamp()]) as system:
        await board.put("job/1", {"n": 1})
        with pytest.raises(TimeoutError, match=r"1 open activation\(s\): check:"):
            await system.until_idle(within=1.0)


class Broken(blackboard.Agent):
    role = "stamp"

    async def setup(self, board: Any) -> None:
        raise OSError("no model weights here")

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        raise AssertionError("never runs")


async def test_a_part_that_dies_is_reported_by_until_idle(board: blackboard.Board) -> None:
    with pytest.raises(RuntimeError, match="stamp-0@") as info:
        async with blackboard.System(board, policy=POLICY, agents=[Broken()]) as system:
            await system.until_idle(within=10)
    assert isinstance(info.value.__cause__, OSError)


MERGE_POLICY = """
name = "votes"
[[rule]]
name = "a"
on = "item/*"
role = "tagger-a"

[[rule]]
name = "b"
on = "item/*"
role = "tagger-b"

[[merge]]
pattern = "tags/*"
strategy = "set-union"
"""


class Tagger(blackboard.Agent):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.propose(f"tags/{activation.key[5:]}", [self.tag], 0.9)


class TaggerA(Tagger):
    role = "tagger-a"


class TaggerB(Tagger):
    role = "tagger-b"


async def test_with_a_compactor_proposals_are_merged_before_idle(board: blackboard.Board) -> None:
    compactor = blackboard.Compactor(board, name="c1", interval=0.05)
    agents = [TaggerA("red"), TaggerB("blue")]
    async with blackboard.System(
        board, policy=MERGE_POLICY, agents=agents, compactor=compactor
    ) as system:
        await board.put("item/1", {"name": "box"})
        await system.until_idle(within=20)
        tags = await board.get("tags/1")
        assert tags is not None and sorted(tags.value) == ["blue", "red"]
    assert await board.redis.get(board.keys_.compactor_lease) is None


async def test_two_controllers_one_leads(board: blackboard.Board) -> None:
    async with blackboard.System(
        board, policy=POLICY, agents=[Stamp(), Check()], controllers=2
    ) as system:
        await board.put("job/1", {"n": 1})
        await system.until_idle(within=20)
        await asyncio.sleep(0)
        assert sum(c.leading.is_set() for c in system.controllers) == 1
