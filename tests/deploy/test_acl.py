"""Least privilege on a real server: generated ACL users per role (fakeredis does not
enforce ACLs over RESP3, so these run against redis-server / Valkey)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import blackboard
from blackboard.board.connection import redis_from_url
from blackboard.control.acl import acl_users, apply_users, render_aclfile, write_secrets
from blackboard.control.policy import parse_policy
from blackboard.control.policy_board import apply_policy
from blackboard.store.server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def users(redis_server: RedisServer, board_name: str, tmp_path: Path) -> AsyncIterator[Path]:
    policy = parse_policy((ROOT / "policies/support.toml").read_text())
    generated = acl_users(policy, board_name)
    hashes = write_secrets(generated, tmp_path)
    admin = redis_from_url(redis_server.url, blackboard.Settings())
    await apply_users(admin, generated, hashes)
    yield tmp_path
    for user in generated:
        await admin.execute_command("ACL", "DELUSER", user.name)
    await admin.aclose()


def as_user(board: str, role: str, secrets: Path) -> blackboard.Settings:
    name = (
        f"bb:{board}:role:{role}"
        if role not in ("controller", "compactor")
        else f"bb:{board}:{role}"
    )
    return blackboard.Settings(
        redis_username=name, redis_password_file=str(secrets / f"{name}.password")
    )


async def test_role_writes_its_own_entries_and_nothing_else(
    redis_server: RedisServer, board_name: str, users: Path
) -> None:
    async with blackboard.connect(redis_server.url, board=board_name) as admin:
        await admin.put("ticket/1", {"status": "new"})
    settings = as_user(board_name, "triage", users)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        assert (await b.put("ticket/1/triage", {"category": "billing"})).version == 1
        assert (await b.apply("stats/triaged", "add", 1)).value == 1
        got = await b.get("ticket/1")  # reads the whole board
        assert got is not None and got.value == {"status": "new"}
        assert [e.version for e in await b.history("ticket/1")] == [1]
        assert await b.keys("ticket/*") == ["ticket/1", "ticket/1/triage"]
        for key in ("ticket/1", "ticket/1/answer", "stats/resolved"):
            with pytest.raises(blackboard.PermissionDeniedError):
                await b.put(key, "not mine")
        with pytest.raises(PermissionError):  # PermissionDeniedError is a PermissionError
            await b.transact([blackboard.Put("ticket/1/triage", 2), blackboard.Put("ticket/1", 3)])
        # nothing of the refused commits was written
        assert (await b.get("ticket/1")).value == {"status": "new"}  # type: ignore[union-attr]
        assert (await b.get("ticket/1/triage")).version == 1  # type: ignore[union-attr]


async def test_role_cannot_run_dangerous_commands_or_sneak_keys_into_scripts(
    redis_server: RedisServer, board_name: str, users: Path
) -> None:
    settings = as_user(board_name, "triage", users)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "*"), ("SCRIPT", "FLUSH")):
            with pytest.raises(Exception, match=r"(?i)noperm|permission"):
                await b.redis.execute_command(*command)
        # a script that writes a key it did not declare (and may not write) is refused
        sneaky = "return redis.call('SET', 'bb:{" + board_name + "}:e:ticket/9', 'x')"
        with pytest.raises(Exception, match=r"(?i)noperm|permission|access"):
            await b.redis.execute_command("EVAL", sneaky, 0)
        # another board is out of reach entirely
        with pytest.raises(Exception, match=r"(?i)noperm|permission"):
            await b.redis.execute_command("GET", "bb:{other}:rev")


async def test_controller_and_compactor_users_can_connect(
    redis_server: RedisServer, board_name: str, users: Path
) -> None:
    for kind in ("controller", "compactor"):
        settings = as_user(board_name, kind, users)
        async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
            assert await b.revision() >= 0
    compactor = as_user(board_name, "compactor", users)
    async with blackboard.connect(redis_server.url, board=board_name, settings=compactor) as b:
        assert (await b.put("anything/at/all", 1)).version == 1


def test_aclfile_has_hashes_not_passwords(board_name: str, tmp_path: Path) -> None:
    policy = parse_policy((ROOT / "policies/support.toml").read_text())
    generated = acl_users(policy, board_name)
    hashes = write_secrets(generated, tmp_path)
    text = render_aclfile(generated, hashes)
    for user in generated:
        password = (tmp_path / f"{user.name}.password").read_text().strip()
        assert password not in text
        assert f"#{hashes[user.name]}" in text
        assert (tmp_path / f"{user.name}.password").stat().st_mode & 0o077 == 0
    # stable: a second run keeps the passwords
    assert write_secrets(generated, tmp_path) == hashes


def _proc_env(url: str, board: str, user: str, secrets: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLACKBOARD_")}
    env.update(
        BLACKBOARD_REDIS_URL=url,
        BLACKBOARD_BOARD=board,
        BLACKBOARD_REDIS_USERNAME=user,
        BLACKBOARD_REDIS_PASSWORD_FILE=str(secrets / f"{user}.password"),
    )
    return env


async def test_controller_and_agent_processes_run_as_their_own_users(
    single_server: RedisServer, tmp_path: Path
) -> None:
    board_name = "acl" + os.urandom(4).hex()
    policy_source = (ROOT / "policies/support.toml").read_text()
    generated = acl_users(parse_policy(policy_source), board_name)
    hashes = write_secrets(generated, tmp_path)
    admin = redis_from_url(single_server.url, blackboard.Settings())
    await apply_users(admin, generated, hashes)
    await admin.aclose()
    async with blackboard.connect(single_server.url, board=board_name, writer="admin") as b:
        await apply_policy(b, policy_source, "support.toml")
        procs = [
            subprocess.Popen(  # noqa: ASYNC220 -- starting a process does not block
                [sys.executable, "-m", "blackboard", *args],
                env=_proc_env(single_server.url, board_name, user, tmp_path),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for user, args in [
                (f"bb:{board_name}:controller", ["controller"]),
                (f"bb:{board_name}:role:triage", ["agent", "run", "agents/support.py:Triage"]),
            ]
        ]
        try:
            await b.put("ticket/1", {"status": "new", "subject": "refund please", "tier": "vip"})
            deadline = time.monotonic() + 30
            while (got := await b.get("ticket/1/triage")) is None:
                assert all(p.poll() is None for p in procs), [
                    p.stderr.read().decode() if p.stderr else "" for p in procs
                ]
                assert time.monotonic() < deadline, "triage never ran under its ACL user"
                await asyncio.sleep(0.05)
            assert got.writer.startswith("triage") or got.causation is not None
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            codes = [p.wait(timeout=30) for p in procs]
            errs = [p.stderr.read().decode() if p.stderr else "" for p in procs]
            for p in procs:
                if p.stderr:
                    p.stderr.close()
        assert codes == [0, 0], errs


def test_cli_generate_writes_a_loadable_aclfile(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from blackboard.cli import app

    acl_file, secrets = tmp_path / "users.acl", tmp_path / "secrets"
    result = CliRunner().invoke(
        app,
        [
            "acl",
            "generate",
            "--policy",
            str(ROOT / "policies/support.toml"),
            "--board",
            "ops",
            "--secrets-dir",
            str(secrets),
            "--out",
            str(acl_file),
        ],
    )
    assert result.exit_code == 0, result.output
    server = RedisServer(extra_args=["--aclfile", str(acl_file)]).start()
    try:
        import redis as sync_redis

        password = (secrets / "bb:ops:role:triage.password").read_text().strip()
        client = sync_redis.Redis(
            unix_socket_path=server.socket_path, username="bb:ops:role:triage", password=password
        )
        assert client.ping()
        with pytest.raises(sync_redis.exceptions.NoPermissionError):
            client.set("bb:{ops}:e:ticket/1", "x")
        client.close()
    finally:
        server.close()
    bad = CliRunner().invoke(app, ["acl", "generate", "--policy", str(tmp_path / "missing.toml")])
    assert bad.exit_code == 2 and "cannot read" in bad.stderr
    # a password file others may read is refused in one line, never reused or a traceback
    (secrets / "bb:ops:role:triage.password").chmod(0o644)
    args = ["acl", "generate", "--policy", str(ROOT / "policies/support.toml"), "--board", "ops"]
    unsafe = CliRunner().invoke(app, [*args, "--secrets-dir", str(secrets)])
    assert unsafe.exit_code == 1 and "Traceback" not in unsafe.output
    assert "bb:ops:role:triage.password" in unsafe.stderr and len(unsafe.stderr.splitlines()) == 1
