"""A whole system in one process: controllers, agent runtimes and a compactor as asyncio tasks
on one board (public API; top of the runtime layer: imports controller, runtime, compactor,
policy_board, board).

    async with blackboard.System(board, policy=Path("policies/support.toml"),
                                 agents=[Triage(), Specialist(), Resolver()]) as system:
        await board.put("ticket/1", {"subject": "refund", "status": "new"})
        await system.until_idle()

For notebooks, tests and small deployments; each part behaves as its own process would (the
controllers contend for the lease, each runtime is one consumer of its role's queue), so a
system outgrows one process by moving parts out, unchanged. `until_idle` reads the board's
state, not the parts' internals, so it also waits for work done by parts in other processes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from redis.exceptions import RedisError, ResponseError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.compaction.compactor import Compactor
from blackboard.control.controller import GROUP as CONTROLLER_GROUP
from blackboard.control.controller import Controller
from blackboard.control.policy import decode_policy
from blackboard.control.policy_board import apply_policy
from blackboard.runtime.agent import Agent
from blackboard.runtime.agent_runtime import AgentRuntime
from blackboard.settings import Settings
from blackboard.store.entry import Entry

__all__ = ["System"]


class System:
    """Runs `controllers` controllers, one `AgentRuntime` per agent in `agents`, and (with
    `compactor` True, or a `Compactor` of your own) a compactor on `board`, as tasks of the
    running event loop, from `start()` (or ``async with``) to `stop()`.

    `policy`, when given, is applied first (a `Path` to a TOML file, or the TOML text); None
    keeps the policy in force. Raises PolicyError (nothing started) for an invalid policy."""

    def __init__(
        self,
        board: Board,
        *,
        policy: str | Path | None = None,
        agents: Sequence[Agent] = (),
        controllers: int = 1,
        compactor: bool | Compactor = False,
        settings: Settings | None = None,
        name: str | None = None,
    ) -> None:
        if controllers < 0:
            raise ValueError("controllers must be 0 or more")
        self.board = board
        self.policy = policy
        self.settings = settings or board.settings
        self.name = name or f"system@{socket.gethostname()}:{os.getpid()}"
        self.policy_entry: Entry | None = None
        self.controllers = [
            Controller(board, name=f"controller-{i}@{self.name}", settings=self.settings)
            for i in range(controllers)
        ]
        self.runtimes = [
            AgentRuntime(a, board, name=f"{a.role}-{i}@{self.name}", settings=self.settings)
            for i, a in enumerate(agents)
        ]
        self.compactor: Compactor | None = (
            compactor
            if isinstance(compactor, Compactor)
            else Compactor(board, name=f"compactor@{self.name}")
            if compactor
            else None
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> System:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop(raise_errors=exc is None)

    async def start(self) -> None:
        """Apply the policy, then start every part. Raises PolicyError or ConflictError (a
        concurrent apply won) with nothing started, BoardUnavailableError."""
        if self._tasks:
            raise RuntimeError("this system is running already")
        if self.policy is not None:
            if isinstance(self.policy, Path):
                source = decode_policy(self.policy.read_bytes(), str(self.policy))
                file = str(self.policy)
            else:
                source, file = self.policy, "<policy>"
            self.policy_entry, _ = await apply_policy(self.board, source, file)
        self._stop.clear()
        parts: list[Any] = [*self.controllers, *self.runtimes]
        self._tasks = [asyncio.create_task(p.run(self._stop), name=p.name) for p in parts]
        if self.compactor is not None:
            run = self.compactor.run(stop=self._stop)
            self._tasks.append(asyncio.create_task(run, name=self.compactor.name))

    async def stop(self, *, raise_errors: bool = True) -> None:
        """Stop every part cleanly: in-flight activations finish within the settings'
        shutdown grace (or are released to another agent), leases are released. Raises the
        first error a part stopped with, when `raise_errors`."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors and raise_errors:
            raise errors[0]

    def _check_parts(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} stopped") from task.exception()

    async def until_idle(self, *, quiet: float = 0.2, within: float = 30.0) -> None:
        """Return once the board is idle: no activation open (running, queued or waiting for
        its next attempt), every change and every agent's outcome settled by the controller,
        and no new revision for `quiet` seconds (with a compactor, during at least one of its
        whole rounds). Dead letters do not count: they are finished.

        Raises TimeoutError saying what is still open after `within` seconds, and the error
        of a part that stopped by itself (RuntimeError from it)."""
        deadline = time.monotonic() + within
        since: tuple[int, int] | None = None  # (revision, compactor rounds) when quiet began
        quiet_at = 0.0
        while True:
            self._check_parts()
            busy = await self.busy()
            rounds = self.compactor.stats.steps if self.compactor is not None else 0
            now = time.monotonic()
            if busy:
                since = None
            else:
                revision = await self.board.revision()
                if since is None or since[0] != revision:
                    since, quiet_at = (revision, rounds), now
                elif now - quiet_at >= quiet and (self.compactor is None or rounds >= since[1] + 2):
                    return
            if now > deadline:
                raise TimeoutError(f"not idle after {within:g}s: {', '.join(busy) or 'writing'}")
            await asyncio.sleep(min(0.02, quiet / 4))

    async def busy(self) -> list[str]:
        """What keeps the board from being idle now (empty when nothing does)."""
        keys = self.board.keys_
        out: list[str] = []
        try:
            opened: Any = await self.board.redis.hkeys(keys.open_activations)
            for stream, what in ((keys.log, "changes"), (keys.outcomes, "outcomes")):
                left = await self._unsettled(stream)
                if left:
                    out.append(f"{left} {what} not settled by the controller")
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if opened:
            ids = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in opened)
            out.insert(0, f"{len(ids)} open activation(s): {', '.join(ids[:5])}")
        return out

    async def _unsettled(self, stream: str) -> int:
        """Entries of `stream` the controller's group has not read or not acknowledged."""
        redis = self.board.redis
        try:
            info: Any = await redis.xinfo_stream(stream)
        except ResponseError:  # no such stream: nothing was ever written to it
            return 0
        groups: Any = await redis.xinfo_groups(stream)
        group = next((g for g in groups if _s(g["name"]) == CONTROLLER_GROUP), None)
        if group is None:
            return int(info["length"])
        pending = int(group["pending"])
        if _id(group["last-delivered-id"]) < _id(info["last-generated-id"]):
            lag = group.get("lag")
            return pending + (int(lag) if lag is not None else 1)
        return pending


def _s(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _id(raw: Any) -> tuple[int, int]:
    ms, _, seq = _s(raw).partition("-")
    return int(ms), int(seq or 0)
