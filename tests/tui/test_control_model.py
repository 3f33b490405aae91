"""The control-plane read model and the human desk against a live support scenario (a real
controller and agent runtimes in this process) and a real compactor."""

from __future__ import annotations

import pytest
from tui_scenario import eventually, support_scenario, ticket

import blackboard
from blackboard.compaction.compactor import Compactor
from blackboard.compaction.merge import rules_from_document
from blackboard.control.read import ControlReader
from blackboard.tui.escalations import EscalationItem, read_escalations
from blackboard.tui.human_desk import EscalationGoneError, HumanDesk
from blackboard.tui.model import BoardReader


async def escalated(control: ControlReader, key: str) -> EscalationItem | None:
    return next((e for e in await read_escalations(control) if e.key == key), None)


async def test_escalation_seen_and_approved_as_a_human(tui_board: blackboard.Board) -> None:
    control = ControlReader(tui_board)
    desk = HumanDesk(tui_board, "alice")
    async with support_scenario(tui_board):
        await tui_board.put("ticket/1", ticket())
        item = await eventually(lambda: escalated(control, "ticket/1/answer"), what="escalation")
        assert item.kind == "activation" and item.version == 1 and not item.stale
        assert item.from_role == "specialist" and item.value["confidence"] == 0.5
        assert "0.5 < 0.8" in item.reason
        assert item.activation is not None and item.activation.role == "human"
        assert item.activation.state == "queued"

        agents = await control.agents()
        assert {a.role for a in agents} == {"triage", "specialist"}
        assert all(a.breaker == "closed" for a in agents)
        assert all(a.host and a.beat_ms > 0 for a in agents)

        # the triage of confidence 0.5 was escalated to the specialist: its own rule was
        # superseded, which the controller recorded as a refusal with the reason
        decided = await control.decisions(["ticket/1/triage"])
        assert any(d.what == "refused" and "superseded" in d.reasons[-1] for d in decided)

        entry = await desk.approve(item)
        assert entry.writer == "human:alice" and entry.version == 2
        assert entry.value == item.value
        assert entry.causation is not None and entry.causation.activation == item.id

        async def finished() -> bool:
            rec = await BoardReader(tui_board).activation(item.id)
            return rec is not None and rec["state"] == "done"

        await eventually(finished, what="the controller to record the human's activation")
        assert await escalated(control, "ticket/1/answer") is None
        # the claim was acknowledged by the commit itself
        assert await tui_board.redis.xpending(tui_board.keys_.queue("human"), "agents") == {
            "pending": 0, "min": None, "max": None, "consumers": [],
        }  # fmt: skip
        # the human's value flows on: the resolver's rule fired on it
        open_ = await control.open_activations()
        assert any(a.role == "resolver" and a.key == "ticket/1/answer" for a in open_)
        # deciding again changes nothing
        with pytest.raises(EscalationGoneError):
            await desk.approve(item)


async def test_stale_view_gets_a_conflict_and_never_overwrites(
    tui_board: blackboard.Board,
) -> None:
    control = ControlReader(tui_board)
    desk = HumanDesk(tui_board, "bob")
    async with support_scenario(tui_board):
        await tui_board.put("ticket/2", ticket())
        await tui_board.put("ticket/3", ticket())
        item2 = await eventually(lambda: escalated(control, "ticket/2/answer"))
        item3 = await eventually(lambda: escalated(control, "ticket/3/answer"))
        # someone else writes the entry after the view was drawn
        moved = await tui_board.put("ticket/2/answer", {"answer": "by hand", "confidence": 1.0})
        with pytest.raises(blackboard.ConflictError) as caught:
            await desk.edit(item2, {"answer": "mine"})
        assert caught.value.actual == moved.version
        assert (await tui_board.get("ticket/2/answer")).value == {  # type: ignore[union-attr]
            "answer": "by hand", "confidence": 1.0,
        }  # fmt: skip
        again = await escalated(control, "ticket/2/answer")
        assert again is not None and again.stale
        # reject deletes the escalated version (history keeps it), as the human
        gone = await desk.reject(item3)
        assert gone.deleted and gone.writer == "human:bob"
        assert await tui_board.get("ticket/3/answer") is None
        assert (await tui_board.get("ticket/3/answer", version=1)).value == item3.value  # type: ignore[union-attr]


async def test_merge_escalation_decided_by_a_human(tui_board: blackboard.Board) -> None:
    rules = rules_from_document({"merge": [{"pattern": "contract/*", "strategy": "escalate"}]})
    compactor = Compactor(tui_board.bind(writer="compactor"), rules=rules)
    a, b = tui_board.bind(writer="lawyer-a"), tui_board.bind(writer="lawyer-b")
    await a.propose("contract/9", {"clause": "A"})
    await b.propose("contract/9", {"clause": "B"}, confidence=0.9)
    await compactor.run(until_idle=True)
    control = ControlReader(tui_board)
    items = await read_escalations(control)
    assert [(i.kind, i.key) for i in items] == [("merge", "contract/9")]
    item = items[0]
    assert [p["proposer"] for p in item.doc["proposals"]] == ["lawyer-a", "lawyer-b"]
    desk = HumanDesk(tui_board, "carol")
    with pytest.raises(EscalationGoneError):
        await desk.reject(item)  # nothing to keep: the entry does not exist yet
    await desk.approve(item, 1)
    with pytest.raises(blackboard.ConflictError):
        await desk.edit(item, {"clause": "C"})  # the view is stale now
    await compactor.run(until_idle=True)
    merged = await tui_board.get("contract/9")
    assert merged is not None and merged.value == {"clause": "B"}
    assert await read_escalations(control) == []


async def test_a_merge_decision_on_a_stale_version_reopens_the_escalation(
    tui_board: blackboard.Board,
) -> None:
    # issue 14: the human saw version 1, someone wrote version 2, the human rejected (keep
    # "the current value", i.e. version 1's): version 1's value must not come back as v3
    rules = rules_from_document({"merge": [{"pattern": "contract/*", "strategy": "escalate"}]})
    compactor = Compactor(tui_board.bind(writer="compactor"), rules=rules)
    await tui_board.put("contract/7", {"clause": "original"})
    a, b = tui_board.bind(writer="lawyer-a"), tui_board.bind(writer="lawyer-b")
    await a.propose("contract/7", {"clause": "A"})
    await b.propose("contract/7", {"clause": "B"})
    await compactor.run(until_idle=True)
    control = ControlReader(tui_board)
    [item] = await read_escalations(control)
    await tui_board.put("contract/7", {"clause": "edited meanwhile"})  # version 2
    await HumanDesk(tui_board, "carol").reject(item)
    await compactor.run(until_idle=True)
    current = await tui_board.get("contract/7")
    assert current is not None and current.version == 2
    assert current.value == {"clause": "edited meanwhile"}
    [again] = await read_escalations(control)
    assert again.doc["state"] == "open" and "changed from version 1 to 2" in again.doc["reason"]
    assert again.doc["entry_version"] == 2


async def test_reject_keeps_the_reason_and_can_send_the_item_back(
    tui_board: blackboard.Board,
) -> None:
    from blackboard.control import steering
    from blackboard.control.activation import activation_id
    from blackboard.control.decisions import explain

    control = ControlReader(tui_board)
    desk = HumanDesk(tui_board, "bob")
    async with support_scenario(tui_board):
        await tui_board.put("ticket/4", ticket())
        item = await eventually(lambda: escalated(control, "ticket/4/answer"))
        gone = await desk.reject(item, "the refund policy changed", back_to="specialist")
        assert gone.deleted
        sent = activation_id("specialist", "ticket/4/answer", item.version)

        async def granted() -> object:
            return await steering.activation(tui_board, sent)

        rec = await eventually(granted)
        assert rec["role"] == "specialist" and rec["rule"] == "rejected"  # type: ignore[index]
        assert rec["context"] == {  # type: ignore[index]
            "rejected_by": "human:bob", "reason": "the refund policy changed",
        }  # fmt: skip
    said = [d["reasons"] for d in await explain(tui_board, "ticket/4/answer")]
    assert [
        "reject by human:bob: the refund policy changed",
        "rejected and sent back to specialist",
    ] in said
