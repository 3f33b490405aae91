"""Reading the facts of a run from the board itself (scenario layer; imports the board
layer: board, keys, codec, activation, decisions; and scenario.facts/workload/processes).

Entries are read raw (one pipelined HGETALL per entry hash, decoded with the codec) so that
every retained version is seen, tombstones included; activation records are found with a
SCAN over the board's activation keys (a dead letter is a record in state failed). Nothing
here writes.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError, ResponseError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.control.activation import GROUP, parse_record
from blackboard.control.decisions import controller_status
from blackboard.scenario.facts import (
    AckFact,
    ActivationFact,
    BoardFacts,
    ItemFacts,
    ProcessFact,
    Version,
)
from blackboard.scenario.processes import Supervisor
from blackboard.scenario.workload import AckLog, Item
from blackboard.store import codec

__all__ = ["History", "board_facts", "item_facts", "process_facts", "read_histories"]

History = tuple[int, list[Version]]
"""(oldest retained version, retained versions oldest first); (0, []) for no entry"""

_CHUNK = 500


def _parse_hash(key: str, raw: dict[bytes, bytes]) -> History:
    if not raw or b"v" not in raw:
        return 0, []
    versions = []
    for fld in sorted((f for f in raw if f.isdigit()), key=int):
        entry, data = codec.parse_record(key, int(fld), raw[fld])
        value = None if entry.deleted or not data else codec.decode_value(key, data)
        act = entry.causation.activation if entry.causation else None
        versions.append(
            Version(entry.version, entry.time_ms, value, entry.deleted, entry.writer, act)
        )
    oldest = int(raw.get(b"lo", b"1"))
    return oldest, versions


async def read_histories(board: Board, keys: list[str]) -> dict[str, History]:
    """Every retained version of each key, read in pipelined chunks."""
    out: dict[str, History] = {}
    unique = list(dict.fromkeys(keys))
    try:
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            async with board.redis.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hgetall(board.keys_.entry(key))
                replies: list[Any] = await pipe.execute()
            for key, raw in zip(chunk, replies, strict=True):
                out[key] = _parse_hash(key, raw)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return out


async def _activations(board: Board) -> list[ActivationFact]:
    prefix = board.keys_.activation("")
    names: list[bytes] = []
    async for name in board.redis.scan_iter(match=board.keys_.activation("*"), count=2000):
        names.append(name)
    out = []
    for i in range(0, len(names), _CHUNK):
        chunk = names[i : i + _CHUNK]
        async with board.redis.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.hgetall(name)
            replies: list[Any] = await pipe.execute()
        for name, raw in zip(chunk, replies, strict=True):
            if not raw:
                continue
            rec = parse_record(name.decode()[len(prefix) :], raw)
            out.append(
                ActivationFact(
                    rec["id"],
                    board.name,
                    rec["role"],
                    rec["key"],
                    rec["state"],
                    rec["escalated_from"],
                    rec["error"],
                    _int(raw.get(b"n"), 1),
                )
            )
    return out


def _int(raw: bytes | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


async def board_facts(
    board: Board, roles: set[str], counters: set[str], *, activations: bool = True
) -> BoardFacts:
    """Open, claimed, undelivered and waiting activations, counters and (optionally) every
    activation record of `board`. Raises BoardUnavailableError."""
    facts = BoardFacts(board.name)
    r = board.redis
    try:
        opened: Any = await r.hkeys(board.keys_.open_activations)
        facts.open_activations = sorted(k.decode() for k in opened)
        for role in sorted(roles):
            try:
                groups: Any = await r.xinfo_groups(board.keys_.queue(role))
            except ResponseError:  # no queue: nothing was ever granted to the role
                continue
            for g in groups:
                name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                if name == GROUP:
                    facts.pending[role] = int(g.get("pending") or 0)
                    facts.lag[role] = int(g.get("lag") or 0)
        status = await controller_status(board)
        facts.waiting = int(status.get("waiting", 0)) if status else 0
        for key in sorted(counters):
            entry = await board.get(key)
            facts.counters[key] = entry.value if entry is not None else None
        if activations:
            facts.activations = await _activations(board)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return facts


async def item_facts(
    boards: dict[str, Board],
    items: list[Item],
    acklog: AckLog,
    final: tuple[str, str | None],
    effects: list[tuple[str, str | None, bool]],
    render: Any,
) -> tuple[list[ItemFacts], list[AckFact]]:
    """Facts of every acknowledged item and every acknowledged write.

    `final` is (key template, board or None = the item's); `effects` are (key template,
    board or None, optional); `render(template, item)` fills a template in."""
    acked = {(a.board, a.key) for a in acklog.items()}
    chosen = [it for it in items if (it.board, it.key) in acked]
    wanted: dict[str, list[str]] = {}
    for it in chosen:
        wanted.setdefault(it.board, []).append(it.key)
        fk = it.key if final[0] == "{key}" else render(final[0], it)
        wanted.setdefault(final[1] or it.board, []).append(fk)
        for tpl, b, _ in effects:
            wanted.setdefault(b or it.board, []).append(render(tpl, it))
    for a in acklog.acks:
        wanted.setdefault(a.board, []).append(a.key)
    hist: dict[tuple[str, str], History] = {}
    for b, keys in wanted.items():
        for k, h in (await read_histories(boards[b], keys)).items():
            hist[(b, k)] = h
    out = []
    for it in chosen:
        own = hist[(it.board, it.key)][1]
        created = own[0].time_ms if own and own[0].version == 1 else None
        fk = it.key if final[0] == "{key}" else render(final[0], it)
        oldest, versions = hist[(final[1] or it.board, fk)]
        facts = ItemFacts(it.index, it.board, it.key, created, fk, versions, oldest)
        for tpl, b, optional in effects:
            ek = render(tpl, it)
            facts.effects[f"{b or it.board}:{ek}"] = (optional, hist[(b or it.board, ek)][1])
        out.append(facts)
    acks = []
    for a in acklog.acks:
        oldest, versions = hist[(a.board, a.key)]
        stored = next((v for v in versions if v.version == a.version), None)
        current = versions[-1].version if versions else 0
        acks.append(AckFact(a.kind, a.board, a.key, a.version, a.value, stored, current, oldest))
    return out, acks


def process_facts(sup: Supervisor, stop_codes: dict[str, int]) -> list[ProcessFact]:
    """Crashes (exits nobody caused), `stop` fault exit codes and the final stop's codes."""
    out = []
    for m in sup.procs.values():
        crashes = [f"exited with code {e.code} on its own" for e in m.exits if not e.expected]
        stops = [e.code for e in m.exits if e.cause.startswith("stop")]
        out.append(
            ProcessFact(m.name, m.spec.kind, m.starts, crashes, stop_codes.get(m.name), stops)
        )
    return out
