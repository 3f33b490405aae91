"""Boards on a real 3-master Redis Cluster on loopback ports."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

import blackboard
from blackboard.store.server import RedisClusterServers, free_port

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "support.toml"
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "control")]  # agents/ and the test runners


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(3, appendonly=True).start()
    yield servers
    servers.close()


async def _slots(url: str, boards: list[str]) -> dict[str, int]:
    out = {}
    for name in boards:
        async with blackboard.connect(url, board=name) as b:
            out[name] = b.redis.keyslot(b.keys_.rev)
    return out


async def test_every_key_of_a_board_on_one_slot_and_boards_spread(
    cluster: RedisClusterServers,
) -> None:
    boards = [f"team{i}" for i in range(12)]
    for name in boards:
        async with blackboard.connect(cluster.url, board=name, writer="w") as b:
            await b.put("ticket/1", {"n": 1}, expect=blackboard.ABSENT)
            await b.update("ticket/1", lambda v: {"n": v["n"] + 1})
            await b.apply("stats/n", "add", 3)
            await b.transact([blackboard.Put("a", 1), blackboard.Put("b", 2)])
            async with b.batch() as batch:
                for i in range(8):
                    batch.put(f"bulk/{i}", i)
            assert all(isinstance(r, blackboard.Entry) for r in batch.results)
            changes = [c async for c in b.watch(since=0, idle_timeout=0.2)]
            assert [c.revision for c in changes] == sorted(c.revision for c in changes)
            assert len(changes) == 4 + 1 + 8  # transact gives two changes in one revision
            slots = {b.redis.keyslot(k) for k in (b.keys_.rev, b.keys_.log, b.keys_.entry("x"))}
            assert len(slots) == 1
            got = await b.get("ticket/1")
            assert got is not None and got.value == {"n": 2}
    slots = await _slots(cluster.url, boards)
    owners = set()
    for slot in slots.values():
        owners.add(min(i for i in range(3) if slot < (i + 1) * (16384 // 3) or i == 2))
    assert len(owners) >= 2, f"12 boards all landed on one shard: {slots}"


# redis-py's cluster client drops the dead node's connection objects without closing them
# when it re-reads the slot map; the test closes them so they raise no ResourceWarning.
async def test_killed_master_gives_clear_errors_and_loses_no_acknowledged_write(
    cluster: RedisClusterServers,
) -> None:
    # find a board on the first node and one elsewhere
    per = 16384 // 3
    on_first = on_other = None
    for i in range(200):
        name = f"kill{i}"
        async with blackboard.connect(cluster.url, board=name) as b:
            slot = b.redis.keyslot(b.keys_.rev)
        if slot < per and on_first is None:
            on_first = name
        elif slot >= per and on_other is None:
            on_other = name
        if on_first and on_other:
            break
    assert on_first and on_other
    node = cluster.nodes[0]
    seed = f"redis+cluster://:{cluster.password}@127.0.0.1:{cluster.nodes[1].port}"
    async with blackboard.connect(seed, board=on_first, writer="w") as b:
        acked = [await b.apply("counter", "add", 1) for _ in range(200)]
    assert acked[-1].value == 200
    async with (
        blackboard.connect(seed, board=on_other, writer="w") as other,
        blackboard.connect(seed, board=on_first, writer="w") as first,
    ):
        node.stop(kill=True)
        try:
            # the other shards keep serving a connected client
            assert (await other.put("still", "up")).version == 1
            # the dead shard's board fails with a clear error, in bounded time
            started = time.monotonic()
            with pytest.raises(blackboard.BoardUnavailableError):
                await first.apply("counter", "add", 1)
            assert time.monotonic() - started < 60
        finally:
            node.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            async with blackboard.connect(seed, board=on_first, writer="w") as b:
                got = await b.get("counter")
                break
        except blackboard.BoardUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    assert got is not None and got.value == 200, "an acknowledged write was lost"
    for obj in gc.get_objects():  # close what redis-py left open (see the comment above)
        if isinstance(obj, AbstractConnection) and obj.is_connected:
            await obj.disconnect()


async def test_cluster_url_to_nowhere_is_a_clear_error() -> None:
    with pytest.raises(blackboard.BoardUnavailableError):
        async with blackboard.connect(f"redis+cluster://127.0.0.1:{free_port()}", board="x"):
            pass


async def test_batch_after_script_cache_flush(cluster: RedisClusterServers) -> None:
    """A node that lost its script cache (restart, failover) answers NOSCRIPT; nothing ran,
    so the batch resends those commits in full and each applies once."""
    async with blackboard.connect(cluster.url, board="flushed", writer="w") as b:
        await b.redis.execute_command("SCRIPT FLUSH", target_nodes=b.redis.get_primaries())
        async with b.batch() as batch:
            for i in range(5):
                batch.put(f"k/{i}", i)
        assert [r.version for r in batch.results] == [1] * 5  # type: ignore[union-attr]
        await b.redis.execute_command("SCRIPT FLUSH", target_nodes=b.redis.get_primaries())
        assert (await b.put("k/0", "again")).version == 2
        assert await b.revision() == 6


async def test_controller_and_agents_on_a_cluster(cluster: RedisClusterServers) -> None:
    """The support flow (controller + triage/specialist/resolver runtimes) on a cluster
    board: activations are granted, claimed and committed on the board's shard."""
    from runners import eventually, running

    from agents.support import Resolver, Specialist, Triage

    policy = POLICY.read_text()
    async with blackboard.connect(cluster.url, board="cluster-support", writer="test") as b:
        agents = [Triage(confidence=0.95), Specialist(answer_confidence=0.95), Resolver()]
        async with running(b, policy, agents):
            for i in range(5):
                await b.put(f"ticket/{i}", {"status": "new", "subject": "refund", "tier": "vip"})

            async def resolved() -> bool:
                got = [await b.get(f"ticket/{i}") for i in range(5)]
                return all(e is not None and e.value.get("status") == "resolved" for e in got)

            await eventually(resolved, within=30, what="5 tickets resolved on the cluster")
        stats = await b.get("stats/resolved")
        assert stats is not None and stats.value == 5


def test_support_scenario_runs_on_a_cluster(cluster: RedisClusterServers, tmp_path: Path) -> None:
    """The whole system as real processes (controller, compactor, agents) on a cluster board,
    checked by the scenario runner's invariants."""
    import json
    import subprocess

    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "blackboard",
            "run",
            "scenarios/support.toml",
            "--redis",
            cluster.bare_url,  # the password goes by file, never on a command line
            "--items",
            "30",
            "--quiet",
            "--report",
            str(report),
        ],
        cwd=ROOT,
        env={**os.environ, "BLACKBOARD_REDIS_PASSWORD_FILE": cluster.password_file},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(report.read_text())
    assert all(inv["ok"] for inv in doc["invariants"]), doc["invariants"]
    assert cluster.password and cluster.password not in report.read_text()


async def test_the_functions_library_is_on_every_primary(cluster: RedisClusterServers) -> None:
    from blackboard.store import functions

    async with blackboard.connect(cluster.url, board="lib") as b:
        for node in b.redis.get_primaries():
            listed: Any = await b.redis.execute_command(
                "FUNCTION", "LIST", "LIBRARYNAME", f"blackboard_{functions.VERSION}",
                target_nodes=node,
            )  # fmt: skip
            assert len(listed) == 1, node
        # a node that lost its copy (a fresh primary) gets it again on the next call
        node = b.redis.get_node_from_key(b.keys_.rev)
        await b.redis.execute_command("FUNCTION", "FLUSH", target_nodes=node)
        assert (await b.put("after/flush", 1)).version == 1
