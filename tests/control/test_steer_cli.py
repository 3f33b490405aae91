"""`blackboard role ...` and `blackboard breaker ...` through typer's CliRunner against a real
server, with a controller leading in a thread of its own (the CLI runs its own event loop)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import orjson
import pytest
from typer.testing import CliRunner

import blackboard
from blackboard.cli import app
from blackboard.store.server import RedisServer

runner = CliRunner()

POLICY = """
name = "steer"
[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


@pytest.fixture
def env(single_server: RedisServer, board_name: str) -> dict[str, str]:
    return {"BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board_name}


def invoke(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args, env=env)


class ControllerThread:
    """A controller leading `board` in a thread with its own event loop, until `stop()`."""

    def __init__(self, url: str, board: str) -> None:
        self.url, self.board = url, board
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),))
        self.leading = threading.Event()

    async def main(self) -> None:
        self.stopping = asyncio.Event()
        async with blackboard.connect(self.url, board=self.board) as b:
            controller = blackboard.Controller(b, name="ctl-cli")
            task = asyncio.create_task(controller.run(self.stopping))
            await controller.leading.wait()
            self.leading.set()
            await task

    def start(self) -> None:
        self.thread.start()
        assert self.leading.wait(10), "the controller did not lead"

    def stop(self) -> None:
        assert self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(20)
        self.loop.close()


@pytest.fixture
def controller(env: dict[str, str]) -> Iterator[ControllerThread]:
    # the thread's log lines would land in whatever stderr CliRunner captures at the time
    # (an earlier test may have sent the package's logging to stderr)
    logger = logging.getLogger("blackboard")
    level = logger.level
    logger.setLevel(logging.ERROR)
    ctl = ControllerThread(env["BLACKBOARD_REDIS_URL"], env["BLACKBOARD_BOARD"])
    try:
        yield ctl
    finally:
        if ctl.thread.is_alive():
            ctl.stop()
        logger.setLevel(level)


def test_role_and_breaker_commands(
    env: dict[str, str], controller: ControllerThread, tmp_path: object
) -> None:
    policy = f"{tmp_path}/steer.toml"
    with open(policy, "w") as f:
        f.write(POLICY)
    assert invoke(["policy", "apply", policy], env).exit_code == 0
    # no controller yet: the request is queued, and says so
    r = invoke(["role", "pause", "worker", "--reason", "deploy", "--actor", "human:ops",
                "--wait", "0"], env)  # fmt: skip
    assert r.exit_code == 0 and "asked the controller to pause worker" in r.stdout
    r = invoke(["role", "drain", "worker", "--actor", "human:ops", "--wait", "0.3"], env)
    assert r.exit_code == 1 and "no controller answered drain worker within 0.3s" in r.stderr
    controller.start()
    r = invoke(["role", "resume", "worker", "--expect", "0", "--actor", "human:ops"], env)
    assert r.exit_code == 1, r.output
    assert "error: resume worker refused: conflict: worker is at steering version 2" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = invoke(["role", "resume", "worker", "--expect", "2", "--reason", "done",
                "--actor", "human:ops"], env)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "worker: resumed (was draining) (as human:ops: done)"
    r = invoke(["breaker", "open", "worker", "--reason", "vendor down"], env)
    assert r.exit_code == 0 and "worker: breaker open until reset by hand (as human:" in r.stdout
    r = invoke(["role", "list"], env)
    assert r.exit_code == 0 and "worker" in r.stdout and "running" in r.stdout
    r = invoke(["role", "list", "--json"], env)
    worker = orjson.loads(r.stdout)["worker"]
    assert worker["breaker"] == "open" and worker["breaker_held"].endswith(": vendor down")
    r = invoke(["breaker", "reset", "worker"], env)
    assert r.exit_code == 0 and "breaker closed (was held open)" in r.stdout
    r = invoke(["role", "drain", "worker", "--until-drained", "5"], env)
    assert r.exit_code == 0 and "drained: nothing in flight" in r.stdout, r.output
    r = invoke(["role", "pause", "nobody"], env)
    assert r.exit_code == 1 and "no role 'nobody' in the policy in force" in r.stderr
    r = invoke(["explain", "sys/roles/worker"], env)
    assert "operator worker on sys/roles/worker" in r.stdout
    assert "resume worker by human:ops: done" in r.stdout
    r = invoke(["get", "sys/roles/worker", "--json"], env)
    record = orjson.loads(r.stdout)
    assert record["value"]["mode"] == "draining" and record["value"]["drained"] is True


def test_bad_arguments_exit_2(env: dict[str, str]) -> None:
    for args in (
        ["role", "pause", "a b"],
        ["role", "pause", "x", "--expect", "-1"],
        ["role", "pause", "x", "--actor", ""],
        ["breaker", "open"],
        ["role", "stop", "x"],
    ):
        r = invoke(args, env)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
