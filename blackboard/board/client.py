"""The board client: versioned reads and compare-and-set writes over one Redis connection.

Sits above keys/scripts/codec/schema/ops/durability and below the controller, compactor and
agent runtime. Every write is one FCALL of the library's commit (``lua/commit.lua``) carrying
an idempotency key (the caller's, or one generated per call), so a write that redis-py resends
after a dropped connection still takes effect once. Above the ``local`` durability level the
FCALL is followed by WAIT / WAITAOF on the same connection (durability.py). This module is
longer than 400 lines because the write path (encode, commit, decode the answer) reads best in
one place.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from blackboard import telemetry
from blackboard.board import proposals as proposals_
from blackboard.board import watch as watch_
from blackboard.board.events import decode_value
from blackboard.board.ops import REDUCERS, Apply, Delete, Fence, Op, Put, Reducer
from blackboard.board.schema import SchemaBinding, SchemaRegistry
from blackboard.errors import (
    BlackboardError,
    ConflictError,
    CorruptEntryError,
    HistoryTrimmedError,
    IdempotencyKeyReusedError,
    InvalidValueError,
    LeaseLostError,
    PermissionDeniedError,
    RetryExhaustedError,
)
from blackboard.settings import Settings
from blackboard.store import codec, functions, transport, wire
from blackboard.store.durability import Acks, Durability
from blackboard.store.entry import ABSENT, ANY, Causation, Change, Entry, Expect, Proposal
from blackboard.store.keys import BoardKeys, check_idempotency_key, check_key, check_pattern

__all__ = ["Board", "PreparedCommit", "backoff_delay", "wrap_redis_error"]

wrap_redis_error = transport.wrap_redis_error  # its home is store/transport.py


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap, base * (2 ** min(attempt, 30))))


def _expect_arg(expect: int | Expect) -> str:
    if expect is ANY:
        return "*"
    if expect is ABSENT:
        return "0"
    if isinstance(expect, bool) or not isinstance(expect, int) or expect < 1:
        raise ValueError(f"expect must be a version >= 1, ABSENT or ANY, not {expect!r}")
    return str(expect)


def _expect_repr(expect: int | Expect) -> int | str:
    return expect.value if isinstance(expect, Expect) else expect


@dataclass(frozen=True, slots=True)
class PreparedCommit:
    """A commit ready to send (`Board.prepare_commit`): the commit.lua call, the operations
    and the values as the caller gets them back, and the causation recorded."""

    call: wire.CommitCall
    ops: Sequence[Op]
    values: list[Any]
    causation: Causation | None


class Board:
    """A connection to one board as one writer. Create it with `blackboard.connect()`."""

    def __init__(
        self,
        redis: Redis,
        board: str,
        writer: str,
        settings: Settings | None = None,
        *,
        causation: Causation | None = None,
        fence: Fence | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        schemas: SchemaRegistry | None = None,
        scope: str = "@",
        durability: Durability | str | None = None,
    ) -> None:
        self.redis = redis
        self.keys_ = BoardKeys(board, scope)
        self.name = board
        self.writer = writer
        self.settings = settings or Settings()
        # when a write returns: 'local', 'replicated' or 'fsynced' (durability.py)
        self.durability = Durability.of(durability, self.settings)
        self.causation = causation
        self.fence = fence
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._schemas = schemas if schemas is not None else SchemaRegistry()
        self._idem_prefix = "~" + os.urandom(6).hex() + ":"
        self._idem_counter = itertools.count(1)
        self._meta_cache: dict[tuple[str | None, int | None], bytes] = {}
        self.forged_events = 0  # log events dropped by watch() because no record backs them

    # -- scoping -----------------------------------------------------------------------------

    def bind(
        self,
        *,
        writer: str | None = None,
        causation: Causation | None = None,
        fence: Fence | None = None,
        durability: Durability | str | None = None,
    ) -> Board:
        """A view of this board sharing its connection and schemas, writing as another
        writer and/or with a causation, fence or durability level applied to every write
        (``board.bind(durability="replicated")``: a level name takes the settings' replica
        count and timeout). Raises ValueError for an unknown level."""
        # a shallow copy, not a new Board: the connection, key names, settings, schemas,
        # rng, sleep and the idempotency-key generator are shared (a shared prefix and counter
        # keep generated keys unique across views); agents bind once or twice per activation
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        if writer is not None and writer != self.writer:
            view.writer = writer
            view._meta_cache = {}
        if causation is not None:
            view.causation = causation
        if fence is not None:
            view.fence = fence
        if durability is not None:
            view.durability = Durability.of(durability, self.settings)
        view.forged_events = 0
        return view

    def schema(self, pattern: str, model: type[pydantic.BaseModel]) -> SchemaBinding:
        """Bind a pydantic model to keys matching `pattern` (for this client)."""
        return self._schemas.bind(pattern, model)

    # -- reads -------------------------------------------------------------------------------

    async def revision(self) -> int:
        """The board's current revision (0 for an empty board)."""
        try:
            raw = await self.redis.get(self.keys_.rev)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        return int(raw or 0)

    async def get(
        self, key: str, *, version: int | None = None, at_revision: int | None = None
    ) -> Entry | None:
        """The current entry, one version of it, or its latest version at a board revision;
        None when absent or deleted there. Raises HistoryTrimmedError, CorruptEntryError."""
        check_key(key)
        if version is not None and at_revision is not None:
            raise ValueError("give version or at_revision, not both")
        if version is not None:
            args: list[Any] = ["v", int(version)]
        elif at_revision is not None:
            args = ["r", int(at_revision)]
        else:
            args = ["c"]
        redis_key = self.keys_.entry(key)
        try:
            res = await functions.READ(self.redis, [redis_key], args)
        except RedisError as exc:
            raise wrap_redis_error(exc, key) from exc
        if res is None:
            return None
        status = res[0]
        if status == b"trimmed":
            what = "version" if version is not None else "revision"
            raise HistoryTrimmedError(f"{key!r} {what}", int(args[1]), int(res[1]))
        if status == b"corrupt":
            raise CorruptEntryError(key, res[1].decode(errors="replace"))
        entry = self._entry(key, int(res[1]), res[2])
        return None if entry.deleted else entry

    def _entry(self, key: str, version: int, record: bytes) -> Entry:
        entry, value_bytes = codec.parse_record(key, version, record)
        if entry.deleted:
            return entry
        value = codec.decode_value(key, value_bytes)
        if self._schemas:
            binding = self._schemas.find(key)
            if binding is not None:
                value = SchemaRegistry.load(key, binding, value, entry.schema_version)
        return _with_value(entry, value)

    async def history(self, key: str, *, limit: int | None = None) -> list[Entry]:
        """Retained versions of `key`, newest first, tombstones included."""
        check_key(key)
        try:
            raw: Any = await self.redis.hgetall(self.keys_.entry(key))
        except RedisError as exc:
            raise wrap_redis_error(exc, key) from exc
        if not raw:
            return []
        if b"v" not in raw:
            raise CorruptEntryError(key, "hash without a version field")
        versions = sorted((int(f) for f in raw if f.isdigit()), reverse=True)
        if limit is not None:
            versions = versions[:limit]
        return [self._entry(key, v, raw[str(v).encode()]) for v in versions]

    async def keys(self, pattern: str = "*", *, limit: int | None = None) -> list[str]:
        """Live entry keys matching a glob `pattern`, sorted; served from the board's index."""
        check_pattern(pattern)
        index = self.keys_.index
        try:
            glob = any(c in pattern for c in "*?[")
            if not glob:
                found = await self.redis.zscore(index, pattern)
                return [] if found is None else [pattern]
            if pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?["):
                prefix = pattern[:-1].encode()
                lo = b"[" + prefix if prefix else b"-"
                hi = b"[" + prefix + b"\xff" if prefix else b"+"
                raw: Any = await self.redis.zrangebylex(
                    index, lo, hi, start=0 if limit else None, num=limit
                )
                return [k.decode() for k in raw]
            out: list[str] = []
            async for member, _score in self.redis.zscan_iter(index, match=pattern, count=1000):
                out.append(member.decode())
            out.sort()
            return out[:limit] if limit else out
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc

    # -- writes ------------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        value: Any,
        *,
        expect: int | Expect = ANY,
        idempotency_key: str | None = None,
        causation: Causation | None = None,
    ) -> Entry:
        """Write `value` if the entry's version is `expect` (a version, ABSENT or ANY).
        Raises ConflictError, ValidationError, InvalidValueError, LeaseLostError."""
        return (await self.transact([Put(key, value, expect)], idempotency_key, causation))[0]

    async def delete(
        self,
        key: str,
        *,
        expect: int | Expect = ANY,
        idempotency_key: str | None = None,
        causation: Causation | None = None,
    ) -> Entry:
        """Delete a live entry, leaving a versioned tombstone. Raises ConflictError."""
        return (await self.transact([Delete(key, expect)], idempotency_key, causation))[0]

    async def apply(
        self,
        key: str,
        op: Reducer,
        arg: Any,
        *,
        idempotency_key: str | None = None,
        causation: Causation | None = None,
    ) -> Entry:
        """Run a reducer (add, append, union, max, min) on the value inside the server: never
        conflicts. Raises InvalidValueError when the value or argument has the wrong type."""
        return (await self.transact([Apply(key, op, arg)], idempotency_key, causation))[0]

    async def transact(
        self,
        ops: Sequence[Op],
        idempotency_key: str | None = None,
        causation: Causation | None = None,
    ) -> list[Entry]:
        """Apply every operation or none, as one commit with one revision.
        Raises ConflictError for the first expectation that fails."""
        with telemetry.commit_span(self.name, ops[0].key if ops else "", len(ops)) as span:
            prepared = self.prepare_commit(ops, idempotency_key, causation)
            entries = await self._commit(prepared)
            span.done(entries[0].revision)
            return entries

    async def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        attempts: int | None = None,
        idempotency_key: str | None = None,
        causation: Causation | None = None,
    ) -> Entry:
        """Read-modify-write: `fn(current value or None)` returns the new value (or an
        awaitable of it); conflicts are retried, first at once from the state the conflict
        returned, then after jittered exponential backoff and a fresh read.
        Raises RetryExhaustedError after `attempts` conflicts."""
        with telemetry.commit_span(self.name, key) as span:
            entry = await self._update(key, fn, attempts, idempotency_key, causation)
            span.done(entry.revision)
            return entry

    async def _update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        attempts: int | None,
        idempotency_key: str | None,
        causation: Causation | None,
    ) -> Entry:
        limit = attempts or self.settings.update_attempts
        idem = idempotency_key or self.auto_idempotency_key()
        current = await self.get(key)
        rebased = False
        last: ConflictError | None = None
        for attempt in range(1, limit + 1):
            new = fn(None if current is None else current.value)
            if inspect.isawaitable(new):
                new = await new
            expect: int | Expect = current.version if current is not None else ABSENT
            try:
                # a retried update may compute another value: no request fingerprint; a
                # generated key is kept as briefly as put()'s
                prepared = self.prepare_commit(
                    [Put(key, new, expect)],
                    idem,
                    causation,
                    fingerprint=False,
                    ttl=None if idempotency_key else self.settings.auto_idempotency_ttl,
                )
                return (await self._commit(prepared))[0]
            except ConflictError as conflict:
                last = conflict
                if attempt == limit:
                    break
                if not rebased and conflict.current is not None:
                    current, rebased = conflict.current, True
                    continue
                if not rebased and conflict.actual == 0:
                    current, rebased = None, True
                    continue
                rebased = False
                base, cap = self.settings.backoff_base, self.settings.backoff_cap
                await self._sleep(backoff_delay(attempt, base, cap, self._rng))
                current = await self._get_including_deleted(key)
        assert last is not None
        raise RetryExhaustedError(key, last.expected, last.actual, limit)

    async def _get_including_deleted(self, key: str) -> Entry | None:
        try:
            res = await functions.READ(self.redis, [self.keys_.entry(key)], ["c"])
        except RedisError as exc:
            raise wrap_redis_error(exc, key) from exc
        if res is None or res[0] != b"ok":
            return None
        entry = self._entry(key, int(res[1]), res[2])
        return entry if not entry.deleted else _with_value(entry, None)

    def batch(self) -> Batch:
        """Collect independent commits and send them in one round trip (not atomic as a
        group: each succeeds or fails alone). Use `async with board.batch() as b:`."""
        return Batch(self)

    # -- proposals ---------------------------------------------------------------------------

    async def propose(
        self,
        key: str,
        value: Any,
        confidence: float | None = None,
        *,
        idempotency_key: str | None = None,
        causation: Causation | None = None,
    ) -> Proposal:
        """Propose `value` for `key` as this writer (replacing its earlier proposal); never
        conflicts. The compactor reconciles disagreeing proposals (see docs/compactor.md).
        Raises InvalidValueError (also for a confidence outside 0..1), LeaseLostError."""
        return await proposals_.propose(self, key, value, confidence, idempotency_key, causation)

    async def proposals(self, key: str) -> list[Proposal]:
        """The open proposals for `key`, oldest first."""
        return await proposals_.list_proposals(self, key)

    async def divergent(self, *, limit: int | None = None) -> list[str]:
        """Entry keys whose open proposals disagree, oldest latest-proposal first."""
        return [key for key, _ in await proposals_.divergent_keys(self, limit=limit)]

    # -- watching ----------------------------------------------------------------------------

    def watch(
        self,
        pattern: str = "*",
        *,
        since: int | None = None,
        idle_timeout: float | None = None,
        block_ms: int = 1000,
    ) -> AsyncIterator[Change]:
        """Changes to keys matching `pattern` with revision > `since` (default: from now),
        in revision order, each exactly once. Stops after `idle_timeout` seconds without a
        change, if given. Raises HistoryTrimmedError if `since` is older than the log keeps."""
        return watch_.watch_changes(self, pattern, since, idle_timeout, block_ms)

    def decode_change_value(self, key: str, kind: str, data: bytes) -> Any:
        """A change's value as this client reads it (events.decode_value, with its schemas)."""
        return decode_value(key, kind, data, self._schemas)

    # -- commit plumbing (public for proposals, the compactor and the agent runtime) ---------

    @property
    def schemas(self) -> SchemaRegistry:
        """The schema bindings this client (and every view bound from it) applies."""
        return self._schemas

    def auto_idempotency_key(self) -> str:
        """A fresh idempotency key for a write whose caller gave none (unique per client)."""
        return f"{self._idem_prefix}{next(self._idem_counter)}"

    async def send_write(
        self, fn: functions.Script, keys: list[str], args: list[Any]
    ) -> tuple[Any, Acks | None]:
        """Run one write function at this board's durability (`transport.send_write`): its
        reply, and the acknowledgements (None at 'local'; `check_acks` checks them once the
        reply is decoded, so that a conflict is still a ConflictError). Raises redis errors."""
        if self.durability.is_local:  # redis-py's command path: its retry policy applies
            return await transport.call(self.redis, fn, keys, args), None
        [res], acks = await transport.send_write(
            self.redis, self.keys_.rev, [(fn, keys, args)], self.durability
        )
        if isinstance(res, RedisError):
            raise res
        return res, acks

    async def send_writes(self, calls: Sequence[transport.Call]) -> tuple[list[Any], Acks | None]:
        """Write-function calls in one round trip (a ResponseError in place of a refused
        one), followed by the durability wait on the same connection; see `send_write`."""
        return await transport.send_write(self.redis, self.keys_.rev, calls, self.durability)

    def check_acks(self, acks: Acks | None, entries: Sequence[Any] = ()) -> None:
        """Raise DurabilityError (with the entries written) unless the replicas confirmed."""
        if acks is not None:
            self.durability.check(acks, list(entries))

    async def _commit(self, prepared: PreparedCommit) -> list[Entry]:
        call = prepared.call
        try:
            res, acks = await self.send_write(functions.COMMIT, call.keys, call.args)
        except RedisError as exc:
            res, acks = exc, None
        entries = await self.commit_result(prepared, res)
        self.check_acks(acks, entries)
        return entries

    def _meta(self, schema: SchemaBinding | None, causation: Causation | None) -> bytes:
        causation = causation or self.causation
        name = schema.name if schema else None
        version = schema.version if schema else None
        if causation is not None:
            return codec.encode_meta(self.writer, name, version, causation)
        cached = self._meta_cache.get((name, version))
        if cached is None:
            cached = self._meta_cache[(name, version)] = codec.encode_meta(
                self.writer, name, version
            )
        return cached

    def prepare_commit(
        self,
        ops: Sequence[Op],
        idempotency_key: str | None = None,
        causation: Causation | None = None,
        *,
        fingerprint: bool = True,
        trace: str | None = None,
        ttl: int | None = None,
    ) -> PreparedCommit:
        """Validate and encode `ops` as one commit.lua call (store/wire.py) without sending
        it; send it with `send_write(functions.COMMIT, ...)` and decode the reply with
        `commit_result`. `trace`: the traceparent to record (default: the current span's,
        else the one the causation carries, so a process that does not trace passes its
        cause's on). `ttl`: how long the idempotency record is kept (default: the settings'
        for a given or a generated key). Raises ValueError, InvalidValueError,
        ValidationError."""
        if not ops:
            raise ValueError("a commit needs at least one operation")
        if len(ops) > self.settings.max_ops:
            raise ValueError(f"{len(ops)} operations, more than max_ops={self.settings.max_ops}")
        k = self.keys_
        if idempotency_key is None:
            idem, default_ttl, explicit = (
                self.auto_idempotency_key(),
                self.settings.auto_idempotency_ttl,
                False,
            )
        else:
            idem, default_ttl, explicit = (
                check_idempotency_key(idempotency_key),
                self.settings.idempotency_ttl,
                True,
            )
        causation = causation or self.causation
        trace = trace or telemetry.current_trace() or (causation.trace if causation else None)
        if trace and (causation is None or causation.trace != trace):
            causation = (
                Causation(causation.activation, causation.depth, trace)
                if causation
                else Causation(trace=trace)
            )
        values: list[Any] = []
        blocks: list[wire.CommitOp] = []
        entry_keys: list[str] = []
        limit = self.settings.max_value_bytes
        for op in ops:
            key = check_key(op.key)
            entry_keys.append(k.entry(key))
            schema = self._schemas.find(key) if self._schemas else None
            if isinstance(op, Put):
                value = op.value
                data = value
                if schema is not None:
                    data, value = SchemaRegistry.prepare(key, schema, value)
                meta = self._meta(schema, causation)
                encoded = codec.encode_value(key, data, limit)
                blocks.append(wire.CommitOp("p", _expect_arg(op.expect), key, meta, encoded))
                values.append(value)
            elif isinstance(op, Delete):
                meta = self._meta(schema, causation)
                blocks.append(wire.CommitOp("d", _expect_arg(op.expect), key, meta))
                values.append(None)
            elif isinstance(op, Apply):
                if op.op not in REDUCERS:
                    raise InvalidValueError(
                        key, f"unknown reducer {op.op!r}; use {sorted(REDUCERS)}"
                    )
                if schema is not None:
                    raise InvalidValueError(
                        key, f"reducers do not run on keys with schema {schema.name}"
                    )
                encoded = codec.encode_value(key, op.arg, limit)
                blocks.append(
                    wire.CommitOp("a", "*", key, self._meta(None, causation), encoded, op.op)
                )
                values.append(None)
            else:
                raise TypeError(f"not an operation: {op!r}")
        call = wire.commit_call(
            rev=k.rev,
            log=k.log,
            index=k.index,
            idempotency_record=k.idempotency(idem),
            idempotency_key=idem,
            ttl=default_ttl if ttl is None else ttl,
            history_keep=self.settings.history_keep,
            log_cap=self.settings.log_cap,
            fence=self.fence,
            writer=self.writer,
            activation=(causation.activation or "") if causation else "",
            ops=blocks,
            entry_keys=entry_keys,
            max_value_bytes=limit,
            fingerprinted=explicit and fingerprint,
            trace=trace,
        )
        return PreparedCommit(call, list(ops), values, causation)

    async def _commit_error(self, exc: RedisError, ops: Sequence[Op]) -> BlackboardError:
        if isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc):
            for op in ops:
                try:
                    kind = await self.redis.type(self.keys_.entry(op.key))
                except RedisError:
                    break
                if kind not in (b"hash", b"none", "hash", "none"):
                    return CorruptEntryError(op.key, f"a Redis {kind!r} is in the way")
        return wrap_redis_error(exc, ops[0].key if len(ops) == 1 else None)

    async def commit_result(self, prepared: PreparedCommit, res: Any) -> list[Entry]:
        """The entries a commit wrote, from its reply (or the redis error it met, which is
        raised as the blackboard's error). Raises ConflictError, LeaseLostError,
        IdempotencyKeyReusedError, PermissionDeniedError, InvalidValueError,
        CorruptEntryError, BoardUnavailableError (a malformed reply)."""
        ops, values, causation = prepared.ops, prepared.values, prepared.causation
        if isinstance(res, RedisError):
            raise (await self._commit_error(res, ops)) from res
        reply = wire.parse_commit_reply(res, len(ops))
        if isinstance(reply, wire.Applied):
            out = []
            for i, op in enumerate(ops):
                value = values[i]
                if isinstance(op, Apply):
                    value = codec.decode_value(op.key, reply.applied[i])
                written = self._written(
                    op, value, reply.versions[i], reply.revision, reply.time_ms, causation
                )
                out.append(written)
            return out
        if isinstance(reply, wire.Duplicate):
            telemetry.replayed(self.name)
            rev, ts, versions = reply.revision, reply.time_ms, reply.versions
            out = []
            for i, op in enumerate(ops):
                if isinstance(op, Put) and prepared.call.fingerprint:
                    out.append(self._written(op, values[i], versions[i], rev, ts, causation))
                    continue
                try:
                    stored = await self.get(op.key, version=versions[i])
                except HistoryTrimmedError:  # replayed long after: the value is gone
                    stored = None
                if stored is None:  # a delete, or trimmed: what the first commit reported
                    stored = self._written(op, None, versions[i], rev, ts, causation)
                out.append(stored)
            return out
        if isinstance(reply, wire.Conflict):
            telemetry.conflict(self.name)
            op = ops[reply.index]
            current = None
            if reply.record:
                current = self._entry(op.key, reply.actual, reply.record)
                if current.deleted:
                    current = _with_value(current, None)
            expect = _expect_repr(op.expect) if not isinstance(op, Apply) else "any"
            raise ConflictError(op.key, expect, reply.actual, current)
        if isinstance(reply, wire.Fenced):
            raise LeaseLostError(self.fence.redis_key if self.fence else "?", reply.reason)
        if isinstance(reply, wire.Reused):
            raise IdempotencyKeyReusedError(prepared.call.idempotency_key)
        where = ops[reply.index].key if reply.index is not None else None
        if reply.status == "denied":
            raise PermissionDeniedError(f"Redis refused {where or 'the commit'}: {reply.reason}")
        # no operation: the commit as a whole (its shared keys or idempotency record)
        where = where or prepared.call.idempotency_key
        if reply.status == "badop":
            raise InvalidValueError(where, reply.reason)
        raise CorruptEntryError(where, reply.reason)

    def _written(
        self,
        op: Op,
        value: Any,
        version: int,
        revision: int,
        ts: int,
        causation: Causation | None,
    ) -> Entry:
        schema = self._schemas.find(op.key) if self._schemas else None
        kind = "put" if isinstance(op, Put) else "delete" if isinstance(op, Delete) else "apply"
        return Entry(
            key=op.key,
            value=value,
            version=version,
            revision=revision,
            writer=self.writer,
            time_ms=ts,
            schema=schema.name if schema else None,
            schema_version=schema.version if schema else None,
            causation=causation,
            deleted=kind == "delete",
            kind=kind,
        )


def _with_value(entry: Entry, value: Any) -> Entry:
    return Entry(
        entry.key,
        value,
        entry.version,
        entry.revision,
        entry.writer,
        entry.time_ms,
        entry.schema,
        entry.schema_version,
        entry.causation,
        entry.deleted,
        entry.kind,
    )


class Batch:
    """Commits queued on one pipeline; `results` holds an Entry or a BlackboardError each."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self._queued: list[PreparedCommit] = []
        self._spans: list[Any] = []  # one producer span per queued commit while tracing
        # one Entry per put/delete/apply, a list of them per transact, or the error
        self.results: list[Entry | list[Entry] | BlackboardError] = []

    def put(
        self,
        key: str,
        value: Any,
        *,
        expect: int | Expect = ANY,
        idempotency_key: str | None = None,
    ) -> None:
        self._add([Put(key, value, expect)], idempotency_key)

    def delete(
        self, key: str, *, expect: int | Expect = ANY, idempotency_key: str | None = None
    ) -> None:
        self._add([Delete(key, expect)], idempotency_key)

    def apply(self, key: str, op: Reducer, arg: Any, *, idempotency_key: str | None = None) -> None:
        self._add([Apply(key, op, arg)], idempotency_key)

    def transact(self, ops: Sequence[Op], idempotency_key: str | None = None) -> None:
        self._add(list(ops), idempotency_key)

    def _add(self, ops: list[Op], idempotency_key: str | None) -> None:
        span, trace = telemetry.start_commit(self.board.name, ops[0].key if ops else "", len(ops))
        try:
            prepared = self.board.prepare_commit(ops, idempotency_key, None, trace=trace)
        except BaseException:
            telemetry.end_commits([span], [None])
            raise
        self._queued.append(prepared)
        self._spans.append(span)

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.execute()

    async def execute(self) -> list[Entry | list[Entry] | BlackboardError]:
        """Send the queued commits in one round trip; returns and keeps their results."""
        board = self.board
        queued, self._queued = self._queued, []
        spans, self._spans = self._spans, []
        if not queued:
            return self.results
        first = len(self.results)
        try:
            calls = [(functions.COMMIT, p.call.keys, p.call.args) for p in queued]
            raw, acks = await board.send_writes(calls)
        except RedisError as exc:
            telemetry.end_commits(spans, [exc] * len(spans))
            raise wrap_redis_error(exc) from exc
        for prepared, res in zip(queued, raw, strict=True):
            try:
                entries = await board.commit_result(prepared, res)
                board.check_acks(acks, entries)
                self.results.append(entries[0] if len(entries) == 1 else entries)
            except BlackboardError as err:
                self.results.append(err)
        telemetry.end_commits(spans, self.results[first:])
        return self.results
