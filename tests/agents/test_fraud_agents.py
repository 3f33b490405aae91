"""The fraud reference agents: detectors propose, the aggregator acts only on consensus."""

from __future__ import annotations

import sys
from pathlib import Path

import blackboard
from blackboard.control.decisions import explain
from blackboard.runtime.agent import load_agent

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "control"))

from runners import eventually, running  # noqa: E402

FRAUD = ROOT / "agents" / "fraud.py"
DETECTORS = ("AmountDetector", "GeoDetector", "VelocityDetector")


def agent(name: str, **options: object) -> blackboard.Agent:
    return load_agent(f"{FRAUD}:{name}")(**options)


async def test_a_detector_proposes_a_verdict(board: blackboard.Board) -> None:
    await board.put("txn/1", {"amount": 9000, "country": "FR", "home": "FR"})
    async with blackboard.AgentHarness(agent("AmountDetector", noise=0), board) as h:
        outcome = await h.activate("txn/1")
        again = await h.activate("txn/1")  # the same activation again: proposes once
    assert outcome.status == "ok" and again.status == "ok"
    [proposal] = await board.proposals("txn/1/verdict")
    assert proposal.value == {"verdict": "fraud", "detector": "fraud-amount"}
    assert proposal.confidence == 0.9 and proposal.proposer == "harness"


async def test_the_aggregator_acts_on_the_consensus_it_is_given(board: blackboard.Board) -> None:
    async with blackboard.AgentHarness(agent("Aggregator"), board) as h:
        ctx = {"consensus": "fraud", "votes": 2, "of": 3}
        outcome = await h.activate("txn/1", version=0, value=None, context=ctx)
    assert outcome.status == "ok"
    decision = (await board.get("txn/1/decision")).value  # type: ignore[union-attr]
    assert decision == {"verdict": "fraud", "votes": 2, "of": 3}
    assert (await board.get("stats/blocked")).value == 1  # type: ignore[union-attr]


async def test_consensus_flow_and_a_split_goes_to_a_human(board: blackboard.Board) -> None:
    agents = [agent(name, noise=0) for name in DETECTORS]
    agents += [agent("Aggregator"), agent("Human")]
    txns = {
        "txn/1": {"amount": 20, "country": "FR", "home": "FR"},  # all say ok
        "txn/2": {"amount": 9000, "country": "US", "home": "FR"},  # fraud, fraud, ok
        "txn/3": {"amount": 2000, "country": "US", "home": "FR", "recent": 0},  # split
    }
    policy = (ROOT / "policies" / "fraud.toml").read_text()
    async with running(board, policy, agents):
        for key, value in txns.items():
            await board.put(key, value)

        async def decided() -> bool:
            return len(await board.keys("txn/*/decision")) == 3

        await eventually(decided, 20, "three decisions")
    one = (await board.get("txn/1/decision")).value  # type: ignore[union-attr]
    two = (await board.get("txn/2/decision")).value  # type: ignore[union-attr]
    three = (await board.get("txn/3/decision")).value  # type: ignore[union-attr]
    assert one["verdict"] == "ok" and two["verdict"] == "fraud"
    assert three == {"verdict": "review", "by": "human"}
    why = await explain(board, "txn/3")
    granted = [d for d in why if d["decision"] == "granted"]
    assert granted[0]["role"] == "human"
    assert any("no consensus" in r for r in granted[0]["reasons"])
