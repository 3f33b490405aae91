"""The workload: work items made from the scenario (seeded), written at a rate or in a burst,
and probe writes; every write the server acknowledged is kept in the runner's own record
(scenario layer; imports the board layer and scenario.model).

Writes use idempotency keys derived from the run, so a write retried after a dropped
connection or a server restart takes effect once; a write counts as acknowledged only when
a reply came back. That record is what the `acknowledged_writes` invariant compares the
board against at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blackboard.board.client import Board
from blackboard.errors import BlackboardError, ConflictError
from blackboard.scenario.model import Workload, render
from blackboard.store.entry import ABSENT, Entry

__all__ = ["Ack", "AckLog", "Item", "make_items", "write_items", "write_probes"]


@dataclass(frozen=True, slots=True)
class Item:
    """Work item `index`: entry `key` on `board` created with `value`."""

    index: int
    board: str
    key: str
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ack:
    """A write the server acknowledged: `key` reached `version` holding `value`."""

    kind: str  # "item" or "probe"
    board: str
    key: str
    version: int
    revision: int
    value: Any
    sent: float  # runner clock (time.time) when first sent
    acked: float  # when the reply came
    retries: int = 0


@dataclass(slots=True)
class AckLog:
    """The runner's record of acknowledged writes (and how many sends were retried)."""

    acks: list[Ack] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def items(self) -> list[Ack]:
        return [a for a in self.acks if a.kind == "item"]


def _fill(value: Any, i: int, board: str) -> Any:
    if isinstance(value, str):
        return render(value, i, board)
    if isinstance(value, dict):
        return {k: _fill(v, i, board) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, i, board) for v in value]
    return value


def make_items(workload: Workload, boards: list[str], seed: int) -> list[Item]:
    """The items of a run: item i goes to boards[i % len(boards)]; its value is drawn from
    the weighted values with a seeded generator, placeholders filled in."""
    rng = random.Random(f"{seed}:workload")
    weights = [v.weight for v in workload.values]
    out = []
    for i in range(workload.items):
        board = boards[i % len(boards)]
        chosen = rng.choices(workload.values, weights)[0]
        out.append(Item(i, board, render(workload.key, i, board), _fill(chosen.value, i, board)))
    return out


async def _acknowledged_put(
    board: Board,
    logical: str,
    key: str,
    value: Any,
    idem: str,
    log: AckLog,
    kind: str,
    stop: asyncio.Event,
) -> Ack | None:
    """Put `value` at `key` (create only), retrying until acknowledged or `stop` is set.
    The ack names the board by its `logical` (scenario) name."""
    sent = time.time()
    retries = 0
    while True:
        try:
            entry: Entry | None = await board.put(key, value, expect=ABSENT, idempotency_key=idem)
        except ConflictError:
            # created by an earlier send whose idempotency record is gone: ours if it matches
            entry = await _read_back(board, key, value)
            if entry is None:
                log.errors.append(f"{key}: exists with another value; not acknowledged")
                return None
        except BlackboardError as exc:
            retries += 1
            log.retries += 1
            if stop.is_set():
                log.errors.append(f"{key}: not acknowledged before the run ended ({exc})")
                return None
            await asyncio.sleep(min(0.5, 0.05 * retries))
            continue
        assert entry is not None
        ack = Ack(
            kind, logical, key, entry.version, entry.revision, value, sent, time.time(), retries
        )
        log.acks.append(ack)
        return ack


async def _read_back(board: Board, key: str, value: Any) -> Entry | None:
    try:
        entry = await board.get(key, version=1)
    except BlackboardError:
        return None
    return entry if entry is not None and entry.value == value else None


async def write_items(
    boards: dict[str, Board],
    items: list[Item],
    rate: float | None,
    log: AckLog,
    run_id: str,
    stop: asyncio.Event,
    *,
    writers: int = 8,
    on_written: Callable[[Item, Ack], None] | None = None,
) -> None:
    """Write every item: at `rate` per second (open loop: item i is due at i / rate), or as
    fast as `writers` concurrent writers go when `rate` is None. Returns when all are
    acknowledged, or when `stop` is set (items not yet sent are not written)."""
    start = time.monotonic()
    queue = iter(items)

    async def writer() -> None:
        for item in queue:
            if stop.is_set():
                return
            if rate is not None:
                delay = start + item.index / rate - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        return
                    except TimeoutError:
                        pass
            idem = f"scenario:{run_id}:item:{item.board}:{item.index}"
            ack = await _acknowledged_put(
                boards[item.board], item.board, item.key, item.value, idem, log, "item", stop
            )
            if ack is not None and on_written is not None:
                on_written(item, ack)

    await asyncio.gather(*(writer() for _ in range(writers)))


async def write_probes(
    board: Board, logical: str, rate: float, log: AckLog, run_id: str, stop: asyncio.Event
) -> None:
    """Probe writes ``probe/<n>`` at `rate` per second until `stop` is set: acknowledged
    writes spread over the whole run (faults included), to check none is lost."""
    if rate <= 0:
        return
    n = 0
    start = time.monotonic()
    while not stop.is_set():
        value = {"n": n, "t": round(time.time(), 3)}
        await _acknowledged_put(
            board, logical, f"probe/{n}", value, f"scenario:{run_id}:probe:{n}", log, "probe", stop
        )
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
