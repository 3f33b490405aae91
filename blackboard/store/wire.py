"""The arguments and replies of the write functions, as typed values (store layer; no I/O;
imports errors only).

``lua/commit.lua``, ``lua/propose.lua`` and ``lua/merge.lua`` document their KEYS and ARGV in
their headers; this module is the one place that lays those lists out, so no caller indexes
into them: `commit_call` builds a commit from a header, the fence block (`fence_args`, shared
by the three functions) and one block per operation; `CommitCall` names what callers read
back (the request fingerprint, the idempotency key, the record's Redis key) and
`with_ttl` replaces the idempotency record's TTL; `parse_commit_reply` turns the function's
reply into one of the `CommitReply` values, and a malformed one into BoardUnavailableError
naming what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from blackboard.errors import BoardUnavailableError

__all__ = [
    "Applied",
    "CommitCall",
    "CommitOp",
    "CommitReply",
    "Conflict",
    "Duplicate",
    "Fence",
    "Fenced",
    "Refused",
    "Reused",
    "commit_call",
    "fence_args",
    "fence_key",
    "parse_commit_reply",
    "parse_stored_result",
]


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


def fence_key(fence: Fence | None, unfenced: str) -> str:
    """The fence's KEYS entry: its Redis key, or `unfenced` (the revision counter) without."""
    return fence.redis_key if fence is not None else unfenced


def fence_args(fence: Fence | None, *, claims: bool = True) -> list[str]:
    """The fence block of ARGV: mode, token and (with `claims`) consumer and group; empty
    strings when unfenced. merge.lua takes mode and token only (`claims=False`); it refuses
    any mode but 'eq' itself (the server decides, so a caller cannot skip the check)."""
    if fence is None:
        return ["", "", "", ""] if claims else ["", ""]
    if claims:
        return [fence.mode, fence.token, fence.consumer, fence.group]
    return [fence.mode, fence.token]


# -- commit ----------------------------------------------------------------------------------

_HEADER = 11  # ARGV[1..11]: fingerprint .. number of operations (see lua/commit.lua)
_PER_OP = 6


@dataclass(frozen=True, slots=True)
class CommitOp:
    """One operation's block of ARGV: kind ('p' put, 'd' delete, 'a' apply), expectation
    ('*' any, '0' absent, or a version), entry key, meta blob, encoded value (the argument
    of an apply; empty for a delete) and reducer name (apply only)."""

    kind: Literal["p", "d", "a"]
    expect: str
    key: str
    meta: bytes
    value: bytes = b""
    reducer: str = ""

    def args(self) -> tuple[Any, ...]:
        return (self.kind, self.expect, self.key, self.meta, self.value, self.reducer)


@dataclass(frozen=True, slots=True)
class CommitCall:
    """KEYS and ARGV of one commit.lua call, and what the caller reads back from it:
    `idempotency_key` (as the caller gave it, or as generated), its record's Redis key and
    the request fingerprint ('' when replays are not compared)."""

    keys: list[str]
    args: list[Any]
    idempotency_key: str

    @property
    def idempotency_record(self) -> str:
        return self.keys[3]

    @property
    def fingerprint(self) -> str:
        return str(self.args[0])

    @property
    def ttl(self) -> int:
        return int(self.args[1])

    @property
    def op_count(self) -> int:
        return int(self.args[_HEADER - 1])

    def op(self, i: int) -> CommitOp:
        """The i-th operation's block (0-based)."""
        if not 0 <= i < self.op_count:
            raise IndexError(f"operation {i} of a commit of {self.op_count}")
        at = _HEADER + i * _PER_OP
        kind, expect, key, meta, value, reducer = self.args[at : at + _PER_OP]
        return CommitOp(kind, expect, key, meta, value, reducer)

    def with_ttl(self, ttl: int) -> CommitCall:
        """The same call keeping its idempotency record for `ttl` seconds."""
        args = list(self.args)
        args[1] = int(ttl)
        return replace(self, args=args)


def fingerprint(activation: str, ops: Sequence[CommitOp], max_value_bytes: int) -> str:
    """What a commit does, not who sends it: a retry from a restarted or another process
    (another writer id, in ARGV[9] and in each meta blob) has the same fingerprint."""
    h = hashlib.blake2b(digest_size=12)

    def part(a: Any) -> None:
        h.update(a if isinstance(a, bytes) else str(a).encode())
        h.update(b"\x00")

    part(activation)
    part(len(ops))
    for op in ops:
        for a in (op.kind, op.expect, op.key, op.value, op.reducer):  # not the meta blob
            part(a)
    part(max_value_bytes)
    return h.hexdigest()


def commit_call(
    *,
    rev: str,
    log: str,
    index: str,
    idempotency_record: str,
    idempotency_key: str,
    ttl: int,
    history_keep: int,
    log_cap: int,
    fence: Fence | None,
    writer: str,
    activation: str,
    ops: Sequence[CommitOp],
    entry_keys: Sequence[str],
    max_value_bytes: int,
    fingerprinted: bool,
    trace: str | None = None,
) -> CommitCall:
    """The commit.lua call for `ops` (one entry hash in `entry_keys` each); with
    `fingerprinted`, replays of the idempotency key are compared with this request. `trace`
    (a traceparent) is not part of the fingerprint: a retry from another span is the same."""
    if not ops:
        raise ValueError("a commit needs at least one operation")
    if len(entry_keys) != len(ops):
        raise ValueError(f"{len(ops)} operations but {len(entry_keys)} entry keys")
    keys = [rev, log, index, idempotency_record, fence_key(fence, rev), *entry_keys]
    digest = fingerprint(activation, ops, max_value_bytes) if fingerprinted else ""
    args: list[Any] = [digest, ttl, history_keep, log_cap, *fence_args(fence), writer]
    args += [activation, len(ops)]
    for op in ops:
        args += op.args()
    args.append(max_value_bytes)
    if trace:
        args.append(trace)
    return CommitCall(keys, args, idempotency_key)


@dataclass(frozen=True, slots=True)
class Applied:
    """'ok': the commit's revision, time, each operation's new version, and the new values
    of apply operations (encoded; b'' for the others)."""

    revision: int
    time_ms: int
    versions: list[int]
    applied: list[bytes]


@dataclass(frozen=True, slots=True)
class Duplicate:
    """'dup': the idempotency key was used before; what that commit reported."""

    revision: int
    time_ms: int
    versions: list[int]


@dataclass(frozen=True, slots=True)
class Conflict:
    """'conflict': operation `index` (0-based) expected another version; the current record
    (b'' when there is none)."""

    index: int
    actual: int
    record: bytes


@dataclass(frozen=True, slots=True)
class Fenced:
    reason: str


@dataclass(frozen=True, slots=True)
class Reused:
    """'reused': the idempotency key was used before for another request."""


@dataclass(frozen=True, slots=True)
class Refused:
    """'badop', 'corrupt' or 'denied': `index` is the operation (0-based), or None for the
    commit as a whole (its shared keys or idempotency record)."""

    status: Literal["badop", "corrupt", "denied"]
    index: int | None
    reason: str


CommitReply = Applied | Duplicate | Conflict | Fenced | Reused | Refused


def _text(b: Any) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else str(b)


def parse_stored_result(raw: bytes) -> tuple[int, int, list[int]]:
    """revision, time_ms and versions of a replayed commit ('revision|time_ms|v1,v2,..')."""
    rev_b, ts_b, vers_b = raw.split(b"|")
    return int(rev_b), int(ts_b), [int(v) for v in vers_b.split(b",")]


def parse_commit_reply(res: Any, op_count: int) -> CommitReply:
    """The commit.lua reply of a commit of `op_count` operations as a typed value.
    Raises BoardUnavailableError naming the reply when it is not one commit.lua gives."""
    try:
        status = res[0]
        if status == b"ok":
            versions = [int(v) for v in res[3]]
            applied = [bytes(a) if a else b"" for a in res[4]]
            if len(versions) != op_count or len(applied) != op_count:
                raise ValueError(f"{len(versions)} versions for {op_count} operations")
            return Applied(int(res[1]), int(res[2]), versions, applied)
        if status == b"dup":
            rev, ts, versions = parse_stored_result(res[1])
            if len(versions) != op_count:
                raise ValueError(f"{len(versions)} stored versions for {op_count} operations")
            return Duplicate(rev, ts, versions)
        if status == b"conflict":
            index = int(res[1]) - 1
            if not 0 <= index < op_count:
                raise ValueError(f"conflict on operation {index + 1} of {op_count}")
            return Conflict(index, int(res[2]), res[3] or b"")
        if status == b"fenced":
            return Fenced(_text(res[1]))
        if status == b"reused":
            return Reused()
        if status in (b"badop", b"corrupt", b"denied"):
            i = int(res[1])
            if not 0 <= i <= op_count:
                raise ValueError(f"operation {i} of {op_count}")
            return Refused(status.decode(), i - 1 if i > 0 else None, _text(res[2]))
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BoardUnavailableError(
            f"malformed answer from the commit function ({exc}): {res!r}"
        ) from None
    raise BoardUnavailableError(f"unexpected answer from the commit function: {res!r}")
