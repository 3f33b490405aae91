"""Reading the change log: `board.watch()` (board layer; imports board helpers, codec).

Every commit appends one stream event with id ``<revision>-1`` carrying its operations, so a
watcher resumes from any retained revision with XREAD, and a gap between revisions can only
mean the log was trimmed under it: that raises HistoryTrimmedError rather than skipping.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from blackboard.codec import KINDS
from blackboard.entry import Change
from blackboard.errors import CorruptEntryError, HistoryTrimmedError
from blackboard.keys import check_pattern

if TYPE_CHECKING:
    from blackboard.board import Board


def parse_event(board: Board, event_id: bytes, fields: dict[bytes, bytes]) -> list[Change]:
    """The changes of one log event; raises CorruptEntryError for a malformed event."""
    try:
        revision = int(event_id.split(b"-", 1)[0])
        ts = int(fields[b"t"])
        writer = fields[b"w"].decode()
        activation = fields.get(b"a", b"").decode() or None
        out = []
        for i in range(1, int(fields[b"n"]) + 1):
            s = str(i).encode()
            key = fields[b"k" + s].decode()
            kind = KINDS[fields[b"o" + s]]
            value = board.decode_change_value(key, kind, fields[b"d" + s])
            out.append(
                Change(revision, key, int(fields[b"v" + s]), kind, value, writer, ts, activation)
            )
        return out
    except CorruptEntryError:
        raise
    except Exception as exc:
        raise CorruptEntryError(
            f"log event {event_id.decode(errors='replace')}", f"malformed ({exc!r})"
        ) from None


async def oldest_revision(board: Board) -> int | None:
    """Revision of the oldest event the log still holds, or None when it is empty."""
    first: Any = await board.redis.xrange(board.keys_.log, count=1)
    return int(first[0][0].split(b"-", 1)[0]) if first else None


async def watch_changes(
    board: Board, pattern: str, since: int | None, idle_timeout: float | None, block_ms: int
) -> AsyncIterator[Change]:
    from blackboard.board import wrap_redis_error

    check_pattern(pattern)
    match_all = pattern == "*"
    log = board.keys_.log
    try:
        if since is None:
            since = await board.revision()
        elif since > 0:
            oldest = await oldest_revision(board)
            current = await board.revision()
            if since < current and (oldest is None or oldest > since + 1):
                raise HistoryTrimmedError("revision", since + 1, oldest or current + 1)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    last = since
    idle_since = time.monotonic()
    block = block_ms
    if idle_timeout is not None:
        block = max(1, min(block_ms, int(idle_timeout * 1000)))
    while True:
        try:
            reply: Any = await board.redis.xread({log: f"{last}-1"}, count=512, block=block)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if not reply:
            if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                return
            continue
        idle_since = time.monotonic()
        for event_id, fields in reply[0][1]:
            revision = int(event_id.split(b"-", 1)[0])
            if revision != last + 1:
                raise HistoryTrimmedError("revision", last + 1, revision)
            last = revision
            for change in parse_event(board, event_id, fields):
                if match_all or fnmatchcase(change.key, pattern):
                    yield change
