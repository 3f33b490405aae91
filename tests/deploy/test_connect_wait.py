"""Long-running processes wait for a server that is (re)starting instead of exiting."""

from __future__ import annotations

import asyncio
import time

import pytest

import blackboard
from blackboard.store.server import RedisServer, free_port


async def test_connect_waits_for_a_server_that_comes_up() -> None:
    port = free_port()
    server = RedisServer(tcp=True, port=port)
    loop = asyncio.get_running_loop()
    later = loop.call_later(1.0, server.start)
    try:
        started = time.monotonic()
        async with blackboard.connect(server.url, board="w", wait=20) as b:
            assert (await b.put("k", 1)).version == 1
        assert time.monotonic() - started >= 0.9
    finally:
        later.cancel()
        server.close()


async def test_connect_without_wait_fails_at_once_and_with_wait_gives_up() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(blackboard.BoardUnavailableError):
        async with blackboard.connect(url, board="w"):
            pass
    started = time.monotonic()
    with pytest.raises(blackboard.BoardUnavailableError):
        async with blackboard.connect(url, board="w", wait=1.0):
            pass
    assert time.monotonic() - started >= 1.0
