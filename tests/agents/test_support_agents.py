"""The customer-support reference agents, unit-tested with the public harness, and the whole
flow in-process under policies/support.toml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import blackboard
from blackboard.board.ops import Put
from blackboard.runtime.agent import load_agent

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "control"))

from runners import eventually, running  # noqa: E402

SUPPORT = ROOT / "agents" / "support.py"


def agent(name: str, **options: object) -> blackboard.Agent:
    return load_agent(f"{SUPPORT}:{name}")(**options)


async def test_triage_is_deterministic_per_activation(board: blackboard.Board) -> None:
    await board.put("ticket/1", {"subject": "Refund my invoice", "tier": "vip", "status": "new"})
    async with blackboard.AgentHarness(agent("Triage", seed=3), board) as h:
        first = await h.activate("ticket/1")
    assert first.status == "ok"
    triage = (await board.get("ticket/1/triage")).value  # type: ignore[union-attr]
    assert triage["category"] == "billing" and triage["tier"] == "vip"
    assert 0.55 <= triage["confidence"] <= 1.0
    # the same activation in another process (another agent object) computes the same
    async with blackboard.AgentHarness(agent("Triage", seed=3), board, name="other") as h:
        await board.put("ticket/2", {"subject": "x"})
        again = agent("Triage", seed=3).rng(first.activation).uniform(0.55, 1.0)
    assert round(again, 3) == triage["confidence"]
    assert (await board.get("stats/triaged")).value == 1  # type: ignore[union-attr]


async def test_failures_are_seeded_and_reported(board: blackboard.Board) -> None:
    await board.put("ticket/1", {"subject": "crash"})
    async with blackboard.AgentHarness(agent("Triage", failure_rate=1.0), board) as h:
        outcome = await h.activate("ticket/1")
    assert outcome.status == "failed" and "simulated failure" in (outcome.error or "")
    assert await board.get("ticket/1/triage") is None


async def test_specialist_retriages_an_escalation_and_answers_otherwise(
    board: blackboard.Board,
) -> None:
    await board.put("ticket/1/triage", {"category": "account", "confidence": 0.5})
    async with blackboard.AgentHarness(agent("Specialist", answer_confidence=0.9), board) as h:
        esc = await h.activate("ticket/1/triage", escalated_from="triage")
        assert esc.status == "ok"
        retriaged = (await board.get("ticket/1/triage")).value  # type: ignore[union-attr]
        assert retriaged["confidence"] == 0.95 and retriaged["retriaged_by"] == "specialist"
        normal = await h.activate("ticket/1/triage")
    assert normal.status == "ok"
    answer = (await board.get("ticket/1/answer")).value  # type: ignore[union-attr]
    assert answer["confidence"] == 0.9 and answer["answer"].startswith("account answer")


async def test_resolver_closes_the_ticket(board: blackboard.Board) -> None:
    await board.put("ticket/1", {"subject": "x", "status": "new"})
    await board.put("ticket/1/answer", {"answer": "a", "confidence": 0.9})
    async with blackboard.AgentHarness(agent("Resolver"), board) as h:
        outcome = await h.activate("ticket/1/answer")
    assert outcome.status == "ok"
    assert (await board.get("ticket/1")).value["status"] == "resolved"  # type: ignore[union-attr]
    resolution = (await board.get("ticket/1/resolution")).value  # type: ignore[union-attr]
    assert resolution["by"] == "resolver" and resolution["answer"] == "a"


async def test_the_support_flow_vip_first_and_escalations(board: blackboard.Board) -> None:
    text = (ROOT / "policies" / "support.toml").read_text()
    # one triage slot, so that the order of grants shows the priorities
    text = text.replace("[roles.triage]\nmax_pending = 200", "[roles.triage]\nmax_pending = 1")
    agents = [
        agent("Triage", seed=1),
        agent("Specialist", seed=1),
        agent("Resolver", seed=1),
        agent("Human", seed=1),
    ]
    async with running(board, text, agents):
        # eight tickets in one commit: the controller sees them at once and must pick VIPs
        tickets = [
            Put(f"ticket/{i}", {"subject": "login", "tier": tier, "status": "new"})
            for i, tier in enumerate(["standard"] * 5 + ["vip"] * 2 + ["standard"])
        ]
        await board.transact(tickets)

        async def all_resolved() -> bool:
            return len(await board.keys("ticket/*/resolution")) == 8

        await eventually(all_resolved, 20, "every ticket resolved")
    order = []
    for _, fields in await board.redis.xrange(board.keys_.queue("triage")):  # type: ignore[misc]
        order.append(fields[b"k"].decode())
    # one triage slot: the two VIP tickets went first, then the others in arrival order
    assert order == [f"ticket/{i}" for i in (5, 6, 0, 1, 2, 3, 4, 7)]
    resolved_by = {
        (await board.get(f"ticket/{i}/resolution")).value["by"]  # type: ignore[union-attr]
        for i in range(8)
    }
    assert resolved_by <= {"resolver", "human"}


def test_an_agent_without_handle_is_refused_by_name(tmp_path: Path) -> None:
    source = "import blackboard\n\nclass Lazy(blackboard.Agent):\n    role = 'lazy'\n"
    (tmp_path / "lazy.py").write_text(source)
    with pytest.raises(blackboard.AgentLoadError, match=r"Lazy does not define handle\(\)"):
        load_agent(f"{tmp_path / 'lazy.py'}:Lazy")
    with pytest.raises(TypeError, match="abstract"):
        blackboard.Agent()  # type: ignore[abstract]
