"""The board a handler sees: reads go to the board, writes are staged (runtime layer).

An activation's writes are committed together when its handler returns: one transaction
whose idempotency key is the activation id, fenced by the agent's claim and acknowledging it
in the same script. So an activation's effect is all or nothing, and it happens once even
if the agent dies and another one redoes the work. Reads see the committed board, not the
writes staged so far. A handler that runs past its deadline has its board closed: whatever
it stages afterwards is refused. Proposals (`propose`) are sent first, each fenced by the
claim with an idempotency key derived from the activation id (so a redone activation
proposes once), then the writes commit and acknowledge the claim. Imports board, entry, ops.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from blackboard.board.client import Board
from blackboard.board.ops import Apply, Delete, Op, Put, Reducer
from blackboard.errors import ActivationClosedError
from blackboard.store.entry import ABSENT, ANY, Entry, Expect

__all__ = ["ActivationBoard", "Proposal", "SyncActivationBoard"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Proposal:
    """A staged `board.propose(key, value, confidence)`."""

    key: str
    value: Any
    confidence: float | None = None


class ActivationBoard:
    """Async view for `async def handle(...)`: `await board.get(...)`, `await board.put(...)`."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.staged: list[Op] = []
        self.proposals: list[Proposal] = []
        self.closed = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def writer(self) -> str:
        return self.board.writer

    def _stage(self, op: Op | Proposal) -> None:
        with self._lock:
            if self.closed:
                raise ActivationClosedError("the activation is over: this write is refused")
            if isinstance(op, Proposal):
                self.proposals.append(op)
            else:
                self.staged.append(op)

    def close(self) -> list[Op]:
        """Stop staging; the ops to commit."""
        with self._lock:
            self.closed = True
            return list(self.staged)

    def reset(self) -> None:
        """Forget staged ops (before the handler runs again after a conflict)."""
        with self._lock:
            self.staged.clear()
            self.proposals.clear()
            self.closed = False

    # -- reads --------------------------------------------------------------------------

    async def get(
        self, key: str, *, version: int | None = None, at_revision: int | None = None
    ) -> Entry | None:
        return await self.board.get(key, version=version, at_revision=at_revision)

    async def history(self, key: str, *, limit: int | None = None) -> list[Entry]:
        return await self.board.history(key, limit=limit)

    async def keys(self, pattern: str = "*", *, limit: int | None = None) -> list[str]:
        return await self.board.keys(pattern, limit=limit)

    async def revision(self) -> int:
        return await self.board.revision()

    # -- staged writes ------------------------------------------------------------------

    async def put(self, key: str, value: Any, *, expect: int | Expect = ANY) -> None:
        """Stage a write; its expectation is checked when the activation commits."""
        self._stage(Put(key, value, expect))

    async def delete(self, key: str, *, expect: int | Expect = ANY) -> None:
        self._stage(Delete(key, expect))

    async def apply(self, key: str, op: Reducer, arg: Any) -> None:
        self._stage(Apply(key, op, arg))

    async def propose(self, key: str, value: Any, confidence: float | None = None) -> None:
        """Stage a proposal for `key` by this agent (see `Board.propose`)."""
        self._stage(Proposal(key, value, confidence))

    async def transact(self, ops: list[Op]) -> None:
        for op in ops:
            self._stage(op)

    async def update(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """Stage `fn(current value)` expecting the version read now; a conflict at commit
        runs the handler again. Returns the new value."""
        current = await self.board.get(key)
        new = fn(None if current is None else current.value)
        if inspect.isawaitable(new):
            new = await new
        self._stage(Put(key, new, current.version if current is not None else ABSENT))
        return new


class SyncActivationBoard:
    """Blocking view for a sync `def handle(...)` run in a worker thread: reads run on the
    agent's event loop and wait for their answer; writes are staged as in ActivationBoard."""

    def __init__(self, inner: ActivationBoard, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop

    @property
    def name(self) -> str:
        return self._inner.name

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def get(
        self, key: str, *, version: int | None = None, at_revision: int | None = None
    ) -> Entry | None:
        return self._call(self._inner.get(key, version=version, at_revision=at_revision))

    def history(self, key: str, *, limit: int | None = None) -> list[Entry]:
        return self._call(self._inner.history(key, limit=limit))

    def keys(self, pattern: str = "*", *, limit: int | None = None) -> list[str]:
        return self._call(self._inner.keys(pattern, limit=limit))

    def revision(self) -> int:
        return self._call(self._inner.revision())

    def put(self, key: str, value: Any, *, expect: int | Expect = ANY) -> None:
        self._inner._stage(Put(key, value, expect))

    def delete(self, key: str, *, expect: int | Expect = ANY) -> None:
        self._inner._stage(Delete(key, expect))

    def apply(self, key: str, op: Reducer, arg: Any) -> None:
        self._inner._stage(Apply(key, op, arg))

    def propose(self, key: str, value: Any, confidence: float | None = None) -> None:
        self._inner._stage(Proposal(key, value, confidence))

    def update(self, key: str, fn: Callable[[Any], Any]) -> Any:
        current = self.get(key)
        new = fn(None if current is None else current.value)
        self._inner._stage(Put(key, new, current.version if current is not None else ABSENT))
        return new
