"""A harness to unit-test agents against a real board without a controller (public API;
runtime layer: imports runtime, activation, board).

    async with blackboard.connect(url, board="t1") as board:
        harness = blackboard.AgentHarness(Triage(seed=1), board)
        await board.put("ticket/1", {"subject": "refund", "tier": "vip"})
        outcome = await harness.activate("ticket/1")
        assert outcome.status == "ok"
        assert (await board.get("ticket/1/triage")).value["category"] == "billing"

`activate` grants one activation on the agent's role queue exactly as the controller
would (same queue entry, same record), claims it as the harness's agent and runs it through
the agent runtime: the handler's writes are committed fenced by the claim, with the
activation id as idempotency key. The outcome says "ok", "failed" (with the error) or
"lost", and lists the entries written.

`lose_entry` is a fault for tests and scenarios: it removes an entry behind the board's back
(no log event, no tombstone), as a server that lost an acknowledged write would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.control.activation import GROUP, Activation, activation_id, grant_fields
from blackboard.runtime.agent import Agent
from blackboard.runtime.agent_runtime import AgentRuntime, Outcome, ensure_group
from blackboard.settings import Settings
from blackboard.store.codec import encode_value

__all__ = ["AgentHarness", "Outcome", "lose_entry"]

_UNSET: Any = object()


class AgentHarness:
    """Runs one agent's activations on `board`, one at a time, as agent `name`."""

    def __init__(
        self,
        agent: Agent,
        board: Board,
        *,
        name: str = "harness",
        settings: Settings | None = None,
    ) -> None:
        self.agent = agent
        self.runtime = AgentRuntime(agent, board, name=name, settings=settings)
        self.board = board
        self._pipe_task: asyncio.Task[None] | None = None
        self._started = False

    async def __aenter__(self) -> AgentHarness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._pipe_task is not None:
            self._pipe_task.cancel()
            await asyncio.gather(self._pipe_task, return_exceptions=True)
            self._pipe_task = None
        if self._started:
            await self.agent.teardown()
            self._started = False
            with contextlib.suppress(RedisError):
                await self.board.redis.hdel(self.board.keys_.agents, self.runtime.name)

    async def activate(
        self,
        key: str,
        *,
        version: int | None = None,
        value: Any = _UNSET,
        rule: str = "test",
        priority: int = 0,
        depth: int = 0,
        deadline: float | None = None,
        escalated_from: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Outcome:
        """Grant and run one activation of the agent's role on `key` (by default its
        current version and value). Returns the Outcome."""
        if not self._started:
            await self.runtime.start()
            self._started = True
        if self._pipe_task is None:
            self._pipe_task = asyncio.create_task(self.runtime._pipe.run())
        if version is None or value is _UNSET:
            entry = await self.board.get(key, version=version)
            version = version if version is not None else (entry.version if entry else 0)
            if value is _UNSET:
                value = entry.value if entry is not None else None
        role = self.runtime.role
        act = Activation(
            activation_id(role, key, version), role, key, version, rule=rule,
            priority=priority, depth=depth,
            deadline=deadline or type(self.agent).deadline or self.board.settings.claim_lease,
            escalated_from=escalated_from, context=context or {},
            granted_ms=int(time.time() * 1000),
        )  # fmt: skip
        raw = encode_value(key, value, self.board.settings.max_value_bytes)
        queue, record = grant_fields(act, raw, [f"granted by the test harness ({rule})"])
        keys = self.board.keys_
        try:
            await ensure_group(self.board.redis, self.runtime.queue, GROUP)
            await self.board.redis.hset(keys.activation(act.id), mapping=_pairs(record))
            entry_id = await self.board.redis.xadd(self.runtime.queue, _pairs(queue))
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        want = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        while True:
            got = await self.runtime._read(1, 0)
            if not got:
                raise RuntimeError("the harness's activation was taken by another consumer")
            if got[0].entry_id == want:
                return await self.runtime._run(got[0])


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


async def lose_entry(board: Board, key: str, *, client: Any = None) -> bool:
    """Delete `key`'s entry (every retained version) behind the board: no log event, no
    tombstone, the index untouched, as if the server lost the write. `client` is a Redis
    client to send it through (default the board's own: a fault injector passes one that
    bypasses a proxy). Returns whether there was an entry. Raises BoardUnavailableError."""
    redis: Any = board.redis if client is None else client
    try:
        return bool(await redis.delete(board.keys_.entry(key)))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
