"""Live measurements of a running scenario (scenario layer; imports the board layer,
control.read and scenario.model/processes/workload).

Per board it follows the change log (`board.watch`) to see items reach their final state
and escalations commit, resuming after dropped connections and server restarts; every half
second it samples the agents' heartbeats (activations done), the processes alive, the
agents' log files for conflicts ("met a conflict"), retries (a failed activation "running
... again: attempt n") and redeliveries ("took over"), and the dead letters, so that an item
whose activation failed after its last attempt counts as settled (the run does not wait for
it). The samples make the progress display and the run's timeline. The authoritative account
is read from the board at the end (collect.py); this is only what the run looks like live.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from blackboard.board.client import Board
from blackboard.control import read
from blackboard.errors import BlackboardError
from blackboard.scenario.invariants import item_index, lookup
from blackboard.scenario.processes import Supervisor
from blackboard.scenario.workload import AckLog

__all__ = ["Monitor", "Sample"]

CONFLICT = b"met a conflict"
TAKEOVER = b"took over"
RETRY = b"again: attempt"


@dataclass(slots=True)
class Sample:
    t: float
    done: int
    written: int
    activations: int
    conflicts: int
    retries: int
    """runs of failed activations again (their next attempt)"""
    redeliveries: int
    """activations taken over from a dead agent, plus the runner's own retried writes"""
    dead_letters: int
    """items whose activation failed after its last attempt"""
    escalations: int
    agents_alive: int
    agents_total: int

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.row().items()}

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Tail:
    offset: int = 0
    conflicts: int = 0
    takeovers: int = 0
    retries: int = 0


@dataclass(slots=True)
class Monitor:
    """Follows the boards while the run lasts; `done` holds the items seen finished."""

    boards: dict[str, Board]
    final_keys: dict[tuple[str, str], int]
    """(board, final entry key) -> item index"""
    final_field: str | None
    final_equals: Any
    human_role: str
    supervisor: Supervisor
    acks: AckLog
    item_keys: dict[tuple[str, str], int] = field(default_factory=dict)
    """(board, item key) -> item index: which item a dead letter worked for"""
    start_revisions: dict[str, int] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    """items with a dead letter (they may still finish: `done` wins)"""
    escalations: set[str] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    t0: float = 0.0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    watch_errors: int = 0
    _tails: dict[Path, _Tail] = field(default_factory=dict)
    _acts_carried: dict[str, int] = field(default_factory=dict)
    _acts_last: dict[str, int] = field(default_factory=dict)
    _dead_seen: set[tuple[str, str]] = field(default_factory=set)

    async def mark_start(self) -> None:
        for name, board in self.boards.items():
            self.start_revisions[name] = await board.revision()

    async def watch(self, name: str, stop: asyncio.Event) -> None:
        """Follow board `name`'s log until `stop`; resumes after errors."""
        board = self.boards[name]
        since = self.start_revisions.get(name, 0)
        prefix = self.human_role + ":"
        while not stop.is_set():
            try:
                # idle_timeout: the watch returns when quiet, so that `stop` is seen
                async for change in board.watch("*", since=since, idle_timeout=0.3, block_ms=250):
                    since = change.revision
                    act = change.activation
                    if act and act.startswith(prefix):
                        self.escalations.add(act)
                    idx = self.final_keys.get((name, change.key))
                    if (
                        idx is not None
                        and idx not in self.done
                        and self._final(change.value, change.kind)
                    ):
                        self.done.add(idx)
                        self._check_done()
                    if stop.is_set():
                        return
            except (BlackboardError, RedisError, OSError):
                self.watch_errors += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.3)

    def _final(self, value: Any, kind: str) -> bool:
        if kind == "delete":
            return False
        return self.final_field is None or lookup(value, self.final_field) == self.final_equals

    def expect(self, n: int) -> None:
        """`n` items must settle (finish, or end in a dead letter) for the run to be done."""
        self.expected = n
        self._check_done()

    def _check_done(self) -> None:
        if self.expected and len(self.done | self.failed) >= self.expected:
            self.all_done.set()

    async def _dead_letters(self) -> None:
        """Note the items of new dead letters (read from each board's dead-letter index)."""
        for name, board in self.boards.items():
            try:
                ids = await read.dead_letter_ids(board)
                new = [i for i in ids if (name, i) not in self._dead_seen]
                if not new:
                    continue
                records = await read.activation_records(board, new)
            except BlackboardError:  # unreachable for now, or a torn record: next time
                continue
            for act_id, rec in records.items():
                self._dead_seen.add((name, act_id))
                idx = item_index(self.item_keys, name, rec.key) if rec else None
                if idx is not None:
                    self.failed.add(idx)
        self._check_done()

    async def _activations(self) -> int:
        for board in self.boards.values():
            try:  # a torn or foreign record is skipped this time
                beats = await read.heartbeats(board, on_corrupt="skip")
            except BlackboardError:
                continue
            for name, hb in beats.items():
                key = f"{board.name}/{name}"
                n = hb.done + hb.failed + _int(hb.record.get("ok"))
                if n < self._acts_last.get(key, 0):  # restarted: its counts began again
                    self._acts_carried[key] = self._acts_carried.get(key, 0) + self._acts_last[key]
                self._acts_last[key] = n
        return sum(self._acts_last.values()) + sum(self._acts_carried.values())

    def _scan_logs(self) -> tuple[int, int, int]:
        for m in self.supervisor.procs.values():
            if m.spec.kind != "agent":
                continue
            tail = self._tails.setdefault(m.log_path, _Tail())
            try:
                with open(m.log_path, "rb") as f:
                    f.seek(tail.offset)
                    data = f.read()
            except OSError:
                continue
            cut = data.rfind(b"\n") + 1  # count whole lines only
            tail.offset += cut
            chunk = data[:cut]
            tail.conflicts += chunk.count(CONFLICT)
            tail.takeovers += chunk.count(TAKEOVER)
            tail.retries += chunk.count(RETRY)
        tails = self._tails.values()
        return (
            sum(t.conflicts for t in tails),
            sum(t.retries for t in tails),
            sum(t.takeovers for t in tails),
        )

    async def sample(self) -> Sample:
        acts = await self._activations()
        await self._dead_letters()
        conflicts, retries, takeovers = self._scan_logs()
        alive, total = self.supervisor.alive("agent")
        s = Sample(
            time.monotonic() - self.t0, len(self.done), len(self.acks.items()), acts,
            conflicts, retries, takeovers + self.acks.retries, len(self.failed - self.done),
            len(self.escalations), alive, total,
        )  # fmt: skip
        self.samples.append(s)
        return s

    async def sample_loop(self, stop: asyncio.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            with contextlib.suppress(BlackboardError, RedisError, OSError):
                await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
