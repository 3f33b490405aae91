"""Every bad input to the command line is one line on stderr with exit code 1 or 2, and
board data never reaches the terminal as markup or control sequences (CliRunner, real
server)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

import blackboard
from blackboard.cli import app
from blackboard.store.server import RedisServer

runner = CliRunner()

POLICY = """\
name = "p"

[[rule]]
name = "r"
on = "{on}"
role = "triage"
"""


@pytest.fixture
def env(redis_server: RedisServer, board_name: str) -> dict[str, str]:
    return {"BLACKBOARD_REDIS_URL": redis_server.url, "BLACKBOARD_BOARD": board_name}


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, args, env=env or {"BLACKBOARD_REDIS_URL": ""})


def one_error_line(r: Result, code: int) -> str:
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["put"], "blackboard put: Missing argument 'key'."),
        (["nope"], "No such command 'nope'"),
        (["put", "k", "1", "--bord", "x"], "No such option: --bord"),
        (["put", "k", "1", "--expect", "soon"], "'soon': use a version number"),
        (["watch", "--since", "-5"], "'--since': Input should be greater than or equal to 0"),
        (["keys", "a/*", "--limit", "0"], "'--limit': Input should be greater than or equal to 1"),
        (["history", "k", "--limit", "-1"], "'--limit'"),
        (["get", "k", "--version", "0"], "'--version'"),
        (["watch", "--count", "0"], "'--count'"),
        (["explain", "k", "--limit", "0"], "'--limit'"),
        (["server", "--port", "-1"], "'--port': Input should be greater than or equal to 1"),
        (["server", "--port", "70000"], "'--port': Input should be less than or equal to 65535"),
        (["put", "k", "1", "--board", "bad{board}"], "'bad{board}': board name may use only"),
        (["put", "k", "1", "--writer", "a\x1b[31mb"], "'a\\x1b[31mb': use 1 to 200 printable"),
        (["put", "k", "1", "--writer", ""], "use 1 to 200 printable characters"),
        (["propose", "k", "1", "--writer", "x\ny"], "'--writer'"),
        (["resolve", "k", "1", "--writer", "\x07"], "'--writer'"),
        (["agent", "run", "a.py:A", "--name", "\x00"], "'--name'"),
        (["tui", "--user", "\x1b]0;pwned\x07"], "'--user'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], says: str) -> None:
    env = {"BLACKBOARD_REDIS_URL": "redis://127.0.0.1:1/0"}
    line = one_error_line(invoke(args, env), 2)
    assert says in line
    assert "\x1b" not in line and "\x07" not in line


def test_no_arguments_print_the_help() -> None:
    r = invoke([])
    assert r.exit_code == 2 and "Usage" in r.output and "error" not in r.output


def test_a_refused_write_writes_nothing(env: dict[str, str]) -> None:
    one_error_line(invoke(["put", "k", "1", "--writer", "\x1b[2J"], env), 2)
    one_error_line(invoke(["put", "k", "1", "--expect", "0"], env), 2)
    one_error_line(invoke(["get", "k"], env), 1)
    r = invoke(["watch", "--since", "0", "--idle", "0.1", "--json"], env)
    assert r.exit_code == 0 and r.stdout == ""


def test_watch_since_a_future_revision_says_it_waits(env: dict[str, str]) -> None:
    assert invoke(["put", "k", "1"], env).exit_code == 0
    r = invoke(["watch", "--since", "1000", "--idle", "0.1"], env)
    assert r.exit_code == 0 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"note: board {env['BLACKBOARD_BOARD']} is at revision 1; waiting for revision 1001"
    ]


# the server refuses C0 controls in a writer id; C1 controls and bidi overrides pass
HOSTILE_WRITER = "[bold]evil[/] \x9b31m\u202etitle"
HOSTILE_VALUE = {"text": "[/] [bold red]x[/bold red] \x1b[2J\x9b31m \u202eabc"}


def test_board_data_is_printed_as_text_never_as_markup_or_escapes(
    env: dict[str, str], redis_server: RedisServer
) -> None:
    async def write() -> None:
        board = env["BLACKBOARD_BOARD"]
        async with blackboard.connect(redis_server.url, board=board, writer=HOSTILE_WRITER) as b:
            await b.put("k/1", HOSTILE_VALUE)

    asyncio.run(write())
    for args in (
        ["get", "k/1"],
        ["history", "k/1"],
        ["watch", "--since", "0", "--idle", "0.1"],
        ["keys"],
        ["get", "k/1", "--json"],
        ["watch", "--since", "0", "--idle", "0.1", "--json"],
    ):
        r = invoke(args, env)
        assert r.exit_code == 0, (args, r.output, r.exception)
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in r.stdout, (args, r.stdout)
    r = invoke(["watch", "--since", "0", "--idle", "0.1"], env)
    assert "[bold]evil[/]" in r.stdout and "[/] [bold red]x[/bold red]" in r.stdout
    doc = orjson.loads(invoke(["get", "k/1", "--json"], env).stdout)
    assert doc["value"] == HOSTILE_VALUE and doc["writer"] == HOSTILE_WRITER


def test_policy_apply_refuses_what_would_crash_the_controller(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(POLICY.format(on="ticket/[z-a]"))
    line = one_error_line(invoke(["policy", "apply", str(path)], env), 2)
    assert line == (
        f"error: invalid policy {path}:5: rule.0.on: pattern 'ticket/[z-a]': "
        "bad character range z-a"
    )
    path.write_text(POLICY.format(on="ticket/*") + '[rule.when]\n"tags.²" = 1\n')
    line = one_error_line(invoke(["policy", "apply", str(path)], env), 2)
    assert line.startswith(f"error: invalid policy {path}:8: rule.0.when: path 'tags.²'")
    one_error_line(invoke(["policy", "show"], env), 1)  # nothing was applied


def test_a_policy_that_is_not_utf8_is_one_line_everywhere(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(POLICY.format(on="t/*").encode() + b"# \xff\n")
    secrets = tmp_path / "secrets"
    for args in (
        ["policy", "apply", str(path)],
        ["acl", "generate", "--policy", str(path), "--secrets-dir", str(secrets)],
        ["controller", "--policy", str(path)],
    ):
        line = one_error_line(invoke(args, env), 2)
        assert line == (
            f"error: invalid policy {path}:7: not UTF-8 text: byte 0xff at column 3 (TOML is UTF-8)"
        )
    assert not secrets.exists()


def test_acl_generate_with_a_bad_board_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(POLICY.format(on="t/*"))
    secrets = tmp_path / "secrets"
    args = ["acl", "generate", "--policy", str(path), "--board", "bad{board}"]
    line = one_error_line(invoke([*args, "--secrets-dir", str(secrets)]), 2)
    assert "'bad{board}': board name may use only A-Z a-z 0-9 _ - ." in line
    assert not secrets.exists()


@pytest.fixture
def resetting_server() -> Iterator[int]:
    """A TCP port whose server resets every connection, as a TLS-only Redis does to a
    plain-text client (and to a TLS client without the certificate it requires)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(1024)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_a_connection_reset_names_tls_as_the_likely_cause(resetting_server: int) -> None:
    env = {"BLACKBOARD_REDIS_URL": f"redis://127.0.0.1:{resetting_server}/0"}
    line = one_error_line(invoke(["get", "k", "--board", "b"], env), 1)
    assert "Redis is unreachable" in line
    assert "it may expect TLS (use rediss://)" in line
    assert "BLACKBOARD_TLS_CERT_FILE" in line
