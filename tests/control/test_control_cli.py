"""Control commands through typer's CliRunner against a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import blackboard
from blackboard.cli import app
from blackboard.store.server import RedisServer

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(single_server: RedisServer, board_name: str) -> dict[str, str]:
    return {"BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board_name}


def invoke(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args, env=env)


def test_policy_apply_show_rollback(env: dict[str, str], tmp_path: Path) -> None:
    support = str(ROOT / "policies" / "support.toml")
    r = invoke(["policy", "apply", support], env)
    assert r.exit_code == 0, r.output
    assert "in force as version 1" in r.stdout
    r = invoke(["policy", "apply", support], env)
    assert "already in force as version 1" in r.stdout
    r = invoke(["policy", "apply", str(ROOT / "policies" / "fraud.toml")], env)
    assert "version 2" in r.stdout
    r = invoke(["policy", "show", "--json"], env)
    doc = orjson.loads(r.stdout)
    assert doc["version"] == 2 and doc["policy"]["name"] == "fraud"
    r = invoke(["policy", "rollback"], env)
    assert r.exit_code == 0 and "version 3" in r.stdout
    r = invoke(["policy", "show"], env)
    assert 'name = "support"' in r.stdout and "version 3" in r.stdout


def test_an_invalid_policy_is_refused_with_its_line(env: dict[str, str], tmp_path: Path) -> None:
    good = ROOT / "policies" / "support.toml"
    assert invoke(["policy", "apply", str(good)], env).exit_code == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("max_pending = 200", 'max_pending = "lots"', 1))
    r = invoke(["policy", "apply", str(bad)], env)
    assert r.exit_code == 2
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "lots" in text)
    assert f"bad.toml:{line}: roles.triage.max_pending" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = invoke(["policy", "show", "--json"], env)
    assert orjson.loads(r.stdout)["policy"]["name"] == "support"  # the running one stays
    r = invoke(["policy", "apply", str(tmp_path / "missing.toml")], env)
    assert r.exit_code == 2 and "cannot read" in r.stderr
    r = invoke(["controller", "--policy", str(bad)], env)
    assert r.exit_code == 2


def test_rollback_and_show_without_a_policy(env: dict[str, str]) -> None:
    r = invoke(["policy", "show"], env)
    assert r.exit_code == 1 and "no policy" in r.stderr
    r = invoke(["policy", "rollback"], env)
    assert r.exit_code == 1 and "no policy is in force" in r.stderr


def test_agent_run_refuses_a_bad_spec(env: dict[str, str], tmp_path: Path) -> None:
    for spec, reason in [
        ("nocolon", "path.py:Class"),
        (f"{tmp_path}/none.py:X", "no such file"),
        (f"{ROOT}/agents/support.py:Nope", "has no Nope"),
        (f"{ROOT}/agents/support.py:CATEGORIES", "not a blackboard.Agent"),
    ]:
        r = invoke(["agent", "run", spec], env)
        assert r.exit_code == 2 and reason in r.stderr, (spec, r.stderr)


def test_explain_agenda_and_agents(env: dict[str, str], single_server: RedisServer) -> None:
    board = env["BLACKBOARD_BOARD"]

    async def scenario() -> None:
        from runners import eventually, running

        from blackboard.control.policy_board import apply_policy

        async with blackboard.connect(single_server.url, board=board) as b:
            text = (ROOT / "policies" / "support.toml").read_text()
            await apply_policy(b, text, "support.toml")
            async with running(b):
                await b.put("ticket/1", {"subject": "x", "status": "new", "tier": "vip"})
                await eventually(lambda: b.redis.xlen(b.keys_.queue("triage")))
                await eventually(lambda: _triage_pending(b), 5, "a status with triage")

    asyncio.run(scenario())
    r = invoke(["explain", "ticket/1"], env)
    assert r.exit_code == 0, r.output
    assert "granted triage on ticket/1 v1" in r.stdout and "rule triage-vip" in r.stdout
    assert "refused triage" in r.stdout and "superseded" in r.stdout
    r = invoke(["explain", "ticket/1", "--json"], env)
    decisions = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert {d["decision"] for d in decisions} == {"granted", "refused"}
    r = invoke(["agenda", "--json"], env)
    assert r.exit_code == 0 and orjson.loads(r.stdout)["roles"]["triage"]["pending"] == 1
    r = invoke(["agent", "list", "--json"], env)
    assert r.exit_code == 0 and orjson.loads(r.stdout) == {}
    r = invoke(["explain", "nothing/here"], env)
    assert r.exit_code == 0 and "no decisions" in r.stdout


async def _triage_pending(b: blackboard.Board) -> bool:
    from blackboard.control.decisions import controller_status

    status = await controller_status(b)
    return bool(status and status["roles"].get("triage", {}).get("pending") == 1)


def test_controller_and_agent_run_until_idle(env: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[[rule]]\nname = "r"\non = "task/*"\nrole = "slow"\n')
    for i in range(3):
        assert invoke(["put", f"task/{i}", "{}"], env).exit_code == 0
    r = invoke(["controller", "--policy", str(policy), "--until-idle", "--idle-after", "0.3"], env)
    assert r.exit_code == 0, r.output
    agents = ROOT / "tests" / "control" / "process_agents.py"
    idle = ["--until-idle", "--idle-after", "0.3"]
    r = invoke(["agent", "run", f"{agents}:Slow", *idle, "--name", "s1"], env)
    assert r.exit_code == 0, r.output
    r = invoke(["get", "stats/effects", "--json"], env)
    assert orjson.loads(r.stdout)["value"] == 3
    r = invoke(["controller", *idle], env)  # settles the finished ones
    assert r.exit_code == 0
    r = invoke(["explain", "task/0", "--json"], env)
    [decision] = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert decision["activation"]["state"] == "done" and decision["activation"]["agent"] == "s1"
