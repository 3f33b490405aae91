"""Snapshots: the board as of one revision, for export, import and time travel (compactor
layer: imports the board layer, codec and proposals; the CLI imports it).

A snapshot is a document (a dict) with every entry as of revision R (its version there, or
all retained versions up to R with ``history=True``; tombstones too, so versions never
restart after an import) and every proposal open at R. Proposals and R are read together
in one MULTI; entries are read afterwards and rolled back to R through their history, and
the read starts over (a few times) if history needed for that was trimmed meanwhile.

Restoring one into an empty board, and replaying the log over one, live in restore.py.

Formats: msgpack (values as they are) or JSON, where a value JSON cannot carry exactly
(bytes, non-string map keys, huge integers) is written as ``value_msgpack`` (base64).
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

import msgpack
import orjson
from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.proposals import parse_proposal
from blackboard.board.retention import scan_step
from blackboard.errors import InvalidKeyError, SnapshotError
from blackboard.store import codec
from blackboard.store.entry import Causation
from blackboard.store.keys import check_key

__all__ = ["FORMAT", "FORMAT_VERSION", "check_document", "dumps", "loads", "take_snapshot"]

FORMAT = "blackboard-snapshot"
FORMAT_VERSION = 1
_BATCH = 200


def _causation(c: Causation | None) -> dict[str, Any] | None:
    return None if c is None else {"activation": c.activation, "depth": c.depth, "trace": c.trace}


async def _proposals_at_once(board: Board, attempts: int) -> tuple[int, list[dict[str, Any]]]:
    """The board revision and every open proposal, read in one MULTI."""
    k = board.keys_
    for _ in range(attempts):
        members: Any = await board.redis.zrange(k.proposed, 0, -1)
        keys = sorted(m.decode() for m in members)
        async with board.redis.pipeline(transaction=True) as pipe:
            pipe.get(k.rev)
            pipe.zrange(k.proposed, 0, -1)
            for key in keys:
                pipe.hgetall(k.proposals(key))
            res = await pipe.execute()
        if not {m.decode() for m in res[1]} <= set(keys):
            continue  # an entry got its first proposal in between: read again
        out = []
        for key, raw in zip(keys, res[2:], strict=True):
            for proposer, record in sorted(raw.items()):
                p = parse_proposal(key, proposer.decode(), record)
                out.append(
                    {
                        "key": key,
                        "proposer": p.proposer,
                        "revision": p.revision,
                        "time_ms": p.time_ms,
                        "confidence": p.confidence,
                        "base_version": p.base_version,
                        "causation": _causation(p.causation),
                        "value": p.value,
                    }
                )
        return int(res[0] or 0), out
    raise SnapshotError("proposals kept changing; try again on a quieter board")


def _version_doc(key: str, version: int, record: bytes) -> dict[str, Any]:
    entry, value_bytes = codec.parse_record(key, version, record)
    value = None if entry.deleted else codec.decode_value(key, value_bytes)
    return {
        "version": version,
        "revision": entry.revision,
        "time_ms": entry.time_ms,
        "kind": entry.kind,
        "writer": entry.writer,
        "schema": entry.schema,
        "schema_version": entry.schema_version,
        "causation": _causation(entry.causation),
        "value": value,
    }


class _Trimmed(Exception):
    """History needed to roll an entry back to R is gone: read again at a newer R."""


def _entry_at(key: str, raw: dict[bytes, bytes], at: int, history: bool) -> dict[str, Any] | None:
    versions = sorted(int(f) for f in raw if f.isdigit())
    docs = []
    for v in versions:
        doc = _version_doc(key, v, raw[str(v).encode()])
        if doc["revision"] <= at:
            docs.append(doc)
    if not docs:
        if versions and versions[0] > 1:
            raise _Trimmed(key)
        return None  # created after R
    return {"key": key, "versions": docs if history else docs[-1:]}


async def take_snapshot(
    board: Board, *, history: bool = False, attempts: int = 5
) -> dict[str, Any]:
    """The board as of its current revision (see the module docstring).
    Raises SnapshotError when writes keep outrunning the read, BoardUnavailableError."""
    try:
        for _ in range(attempts):
            revision, proposals = await _proposals_at_once(board, attempts)
            try:
                entries = await _entries_at(board, revision, history)
            except _Trimmed:
                continue
            return {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "board": board.name,
                "revision": revision,
                "time_ms": int(time.time() * 1000),
                "history": history,
                "entries": entries,
                "proposals": proposals,
            }
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    raise SnapshotError("history kept being trimmed under the snapshot; try again")


async def _entries_at(board: Board, revision: int, history: bool) -> list[dict[str, Any]]:
    pattern = board.keys_.entry_pattern("*")
    names: set[str] = set()
    cursor = 0
    while True:
        cursor, found = await scan_step(board, cursor, pattern, 1000)
        names.update(n.decode() if isinstance(n, bytes) else n for n in found)
        if cursor == 0:
            break
    ordered = sorted(names)
    out = []
    for i in range(0, len(ordered), _BATCH):
        chunk = ordered[i : i + _BATCH]
        async with board.redis.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.hgetall(name)
            raws = await pipe.execute()
        for name, raw in zip(chunk, raws, strict=True):
            if raw:
                found_entry = _entry_at(board.keys_.key_of_entry(name), raw, revision, history)
                if found_entry is not None:
                    out.append(found_entry)
    return out


# -- formats -------------------------------------------------------------------------------


def _json_exact(v: Any) -> bool:
    if v is None or isinstance(v, bool | str):
        return True
    if isinstance(v, int):
        return -(2**63) <= v < 2**64
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_json_exact(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_exact(x) for k, x in v.items())
    return False


def _to_json(item: dict[str, Any]) -> dict[str, Any]:
    value = item.get("value")
    if _json_exact(value):
        return item
    out = {k: v for k, v in item.items() if k != "value"}
    out["value_msgpack"] = base64.b64encode(msgpack.packb(value, use_bin_type=True)).decode()
    return out


def _from_json(item: dict[str, Any]) -> dict[str, Any]:
    if "value_msgpack" not in item:
        return item
    out = {k: v for k, v in item.items() if k != "value_msgpack"}
    out["value"] = msgpack.unpackb(
        base64.b64decode(item["value_msgpack"]), raw=False, strict_map_key=False
    )
    return out


def dumps(doc: dict[str, Any], fmt: str = "json") -> bytes:
    """The snapshot as JSON (one line) or msgpack bytes."""
    if fmt == "msgpack":
        return bytes(msgpack.packb(doc, use_bin_type=True))
    if fmt != "json":
        raise ValueError(f"unknown snapshot format {fmt!r}: use json or msgpack")
    out = dict(doc)
    out["entries"] = [
        {**e, "versions": [_to_json(v) for v in e["versions"]]} for e in doc["entries"]
    ]
    out["proposals"] = [_to_json(p) for p in doc["proposals"]]
    return orjson.dumps(out) + b"\n"


def loads(data: bytes) -> dict[str, Any]:
    """A snapshot document from JSON or msgpack bytes; raises SnapshotError."""
    is_json = data.lstrip()[:1] == b"{"
    try:
        if is_json:
            doc = orjson.loads(data)
        else:
            doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # orjson and msgpack raise several unrelated types
        raise SnapshotError(f"not a snapshot: {exc}") from None
    check_document(doc)
    if is_json:
        try:
            doc["entries"] = [
                {**e, "versions": [_from_json(v) for v in e["versions"]]} for e in doc["entries"]
            ]
            doc["proposals"] = [_from_json(p) for p in doc["proposals"]]
        except Exception as exc:  # bad base64 or msgpack inside
            raise SnapshotError(f"a value_msgpack cannot be read: {exc}") from None
    return doc  # type: ignore[no-any-return]


def check_document(doc: Any) -> None:
    """Raise SnapshotError unless `doc` is a snapshot this version can restore."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotError(f"not a snapshot: no 'format': {FORMAT!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(f"snapshot format_version {doc.get('format_version')!r} is unknown")
    revision = doc.get("revision")
    if not isinstance(revision, int) or revision < 0:
        raise SnapshotError("snapshot 'revision' must be an integer >= 0")
    try:
        for e in doc["entries"]:
            check_key(e["key"])
            numbers = [v["version"] for v in e["versions"]]
            if not numbers or any(not isinstance(n, int) or n < 1 for n in numbers):
                raise SnapshotError(f"entry {e['key']!r}: versions must be integers >= 1")
            if numbers != sorted(set(numbers)):
                raise SnapshotError(f"entry {e['key']!r}: versions must be increasing")
            for v in e["versions"]:
                if not isinstance(v["revision"], int) or not 0 < v["revision"] <= revision:
                    raise SnapshotError(f"entry {e['key']!r}: a revision outside 1..{revision}")
        for p in doc["proposals"]:
            check_key(p["key"])
            if not isinstance(p["revision"], int) or not 0 < p["revision"] <= revision:
                raise SnapshotError(f"proposal for {p['key']!r}: a revision outside 1..{revision}")
    except (KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"malformed snapshot: missing or wrong {exc}") from None
    except InvalidKeyError as exc:
        raise SnapshotError(f"malformed snapshot: {exc}") from None
