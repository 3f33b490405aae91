"""Reading the change log: `board.watch()` (board layer; imports events, functions,
transport; the Board only for typing: the client calls this module, never the other way).

Every commit appends one stream event with id ``<revision>-1`` carrying its operations, so a
watcher resumes from any retained revision. Events are read through the library's
``log_read``, which drops events no entry record backs (a role user may XADD to the log; see
docs/security.md), counted in ``board.forged_events``. A gap between revisions below the
oldest retained event means the log was trimmed under the watcher: HistoryTrimmedError,
never a silent skip; a gap above it is a revision no commit took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from blackboard import telemetry
from blackboard.board.events import decode_value, parse_log_event
from blackboard.errors import HistoryTrimmedError
from blackboard.store import functions
from blackboard.store.entry import Change
from blackboard.store.keys import check_pattern
from blackboard.store.transport import wrap_redis_error

if TYPE_CHECKING:
    from blackboard.board.client import Board

log_ = logging.getLogger("blackboard.watch")


def parse_event(board: Board, event_id: bytes, fields: dict[bytes, bytes]) -> list[Change]:
    """The changes of one log event; raises CorruptEntryError for a malformed event."""
    event = parse_log_event(event_id, fields)
    schemas = board.schemas
    return [event.change(op, decode_value(op.key, op.kind, op.data, schemas)) for op in event.ops]


def check_args(events: Sequence[tuple[Any, dict[bytes, bytes] | None]]) -> list[Any]:
    """The arguments of lua/log_check.lua for log events (id, fields); outcomes not included."""
    args: list[Any] = [0]
    for event_id, fields in events:
        if fields is None:
            continue
        try:
            n = int(fields[b"n"])
            ops = [
                part
                for i in range(1, n + 1)
                for part in (fields[b"k%d" % i], fields[b"v%d" % i], fields[b"o%d" % i])
            ]
        except (KeyError, ValueError):
            n, ops = 0, []  # malformed: the check refuses it (n = 0)
        args += [event_id, fields.get(b"w", b""), n, *ops]
        args[0] += 1
    return args


async def backed_events(
    board: Board, events: list[tuple[Any, dict[bytes, bytes]]]
) -> list[tuple[Any, dict[bytes, bytes]]]:
    """The log events (id, fields) that entry records back, in order; forged ones are dropped
    and counted in `board.forged_events`. Raises redis errors."""
    if not events:
        return []
    res: Any = await functions.LOG_CHECK(board.redis, [board.keys_.log], check_args(events))
    forged = set(res[0])
    if forged:
        board.forged_events += len(forged)
        telemetry.forged("watch", len(forged))
    return [(i, f) for i, f in events if i not in forged and str(i).encode() not in forged]


async def oldest_revision(board: Board) -> int | None:
    """Revision of the oldest event the log still holds, or None when it is empty."""
    first: Any = await board.redis.xrange(board.keys_.log, count=1)
    return int(first[0][0].split(b"-", 1)[0]) if first else None


async def watch_changes(
    board: Board, pattern: str, since: int | None, idle_timeout: float | None, block_ms: int
) -> AsyncIterator[Change]:
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
            # read through the library: events no entry record backs (a role user may XADD to
            # the log) are dropped in the server; the log's own ids still advance `last`
            res: Any = await functions.LOG_READ(board.redis, [log], [f"{last}-1", 512])
            events, dropped, top = res[0], res[1], res[2]
            if not top:
                reply: Any = await board.redis.xread({log: f"{last}-1"}, count=1, block=block)
                idle = time.monotonic() - idle_since
                if not reply and idle_timeout is not None and idle >= idle_timeout:
                    return
                continue
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        if dropped:
            board.forged_events += len(dropped)
            telemetry.forged("watch", len(dropped))
            log_.warning(
                "dropped %d log events that no entry record backs (forged?): %s",
                len(dropped), b", ".join(dropped[:5]).decode(errors="replace"),
            )  # fmt: skip
        idle_since = time.monotonic()
        for event_id, flat in events:
            revision = int(event_id.split(b"-", 1)[0])
            if revision > last + 1 and await _trimmed(board, last + 1):
                raise HistoryTrimmedError("revision", last + 1, revision)
            last = revision
            fields = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
            for change in parse_event(board, event_id, fields):
                if match_all or fnmatchcase(change.key, pattern):
                    yield change
        last = max(last, int(top.split(b"-", 1)[0]))


async def _trimmed(board: Board, wanted: int) -> bool:
    """Whether revision `wanted` was trimmed from the log, rather than skipped (a revision
    no event has: the counter stepped without a commit, or a forged event was dropped)."""
    oldest = await oldest_revision(board)
    return oldest is None or oldest > wanted
