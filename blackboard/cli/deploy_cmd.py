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
from blackboard.store import functions
from blackboard.store.keys import BoardKeys


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
            await functions.load_library(client)
            pruned = []
            if prune:
                listed: Any = await client.execute_command("FUNCTION", "LIST")
                for lib in listed:
                    name = lib[b"library_name"] if isinstance(lib, dict) else lib[1]
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    if name.startswith("blackboard_") and name != f"blackboard_{functions.VERSION}":
                        await client.execute_command("FUNCTION", "DELETE", name)
                        pruned.append(name)
            if max_value_bytes is not None:
                keys = BoardKeys(board)
                await client.hset(keys.config, "max_value_bytes", max_value_bytes)
            return pruned
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        finally:
            await client.aclose()

    pruned = run(go())
    err.print(
        f"loaded blackboard functions library {functions.VERSION}"
        + (f"; deleted {', '.join(pruned)}" if pruned else ""),
        highlight=False,
        markup=False,
    )
