"""The TUI's read model of entries and the change log: I/O-only reads the views call.

Everything here is a few round trips with a bound on what it reads, through
`blackboard.control.read`: the entry table reads keys by rank from the board's index (a
lexicographic zset) and the current record of only the rows on screen, pipelined; the log
view reads the tail of the change log. Nothing here loads the whole board. Imports the engine
(board, codec, proposals, decisions, control.read) and no textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blackboard.board.client import Board
from blackboard.board.proposals import divergent_keys, list_proposals
from blackboard.control import read
from blackboard.control.decisions import read_activation
from blackboard.errors import BlackboardError, CorruptEntryError
from blackboard.store import codec
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
    """Bounded reads of one board for the views (through `blackboard.control.read`)."""

    def __init__(self, board: Board) -> None:
        self.board = board

    async def revision(self) -> int:
        return await self.board.revision()

    # -- the index ---------------------------------------------------------------------------

    async def count(self, prefix: str = "") -> int:
        """Live keys starting with `prefix` (O(log n))."""
        return await read.index_count(self.board, prefix)

    async def rank(self, prefix: str) -> int:
        """How many live keys sort before `prefix` (the rank of its first key)."""
        return await read.index_rank(self.board, prefix)

    async def keys_at(self, start: int, stop: int) -> list[str]:
        """Live keys with index rank in [start, stop) (O(log n + m))."""
        return await read.index_keys(self.board, start, stop)

    async def divergent(self) -> list[str]:
        """Keys whose open proposals disagree, sorted."""
        return sorted(key for key, _ in await divergent_keys(self.board))

    # -- entries -----------------------------------------------------------------------------

    async def rows(self, keys: Sequence[str]) -> dict[str, EntryRow | None]:
        """The current version of each key, in one pipelined round trip; None for a key
        with no entry. A record that does not parse becomes a row carrying `error`."""
        out: dict[str, EntryRow | None] = {}
        for key, found in (await read.current_entries(self.board, keys)).items():
            if isinstance(found, CorruptEntryError):
                out[key] = EntryRow(key, 0, 0, "?", 0, None, "?", None, error=found.reason)
            elif isinstance(found, BlackboardError):
                out[key] = EntryRow(key, 0, 0, "?", 0, None, "?", None, error=str(found))
            else:
                out[key] = None if found is None else EntryRow.from_entry(found)
        return out

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
        """The controller's latest decisions about `key`, newest first."""
        return [decode_blob(b) for b in await read.decision_records(self.board, key, limit)]

    # -- the change log ----------------------------------------------------------------------

    async def log_tail(self, count: int, before: int | None = None) -> list[Change]:
        """Up to `count` log events before revision `before` (default: the newest), as
        changes in revision order (forged and malformed events are not shown)."""
        return await read.log_tail(self.board, count, before)
