"""The reconcile commit (``lua/merge.lua``) and the reads it decides from (compaction layer).

Imports codec, entry, errors, keys, functions, transport, wire, ops and proposals; the Board
only for typing.
The compactor reads many entries with their proposals in one pipelined round trip
(`read_for_merge`) and sends the merge commits of a round in another (`commit_merges`);
each commit still succeeds or fails alone. A merge is all or nothing over the proposal
versions it names: if a proposer replaced one meanwhile, nothing is written (None) and the
compactor decides again from a fresh read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack
from redis.exceptions import RedisError

from blackboard.board.ops import Fence
from blackboard.board.proposals import parse_proposal
from blackboard.errors import (
    BlackboardError,
    BoardUnavailableError,
    ConflictError,
    CorruptEntryError,
    LeaseLostError,
)
from blackboard.store import codec, functions, transport, wire
from blackboard.store.entry import Proposal
from blackboard.store.keys import check_key
from blackboard.store.transport import wrap_redis_error

if TYPE_CHECKING:
    from blackboard.board.client import Board

__all__ = [
    "MergeCommit",
    "MergeRequest",
    "MergeState",
    "commit_merge",
    "commit_merges",
    "read_for_merge",
]

_packb = msgpack.Packer(use_bin_type=True, datetime=False).pack


@dataclass(frozen=True, slots=True)
class MergeState:
    """What a merge decides from: the entry's version (0 when absent or deleted), its value
    (None then) and its open proposals, oldest first."""

    key: str
    version: int
    value: Any
    proposals: list[Proposal]


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """Write `value` over exactly `proposals` if the entry is still at `expect_version`."""

    key: str
    expect_version: int
    value: Any
    proposals: Sequence[Proposal]
    strategy: str


@dataclass(frozen=True, slots=True)
class MergeCommit:
    """What a merge commit did: the new entry version, how many proposals it closed, how
    many stay `open` (they arrived meanwhile) and whether those still disagree."""

    key: str
    revision: int
    version: int
    time_ms: int
    merged: int
    open: int
    divergent: bool


async def _pipelined(board: Board, calls: list[transport.Call]) -> list[Any]:
    """Run function calls and plain commands in one round trip (`transport.send`); results
    or the errors the server answered, in order."""
    try:
        return await transport.send(board.redis, calls)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc


async def read_for_merge(board: Board, keys: Sequence[str]) -> list[MergeState | BlackboardError]:
    """The current state of each entry with its open proposals, in one round trip; a
    CorruptEntryError in place of an entry that cannot be read."""
    k = board.keys_
    calls: list[transport.Call] = []
    for key in keys:
        calls.append((functions.READ, [k.entry(key)], ["c"]))
        calls.append(("HGETALL", k.proposals(key)))
    raw = await _pipelined(board, calls)
    out: list[MergeState | BlackboardError] = []
    for i, key in enumerate(keys):
        entry_res, props_res = raw[2 * i], raw[2 * i + 1]
        try:
            for res in (entry_res, props_res):
                if isinstance(res, Exception):
                    raise wrap_redis_error(res, key) if isinstance(res, RedisError) else res
            version, value = 0, None
            if entry_res is not None:
                if entry_res[0] != b"ok":
                    raise CorruptEntryError(key, str(entry_res[1]))
                entry, value_bytes = codec.parse_record(key, int(entry_res[1]), entry_res[2])
                if not entry.deleted:
                    version, value = entry.version, codec.decode_value(key, value_bytes)
                else:
                    version = entry.version
            items: Any = (
                props_res.items()
                if isinstance(props_res, dict)
                else zip(props_res[::2], props_res[1::2], strict=True)  # a flat RESP2 reply
            )
            proposals = sorted(
                (parse_proposal(key, p.decode(), rec) for p, rec in items),
                key=lambda p: p.revision,
            )
            out.append(MergeState(key, version, value, proposals))
        except BlackboardError as exc:
            out.append(exc)
    return out


def _encode(board: Board, req: MergeRequest, fence: Fence | None) -> tuple[list[str], list[Any]]:
    check_key(req.key)
    if not req.proposals:
        raise ValueError("a merge needs at least one proposal")
    if len(req.proposals) > 65_535:
        raise ValueError("a merge takes at most 65535 proposals")
    settings = board.settings
    k = board.keys_
    keys = [
        k.rev,
        k.log,
        k.index,
        k.idempotency(board.auto_idempotency_key()),
        wire.fence_key(fence, k.rev),
        k.entry(req.key),
        k.proposals(req.key),
        k.proposed,
        k.divergent,
    ]
    args: list[Any] = [
        settings.auto_idempotency_ttl,
        settings.history_keep,
        settings.log_cap,
        *wire.fence_args(fence, claims=False),
        board.writer,
        req.key,
        str(req.expect_version) if req.expect_version > 0 else "0",
        codec.encode_meta(board.writer),
        codec.encode_value(req.key, req.value, settings.max_value_bytes),
        req.strategy,
        len(req.proposals),
    ]
    for p in req.proposals:
        args += [p.proposer, p.revision, _packb([p.proposer, p.revision])]
    return keys, args


def _result(req: MergeRequest, res: Any, fence: Fence | None) -> MergeCommit | None:
    if isinstance(res, RedisError):
        raise wrap_redis_error(res, req.key)
    status = res[0]
    if status == b"ok":
        rev, ts, version, merged, left, divergent = (int(x) for x in res[1:7])
        return MergeCommit(req.key, rev, version, ts, merged, left, bool(divergent))
    if status == b"dup":
        rev_b, ts_b, v_b, n_b = res[1].split(b"|")
        return MergeCommit(req.key, int(rev_b), int(v_b), int(ts_b), int(n_b), -1, False)
    if status == b"moved":
        return None
    if status == b"conflict":
        raise ConflictError(req.key, req.expect_version or "absent", int(res[1]))
    if status == b"fenced":
        raise LeaseLostError(fence.redis_key if fence else "?", res[1].decode())
    if status == b"corrupt":
        raise CorruptEntryError(req.key, res[1].decode(errors="replace"))
    raise BoardUnavailableError(f"unexpected answer from the merge script: {res!r}")


async def commit_merge(
    board: Board,
    key: str,
    expect_version: int,
    value: Any,
    proposals: Sequence[Proposal],
    strategy: str,
    fence: Fence | None = None,
) -> MergeCommit | None:
    """Write `value` as the entry's next version (kind ``merge``) if its version is still
    `expect_version` (0 = absent or deleted), removing exactly the given proposal versions.
    Returns None, writing nothing, when any of them is no longer open at that version (its
    proposer replaced it): decide again from a fresh read.
    Raises ConflictError (the entry moved), LeaseLostError (fence), InvalidValueError."""
    req = MergeRequest(key, expect_version, value, proposals, strategy)
    keys, args = _encode(board, req, fence)
    try:
        res = await functions.MERGE(board.redis, keys, args)
    except RedisError as exc:
        raise wrap_redis_error(exc, key) from exc
    return _result(req, res, fence)


async def commit_merges(
    board: Board, requests: Sequence[MergeRequest], fence: Fence | None = None
) -> list[MergeCommit | BlackboardError | None]:
    """Send many merge commits in one round trip (each succeeds or fails alone); for each,
    what commit_merge() would return, or the error it would raise."""
    calls: list[transport.Call] = []
    out: list[MergeCommit | BlackboardError | None] = []
    for req in requests:
        calls.append((functions.MERGE, *_encode(board, req, fence)))
    raw = await _pipelined(board, calls) if calls else []
    for req, res in zip(requests, raw, strict=True):
        try:
            out.append(_result(req, res, fence))
        except BlackboardError as exc:
            out.append(exc)
    return out
