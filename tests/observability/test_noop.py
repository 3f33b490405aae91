"""Without OpenTelemetry installed (simulated: its modules made unimportable) telemetry is a
no-op: nothing to enable, the CLI says what to install, and a whole system runs as before."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from runners import eventually, running
from typer.testing import CliRunner

import blackboard
from blackboard import telemetry
from blackboard.cli import app
from blackboard.store.server import RedisServer
from blackboard.telemetry import state

POLICY = """
name = "n"
[[rule]]
name = "work"
on = "job/*"
role = "worker"
"""


class Worker(blackboard.Agent):
    role = "worker"

    async def handle(self, activation: blackboard.Activation, board: Any) -> None:
        with telemetry.span("inner"):
            await board.put(f"done/{activation.key[4:]}", {"ok": True})


@pytest.fixture
def no_otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every opentelemetry module unimportable, as when the otel extra is not installed."""
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    telemetry.disable()
    yield
    telemetry.disable()


def test_enable_and_a_metrics_port_say_what_to_install(no_otel: None) -> None:
    with pytest.raises(blackboard.TelemetryUnavailableError, match=r"blackboard\[otel\]"):
        telemetry.enable()
    with pytest.raises(blackboard.TelemetryUnavailableError, match="--metrics-port"):
        telemetry.setup("t", metrics_port=0, env={})
    # OTEL_* alone: a warning, and the process runs without telemetry
    done = telemetry.setup("t", env={"OTEL_TRACES_EXPORTER": "console"})
    assert not done.active and not telemetry.tracing() and not telemetry.metrics_on()
    assert telemetry.span("x") is state.NULL and telemetry.current_trace() is None


def test_cli_metrics_port_without_the_sdk_exits_2(
    no_otel: None, single_server: RedisServer, board_name: str
) -> None:
    env = {"BLACKBOARD_REDIS_URL": single_server.url, "BLACKBOARD_BOARD": board_name}
    r = CliRunner().invoke(app, ["controller", "--metrics-port", "0", "--until-idle"], env=env)
    assert r.exit_code == 2, r.output
    assert "pip install 'blackboard[otel]'" in r.output


async def test_a_system_runs_untraced(no_otel: None, board: blackboard.Board) -> None:
    async with running(board, POLICY, [Worker()]):
        await board.put("job/1", {"n": 1})
        await eventually(lambda: board.get("done/1"), what="done/1")
    events: Any = await board.redis.xrange(board.keys_.log)
    assert events and all(b"tp" not in fields for _id, fields in events)
    entry = await board.get("done/1")
    assert entry is not None and entry.causation is not None and entry.causation.trace is None
    assert state.api is None or not telemetry.tracing()
