"""Proposals and the compactor on a real server: no proposal lost or merged twice while
proposers and a compactor run concurrently; snapshot + log replay equals the live board;
merging the same proposals on two boards gives the same result.

Proposers and writers are asyncio tasks with a connection each; hypothesis picks the load.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from contextlib import AsyncExitStack
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blackboard
from blackboard.board.proposals import merged_proposals
from blackboard.board.restore import replay, restore, state_of
from blackboard.board.retention import Retention
from blackboard.board.snapshot import take_snapshot
from blackboard.compaction.compactor import Compactor
from blackboard.compaction.merge import rules_from_document

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_RETENTION = Retention(
    log_max_events=None, log_max_age=None, history_max_age=None, activation_max_age=None
)
RULES = rules_from_document(
    {
        "merge": [
            {"pattern": "c/*", "strategy": "counter-sum"},
            {"pattern": "*", "strategy": "last-writer-wins"},
        ]
    }
)


def _fresh() -> str:
    return "t" + uuid.uuid4().hex[:10]


async def _events(board: blackboard.Board) -> list[tuple[bytes, dict[bytes, bytes]]]:
    events: Any = await board.redis.xrange(board.keys_.log)
    return list(events)


@FEW
@given(
    proposers=st.integers(2, 4),
    each=st.integers(3, 12),
    keys=st.lists(
        st.sampled_from(["c/1", "c/2", "l/1", "l/2"]), min_size=1, max_size=3, unique=True
    ),
    seed=st.integers(0, 2**16),
)
async def test_no_proposal_is_lost_or_merged_twice(
    single_server: blackboard.RedisServer, proposers: int, each: int, keys: list[str], seed: int
) -> None:
    url, name = single_server.url, _fresh()
    rng = random.Random(seed)
    plans = [
        [(rng.choice(keys), rng.randint(-3, 9)) for _ in range(each)] for _ in range(proposers)
    ]
    async with AsyncExitStack() as stack:
        boards = [
            await stack.enter_async_context(blackboard.connect(url, board=name, writer=f"p{i}"))
            for i in range(proposers)
        ]
        home = await stack.enter_async_context(blackboard.connect(url, board=name, writer="t"))
        # two compactors started at once: one leads, the other stands by
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(
                Compactor(
                    home, name=f"c-run-{i}", rules=RULES, retention=NO_RETENTION, interval=0.001
                ).run(stop=stop)
            )
            for i in range(2)
        ]

        async def propose(board: blackboard.Board, plan: list[tuple[str, int]]) -> None:
            for key, value in plan:
                await board.propose(key, value)
                await asyncio.sleep(0)

        await asyncio.gather(*(propose(b, plan) for b, plan in zip(boards, plans, strict=True)))
        stop.set()
        stats = await asyncio.gather(*tasks)
        assert sum(s.leases for s in stats) >= 1
        # another compactor takes over (the lease was released) and finishes the work
        await Compactor(home, name="c-end", rules=RULES, retention=NO_RETENTION).run(
            until_idle=True
        )

        made: dict[tuple[str, str, int], Any] = {}
        latest: dict[tuple[str, str], int] = {}
        merged_at: dict[tuple[str, str, int], int] = {}
        sums: dict[str, int] = {}
        for event_id, f in await _events(home):
            rev = int(event_id.split(b"-")[0])
            key, kind = f[b"k1"].decode(), f[b"o1"]
            if kind == b"q":
                proposer = f[b"w"].decode()
                made[(key, proposer, rev)] = msgpack.unpackb(f[b"d1"])["value"]
                latest[(key, proposer)] = rev
            elif kind == b"m":
                pairs = merged_proposals(f)
                assert pairs, "a merge event lists what it merged"
                for proposer, prev in pairs:
                    assert (key, proposer, prev) in made, "merged a proposal never made"
                    assert (key, proposer, prev) not in merged_at, "merged twice"
                    merged_at[(key, proposer, prev)] = rev
                value = msgpack.unpackb(f[b"d1"])
                merged_values = [made[(key, p, r)] for p, r in pairs]
                if key.startswith("c/"):
                    sums[key] = sums.get(key, 0) + sum(merged_values)
                    assert value == sums[key]  # current + exactly these proposals
                else:
                    last = max(pairs, key=lambda pr: pr[1])
                    assert value == made[(key, last[0], last[1])]
        open_now = {(k, p.proposer, p.revision) for k in keys for p in await home.proposals(k)}
        for (key, proposer), rev in latest.items():
            # every proposer's latest proposal is merged or still open: never lost
            assert ((key, proposer, rev) in merged_at) != ((key, proposer, rev) in open_now)
        for key in keys:
            if key.startswith("c/"):
                assert not any(k == key for k, _, _ in open_now)  # counters settle everything
                entry = await home.get(key)
                assert (entry.value if entry else 0) == sums.get(key, 0)
            else:
                # what stays open under last-writer-wins agrees (not divergent)
                assert len({made[o] for o in open_now if o[0] == key}) <= 1
        assert await home.divergent() == []


@FEW
@given(seed=st.integers(0, 2**16), writes=st.integers(20, 60), at=st.floats(0.1, 0.9))
async def test_snapshot_under_load_plus_log_replay_equals_the_live_board(
    single_server: blackboard.RedisServer, seed: int, writes: int, at: float
) -> None:
    url, name = single_server.url, _fresh()
    rng = random.Random(seed)
    keys = ["a", "b", "c/n", "l/x"]
    async with AsyncExitStack() as stack:
        w = [
            await stack.enter_async_context(blackboard.connect(url, board=name, writer=f"w{i}"))
            for i in range(3)
        ]
        home = await stack.enter_async_context(blackboard.connect(url, board=name, writer="t"))
        compactor = Compactor(home, rules=RULES, retention=NO_RETENTION, interval=0.001)
        stop = asyncio.Event()
        task = asyncio.create_task(compactor.run(stop=stop))
        snapshot_taken = asyncio.Event()
        docs: list[dict[str, Any]] = []

        async def write(board: blackboard.Board, n: int) -> None:
            for i in range(n):
                key = rng.choice(keys)
                op = rng.random()
                try:
                    if op < 0.35:
                        await board.propose(key, rng.randint(0, 3))
                    elif op < 0.7 and key != "c/n":  # c/n stays a number
                        await board.put(key, {"i": i, "by": board.writer})
                    elif op < 0.85:
                        await board.apply("c/n", "add", 1)
                    else:
                        await board.delete(key)
                except blackboard.ConflictError:
                    pass  # deleting a deleted key
                if board is w[0] and i == int(n * at):
                    docs.append(await take_snapshot(home))
                    snapshot_taken.set()
                await asyncio.sleep(0)

        await asyncio.gather(*(write(b, writes) for b in w))
        assert snapshot_taken.is_set()
        stop.set()
        await task
        doc = docs[0]
        events = [e for e in await _events(home) if int(e[0].split(b"-")[0]) > doc["revision"]]
        assert replay(state_of(doc), events) == state_of(await take_snapshot(home))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    votes=st.lists(st.sampled_from(["fraud", "ok", "review"]), min_size=2, max_size=6),
    strategy=st.sampled_from(["majority", "last-writer-wins", "highest-confidence"]),
)
async def test_the_same_proposals_merge_the_same_on_two_boards(
    single_server: blackboard.RedisServer, votes: list[str], strategy: str
) -> None:
    url = single_server.url
    rules = rules_from_document({"merge": [{"pattern": "*", "strategy": strategy}]})
    async with AsyncExitStack() as stack:
        source = await stack.enter_async_context(blackboard.connect(url, board=_fresh()))
        for i, vote in enumerate(votes):
            await source.bind(writer=f"d{i}").propose("tx", vote, round(0.5 + i * 0.07 % 0.4, 2))
        doc = await take_snapshot(source)
        results = []
        for _ in range(2):
            copy = await stack.enter_async_context(blackboard.connect(url, board=_fresh()))
            await restore(copy, doc)
            await Compactor(copy, rules=rules, retention=NO_RETENTION).run(until_idle=True)
            entry = await copy.get("tx")
            results.append(
                (entry.value if entry else None, [p.value for p in await copy.proposals("tx")])
            )
        assert results[0] == results[1]
