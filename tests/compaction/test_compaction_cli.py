"""Compaction commands through typer's CliRunner, and the compactor process with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import blackboard
from blackboard.cli import app
from blackboard.store.server import RedisServer

runner = CliRunner()
POLICY = Path(__file__).parents[2] / "policies" / "merge-example.toml"


@pytest.fixture
def env(redis_server: RedisServer, board_name: str) -> dict[str, str]:
    return {"BLACKBOARD_REDIS_URL": redis_server.url, "BLACKBOARD_BOARD": board_name}


def invoke(args: list[str], env: dict[str, str], stdin: bytes | str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args, env=env, input=stdin)


def test_propose_then_compactor_until_idle_merges(env: dict[str, str]) -> None:
    for who, verdict in (("d1", "fraud"), ("d2", "ok"), ("d3", "fraud")):
        r = invoke(["propose", "verdict/7", f'"{verdict}"', "--writer", who], env)
        assert r.exit_code == 0, r.output
    r = invoke(["proposals"], env)
    assert r.stdout.split() == ["verdict/7"]
    r = invoke(["proposals", "verdict/7"], env)
    assert [orjson.loads(line)["proposer"] for line in r.stdout.splitlines()] == ["d1", "d2", "d3"]
    r = invoke(["compactor", "--policy", str(POLICY), "--until-idle", "--name", "c1"], env)
    assert r.exit_code == 0, r.output
    assert "verdict/7: merged 3 proposals by majority" in r.stdout
    assert "stopped: 1 merged" in r.stdout
    r = invoke(["get", "verdict/7", "--json"], env)
    doc = orjson.loads(r.stdout)
    assert (doc["value"], doc["kind"], doc["writer"]) == ("fraud", "merge", "c1")


def test_escalation_resolved_from_the_command_line(env: dict[str, str]) -> None:
    invoke(["propose", "contract/1", '"sign"', "--writer", "legal-bot"], env)
    invoke(["propose", "contract/1", '"reject"', "--writer", "risk-bot"], env)
    r = invoke(["compactor", "--policy", str(POLICY), "--until-idle"], env)
    assert "escalated to a human" in r.stdout
    r = invoke(["resolve", "contract/1", '"sign"', "--writer", "human:ann"], env)
    assert r.exit_code == 0, r.output
    r = invoke(["compactor", "--policy", str(POLICY), "--until-idle"], env)
    assert "human decision by human:ann" in r.stdout
    assert orjson.loads(invoke(["get", "contract/1", "--json"], env).stdout)["value"] == "sign"
    r = invoke(["resolve", "contract/1", '"x"'], env)
    assert r.exit_code == 1
    assert r.stderr.strip() == "error: no merge escalation for 'contract/1'"


def test_bad_policy_file_is_one_line_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[merge]]\npattern = "*"\nstrategy = "coin-flip"\n')
    r = invoke(["compactor", "--policy", str(bad), "--until-idle"], env)
    assert r.exit_code == 2 and "table #1" in r.stderr and "strategy" in r.stderr
    r = invoke(["compactor", "--policy", str(tmp_path / "missing.toml")], env)
    assert r.exit_code == 2 and "cannot read" in r.stderr


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_export_import_roundtrip(env: dict[str, str], tmp_path: Path, fmt: str) -> None:
    invoke(["put", "ticket/1", '{"state": "new"}'], env)
    invoke(["put", "ticket/1", '{"state": "open"}'], env)
    invoke(["propose", "ticket/1", '{"state": "closed"}', "--writer", "bot"], env)
    r = invoke(["export", "--format", fmt, "--history"], env)
    assert r.exit_code == 0, r.output
    assert "at revision 3" in r.stderr
    path = tmp_path / f"board.{fmt}"
    path.write_bytes(r.stdout_bytes)
    target = {**env, "BLACKBOARD_BOARD": env["BLACKBOARD_BOARD"] + "-copy"}
    r = invoke(["import", str(path)], target)
    assert r.exit_code == 0, r.output
    assert "imported 1 entries (2 versions) and 1 proposals" in r.stdout
    got = orjson.loads(invoke(["get", "ticket/1", "--json"], target).stdout)
    assert (got["version"], got["revision"], got["value"]) == (2, 2, {"state": "open"})
    r = invoke(["import", str(path)], target)  # not empty any more
    assert r.exit_code == 1 and "is not empty" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = invoke(
        ["import", "-"],
        {**target, "BLACKBOARD_BOARD": "fresh-" + env["BLACKBOARD_BOARD"]},
        stdin="nope",
    )
    assert r.exit_code == 1 and "not a snapshot" in r.stderr


@pytest.mark.slow
async def test_compactor_process_stops_cleanly_on_sigterm(
    single_server: RedisServer, board_name: str
) -> None:
    main = "import sys; from blackboard.cli import main; sys.argv[0] = 'blackboard'; main()"
    env = {**os.environ, "BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board_name}
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-c", main, "compactor", "--interval", "0.05", "--policy", str(POLICY)],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with blackboard.connect(single_server.url, board=board_name) as b:
            await b.bind(writer="a").propose("k", 1)
            await b.bind(writer="b").propose("k", 2)
            deadline = time.monotonic() + 30
            while (await b.get("k")) is None:
                assert proc.returncode is None, "the compactor exited"
                assert time.monotonic() < deadline, "the compactor never merged"
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, stderr
            assert b"lease acquired" in stdout and b"stopped: 1 merged" in stdout
            assert await b.redis.get(b.keys_.compactor_lease) is None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
