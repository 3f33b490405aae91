"""Operations a commit carries and the fences that guard it (no I/O; imports entry only).

`board.transact([Put(...), Delete(...), Apply(...)])` applies all of them or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from blackboard.store.entry import ANY, Expect

Reducer = Literal["add", "append", "union", "max", "min"]
REDUCERS: frozenset[str] = frozenset({"add", "append", "union", "max", "min"})

__all__ = ["REDUCERS", "Apply", "Delete", "Fence", "Op", "Put", "Reducer"]


@dataclass(frozen=True, slots=True)
class Put:
    """Write `value` under `key` if the entry's version matches `expect`."""

    key: str
    value: Any
    expect: int | Expect = ANY


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete `key` (a versioned tombstone); the entry must be live."""

    key: str
    expect: int | Expect = ANY


@dataclass(frozen=True, slots=True)
class Apply:
    """Run reducer `op` with `arg` on the value inside the server; never conflicts."""

    key: str
    op: Reducer
    arg: Any


Op = Put | Delete | Apply


@dataclass(frozen=True, slots=True)
class Fence:
    """A condition checked inside the commit; if it fails, LeaseLostError and no write.

    mode "eq": the string at `redis_key` must equal `token` (a lease with a fencing token).
    mode "claim": stream entry `token` must be pending for `consumer` in `group` of the stream
    at `redis_key`; the commit also acknowledges it.
    mode "lease": as "claim", with `token` = ``<entry id>@<ms>``: the claim must also have been
    delivered or renewed within the last <ms> (the agent runtime's claim lease).
    """

    mode: Literal["eq", "claim", "lease"]
    redis_key: str
    token: str
    consumer: str = ""
    group: str = ""
