"""Operations a commit carries and the fences that guard it (no I/O; imports entry, and
Fence from store/wire.py, where the fence block of the write functions is laid out).

`board.transact([Put(...), Delete(...), Apply(...)])` applies all of them or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from blackboard.store.entry import ANY, Expect
from blackboard.store.wire import Fence

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
