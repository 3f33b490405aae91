"""Restoring a snapshot into an empty board, and replaying the change log over a snapshot
(board layer: imports the client, events, retention, snapshot, codec and transport).

`restore()` refuses a board that holds any key (BoardNotEmptyError) and claims the board by
setting its revision counter with SET NX before writing anything else, so two imports into
one board cannot interleave. `state_of()` and `replay()` are pure: the state a snapshot
describes, and that state moved forward by raw change-log events (kinds put, apply, merge,
delete, propose; a merge event closes exactly the proposal versions it lists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
from redis.exceptions import RedisError

from blackboard.board.client import Board
from blackboard.board.events import parse_log_event
from blackboard.board.retention import scan_step
from blackboard.board.snapshot import check_document
from blackboard.errors import BoardNotEmptyError, CorruptEntryError, SnapshotError
from blackboard.store import codec
from blackboard.store.entry import Causation
from blackboard.store.transport import wrap_redis_error

__all__ = ["BoardState", "Restored", "replay", "restore", "state_of"]

_packb = msgpack.Packer(use_bin_type=True, datetime=False).pack


@dataclass(frozen=True, slots=True)
class Restored:
    revision: int
    entries: int
    versions: int
    proposals: int


def _causation(doc: dict[str, Any] | None) -> Causation | None:
    if not doc:
        return None
    return Causation(doc.get("activation"), int(doc.get("depth") or 0), doc.get("trace"))


def _record(v: dict[str, Any]) -> bytes:
    kind = codec.KIND_CODES.get(v.get("kind", "put"))
    if kind is None:
        raise SnapshotError(f"unknown version kind {v.get('kind')!r}")
    meta = codec.encode_meta(
        str(v.get("writer", "")),
        v.get("schema"),
        v.get("schema_version"),
        _causation(v.get("causation")),
    )
    value = b"" if kind == "d" else bytes(_packb(v.get("value")))
    head = f"{int(v['revision'])}|{int(v['time_ms'])}|{kind}|{len(meta)}|".encode()
    return head + meta + value


def _proposal_record(p: dict[str, Any]) -> tuple[bytes, bytes]:
    meta = codec.encode_meta(str(p["proposer"]), None, None, _causation(p.get("causation")))
    conf = p.get("confidence")
    value = bytes(_packb(p.get("value")))
    head = (
        f"{int(p['revision'])}|{int(p['time_ms'])}|{'' if conf is None else repr(float(conf))}|"
        f"{int(p.get('base_version') or 0)}|{len(meta)}|"
    ).encode()
    return head + meta + value, value


async def _ensure_empty(board: Board) -> None:
    cursor = 0
    while True:
        cursor, found = await scan_step(board, cursor, board.keys_.prefix + "*", 1000)
        if found:
            name = found[0].decode() if isinstance(found[0], bytes) else found[0]
            raise BoardNotEmptyError(board.name, f"it has {name}")
        if cursor == 0:
            return


async def restore(board: Board, doc: dict[str, Any]) -> Restored:
    """Write snapshot `doc` into `board`, which must be empty, keeping versions and
    revisions. Raises BoardNotEmptyError, SnapshotError, BoardUnavailableError."""
    check_document(doc)
    k = board.keys_
    revision = int(doc["revision"])
    try:
        await _ensure_empty(board)
        if not await board.redis.set(k.rev, revision, nx=True):
            raise BoardNotEmptyError(board.name, "another writer or import started on it")
        versions = 0
        entries = doc.get("entries", [])
        for i in range(0, len(entries), 200):
            async with board.redis.pipeline(transaction=False) as pipe:
                for e in entries[i : i + 200]:
                    key = str(e["key"])
                    vs = e["versions"]
                    cur = vs[-1]
                    deleted = cur.get("kind") == "delete"
                    mapping: dict[str, Any] = {
                        "v": int(cur["version"]),
                        "r": int(cur["revision"]),
                        "lo": int(vs[0]["version"]),
                        "x": 1 if deleted else 0,
                    }
                    for v in vs:
                        mapping[str(int(v["version"]))] = _record(v)
                    versions += len(vs)
                    pipe.hset(k.entry(key), mapping=mapping)  # type: ignore[arg-type]
                    if not deleted:
                        pipe.zadd(k.index, {key: 0})
                await pipe.execute()
        by_key: dict[str, list[dict[str, Any]]] = {}
        for p in doc.get("proposals", []):
            by_key.setdefault(str(p["key"]), []).append(p)
        async with board.redis.pipeline(transaction=False) as pipe:
            for key, group in by_key.items():
                values = set()
                for p in group:
                    record, value = _proposal_record(p)
                    values.add(value)
                    pipe.hset(k.proposals(key), str(p["proposer"]), record)
                latest = max(int(p["revision"]) for p in group)
                pipe.zadd(k.proposed, {key: latest})
                if len(values) > 1:
                    pipe.zadd(k.divergent, {key: latest})
            await pipe.execute()
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"malformed snapshot: {exc!r}") from None
    return Restored(revision, len(entries), versions, len(doc.get("proposals", [])))


@dataclass(slots=True)
class BoardState:
    """What a board holds, for comparisons: entry key -> (version, revision, deleted,
    value) and (entry key, proposer) -> (revision, value, confidence)."""

    revision: int
    entries: dict[str, tuple[int, int, bool, Any]] = field(default_factory=dict)
    proposals: dict[tuple[str, str], tuple[int, Any, float | None]] = field(default_factory=dict)


def state_of(doc: dict[str, Any]) -> BoardState:
    """The state snapshot `doc` describes."""
    state = BoardState(int(doc["revision"]))
    for e in doc["entries"]:
        cur = e["versions"][-1]
        deleted = cur.get("kind") == "delete"
        state.entries[e["key"]] = (
            cur["version"],
            cur["revision"],
            deleted,
            None if deleted else cur["value"],
        )
    for p in doc["proposals"]:
        state.proposals[(p["key"], p["proposer"])] = (p["revision"], p["value"], p["confidence"])
    return state


def replay(state: BoardState, events: list[tuple[bytes, dict[bytes, bytes]]]) -> BoardState:
    """`state` moved forward by raw log events (XRANGE replies) newer than its revision;
    raises SnapshotError on a gap (the log was trimmed past the snapshot)."""
    out = BoardState(state.revision, dict(state.entries), dict(state.proposals))
    for event_id, fields in events:
        rev = int(event_id.split(b"-", 1)[0])
        if rev <= out.revision:
            continue
        if rev != out.revision + 1:
            raise SnapshotError(f"the log skips from revision {out.revision} to {rev}")
        out.revision = rev
        try:
            event = parse_log_event(event_id, fields)
            merged = event.merged
        except CorruptEntryError as exc:
            raise SnapshotError(f"cannot replay the change log: {exc}") from None
        for op in event.ops:
            key, kind, version = op.key, op.kind, op.version
            if kind == "propose":
                payload = codec.decode_value(key, op.data)
                out.proposals[(key, event.writer)] = (
                    rev,
                    payload["value"],
                    payload["confidence"],
                )
                continue
            if kind == "delete":
                out.entries[key] = (version, rev, True, None)
            else:
                out.entries[key] = (version, rev, False, codec.decode_value(key, op.data))
            for proposer, revision in merged:
                held = out.proposals.get((key, proposer))
                if held is not None and held[0] == revision:
                    del out.proposals[(key, proposer)]
    return out
