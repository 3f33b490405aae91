"""`blackboard top` and its read API against a running system; `agent list` shows the lost
count."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from runners import eventually, running
from typer.testing import CliRunner

import blackboard
from blackboard.cli import app
from blackboard.control.system_status import RoleStatus, SystemStatus, rates, system_status
from blackboard.store.server import RedisServer

POLICY = """
name = "top"
[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Worker(blackboard.Agent):
    role = "worker"
    concurrency = 4

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        await board.put(f"done/{activation.key[4:]}", {"ok": True})


async def _done(board: blackboard.Board, n: int) -> bool:
    return len(await board.keys("done/*")) >= n


async def test_a_snapshot_of_a_running_system(board: blackboard.Board) -> None:
    settings = blackboard.Settings(agent_heartbeat=0.1)
    async with running(board, POLICY, [Worker()], settings=settings):

        async def registered() -> SystemStatus | None:
            snap = await system_status(board)
            return snap if snap.agents else None

        before = await eventually(registered, what="the agent's first heartbeat")
        for i in range(4):
            await board.put(f"job/{i}", {"i": i})
        await eventually(lambda: _done(board, 4), what="4 done")

        async def counted() -> SystemStatus | None:
            snap = await system_status(board)
            w = snap.roles.get("worker")
            return snap if snap.leader and w and w.done == 4 else None

        after = await eventually(counted, 10, "the heartbeat's counts and a status")
    worker = after.roles["worker"]
    assert worker.agents == 1 and worker.breaker == "closed" and worker.failed == 0
    assert after.leader == "ctl-0" and after.lag is not None and after.lag >= 0
    assert after.revision >= 9
    per_second = rates(before, after)
    assert per_second["worker"]["done"] > 0 and per_second["worker"]["lost"] == 0


def test_rates_count_each_agent_from_its_own_baseline() -> None:
    def snap(t: float, agents: dict[str, dict[str, Any]]) -> SystemStatus:
        s = SystemStatus("b", int(t * 1000), 0, agents=agents)
        for a in agents.values():
            s.roles.setdefault(a["role"], RoleStatus(a["role"]))
        return s

    now = time.time()
    before = snap(now, {"a": {"role": "r", "done": 10, "started_ms": 0}})
    after = snap(
        now + 2,
        {
            "a": {"role": "r", "done": 14, "lost": 2, "started_ms": 0},
            "b": {"role": "r", "done": 4, "started_ms": int((now + 1) * 1000)},  # new: from 0
            "c": {"role": "r", "done": 99, "started_ms": 0},  # no baseline: left out
        },
    )
    r = rates(before, after)["r"]
    assert r == {"done": 4.0, "failed": 0.0, "lost": 1.0}


def test_top_once_and_live_and_agent_list(single_server: RedisServer, board_name: str) -> None:
    async def system() -> None:
        async with blackboard.connect(single_server.url, board=board_name, writer="t") as b:
            settings = blackboard.Settings(agent_heartbeat=0.1)
            async with running(b, POLICY, [Worker()], settings=settings):
                await b.put("job/1", {"i": 1})
                await eventually(lambda: _done(b, 1), what="done")
                await eventually(lambda: system_status(b), what="a status")
                await asyncio.sleep(1.2)  # a status published after the grant
                env = {"BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board_name}
                runner = CliRunner()
                r = await asyncio.to_thread(
                    runner.invoke, app, ["top", "--json", "--interval", "0.1"], env=env
                )
                assert r.exit_code == 0, r.output
                doc = orjson.loads(r.stdout)
                assert doc["leader"] == "ctl-0" and doc["roles"]["worker"]["agents"] == 1
                assert doc["lag"] >= 0 and "worker" in doc["rates"]
                r = await asyncio.to_thread(
                    runner.invoke, app, ["top", "--count", "2", "--interval", "0.05"], env=env
                )
                assert r.exit_code == 0, r.output
                assert "worker" in r.stdout and "controller lag" in r.stdout
                r = await asyncio.to_thread(runner.invoke, app, ["agent", "list"], env=env)
                assert r.exit_code == 0 and "lost" in r.stdout, r.output

    asyncio.run(system())
