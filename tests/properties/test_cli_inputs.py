"""Random and hostile input to the command line and the file loaders: every command ends with
exit code 0, 1 or 2; a failure is one ``error:`` line on stderr and never a traceback; a
refused command writes nothing; board data never reaches the terminal as control sequences
(CliRunner against a real server)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

import blackboard
from blackboard import PolicyError, parse_policy
from blackboard.cli import app
from blackboard.control.policy import decode_policy
from blackboard.scenario import ScenarioError, load_scenario, parse_scenario
from blackboard.store.server import RedisServer

runner = CliRunner()
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = [
    "",
    " ",
    "-",
    "--",
    "-1",
    "0",
    "1e9",
    "99999999999999999999999",
    "NaN",
    "[/]",
    "[bold]x[/bold]",
    "[link=file:///etc/passwd]x[/link]",
    "\x1b[2J\x1b[H",
    "\x1b]0;title\x07",
    "\x9b31m",
    "\u202eevil",
    "a\nb",
    "\x00",
    "a/../b",
    "../x",
    "/abs",
    "a//b",
    "{}",
    "bad{board}",
    "²",
    "tags.²",
    "ticket/[z-a]",
    "é" * 600,
]
text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30))
number = st.one_of(st.integers(-(10**20), 10**20).map(str), text)
value = st.one_of(
    st.sampled_from(['{"a": 1}', "1", '"[/]"', '"\\u001b[31m"', "{not json", "-", "null"]),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    ).map(lambda v: orjson.dumps(v).decode()),
    text,
)


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [name, v]))


def command() -> st.SearchStrategy[list[str]]:
    key = st.one_of(st.sampled_from(["k", "ticket/1", "a/b"]), text)
    pattern = st.one_of(st.sampled_from(["*", "a/*", "ticket/[z-a]"]), text)
    writer = option("--writer", text)
    expect = option("--expect", st.one_of(st.sampled_from(["absent", "any", "1"]), number))
    idle = ["--idle", "0.05"]
    return st.one_of(
        st.tuples(key, value, expect, writer, option("--idempotency-key", text)).map(
            lambda t: ["put", t[0], t[1], *t[2], *t[3], *t[4]]
        ),
        st.tuples(key, option("--version", number), option("--at-revision", number)).map(
            lambda t: ["get", t[0], *t[1], *t[2]]
        ),
        st.tuples(key, expect, writer).map(lambda t: ["delete", t[0], *t[1], *t[2]]),
        st.tuples(key, option("--limit", number)).map(lambda t: ["history", t[0], *t[1]]),
        st.tuples(pattern, option("--limit", number)).map(lambda t: ["keys", t[0], *t[1]]),
        st.tuples(pattern, option("--since", number), option("--count", number)).map(
            lambda t: ["watch", t[0], *t[1], *t[2], *idle]
        ),
        st.tuples(key, option("--limit", number)).map(lambda t: ["explain", t[0], *t[1]]),
        st.tuples(key, value, option("--confidence", number), writer).map(
            lambda t: ["propose", t[0], t[1], *t[2], *t[3]]
        ),
        st.tuples(option("--board", text), option("--port", number)).map(
            lambda t: ["server", *t[1], "--bogus", *t[0]]  # never starts: --bogus is refused
        ),
        st.lists(text, max_size=4),
    )


def check_result(r: Result) -> None:
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert bad not in r.stdout and bad not in r.stderr, repr(r.output)
    if r.exit_code:
        lines = r.stderr.splitlines()
        # `blackboard` alone, or a group alone, prints its help (exit 2), not an error
        if not (r.exit_code == 2 and "Usage" in r.stdout + r.stderr and not lines[-1:]):
            assert len(lines) == 1 and lines[0].startswith("error: "), repr(r.stderr)


def _raw_state() -> Any:
    # tests/conftest.py's helper, loaded by path: other folders have a conftest.py too, so
    # `from conftest import ...` depends on which one was imported first
    spec = importlib.util.spec_from_file_location(
        "_tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.raw_state


def state(url: str, board: str) -> dict[bytes, Any]:
    raw_state = _raw_state()

    async def go() -> dict[bytes, Any]:
        async with blackboard.connect(url, board=board) as b:
            return await raw_state(b)

    return asyncio.run(go())


@pytest.fixture
def seeded(redis_server: RedisServer) -> tuple[str, str]:
    """A board with a few entries (one written by a hostile writer) for the commands to read."""
    board = "p" + uuid.uuid4().hex[:10]

    async def go() -> None:
        async with blackboard.connect(
            redis_server.url, board=board, writer="[/]\x9b31m\u202e"
        ) as b:
            await b.put("k", {"v": "[/] \x1b[2J"})
            await b.put("a/b", [1, 2])
            await b.delete("a/b")

    asyncio.run(go())
    return redis_server.url, board


@SETTINGS
@given(args=command())
def test_any_command_line_is_one_line_or_success(seeded: tuple[str, str], args: list[str]) -> None:
    url, board = seeded
    before = state(url, board)
    r = runner.invoke(app, args, env={"BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board})
    check_result(r)
    if r.exit_code:
        assert state(url, board) == before, f"{args!r} failed and still wrote"


POLICY = 'name = "p"\n\n[[rule]]\nname = "r"\non = "t/*"\nrole = "x"\n'
policy_bytes = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.tuples(st.integers(0, len(POLICY)), st.binary(min_size=1, max_size=8)).map(
        lambda t: POLICY.encode()[: t[0]] + t[1] + POLICY.encode()[t[0] :]
    ),
    st.tuples(text, text).map(
        lambda t: (
            POLICY.replace('"t/*"', orjson.dumps(t[0]).decode())
            + f"[rule.when]\n{orjson.dumps(t[1]).decode()} = 1\n"
        ).encode()
    ),
)


@SETTINGS
@given(data=policy_bytes)
def test_any_policy_file_is_valid_or_one_clear_line(seeded: tuple[str, str], data: bytes) -> None:
    url, board = seeded
    try:
        parse_policy(decode_policy(data, "p.toml"), "p.toml")
    except PolicyError as exc:
        assert str(exc).startswith("invalid policy p.toml") and "\n" not in str(exc).strip()
    before = state(url, board)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.toml"
        path.write_bytes(data)
        env = {"BLACKBOARD_REDIS_URL": url, "BLACKBOARD_BOARD": board}
        r = runner.invoke(app, ["policy", "apply", str(path)], env=env)
        check_result(r)
        if r.exit_code:
            assert state(url, board) == before
        secrets = Path(tmp) / "secrets"
        r = runner.invoke(
            app, ["acl", "generate", "--policy", str(path), "--secrets-dir", str(secrets)]
        )
        check_result(r)
        assert r.exit_code in (0, 2)
        if r.exit_code:
            assert not secrets.exists()


SCENARIO = """\
name = "s"
board = "b"
policy = "p.toml"

[workload]
items = 1
burst = true

[[workload.values]]
value = { status = "new" }
"""
scenario_bytes = st.one_of(
    st.binary(max_size=200),
    st.tuples(st.integers(0, len(SCENARIO)), st.binary(min_size=1, max_size=8)).map(
        lambda t: SCENARIO.encode()[: t[0]] + t[1] + SCENARIO.encode()[t[0] :]
    ),
    text.map(lambda n: SCENARIO.replace('"s"', orjson.dumps(n).decode(), 1).encode()),
    text.map(lambda p: SCENARIO.replace('"p.toml"', orjson.dumps(p).decode(), 1).encode()),
)


@SETTINGS
@given(data=scenario_bytes)
def test_any_scenario_file_is_valid_or_one_clear_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.toml").write_text(POLICY)
        path = Path(tmp) / "s.toml"
        path.write_bytes(data)
        try:
            plan = load_scenario(path)
        except ScenarioError as exc:
            assert str(exc).startswith(f"invalid scenario {path}")
        else:
            assert "/" not in plan.scenario.name and not plan.scenario.name.startswith(".")
        r = runner.invoke(app, ["run", str(path), "--check"])
        check_result(r)
        assert r.exit_code in (0, 2)
    with contextlib.suppress(ScenarioError):
        parse_scenario(data.decode("utf-8", "replace"), "s.toml")
