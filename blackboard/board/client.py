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
import hashlib
import inspect
import itertools
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pydantic
from redis.asyncio import Redis
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from blackboard import telemetry
from blackboard.board.ops import REDUCERS, Apply, Delete, Fence, Op, Put, Reducer
from blackboard.board.schema import SchemaBinding, SchemaRegistry
from blackboard.errors import (
    BlackboardError,
    BoardUnavailableError,
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
from blackboard.store import codec, durability, functions
from blackboard.store.durability import Acks, Durability
from blackboard.store.entry import ABSENT, ANY, Causation, Change, Entry, Expect, Proposal
from blackboard.store.keys import BoardKeys, check_idempotency_key, check_key, check_pattern

__all__ = ["Board", "backoff_delay"]

_KIND_CODE = {Put: "p", Delete: "d", Apply: "a"}


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


def wrap_redis_error(exc: RedisError, key: str | None = None) -> BlackboardError:
    """The blackboard error for a redis-py error (callers `raise ... from exc`)."""
    if isinstance(exc, NoPermissionError) or "NOPERM" in str(exc):
        return PermissionDeniedError(f"Redis refused {key or 'the command'}: {exc}")
    if isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc):
        return CorruptEntryError(key or "?", "a Redis key of another type is in the way")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return BoardUnavailableError(f"Redis is unreachable: {exc}")
    return BoardUnavailableError(f"Redis error: {exc}")


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
        view = Board(
            self.redis,
            self.name,
            writer or self.writer,
            self.settings,
            causation=causation if causation is not None else self.causation,
            fence=fence if fence is not None else self.fence,
            rng=self._rng,
            sleep=self._sleep,
            schemas=self._schemas,
            scope=self.keys_.scope,
            durability=self.durability if durability is None else durability,
        )
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
            keys, args, values, fingerprint = self._encode(ops, idempotency_key, causation)
            try:
                res, acks = await self._send(functions.COMMIT, keys, args)
            except RedisError as exc:
                raise (await self._wrap_commit_error(exc, ops)) from exc
            entries = await self._result(ops, values, res, keys[3], fingerprint, causation)
            self._check_acks(acks, entries)
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
        idem = idempotency_key or self._auto_idempotency_key()
        current = await self.get(key)
        rebased = False
        last: ConflictError | None = None
        for attempt in range(1, limit + 1):
            new = fn(None if current is None else current.value)
            if inspect.isawaitable(new):
                new = await new
            expect: int | Expect = current.version if current is not None else ABSENT
            try:
                # a retried update may compute another value: no request fingerprint
                keys, args, values, _ = self._encode(
                    [Put(key, new, expect)], idem, causation, fingerprint=False
                )
                if idempotency_key is None:  # a generated key: kept as briefly as put()'s
                    args[1] = self.settings.auto_idempotency_ttl
                try:
                    res, acks = await self._send(functions.COMMIT, keys, args)
                except RedisError as exc:
                    raise (await self._wrap_commit_error(exc, [Put(key, new)])) from exc
                result = await self._result([Put(key, new)], values, res, keys[3], "", causation)
                self._check_acks(acks, result)
                return result[0]
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
        from blackboard.board.proposals import propose

        return await propose(self, key, value, confidence, idempotency_key, causation)

    async def proposals(self, key: str) -> list[Proposal]:
        """The open proposals for `key`, oldest first."""
        from blackboard.board.proposals import list_proposals

        return await list_proposals(self, key)

    async def divergent(self, *, limit: int | None = None) -> list[str]:
        """Entry keys whose open proposals disagree, oldest latest-proposal first."""
        from blackboard.board.proposals import divergent_keys

        return [key for key, _ in await divergent_keys(self, limit=limit)]

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
        from blackboard.board.watch import watch_changes

        return watch_changes(self, pattern, since, idle_timeout, block_ms)

    def decode_change_value(self, key: str, kind: str, data: bytes) -> Any:
        if kind == "delete" or not data:
            return None
        if kind == "propose":  # {"proposer", "confidence", "value"}: no schema applies
            return codec.decode_value(key, data)
        value = codec.decode_value(key, data)
        if self._schemas:
            binding = self._schemas.find(key)
            if binding is not None:
                value = SchemaRegistry.load(key, binding, value)
        return value

    # -- commit plumbing ---------------------------------------------------------------------

    async def _send(
        self, script: functions.Script, keys: list[str], args: list[Any]
    ) -> tuple[Any, Acks | None]:
        """Run one write function at this board's durability: its reply, and the
        acknowledgements (None at 'local'; `_check_acks` checks them once the reply is
        decoded, so that a conflict is still a ConflictError). Raises redis errors."""
        if self.durability.is_local:
            return await script(self.redis, keys, args), None
        [res], acks = await self._send_many([script.command(keys, args)])
        if isinstance(res, RedisError):
            raise res
        return res, acks

    async def _send_many(self, commands: list[tuple[Any, ...]]) -> tuple[list[Any], Acks | None]:
        """Write-function calls in one round trip (a ResponseError in place of a refused
        one), followed by the durability wait on the same connection; see `_send`."""
        if self.durability.is_local:
            return await functions.pipelined(self.redis, commands), None
        return await durability.send_calls(self.redis, self.keys_.rev, commands, self.durability)

    def _check_acks(self, acks: Acks | None, entries: list[Entry]) -> None:
        """Raise DurabilityError (with the entries written) unless the replicas confirmed."""
        if acks is not None:
            self.durability.check(acks, list(entries))

    def _auto_idempotency_key(self) -> str:
        return f"{self._idem_prefix}{next(self._idem_counter)}"

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

    def _encode(
        self,
        ops: Sequence[Op],
        idempotency_key: str | None,
        causation: Causation | None,
        *,
        fingerprint: bool = True,
        trace: str | None = None,
    ) -> tuple[list[str], list[Any], list[Any], str]:
        """KEYS and ARGV for commit.lua, the values as returned to the caller, fingerprint.
        `trace`: the traceparent to record (default: the current span's, else the one the
        causation carries, so a process that does not trace passes its cause's on)."""
        if not ops:
            raise ValueError("a commit needs at least one operation")
        if len(ops) > self.settings.max_ops:
            raise ValueError(f"{len(ops)} operations, more than max_ops={self.settings.max_ops}")
        k = self.keys_
        if idempotency_key is None:
            idem, ttl, explicit = (
                self._auto_idempotency_key(),
                self.settings.auto_idempotency_ttl,
                False,
            )
        else:
            idem, ttl, explicit = (
                check_idempotency_key(idempotency_key),
                self.settings.idempotency_ttl,
                True,
            )
        fence = self.fence
        keys = [k.rev, k.log, k.index, k.idempotency(idem), fence.redis_key if fence else k.rev]
        causation = causation or self.causation
        trace = trace or telemetry.current_trace() or (causation.trace if causation else None)
        if trace and (causation is None or causation.trace != trace):
            causation = (
                Causation(causation.activation, causation.depth, trace)
                if causation
                else Causation(trace=trace)
            )
        args: list[Any] = [
            "",
            ttl,
            self.settings.history_keep,
            self.settings.log_cap,
            fence.mode if fence else "",
            fence.token if fence else "",
            fence.consumer if fence else "",
            fence.group if fence else "",
            self.writer,
            (causation.activation or "") if causation else "",
            len(ops),
        ]
        values: list[Any] = []
        limit = self.settings.max_value_bytes
        for op in ops:
            key = check_key(op.key)
            keys.append(k.entry(key))
            schema = self._schemas.find(key) if self._schemas else None
            if isinstance(op, Put):
                value = op.value
                data = value
                if schema is not None:
                    data, value = SchemaRegistry.prepare(key, schema, value)
                args += [
                    "p",
                    _expect_arg(op.expect),
                    key,
                    self._meta(schema, causation),
                    codec.encode_value(key, data, limit),
                    "",
                ]
                values.append(value)
            elif isinstance(op, Delete):
                args += ["d", _expect_arg(op.expect), key, self._meta(schema, causation), "", ""]
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
                args += [
                    "a",
                    "*",
                    key,
                    self._meta(None, causation),
                    codec.encode_value(key, op.arg, limit),
                    op.op,
                ]
                values.append(None)
            else:
                raise TypeError(f"not an operation: {op!r}")
        args.append(limit)
        digest = ""
        if explicit and fingerprint:
            # the request is what the commit does, not who sends it: a retry from a restarted
            # or another process (another writer id, in ARGV[9] and each meta blob) is the same
            h = hashlib.blake2b(digest_size=12)
            for i, a in enumerate(args[9:], start=9):
                if i >= 11 and (i - 11) % 6 == 3:
                    continue
                h.update(a if isinstance(a, bytes) else str(a).encode())
                h.update(b"\x00")
            digest = args[0] = h.hexdigest()
        if trace:  # after the fingerprint: a retry from another span is the same request
            args.append(trace)
        return keys, args, values, digest

    async def _wrap_commit_error(self, exc: RedisError, ops: Sequence[Op]) -> BlackboardError:
        if isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc):
            for op in ops:
                try:
                    kind = await self.redis.type(self.keys_.entry(op.key))
                except RedisError:
                    break
                if kind not in (b"hash", b"none", "hash", "none"):
                    return CorruptEntryError(op.key, f"a Redis {kind!r} is in the way")
        return wrap_redis_error(exc, ops[0].key if len(ops) == 1 else None)

    async def _result(
        self,
        ops: Sequence[Op],
        values: list[Any],
        res: Any,
        idem_key: str,
        fingerprint: str,
        causation: Causation | None = None,
    ) -> list[Entry]:
        causation = causation or self.causation
        status = res[0]
        if status == b"ok":
            revision, ts = int(res[1]), int(res[2])
            versions = res[3]
            applied = res[4]
            out = []
            for i, op in enumerate(ops):
                value = values[i]
                if isinstance(op, Apply):
                    value = codec.decode_value(op.key, applied[i])
                out.append(self._written(op, value, int(versions[i]), revision, ts, causation))
            return out
        if status == b"dup":
            telemetry.replayed(self.name)
            rev_b, ts_b, vers_b = res[1].split(b"|")
            versions = [int(v) for v in vers_b.split(b",")]
            out = []
            for i, op in enumerate(ops):
                if isinstance(op, Put) and fingerprint:
                    out.append(
                        self._written(op, values[i], versions[i], int(rev_b), int(ts_b), causation)
                    )
                    continue
                try:
                    stored = await self.get(op.key, version=versions[i])
                except HistoryTrimmedError:  # replayed long after: the value is gone
                    stored = None
                if stored is None:  # a delete, or trimmed: what the first commit reported
                    stored = self._written(op, None, versions[i], int(rev_b), int(ts_b), causation)
                out.append(stored)
            return out
        if status == b"conflict":
            telemetry.conflict(self.name)
            i = int(res[1]) - 1
            op = ops[i]
            actual = int(res[2])
            current = None
            if res[3]:
                current = self._entry(op.key, actual, res[3])
                if current.deleted:
                    current = _with_value(current, None)
            expect = _expect_repr(op.expect) if not isinstance(op, Apply) else "any"
            raise ConflictError(op.key, expect, actual, current)
        if status == b"fenced":
            raise LeaseLostError(self.fence.redis_key if self.fence else "?", res[1].decode())
        if status == b"reused":
            raise IdempotencyKeyReusedError(idem_key[len(self.keys_.idem_prefix) :])
        if status == b"denied":
            i = int(res[1])
            where = ops[i - 1].key if i > 0 else "the commit"
            raise PermissionDeniedError(f"Redis refused {where}: {res[2].decode()}")
        if status in (b"badop", b"corrupt"):
            # op index 0: the commit as a whole (its shared keys or idempotency record)
            i = int(res[1])
            where = ops[i - 1].key if i > 0 else (idem_key[len(self.keys_.idem_prefix) :])
            why = res[2].decode(errors="replace")
            if status == b"badop":
                raise InvalidValueError(where, why)
            raise CorruptEntryError(where, why)
        raise BoardUnavailableError(f"unexpected answer from the commit script: {res!r}")

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
        self._queued: list[tuple[list[Op], list[str], list[Any], list[Any], str]] = []
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
            keys, args, values, fp = self.board._encode(ops, idempotency_key, None, trace=trace)
        except BaseException:
            telemetry.end_commits([span], [None])
            raise
        self._queued.append((ops, keys, args, values, fp))
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
            commands = [functions.COMMIT.command(keys, args) for _o, keys, args, _v, _f in queued]
            raw, acks = await board._send_many(commands)
        except RedisError as exc:
            telemetry.end_commits(spans, [exc] * len(spans))
            raise wrap_redis_error(exc) from exc
        for (ops, keys, _args, values, fp), res in zip(queued, raw, strict=True):
            try:
                if isinstance(res, RedisError):
                    raise (await board._wrap_commit_error(res, ops)) from res
                entries = await board._result(ops, values, res, keys[3], fp)
                board._check_acks(acks, entries)
                self.results.append(entries[0] if len(entries) == 1 else entries)
            except BlackboardError as err:
                self.results.append(err)
        telemetry.end_commits(spans, self.results[first:])
        return self.results
