"""The entry/log read model against a real server: rows of odd entries, the log tail, and an
entry's detail with its causation."""

from __future__ import annotations

import blackboard
from blackboard.runtime.testing import AgentHarness
from blackboard.tui.model import BoardReader


async def test_rows_of_missing_deleted_and_corrupt_entries(tui_board: blackboard.Board) -> None:
    await tui_board.put("a", {"x": 1})
    await tui_board.put("gone", 1)
    await tui_board.delete("gone")
    await tui_board.redis.hset(tui_board.keys_.entry("bad"), mapping={"v": 1, "1": b"garbage"})
    rows = await BoardReader(tui_board).rows(["a", "gone", "bad", "never"])
    assert rows["a"] is not None and rows["a"].value == {"x": 1} and rows["a"].writer == "tester"
    assert rows["gone"] is not None and rows["gone"].deleted and rows["gone"].version == 2
    assert rows["bad"] is not None and rows["bad"].error
    assert rows["never"] is None


async def test_log_tail_before_a_revision(tui_board: blackboard.Board) -> None:
    for i in range(1, 8):
        await tui_board.put(f"k{i}", i)
    reader = BoardReader(tui_board)
    assert [c.revision for c in await reader.log_tail(3)] == [5, 6, 7]
    assert [c.revision for c in await reader.log_tail(3, before=5)] == [2, 3, 4]
    assert [c.revision for c in await reader.log_tail(10, before=3)] == [1, 2]
    assert await reader.log_tail(10, before=1) == []


async def test_detail_names_the_activation_that_wrote_the_entry(
    tui_board: blackboard.Board,
) -> None:
    class Echo(blackboard.Agent):
        role = "echo"

        async def handle(self, activation: blackboard.Activation, board: object) -> None:
            await board.put(activation.key + "/echo", {"seen": activation.value})  # type: ignore[attr-defined]

    await tui_board.put("in/1", "hello")
    async with AgentHarness(Echo(), tui_board) as harness:
        outcome = await harness.activate("in/1", rule="echo-rule")
    assert outcome.status == "ok"
    detail = await BoardReader(tui_board).detail("in/1/echo")
    assert [e.version for e in detail.versions] == [1]
    assert detail.activation is not None
    assert detail.activation["role"] == "echo" and detail.activation["rule"] == "echo-rule"
    assert detail.activation["key"] == "in/1" and detail.activation["version"] == 1
