"""Idempotency: a write retried with one idempotency key applies once, across dropped
connections and processes, until its record expires; a conflict is never remembered."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blackboard
from blackboard import ABSENT, Apply, Delete, Put
from blackboard.store import functions


def _resp(*parts: Any) -> bytes:
    """A command in RESP, as a client sends it."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def _log_length(board: blackboard.Board) -> int:
    return int(await board.redis.xlen(board.keys_.log))


async def _wait_for_revision(board: blackboard.Board, revision: int) -> None:
    async with asyncio.timeout(5):
        while await board.revision() < revision:  # noqa: ASYNC110  (polls the server)
            await asyncio.sleep(0.005)


async def test_retry_after_the_connection_dropped_post_apply(
    board: blackboard.Board, redis_server: blackboard.RedisServer
) -> None:
    await functions.check_library(board.redis)
    call = board.prepare_commit([Put("k", {"n": 1})], "req-1").call
    keys, args = call.keys, call.args
    _reader, writer = await asyncio.open_connection("127.0.0.1", redis_server.port)
    writer.write(_resp("AUTH", redis_server.password))  # test servers require a password
    writer.write(_resp("FCALL", functions.COMMIT.fname, len(keys), *keys, *args))
    await writer.drain()
    writer.close()  # gone before the reply: the client cannot know whether it applied
    await writer.wait_closed()
    await _wait_for_revision(board, 1)  # it did

    e = await board.put("k", {"n": 1}, idempotency_key="req-1")
    assert (e.key, e.version, e.revision, e.value) == ("k", 1, 1, {"n": 1})
    again = await board.put("k", {"n": 1}, idempotency_key="req-1")
    assert (again.version, again.revision) == (1, 1)
    assert [h.version for h in await board.history("k")] == [1]
    assert await board.revision() == 1 and await _log_length(board) == 1


async def test_a_retried_transaction_returns_the_first_result(board: blackboard.Board) -> None:
    await board.put("gone", 1)
    ops = [Put("a", [1]), Apply("n", "add", 5), Delete("gone"), Apply("a", "append", 2)]
    first = await board.transact(ops, idempotency_key="txn")
    await board.apply("n", "add", 100)  # later writes do not change the replayed result
    again = await board.transact(ops, idempotency_key="txn")

    def facts(es: list[blackboard.Entry]) -> list[Any]:
        return [(e.key, e.version, e.revision, e.kind, e.value, e.deleted) for e in es]

    assert facts(again) == facts(first)
    assert facts(first)[1] == ("n", 1, 2, "apply", 5, False)
    assert await board.revision() == 3 and await _log_length(board) == 3


async def test_a_retried_update_returns_the_stored_result(board: blackboard.Board) -> None:
    await board.put("k", 1)
    first = await board.update("k", lambda v: v + 1, idempotency_key="u")
    await board.put("k", 50)  # the retry computes another value; the stored result wins
    again = await board.update("k", lambda v: v + 1, idempotency_key="u")
    assert (again.version, again.revision, again.value) == (first.version, first.revision, 2)
    assert (await board.get("k")).value == 50  # type: ignore[union-attr]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
    other=st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
    retries=st.integers(1, 4),
)
async def test_same_key_same_request_applies_once_different_request_is_refused(
    redis_server: blackboard.RedisServer, value: Any, other: Any, retries: int
) -> None:
    async with blackboard.connect(redis_server.url, board=_fresh()) as b:
        first = await b.put("k", value, idempotency_key="idem")
        for _ in range(retries):
            e = await b.put("k", value, idempotency_key="idem")
            assert (e.version, e.revision, e.value) == (first.version, first.revision, value)
        if other != value or type(other) is not type(value):
            with pytest.raises(blackboard.IdempotencyKeyReusedError) as info:
                await b.put("k", other, idempotency_key="idem")
            assert info.value.idempotency_key == "idem"
        with pytest.raises(blackboard.IdempotencyKeyReusedError):
            await b.delete("k", idempotency_key="idem")
        with pytest.raises(blackboard.IdempotencyKeyReusedError):
            await b.put("elsewhere", value, idempotency_key="idem")
        assert await b.revision() == 1 and await _log_length(b) == 1
        assert [h.value for h in await b.history("k")] == [value]


async def test_a_conflict_is_not_remembered(board: blackboard.Board) -> None:
    await board.put("k", 1)
    for _ in range(2):  # the same failing request fails again: nothing was stored
        with pytest.raises(blackboard.ConflictError):
            await board.put("k", 2, expect=ABSENT, idempotency_key="fix")
    fixed = await board.put("k", 2, expect=1, idempotency_key="fix")
    assert (fixed.version, fixed.revision) == (2, 2)
    replay = await board.put("k", 2, expect=1, idempotency_key="fix")
    assert (replay.version, replay.revision) == (2, 2)
    assert await board.revision() == 2


async def test_the_key_can_be_reused_after_its_ttl(
    redis_server: blackboard.RedisServer, board_name: str
) -> None:
    settings = blackboard.Settings(idempotency_ttl=1, auto_idempotency_ttl=5)
    async with blackboard.connect(redis_server.url, board=board_name, settings=settings) as b:
        first = await b.put("k", "one", idempotency_key="short")
        ttl_ms = await b.redis.pttl(b.keys_.idempotency("short"))
        assert 0 < ttl_ms <= 1000
        await b.put("auto", 1)  # no key given: a generated one with its own TTL
        auto_keys = [k async for k in b.redis.scan_iter(match=b.keys_.idem_prefix + "~*")]
        assert len(auto_keys) == 1 and 1000 < await b.redis.pttl(auto_keys[0]) <= 5000
        async with asyncio.timeout(5):
            while await b.redis.exists(b.keys_.idempotency("short")):  # noqa: ASYNC110  (server TTL)
                await asyncio.sleep(0.05)
        second = await b.put("k", "two", idempotency_key="short")  # a new request now
        assert (second.version, second.revision) == (first.version + 1, first.revision + 2)
        assert (await b.get("k")).value == "two"  # type: ignore[union-attr]


# -- another process with the same key --------------------------------------------------------


def _fresh() -> str:
    import uuid

    return "t" + uuid.uuid4().hex[:10]


def _put_in_another_process(url: str, board: str, value: Any, key: str) -> tuple[Any, ...]:
    async def run() -> tuple[Any, ...]:
        async with blackboard.connect(url, board=board) as b:  # its own default writer id
            try:
                e = await b.put("k", value, idempotency_key=key)
            except blackboard.BlackboardError as err:
                return (type(err).__name__,)
            return (e.version, e.revision, e.value)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def other_process() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


async def test_another_process_with_the_same_key_gets_the_first_result(
    board: blackboard.Board, redis_server: blackboard.RedisServer, other_process: Any
) -> None:
    first = await board.put("k", {"by": "first"}, idempotency_key="shared")
    loop = asyncio.get_running_loop()
    url, name = redis_server.url, board.name
    got = await loop.run_in_executor(
        other_process, _put_in_another_process, url, name, {"by": "first"}, "shared"
    )
    assert got == (first.version, first.revision, {"by": "first"})
    other = await loop.run_in_executor(
        other_process, _put_in_another_process, url, name, {"by": "second"}, "shared"
    )
    assert other == ("IdempotencyKeyReusedError",)
    assert await board.revision() == 1 and await _log_length(board) == 1
    assert [h.writer for h in await board.history("k")] == ["tester"]


# -- redis-py resends a command after a dropped connection ---------------------------------


class DroppingProxy:
    """A loopback TCP proxy to the server. When armed, it forwards the next commit, lets the
    server answer, and drops the client connection instead of passing the answer on."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.connections = 0
        self.commits = 0
        self.dropped = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        for w in self._writers:  # ends the pumps of connections still open
            w.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers), 5)
        await self.server.wait_closed()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        self.connections += 1
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {cwriter, swriter}
        drop = asyncio.Event()

        async def client_to_server() -> None:
            while data := await creader.read(65536):
                if functions.COMMIT.fname.encode() in data:
                    self.commits += 1
                    if self.armed:
                        self.armed = False
                        drop.set()
                swriter.write(data)
                await swriter.drain()

        async def server_to_client() -> None:
            while data := await sreader.read(65536):
                if drop.is_set():  # the server has applied the commit: lose its answer
                    self.dropped += 1
                    return
                cwriter.write(data)
                await cwriter.drain()

        pumps = [asyncio.create_task(client_to_server()), asyncio.create_task(server_to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (cwriter, swriter):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()
                self._writers.discard(w)
            self._handlers.discard(me)


@pytest.fixture
async def proxy(redis_server: blackboard.RedisServer) -> AsyncIterator[DroppingProxy]:
    p = DroppingProxy(redis_server.port)
    p.port = await p.start()  # type: ignore[attr-defined]
    yield p
    await p.close()


async def test_a_resent_plain_put_applies_once(
    proxy: DroppingProxy, board_name: str, redis_server: blackboard.RedisServer
) -> None:
    url = f"redis://127.0.0.1:{proxy.port}/0"  # type: ignore[attr-defined]
    settings = blackboard.Settings(redis_password=redis_server.password)
    async with blackboard.connect(url, board=board_name, settings=settings) as b:
        proxy.armed = True
        started = time.monotonic()
        e = await b.put("k", {"n": 1})  # no idempotency key: the generated one protects it
        assert time.monotonic() - started < 10
        assert (proxy.dropped, proxy.commits, proxy.connections) == (1, 2, 2)
        assert (e.version, e.revision, e.value) == (1, 1, {"n": 1})
        assert [h.version for h in await b.history("k")] == [1]
        assert await b.revision() == 1 and await _log_length(b) == 1
        proxy.armed = True  # and an apply, whose replay must not add twice
        n = await b.apply("n", "add", 5)
        assert (proxy.dropped, n.version, n.value) == (2, 1, 5)
        assert (await b.get("n")).value == 5  # type: ignore[union-attr]
        assert await b.revision() == 2
