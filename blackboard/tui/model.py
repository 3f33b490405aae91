"""The TUI's read model of entries and the change log: I/O-only reads the views call.

Everything here is a few round trips with a bound on what it reads: the entry table reads
keys by rank from the board's index (``bb:{B}:index``, a lexicographic zset) and the current
record of only the rows on screen, pipelined; the log view reads the tail of the change log
with XREVRANGE. Nothing here loads the whole board. Imports the engine (board, codec, keys,
proposals, decisions, watch, scripts) and no textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.proposals import divergent_keys, list_proposals
from blackboard.board.watch import backed_events, parse_event
from blackboard.control.decisions import read_activation
from blackboard.errors import BlackboardError, CorruptEntryError
from blackboard.store import codec, functions
from blackboard.store.entry import Change, Entry, Proposal

__all__ = ["BoardReader", "EntryDetail", "EntryRow"]


@dataclass(frozen=True, slots=True)
class EntryRow:
    """What the entry table shows of one entry's current version."""

    key: str
    version: int
    revision: int
    writer: str
    time_ms: int
    schema: str | None
    kind: str
    value: Any
    deleted: bool = False
    activation: str | None = None
    error: str | None = None

    @classmethod
    def from_entry(cls, e: Entry) -> EntryRow:
        return cls(
            e.key,
            e.version,
            e.revision,
            e.writer,
            e.time_ms,
            e.schema,
            e.kind,
            e.value,
            e.deleted,
            e.causation.activation if e.causation else None,
        )

    def changed(self, c: Change) -> EntryRow:
        """This row after change `c` (the log carries no schema: it stays as it was)."""
        return EntryRow(
            self.key,
            c.version,
            c.revision,
            c.writer,
            c.time_ms,
            self.schema,
            c.kind,
            c.value,
            c.deleted,
            c.activation,
        )


@dataclass(frozen=True, slots=True)
class EntryDetail:
    """An entry's retained versions (newest first), open proposals and causation."""

    key: str
    versions: list[Entry]
    proposals: list[Proposal]
    activation: dict[str, Any] | None
    decisions: list[Any]


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace")


def decode_blob(raw: bytes) -> Any:
    """A stored field as text, or as the msgpack it holds when it is not text."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        pass
    try:
        return codec.decode_value("?", raw)
    except CorruptEntryError:
        return raw.hex()


class BoardReader:
    """Bounded reads of one board for the views."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.redis: Any = board.redis
        self.k = board.keys_

    async def revision(self) -> int:
        return await self.board.revision()

    # -- the index ---------------------------------------------------------------------------

    @staticmethod
    def _range(prefix: str) -> tuple[bytes, bytes]:
        if not prefix:
            return b"-", b"+"
        p = prefix.encode()
        return b"[" + p, b"[" + p + b"\xff"

    async def count(self, prefix: str = "") -> int:
        """Live keys starting with `prefix` (ZLEXCOUNT: O(log n))."""
        lo, hi = self._range(prefix)
        try:
            return int(await self.redis.zlexcount(self.k.index, lo, hi))
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc

    async def rank(self, prefix: str) -> int:
        """How many live keys sort before `prefix` (the rank of its first key)."""
        if not prefix:
            return 0
        try:
            return int(await self.redis.zlexcount(self.k.index, b"-", b"(" + prefix.encode()))
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc

    async def keys_at(self, start: int, stop: int) -> list[str]:
        """Live keys with index rank in [start, stop) (ZRANGE by rank: O(log n + m))."""
        if stop <= start:
            return []
        try:
            raw: Any = await self.redis.zrange(self.k.index, start, stop - 1)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        return [_text(m) for m in raw]

    async def divergent(self) -> list[str]:
        """Keys whose open proposals disagree, sorted."""
        return sorted(key for key, _ in await divergent_keys(self.board))

    # -- entries -----------------------------------------------------------------------------

    async def rows(self, keys: Sequence[str]) -> dict[str, EntryRow | None]:
        """The current version of each key, in one pipelined round trip; None for a key
        with no entry. A record that does not parse becomes a row carrying `error`."""
        if not keys:
            return {}
        try:
            commands = [functions.READ.command([self.k.entry(key)], ["c"]) for key in keys]
            raw = await functions.pipelined(self.redis, commands)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        out: dict[str, EntryRow | None] = {}
        for key, res in zip(keys, raw, strict=True):
            out[key] = self._row(key, res)
        return out

    def _row(self, key: str, res: Any) -> EntryRow | None:
        if res is None or isinstance(res, Exception):
            if isinstance(res, Exception):
                return EntryRow(key, 0, 0, "?", 0, None, "?", None, error=str(res))
            return None
        if res[0] != b"ok":
            why = _text(res[1]) if len(res) > 1 and isinstance(res[1], bytes) else str(res)
            return EntryRow(key, 0, 0, "?", 0, None, "?", None, error=why)
        try:
            entry, value_bytes = codec.parse_record(key, int(res[1]), res[2])
            value = None if entry.deleted else codec.decode_value(key, value_bytes)
        except CorruptEntryError as exc:
            return EntryRow(key, int(res[1]), 0, "?", 0, None, "?", None, error=exc.reason)
        row = EntryRow.from_entry(entry)
        return EntryRow(
            row.key,
            row.version,
            row.revision,
            row.writer,
            row.time_ms,
            row.schema,
            row.kind,
            value,
            row.deleted,
            row.activation,
        )

    async def detail(self, key: str, *, versions: int = 64) -> EntryDetail:
        """An entry's versions, proposals, the activation that wrote its current version
        and the controller's latest decisions about it. Raises BlackboardError."""
        history = await self.board.history(key, limit=versions)
        proposals = await list_proposals(self.board, key)
        activation = None
        if history and history[0].causation and history[0].causation.activation:
            activation = await self.activation(history[0].causation.activation)
        return EntryDetail(key, history, proposals, activation, await self.decisions(key))

    async def activation(self, activation_id: str) -> dict[str, Any] | None:
        """An activation record (``act:<id>``, as `activation.parse_record` reads it); None
        when it is gone."""
        return await read_activation(self.board, activation_id)

    async def decisions(self, key: str, limit: int = 20) -> list[Any]:
        """The controller's latest decisions about `key` (``why:<key>``), newest first."""
        try:
            raw: Any = await self.redis.lrange(self.k.decisions(key), 0, limit - 1)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        return [decode_blob(b) for b in raw]

    # -- the change log ----------------------------------------------------------------------

    async def log_tail(self, count: int, before: int | None = None) -> list[Change]:
        """Up to `count` log events before revision `before` (default: the newest), as
        changes in revision order."""
        hi = "+" if before is None else f"{before - 1}-1"
        if before is not None and before <= 1:
            return []
        try:
            raw: Any = await self.redis.xrevrange(self.k.log, hi, "-", count=count)
            raw = await backed_events(self.board, list(raw))  # forged events are not shown
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        out: list[Change] = []
        for event_id, fields in reversed(raw):
            try:
                out.extend(parse_event(self.board, event_id, fields))
            except BlackboardError:
                continue  # a malformed event is shown by nothing rather than stopping the view
        return out
