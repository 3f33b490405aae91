"""The read API of the control plane: what the edges (CLI, TUI, scenario runner) show of a
running system, as typed, frozen records (control layer; imports board, board.watch,
store.codec and store.functions, and activation, decisions, policy_board, steering).

The edges never name a Redis key; everything they read of the controller's and the agents'
state comes through here, each read a few pipelined round trips bounded by what is open
(never the entries of the board):

- agents: `heartbeats` / `heartbeat` / `agent_names` (the agents' presence records), and
  `ControlReader.agents` (the same with the claims each holds and its role's breaker);
- the leader: `lease_holder` (who holds the controller lease), `ControlReader.status` and
  `breakers` (the leader's published status, ``ctl:state``);
- activations: `open_activation_ids`, `queue_counts` (consumer group ``agents`` of a role's
  queue), `dead_letter_ids`, `activation_records` / `all_activations` (``act:<id>``),
  `ControlReader.open_activations` / `claims` / `activations` (by state, for the screens);
- roles as operators steer them and scheduled retries come through `steering`;
- decisions: `ControlReader.decisions` (``why:<key>``);
- entries for views that page through a large board: `index_count`, `index_rank`,
  `index_keys` (the board's lexicographic index of live keys, by rank), `current_entries`
  (the current version of only the keys on screen, pipelined), `decision_records`, and
  `log_tail` (the newest events of the change log, forged ones dropped);
- retained versions of entries: `retained_histories` (what the scenario runner checks).

Formats are those written by controller.py, agent_runtime.py, activation.py and
decisions.py. A record that does not decode raises CorruptEntryError naming the record and
what was wrong, unless the reader is asked to skip such records (views that must keep
drawing). Imports no textual.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
from redis.exceptions import RedisError, ResponseError

from blackboard.board.client import Board, wrap_redis_error
from blackboard.board.watch import backed_events, parse_event
from blackboard.control import steering
from blackboard.control.activation import GROUP, RELEASED, parse_record
from blackboard.control.decisions import controller_status
from blackboard.control.policy_board import POLICY_KEY, load_policy
from blackboard.errors import BlackboardError, CorruptEntryError
from blackboard.store import codec, functions
from blackboard.store.entry import Change, Entry

__all__ = [
    "ACTIVATION_STATES",
    "ActivationInfo",
    "ActivationRecord",
    "ActivationRow",
    "AgentInfo",
    "ControlReader",
    "DecisionInfo",
    "Heartbeat",
    "QueueCounts",
    "RetainedHistory",
    "RetainedVersion",
    "RoleInfo",
    "activation_records",
    "agent_names",
    "all_activations",
    "current_entries",
    "dead_letter_ids",
    "decision_records",
    "heartbeat",
    "heartbeats",
    "index_count",
    "index_keys",
    "index_rank",
    "lease_holder",
    "log_tail",
    "open_activation_ids",
    "queue_counts",
    "retained_histories",
]

ACTIVATION_STATES = ("running", "queued", "waiting", "retrying", "failed")
"""The activations screen's states: claimed by an agent (or settling); granted and not
taken yet (or released by a stopping agent); a candidate the controller holds on its
agenda; waiting for the next attempt; a dead letter."""

OPEN_LIMIT = 5000


def _s(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _unpack(raw: Any) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:
        return None


@dataclass(frozen=True, slots=True)
class ActivationInfo:
    """An activation granted and not finished: where it is and why it was granted.
    `state` is "queued" (not delivered yet), "claimed" (an agent holds it), "released"
    (a stopping agent gave it back) or "settling" (acknowledged, the controller has not
    recorded the outcome yet)."""

    id: str
    role: str
    key: str
    version: int
    rule: str
    priority: int
    depth: int
    granted_ms: int
    state: str
    consumer: str | None = None
    idle_ms: int = 0
    deliveries: int = 0
    entry_id: str = ""
    why: list[str] = field(default_factory=list)
    escalated_from: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """One agent process from its heartbeat, with the claims it holds now."""

    name: str
    role: str
    host: str
    pid: int
    beat_ms: int
    started_ms: int
    concurrency: int
    inflight: int
    done: int
    failed: int
    lost: int
    breaker: str
    claims: list[ActivationInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DecisionInfo:
    """One controller decision about an entry (granted, refused, waiting, pending)."""

    what: str
    key: str
    version: int
    revision: int
    role: str
    rule: str
    reasons: list[str]
    activation: str | None
    time_ms: int


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """A role as operators steer it (`blackboard.control.steering.roles`): `mode` running, paused
    or draining (`drained` once nothing is in flight), who set it, why and when, the
    record's `version` (what a command from this view expects), its breaker and counts."""

    role: str
    mode: str = "running"
    by: str = ""
    reason: str = ""
    time_ms: int = 0
    version: int = 0
    drained: bool = False
    breaker: str = "closed"
    breaker_held: str = ""
    pending: int = 0
    waiting: int = 0
    in_flight: int = 0
    retrying: int = 0

    @property
    def steering(self) -> str:
        """How the role is steered, in a few words."""
        if self.mode == "running":
            return "running"
        word = "drained" if self.mode == "draining" and self.drained else self.mode
        return f"{word} by {self.by}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class ActivationRow:
    """One line of the activations screen. `when_ms` is when it was granted (running,
    queued), started waiting (waiting), is due (retrying) or failed (failed); `why` is the
    guard that holds it (waiting), its last error (retrying, failed) or why it was granted."""

    state: str
    id: str
    role: str
    key: str
    version: int
    rule: str = ""
    attempt: int = 1
    when_ms: int = 0
    agent: str = ""
    why: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """An agent's presence record, as its runtime last wrote it (once a second or so):
    `record` is the whole decoded record (for JSON output and counters added later)."""

    name: str
    role: str
    host: str
    pid: int
    beat_ms: int
    started_ms: int
    concurrency: int
    inflight: int
    done: int
    failed: int
    lost: int
    released: int
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def decode(cls, name: str, blob: Any) -> Heartbeat:
        """Decode one stored record. Raises CorruptEntryError naming the agent."""
        what = f"heartbeat of agent {name}"
        try:
            record = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        except Exception as exc:
            raise CorruptEntryError(what, f"not msgpack ({exc})") from None
        if not isinstance(record, dict):
            raise CorruptEntryError(what, f"expected a map, found {type(record).__name__}")
        if not isinstance(record.get("role"), str):
            raise CorruptEntryError(what, f"expected a role name, found {record.get('role')!r}")
        ints = {}
        for f in ("pid", "beat_ms", "started_ms", "concurrency", "inflight", "done", "failed",
                  "lost", "released"):  # fmt: skip
            value = record.get(f, 1 if f == "concurrency" else 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise CorruptEntryError(what, f"expected an integer {f}, found {value!r}")
            ints[f] = value
        return cls(name, record["role"], str(record.get("host", "")), record=record, **ints)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A role's queue as consumer group ``agents`` sees it: entries not delivered to an
    agent yet, and delivered and not acknowledged (running, or its agent died)."""

    queued: int = 0
    claimed: int = 0


@dataclass(frozen=True, slots=True)
class ActivationRecord:
    """An activation's record (``act:<id>``, as `activation.parse_record` reads it) with
    its attempt number and, for a scheduled retry, when it is due."""

    id: str
    role: str
    key: str
    version: int
    revision: int
    rule: str
    priority: int
    depth: int
    state: str
    granted_ms: int
    ended_ms: int
    attempt: int
    due_ms: int | None = None
    agent: str | None = None
    error: str | None = None
    escalated_from: str | None = None
    claim: str | None = None
    trace: str | None = None
    why: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def decode(cls, activation_id: str, raw: dict[bytes, bytes]) -> ActivationRecord:
        """Decode one stored record. Raises CorruptEntryError naming the activation."""
        try:
            rec = parse_record(activation_id, raw)
            attempt = int(raw.get(b"n", 1))
            due = int(raw.get(b"due", 0)) if rec["state"] == "retrying" else None
        except Exception as exc:
            raise CorruptEntryError(f"activation {activation_id}", str(exc)) from None
        return cls(
            rec["id"], rec["role"], rec["key"], rec["version"], rec["revision"], rec["rule"],
            rec["priority"], rec["depth"], rec["state"], rec["granted_ms"], rec["ended_ms"],
            attempt, due, rec["agent"], rec["error"], rec["escalated_from"], rec["claim"],
            rec["trace"], tuple(str(w) for w in rec["why"] or ()), dict(rec["context"] or {}),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RetainedVersion:
    """One retained version of an entry, its value decoded (None when deleted)."""

    entry: Entry
    value: Any


@dataclass(frozen=True, slots=True)
class RetainedHistory:
    """Every version of an entry the board still holds, oldest first, and the oldest version
    number it keeps (0 with no versions: the key was never written)."""

    oldest: int = 0
    versions: tuple[RetainedVersion, ...] = ()


# -- agents ----------------------------------------------------------------------------------


async def heartbeats(
    board: Board, *, on_corrupt: Literal["raise", "skip"] = "raise"
) -> dict[str, Heartbeat]:
    """Every agent's presence record by agent name, sorted. A record that does not decode
    raises CorruptEntryError, or is left out with ``on_corrupt="skip"`` (views that must
    keep drawing). Raises BoardUnavailableError."""
    try:
        raw: Any = await board.redis.hgetall(board.keys_.agents)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out = {}
    for name, blob in sorted(raw.items()):
        try:
            out[_s(name)] = Heartbeat.decode(_s(name), blob)
        except CorruptEntryError:
            if on_corrupt == "raise":
                raise
    return out


async def heartbeat(board: Board, name: str) -> Heartbeat | None:
    """Agent `name`'s presence record; None when it has none. Raises CorruptEntryError,
    BoardUnavailableError."""
    try:
        raw: Any = await board.redis.hget(board.keys_.agents, name)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return None if raw is None else Heartbeat.decode(name, raw)


async def agent_names(board: Board) -> set[str]:
    """The names of the agents with a presence record (one cheap round trip)."""
    try:
        raw: Any = await board.redis.hkeys(board.keys_.agents)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return {_s(n) for n in raw}


# -- the leader ------------------------------------------------------------------------------


async def lease_holder(board: Board) -> str | None:
    """Who holds the controller lease (``<host>:<pid>:<name>``), None when no controller
    leads. Raises BoardUnavailableError."""
    try:
        raw = await board.redis.get(board.keys_.controller_lease)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return None if raw is None else _s(raw)


# -- activations -----------------------------------------------------------------------------


async def open_activation_ids(board: Board) -> list[str]:
    """The activations granted and not finished, sorted."""
    try:
        raw: Any = await board.redis.hkeys(board.keys_.open_activations)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return sorted(_s(i) for i in raw)


async def queue_counts(board: Board, role: str) -> QueueCounts:
    """`role`'s queue as the agents' consumer group sees it: zeros when there is no queue
    or no group yet (no agent of the role, or human, has read it: nothing was delivered)."""
    try:
        groups: Any = await board.redis.xinfo_groups(board.keys_.queue(role))
    except ResponseError:  # no queue yet
        return QueueCounts()
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    for g in groups:
        if _s(g.get("name", b"")) == GROUP:
            return QueueCounts(_count(g.get("lag")), _count(g.get("pending")))
    return QueueCounts()


def _count(value: Any) -> int:
    return value if isinstance(value, int) else 0


async def dead_letter_ids(board: Board) -> list[str]:
    """The ids of the activations that failed for good, oldest first
    (`steering.dead_letters` reads them with their records, newest first)."""
    try:
        raw: Any = await board.redis.zrange(board.keys_.dead_letters, 0, -1)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return [_s(i) for i in raw]


async def activation_records(
    board: Board, ids: Iterable[str]
) -> dict[str, ActivationRecord | None]:
    """The records of activations `ids` in one pipelined round trip; None for one that is
    gone (swept). Raises CorruptEntryError, BoardUnavailableError."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    try:
        async with board.redis.pipeline(transaction=False) as pipe:
            for act_id in ids:
                pipe.hgetall(board.keys_.activation(act_id))
            replies: list[Any] = await pipe.execute()
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return {
        act_id: ActivationRecord.decode(act_id, raw) if raw else None
        for act_id, raw in zip(ids, replies, strict=True)
    }


async def all_activations(board: Board, chunk: int = 500) -> list[ActivationRecord]:
    """Every activation record the board still holds (a SCAN of them: for checks after a
    run, not for views). Raises CorruptEntryError, BoardUnavailableError."""
    prefix = board.keys_.activation("")
    try:
        ids = [
            _s(name)[len(prefix) :]
            async for name in board.redis.scan_iter(match=prefix + "*", count=2000)
        ]
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out: list[ActivationRecord] = []
    for i in range(0, len(ids), chunk):
        found = await activation_records(board, ids[i : i + chunk])
        out.extend(rec for rec in found.values() if rec is not None)
    return out


# -- entries ---------------------------------------------------------------------------------


async def retained_histories(
    board: Board, keys: Iterable[str], chunk: int = 500
) -> dict[str, RetainedHistory]:
    """Every version the board still holds of each of `keys` (deleted ones included), read
    in pipelined chunks. Raises CorruptEntryError, BoardUnavailableError."""
    unique = list(dict.fromkeys(keys))
    out: dict[str, RetainedHistory] = {}
    try:
        for i in range(0, len(unique), chunk):
            part = unique[i : i + chunk]
            async with board.redis.pipeline(transaction=False) as pipe:
                for key in part:
                    pipe.hgetall(board.keys_.entry(key))
                replies: list[Any] = await pipe.execute()
            for key, raw in zip(part, replies, strict=True):
                out[key] = _retained(key, raw)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return out


def _lex_range(prefix: str) -> tuple[bytes, bytes]:
    if not prefix:
        return b"-", b"+"
    p = prefix.encode()
    return b"[" + p, b"[" + p + b"\xff"


async def index_count(board: Board, prefix: str = "") -> int:
    """Live keys starting with `prefix` (ZLEXCOUNT on the index: O(log n))."""
    lo, hi = _lex_range(prefix)
    try:
        return int(await board.redis.zlexcount(board.keys_.index, lo, hi))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc


async def index_rank(board: Board, prefix: str) -> int:
    """How many live keys sort before `prefix` (the rank of its first key)."""
    if not prefix:
        return 0
    try:
        return int(await board.redis.zlexcount(board.keys_.index, b"-", b"(" + prefix.encode()))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc


async def index_keys(board: Board, start: int, stop: int) -> list[str]:
    """Live keys with index rank in [start, stop) (by rank: O(log n + m))."""
    if stop <= start:
        return []
    try:
        raw: Any = await board.redis.zrange(board.keys_.index, start, stop - 1)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return [_s(m) for m in raw]


async def current_entries(
    board: Board, keys: Iterable[str]
) -> dict[str, Entry | BlackboardError | None]:
    """The current version of each key with its value decoded, in one pipelined round trip:
    None for a key with no entry, and for one that cannot be read the error saying why
    (CorruptEntryError for a record that does not parse), so one bad entry does not hide the
    others. Raises BoardUnavailableError."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    try:
        commands = [functions.READ.command([board.keys_.entry(key)], ["c"]) for key in keys]
        replies = await functions.pipelined(board.redis, commands)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out: dict[str, Entry | BlackboardError | None] = {}
    for key, res in zip(keys, replies, strict=True):
        out[key] = _current(key, res)
    return out


def _current(key: str, res: Any) -> Entry | BlackboardError | None:
    if res is None:
        return None
    if isinstance(res, RedisError):
        return wrap_redis_error(res)
    if isinstance(res, Exception):
        return BlackboardError(str(res))
    if res[0] != b"ok":
        why = _s(res[1]) if len(res) > 1 and isinstance(res[1], bytes) else str(res)
        return CorruptEntryError(key, why)
    try:
        entry, value_bytes = codec.parse_record(key, int(res[1]), res[2])
        value = None if entry.deleted else codec.decode_value(key, value_bytes)
    except CorruptEntryError as exc:
        return exc
    return Entry(
        key, value, entry.version, entry.revision, entry.writer, entry.time_ms, entry.schema,
        entry.schema_version, entry.causation, entry.deleted, entry.kind,
    )  # fmt: skip


async def decision_records(board: Board, key: str, limit: int = 20) -> list[bytes]:
    """The controller's latest decision records about `key`, newest first, as stored
    (`ControlReader.decisions` decodes them; a view may show a record it cannot decode)."""
    try:
        raw: Any = await board.redis.lrange(board.keys_.decisions(key), 0, limit - 1)
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    return list(raw)


async def log_tail(board: Board, count: int, before: int | None = None) -> list[Change]:
    """Up to `count` change-log events before revision `before` (default: the newest), as
    changes in revision order. Events the entries do not back (forged) are dropped, and a
    malformed event is left out rather than stopping the reader."""
    if before is not None and before <= 1:
        return []
    hi = "+" if before is None else f"{before - 1}-1"
    try:
        raw: Any = await board.redis.xrevrange(board.keys_.log, hi, "-", count=count)
        raw = await backed_events(board, list(raw))
    except RedisError as exc:
        raise wrap_redis_error(exc) from exc
    out: list[Change] = []
    for event_id, fields in reversed(raw):
        try:
            out.extend(parse_event(board, event_id, fields))
        except BlackboardError:
            continue
    return out


def _retained(key: str, raw: dict[bytes, bytes]) -> RetainedHistory:
    if not raw or b"v" not in raw:
        return RetainedHistory()
    versions = []
    for fld in sorted((f for f in raw if f.isdigit()), key=int):
        entry, data = codec.parse_record(key, int(fld), raw[fld])
        value = None if entry.deleted or not data else codec.decode_value(key, data)
        versions.append(RetainedVersion(entry, value))
    try:
        oldest = int(raw.get(b"lo", b"1"))
    except ValueError:
        raise CorruptEntryError(key, f"expected an oldest version, found {raw[b'lo']!r}") from None
    return RetainedHistory(oldest, tuple(versions))


class ControlReader:
    """Bounded reads of one board's control plane for the views."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.redis: Any = board.redis
        self.k = board.keys_

    async def human_role(self) -> str:
        """The policy's human role ("human" when no valid policy is on the board)."""
        try:
            loaded = await load_policy(self.board)
        except BlackboardError:
            return "human"
        return loaded[0].escalation.human if loaded else "human"

    async def policy(self) -> tuple[str, int] | None:
        """The policy in force: its name and the version of ``sys/policy``; None when none
        was applied (or the newest version is invalid: ("invalid", version))."""
        try:
            loaded = await load_policy(self.board)
        except BlackboardError:
            entry = await self.board.get(POLICY_KEY)
            return None if entry is None else ("invalid", entry.version)
        return None if loaded is None else (loaded[0].name or "unnamed", loaded[1].version)

    async def status(self) -> dict[str, Any] | None:
        """The leading controller's last published status (roles, breakers), or None."""
        return await controller_status(self.board)

    async def breakers(self) -> dict[str, str]:
        """Breaker state per role: the controller's last status, else the state it saved
        when a breaker last changed (a role never mentioned has a closed breaker)."""
        try:
            raw: Any = await self.redis.hgetall(self.k.controller_state)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        out: dict[str, str] = defaultdict(lambda: "closed")
        for name, blob in raw.items():
            field = _s(name)
            saved = _unpack(blob)
            if field.startswith("breaker:") and isinstance(saved, dict):
                out[field[8:]] = str(saved.get("state", "?"))
        status = _unpack(raw.get(b"status", b"")) if b"status" in raw else None
        if isinstance(status, dict) and isinstance(status.get("roles"), dict):
            for role, info in status["roles"].items():
                if isinstance(info, dict) and "breaker" in info:
                    out[str(role)] = str(info["breaker"])
        return out

    async def lease_holder(self) -> str | None:
        return await lease_holder(self.board)

    async def roles(self) -> list[RoleInfo]:
        """Every role the controller knows of or an operator steered."""
        found = await steering.roles(self.board)
        fields = set(RoleInfo.__dataclass_fields__)
        return [
            RoleInfo(**{k: v for k, v in info.items() if k in fields}) for info in found.values()
        ]

    # -- activations -------------------------------------------------------------------------

    async def activations(self, limit: int = OPEN_LIMIT) -> list[ActivationRow]:
        """Every activation an operator may look at, by state (`ACTIVATION_STATES`): open
        ones (running, queued), the candidates the leader last published as waiting, the
        scheduled retries and the dead letters (at most `limit` of each)."""
        retrying = await steering.retrying(self.board, limit=limit)
        due = {r["id"] for r in retrying}
        rows: list[ActivationRow] = []
        for a in await self.open_activations(limit):
            if a.id in due:
                continue
            state = "running" if a.state in ("claimed", "settling") else "queued"
            rows.append(
                ActivationRow(
                    state, a.id, a.role, a.key, a.version, a.rule, max(1, a.deliveries),
                    a.granted_ms, a.consumer or "", "; ".join(a.why[-1:]),
                )
            )  # fmt: skip
        status = await self.status() or {}
        for c in status.get("candidates") or []:
            if isinstance(c, dict):
                rows.append(
                    ActivationRow(
                        "waiting", str(c.get("a", "")), str(c.get("role", "")),
                        str(c.get("k", "")), int(c.get("v", 0) or 0), str(c.get("rule", "")),
                        1, int(float(c.get("since", 0) or 0) * 1000), "", str(c.get("why", "")),
                    )
                )  # fmt: skip
        for r in retrying:
            rows.append(_row("retrying", r, int(r.get("due_ms") or 0)))
        for r in await steering.dead_letters(self.board, limit=limit):
            rows.append(_row("failed", r, int(r.get("ended_ms") or 0)))
        return rows

    async def open_activations(self, limit: int = OPEN_LIMIT) -> list[ActivationInfo]:
        """Activations granted and not finished (at most `limit`), with their claims."""
        try:
            opened: Any = await self.redis.hgetall(self.k.open_activations)
            ids = sorted(_s(i) for i in opened)[:limit]
            async with self.redis.pipeline(transaction=False) as pipe:
                for act_id in ids:
                    pipe.hgetall(self.k.activation(act_id))
                records: list[Any] = await pipe.execute() if ids else []
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        parsed: list[tuple[dict[str, Any], list[Any]]] = []
        for act_id, raw in zip(ids, records, strict=True):
            blob = _unpack(opened.get(act_id.encode(), b"")) or ["?", "", 0, 0, 0.0]
            rec = parse_record(act_id, raw) if raw else _missing(act_id, blob)
            parsed.append((rec, blob))
        claims = await self.claims({rec["role"] for rec, _ in parsed})
        out = []
        for rec, _blob in parsed:
            role_claims = claims.get(rec["role"], ({}, ""))
            out.append(_activation(rec, *role_claims))
        return out

    async def claims(self, roles: Iterable[str]) -> dict[str, tuple[dict[str, Any], str]]:
        """Per role: pending queue entries (entry id -> consumer, idle ms, deliveries) and
        the id of the last entry delivered to any agent."""
        roles = sorted(roles)
        if not roles:
            return {}
        out: dict[str, tuple[dict[str, Any], str]] = {}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for role in roles:
                    pipe.xpending_range(self.k.queue(role), GROUP, min="-", max="+", count=10_000)
                    pipe.xinfo_groups(self.k.queue(role))
                raw: list[Any] = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        for i, role in enumerate(roles):
            pending, groups = raw[2 * i], raw[2 * i + 1]
            if isinstance(pending, ResponseError) or isinstance(groups, ResponseError):
                out[role] = ({}, "")  # no queue (or group) yet: nothing delivered
                continue
            if isinstance(pending, Exception):
                raise wrap_redis_error(pending) if isinstance(pending, RedisError) else pending
            by_id = {
                _s(p["message_id"]): (_s(p["consumer"]), int(p["time_since_delivered"]),
                                      int(p["times_delivered"]))
                for p in pending
            }  # fmt: skip
            last = ""
            for g in groups or []:
                if _s(g.get("name", b"")) == GROUP:
                    last = _s(g.get("last-delivered-id", b""))
            out[role] = (by_id, last)
        return out

    # -- agents ------------------------------------------------------------------------------

    async def agents(self) -> list[AgentInfo]:
        """Every agent with a presence record, with its current claims and its role's
        breaker state (from the controller's status; "?" when no controller published)."""
        beats = await heartbeats(self.board, on_corrupt="skip")
        breakers = await self.breakers()
        held: dict[str, list[ActivationInfo]] = defaultdict(list)
        if beats:
            for act in await self.open_activations():
                if act.consumer:
                    held[act.consumer].append(act)
        out = []
        for name, hb in beats.items():
            out.append(
                AgentInfo(
                    name=name, role=hb.role, host=hb.host, pid=hb.pid, beat_ms=hb.beat_ms,
                    started_ms=hb.started_ms, concurrency=hb.concurrency, inflight=hb.inflight,
                    done=hb.done, failed=hb.failed, lost=hb.lost, breaker=breakers[hb.role],
                    claims=held.get(name, []),
                )
            )  # fmt: skip
        return out

    # -- decisions ---------------------------------------------------------------------------

    async def decisions(self, keys: Iterable[str], per_key: int = 10) -> list[DecisionInfo]:
        """The latest decisions about each of `keys`, newest first."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.lrange(self.k.decisions(key), 0, per_key - 1)
                lists: list[Any] = await pipe.execute()
        except RedisError as exc:
            raise wrap_redis_error(exc) from exc
        out = []
        for blobs in lists:
            for blob in blobs:
                d = _unpack(blob)
                if not isinstance(d, dict):
                    continue
                out.append(
                    DecisionInfo(
                        what=str(d.get("d", "?")),
                        key=str(d.get("k", "")),
                        version=int(d.get("v", 0) or 0),
                        revision=int(d.get("r", 0) or 0),
                        role=str(d.get("role", "")),
                        rule=str(d.get("rule", "")),
                        reasons=[str(x) for x in d.get("why") or []],
                        activation=str(d.get("a") or "") or None,
                        time_ms=int(d.get("t", 0) or 0),
                    )
                )
        out.sort(key=lambda d: (-d.time_ms, -d.revision, d.key, d.role, d.rule, d.what))
        return out


def _row(state: str, rec: dict[str, Any], when_ms: int) -> ActivationRow:
    return ActivationRow(
        state, rec["id"], rec["role"], rec["key"], rec["version"], rec["rule"],
        int(rec.get("attempt") or 1), when_ms, str(rec.get("agent") or ""),
        str(rec.get("error") or ""),
    )  # fmt: skip


def _missing(act_id: str, blob: list[Any]) -> dict[str, Any]:
    role, _resource, depth, priority, granted_at = (list(blob) + [None] * 5)[:5]
    return {
        "id": act_id, "role": str(role or "?"), "key": "", "version": 0, "revision": 0,
        "rule": "", "priority": int(priority or 0), "depth": int(depth or 0), "state": "",
        "why": [], "context": {}, "escalated_from": None,
        "granted_ms": int(float(granted_at or 0) * 1000), "claim": None,
    }  # fmt: skip


def _activation(rec: dict[str, Any], pending: dict[str, Any], last: str) -> ActivationInfo:
    entry_id = rec.get("claim") or ""
    consumer: str | None = None
    idle = deliveries = 0
    if entry_id and entry_id in pending:
        consumer, idle, deliveries = pending[entry_id]
        state = "released" if consumer == RELEASED else "claimed"
    elif entry_id and (not last or steering.queue_id_after(entry_id, last)):
        state = "queued"
    elif entry_id:
        state = "settling"
    else:
        state = "queued"
    return ActivationInfo(
        id=rec["id"],
        role=rec["role"],
        key=rec["key"],
        version=rec["version"],
        rule=rec["rule"],
        priority=rec["priority"],
        depth=rec["depth"],
        granted_ms=rec["granted_ms"],
        state=state,
        consumer=consumer if consumer != RELEASED else None,
        idle_ms=idle,
        deliveries=deliveries,
        entry_id=entry_id,
        why=[str(w) for w in rec.get("why") or []],
        escalated_from=rec.get("escalated_from"),
        context=dict(rec.get("context") or {}),
    )
