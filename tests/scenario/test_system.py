"""How the runner starts a system: process command lines and environment (pure), and the
latency proxy in front of a real server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import blackboard
from blackboard.scenario import load_scenario
from blackboard.scenario.overrides import override
from blackboard.scenario.proxy import LatencyProxy
from blackboard.scenario.system import child_env, process_specs
from blackboard.store.server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def test_every_process_of_a_multi_board_scenario_is_named_and_configured() -> None:
    plan = load_scenario(ROOT / "scenarios" / "teams.toml")
    names = {"hq": "hq-x1", "team-a": "team-a-x1", "team-b": "team-b-x1"}
    specs = {s.name: s for s in process_specs(plan, names, "redis://127.0.0.1:1/0")}
    assert set(specs) == {
        "hq/controller-0", "hq/compactor-0", "hq/director-0",
        "team-a/controller-0", "team-a/worker-0", "team-a/worker-1", "team-a/bridge-0",
        "team-b/controller-0", "team-b/worker-0", "team-b/worker-1", "team-b/bridge-0",
    }  # fmt: skip
    bridge = specs["team-a/bridge-0"].argv
    assert bridge[bridge.index("--board") + 1] == "team-a-x1"
    assert bridge[bridge.index("--name") + 1] == "bridge-0"
    assert "parent=hq-x1" in bridge and "team=team-a" in bridge and "seed=9" in bridge
    assert specs["team-a/bridge-0"].role == "bridge" and specs["hq/compactor-0"].kind == "compactor"


def test_agent_parameters_reach_the_command_line() -> None:
    plan = override(load_scenario(ROOT / "scenarios" / "hot-keys.toml"), agents=2)
    [spec, _] = [
        s for s in process_specs(plan, {"hotkeys": "hotkeys"}, "redis://h:1/0") if s.kind == "agent"
    ]
    argv = spec.argv
    assert argv[argv.index("--concurrency") + 1] == "8"
    assert "keys=4" in argv and argv[argv.index("run") + 1].endswith("agents/hotkeys.py:HotCounter")
    plan = load_scenario(ROOT / "scenarios" / "support.toml")
    triage = plan.boards[0].agents[0]
    triage.spec = triage.spec.model_copy(update={"failure_rate": 0.25})
    triage = next(
        s for s in process_specs(plan, {"support": "support"}, "u") if s.name == "triage-0"
    )
    assert "failure_rate=0.25" in triage.argv and "latency=0.01" in triage.argv


def test_children_get_the_scenario_settings_and_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLACKBOARD_REDIS_URL", "redis://elsewhere:1/0")
    env = child_env(load_scenario(ROOT / "scenarios" / "chaos.toml"))
    assert "BLACKBOARD_REDIS_URL" not in env
    assert env["BLACKBOARD_CLAIM_LEASE"] == "2.0" and env["BLACKBOARD_CONTROLLER_LEASE"] == "1.5"
    assert env["BLACKBOARD_SHUTDOWN_GRACE"] == "2.0"  # a runner default
    assert env["PATH"] == os.environ["PATH"]


async def test_the_proxy_forwards_both_ways_with_and_without_delay(
    single_server: RedisServer,
) -> None:
    proxy = await LatencyProxy("127.0.0.1", single_server.port).start()
    try:
        settings = blackboard.Settings(redis_password=single_server.password)
        async with blackboard.connect(
            proxy.url, board="proxied", writer="t", settings=settings
        ) as b:
            e = await b.put("k", {"n": 1})
            proxy.delay = 0.02
            assert (await b.get("k")).value == {"n": 1}  # type: ignore[union-attr]
            await b.put("k", {"n": 2}, expect=e.version)
            proxy.delay = 0.0
            assert (await b.get("k")).version == 2  # type: ignore[union-attr]
        assert proxy.connections >= 1
    finally:
        await proxy.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", proxy.port)
