"""CLI board commands through typer's CliRunner against a real server."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from blackboard.cli import app
from blackboard.store.server import RedisServer

runner = CliRunner()


@pytest.fixture
def env(redis_server: RedisServer, board_name: str) -> dict[str, str]:
    return {"BLACKBOARD_REDIS_URL": redis_server.url, "BLACKBOARD_BOARD": board_name}


def invoke(args: list[str], env: dict[str, str], stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, args, env=env, input=stdin)


def test_put_get_json_roundtrip(env: dict[str, str]) -> None:
    r = invoke(["put", "ticket/1", '{"state": "new"}', "--expect", "absent", "--json"], env)
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.stdout)["version"] == 1
    r = invoke(["get", "ticket/1", "--json"], env)
    assert r.exit_code == 0
    doc = orjson.loads(r.stdout)
    assert doc["value"] == {"state": "new"} and doc["writer"] == "cli"


def test_conflict_is_one_line_and_exit_1(env: dict[str, str]) -> None:
    assert invoke(["put", "k", "1"], env).exit_code == 0
    r = invoke(["put", "k", "2", "--expect", "absent"], env)
    assert r.exit_code == 1
    assert r.stderr.strip().startswith("error: conflict on 'k'")
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_input_exits_nonzero_with_reason(env: dict[str, str]) -> None:
    r = invoke(["put", "k", "{not json"], env)
    assert r.exit_code == 2 and "not valid JSON" in r.output
    r = invoke(["put", "bad key!", "1"], env)
    assert r.exit_code == 1 and "invalid key" in r.stderr
    r = invoke(["put", "k", "1", "--expect", "soon"], env)
    assert r.exit_code == 2
    r = invoke(["get", "missing"], env)
    assert r.exit_code == 1 and "no entry" in r.stderr


def test_unreachable_server(board_name: str) -> None:
    from blackboard.store.server import free_port

    env = {"BLACKBOARD_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    r = invoke(["get", "k", "--board", board_name], env)
    assert r.exit_code == 1 and "unreachable" in r.stderr


def test_missing_url_is_explained(board_name: str) -> None:
    r = runner.invoke(app, ["get", "k"], env={"BLACKBOARD_REDIS_URL": ""})
    assert r.exit_code == 2 and "no Redis URL" in r.stderr


def test_history_keys_watch(env: dict[str, str]) -> None:
    for v in ("1", "2", "3"):
        assert invoke(["put", "a/x", v], env).exit_code == 0
    assert invoke(["put", "b/y", "[1,2]"], env).exit_code == 0
    assert invoke(["delete", "b/y"], env).exit_code == 0
    r = invoke(["history", "a/x", "--json"], env)
    assert [orjson.loads(line)["version"] for line in r.stdout.splitlines()] == [3, 2, 1]
    r = invoke(["keys", "a/*", "--json"], env)
    assert orjson.loads(r.stdout) == ["a/x"]
    r = invoke(["watch", "--since", "0", "--idle", "0.2", "--json"], env)
    changes = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert [c["revision"] for c in changes] == [1, 2, 3, 4, 5]
    assert changes[-1]["kind"] == "delete"
    r = invoke(["watch", "b/*", "--since", "0", "--count", "1", "--json"], env)
    assert [orjson.loads(line)["key"] for line in r.stdout.splitlines()] == ["b/y"]


def test_stdin_value_and_idempotency(env: dict[str, str]) -> None:
    args = ["put", "k", "-", "-i", "once", "--json"]
    first = orjson.loads(invoke(args, env, stdin='{"a": 1}').stdout)
    again = orjson.loads(invoke(args, env, stdin='{"a": 1}').stdout)
    assert first["version"] == again["version"] == 1
