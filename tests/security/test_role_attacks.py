"""A compromised agent process holding only its role's credentials (issue 10, docs/security.md).

Each test acts as the `triage` role of the support policy with the users `acl_users`
generates, against a real server (fakeredis does not enforce ACLs), tries one attack, and
checks that it is refused or has no effect, and that the board, the controller and honest
writers keep working afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
from redis.exceptions import ResponseError

import blackboard
from blackboard.board.connection import redis_from_url
from blackboard.control.acl import acl_users, apply_users, user_name, write_secrets
from blackboard.control.policy import parse_policy
from blackboard.control.policy_board import apply_policy
from blackboard.store import functions
from blackboard.store.server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
POLICY = (ROOT / "policies/support.toml").read_text()
NOPERM = r"(?i)noperm|permission|no permissions"


@dataclass
class Setup:
    admin: blackboard.Board
    triage: blackboard.Board  # connected as bb:<board>:role:triage
    raw: Any  # the triage user's raw redis-py client
    url: str
    settings: blackboard.Settings


@pytest.fixture
async def setup(redis_server: RedisServer, board_name: str, tmp_path: Path) -> AsyncIterator[Setup]:
    users = acl_users(parse_policy(POLICY), board_name)
    secrets = tmp_path / "secrets"
    hashes = write_secrets(users, secrets)
    root = redis_from_url(redis_server.url, blackboard.Settings())
    await apply_users(root, users, hashes)
    name = user_name(board_name, "triage")
    settings = blackboard.Settings(
        redis_username=name, redis_password_file=str(secrets / f"{name}.password")
    )
    async with blackboard.connect(redis_server.url, board=board_name, writer="admin") as admin:
        await apply_policy(admin, POLICY, "support.toml")
        async with blackboard.connect(
            redis_server.url, board=board_name, writer="triage-1", settings=settings
        ) as triage:
            yield Setup(admin, triage, triage.redis, redis_server.url, settings)
    for user in users:
        await root.execute_command("ACL", "DELUSER", user.name)
    await root.aclose()


async def _run_controller(board: blackboard.Board) -> blackboard.Controller:
    controller = blackboard.Controller(board, name="ctl")
    await asyncio.wait_for(controller.run(asyncio.Event(), idle_exit=0.5), timeout=30)
    return controller


async def _queued_keys(board: blackboard.Board, role: str) -> list[str]:
    entries: Any = await board.redis.xrange(board.keys_.queue(role))
    return [fields[b"k"].decode() for _id, fields in entries]


def _forged_put(key: str, value: Any, version: int = 1) -> dict[str, Any]:
    return {
        "t": 1, "w": "cli", "a": "", "n": 1, "k1": key, "v1": version, "o1": "p",
        "d1": msgpack.packb(value, use_bin_type=True),
    }  # fmt: skip


async def test_forged_log_event_is_dropped_by_controller_and_watchers(setup: Setup) -> None:
    rev = await setup.admin.revision()
    # the role may XADD to the log (its commits need it): a fake put of a ticket nobody wrote
    forged = f"{rev + 5}-1"
    await setup.raw.xadd(
        setup.admin.keys_.log, _forged_put("ticket/999", {"status": "new"}), id=forged
    )
    controller = await _run_controller(setup.admin)
    assert controller.forged == 1
    assert "ticket/999" not in await _queued_keys(setup.admin, "triage")
    seen = [c.key async for c in setup.admin.watch(since=0, idle_timeout=0.3)]
    assert "ticket/999" not in seen and setup.admin.forged_events == 1
    # the board keeps working: an honest commit takes the next revision after the forged id,
    # the controller admits it, and watchers see it
    e = await setup.admin.put("ticket/1", {"status": "new", "subject": "hi"})
    assert e.revision == rev + 6
    await _run_controller(setup.admin)
    assert await _queued_keys(setup.admin, "triage") == ["ticket/1"]
    changes = [c async for c in setup.admin.watch(since=rev, idle_timeout=0.3)]
    assert [c.key for c in changes] == ["ticket/1"]


async def test_commit_naming_another_entry_in_keys_is_refused(
    setup: Setup, board_state: Any
) -> None:
    k = setup.admin.keys_
    await setup.admin.put("sys/policy-like", {"x": 1})
    before = await board_state(setup.admin)
    # KEYS name an entry the role owns, ARGV records another key: the log would lie
    call = setup.triage.prepare_commit([blackboard.Put("ticket/1/triage", {"evil": True})], "k1")
    keys, args = call.call.keys, call.call.args
    args[10 + 3] = "sys/policy"
    res = await functions.COMMIT(setup.raw, keys, args)
    assert res[0] == b"badop" and b"does not belong" in res[2]
    # another board's revision key paired with this board's log
    keys2 = ["bb:{other}:rev", *keys[1:]]
    with pytest.raises(ResponseError, match=NOPERM):  # the role's ACL: its board only
        await functions.COMMIT(setup.raw, keys2, args)
    res = await functions.COMMIT(setup.admin.redis, keys2, args)  # and the server's own check
    assert res[0] == b"badop" and b"not the board" in res[2]
    assert await board_state(setup.admin) == before
    assert k.log.encode() in before


async def test_forged_outcome_does_not_settle_an_activation(setup: Setup) -> None:
    admin = setup.admin
    k = admin.keys_
    # a human activation as the controller writes it: queue entry + record
    qid = await admin.redis.xadd(k.queue("human"), {"i": "h1", "k": "ticket/1"})
    await admin.redis.xgroup_create(k.queue("human"), "agents", id="0", mkstream=True)
    await admin.redis.hset(k.activation("h1"), mapping={"role": "human", "q": qid})
    out_id = await setup.raw.xadd(k.outcomes, {"a": "h1", "o": "ok", "e": "", "w": "x"})

    async def forged() -> list[bytes]:
        res = await functions.LOG_CHECK(admin.redis, [k.log], [0, out_id, "h1"])
        return list(res[1])

    assert await forged() == [out_id]  # nobody claimed it yet
    # claimed and still being worked on by a human: still forged
    await admin.redis.xreadgroup("agents", "alice", {k.queue("human"): ">"})
    assert await forged() == [out_id]
    # the triage role cannot settle the human's claim itself
    with pytest.raises(ResponseError, match=NOPERM):
        await setup.raw.xack(k.queue("human"), "agents", qid)
    # once the human settles it (as finish.lua does), the outcome is backed
    await admin.redis.xack(k.queue("human"), "agents", qid)
    assert await forged() == []


async def test_idempotency_records_of_other_scopes_are_out_of_reach(setup: Setup) -> None:
    k = setup.admin.keys_
    for scope in ("@", "human", "specialist"):
        with pytest.raises(ResponseError, match=NOPERM):
            await setup.raw.set(f"{k.prefix}idem:{scope}:x", "1|1|1#")
    # its own scope it may write by hand, but a planted record is refused, never replayed
    own = setup.triage.keys_.idempotency("planted")
    assert own.startswith(f"{k.prefix}idem:triage:")
    for planted in ("1|1|1#", "garbage"):
        await setup.raw.set(own, planted)
        if planted == "1|1|1#":  # well-formed: replays what it says, writes nothing new
            e = await setup.triage.put("ticket/1/triage", {"c": 1}, idempotency_key="planted")
            assert (e.version, e.revision) == (1, 1)
        else:
            with pytest.raises(blackboard.CorruptEntryError, match="malformed"):
                await setup.triage.put("ticket/1/triage", {"c": 1}, idempotency_key="planted")
    # a human decision's key (an activation id) in the human scope is untouched by all this
    human = blackboard.Settings(idempotency_scope="human")
    async with blackboard.connect(setup.url, board=k.board, settings=human) as h:
        e = await h.put("ticket/1", {"decided": True}, idempotency_key="planted")
        assert e.version == 1 and (await h.get("ticket/1")) is not None


async def test_broken_log_and_counter_leave_nothing_half_written(
    setup: Setup, board_state: Any
) -> None:
    admin, k = setup.admin, setup.admin.keys_
    first = (await admin.put("a", 1)).revision
    # a high id planted in the log by a role: the next commit goes after it
    await setup.raw.xadd(k.log, _forged_put("a", 9, 2), id="1000-1")
    e = await setup.triage.put("ticket/1/triage", {"c": 1})
    assert e.revision == 1001
    got = [c.revision async for c in admin.watch(since=first - 1, idle_timeout=0.2)]
    assert got == [first, 1001]
    # the role may not reset the counter; an admin who does cannot make commits collide
    with pytest.raises(ResponseError, match=NOPERM):
        await setup.raw.set(k.rev, 0)
    await admin.redis.set(k.rev, 0)
    assert (await admin.put("a", 2)).revision == 1002
    # a log that is not a stream any more: refused before the first write
    await admin.redis.delete(k.log)
    await admin.redis.set(k.log, "not a stream")
    before = await board_state(admin)
    with pytest.raises(blackboard.CorruptEntryError, match="change log"):
        await admin.put("a", 3)
    with pytest.raises(blackboard.CorruptEntryError):
        await admin.transact([blackboard.Put("b", 1), blackboard.Apply("c", "add", 1)])
    assert await board_state(admin) == before
    # a counter that is not a number: refused, nothing written
    await admin.redis.delete(k.log)
    await admin.redis.set(k.rev, "x")
    before = await board_state(admin)
    with pytest.raises(blackboard.CorruptEntryError, match="revision counter"):
        await admin.put("a", 3)
    assert await board_state(admin) == before


async def test_role_runs_no_code_of_its_own(setup: Setup) -> None:
    busy = "local i = 0 while true do i = i + 1 end"
    for command in (
        ("EVAL", busy, 0),
        ("EVAL_RO", busy, 0),
        ("SCRIPT", "LOAD", busy),
        ("SCRIPT", "KILL"),
        ("FUNCTION", "LOAD", "#!lua name=evil\nredis.register_function('f', function() end)"),
        ("FUNCTION", "DELETE", f"blackboard_{functions.VERSION}"),
        ("FUNCTION", "FLUSH"),
    ):
        with pytest.raises(ResponseError, match=NOPERM):
            await setup.raw.execute_command(*command)
    assert (await setup.admin.put("still/alive", 1)).version == 1


async def test_role_cannot_enumerate_reset_or_destroy(setup: Setup) -> None:
    k = setup.admin.keys_
    await setup.admin.put("ticket/1", {"status": "new"})
    attempts: list[tuple[Any, ...]] = [
        ("SCAN", 0),
        ("RANDOMKEY",),
        ("KEYS", "*"),
        ("SELECT", 1),
        ("DEL", k.log),
        ("XTRIM", k.log, "MAXLEN", 0),
        ("XDEL", k.log, "1-1"),
        ("EXPIRE", k.log, 1),
        ("DEL", k.index),
        ("SET", k.rev, 0),
        ("INCR", k.rev),
        ("HSET", k.entry("ticket/1"), "v", 9),
        ("DEL", k.entry("ticket/1")),
        ("XADD", k.queue("specialist"), "*", "k", "x"),
        ("XGROUP", "DESTROY", k.queue("triage"), "agents"),
        ("HSET", k.activation("x"), "role", "human"),
        ("GET", "bb:{another}:rev"),
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
    ]
    for command in attempts:
        with pytest.raises(ResponseError, match=NOPERM):
            await setup.raw.execute_command(*command)
    assert (await setup.admin.get("ticket/1")).version == 1  # type: ignore[union-attr]


async def test_server_enforces_limits_and_reducer_arguments(setup: Setup) -> None:
    board = setup.triage
    # a raw call that claims no client limit still meets the board's 1 MiB
    c = board.prepare_commit([blackboard.Put("ticket/1/triage", "x")], "big").call
    keys, args = c.keys, c.args
    args[10 + 5] = msgpack.packb("y" * (2 << 20))
    args[-1] = 0
    res = await functions.COMMIT(setup.raw, keys, args)
    assert res[0] == b"badop" and b"over the limit" in res[2]
    # an append argument that is not exactly one msgpack object would corrupt the entry
    await board.apply("stats/triaged", "append", 1)
    c = board.prepare_commit([blackboard.Apply("stats/triaged", "append", 2)], None).call
    keys, args = c.keys, c.args
    args[10 + 5] = b"\x01\x02"
    res = await functions.COMMIT(setup.raw, keys, args)
    assert res[0] == b"badop" and b"one msgpack object" in res[2]
    assert (await board.get("stats/triaged")).value == [1]  # type: ignore[union-attr]
    # a writer id with terminal escapes
    c = board.prepare_commit([blackboard.Put("ticket/1/triage", 1)], None).call
    keys, args = c.keys, c.args
    args[8] = "\x1b]0;pwned\x07"
    assert (await functions.COMMIT(setup.raw, keys, args))[0] == b"badop"


def test_generated_user_names_cannot_collide() -> None:
    policy = parse_policy(POLICY.replace('human = "human"', 'human = "compactor"'))
    names = [
        u.name for board in ("shop", "shop.agent", "shop.role") for u in acl_users(policy, board)
    ]
    assert len(names) == len(set(names))
    assert user_name("shop", "compactor") != user_name("shop.agent", kind="compactor")


async def test_role_client_names_a_missing_library(tmp_path: Path) -> None:
    policy = parse_policy(POLICY)
    with RedisServer(tcp=True) as server:
        users = acl_users(policy, "fresh")
        hashes = write_secrets(users, tmp_path / "s")
        root = redis_from_url(server.url, blackboard.Settings())
        await apply_users(root, users, hashes)
        name = user_name("fresh", "triage")
        settings = blackboard.Settings(
            redis_username=name, redis_password_file=str(tmp_path / "s" / f"{name}.password")
        )
        with pytest.raises(blackboard.LibraryMissingError, match="blackboard deploy"):
            async with blackboard.connect(server.url, board="fresh", settings=settings):
                pass
        await functions.load_library(root)  # what `blackboard deploy` does
        async with blackboard.connect(server.url, board="fresh", settings=settings) as b:
            assert (await b.put("ticket/1/triage", 1)).version == 1
        await root.aclose()
