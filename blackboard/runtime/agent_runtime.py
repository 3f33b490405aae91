"""The agent runtime: one process's loop that claims a role's activations and runs them
(runtime layer; imports board, scripts, activation, staging, agent).

It registers the agent, heartbeats, pulls activations from the role's queue as slots free
up (so the least busy process of a role pulls the next one), takes over claims whose lease
ran out (XAUTOCLAIM: the work of a crashed agent), renews its own claims while handlers run,
runs each handler under its deadline, and settles each activation in one script: the commit
of its staged writes fenced by the claim and acknowledging it, or `finish.lua` (done without
writes, failed, released). Script calls made at the same moment share one pipeline. On stop
it claims nothing more, lets in-flight work finish within the grace period, releases what
is left for another agent of the role and deregisters.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from blackboard import telemetry
from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.ops import Fence, Op
from blackboard.control.activation import GROUP, RELEASED, Activation
from blackboard.errors import (
    BlackboardError,
    BoardUnavailableError,
    ConflictError,
    CorruptEntryError,
    DeadlineExceededError,
    Fail,
    LeaseLostError,
    Retry,
)
from blackboard.runtime.activation_board import ActivationBoard, SyncActivationBoard
from blackboard.runtime.agent import Agent
from blackboard.settings import Settings
from blackboard.store import functions, transport
from blackboard.store.entry import Causation, Entry

__all__ = ["AgentRuntime", "Outcome", "ensure_group"]

log = logging.getLogger("blackboard.agent")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run of an activation ended: "ok", "failed" or "lost" (the claim went to
    another agent), with the error and the entries the activation committed. A failed run
    with `retryable` set was reported as transient: the controller runs the activation again
    while its role's retry policy allows (`blackboard.Retry`, other exceptions, deadlines);
    `blackboard.Fail` is never retried."""

    activation: Activation
    status: str
    error: str | None = None
    written: tuple[Entry, ...] = ()
    retryable: bool = False


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create a consumer group from the stream's start (and the stream) if missing."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class AgentRuntime:
    """Runs `agent` as consumer `name` of its role's queue on `board`."""

    def __init__(
        self,
        agent: Agent,
        board: Board,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.agent = agent
        # time the heartbeat and the takeover of expired claims (tests inject fakes)
        self.monotonic, self.sleep = monotonic, sleep
        self.role = type(agent).role
        self.name = name or f"{self.role}@{socket.gethostname()}:{os.getpid()}"
        self.settings = settings or board.settings
        patched = self.settings.model_copy(
            update={"idempotency_ttl": self.settings.activation_idempotency_ttl}
        )
        # an agent's commits are remembered in its role's idempotency scope, the only one its
        # role's ACL user may write (acl.py)
        self.board = Board(
            board.redis, board.name, self.name, patched, scope=self.role,
            durability=board.durability,
        )  # fmt: skip
        self.redis = board.redis
        self.concurrency = max(1, concurrency or type(agent).concurrency)
        self.clock = clock
        keys = self.board.keys_
        self.queue = keys.queue(self.role)
        self._outcomes_key = keys.outcomes
        self._agents_key = keys.agents
        self._pipe = transport.Batcher(self.redis)
        self._inflight: dict[str, tuple[Activation, asyncio.Task[Outcome]]] = {}
        self._slot = asyncio.Event()
        self._threads = ThreadPoolExecutor(max_workers=self.concurrency)
        self._autoclaim_at = 0.0
        self._autoclaim_cursor = "0-0"
        self.stats = {"done": 0, "failed": 0, "lost": 0, "released": 0}
        self.outcomes: list[Outcome] = []
        self.keep_outcomes = False
        self._started = clock()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Register and get the role's queue ready; runs the agent's setup."""
        try:
            await ensure_group(self.redis, self.queue, GROUP)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        await self._beat()
        await self.agent.setup(self.board)

    async def run(self, stop: asyncio.Event, *, idle_exit: float | None = None) -> None:
        """Claim and run activations until `stop` is set (or, with `idle_exit`, until nothing
        arrived for that many seconds and nothing is in flight), then shut down cleanly."""
        await self.start()
        log.info(
            "agent %s of role %s started on board %s (concurrency %d)",
            self.name, self.role, self.board.name, self.concurrency,
        )  # fmt: skip
        pipe = asyncio.create_task(self._pipe.run())
        beat = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._claim_loop(stop, idle_exit)
        finally:
            try:
                await self._shutdown()
            finally:
                beat.cancel()
                pipe.cancel()
                await asyncio.gather(beat, pipe, return_exceptions=True)
                self._threads.shutdown(wait=False, cancel_futures=True)

    async def _shutdown(self) -> None:
        grace = self.settings.shutdown_grace
        tasks = [t for _, t in self._inflight.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        left = [(a, t) for a, t in self._inflight.values() if not t.done()]
        for _, t in left:
            t.cancel()
        await asyncio.gather(*(t for _, t in left), return_exceptions=True)
        for act, _ in left:
            try:
                await self._finish(act, "release", "")
                self.stats["released"] += 1
            except BlackboardError as exc:
                log.warning("could not release %s: %s", act.id, exc)
        with contextlib.suppress(RedisError):
            await self.redis.hdel(self._agents_key, self.name)
        await self.agent.teardown()
        st = self.stats
        log.info(
            "agent %s stopped: %d done, %d failed, %d lost, %d released",
            self.name, st["done"], st["failed"], st["lost"], st["released"],
        )  # fmt: skip

    # -- claiming -------------------------------------------------------------------------

    async def _claim_loop(self, stop: asyncio.Event, idle_exit: float | None) -> None:
        lease_ms = int(self.settings.claim_lease * 1000)
        last_work = time.monotonic()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._inflight)
                if free <= 0:
                    self._slot.clear()
                    slot = asyncio.create_task(self._slot.wait())
                    await asyncio.wait([slot, stopping], return_when=asyncio.FIRST_COMPLETED)
                    slot.cancel()
                    continue
                try:
                    got = await self._autoclaim(free, lease_ms)
                    if not got:
                        got = await self._read(free, 0 if stop.is_set() else 100)
                except RedisError as exc:
                    log.warning("claiming failed: %s", exc)
                    await asyncio.sleep(0.2)
                    continue
                for act in got:
                    task = asyncio.create_task(self._run(act))
                    self._inflight[act.entry_id] = (act, task)
                    task.add_done_callback(self._done_callback(act.entry_id))
                if got or self._inflight:
                    last_work = time.monotonic()
                elif idle_exit is not None and time.monotonic() - last_work >= idle_exit:
                    return
        finally:
            stopping.cancel()

    def _done_callback(self, entry_id: str) -> Callable[[asyncio.Task[Outcome]], None]:
        def done(_task: asyncio.Task[Outcome]) -> None:
            self._inflight.pop(entry_id, None)
            self._slot.set()

        return done

    async def _read(self, count: int, block_ms: int) -> list[Activation]:
        reply = await transport.read_group(
            self.redis, GROUP, self.name, {self.queue: ">"}, count, block_ms or None
        )
        out = []
        for _stream, entries in reply:
            for entry_id, fields in entries:
                act = self._parse(entry_id, fields, 1)
                if act is not None:
                    out.append(act)
        return out

    async def _autoclaim(self, count: int, lease_ms: int) -> list[Activation]:
        now = self.monotonic()
        if now < self._autoclaim_at:
            return []
        reply: Any = await self.redis.xautoclaim(
            self.queue, GROUP, self.name, lease_ms, self._autoclaim_cursor, count=count
        )
        cursor, entries = reply[0], reply[1]
        self._autoclaim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self._autoclaim_cursor == "0-0":
            self._autoclaim_at = now + min(1.0, self.settings.claim_lease / 4)
        entries = [(i, f) for i, f in entries if f]
        if not entries:
            return []
        ids = [i.decode() if isinstance(i, bytes) else i for i, _ in entries]
        pending: Any = await self.redis.xpending_range(
            self.queue, GROUP, min=min(ids), max=max(ids), count=len(ids) * 4 + 10,
            consumername=self.name,
        )  # fmt: skip
        delivered = {
            (p["message_id"].decode() if isinstance(p["message_id"], bytes) else p["message_id"]):
            int(p["times_delivered"])
            for p in pending
        }  # fmt: skip
        out = []
        for entry_id, fields in entries:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            act = self._parse(eid, fields, delivered.get(eid, 2))
            if act is not None:
                log.info(
                    "took over %s (delivery %d)", act.id, act.delivery,
                    extra={"activation": act.id, "key": act.key, "attempt": act.attempt},
                )  # fmt: skip
                out.append(act)
        return out

    def _parse(self, entry_id: Any, fields: Any, attempt: int) -> Activation | None:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        try:
            return Activation.from_entry(self.role, eid, fields, attempt)
        except CorruptEntryError as exc:
            log.error("dropping a malformed activation: %s", exc)
            asyncio.get_running_loop().create_task(self._ack_corrupt(eid))
            return None

    async def _ack_corrupt(self, entry_id: str) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.xack(self.queue, GROUP, entry_id)

    # -- running one activation -----------------------------------------------------------

    async def _run(self, act: Activation) -> Outcome:
        with telemetry.activation(self.role, self.name, act) as run:
            try:
                outcome = await self._execute(act)
            except (BlackboardError, RedisError) as exc:
                # the claim stays pending: this agent or another takes it over after the lease
                log.warning("activation %s could not be settled: %s", act.id, exc)
                outcome = Outcome(act, "lost", str(exc))
            run.ended(outcome.status, outcome.retryable, outcome.error)
        counter = "done" if outcome.status == "ok" else outcome.status
        self.stats[counter] = self.stats.get(counter, 0) + 1
        if self.keep_outcomes:
            self.outcomes.append(outcome)
        return outcome

    async def _execute(self, act: Activation) -> Outcome:
        if act.delivery > self.settings.max_deliveries:
            err = f"gave up after {act.delivery - 1} deliveries (poison?)"
            return await self._settle(act, "failed", err, "fail")
        if act.attempt > 1:
            log.info("running %s again: attempt %d", act.id, act.attempt)
        if not act.value_carried:  # re-queued from its record: read the granted version
            entry = await self.board.get(act.key, version=act.version)
            act = dataclasses.replace(act, value=entry.value if entry else None, value_carried=True)
        # the commit needs the claim still ours and renewed within the claim lease; a
        # proposal (propose.lua) checks that it is still ours
        lease_ms = int(self.settings.claim_lease * 1000)
        cause = Causation(act.id, act.depth, act.trace or None)
        fence = Fence("lease", self.queue, f"{act.entry_id}@{lease_ms}", self.name, GROUP)
        view = self.board.bind(causation=cause, fence=fence)
        limit_s = act.deadline
        own = type(self.agent).deadline
        if own is not None and own < limit_s:
            limit_s = own
        deadline = time.monotonic() + limit_s
        for _ in range(self.settings.conflict_retries + 1):
            staging = ActivationBoard(view)
            limit = asyncio.timeout(max(0.0, deadline - time.monotonic()))
            try:
                async with limit:
                    await self._call(act, staging)
            except TimeoutError as exc:
                staging.close()
                expired = limit.expired()
                error = DeadlineExceededError(act.id, limit_s) if expired else exc
                kind = "deadline" if expired else "error"
                log.info("activation %s attempt %d failed: %s", act.id, act.attempt, error)
                return await self._settle(act, "retry", f"{type(error).__name__}: {error}", kind)
            except BoardUnavailableError:
                staging.close()
                raise  # transient: the claim stays pending and is taken over after the lease
            except Fail as exc:
                staging.close()
                log.info("activation %s failed for good: %s", act.id, exc.reason)
                return await self._settle(act, "failed", f"Fail: {exc.reason}", "fail")
            except Retry as exc:
                staging.close()
                log.info("activation %s attempt %d asks for a retry: %s", act.id, act.attempt, exc)
                return await self._settle(act, "retry", f"Retry: {exc.reason}", "retry", exc.after)
            except Exception as exc:
                staging.close()
                log.info("activation %s attempt %d failed: %r", act.id, act.attempt, exc)
                return await self._settle(act, "retry", f"{type(exc).__name__}: {exc}", "error")
            ops = staging.close()
            try:
                if staging.proposals:  # the proposal view only when there are proposals
                    proposer = self.board.bind(
                        causation=cause,
                        fence=Fence("claim", self.queue, act.entry_id, self.name, GROUP),
                    )
                for i, p in enumerate(staging.proposals, 1):
                    await proposer.propose(
                        p.key, p.value, p.confidence, idempotency_key=f"{act.id}:p{i}"
                    )
                if not ops:
                    return await self._settle(act, "ok", "")
                written = await self._commit(view, act, ops)
                return Outcome(act, "ok", None, tuple(written))
            except ConflictError as exc:
                log.info("activation %s met a conflict, running again: %s", act.id, exc)
                continue
            except LeaseLostError as exc:
                log.warning("activation %s: %s", act.id, exc)
                return Outcome(act, "lost", str(exc))
            except BoardUnavailableError:
                raise  # a dropped connection is not a failed activation: see _run
            except BlackboardError as exc:
                return await self._settle(act, "failed", f"{type(exc).__name__}: {exc}", "fail")
        return await self._settle(act, "retry", "conflicts on every run", "error")

    async def _call(self, act: Activation, staging: ActivationBoard) -> None:
        with telemetry.handler(self.role):
            if self.agent.is_async:
                await self.agent.handle(act, staging)
                return
            loop = asyncio.get_running_loop()
            sync_board = SyncActivationBoard(staging, loop)
            # the thread runs in a copy of this task's context: its spans and log lines
            # belong to the activation
            run = contextvars.copy_context().run
            await loop.run_in_executor(self._threads, run, self.agent.handle, act, sync_board)

    async def _commit(self, view: Board, act: Activation, ops: list[Op]) -> list[Entry]:
        prepared = view.prepare_commit(ops, act.id)
        keys, args = prepared.call.keys, prepared.call.args
        res: Any
        try:
            if view.durability.is_local:
                res, acks = await self._pipe.call(functions.COMMIT, keys, args), None
            else:  # the wait must follow the commit on its connection: not batched
                res, acks = await view.send_write(functions.COMMIT, keys, args)
        except RedisError as exc:
            res, acks = exc, None  # commit_result raises it as the board's error
        entries = await view.commit_result(prepared, res)
        view.check_acks(acks, entries)  # DurabilityError: the claim's fate follows the write
        return entries

    async def _settle(
        self, act: Activation, status: str, error: str, kind: str = "",
        after: float | None = None,
    ) -> Outcome:  # fmt: skip
        """Settle the claim as `status` ("ok", "failed", "retry": failed, may run again
        under the role's retry policy, which the controller applies)."""
        try:
            await self._finish(act, status, error, kind, after)
        except LeaseLostError as exc:
            return Outcome(act, "lost", str(exc))
        if status == "retry":
            return Outcome(act, "failed", error or None, retryable=True)
        return Outcome(act, status, error or None)

    async def _finish(
        self, act: Activation, outcome: str, error: str, kind: str = "",
        after: float | None = None,
    ) -> None:  # fmt: skip
        keys = [self.queue, self._outcomes_key]
        args = [
            act.entry_id, GROUP, self.name, outcome, act.id, error[:1000],
            self.settings.outcomes_cap, RELEASED, 10**9, kind,
            "" if after is None else repr(float(after)), act.attempt, act.key,
        ]  # fmt: skip
        try:
            if self.board.durability.is_local:
                res, acks = await self._pipe.call(functions.FINISH, keys, args), None
            else:
                res, acks = await self.board.send_write(functions.FINISH, keys, args)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if res[0] == b"fenced":
            raise LeaseLostError(self.queue, res[1].decode())
        if acks is not None:
            self.board.durability.check(acks)

    # -- presence and claim renewal -------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = min(self.settings.agent_heartbeat, self.settings.claim_lease / 3)
        while True:
            await self.sleep(interval)
            try:
                await self._renew()
                await self._beat()
            except (RedisError, BlackboardError) as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _renew(self) -> None:
        ids = list(self._inflight)
        if not ids:
            return
        lost: Any = await functions.RENEW_CLAIMS(self.redis, [self.queue], [GROUP, self.name, *ids])
        for raw in lost or []:
            entry_id = raw.decode() if isinstance(raw, bytes) else raw
            item = self._inflight.get(entry_id)
            if item is not None:
                act = item[0]
                log.warning(
                    "claim on %s was taken over; stopping its handler", act.id,
                    extra={"activation": act.id, "key": act.key, "attempt": act.attempt},
                )  # fmt: skip
                item[1].cancel()

    async def _beat(self) -> None:
        record = {
            "role": self.role,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "concurrency": self.concurrency,
            "started_ms": int(self._started * 1000),
            "beat_ms": int(self.clock() * 1000),
            "inflight": len(self._inflight),
            **self.stats,
        }
        try:
            await self.redis.hset(
                self._agents_key, self.name, msgpack.packb(record, use_bin_type=True)
            )
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
