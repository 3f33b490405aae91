"""Pilot tests of an operator's actions (issue 15), against real boards with a live
controller: steering a role from the agents and agenda screens (pause, drain, resume, breaker
open / reset, a stale screen's conflict), the activations screen (states, filters, retry,
cancel), editing or deleting an entry and rolling the policy back with compare-and-set."""

from __future__ import annotations

from textual.widgets import DataTable
from tui_ops import Picky, ops_scene, ops_system
from tui_pilot import running, shows, until
from tui_scenario import eventually, support_scenario, ticket
from tui_snapshots import screen_text

import blackboard
from blackboard.control import steering
from blackboard.control.decisions import explain
from blackboard.control.policy_board import apply_policy
from blackboard.tui.screens.activations_screen import ActivationsScreen
from blackboard.tui.screens.agents_screen import AgentsScreen
from blackboard.tui.screens.confirm_screen import ConfirmScreen
from blackboard.tui.screens.edit_screen import EditScreen
from blackboard.tui.screens.entry_screen import EntryScreen
from blackboard.tui.screens.reason_screen import ReasonScreen


async def _answered(board: blackboard.Board, role: str, what: str) -> bool:
    return any(
        d["rule"] == what and d["decision"] == "operator"
        for d in await explain(board, steering.role_key(role))
    )


async def test_agents_screen_pauses_drains_resumes_and_opens_the_breaker(
    tui_board: blackboard.Board,
) -> None:
    async with support_scenario(tui_board, agents={"Triage": {"latency": 30.0}}):
        await tui_board.put("ticket/7", ticket(tier="vip"))
        async with running(tui_board, start="agents") as (app, pilot):
            await until(pilot, shows(pilot, "triage-t", "ticket/7@v1"), what="the claim")
            await until(pilot, shows(pilot, "triage  running"), what="the roles table")
            # the agents table is focused: the keys act on the highlighted agent's role
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            assert "Pause role triage?" in screen_text(app)
            await pilot.press(*"deploy", "enter")
            await until(pilot, shows(pilot, "pause triage: paused (was running)"))
            await until(pilot, shows(pilot, "paused by human:alice: deploy"))
            # new work for the role waits, with the reason; what runs goes on
            await tui_board.put("ticket/8", ticket())

            async def held() -> bool:
                return any(
                    "waiting: paused by human:alice: deploy" in d["reasons"][-1]
                    for d in await explain(tui_board, "ticket/8")
                )

            await eventually(held, what="ticket/8 waiting, paused")
            # escape on the question sends nothing
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, AgentsScreen))
            await pilot.press("d")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press("enter")
            await until(pilot, shows(pilot, "drain triage: draining (was paused)"))
            # (a key pressed before the table shows the new state would meet a conflict)
            await until(pilot, shows(pilot, "draining by human:alice"))
            await pilot.press("u")  # no question for what restarts work
            await until(pilot, shows(pilot, "resume triage: resumed (was draining)"))
            await until(pilot, shows(pilot, "triage  running"))
            await pilot.press("b")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press(*"vendor", "enter")
            await until(pilot, shows(pilot, "breaker-open triage: breaker open until reset"))
            await until(pilot, shows(pilot, "open (opened by human:alice: vendor)"))
            await pilot.press("B")
            await until(pilot, shows(pilot, "breaker-reset triage: breaker closed (was held"))
    record = await tui_board.get("sys/roles/triage")
    assert record is not None and record.writer == "human:alice"
    assert record.value["command"] == "breaker-reset"
    modes = [e.value["mode"] for e in await tui_board.history("sys/roles/triage")]
    assert modes == ["running", "running", "running", "draining", "paused"]  # newest first


async def test_a_stale_screen_gets_a_conflict_and_changes_nothing(
    tui_board: blackboard.Board,
) -> None:
    async with support_scenario(tui_board, agents={"Triage": {"latency": 30.0}}):
        await tui_board.put("ticket/7", ticket(tier="vip"))
        async with running(tui_board, start="agenda") as (app, pilot):
            await until(pilot, shows(pilot, "claimed", "triage-t"), what="the open activation")
            screen = app.screen

            async def frozen() -> None:  # the screen stops reading: what it shows goes stale
                return None

            screen.reload = frozen  # type: ignore[method-assign]
            cmd = await steering.request_role(tui_board, "pause", "triage", "human:bob", "mine")
            found = await steering.wait_outcome(tui_board, "sys/roles/triage", cmd, 10)
            assert found is not None
            await pilot.press("u")  # alice's screen still shows triage running, version 0
            await until(pilot, shows(pilot, "conflict: triage is at steering version 1"))
            assert "Press R to reload" in screen_text(app)
            roles = await steering.roles(tui_board)
            assert roles["triage"]["mode"] == "paused" and roles["triage"]["by"] == "human:bob"
            del screen.reload  # type: ignore[method-assign]
            await pilot.press("R")
            await until(pilot, shows(pilot, "· triage paused by"))
            await pilot.press("u")  # now it expects version 1
            await until(pilot, shows(pilot, "resume triage: resumed (was paused)"))


async def test_activations_screen_states_filters_retry_and_cancel(
    tui_board: blackboard.Board,
) -> None:
    agent = Picky()
    async with ops_system(tui_board, agent):
        await ops_scene(tui_board)
        async with running(tui_board, start="activations") as (app, pilot):
            screen = app.screen
            assert isinstance(screen, ActivationsScreen)
            await until(
                pilot,
                shows(pilot, "1 running", "1 waiting", "1 retrying", "1 failed"),
                what="one activation in each state",
            )
            text = screen_text(app)
            assert "job/4@v1" in text and "paused by human:bob: hold on" in text
            assert "Retry: busy" in text or "busy" in text
            assert "bad input" in text
            # filters: by state (s cycles), by role (/)
            await pilot.press("s")
            await until(pilot, shows(pilot, "state: running", "1 shown of 4"))
            assert "job/3@v1" in screen_text(app) and "job/1@v1" not in screen_text(app)
            for _ in range(4):
                await pilot.press("s")
            await until(pilot, shows(pilot, "state: failed", "1 shown of 4", "job/1@v1"))
            await pilot.press("s")
            await pilot.press("slash", *"nobody", "enter")
            await until(pilot, shows(pilot, "0 shown of 4"))
            await pilot.press("slash", "ctrl+a", "ctrl+k", *"worker", "enter")
            await until(pilot, shows(pilot, "4 shown of 4"))
            table = screen.query_one(DataTable)
            # only a retry or a dead letter runs again on request
            table.move_cursor(row=0)  # running first
            await pilot.press("t")
            await until(pilot, shows(pilot, "is running: only a scheduled retry"))
            # cancel the scheduled retry (asks first, with a reason)
            table.move_cursor(row=2)
            assert screen.current is not None and screen.current.state == "retrying"
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ReasonScreen))
            await pilot.press(*"not needed", "enter")
            await until(pilot, shows(pilot, ": cancelled"), 15)
            # retry the dead letter: it runs again as attempt 2 (an operator's explicit retry
            # goes even while the role is paused)
            await until(pilot, lambda: "retrying" not in screen_text(app))
            table.move_cursor(row=2)
            assert screen.current is not None and screen.current.state == "failed"
            await pilot.press("t")
            await until(pilot, shows(pilot, "dead letter queued again as attempt 2"), 15)
            await eventually(lambda: tui_board.get("done/1"), what="the retried dead letter")
            # resume from here: the waiting one goes
            table.move_cursor(row=0)
            await pilot.press("u")
            await until(pilot, shows(pilot, "resume worker: resumed (was paused)"), 15)
            await eventually(lambda: tui_board.get("done/4"), what="job/4 after the resume")
            # enter opens the entry
            await until(pilot, shows(pilot, "job/3@v1"))
            table.move_cursor(row=0)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, EntryScreen))
    assert ("2", 2) not in agent.runs  # the cancelled retry never ran
    assert sorted(agent.runs).count(("4", 1)) == 1
    cancelled = [d for d in await explain(tui_board, "job/2") if d["decision"] == "operator"]
    assert "cancel by human:alice: not needed" in cancelled[0]["reasons"][0]


async def test_entry_edit_and_delete_with_compare_and_set(tui_board: blackboard.Board) -> None:
    await tui_board.put("cfg/a", {"x": 1})
    async with running(tui_board) as (app, pilot):
        await until(pilot, shows(pilot, "cfg/a"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen))
        await until(pilot, shows(pilot, "1 versions kept"))
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditScreen))
        app.screen.query_one("TextArea").text = '{"x": 2}'  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, shows(pilot, "wrote cfg/a: v2 as human:alice"))
        entry = await tui_board.get("cfg/a")
        assert entry is not None and entry.value == {"x": 2} and entry.writer == "human:alice"
        # a stale screen: someone writes while the editor is open
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditScreen))
        await tui_board.put("cfg/a", {"x": "theirs"})
        app.screen.query_one("TextArea").text = '{"x": "mine"}'  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, shows(pilot, "conflict: cfg/a is at version 3, this screen showed"))
        assert (await tui_board.get("cfg/a")).value == {"x": "theirs"}  # type: ignore[union-attr]
        # delete asks first; a stale delete is refused too
        await until(pilot, shows(pilot, "3 versions kept"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await tui_board.put("cfg/a", {"x": "again"})
        await pilot.press("y")
        await until(pilot, shows(pilot, "conflict: cfg/a is at version 4"))
        await until(pilot, shows(pilot, "4 versions kept"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, shows(pilot, "deleted cfg/a: deleted as human:alice"))
        assert await tui_board.get("cfg/a") is None
        # a deleted entry is written again as absent
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditScreen))
        app.screen.query_one("TextArea").text = '{"x": "back"}'  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, shows(pilot, "wrote cfg/a: v6 as human:alice"))


async def test_agents_screen_rolls_the_policy_back_with_compare_and_set(
    tui_board: blackboard.Board,
) -> None:
    rule = '[[rule]]\nname = "r"\non = "x/*"\nrole = "worker"\n'
    await apply_policy(tui_board, f'name = "first"\n{rule}', "a.toml")
    await apply_policy(tui_board, f'name = "second"\n{rule}', "b.toml")
    async with running(tui_board, start="agents") as (app, pilot):
        await until(pilot, shows(pilot, "sys/policy v2 (second)"))
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, shows(pilot, "rolled back: sys/policy v3 in force (was v2) as human:al"))
        await until(pilot, shows(pilot, "sys/policy v3 (first)"))
        screen = app.screen

        async def frozen() -> None:
            return None

        screen.reload = frozen  # type: ignore[method-assign]
        await apply_policy(tui_board, f'name = "third"\n{rule}', "c.toml")
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, shows(pilot, "conflict: sys/policy is at version 4, this screen"))
        entry = await tui_board.get("sys/policy")
        assert entry is not None and entry.version == 4 and entry.writer == "tester"
    history = await tui_board.history("sys/policy")
    assert history[1].writer == "human:alice"  # v3, the rollback
