"""Snapshot tests of the main views: the screen as text against files committed under
tests/tui/__snapshots__ (ages, clock times, board names, host and pid masked).
`BLACKBOARD_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py` rewrites them."""

from __future__ import annotations

import asyncio
import os
import socket

import pydantic
import pytest
from tests_paths import AGENTS, POLICY
from tui_ops import Picky, ops_scene, ops_system
from tui_pilot import running, shows, until
from tui_scenario import eventually, support_scenario, ticket
from tui_snapshots import assert_snapshot

import blackboard
from blackboard.control.controller import Controller
from blackboard.control.decisions import controller_status
from blackboard.control.policy_board import apply_policy
from blackboard.control.read import ControlReader
from blackboard.runtime.agent import load_agent
from blackboard.runtime.agent_runtime import AgentRuntime
from blackboard.tui.escalations import read_escalations


class User(pydantic.BaseModel):
    name: str
    admin: bool = False


async def seed_entries(board: blackboard.Board) -> None:
    board.schema("user/*", User)
    await board.put("user/ada", User(name="Ada", admin=True))
    await board.put("user/bob", User(name="Bob"))
    for n in range(1, 4):
        await board.bind(writer="intake").put(f"ticket/{n}", ticket(f"subject {n}"))
    await board.bind(writer="triage@1").put("ticket/1/triage", {"category": "billing"})
    await board.put("ticket/1/triage", {"category": "billing", "confidence": 0.9})
    await board.bind(writer="bot").apply("stats/opened", "add", 3)
    await board.delete("ticket/3")
    await board.bind(writer="p1").propose("ticket/1/triage", {"category": "account"}, 0.6)


async def test_entries_entry_log_and_help(tui_board: blackboard.Board) -> None:
    await seed_entries(tui_board)
    name = tui_board.name
    async with running(tui_board) as (app, pilot):
        await until(pilot, shows(pilot, "6 entries", "user/bob"))
        assert_snapshot(app, "entries", name)
        await pilot.press("down", "down", "enter")  # ticket/1/triage
        await until(pilot, shows(pilot, "2 versions kept", '+  "confidence": 0.9'))
        assert_snapshot(app, "entry", name)
        await pilot.press("escape", "2")
        await until(pilot, shows(pilot, "10 changes"))
        assert_snapshot(app, "log", name)
        await pilot.press("question_mark")
        await until(pilot, shows(pilot, "keys (escape closes)"))
        assert_snapshot(app, "help", name)


async def test_agents_and_agenda(
    tui_board: blackboard.Board, monkeypatch: pytest.MonkeyPatch
) -> None:
    await apply_policy(tui_board, POLICY.read_text(), str(POLICY))
    await tui_board.put("ticket/1", ticket())
    await tui_board.put("ticket/2", ticket(tier="vip"))
    stop = asyncio.Event()
    controller = Controller(tui_board, name="controller-snap")
    task = asyncio.create_task(controller.run(stop))

    async def granted_and_published() -> bool:
        status = await controller_status(tui_board)
        roles = (status or {}).get("roles") or {}
        return roles.get("triage", {}).get("pending") == 2

    await eventually(granted_and_published, what="two grants in the controller's status")
    stop.set()
    await task
    runtime = AgentRuntime(load_agent(f"{AGENTS}:Triage")(), tui_board, name="triage-snap")
    with monkeypatch.context() as m:  # host and pid set column widths: make them constant
        m.setattr(socket, "gethostname", lambda: "host")
        m.setattr(os, "getpid", lambda: 4242)
        await runtime.start()  # present (a heartbeat), claiming nothing
    masks = (tui_board.name,)
    async with running(tui_board, start="agents") as (app, pilot):
        await until(pilot, shows(pilot, "triage-snap", "controller lease: none"))
        assert_snapshot(app, "agents", *masks)
        await pilot.press("4")
        await until(pilot, shows(pilot, "2 open", "superseded by a rule of higher"))
        assert_snapshot(app, "agenda", *masks)


async def test_escalations(tui_board: blackboard.Board) -> None:
    async with support_scenario(tui_board):
        await tui_board.put("ticket/1", ticket())

        async def one() -> bool:
            return len(await read_escalations(ControlReader(tui_board))) == 1

        await eventually(one, what="the escalation")
    async with running(tui_board, start="escalations") as (app, pilot):
        await until(pilot, shows(pilot, "1 waiting for a human", "ticket/1/answer@v1"))
        assert_snapshot(app, "escalations", tui_board.name)


async def test_activations(tui_board: blackboard.Board) -> None:
    async with ops_system(tui_board, Picky()):
        await ops_scene(tui_board)
        async with running(tui_board, start="activations") as (app, pilot):
            await until(pilot, shows(pilot, "1 running", "1 waiting", "1 retrying", "1 failed"))
            assert_snapshot(app, "activations", tui_board.name)
