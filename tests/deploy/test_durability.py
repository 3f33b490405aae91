"""Durability levels on a real primary with a replica: a `replicated` write returns only
once the replica has it, fails with DurabilityError while it lags, and a retry with the same
idempotency key applies once; `fsynced` where the server has WAITAOF, refused where not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_servers import BINARIES
from redis.exceptions import NoPermissionError

import blackboard
from blackboard.board.connection import redis_from_url
from blackboard.control.acl import acl_users, apply_users, write_secrets
from blackboard.control.policy import parse_policy
from blackboard.errors import DurabilityError, DurabilityUnsupportedError
from blackboard.store.durability import Durability
from blackboard.store.replica_set import ReplicaSet
from blackboard.store.server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=BINARIES, ids=[name for name, _ in BINARIES])
def replica_set(request: pytest.FixtureRequest) -> Iterator[ReplicaSet]:
    servers = ReplicaSet(1, binary=request.param[1], appendonly=True).start()
    yield servers
    servers.close()


def test_levels_are_checked_and_read_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLACKBOARD_DURABILITY", "replicated")
    monkeypatch.setenv("BLACKBOARD_DURABILITY_REPLICAS", "2")
    monkeypatch.setenv("BLACKBOARD_DURABILITY_TIMEOUT_MS", "250")
    settings = blackboard.Settings()
    assert Durability.of(None, settings) == Durability("replicated", 2, 250)
    assert Durability.of("fsynced", settings) == Durability("fsynced", 2, 250)
    assert Durability.of("local", settings).is_local
    assert Durability("fsynced", 0).command() == ("WAITAOF", 1, 0, 1000)
    assert Durability("replicated", 1, 5).command() == ("WAIT", 1, 5)
    for bad in (
        lambda: Durability("quorum"),  # type: ignore[arg-type]
        lambda: Durability("replicated", 0),
        lambda: Durability("replicated", 1, 0),
        lambda: Durability.of("sync", settings),
    ):
        with pytest.raises(ValueError):
            bad()
    monkeypatch.setenv("BLACKBOARD_DURABILITY", "eventually")
    with pytest.raises(ValueError):
        blackboard.Settings()


async def test_replicated_write_waits_for_the_replica(replica_set: ReplicaSet) -> None:
    replica = replica_set.servers[1]
    async with blackboard.connect(
        replica_set.url, board="dur1", writer="w", durability="replicated"
    ) as board:
        assert board.durability == Durability("replicated", 1, 1000)
        assert (await board.put("a", 1)).version == 1
        async with board.batch() as batch:
            batch.put("b", 1)
            batch.apply("n", "add", 1)
        assert [type(r).__name__ for r in batch.results] == ["Entry", "Entry"]
        # the view changes the level for its writes only
        quick = board.bind(durability=Durability("replicated", 1, 100))
        replica_set.pause(replica)
        try:
            with pytest.raises(DurabilityError) as caught:
                await quick.put("c", 1, idempotency_key="c-1")
            err = caught.value
            assert (err.level, err.acked, err.wanted) == ("replicated", 0, 1)
            assert [e.key for e in err.entries] == ["c"]
            assert "retrying with the same idempotency key is safe" in str(err)
            assert isinstance(err, blackboard.BoardUnavailableError)  # transient: retry later
            async with quick.batch() as batch:
                batch.put("d", 1)
                batch.put("a", 2, expect=5)  # a conflict is still a conflict
            assert isinstance(batch.results[0], DurabilityError)
            assert isinstance(batch.results[1], blackboard.ConflictError)
            # a local view of the same connection does not wait
            assert (await board.bind(durability="local").put("e", 1)).version == 1
        finally:
            replica_set.resume(replica)
        # the retry applies nothing again, and returns once the replica has the first write
        again = await board.put("c", 1, idempotency_key="c-1")
        assert (again.version, await board.revision()) == (1, 6)


async def test_a_replayed_write_is_confirmed_not_assumed(replica_set: ReplicaSet) -> None:
    """A retry answered from the idempotency record wrote nothing on its connection, so a
    bare WAIT would return at once; the write it replays may not be on the replica yet."""
    replica = replica_set.servers[1]
    async with blackboard.connect(replica_set.url, board="dur2", writer="w") as board:
        strict = board.bind(durability=Durability("replicated", 1, 150))
        replica_set.pause(replica)
        try:
            await board.put("k", 1, idempotency_key="k-1")  # local: acknowledged at once
            with pytest.raises(DurabilityError):
                await strict.put("k", 1, idempotency_key="k-1")
        finally:
            replica_set.resume(replica)
        assert (await strict.put("k", 1, idempotency_key="k-1")).version == 1
        assert (await strict.get("k")).version == 1  # type: ignore[union-attr]


async def test_agents_and_proposals_follow_the_board_level(replica_set: ReplicaSet) -> None:
    replica = replica_set.servers[1]
    async with blackboard.connect(
        replica_set.url, board="dur3", writer="w", durability=Durability("replicated", 1, 150)
    ) as board:
        assert (await board.propose("p", 1, 0.5)).value == 1
        runtime = blackboard.AgentRuntime(_Echo(), board, name="echo-1")
        assert runtime.board.durability == board.durability
        replica_set.pause(replica)
        try:
            with pytest.raises(DurabilityError):
                await board.propose("p", 2, 0.5)
        finally:
            replica_set.resume(replica)


class _Echo(blackboard.Agent):
    role = "echo"

    async def handle(self, activation: blackboard.Activation, board: object) -> None:
        return None


async def test_fsynced_where_the_server_has_waitaof(replica_set: ReplicaSet) -> None:
    info = replica_set.command(replica_set.servers[0], "INFO", "server")
    if b"valkey_version" not in info:  # Redis 7.0: no WAITAOF
        with pytest.raises(DurabilityUnsupportedError, match="no WAITAOF"):
            async with blackboard.connect(replica_set.url, board="dur4", durability="fsynced"):
                pass
        return
    async with blackboard.connect(
        replica_set.url, board="dur4", writer="w", durability=Durability("fsynced", 0)
    ) as board:
        assert (await board.put("a", 1)).version == 1  # in the primary's AOF, fsynced
        # a replica reports its fsyncs about once a second (Valkey 9): a slow level
        both = board.bind(durability=Durability("fsynced", 1, 5000))
        assert (await both.put("a", 2)).version == 2
        replica_set.pause(replica_set.servers[1])
        try:
            with pytest.raises(DurabilityError) as caught:
                await board.bind(durability=Durability("fsynced", 1, 100)).put("b", 1)
            # the paused replica confirmed nothing; whether the primary's own fsync made the
            # 100 ms is a matter of load, so it is not asserted
            assert caught.value.acked == 0 and "fsynced write not confirmed" in str(caught.value)
        finally:
            replica_set.resume(replica_set.servers[1])


async def test_fsynced_is_refused_without_aof() -> None:
    with RedisServer(binary=BINARIES[-1][1]) as server, pytest.raises(DurabilityUnsupportedError):
        async with blackboard.connect(server.url, board="dur5", durability="fsynced"):
            pass


async def test_a_role_user_may_wait(replica_set: ReplicaSet, tmp_path: Path) -> None:
    """Generated ACL users get WAIT and WAITAOF (ACL rules are per server: set on the
    primary only, which is where a role connects)."""
    policy = parse_policy((ROOT / "policies/support.toml").read_text())
    users = acl_users(policy, "dur6")
    hashes = write_secrets(users, tmp_path)
    admin = redis_from_url(replica_set.url, blackboard.Settings())
    await apply_users(admin, users, hashes)
    try:
        name = "bb:dur6:role:triage"
        settings = blackboard.Settings(
            redis_username=name, redis_password_file=str(tmp_path / f"{name}.password")
        )
        async with blackboard.connect(
            replica_set.url, board="dur6", settings=settings, durability="replicated"
        ) as board:
            assert (await board.put("ticket/1/triage", {"ok": True})).version == 1
            # a replay is confirmed with INCRBY <rev> 0, which the role may run
            await board.put("ticket/1/triage", {"ok": True}, idempotency_key="t")
            assert (
                await board.put("ticket/1/triage", {"ok": True}, idempotency_key="t")
            ).version == 2
            with pytest.raises(NoPermissionError):  # @connection, less its dangerous part
                await board.redis.execute_command("CLIENT", "KILL", "TYPE", "normal")
    finally:
        for user in users:
            await admin.execute_command("ACL", "DELUSER", user.name)
        await admin.aclose()
        await asyncio.sleep(0)
