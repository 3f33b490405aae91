"""Deploying blackboard on a server: load this version's functions library, delete the
libraries of other versions, and set the limits the server enforces on a board (store layer;
imports functions and keys).

What `blackboard deploy` and `blackboard acl generate --apply` do, as functions over a
Redis client (an admin's: role users may not load code). It is a module of its own because
the edges may not import `store.functions` or `store.keys` (an import-linter contract keeps
the library's call conventions and the key layout private to the layers below them), and
because deploying is about the server, not about a board: it lives beside the library it
loads.
"""

from __future__ import annotations

from typing import Any

from blackboard.store import functions
from blackboard.store.keys import BoardKeys, check_board

__all__ = ["LIBRARY_VERSION", "load_library", "prune_libraries", "set_board_limits"]

LIBRARY_VERSION = functions.VERSION
"""The version of the functions library this blackboard calls (a hash of its text)."""


async def load_library(redis: Any) -> None:
    """FUNCTION LOAD this version's library (replacing a copy of it). Raises
    LibraryMissingError when this user may not load code."""
    await functions.load_library(redis)


async def prune_libraries(redis: Any) -> list[str]:
    """Delete the blackboard libraries of other versions; returns their names."""
    listed: Any = await redis.execute_command("FUNCTION", "LIST")
    pruned = []
    for lib in listed:
        name = lib[b"library_name"] if isinstance(lib, dict) else lib[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name.startswith("blackboard_") and name != f"blackboard_{LIBRARY_VERSION}":
            await redis.execute_command("FUNCTION", "DELETE", name)
            pruned.append(name)
    return pruned


async def set_board_limits(redis: Any, board: str, *, max_value_bytes: int) -> None:
    """Set the largest encoded value the server accepts on `board` (enforced inside the
    server whatever a client asks for). Raises InvalidKeyError for a bad board name,
    ValueError for a limit below 1."""
    if max_value_bytes < 1:
        raise ValueError(f"max_value_bytes must be at least 1, found {max_value_bytes}")
    await redis.hset(BoardKeys(check_board(board)).config, "max_value_bytes", max_value_bytes)
