"""`blackboard deploy`: load the board's Redis Functions library on a server (edge layer).

Run once per server (every primary of a cluster) by the deployer, as an admin user, and again
after upgrading blackboard: clients call only the library version they were built with, and
role users may not load code themselves (docs/security.md). `acl generate --apply` does the
same; an admin connection also loads a missing library by itself.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from redis.exceptions import RedisError

from blackboard.board.client import wrap_redis_error
from blackboard.board.connection import redis_from_url
from blackboard.cli.context import BoardOpt, RedisOpt, app, err, need_url, run
from blackboard.settings import Settings
from blackboard.store import deploy as server


@app.command("deploy")
def deploy(
    redis: RedisOpt = None,
    board: BoardOpt = "demo",
    max_value_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Largest encoded value the server accepts on --board (default 1 MiB); "
            "enforced inside the server whatever a client asks for.",
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="Also delete blackboard libraries of other versions.")
    ] = False,
) -> None:
    """Load (or replace) this version's functions library; optionally set board limits."""
    url = need_url(redis)

    async def go() -> list[str]:
        client: Any = redis_from_url(url, Settings())
        try:
            await server.load_library(client)
            pruned = await server.prune_libraries(client) if prune else []
            if max_value_bytes is not None:
                await server.set_board_limits(client, board, max_value_bytes=max_value_bytes)
            return pruned
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        finally:
            await client.aclose()

    pruned = run(go())
    err.print(
        f"loaded blackboard functions library {server.LIBRARY_VERSION}"
        + (f"; deleted {', '.join(pruned)}" if pruned else ""),
        highlight=False,
        markup=False,
    )
