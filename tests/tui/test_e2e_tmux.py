"""End to end: the real `blackboard tui` in a tmux terminal against a live scenario (a
controller and agent processes started from the command line), where a human approves an
escalation with one key and the board records it, and where an operator pauses a role under
load and resumes it (issue 15)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests_paths import AGENTS, POLICY, ROOT

import blackboard
from blackboard.control.decisions import explain
from blackboard.store.server import RedisServer

TMUX = shutil.which("tmux")
BLACKBOARD = str(Path(sys.executable).with_name("blackboard"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed (scripts/setup.sh installs it)"),
]


class Tmux:
    """A private tmux server (its own socket) running one session."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"bb-tui-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp

    def run(self, *args: str) -> str:
        assert TMUX is not None
        res = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return res.stdout if res.returncode == 0 else ""

    def start(self, command: list[str], env: dict[str, str]) -> None:
        script = self.tmp / "tui.sh"
        exports = "".join(f"export {k}='{v}'\n" for k, v in env.items())
        quoted = " ".join(f"'{c}'" for c in command)
        # COLUMNS/LINES from the calling environment would override the pane's size
        script.write_text(f"unset COLUMNS LINES\n{exports}exec {quoted}\n")
        assert TMUX is not None
        subprocess.run(
            [TMUX, "-L", self.socket, "new-session", "-d", "-s", "tui", "-x", "120", "-y", "32",
             f"sh {script}"],
            check=True, timeout=10,
        )  # fmt: skip

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "tui", *keys)

    def alive(self) -> bool:
        assert TMUX is not None
        res = subprocess.run([TMUX, "-L", self.socket, "has-session", "-t", "tui"],
                             capture_output=True, timeout=10)  # fmt: skip
        return res.returncode == 0

    def wait_for(self, *texts: str, wait: float = 30.0) -> str:
        deadline = time.monotonic() + wait
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waiting for {texts}; screen:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        self.run("kill-server")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    yield t
    t.kill()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [BLACKBOARD, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BLACKBOARD, *args], env=env, capture_output=True, text=True, timeout=30, cwd=ROOT
    )


def test_human_approves_an_escalation_in_the_real_tui(
    single_server: RedisServer, tmux: Tmux, tmp_path: Path
) -> None:
    board = "e2e" + uuid.uuid4().hex[:8]
    env = {**os.environ, "BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board}
    procs = [
        start(["controller", "--policy", str(POLICY), "--log-level", "warning"], env,
              tmp_path / "controller.log"),
        start(["agent", "run", f"{AGENTS}:Triage", "-o", "confidence=0.5"], env,
              tmp_path / "triage.log"),
        start(["agent", "run", f"{AGENTS}:Specialist", "-o", "answer_confidence=0.5"], env,
              tmp_path / "specialist.log"),
    ]  # fmt: skip
    try:
        tmux.start(
            [BLACKBOARD, "tui", "--user", "e2e"],
            {"BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board,
             "TERM": "xterm-256color"},
        )  # fmt: skip
        tmux.wait_for(" entries  ·  board " + board)
        ticket = '{"subject": "refund please", "tier": "basic", "status": "new"}'
        put = cli(["put", "ticket/1", ticket, "--writer", "customer"], env)
        assert put.returncode == 0, put.stderr
        tmux.wait_for("ticket/1 ")  # the entry table follows the log
        tmux.keys("5")
        tmux.wait_for("1 waiting for a human", "ticket/1/answer@v1", "from specialist")
        tmux.keys("a")
        tmux.wait_for("approved ticket/1/answer", "wrote v2 as human:e2e")
        got = cli(["get", "ticket/1/answer", "--json"], env)
        entry = json.loads(got.stdout)
        assert entry["version"] == 2 and entry["writer"] == "human:e2e"
        assert entry["value"]["confidence"] == 0.5
        assert entry["causation"]["activation"].startswith("human:")
        tmux.wait_for("0 waiting for a human")
        # the approval flows on: the controller granted the resolver on the human's write
        deadline = time.monotonic() + 15
        while True:
            explained = cli(["explain", "ticket/1/answer", "--json"], env)
            if '"resolver"' in explained.stdout:
                break
            assert time.monotonic() < deadline, explained.stdout + explained.stderr
            time.sleep(0.2)
        tmux.keys("q")
        deadline = time.monotonic() + 15
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "the TUI did not exit on q"
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


STEER_POLICY = """
name = "e2e-steer"
[roles.slow]
max_pending = 4

[[rule]]
name = "work"
on = "task/*"
role = "slow"
"""
TASKS = 80


async def _progress(url: str, board: str) -> tuple[int, int]:
    """(tasks granted, results written)."""
    async with blackboard.connect(url, board=board) as b:
        granted = 0
        for n in range(TASKS):
            decisions = await explain(b, f"task/{n}")
            granted += any(d["decision"] == "granted" for d in decisions)
        return granted, len(await b.keys("result/*"))


def progress(url: str, board: str) -> tuple[int, int]:
    return asyncio.run(_progress(url, board))


async def _put_tasks(url: str, board: str) -> None:
    async with blackboard.connect(url, board=board, writer="load") as b, b.batch() as batch:
        for n in range(TASKS):
            batch.put(f"task/{n}", {"n": n})


async def _exactly_once(url: str, board: str) -> list[str]:
    """What went wrong: a task not granted exactly once, a result written twice, effects."""
    problems = []
    async with blackboard.connect(url, board=board) as b:
        for n in range(TASKS):
            grants = [d for d in await explain(b, f"task/{n}") if d["decision"] == "granted"]
            result = await b.get(f"result/{n}")
            if len(grants) != 1 or result is None or result.version != 1:
                problems.append(f"task/{n}: {len(grants)} grants, result {result}")
        effects = await b.get("stats/effects")
        if effects is None or effects.value != TASKS:
            problems.append(f"stats/effects is {effects and effects.value}, not {TASKS}")
    return problems


def test_an_operator_pauses_a_role_under_load_and_resumes_it(
    single_server: RedisServer, tmux: Tmux, tmp_path: Path
) -> None:
    board = "e2e" + uuid.uuid4().hex[:8]
    url = single_server.url
    env = {**os.environ, "BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board}
    policy = tmp_path / "steer.toml"
    policy.write_text(STEER_POLICY)
    agents = ROOT / "tests" / "control" / "process_agents.py"
    procs = [
        start(["controller", "--policy", str(policy), "--log-level", "warning"], env,
              tmp_path / "controller.log"),
        start(["agent", "run", f"{agents}:Slow", "-o", "delay=0.4", "--name", "slow-1"], env,
              tmp_path / "slow.log"),
    ]  # fmt: skip
    try:
        tmux.start(
            [BLACKBOARD, "tui", "--user", "e2e"],
            {"BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board, "TERM": "xterm-256color"},
        )
        tmux.wait_for(" entries  ·  board " + board)
        tmux.keys("3")
        tmux.wait_for("slow-1", "controller lease: ")
        asyncio.run(_put_tasks(url, board))
        deadline = time.monotonic() + 30
        while progress(url, board)[1] < 4:  # under load: some done, most still to come
            assert time.monotonic() < deadline, "no task was done"
            time.sleep(0.2)
        tmux.keys("p")  # the agents table is focused: its agent's role, slow
        tmux.wait_for("Pause role slow?")
        tmux.keys("-l", "e2e pause")
        tmux.keys("Enter")
        tmux.wait_for("pause slow: paused (was running)")
        tmux.wait_for("paused by human:e2e: e2e pause")
        # what was granted finishes; nothing new is granted (so nothing new starts)
        deadline = time.monotonic() + 15
        while True:
            granted, done = progress(url, board)
            if granted == done:
                break
            assert time.monotonic() < deadline, f"{granted} granted, {done} done"
            time.sleep(0.2)
        assert done < TASKS, "the load ended before the pause: nothing to hold"
        time.sleep(2.0)
        assert progress(url, board) == (granted, done), "work started while paused"
        tmux.wait_for("paused by human:e2e: e2e pause  0 ")  # nothing in flight
        tmux.keys("u")
        tmux.wait_for("resume slow: resumed (was paused)")
        deadline = time.monotonic() + 60
        while progress(url, board)[1] < TASKS:
            assert time.monotonic() < deadline, f"not all done: {progress(url, board)}"
            time.sleep(0.5)
        assert asyncio.run(_exactly_once(url, board)) == []
        record = json.loads(cli(["get", "sys/roles/slow", "--json"], env).stdout)
        assert record["writer"] == "human:e2e" and record["value"]["mode"] == "running"
        explained = cli(["explain", "sys/roles/slow"], env).stdout
        assert "pause slow by human:e2e: e2e pause" in explained
        assert "resume slow by human:e2e" in explained
        tmux.keys("q")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
