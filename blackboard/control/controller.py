"""The controller: reads the change log and grants activations under the policy (controller
layer; imports board, lease, scripts, policy, rules, agenda, admission, grant_batch).

Several controllers may run; the one holding the lease leads. The leader reads the change
log and the agents' outcome stream through the consumer group ``controller``, hands each
change to `Admission` (rules, escalation, consensus, loop guard, dedupe), and lets the
agenda pick what to grant. Every batch of decisions (grants, refusals, finished
activations, breaker changes) and the acknowledgement of the events it settles are one
fenced script (`GrantBatch`): a crash leaves the events pending for the next leader, which
re-reads them; a deposed leader's writes are refused by its stale epoch. An event stays
pending while a candidate it raised waits on the agenda, so the pending list is the
agenda's durable copy, and deterministic activation ids make re-granting after a failover
a no-op. Over 400 lines: the leader's loop (lease, replay, read, sweep, settle, defer) is
one piece of state and reads best in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from redis.exceptions import RedisError, ResponseError

from blackboard import telemetry
from blackboard.board.client import Board, backoff_delay, wrap_redis_error
from blackboard.board.events import decode_value, parse_log_event
from blackboard.board.watch import check_args
from blackboard.control.admission import Admission, candidate
from blackboard.control.agenda import Agenda, Candidate, OpenActivation
from blackboard.control.decisions import decision
from blackboard.control.grant_batch import GrantBatch
from blackboard.control.policy import Policy, roles_of
from blackboard.control.policy_board import POLICY_KEY, last_valid_policy, load_policy, policy_of
from blackboard.control.role_steering import ROLE_COMMANDS, RoleSteering
from blackboard.control.rules import RuleIndex, compile_rules
from blackboard.errors import BlackboardError, CorruptEntryError, StaleLeaseError
from blackboard.settings import Settings
from blackboard.store import codec, functions, transport
from blackboard.store.entry import Change
from blackboard.store.lease import Lease

__all__ = ["GROUP", "Controller"]

log = logging.getLogger("blackboard.controller")

GROUP = "controller"
CONSUMER = "leader"
_DEFER = 0.005  # seconds a batch of finished activations may wait for company


def _s(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _stream_id(raw: Any) -> tuple[int, int]:
    ms, _, seq = _s(raw).partition("-")
    return int(ms), int(seq or 0)


class _Deposed(Exception):
    pass


class Controller:
    """One controller process on `board`; `run(stop)` contends for the lease and leads."""

    def __init__(
        self,
        board: Board,
        *,
        name: str | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.board = board
        self.monotonic, self.sleep = monotonic, sleep  # time the lease renewal (tests inject)
        self.redis = board.redis
        self.keys = board.keys_
        self.name = name or f"controller@{socket.gethostname()}:{os.getpid()}"
        self.settings = settings or board.settings
        self.clock = clock
        self.lease = Lease(
            self.redis,
            self.keys.controller_lease,
            self.keys.controller_epoch,
            self.name,
            self.settings.controller_lease,
        )
        self.policy = Policy()
        self._rules = RuleIndex(compile_rules(self.policy))
        self.agenda = Agenda(self.policy)
        self.admission = Admission(board, self.policy, self.agenda)
        self.leading = asyncio.Event()
        self.processed = 0
        self.forged = 0  # log and outcome events dropped because no record backs them
        self.poisoned = 0  # changes refused because admitting them raised
        self._events = 0
        self._waiting_events: dict[str, int] = {}
        self._last_rev = 0
        self._deposed = False
        self._sweep_at = 0.0
        self._status_at = 0.0
        self._parents: dict[str, OpenActivation] = {}
        self._queued: dict[str, tuple[str, tuple[int, int]]] = {}
        self._last_queued: dict[str, tuple[int, int]] = {}
        self._trimmed: dict[str, tuple[int, int]] = {}
        self._deferred: GrantBatch | None = None
        self._deferred_at = 0.0
        self._retries: dict[str, float] = {}  # open activations waiting to run again: due
        self._cmd_cursor = "0-0"  # the last operator command read
        self.steering = RoleSteering(board, self.keys.controller_lease, self.name)
        self._rng = random.Random()

    # -- leadership -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, idle_exit: float | None = None) -> None:
        """Contend for the lease until `stop` is set; lead while holding it. With
        `idle_exit`, a leader returns once it has read no event for that many seconds
        (scripts and tests; what still waits stays pending for the next leader)."""
        poll = max(0.05, self.settings.controller_lease / 5)
        try:
            while not stop.is_set():
                try:
                    if await self.lease.acquire():
                        log.info("%s leads with epoch %d", self.name, self.lease.epoch)
                        if await self._lead(stop, idle_exit):
                            return
                        continue
                except BlackboardError as exc:
                    log.warning("controller: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)
        finally:
            self.leading.clear()
            await self.lease.release()

    async def _lead(self, stop: asyncio.Event, idle_exit: float | None = None) -> bool:
        """Lead until stopped or deposed; True when it stopped because it was idle."""
        self._deposed = False
        await self._start_leading()
        renew = asyncio.create_task(self._renew_loop())
        self.leading.set()
        try:
            await self._replay()
            seen, busy_at = self._events, time.monotonic()
            while not stop.is_set() and not self._deposed:
                await self._step()
                if idle_exit is None:
                    continue
                if self._events != seen:
                    seen, busy_at = self._events, time.monotonic()
                elif time.monotonic() - busy_at >= idle_exit:
                    await self._flush()
                    return True
            await self._flush()
        except _Deposed:
            log.warning("%s lost the lease; following again", self.name)
        finally:
            self.leading.clear()
            renew.cancel()
            await asyncio.gather(renew, return_exceptions=True)
        return False

    async def _renew_loop(self) -> None:
        ttl = self.settings.controller_lease
        renewed = self.monotonic()
        while True:
            await self.sleep(ttl / 3)
            try:
                if not await self.lease.renew():
                    self._deposed = True
                    return
                renewed = self.monotonic()
            except BlackboardError as exc:
                log.warning("lease renewal failed: %s", exc)
                if self.monotonic() - renewed > ttl:
                    # the lease has run out by now: stop acting as the leader
                    self._deposed = True
                    return

    async def _start_leading(self) -> None:
        """Load the policy, the open activations and breakers an earlier leader left."""
        try:
            loaded = await load_policy(self.board)
        except BlackboardError as exc:
            loaded = await last_valid_policy(self.board)
            kept = f"running v{loaded[1].version}" if loaded else "running none"
            log.error("the newest policy on the board is invalid, %s: %s", kept, exc)
        if loaded is None:
            log.warning(
                "no policy in force on %s: nothing is granted until one is applied", self.board.name
            )
        self.policy = loaded[0] if loaded else Policy()
        try:
            self._rules = RuleIndex(compile_rules(self.policy))
        except Exception as exc:  # stored before validation caught it: run none, stay up
            log.error("the policy on the board cannot run, running none: %r", exc)
            self.policy = Policy()
            self._rules = RuleIndex(compile_rules(self.policy))
        self.agenda = Agenda(self.policy)
        self.admission = Admission(self.board, self.policy, self.agenda)
        self._waiting_events.clear()
        self._deferred, self._deferred_at = None, 0.0
        try:
            for stream in (self.keys.log, self.keys.outcomes):
                try:
                    await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
            opened: Any = await self.redis.hgetall(self.keys.open_activations)
            state: Any = await self.redis.hgetall(self.keys.controller_state)
            scheduled: Any = await self.redis.zrange(
                self.keys.retry_schedule, 0, -1, withscores=True
            )
            groups: Any = await self.redis.xinfo_groups(self.keys.log)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        self._queued.clear()
        self._last_queued.clear()
        self._trimmed.clear()
        for act_id, blob in opened.items():
            role, resource, depth, priority, granted_at = msgpack.unpackb(blob, raw=False)
            self.agenda.restore(
                _s(act_id), OpenActivation(role, resource, depth, priority, granted_at)
            )
        if opened:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for act_id in opened:
                        pipe.hget(self.keys.activation(_s(act_id)), "q")
                    entries = await pipe.execute()
            except RedisError as exc:
                raise wrap_redis_error(exc) from exc
            for act_id, entry in zip(opened, entries, strict=True):
                if entry:
                    role = self.agenda.open[_s(act_id)].role
                    self._queued[_s(act_id)] = (role, _stream_id(entry))
        self._retries = {
            _s(act_id): score / 1000
            for act_id, score in scheduled
            if _s(act_id) in self.agenda.open
        }
        self._cmd_cursor = "0-0"
        steered: dict[str, Any] = {}
        for field, blob in state.items():
            name = _s(field)
            if name.startswith("breaker:"):
                self.agenda.breaker(name[8:]).load(msgpack.unpackb(blob, raw=False))
            elif name.startswith("steer:"):
                steered[name[6:]] = msgpack.unpackb(blob, raw=False)
            elif name == "commands":
                self._cmd_cursor = str(msgpack.unpackb(blob, raw=False))
        self.steering.load(steered, self.agenda)
        for g in groups:
            if _s(g["name"]) == GROUP:
                self._last_rev = int(_s(g["last-delivered-id"]).split("-")[0])

    # -- reading --------------------------------------------------------------------------

    async def _read(self, log_id: str, outcome_id: str) -> tuple[list[Any], list[Any]]:
        args = [self.lease.token, GROUP, CONSUMER, self.settings.controller_batch]
        try:
            res: Any = await functions.CONTROLLER_READ(
                self.redis,
                [self.keys.controller_lease, self.keys.log, self.keys.outcomes],
                [*args, log_id, outcome_id],
            )
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if res[0] == b"fenced":
            self._deposed = True
            raise _Deposed()
        logs: list[Any] = []
        outcomes: list[Any] = []
        for stream, entries in res[1] or []:
            target = logs if _s(stream) == self.keys.log else outcomes
            for entry_id, flat in entries:
                fields = None
                if flat:
                    fields = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
                target.append((_s(entry_id), fields))
        return logs, outcomes

    async def _replay(self) -> None:
        """Settle the events an earlier leader read and did not acknowledge."""
        ids = ["0-0", "0-0"]
        while True:
            logs, outcomes = await self._read(ids[0], ids[1])
            if not logs and not outcomes:
                return
            if logs:
                ids[0] = logs[-1][0]
            if outcomes:
                ids[1] = outcomes[-1][0]
            await self._process(logs, outcomes, replay=True)

    async def _step(self) -> None:
        """Settle what is due, then block for new log and outcome events and settle them.

        The blocking read is a plain XREADGROUP: one round trip from a change to the
        controller. It is not fenced, so a deposed leader that wakes up late may still
        move a few events into the group's pending list before its next (fenced) write
        fails; `_sweep` finds such events and settles them."""
        if self._deposed:
            raise _Deposed()
        if time.monotonic() >= self._sweep_at:
            await self._sweep()
            self._sweep_at = time.monotonic() + self.settings.controller_lease / 3
        now = self.clock()
        due = self.agenda.next_due(now)
        retry_at = self._next_retry()
        if retry_at is not None and (due is None or retry_at < due):
            due = retry_at
        if (due is not None and due <= now + 0.001) or now - self._status_at >= 1.0:
            await self._process([], [])
        timeout = 0.2
        if due is not None:
            timeout = min(timeout, max(0.001, due - self.clock()))
        if self._deferred is not None:
            left = self._deferred_at + _DEFER - self.clock()
            if left <= 0:
                await self._flush()
            else:
                timeout = min(timeout, left)
        streams = {self.keys.log: ">", self.keys.outcomes: ">"}
        try:
            reply = await transport.read_group(
                self.redis,
                GROUP,
                CONSUMER,
                streams,
                self.settings.controller_batch,
                max(1, int(timeout * 1000)),
            )
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if not reply:
            return
        if self._deposed:
            raise _Deposed()
        logs: list[Any] = []
        outcomes: list[Any] = []
        for stream, entries in reply:
            target = logs if _s(stream) == self.keys.log else outcomes
            target.extend((_s(entry_id), fields) for entry_id, fields in entries)
        await self._process(logs, outcomes)

    async def _sweep(self) -> None:
        """Settle pending events this leader never saw (read by a deposed leader)."""
        for stream, known in ((self.keys.log, self._waiting_events), (self.keys.outcomes, {})):
            try:
                pending: Any = await self.redis.xpending_range(
                    stream, GROUP, min="-", max="+", count=1000, consumername=CONSUMER
                )
                lost = [
                    _s(p["message_id"])
                    for p in pending
                    if _s(p["message_id"]) not in known and int(p["time_since_delivered"]) > 500
                ]
                found: list[Any] = []
                for entry_id in lost:
                    found += await self.redis.xrange(stream, min=entry_id, max=entry_id) or []
            except RedisError as exc:
                raise wrap_redis_error(exc) from exc
            entries = [(_s(i), f) for i, f in found]
            entries += [(i, None) for i in lost if i not in {e[0] for e in entries}]
            if entries:
                log.warning("settling %d events read by a deposed leader", len(entries))
                if stream == self.keys.log:
                    await self._process(entries, [], replay=True)
                else:
                    await self._process([], entries, replay=True)

    # -- deciding -------------------------------------------------------------------------

    async def _verify(self, logs: list[Any], outcomes: list[Any]) -> tuple[set[str], set[str]]:
        """The ids of the log and outcome events no record backs (forged: a role user may
        XADD to both streams), checked in the server in one call (lua/log_check.lua)."""
        args = check_args(logs)
        for entry_id, fields in outcomes:
            if fields is not None:
                args += [entry_id, fields.get(b"a", b"")]
        if len(args) == 1:
            return set(), set()
        try:
            res: Any = await functions.LOG_CHECK(self.redis, [self.keys.log], args)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        return {_s(i) for i in res[0]}, {_s(i) for i in res[1]}

    async def _process(self, logs: list[Any], outcomes: list[Any], replay: bool = False) -> None:
        now = self.clock()
        forged_logs, forged_outcomes = await self._verify(logs, outcomes)
        if forged_logs or forged_outcomes:
            self.forged += len(forged_logs) + len(forged_outcomes)
            log.warning(
                "dropped %d log and %d outcome events that no record backs (forged?): %s",
                len(forged_logs), len(forged_outcomes),
                ", ".join(sorted(forged_logs | forged_outcomes)[:5]),
            )  # fmt: skip
            logs = [(i, None) if i in forged_logs else (i, f) for i, f in logs]
            outcomes = [(i, None) if i in forged_outcomes else (i, f) for i, f in outcomes]
        batch, self._deferred = self._deferred or GrantBatch(self.keys), None
        for entry_id, fields in outcomes:
            batch.outcome_acks.append(entry_id)
            if fields is not None:
                status = fields.get(b"o")
                if status in (b"retry", b"failed"):
                    self._failed_run(batch, fields, now)
                    continue
                self._finish(
                    batch, _s(fields.get(b"a", b"")), status == b"ok", _s(fields.get(b"e", b"")),
                    _s(fields.get(b"w", b"")), now,
                )  # fmt: skip
        self._due_retries(batch, now)
        if now - self._status_at >= 1.0:
            await self._commands(batch, now)
        for entry_id, fields in logs:
            if fields is None:  # deleted from the stream, or forged
                batch.log_acks.append(entry_id)
                self._last_rev = max(self._last_rev, int(entry_id.split("-", 1)[0]))
                continue
            await self._event(batch, entry_id, fields, now, replay)
        granted = self.agenda.dispatch(now)
        for cand in granted:
            self._grant(batch, cand, now)
        for cand in self.agenda.newly_waiting():
            batch.record("waiting", cand, [*cand.reasons, f"waiting: {cand.waiting}"], now)
        if now - self._status_at >= 1.0:
            self._status_at = now
            status = self.status()
            batch.state("status", status)
            telemetry.controller_status(self.board.name, status)
            self._trim(batch)
        if batch.only_settles() and len(batch.ops) < 256 and not replay:
            # finished activations only: the agenda knows already; persisting them can wait
            # a moment and share the next grant's script call (until then the events stay
            # pending, so a crash loses nothing)
            self._deferred = batch
            self._deferred_at = self._deferred_at if self._deferred_at else now
        elif batch:
            self._deferred_at = 0.0
            await self._write(batch)
        self.processed += len(logs)
        self._events += len(logs) + len(outcomes)

    async def _event(
        self, batch: GrantBatch, entry_id: str, fields: dict[bytes, bytes], now: float, replay: bool
    ) -> None:
        """One log event: finish the activation that wrote it, admit what its changes raise.
        Values are decoded only for keys some rule (or an escalation) looks at."""
        revision = int(entry_id.split("-", 1)[0])
        if not replay and self._last_rev and revision > self._last_rev + 1:
            log.error(
                "changes %d..%d were trimmed from the log before the controller read them",
                self._last_rev + 1, revision - 1,
            )  # fmt: skip
        self._last_rev = max(self._last_rev, revision)
        try:
            event = parse_log_event(entry_id, fields)
        except CorruptEntryError as exc:
            log.error("skipping malformed log event %s: %s", entry_id, exc)
            batch.log_acks.append(entry_id)
            return
        parent_id = event.activation
        parent = None
        if parent_id:
            parent = self.agenda.open.get(parent_id)
            # a proposal is sent before its activation settles (finish.lua reports that)
            if parent is not None and event.ops and event.ops[0].kind != "propose":
                self._finish(batch, parent_id, True, "", event.writer, now)
            else:
                parent = await self._lookup(parent_id)
        escalating = parent is not None and self.admission.escalates(parent.role)
        waiting = 0
        schemas = self.board.schemas
        for i, op in enumerate(event.ops, 1):
            key, raw = op.key, op.data
            matches = self._rules.match(key)
            if not matches and not escalating and key != POLICY_KEY:
                continue
            try:
                change = event.change(op, decode_value(key, op.kind, raw, schemas))
            except (ValueError, BlackboardError) as exc:
                log.error("skipping operation %d of log event %s: %r", i, entry_id, exc)
                continue
            if key == POLICY_KEY:
                self._reload(batch, change, now)
                continue
            try:
                waiting += await self.admission.admit(
                    batch, entry_id, change, raw, matches, parent_id, parent, now
                )
            except (BlackboardError, RedisError):
                raise  # the board is unreachable or fenced: not this event's fault
            except Exception as exc:
                # a poison event (or a rule that cannot evaluate it) is refused on the record
                # and acknowledged, never retried forever: the controller keeps running
                log.exception("refusing change %s of %s: %r", change.revision, key, exc)
                why = [f"poison: the controller could not admit this change: {exc!r}"]
                batch.refuse(change, "?", "?", why, now)
                self.poisoned += 1
        if waiting:
            self._waiting_events[entry_id] = waiting
        else:
            batch.log_acks.append(entry_id)

    async def _lookup(self, act_id: str) -> OpenActivation | None:
        """Role, depth and priority of a finished activation (for depth and escalation)."""
        cached = self._parents.get(act_id)
        if cached is not None:
            return cached
        try:
            raw: Any = await self.redis.hmget(self.keys.activation(act_id), "role", "d", "p", "k")
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if raw[0] is None:
            return None
        act = OpenActivation(_s(raw[0]), _s(raw[3] or b""), int(raw[1] or 0), int(raw[2] or 0), 0)
        if len(self._parents) > 10_000:
            self._parents.clear()
        self._parents[act_id] = act
        return act

    def _reload(self, batch: GrantBatch, change: Change, now: float) -> None:
        try:
            policy = policy_of(change.value)
            compiled = compile_rules(policy)
        except Exception as exc:  # a policy the controller cannot run: never a crash loop
            log.error("policy v%d refused, the running policy stays: %s", change.version, exc)
            why = [f"invalid policy, running one stays: {exc}"]
            batch.refuse(change, "", "policy", why, now)
            return
        self.policy = policy
        self._rules = RuleIndex(compiled)
        self.agenda.set_policy(policy)
        self.admission.policy = policy
        log.info("policy v%d (%s) in force", change.version, policy.name or "unnamed")

    # -- writing --------------------------------------------------------------------------

    def _grant(self, batch: GrantBatch, cand: Candidate, now: float) -> None:
        batch.grant(cand, now)
        if cand.event_id:
            left = self._waiting_events.get(cand.event_id, 0) - 1
            if left <= 0:
                self._waiting_events.pop(cand.event_id, None)
                batch.log_acks.append(cand.event_id)
            else:
                self._waiting_events[cand.event_id] = left

    def _finish(
        self, batch: GrantBatch, act_id: str, ok: bool, error: str, agent: str, now: float,
        attempt: int | None = None,
    ) -> None:  # fmt: skip
        act, changed = self.agenda.finished(act_id, ok, now)
        self._queued.pop(act_id, None)
        self._retries.pop(act_id, None)
        if act is None:
            return
        batch.finish(act_id, ok, error, agent, now, attempt)
        if changed:
            breaker = self.agenda.breaker(act.role)
            log.warning("breaker of %s is %s", act.role, breaker.state.value)
            batch.state(f"breaker:{act.role}", breaker.dump())

    # -- retries and dead letters -----------------------------------------------------------

    def _failed_run(self, batch: GrantBatch, fields: dict[bytes, bytes], now: float) -> None:
        """A run of an activation failed: schedule the next attempt under its role's retry
        policy (durable: the schedule is on the board), or park it as a dead letter."""
        act_id = _s(fields.get(b"a", b""))
        open_ = self.agenda.open.get(act_id)
        error, agent = _s(fields.get(b"e", b"")), _s(fields.get(b"w", b""))
        if open_ is None:
            return  # settled already (a replayed or late report)
        kind = _s(fields.get(b"k", b"")) or ("error" if fields.get(b"o") == b"retry" else "fail")
        try:
            attempt = int(fields.get(b"n", b"1"))
            after = float(fields.get(b"r") or 0.0)
        except ValueError:
            attempt, after = 1, 0.0
        key = _s(fields.get(b"K", b""))
        retry = self.policy.limits(open_.role).retry
        if not retry.retries(kind) or attempt >= retry.attempts:
            why = (
                f"failed for good ({kind})"
                if not retry.retries(kind)
                else f"failed after {attempt} of {retry.attempts} attempts"
            )
            log.warning("activation %s %s: %s", act_id, why, error)
            self._finish(batch, act_id, False, f"{why}: {error}", agent, now, attempt)
            batch.dead_letter(act_id, now)
            if key:
                batch.decide(key, self._decision("failed", act_id, open_, key, [why, error], now))
            return
        delay = max(after, backoff_delay(attempt, retry.base, retry.cap, self._rng))
        due = now + delay
        if self.agenda.attempt_failed(act_id, now):
            breaker = self.agenda.breaker(open_.role)
            log.warning("breaker of %s is %s", open_.role, breaker.state.value)
            batch.state(f"breaker:{open_.role}", breaker.dump())
        self._retries[act_id] = due
        reasons = [
            f"attempt {attempt} of {retry.attempts} failed ({kind}): {error}",
            f"attempt {attempt + 1} in {delay:.2f}s",
        ]
        log.info("activation %s: %s; %s", act_id, *reasons)
        blob = self._decision("retrying", act_id, open_, key, reasons, now)
        batch.retry_later(act_id, key or "?", int(due * 1000), attempt + 1, error, blob)

    def _decision(
        self, what: str, act_id: str, act: OpenActivation, key: str, reasons: list[str],
        now: float, command: str = "",
    ) -> bytes:  # fmt: skip
        return decision(
            what, key=key, version=0, revision=0, role=act.role, rule="", reasons=reasons,
            activation=act_id, time_ms=int(now * 1000), command=command,
        )  # fmt: skip

    def _due_retries(self, batch: GrantBatch, now: float) -> None:
        """Queue the activations whose next attempt is due, when their guards allow."""
        for act_id, due in list(self._retries.items()):
            if due > now:
                continue
            if act_id not in self.agenda.open:
                self._retries.pop(act_id, None)
                continue
            later = self.agenda.retry_gate(act_id, now)
            if later is not None:
                self._retries[act_id] = max(later, now + 0.01)
                continue
            del self._retries[act_id]
            batch.requeue(act_id, self.agenda.open[act_id].role)

    def _next_retry(self) -> float | None:
        return min(self._retries.values()) if self._retries else None

    async def _commands(self, batch: GrantBatch, now: float) -> None:
        """Operators' commands (`blackboard activation retry|cancel`, `blackboard role ...`,
        `blackboard breaker ...`): a stream only admins and humans may write; read from where
        this leader's predecessor stopped."""
        try:
            raw: Any = await self.redis.xrange(
                self.keys.controller_commands, f"({self._cmd_cursor}", "+", count=100
            )
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        for entry_id, fields in raw:
            self._cmd_cursor = _s(entry_id)
            cmd = {"id": _s(entry_id), **{_s(k): _s(v) for k, v in fields.items()}}
            await self._command(batch, cmd, now)
        if raw:
            batch.state("commands", self._cmd_cursor)
        await self.steering.after_commands(batch, self.agenda, self._retries, self.lease.token, now)

    async def _command(self, batch: GrantBatch, cmd: dict[str, str], now: float) -> None:
        if cmd.get("c") in ROLE_COMMANDS:  # role_steering.py: pause, drain, resume, breakers
            token, retries = self.lease.token, self._retries
            await self.steering.command(batch, cmd, self.agenda, self.policy, retries, token, now)
            return
        what, act_id = cmd.get("c", ""), cmd.get("a", "")
        actor, reason = cmd.get("w", "?"), cmd.get("why", "")
        try:
            record: Any = await self.redis.hgetall(self.keys.activation(act_id))
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        rec = {_s(k): v.decode(errors="replace") for k, v in record.items()}
        key, role = rec.get("k", ""), rec.get("role", "")
        state = rec.get("s", "")
        said = f"{what} by {actor}" + (f": {reason}" if reason else "")
        open_ = self.agenda.open.get(act_id)
        result = "refused: no such activation"
        if not rec:
            pass
        elif what == "retry" and act_id in self._retries:
            self._retries[act_id] = now
            result = "next attempt now"
        elif what == "retry" and state == "failed" and open_ is None:
            try:
                depth, priority = int(rec.get("d", 0)), int(rec.get("p", 0))
                attempt = int(rec.get("n", 1)) + 1
            except ValueError:
                depth, priority, attempt = 0, 0, 2
            reopened = OpenActivation(role, rec.get("res", key), depth, priority, now)
            opened: list[Any] = [role, reopened.resource, depth, priority, now]
            self.agenda.restore(act_id, reopened)
            batch.reopen(act_id, opened)
            batch.forget(act_id)
            batch.requeue(act_id, role, attempt)
            result = f"dead letter queued again as attempt {attempt}"
        elif what == "cancel" and (act_id in self._retries or (state == "failed" and not open_)):
            self._retries.pop(act_id, None)
            if open_ is not None:
                self.agenda.revert(act_id)
            batch.finish(act_id, False, said, actor, now, state="cancelled")
            batch.forget(act_id)
            result = "cancelled"
        elif what == "reject":
            result = await self._send_back(cmd, rec, said, now)
        elif what in ("retry", "cancel"):
            result = f"refused: the activation is {state or 'unknown'}"
            if what == "cancel" and state == "granted":
                result += " (running or waiting for an agent; it ends by itself)"
        else:
            result = f"refused: unknown command {what!r}"
        log.info("activation %s: %s -> %s", act_id, said, result)
        if key:
            fake = OpenActivation(role, key, 0, 0, now)
            why, cmd_id = [said, result], cmd.get("id", "")
            batch.decide(key, self._decision("operator", act_id, fake, key, why, now, cmd_id))

    async def _send_back(
        self, cmd: dict[str, str], rec: dict[str, str], said: str, now: float
    ) -> str:
        """A human rejected an escalated activation: with `to`, that role gets an activation on
        the rejected version, with who rejected it and why in its context."""
        to = cmd.get("to", "")
        if not to:
            return "rejected"
        if to not in roles_of(self.policy):
            return f"rejected; not sent back: the policy has no role {to!r}"
        key = rec.get("k", "")
        try:
            version, revision = int(rec.get("v", 0)), int(rec.get("r", 0))
            depth, priority = int(rec.get("d", 0)), int(rec.get("p", 0))
            entry = await self.board.get(key, version=version)
        except (ValueError, BlackboardError) as exc:
            return f"rejected; not sent back: version unreadable ({exc})"
        value = b""
        if entry is not None:
            value = codec.encode_value(key, entry.value, self.settings.max_value_bytes)
        context = {"rejected_by": cmd.get("w", "?"), "reason": cmd.get("why", "")}
        cand = candidate(
            to, key, version, revision, "rejected", priority, depth + 1, rec.get("res", key),
            self.policy.limits(to).deadline or self.policy.deadline, now, "", value, [said],
            rec.get("role", ""), context,
        )  # fmt: skip
        if self.agenda.known(cand.activation_id):
            return f"rejected; not sent back: {to} has had version {version} of {key} already"
        self.agenda.add(cand)
        return f"rejected and sent back to {to}"

    async def _write(self, batch: GrantBatch) -> None:
        st = self.settings
        ttls = (st.decisions_kept, st.decisions_ttl * 1000, st.activation_ttl * 1000)
        try:
            queued_ids = await batch.write(
                self.redis, self.lease.token, GROUP, ttls, self.board.durability
            )
        except StaleLeaseError:
            self._deposed = True
            raise _Deposed() from None
        for act_id, new_id in zip(batch.requeued, batch.requeued_ids, strict=False):
            open_ = self.agenda.open.get(act_id)
            if new_id and open_ is not None:
                self._queued[act_id] = (open_.role, _stream_id(new_id))
            elif open_ is not None:  # its record is gone (expired): nothing left to run
                self.agenda.revert(act_id)
        dups = GrantBatch(self.keys)
        for cand, queued in zip(batch.granted, queued_ids, strict=True):
            if queued:
                entry = _stream_id(queued)
                self._queued[cand.activation_id] = (cand.role, entry)
                self._last_queued[cand.role] = entry
            else:
                self.agenda.revert(cand.activation_id)
                why = [*cand.reasons[:1], "dedupe: granted before (by an earlier leader)"]
                dups.record("refused", cand, why, self.clock())
        if dups:
            await self._write(dups)

    async def _flush(self) -> None:
        batch, self._deferred, self._deferred_at = self._deferred, None, 0.0
        if batch:
            await self._write(batch)

    def _trim(self, batch: GrantBatch) -> None:
        """Trim each role queue below its oldest open activation: the entries before it are
        finished (settled, or never to be claimed again)."""
        oldest: dict[str, tuple[int, int]] = dict(self._last_queued)
        for role, entry in self._queued.values():
            if entry < oldest.get(role, entry):
                oldest[role] = entry
        for role, entry in oldest.items():
            if self._trimmed.get(role) != entry:
                self._trimmed[role] = entry
                batch.trim(role, f"{entry[0]}-{entry[1]}")

    def status(self) -> dict[str, Any]:
        """What the leader is doing: per-role pending, waiting and breaker state."""
        return {
            "leader": self.name,
            "epoch": self.lease.epoch,
            "policy": self.policy.name,
            "revision": self._last_rev,
            "waiting": self.agenda.waiting,
            "open": len(self.agenda.open),
            "forged": self.forged,
            "poisoned": self.poisoned,
            "roles": self.agenda.status(),
            "steering": self.steering.status(self.agenda, self._retries),
            "candidates": self.agenda.waiting_list(100),
            "time_ms": int(self.clock() * 1000),
        }
