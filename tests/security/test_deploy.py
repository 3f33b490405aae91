"""`blackboard deploy`: the deployer loads the functions library and sets the limits the
server enforces (real server: FUNCTION and ACL are not faked)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from typer.testing import CliRunner

import blackboard
from blackboard.board.connection import redis_from_url
from blackboard.cli import app
from blackboard.store import functions
from blackboard.store.server import RedisServer


async def _libraries(redis: Any) -> list[str]:
    listed: Any = await redis.execute_command("FUNCTION", "LIST")
    out = []
    for lib in listed:
        name = lib[b"library_name"] if isinstance(lib, dict) else lib[1]
        out.append(name.decode())
    return sorted(out)


def test_deploy_loads_prunes_and_sets_the_board_limit() -> None:
    old = (
        "#!lua name=blackboard_000000000000\n"
        "redis.register_function('bb_000000000000_version', function() return 1 end)"
    )
    with RedisServer(tcp=True) as server:

        async def before() -> None:
            admin = redis_from_url(server.url, blackboard.Settings())
            await admin.execute_command("FUNCTION", "LOAD", old)
            await admin.aclose()

        async def after() -> list[str]:
            admin = redis_from_url(server.url, blackboard.Settings())
            libraries = await _libraries(admin)
            await admin.aclose()
            async with blackboard.connect(server.url, board="dep") as board:
                assert (await board.put("small", "x" * 10)).version == 1
                # the client allows 1 MiB; the server holds the board to what the deployer set
                with pytest.raises(blackboard.InvalidValueError, match="over the limit of 64"):
                    await board.put("big", "x" * 100)
                assert await board.get("big") is None
            return libraries

        asyncio.run(before())
        args = ["deploy", "--redis", server.url, "--board", "dep", "--max-value-bytes", "64"]
        result = CliRunner().invoke(app, [*args, "--prune"])
        assert result.exit_code == 0, result.output
        assert asyncio.run(after()) == [f"blackboard_{functions.VERSION}"]
