"""Concurrent writers against a real server: no lost update, atomic transactions, and a
change log that shows every commit once, in revision order.

Writers are asyncio tasks with a connection each (hypothesis picks the workload), and in one
test separate OS processes started with multiprocessing's spawn.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blackboard
from blackboard import ABSENT, Apply, Delete, Put

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fresh() -> str:
    return "t" + uuid.uuid4().hex[:10]


@asynccontextmanager
async def _writers(url: str, board: str, n: int) -> AsyncIterator[list[blackboard.Board]]:
    """`n` clients of one board, each with its own connection pool and writer id."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(blackboard.connect(url, board=board, writer=f"w{i}"))
            for i in range(n)
        ]


# -- update / apply: no lost increment -------------------------------------------------------


@FAST
@given(writers=st.integers(2, 5), each=st.integers(1, 8), awaits=st.booleans())
async def test_concurrent_updates_lose_no_increment(
    redis_server: blackboard.RedisServer, writers: int, each: int, awaits: bool
) -> None:
    calls = 0

    def bump(v: int | None) -> int:
        nonlocal calls
        calls += 1
        return (v or 0) + 1

    async def bump_later(v: int | None) -> int:
        await asyncio.sleep(0)  # let another writer in between read and write
        return bump(v)

    async with _writers(redis_server.url, _fresh(), writers) as boards:

        async def work(b: blackboard.Board) -> list[blackboard.Entry]:
            return [await b.update("counter", bump_later if awaits else bump) for _ in range(each)]

        committed = [e for r in await asyncio.gather(*(work(b) for b in boards)) for e in r]
        total = writers * each
        final = await boards[0].get("counter")
        assert final is not None and final.value == len(committed) == total
        # every commit started from a distinct predecessor: value == version, no gaps
        assert sorted((e.version, e.value) for e in committed) == [
            (i, i) for i in range(1, total + 1)
        ]
        history = await boards[0].history("counter")
        assert [(e.version, e.value) for e in history] == [(i, i) for i in range(total, 0, -1)]
        assert await boards[0].revision() == total
        assert calls >= total


@FAST
@given(
    increments=st.lists(
        st.lists(st.integers(-50, 50), min_size=1, max_size=8), min_size=2, max_size=5
    )
)
async def test_concurrent_adds_never_conflict_and_sum_up(
    redis_server: blackboard.RedisServer, increments: list[list[int]]
) -> None:
    async with _writers(redis_server.url, _fresh(), len(increments)) as boards:

        async def work(b: blackboard.Board, mine: list[int]) -> list[tuple[int, int]]:
            out = []
            for n in mine:
                e = await b.apply("sum", "add", n)  # a ConflictError here fails the test
                out.append((e.version, n))
            return out

        results = await asyncio.gather(
            *(work(b, m) for b, m in zip(boards, increments, strict=True))
        )
        by_version = dict(pair for r in results for pair in r)
        total = sum(len(m) for m in increments)
        assert sorted(by_version) == list(range(1, total + 1))
        history = {e.version: e.value for e in await boards[0].history("sum")}
        running = 0
        for version in range(1, total + 1):  # each version = its predecessor + its increment
            running += by_version[version]
            assert history[version] == running
        assert (await boards[0].get("sum")).value == sum(map(sum, increments))  # type: ignore[union-attr]


def _process_worker(url: str, board: str, writer: str, n: int) -> list[tuple[str, int, int]]:
    return asyncio.run(_process_work(url, board, writer, n))


async def _process_work(url: str, board: str, writer: str, n: int) -> list[tuple[str, int, int]]:
    async with blackboard.connect(url, board=board, writer=writer) as b:
        ready, go = f"test:{board}:ready", f"test:{board}:go"
        await b.redis.incr(ready)
        # start together, so that the writers collide; the signal is in Redis, across
        # processes, so there is no asyncio.Event to wait on
        while not await b.redis.exists(go):  # noqa: ASYNC110  (polls another process's signal)
            await asyncio.sleep(0.002)
        out = []
        for i in range(n):
            if i % 2:
                e = await b.apply("counter", "add", 1)
            else:
                e = await b.update("counter", lambda v: (v or 0) + 1)
            out.append((e.kind, e.version, e.value))
        return out


PROCESSES = 4


@pytest.fixture(scope="module")
def process_pool() -> Iterator[ProcessPoolExecutor]:
    """Spawned once for both servers: starting a Python process is the slow part."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        yield pool


async def test_processes_mixing_update_and_add_lose_no_increment(
    redis_server: blackboard.RedisServer, process_pool: ProcessPoolExecutor
) -> None:
    each, name = 40, _fresh()
    loop = asyncio.get_running_loop()
    futures = [
        loop.run_in_executor(process_pool, _process_worker, redis_server.url, name, f"p{i}", each)
        for i in range(PROCESSES)
    ]
    async with blackboard.connect(redis_server.url, board=name) as b:
        async with asyncio.timeout(60):
            while int(await b.redis.get(f"test:{name}:ready") or 0) < PROCESSES:
                if any(f.done() for f in futures):
                    break  # a worker failed early: gather() below raises its error
                await asyncio.sleep(0.01)
        await b.redis.set(f"test:{name}:go", 1)
        results = await asyncio.gather(*futures)
        committed = [c for r in results for c in r]
        total = PROCESSES * each
        assert sorted((v, value) for _, v, value in committed) == [
            (i, i) for i in range(1, total + 1)
        ]
        final = await b.get("counter")
        assert final is not None and (final.version, final.value) == (total, total)
        per_writer: dict[str, int] = {}
        async for c in b.watch(since=0, idle_timeout=0.05):
            per_writer[c.writer] = per_writer.get(c.writer, 0) + 1
        assert per_writer == {f"p{i}": each for i in range(PROCESSES)}
        await b.redis.delete(f"test:{name}:ready", f"test:{name}:go")


# -- transact: all or nothing ----------------------------------------------------------------

KEYS = ["a", "b", "c"]
expects = st.sampled_from(["any", "absent"]) | st.integers(1, 5)
ops = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.integers(0, 9) | st.just("s"), expects),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.none(), expects),
    st.tuples(st.just("add"), st.sampled_from(KEYS), st.integers(1, 9), st.just("any")),
)


def _op(kind: str, key: str, value: Any, expect: Any) -> Any:
    exp = {"any": blackboard.ANY, "absent": ABSENT}.get(expect, expect)
    if kind == "put":
        return Put(key, value, exp)
    if kind == "delete":
        return Delete(key, exp)
    return Apply(key, "add", value)


def _model_commit(state: dict[str, tuple[int, bool, Any]], commit: list[Any]) -> Any:
    """What the commit must do: ("conflict", key, actual), ("badop", key), or
    ("ok", new state, [(key, version, kind, value)])."""
    work = dict(state)
    for kind, key, _value, expect in commit:  # every expectation first, in order
        version, live, val = work.get(key, (0, False, None))
        if expect == "any":
            ok = kind != "delete" or live
        elif expect == "absent":
            ok = not live
        else:  # deleting a tombstone conflicts, whatever version is expected (issue 14)
            ok = expect == version and (kind != "delete" or live)
        if not ok:
            return ("conflict", key, version)
        work[key] = (version + 1, kind != "delete", val)
    work, out = dict(state), []
    for kind, key, value, _expect in commit:  # then the values, in order
        version, live, val = work.get(key, (0, False, None))
        if kind == "add":
            base = val if live else None
            if not (base is None or isinstance(base, int)):
                return ("badop", key)
            value = (base or 0) + value
        work[key] = (version + 1, kind != "delete", None if kind == "delete" else value)
        out.append((key, version + 1, {"add": "apply"}.get(kind, kind), work[key][2]))
    return ("ok", work, out)


@FAST
@given(commits=st.lists(st.lists(ops, min_size=1, max_size=4), min_size=1, max_size=8))
async def test_transact_matches_a_model_and_is_all_or_nothing(
    redis_server: blackboard.RedisServer, board_state: Any, commits: list[list[Any]]
) -> None:
    state: dict[str, tuple[int, bool, Any]] = {}
    revision = 0
    async with blackboard.connect(redis_server.url, board=_fresh()) as b:
        for commit in commits:
            expected = _model_commit(state, commit)
            before = await board_state(b)
            try:
                res = await b.transact([_op(*op) for op in commit])
            except blackboard.ConflictError as err:
                assert expected[0] == "conflict", (expected, err)
                assert (err.key, err.actual) == expected[1:]
                assert await board_state(b) == before
                continue
            except blackboard.InvalidValueError as err:
                assert expected[0] == "badop" and err.key == expected[1], (expected, err)
                assert await board_state(b) == before
                continue
            assert expected[0] == "ok", (expected, res)
            revision += 1
            state = expected[1]
            assert [(e.key, e.version, e.kind, e.value) for e in res] == expected[2]
            assert {e.revision for e in res} == {revision}
            for key in KEYS:
                version, live, value = state.get(key, (0, False, None))
                got = await b.get(key)
                assert ((got.version, got.value) if got else None) == (
                    (version, value) if live else None
                )
            assert await b.revision() == revision
            assert await b.keys() == sorted(k for k, (_v, live, _x) in state.items() if live)


@FAST
@given(
    plans=st.lists(
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 30), st.booleans()),
            min_size=1,
            max_size=6,
        ),
        min_size=2,
        max_size=4,
    )
)
async def test_concurrent_transfers_are_atomic(
    redis_server: blackboard.RedisServer, plans: list[list[tuple[int, int, int, bool]]]
) -> None:
    accounts = [f"acct/{i}" for i in range(4)]
    async with _writers(redis_server.url, _fresh(), len(plans)) as boards:
        await boards[0].transact([Put(a, 100, ABSENT) for a in accounts])

        async def work(b: blackboard.Board, plan: list[tuple[int, int, int, bool]]) -> list[Any]:
            done = []
            for src, dst, amount, poisoned in plan:
                if src == dst:
                    continue
                s, d = await b.get(accounts[src]), await b.get(accounts[dst])
                assert s is not None and d is not None
                await asyncio.sleep(0)
                txn = [
                    Put(s.key, s.value - amount, expect=s.version),
                    Put(d.key, d.value + amount, expect=d.version),
                ]
                if poisoned:  # its last op conflicts from the second poisoned transfer on
                    txn.append(Put("lock", b.writer, expect=ABSENT))
                with suppress(blackboard.ConflictError):
                    done.append(await b.transact(txn))
            return done

        results = await asyncio.gather(*(work(b, p) for b, p in zip(boards, plans, strict=True)))
        committed = {r[0].revision: r for done in results for r in done}
        b = boards[0]
        last = await b.revision()
        assert sorted(committed) == list(range(2, last + 1))  # every revision one commit
        assert sum(1 for r in committed.values() if len(r) == 3) <= 1  # "lock" made once
        for revision in range(1, last + 1):  # the total holds at every revision
            entries = [await b.get(a, at_revision=revision) for a in accounts]
            assert sum(e.value for e in entries if e is not None) == 400
        changes: dict[int, list[Any]] = {}
        if committed:
            async for c in b.watch(since=1):
                changes.setdefault(c.revision, []).append((c.key, c.version, c.value))
                if c.revision == last and len(changes[last]) == len(committed[last]):
                    break
        assert changes == {
            rev: [(e.key, e.version, e.value) for e in res] for rev, res in committed.items()
        }


# -- watch: every change once, in revision order ---------------------------------------------

WKEYS = ["k0", "k1", "k2", "x/0"]
actions = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(WKEYS), st.integers(0, 99)),
    st.tuples(st.just("delete"), st.sampled_from(WKEYS), st.none()),
    st.tuples(st.just("apply"), st.sampled_from(WKEYS), st.integers(1, 5)),
    st.tuples(
        st.just("transact"),
        st.none(),
        st.lists(
            st.tuples(st.sampled_from(["put", "delete", "add"]), st.sampled_from(WKEYS)),
            min_size=1,
            max_size=3,
        ),
    ),
)
SENTINEL = "k/stop"  # matches every pattern the test watches


async def _until_sentinel(b: blackboard.Board, since: int, pattern: str = "*") -> list[Any]:
    out = []
    async with asyncio.timeout(20):
        async for c in b.watch(pattern, since=since):
            if c.key == SENTINEL:
                return out
            out.append((c.revision, c.key, c.version, c.kind, c.value))
    raise AssertionError("the watch ended before the sentinel")


@FAST
@given(
    scripts=st.lists(st.lists(actions, min_size=1, max_size=8), min_size=2, max_size=4),
    middle=st.floats(0, 1),
)
async def test_watch_sees_every_change_once_in_revision_order(
    redis_server: blackboard.RedisServer, scripts: list[list[Any]], middle: float
) -> None:
    async with _writers(redis_server.url, _fresh(), len(scripts) + 1) as boards:
        watcher, writers = boards[0], boards[1:]
        live = asyncio.create_task(_until_sentinel(watcher, since=0))
        filtered = asyncio.create_task(_until_sentinel(watcher, 0, "k*"))

        async def run(b: blackboard.Board, script: list[Any]) -> list[Any]:
            done = []
            for kind, key, arg in script:
                try:
                    if kind == "put":
                        res = [await b.put(key, arg)]
                    elif kind == "delete":
                        res = [await b.delete(key)]
                    elif kind == "apply":
                        res = [await b.apply(key, "add", arg)]
                    else:
                        res = await b.transact(
                            [
                                Put(k, 1)
                                if o == "put"
                                else Delete(k)
                                if o == "delete"
                                else Apply(k, "add", 1)
                                for o, k in arg
                            ]
                        )
                except blackboard.ConflictError:  # a delete of a deleted key
                    continue
                done += [(e.revision, e.key, e.version, e.kind, e.value) for e in res]
            return done

        results = await asyncio.gather(*(run(b, s) for b, s in zip(writers, scripts, strict=True)))
        expected = sorted(
            (c for r in results for c in r), key=lambda c: c[0]
        )  # stable: the ops of one commit keep their order
        last = await watcher.revision()
        assert sorted({c[0] for c in expected}) == list(range(1, last + 1))
        await writers[0].put(SENTINEL, 1)

        assert await live == expected
        assert await filtered == [c for c in expected if fnmatchcase(c[1], "k*")]
        mid = int(middle * last)
        assert await _until_sentinel(watcher, since=mid) == [c for c in expected if c[0] > mid]
