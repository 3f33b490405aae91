"""Nothing crash-loops the controller (issue 14): a policy it cannot run, written around
`policy apply`'s validation, and a change whose admission raises are refused on the record
(`explain` shows why), and the controller keeps granting."""

from __future__ import annotations

from typing import Any

from runners import eventually, running

import blackboard
from blackboard.control.decisions import explain
from blackboard.control.policy_board import POLICY_KEY

POLICY = """
name = "p"
[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Worker(blackboard.Agent):
    role = "worker"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.put(f"done/{activation.key[4:]}", 1)


async def _leads(controller: blackboard.Controller) -> bool:
    return controller.leading.is_set() and controller.policy.name == "p"


async def _done(board: blackboard.Board, n: int) -> bool:
    return len(await board.keys("done/*")) >= n


async def test_bad_policies_and_poison_changes_are_refused_not_fatal(
    board: blackboard.Board,
) -> None:
    async with running(board, POLICY, [Worker()]) as parts:
        controller: blackboard.Controller = parts[0]
        await eventually(lambda: _leads(controller), 10, "the controller leading")
        # policies `policy apply` refuses, written straight to the board
        for bad in ('[[rule]]\nname = "x"\non = "ticket/[z-a]"\nrole = "r"\n',
                    '[[rule]]\nname = "x"\non = "t/*"\nrole = "r"\n[rule.when]\n"tags.²" = 1\n',
                    "not toml ["):  # fmt: skip
            await board.put(POLICY_KEY, {"source": bad, "file": "bad.toml", "digest": "x"})
        # a change whose admission raises (a bug in a rule, a value no guard expected)
        real = controller.admission.admit

        async def admit(batch: Any, entry_id: str, change: Any, *rest: Any) -> int:
            if change.key == "job/poison":
                raise ZeroDivisionError("a rule that cannot evaluate this value")
            return await real(batch, entry_id, change, *rest)

        controller.admission.admit = admit  # type: ignore[method-assign]
        await board.put("job/poison", 1)
        await board.put("job/1", 1)
        await eventually(lambda: _done(board, 1), 10, "work after the poison")
        assert controller.poisoned == 1 and controller.leading.is_set()
        assert controller.policy.name == "p"  # the running policy stayed
    refused = await explain(board, POLICY_KEY)
    reasons = [d["reasons"][0] for d in refused if d["decision"] == "refused"]
    assert len(reasons) == 3 and all("invalid policy, running one stays" in r for r in reasons)
    [poison] = [d for d in await explain(board, "job/poison") if d["decision"] == "refused"]
    assert "poison" in poison["reasons"][0] and "ZeroDivisionError" in poison["reasons"][0]
    assert await board.get("done/poison") is None


async def test_a_restarted_controller_runs_the_newest_valid_policy(board: blackboard.Board) -> None:
    async with running(board, POLICY, []) as parts:
        await eventually(lambda: _leads(parts[0]), 10, "the controller leading")
    await board.put(POLICY_KEY, {"source": "not toml [", "file": "bad.toml", "digest": "x"})
    async with running(board, None, [Worker()]) as parts:
        await eventually(lambda: _leads(parts[0]), 10, "the new leader on the valid policy")
        await board.put("job/1", 1)
        await eventually(lambda: _done(board, 1), 10, "work under the valid policy")
