"""Proposals: competing values for one entry, one per proposer (board layer).

`board.propose()` and `board.proposals()` delegate here; the compactor reconciles through
merge_commit.py. Imports codec, entry, errors, keys, functions, transport, wire and schema; the
Board only for typing (it calls this module, never the other way), nothing above the board.

Storage (see keys.py): the hash ``p:<key>`` holds one record per proposer, the zset
``proposed`` every entry key with open proposals and ``divergent`` those whose proposals
disagree, both scored by the revision of the latest proposal, so "what changed since
revision r" is one ZRANGEBYSCORE. Each proposal is a commit of its own: it takes a revision
and appends a log event of kind ``propose`` whose value is
``{"proposer": ..., "confidence": ..., "value": ...}``; the event's version is the entry's
version the proposal was made against.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import msgpack
from redis.exceptions import RedisError

from blackboard.board.events import merged_proposals
from blackboard.board.schema import SchemaRegistry
from blackboard.errors import (
    BoardUnavailableError,
    CorruptEntryError,
    IdempotencyKeyReusedError,
    InvalidValueError,
    LeaseLostError,
    PermissionDeniedError,
)
from blackboard.store import codec, functions, wire
from blackboard.store.entry import Causation, Proposal
from blackboard.store.keys import check_idempotency_key, check_key
from blackboard.store.transport import wrap_redis_error

if TYPE_CHECKING:
    from blackboard.board.client import Board

__all__ = [
    "divergent_keys",
    "list_proposals",
    "merged_proposals",
    "parse_proposal",
    "propose",
    "proposed_keys",
]

_packb = msgpack.Packer(use_bin_type=True, datetime=False).pack


def _check_confidence(key: str, confidence: float | None) -> float | None:
    if confidence is None:
        return None
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidValueError(key, f"confidence must be a number, not {confidence!r}")
    c = float(confidence)
    if not (math.isfinite(c) and 0.0 <= c <= 1.0):
        raise InvalidValueError(key, f"confidence must be between 0 and 1, not {confidence!r}")
    return c


def parse_proposal(
    key: str, proposer: str, record: bytes, schemas: SchemaRegistry | None = None
) -> Proposal:
    """A Proposal from its stored record (see lua/propose.lua); raises CorruptEntryError."""
    try:
        rev_b, ts_b, conf_b, base_b, mlen_b, rest = record.split(b"|", 5)
        mlen = int(mlen_b)
        meta = msgpack.unpackb(rest[:mlen], raw=False)
        _writer, _schema, schema_version, activation, depth, trace = meta
        value_bytes = rest[mlen:]
        causation = None
        if activation is not None or depth or trace is not None:
            causation = Causation(activation, depth, trace)
        revision, time_ms, base = int(rev_b), int(ts_b), int(base_b)
        confidence = float(conf_b) if conf_b else None
    except Exception as exc:
        raise CorruptEntryError(key, f"proposal of {proposer!r} is malformed ({exc})") from None
    value = codec.decode_value(key, value_bytes)
    if schemas:
        binding = schemas.find(key)
        if binding is not None:
            value = SchemaRegistry.load(key, binding, value, schema_version)
    return Proposal(key, proposer, value, confidence, revision, time_ms, base, causation)


async def propose(
    board: Board,
    key: str,
    value: Any,
    confidence: float | None = None,
    idempotency_key: str | None = None,
    causation: Causation | None = None,
) -> Proposal:
    """Record `board.writer`'s proposal for `key`, replacing its earlier one.
    Raises InvalidValueError, ValidationError, LeaseLostError, IdempotencyKeyReusedError."""
    check_key(key)
    conf = _check_confidence(key, confidence)
    settings = board.settings
    schemas = board.schemas
    binding = schemas.find(key) if schemas else None
    data = value
    if binding is not None:
        data, value = SchemaRegistry.prepare(key, binding, value)
    value_bytes = codec.encode_value(key, data, settings.max_value_bytes)
    causation = causation or board.causation
    meta = codec.encode_meta(
        board.writer,
        binding.name if binding else None,
        binding.version if binding else None,
        causation,
    )
    conf_text = repr(conf) if conf is not None else ""
    prefix = (
        b"\x83"
        + _packb("proposer")
        + _packb(board.writer)
        + _packb("confidence")
        + _packb(conf)
        + _packb("value")
    )
    k = board.keys_
    if idempotency_key is None:
        idem, ttl, fingerprint = board.auto_idempotency_key(), settings.auto_idempotency_ttl, ""
    else:
        idem, ttl = check_idempotency_key(idempotency_key), settings.idempotency_ttl
        h = hashlib.blake2b(digest_size=12)
        for part in (b"propose", key.encode(), board.writer.encode(), conf_text.encode()):
            h.update(part + b"\x00")
        h.update(value_bytes)
        fingerprint = h.hexdigest()
    fence = board.fence
    keys = [
        k.rev,
        k.log,
        k.idempotency(idem),
        wire.fence_key(fence, k.rev),
        k.entry(key),
        k.proposals(key),
        k.proposed,
        k.divergent,
    ]
    args: list[Any] = [
        fingerprint,
        ttl,
        settings.log_cap,
        *wire.fence_args(fence),
        board.writer,
        (causation.activation or "") if causation else "",
        key,
        conf_text,
        meta,
        value_bytes,
        prefix,
    ]
    try:
        res, acks = await board.send_write(functions.PROPOSE, keys, args)
    except RedisError as exc:
        raise wrap_redis_error(exc, key) from exc
    status = res[0]
    if status == b"ok":
        revision, ts, base = int(res[1]), int(res[2]), int(res[3])
    elif status == b"dup":
        revision, ts, [base] = wire.parse_stored_result(res[1])
    elif status == b"fenced":
        raise LeaseLostError(fence.redis_key if fence else "?", res[1].decode())
    elif status == b"reused":
        raise IdempotencyKeyReusedError(idem)
    elif status == b"denied":
        raise PermissionDeniedError(f"Redis refused proposing {key}: {res[2].decode()}")
    elif status == b"badop":
        raise InvalidValueError(key, res[2].decode(errors="replace"))
    elif status == b"corrupt":
        raise CorruptEntryError(key, res[2].decode(errors="replace"))
    else:
        raise BoardUnavailableError(f"unexpected answer from the propose script: {res!r}")
    proposal = Proposal(key, board.writer, value, conf, revision, ts, base, causation)
    if acks is not None:  # at the board's durability level (durability.py)
        board.durability.check(acks, [proposal])
    return proposal


async def list_proposals(board: Board, key: str) -> list[Proposal]:
    """The open proposals for `key`, oldest first (by revision). Raises CorruptEntryError."""
    check_key(key)
    try:
        raw: Any = await board.redis.hgetall(board.keys_.proposals(key))
    except RedisError as exc:
        raise wrap_redis_error(exc, key) from exc
    found = [
        parse_proposal(key, proposer.decode(), record, board.schemas)
        for proposer, record in raw.items()
    ]
    return sorted(found, key=lambda p: p.revision)


async def _scored(
    board: Board, zset: str, after: int | None, limit: int | None
) -> list[tuple[str, int]]:
    lo = "-inf" if after is None else f"({after}"
    try:
        raw: Any = await board.redis.zrangebyscore(
            zset, lo, "+inf", start=0 if limit else None, num=limit, withscores=True
        )
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return [(member.decode(), int(score)) for member, score in raw]


async def divergent_keys(
    board: Board, *, after: int | None = None, limit: int | None = None
) -> list[tuple[str, int]]:
    """(entry key, revision of its latest proposal) for every divergent entry, oldest
    first; with `after`, only those with a proposal newer than that revision."""
    return await _scored(board, board.keys_.divergent, after, limit)


async def proposed_keys(
    board: Board, *, after: int | None = None, limit: int | None = None
) -> list[tuple[str, int]]:
    """Like divergent_keys() for every entry with open proposals, agreeing or not."""
    return await _scored(board, board.keys_.proposed, after, limit)
