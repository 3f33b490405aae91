"""connect(): URLs, an unreachable server, and the embedded default server."""

from __future__ import annotations

import os
import time

import pytest

import blackboard
from blackboard.store.server import RedisServer, free_port


async def test_unreachable_server_fails_fast() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(blackboard.BoardUnavailableError) as info:
        async with blackboard.connect(f"redis://127.0.0.1:{port}/0", board="b"):
            pass
    assert time.monotonic() - started < 5
    assert isinstance(info.value, ConnectionError) and str(port) in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "127.0.0.1:6379", "redis://:notaport/0"])
async def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(blackboard.BoardUnavailableError):
        async with blackboard.connect(url, board="b"):
            pass


async def test_a_server_that_goes_away_gives_board_unavailable(board_name: str) -> None:
    server = RedisServer(tcp=True).start()
    try:
        async with blackboard.connect(server.url, board=board_name) as b:
            await b.put("k", 1)
            server.stop()
            started = time.monotonic()
            for call in (b.put("k", 2), b.get("k"), b.revision()):
                with pytest.raises(blackboard.BoardUnavailableError):
                    await call
            assert time.monotonic() - started < 15
    finally:
        server.close()


async def test_embedded_default_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLACKBOARD_REDIS_URL", raising=False)
    monkeypatch.delenv("BLACKBOARD_SERVER_BIN", raising=False)
    async with blackboard.connect(board="embedded", writer="me") as b:
        kwargs = b.redis.connection_pool.connection_kwargs
        path = kwargs.get("path")
        # a local stat in a test, not I/O worth a thread
        assert path and os.path.exists(path)  # noqa: ASYNC240  (a unix socket: no TCP port)
        assert "port" not in kwargs or not kwargs.get("host")
        directory = os.path.dirname(path)
        e = await b.put("k", {"v": 1})
        assert (e.version, e.revision, e.writer) == (1, 1, "me")
        assert (await b.get("k")).value == {"v": 1}  # type: ignore[union-attr]
    assert not os.path.exists(path)  # noqa: ASYNC240  (a local stat in a test)
    assert not os.path.exists(directory)  # noqa: ASYNC240  (a local stat in a test)


async def test_embedded_default_without_a_server_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLACKBOARD_REDIS_URL", raising=False)
    monkeypatch.setenv("BLACKBOARD_SERVER_BIN", "/nonexistent/redis-server")
    with pytest.raises(blackboard.ServerNotFoundError, match="/nonexistent/redis-server"):
        async with blackboard.connect(board="embedded"):
            pass


async def test_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_server: blackboard.RedisServer, board_name: str
) -> None:
    monkeypatch.setenv("BLACKBOARD_REDIS_URL", redis_server.url)
    monkeypatch.setenv("BLACKBOARD_BOARD", board_name)
    async with blackboard.connect() as b:
        assert b.name == board_name
        await b.put("k", 1)
        assert b.redis.connection_pool.connection_kwargs.get("port") == redis_server.port
